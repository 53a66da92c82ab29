//! Notes in SQLite: the only module that knows SQL. Every query is parameterised; ownership
//! is part of the `WHERE` clause, so a note that is not yours is simply not found.

use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use std::str::FromStr;

/// A stored note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// A UUID.
    pub id: String,
    /// The `sub` of the token that created it.
    pub owner: String,
    /// Title, 1 to 200 characters.
    pub title: String,
    /// Body, up to 10,000 characters.
    pub body: String,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// RFC 3339 UTC.
    pub updated_at: String,
}

// Written out because the workspace builds sqlx without its derive macros.
impl sqlx::FromRow<'_, SqliteRow> for Note {
    fn from_row(row: &SqliteRow) -> Result<Self, sqlx::Error> {
        Ok(Note {
            id: row.try_get("id")?,
            owner: row.try_get("owner")?,
            title: row.try_get("title")?,
            body: row.try_get("body")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Whose notes a query may see.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every note (admins, clients with `notes:read`).
    All,
    /// Only notes owned by this subject.
    OwnedBy(&'a str),
}

impl Scope<'_> {
    /// `(all, owner)` for the `WHERE (? OR owner = ?)` pattern.
    fn bind(self) -> (bool, String) {
        match self {
            Scope::All => (true, String::new()),
            Scope::OwnedBy(owner) => (false, owner.to_owned()),
        }
    }
}

/// The notes table.
#[derive(Debug, Clone)]
pub struct NoteStore {
    pool: SqlitePool,
}

impl NoteStore {
    /// Opens (creating if needed) the database at `url` and its table.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(5).connect_with(options).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS notes (
                id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query("CREATE INDEX IF NOT EXISTS notes_by_owner ON notes (owner, created_at)").execute(&pool).await?;
        Ok(NoteStore { pool })
    }

    /// Stores a new note.
    pub async fn insert(&self, note: &Note) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO notes (id, owner, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&note.id)
            .bind(&note.owner)
            .bind(&note.title)
            .bind(&note.body)
            .bind(&note.created_at)
            .bind(&note.updated_at)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Notes visible in `scope`, oldest first.
    pub async fn list(&self, scope: Scope<'_>) -> Result<Vec<Note>, sqlx::Error> {
        let (all, owner) = scope.bind();
        sqlx::query_as::<_, Note>("SELECT * FROM notes WHERE (? OR owner = ?) ORDER BY created_at, id")
            .bind(all)
            .bind(owner)
            .fetch_all(&self.pool)
            .await
    }

    /// One note, if visible in `scope`.
    pub async fn get(&self, id: &str, scope: Scope<'_>) -> Result<Option<Note>, sqlx::Error> {
        let (all, owner) = scope.bind();
        sqlx::query_as::<_, Note>("SELECT * FROM notes WHERE id = ? AND (? OR owner = ?)")
            .bind(id)
            .bind(all)
            .bind(owner)
            .fetch_optional(&self.pool)
            .await
    }

    /// Replaces title and body of a note visible in `scope`; the updated note, if any.
    pub async fn update(
        &self,
        id: &str,
        scope: Scope<'_>,
        title: Option<&str>,
        body: Option<&str>,
        now: &str,
    ) -> Result<Option<Note>, sqlx::Error> {
        let (all, owner) = scope.bind();
        sqlx::query_as::<_, Note>(
            "UPDATE notes SET title = COALESCE(?, title), body = COALESCE(?, body), updated_at = ?
             WHERE id = ? AND (? OR owner = ?) RETURNING *",
        )
        .bind(title)
        .bind(body)
        .bind(now)
        .bind(id)
        .bind(all)
        .bind(owner)
        .fetch_optional(&self.pool)
        .await
    }

    /// Deletes a note visible in `scope`; whether one was deleted.
    pub async fn delete(&self, id: &str, scope: Scope<'_>) -> Result<bool, sqlx::Error> {
        let (all, owner) = scope.bind();
        let done =
            sqlx::query("DELETE FROM notes WHERE id = ? AND (? OR owner = ?)").bind(id).bind(all).bind(owner).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}
