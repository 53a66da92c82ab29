//! What the admin console reads besides the API's queries: people found by the start of
//! their email or username, the audit trail filtered, and the overview's counts.
//!
//! Every list pages by key (the last row's sort key), never by `OFFSET`, and nothing counts a
//! whole table per page: a page of 100,000 accounts costs what a page of 100 does. The prefix
//! searches are index range scans (`email_normalized >= prefix AND < prefix's successor`); on
//! PostgreSQL under the `C` collation, so that the range is byte order whatever the database's
//! collation (migration 11 adds the matching indexes).

use super::{AuditEvent, StoreError};
use crate::domain::User;
use time::OffsetDateTime;

/// Which audit events to list; `None` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exactly this kind, e.g. `user.disabled`.
    pub kind: Option<String>,
    /// Done by this user id or client id.
    pub actor: Option<String>,
    /// Done to this user id or client id.
    pub subject: Option<String>,
    /// At or after this time.
    pub since: Option<OffsetDateTime>,
    /// Before this time.
    pub until: Option<OffsetDateTime>,
}

/// The overview's numbers, read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleCounts {
    /// Accounts.
    pub users: i64,
    /// Live token sessions (API sign-ins and applications).
    pub token_sessions: i64,
    /// Live browser sessions.
    pub browser_sessions: i64,
    /// Registered clients.
    pub clients: i64,
}

/// The console's queries.
#[async_trait::async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Accounts in order of their normalised email, after the account whose normalised email
    /// is `after`. With a `prefix` (lower case), only those whose normalised email starts with
    /// it, or, when `usernames` is set, whose username does.
    async fn search_users(&self, prefix: Option<&str>, usernames: bool, after: Option<&str>, limit: u32) -> Result<Vec<User>, StoreError>;

    /// Audit events matching `filter`, newest first, with their sequence numbers, older than
    /// the event `before` names.
    async fn filtered_audit(&self, filter: &AuditFilter, before: Option<i64>, limit: u32) -> Result<Vec<(i64, AuditEvent)>, StoreError>;

    /// How many events of each kind happened at or after `since`.
    async fn audit_kinds_since(&self, since: OffsetDateTime) -> Result<Vec<(String, i64)>, StoreError>;

    /// Accounts, live sessions of both kinds at `now`, and clients.
    async fn console_counts(&self, now: OffsetDateTime) -> Result<ConsoleCounts, StoreError>;
}

/// The smallest string greater than every string that starts with `prefix`: its last
/// character replaced by the next one (`"ab"` → `"ac"`); `None` for an empty prefix.
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut code = u32::from(last) + 1;
        // Skip the surrogate range, which holds no characters.
        if (0xD800..=0xDFFF).contains(&code) {
            code = 0xE000;
        }
        if let Some(next) = char::from_u32(code) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
        // The last character was char::MAX: carry into the one before it.
    }
    None
}

/// The conditions every audit filter statement ends with: `$1` the cursor (`seq` below it),
/// `$2` kind, `$3` actor, `$4` subject, `$5`/`$6` the time range (each matching anything when
/// NULL), newest first, `$7` rows.
macro_rules! audit_filters {
    () => {
        "seq < $1 AND (CAST($2 AS TEXT) IS NULL OR kind = $2) AND (CAST($3 AS TEXT) IS NULL OR actor = $3) \
         AND (CAST($4 AS TEXT) IS NULL OR subject = $4) AND (CAST($5 AS BIGINT) IS NULL OR at >= $5) \
         AND (CAST($6 AS BIGINT) IS NULL OR at < $6) ORDER BY seq DESC LIMIT $7"
    };
}
pub(crate) use audit_filters;

/// The console's statements, written once for both engines like `store_impl!`. `$collate` is
/// the collation clause that makes text compare in byte order (`COLLATE "C"` on PostgreSQL,
/// nothing on SQLite, whose default is already binary).
macro_rules! console_impl {
    ($engine:ty, $collate:literal) => {
        #[async_trait::async_trait]
        impl super::console::ConsoleStore for $engine {
            async fn search_users(
                &self,
                prefix: Option<&str>,
                usernames: bool,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<User>, StoreError> {
                let after = after.unwrap_or_default();
                let rows: Vec<UserRow> = match prefix.filter(|p| !p.is_empty()) {
                    None => sqlx::query_as(sql!(
                        "SELECT ",
                        user_columns!(),
                        " FROM users WHERE email_normalized",
                        $collate,
                        " > $1 ",
                        "ORDER BY email_normalized",
                        $collate,
                        " LIMIT $2"
                    ))
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)?,
                    Some(prefix) if !usernames => {
                        let upper = super::console::prefix_successor(prefix).unwrap_or_default();
                        sqlx::query_as(sql!(
                            "SELECT ",
                            user_columns!(),
                            " FROM users WHERE email_normalized",
                            $collate,
                            " >= $1 ",
                            "AND email_normalized",
                            $collate,
                            " < $2 AND email_normalized",
                            $collate,
                            " > $3 ",
                            "ORDER BY email_normalized",
                            $collate,
                            " LIMIT $4"
                        ))
                        .bind(prefix)
                        .bind(upper)
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(classify)?
                    }
                    // Two index ranges, each cut to a page before they are merged: an `OR` of
                    // the two would be planned (with bound parameters) as a scan of the table.
                    Some(prefix) => {
                        let upper = super::console::prefix_successor(prefix).unwrap_or_default();
                        sqlx::query_as(sql!(
                            "SELECT ",
                            user_columns!(),
                            " FROM (",
                            "SELECT * FROM (SELECT ",
                            user_columns!(),
                            ", email_normalized AS sort_key FROM users ",
                            "WHERE email_normalized",
                            $collate,
                            " >= $1 AND email_normalized",
                            $collate,
                            " < $2 ",
                            "AND email_normalized",
                            $collate,
                            " > $3 ORDER BY email_normalized",
                            $collate,
                            " LIMIT $4) AS by_email ",
                            "UNION ",
                            "SELECT * FROM (SELECT ",
                            user_columns!(),
                            ", email_normalized AS sort_key FROM users ",
                            "WHERE username",
                            $collate,
                            " >= $1 AND username",
                            $collate,
                            " < $2 ",
                            "AND email_normalized",
                            $collate,
                            " > $3 ORDER BY email_normalized",
                            $collate,
                            " LIMIT $4) AS by_username",
                            ") AS found ORDER BY sort_key",
                            $collate,
                            " LIMIT $4"
                        ))
                        .bind(prefix)
                        .bind(upper)
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(classify)?
                    }
                };
                rows.into_iter().map(User::try_from).collect()
            }

            async fn filtered_audit(
                &self,
                filter: &super::console::AuditFilter,
                before: Option<i64>,
                limit: u32,
            ) -> Result<Vec<(i64, AuditEvent)>, StoreError> {
                // The most selective filter given leads, so that its index ((subject, seq),
                // (actor, seq), (kind, seq)) is walked newest first; the others filter.
                let statement = if filter.subject.is_some() {
                    sql!("SELECT ", audit_columns!(), " FROM audit_events WHERE subject = $4 AND ", super::console::audit_filters!())
                } else if filter.actor.is_some() {
                    sql!("SELECT ", audit_columns!(), " FROM audit_events WHERE actor = $3 AND ", super::console::audit_filters!())
                } else if filter.kind.is_some() {
                    sql!("SELECT ", audit_columns!(), " FROM audit_events WHERE kind = $2 AND ", super::console::audit_filters!())
                } else {
                    sql!("SELECT ", audit_columns!(), " FROM audit_events WHERE ", super::console::audit_filters!())
                };
                let rows: Vec<AuditRow> = sqlx::query_as(statement)
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(filter.kind.as_deref())
                    .bind(filter.actor.as_deref())
                    .bind(filter.subject.as_deref())
                    .bind(filter.since.map(ms))
                    .bind(filter.until.map(ms))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)?;
                Ok(rows.into_iter().map(<(i64, AuditEvent)>::from).collect())
            }

            async fn audit_kinds_since(&self, since: OffsetDateTime) -> Result<Vec<(String, i64)>, StoreError> {
                sqlx::query_as(sql!("SELECT kind, COUNT(*) FROM audit_events WHERE at >= $1 GROUP BY kind ORDER BY kind"))
                    .bind(ms(since))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(classify)
            }

            async fn console_counts(&self, now: OffsetDateTime) -> Result<super::console::ConsoleCounts, StoreError> {
                let (users, token_sessions, browser_sessions, clients): (i64, i64, i64, i64) = sqlx::query_as(sql!(
                    "SELECT (SELECT COUNT(*) FROM users), ",
                    "(SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1), ",
                    "(SELECT COUNT(*) FROM browser_sessions WHERE expires_at > $1), ",
                    "(SELECT COUNT(*) FROM clients)"
                ))
                .bind(ms(now))
                .fetch_one(&self.pool)
                .await
                .map_err(classify)?;
                Ok(super::console::ConsoleCounts { users, token_sessions, browser_sessions, clients })
            }
        }
    };
}
pub(crate) use console_impl;

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn the_successor_of_a_prefix_bounds_every_string_that_starts_with_it() {
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("a@").as_deref(), Some("aA"));
        assert_eq!(prefix_successor("z\u{D7FF}").as_deref(), Some("z\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor(""), None);
        for s in ["ab", "ab.cd@example.com", "ab\u{10FFFF}x"] {
            assert!(s.starts_with("ab") && s < prefix_successor("ab").unwrap().as_str(), "{s}");
        }
    }
}
