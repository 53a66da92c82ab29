//! The per-address limit on credential endpoints, as middleware.

use super::error::{ApiError, OAuthError};
use super::extract::client_ip;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Admits the request or answers 429 with `Retry-After`, in the shape of the endpoint.
pub async fn per_client_address(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let ip = client_ip(&parts.headers, &parts.extensions, &app.http().trusted_proxies);
    if let Err(refused) = app.admit(ip) {
        return if parts.uri.path().starts_with("/oauth2/") {
            OAuthError::from(refused).into_response()
        } else {
            ApiError::from(refused).into_response()
        };
    }
    next.run(Request::from_parts(parts, body)).await
}
