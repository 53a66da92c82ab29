//! The routes. Handlers authenticate with `tessera_verify::Authenticated`, decide whose
//! notes the caller may touch (one function, [`access`]), and call the store.

use crate::store::{Note, NoteStore, Scope};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tessera_verify::{Authenticated, Claims, Rejection, Verifier};

/// The role that sees and edits every note.
pub const ADMIN_ROLE: &str = "admin";
/// The scope that lets a service client read every note.
pub const READ_SCOPE: &str = "notes:read";
/// The scope that lets a service client write (its own) notes.
pub const WRITE_SCOPE: &str = "notes:write";

/// What handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Checks bearer tokens.
    pub verifier: Verifier,
    /// The notes.
    pub store: NoteStore,
}

impl FromRef<AppState> for Verifier {
    fn from_ref(state: &AppState) -> Verifier {
        state.verifier.clone()
    }
}

/// The router of the notes service.
pub fn router(state: AppState) -> Router {
    Router::new().route("/notes", get(list).post(create)).route("/notes/{id}", get(read).patch(update).delete(remove)).with_state(state)
}

/// Whether the caller reads or changes notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Read,
    Write,
}

/// Whose notes the caller may see or change. Admins: every note. People: their own. Service
/// clients: every note to read with `notes:read`; their own to write with `notes:write`.
fn access(claims: &Authenticated, intent: Intent) -> Result<Scope<'_>, Rejection> {
    if claims.has_role(ADMIN_ROLE) {
        return Ok(Scope::All);
    }
    if claims.is_person() {
        return Ok(Scope::OwnedBy(&claims.sub));
    }
    match intent {
        Intent::Read => claims.require_scope(READ_SCOPE).map(|_| Scope::All),
        Intent::Write => claims.require_scope(WRITE_SCOPE).map(|c: &Claims| Scope::OwnedBy(&c.sub)),
    }
}

/// `POST /notes` body.
#[derive(Debug, Deserialize)]
pub struct NewNote {
    title: String,
    body: String,
}

/// `PATCH /notes/{id}` body.
#[derive(Debug, Deserialize)]
pub struct NotePatch {
    title: Option<String>,
    body: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    body: Result<Json<NewNote>, JsonRejection>,
) -> Result<Response, ApiError> {
    // Creating needs write access; the note always belongs to the caller, admins included.
    access(&auth, Intent::Write)?;
    let Json(new) = body?;
    validate(Some(&new.title), Some(&new.body))?;
    let now = now();
    let note = Note {
        id: uuid::Uuid::new_v4().to_string(),
        owner: auth.sub.clone(),
        title: new.title,
        body: new.body,
        created_at: now.clone(),
        updated_at: now,
    };
    state.store.insert(&note).await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

async fn list(State(state): State<AppState>, auth: Authenticated) -> Result<Response, ApiError> {
    let notes = state.store.list(access(&auth, Intent::Read)?).await?;
    Ok(Json(serde_json::json!({ "notes": notes })).into_response())
}

async fn read(State(state): State<AppState>, auth: Authenticated, Path(id): Path<String>) -> Result<Response, ApiError> {
    let note = state.store.get(&id, access(&auth, Intent::Read)?).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(note).into_response())
}

async fn update(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
    body: Result<Json<NotePatch>, JsonRejection>,
) -> Result<Response, ApiError> {
    let scope = access(&auth, Intent::Write)?;
    let Json(patch) = body?;
    validate(patch.title.as_deref(), patch.body.as_deref())?;
    let note = state.store.update(&id, scope, patch.title.as_deref(), patch.body.as_deref(), &now()).await?.ok_or(ApiError::NotFound)?;
    Ok(Json(note).into_response())
}

async fn remove(State(state): State<AppState>, auth: Authenticated, Path(id): Path<String>) -> Result<Response, ApiError> {
    if state.store.delete(&id, access(&auth, Intent::Write)?).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound)
    }
}

fn validate(title: Option<&str>, body: Option<&str>) -> Result<(), ApiError> {
    if let Some(title) = title {
        let len = title.trim().chars().count();
        if len == 0 || len > 200 {
            return Err(ApiError::Validation("title must be 1 to 200 characters"));
        }
    }
    if body.is_some_and(|b| b.chars().count() > 10_000) {
        return Err(ApiError::Validation("body must be at most 10000 characters"));
    }
    Ok(())
}

fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Every failure of a notes handler, answered as problem+json like Tessera's.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Authentication or authorization failed (401/403/503 from tessera-verify).
    #[error("{0}")]
    Auth(#[from] Rejection),
    /// Not there, or not yours: the same answer, so ids do not leak.
    #[error("no such note")]
    NotFound,
    /// A field breaks a rule.
    #[error("{0}")]
    Validation(&'static str),
    /// The body is not the JSON expected.
    #[error("{0}")]
    BadJson(#[from] JsonRejection),
    /// The database failed; logged, not echoed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail) = match self {
            ApiError::Auth(rejection) => return rejection.into_response(),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "no such note".to_owned()),
            ApiError::Validation(detail) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail.to_owned()),
            ApiError::BadJson(e) => (e.status(), "malformed_request", e.body_text()),
            ApiError::Database(e) => {
                tracing::error!(error = %e, "database failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side".to_owned())
            }
        };
        let body = serde_json::json!({
            "type": format!("urn:tessera:problem:{code}"),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "code": code,
        });
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}
