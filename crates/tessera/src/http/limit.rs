//! The per-address limit on credential endpoints, as middleware.
//!
//! Two kinds: [`per_client_address`] counts every request (login, register, the token
//! endpoint: each one is an attempt at a credential); [`failures_per_client_address`] counts
//! only the requests refused with 401, for the endpoints that resource servers call for
//! every request they serve (introspection, the revocation feed): an address over the limit
//! is refused on both kinds, so guessing a client secret is as limited on each.

use super::error::{ApiError, OAuthError};
use super::extract::client_ip;
use crate::service::Error;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Admits the request or answers 429 with `Retry-After`, in the shape of the endpoint.
pub async fn per_client_address(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let ip = client_ip(&parts.headers, &parts.extensions, &app.http().trusted_proxies);
    if let Err(refused) = app.admit(ip) {
        return refusal(parts.uri.path(), refused);
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Answers 429 while the address is over the limit; otherwise serves the request, and counts
/// it only when it is refused with 401 (failed client authentication).
pub async fn failures_per_client_address(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let ip = client_ip(&parts.headers, &parts.extensions, &app.http().trusted_proxies);
    if let Err(refused) = app.admit_if_under_limit(ip) {
        return refusal(parts.uri.path(), refused);
    }
    let response = next.run(Request::from_parts(parts, body)).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        app.count_failure(ip);
    }
    response
}

fn refusal(path: &str, refused: Error) -> Response {
    if path.starts_with("/oauth2/") {
        OAuthError::from(refused).into_response()
    } else if path.starts_with("/v1/") {
        ApiError::from(refused).into_response()
    } else {
        // A page (the sign-in and registration forms): the error page.
        super::pages::HtmlError::from(refused).into_response()
    }
}
