//! `GET /v1/revocations`: the revocation feed for services that verify tokens locally.

use super::error::{ApiError, InvalidQuery};
use super::extract::{basic_credentials, bearer_token};
use crate::service::{Error, FeedReader};
use crate::state::AppState;
use crate::store::Revocation;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use std::time::Duration;
use tessera_verify::{FeedPage, RevokedSession, RevokedSubject, RevokedToken};
use utoipa::IntoParams;

/// The longest a reader may wait for news.
const MAX_WAIT: u64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// A `cursor` from an earlier answer: only what came after it. All live revocations when absent.
    #[serde(default)]
    since: Option<String>,
    /// Whole seconds (at most 30 are used) to wait for something new when there is nothing yet.
    #[serde(default)]
    #[param(value_type = Option<u64>)]
    wait: Option<String>,
}

/// Any authenticated client (HTTP Basic) or an admin's bearer token may read the feed.
async fn authorize(app: &AppState, parts: &Parts) -> Result<(), ApiError> {
    let basic = basic_credentials(&parts.headers).and_then(Result::ok);
    let reader = match (bearer_token(parts), &basic) {
        (Some(token), _) => FeedReader::Bearer(token),
        (None, Some((id, secret))) => FeedReader::Client { id, secret },
        (None, None) => FeedReader::Anonymous,
    };
    Ok(app.authorize_feed_reader(reader).await?)
}

/// The revocation feed
///
/// For services that verify tokens locally: a token whose `jti` or `sid` is listed, or whose
/// `sub` is listed with `iat` before `not_before`, is revoked. Any authenticated client (HTTP
/// Basic) or an admin's bearer token may read it.
#[utoipa::path(get, path = "/v1/revocations", tag = "admin", security(("client_basic" = []), ("bearer" = [])), params(FeedQuery),
    responses((status = 200, description = "Every revocation after `since`", body = FeedPage), InvalidQuery))]
pub async fn feed(
    State(app): State<AppState>,
    parts: Parts,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<FeedPage>, ApiError> {
    authorize(&app, &parts).await?;
    let Query(q) = query.map_err(|e| ApiError::request(StatusCode::BAD_REQUEST, "malformed_request", e.body_text()))?;
    let since = q.since.as_deref().map(|s| s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or(Error::InvalidCursor)).transpose()?;
    let wait = match q.wait.as_deref() {
        None | Some("") => 0,
        Some(w) => w.parse::<u64>().map_err(|_| Error::Validation("wait must be whole seconds (0 to 30)".into()))?.min(MAX_WAIT),
    };
    let page = app.revocation_feed(since, Duration::from_secs(wait)).await?;
    let mut answer = FeedPage { cursor: page.cursor.to_string(), ..FeedPage::default() };
    for entry in page.entries {
        match entry {
            Revocation::Token { jti, exp } => answer.tokens.push(RevokedToken { jti, exp }),
            Revocation::Session { sid, exp } => answer.sessions.push(RevokedSession { sid, exp }),
            Revocation::Subject { sub, not_before, exp } => answer.subjects.push(RevokedSubject { sub, not_before, exp: Some(exp) }),
        }
    }
    Ok(axum::Json(answer))
}
