//! Signing keys: the public JWKS, and the admin listing and rotation.

use super::error::ApiError;
use super::extract::{Bearer, Json};
use crate::domain::keys::SigningAlg;
use crate::service::Error;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

/// RFC 7517 key set. Cacheable for a short while: new keys are published a rotation ahead.
pub async fn jwks(State(app): State<AppState>) -> Result<Response, ApiError> {
    let mut response = axum::Json(app.jwks()?.as_ref().clone()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}

pub async fn list(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<impl IntoResponse, ApiError> {
    require_admin(&claims)?;
    Ok(axum::Json(json!({ "keys": app.list_keys()? })))
}

#[derive(Debug, Deserialize)]
pub struct RotateBody {
    #[serde(default)]
    alg: Option<String>,
}

/// The body is optional: `{"alg": "RS256"}` switches algorithm.
pub async fn rotate(State(app): State<AppState>, Bearer(claims): Bearer, body: Bytes) -> Result<impl IntoResponse, ApiError> {
    require_admin(&claims)?;
    let alg = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let Json(RotateBody { alg }) = parse_json(&body)?;
        alg.map(|a| a.parse::<SigningAlg>().map_err(|e| Error::Validation(format!("alg: {e}")))).transpose()?
    };
    let key = app.rotate_keys(alg).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "kid": key.kid, "alg": key.alg }))))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Json<T>, ApiError> {
    serde_json::from_slice(body)
        .map(Json)
        .map_err(|_| ApiError::request(StatusCode::BAD_REQUEST, "malformed_request", "the body is not valid JSON"))
}

pub(crate) fn require_admin(claims: &tessera_verify::Claims) -> Result<(), Error> {
    if claims.has_role(crate::domain::Role::ADMIN) {
        Ok(())
    } else {
        Err(Error::Forbidden("this operation needs the admin role"))
    }
}
