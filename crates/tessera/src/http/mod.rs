//! The HTTP layer (axum only): routes, extractors, and the one error type that becomes the
//! one response shape. Handlers extract, call one use case, and map its result.

mod audit;
mod auth;
pub mod clients;
mod discovery;
pub mod error;
pub mod extract;
mod keys;
mod limit;
mod oauth;
mod observe;
mod revocations;
mod ops;
mod users;
pub mod views;
pub use audit::event_json;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use error::problem;
use std::time::Duration;
use axum::http::Method;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every route Tessera serves, with its middleware.
pub fn router(state: AppState) -> Router {
    let cors = cors(&state.http().cors_origins);
    // Credential endpoints: limited per client address.
    let credentials = Router::new()
        .route("/v1/auth/register", post(auth::register))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/introspect", post(oauth::introspect))
        .route("/oauth2/revoke", post(oauth::revoke))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), limit::per_client_address));

    let routes = Router::new()
        .merge(credentials)
        .route("/", get(ops::root))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/logout-all", post(auth::logout_all))
        .route("/v1/auth/verify", get(auth::verify).post(auth::verify))
        .route("/v1/users", get(users::list_users))
        .route("/v1/users/me", get(users::me).patch(users::patch_me).delete(users::delete_me))
        .route("/v1/users/me/password", put(users::change_password))
        .route("/v1/users/me/sessions", get(users::sessions))
        .route("/v1/users/me/sessions/{id}", delete(users::end_session))
        .route(
            "/v1/users/{id}",
            get(users::get_user).patch(users::admin_patch_user).delete(users::admin_delete_user),
        )
        .route("/v1/revocations", get(revocations::feed))
        .route("/v1/audit", get(audit::trail))
        .route("/v1/keys", get(keys::list))
        .route("/v1/keys/rotate", post(keys::rotate))
        .route("/v1/clients", get(clients::list).post(clients::create))
        .route("/v1/clients/{client_id}", get(clients::get).delete(clients::delete))
        .route("/v1/clients/{client_id}/secret", post(clients::rotate_secret))
        .route("/.well-known/jwks.json", get(keys::jwks))
        .route("/.well-known/oauth-authorization-server", get(discovery::metadata))
        .route("/.well-known/openid-configuration", get(discovery::metadata))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());

    routes
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // Above the long-poll of the revocation feed (30 s).
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(40)))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "something went wrong on our side; it has been logged".into())
        }))
        .layer(axum::middleware::from_fn_with_state(state, observe::observe))
        .layer(cors)
}

/// CORS is off (no headers, preflights refused) unless origins are configured; then only
/// those origins, only the methods and headers the API uses, and no cookies.
fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600))
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "not_found", "no such resource".into())
}

async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/oauth2/") {
        return error::OAuthError::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "this endpoint takes POST").into_response();
    }
    problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this method is not allowed here".into())
}
