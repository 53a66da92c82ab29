//! Signing keys: the public JWKS, and the admin listing and rotation.

use super::error::{ApiError, Conflict};
use super::extract::{Bearer, OptionalJson};
use super::views::{JwksDoc, KeyList, RotatedKeyView};
use crate::domain::keys::SigningAlg;
use crate::service::{ClientMeta, Error};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

/// The public signing keys (RFC 7517)
///
/// The active key, the next key and retiring keys; empty with HS256.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses(
        (status = 200, description = "The key set", body = JwksDoc,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
    ))]
// Cacheable for a short while: new keys are published a rotation ahead.
pub async fn jwks(State(app): State<AppState>) -> Result<Response, ApiError> {
    let mut response = axum::Json(app.jwks()?.as_ref().clone()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}

/// The signing keys and their states (admin)
#[utoipa::path(get, path = "/v1/keys", operation_id = "list_keys", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The keys", body = KeyList)))]
pub async fn list(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<axum::Json<KeyList>, ApiError> {
    Ok(axum::Json(KeyList { keys: app.admin_list_keys(&claims)? }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RotateBody {
    /// Switches the signing algorithm from now on.
    #[serde(default)]
    #[schema(value_type = Option<SigningAlg>)]
    alg: Option<String>,
}

/// Rotate the signing keys (admin)
///
/// The next key becomes active, a new next key is made, the old active key is retiring. The
/// body is optional and read as JSON whatever its content type: `{"alg": "RS256"}` switches
/// algorithm in two steps, so that no key signs before it is published: a key of the new
/// algorithm replaces the next key (answer `status: next` with `active_from`), and becomes
/// active by itself 300 s later (the JWKS cache lifetime). From or to HS256 the switch is
/// immediate.
#[utoipa::path(post, path = "/v1/keys/rotate", operation_id = "rotate_keys", tag = "admin", security(("bearer" = [])),
    request_body(content = Option<RotateBody>, content_type = "application/json"),
    responses(
        (status = 201, description = "New tokens are signed with this key (`active`), or will be from `active_from` (`next`)", body = RotatedKeyView),
        Conflict,
    ))]
pub async fn rotate(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    OptionalJson(body): OptionalJson<RotateBody>,
) -> Result<(StatusCode, axum::Json<RotatedKeyView>), ApiError> {
    let alg = body.and_then(|b| b.alg).map(|a| a.parse::<SigningAlg>().map_err(|e| Error::Validation(format!("alg: {e}")))).transpose()?;
    Ok((StatusCode::CREATED, axum::Json(app.admin_rotate_keys(&claims, alg, &meta).await?.into())))
}
