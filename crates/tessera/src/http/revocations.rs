//! `GET /v1/revocations`: the revocation feed for services that verify tokens locally.

use super::error::{ApiError, InvalidQuery};
use super::extract::{BasicCredentials, MalformedBasic, Query, parse_bearer};
use crate::service::FeedReader;
use crate::state::AppState;
use crate::store::Revocation;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use serde::Deserialize;
use tessera_verify::{FeedPage, RevokedSession, RevokedSubject, RevokedToken};
use utoipa::IntoParams;

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

/// The revocation feed
///
/// For services that verify tokens locally: a token whose `jti` or `sid` is listed, or whose
/// `sub` is listed with `iat` before `not_before`, is revoked. Any authenticated client (HTTP
/// Basic) or an admin's bearer token may read it.
#[utoipa::path(get, path = "/v1/revocations", tag = "admin", security(("client_basic" = []), ("bearer" = [])), params(FeedQuery),
    responses((status = 200, description = "Every revocation after `since`", body = FeedPage), InvalidQuery))]
pub async fn feed(
    State(app): State<AppState>,
    headers: HeaderMap,
    basic: Result<Option<BasicCredentials>, MalformedBasic>,
    Query(q): Query<FeedQuery>,
) -> Result<axum::Json<FeedPage>, ApiError> {
    // A Basic header that does not decode counts as no credentials.
    let basic = basic.ok().flatten();
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(parse_bearer);
    let reader = match (bearer, &basic) {
        (Some(token), _) => FeedReader::Bearer(token),
        (None, Some(c)) => FeedReader::Client { id: &c.id, secret: &c.secret },
        (None, None) => FeedReader::Anonymous,
    };
    let page = app.revocation_feed(reader, q.since.as_deref(), q.wait.as_deref()).await?;
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
