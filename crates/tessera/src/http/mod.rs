//! The HTTP layer (axum only): routes, extractors, and the one error type that becomes the
//! one response shape. Handlers extract, call one use case, and map its result.

mod audit;
mod auth;
pub mod clients;
mod discovery;
mod email;
pub mod error;
pub mod extract;
mod factors;
mod keys;
pub(crate) mod limit;
pub mod oauth;
mod observe;
pub mod openapi;
mod ops;
pub mod pages;
mod passkeys;
mod revocations;
mod users;
pub mod views;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use error::problem;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every route Tessera serves, with its middleware.
pub fn router(state: AppState) -> Router {
    let cors = cors(&state.http().cors_origins);
    let routes = credential_routes()
        .router
        // Credential endpoints: limited per client address.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), limit::per_client_address))
        .merge(
            // What resource servers call for each request they serve: only failures count.
            client_checked_routes()
                .router
                .route_layer(axum::middleware::from_fn_with_state(state.clone(), limit::failures_per_client_address)),
        )
        .merge(other_routes().router)
        .merge(discovery::issuer_path_routes(&state.settings().issuer))
        .merge(pages::routes(&state))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());

    routes
        // An `HtmlError` from any route becomes the error page.
        .layer(axum::middleware::from_fn_with_state(state.http().pages.clone(), pages::error::render_errors))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(axum::middleware::from_fn(deadline))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "something went wrong on our side; it has been logged".into())
        }))
        .layer(axum::middleware::from_fn_with_state(state, observe::observe))
        .layer(tower::util::option_layer(cors))
}

/// Above the long-poll of the revocation feed (30 s).
const REQUEST_DEADLINE: Duration = Duration::from_secs(40);

/// A request still running at the deadline is dropped and answered 503 as a problem.
async fn deadline(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(response) => response,
        Err(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "request_timeout", "the request took too long and was abandoned".into()),
    }
}

/// Every `(path, method)` the router serves, in the router's path syntax (which is OpenAPI's).
/// `GET` routes also answer `HEAD`, as axum's do. The OpenAPI document must list exactly these.
pub fn served_routes() -> Vec<(&'static str, Method)> {
    let mut served = limited_routes();
    served.extend(other_routes().served);
    served
}

/// The routes behind a per-address limit, which may answer 429.
pub fn limited_routes() -> Vec<(&'static str, Method)> {
    let mut limited = credential_routes().served;
    limited.extend(client_checked_routes().served);
    limited
}

/// The endpoints that take credentials, limited per client address.
fn credential_routes() -> Routes {
    Routes::default()
        .post("/v1/auth/register", auth::register)
        .post("/v1/auth/login", auth::login)
        .post("/v1/auth/login/mfa", factors::login_mfa)
        .post("/v1/auth/passkey/options", passkeys::options)
        .post("/v1/auth/passkey", passkeys::sign_in)
        .post("/v1/auth/refresh", auth::refresh)
        .post("/v1/auth/password/forgot", email::forgot_password)
        .post("/v1/auth/password/reset", email::reset_password)
        .post("/v1/auth/email/verify", email::verify_email)
        .post("/oauth2/token", oauth::token)
        .post("/oauth2/revoke", oauth::revoke)
}

/// The endpoints resource servers call for each request they serve, authenticated as a
/// client: limited per client address on their failures only, so a resource server that
/// authenticates correctly is never starved (`/v1/auth/verify` checks a bearer token, with
/// nothing to guess, and is not limited).
fn client_checked_routes() -> Routes {
    Routes::default().post("/oauth2/introspect", oauth::introspect).get("/v1/revocations", revocations::feed)
}

/// The other endpoints.
fn other_routes() -> Routes {
    Routes::default()
        .get("/", ops::root)
        .get("/healthz", ops::healthz)
        .get("/readyz", ops::readyz)
        .get("/metrics", ops::metrics)
        .get("/openapi.json", openapi::document)
        .post("/v1/auth/logout", auth::logout)
        .post("/v1/auth/logout-all", auth::logout_all)
        .get("/v1/auth/verify", auth::verify)
        .post("/v1/auth/verify", auth::verify)
        .get("/v1/users", users::list_users)
        .get("/v1/users/me", users::me)
        .patch("/v1/users/me", users::patch_me)
        .delete("/v1/users/me", users::delete_me)
        .put("/v1/users/me/password", users::change_password)
        .post("/v1/users/me/email/verification", email::resend_verification)
        .get("/v1/users/me/sessions", users::sessions)
        .delete("/v1/users/me/sessions/{id}", users::end_session)
        .post("/v1/users/me/totp", factors::enrol_totp)
        .delete("/v1/users/me/totp", factors::remove_totp)
        .post("/v1/users/me/totp/confirm", factors::confirm_totp)
        .post("/v1/users/me/recovery-codes", factors::regenerate_recovery_codes)
        .post("/v1/users/me/passkeys/registration", passkeys::start_registration)
        .get("/v1/users/me/passkeys", passkeys::list)
        .post("/v1/users/me/passkeys", passkeys::finish_registration)
        .delete("/v1/users/me/passkeys/{id}", passkeys::remove)
        .get("/v1/users/{id}", users::get_user)
        .patch("/v1/users/{id}", users::admin_patch_user)
        .delete("/v1/users/{id}", users::admin_delete_user)
        .delete("/v1/users/{id}/mfa", factors::admin_reset_mfa)
        .get("/v1/audit", audit::trail)
        .get("/v1/keys", keys::list)
        .post("/v1/keys/rotate", keys::rotate)
        .get("/v1/clients", clients::list)
        .post("/v1/clients", clients::create)
        .get("/v1/clients/{client_id}", clients::get)
        .patch("/v1/clients/{client_id}", clients::patch)
        .delete("/v1/clients/{client_id}", clients::delete)
        .post("/v1/clients/{client_id}/secret", clients::rotate_secret)
        .get("/oauth2/userinfo", oauth::userinfo)
        .post("/oauth2/userinfo", oauth::userinfo_post)
        .get("/.well-known/jwks.json", keys::jwks)
        .get("/.well-known/oauth-authorization-server", discovery::metadata)
        .get("/.well-known/openid-configuration", discovery::metadata)
}

/// A router and the list of what it serves, built by the same calls, so that the list (and
/// the test holding the OpenAPI document to it) cannot miss a route.
#[derive(Default)]
struct Routes {
    router: Router<AppState>,
    served: Vec<(&'static str, Method)>,
}

impl Routes {
    fn add(mut self, path: &'static str, method: Method, route: MethodRouter<AppState>) -> Self {
        // axum merges the method routers of a path routed more than once.
        self.router = self.router.route(path, route);
        self.served.push((path, method));
        self
    }

    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(path, Method::GET, routing::get(handler))
    }

    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(path, Method::POST, routing::post(handler))
    }

    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(path, Method::PUT, routing::put(handler))
    }

    fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(path, Method::PATCH, routing::patch(handler))
    }

    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(path, Method::DELETE, routing::delete(handler))
    }
}

/// CORS is off (no layer: no headers, and `OPTIONS` is a 405 like any unserved method) unless
/// origins are configured; then only those origins, only the methods and headers the API
/// uses, and no cookies.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    if allowed.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    Some(layer)
}

/// A browser asking for a page gets the 404 page; everything else a problem.
async fn not_found(headers: axum::http::HeaderMap, uri: axum::http::Uri) -> Response {
    if pages::wants_html(&headers, uri.path()) {
        return pages::HtmlError::not_found().into_response();
    }
    problem(StatusCode::NOT_FOUND, "not_found", "no such resource".into())
}

async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/oauth2/") {
        return error::OAuthError::new(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "this endpoint takes POST").into_response();
    }
    problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this method is not allowed here".into())
}
