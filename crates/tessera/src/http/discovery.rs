//! RFC 8414 authorization-server metadata, also served as OpenID discovery.

use super::error::ProblemAnswer;
use super::views::MetadataDoc;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Authorization-server metadata (RFC 8414)
///
/// Also served as `/.well-known/openid-configuration`.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "discovery",
    responses(
        (status = 200, description = "The metadata", body = MetadataDoc,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
        (status = 500, response = ProblemAnswer),
    )
)]
pub async fn metadata(State(app): State<AppState>) -> Response {
    let issuer = &app.settings().issuer;
    let alg = app
        .list_keys()
        .ok()
        .and_then(|keys| keys.into_iter().find(|k| k.status == crate::domain::keys::KeyStatus::Active).map(|k| k.alg.as_str()));
    let scopes = app.known_scopes().await.unwrap_or_default();
    let body = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": scopes,
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": alg.into_iter().collect::<Vec<_>>(),
    });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}
