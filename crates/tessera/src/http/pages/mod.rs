//! Tessera's own pages: server-rendered HTML for people with a browser.
//!
//! Templates are askama's (compile-time checked) in `crates/tessera/templates/`; the
//! stylesheet, the script and the icon are in `crates/tessera/assets/`, compiled into the
//! binary and served by [`assets`] under content-hashed names. Nothing is loaded from another
//! origin and no page has inline script or style: the Content-Security-Policy forbids both.
//!
//! # Writing a page
//!
//! 1. A template `templates/NAME.html` that `{% extends "base.html" %}`, fills the `title` and
//!    `content` blocks, and builds its forms with the partials of `_forms.html`
//!    (`{% import "_forms.html" as forms %}`): `forms::csrf(csrf)` in every POST form,
//!    `forms::field(name, label, kind, autocomplete, value, error)` for every input (label,
//!    autocomplete token and `role="alert"` error included), `forms::alert(message)` for an
//!    error about the whole form, and one `<button type="submit">`.
//! 2. A struct deriving `askama::Template` with `#[template(path = "NAME.html")]` and a
//!    `layout: &'a Layout` field (the layout reads it), plus `csrf: CsrfToken` when it has a form.
//! 3. A handler in a file of this module: it takes `State<Arc<Pages>>` (and `State<AppState>`
//!    for the service), [`CsrfToken`] for its forms, [`PageQuery<T>`] for its query, and, for a
//!    POST, [`VerifiedForm<T>`] (which refuses a missing or wrong CSRF token with the 403 page
//!    before the handler runs). It calls the same service method as the API and returns
//!    `Result<Response, HtmlError>`: `Ok(html(&page))`, or an [`HtmlError`] (`?` on a service
//!    error gives the error page with the API's status and code).
//! 4. A route in [`routes`], inside the page router (its layer sets the CSRF cookie).
//! 5. Cookies only through [`CookiePolicy`] (`pages.cookies`), which names and flags them as the
//!    contract says.
//! 6. A browser test in `tests/browser/` (axe, headers, screenshots; see its `main.rs`).
//!
//! Every page answer carries [`SECURITY_HEADERS`] and `Cache-Control: no-store`.

pub mod account;
pub mod account_factors;
pub mod admin;
pub mod assets;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod factors;
pub mod login;
pub mod logout;
pub mod oidc;
pub mod passkeys;
pub mod password;
pub mod register;
pub mod session;
mod theme;
pub mod verify_email;

pub use cookies::CookiePolicy;
pub use csrf::{CsrfToken, VerifiedForm};
pub use error::HtmlError;

use crate::config::Config;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The Content-Security-Policy of every page.
///
/// `default-src 'self'` covers scripts, styles, images, fonts and fetches: only Tessera's own
/// files, and no inline script or style. `frame-ancestors 'none'`: no page can be framed
/// (clickjacking). `base-uri 'none'` and `object-src 'none'` close two injection routes.
///
/// There is deliberately no `form-action`. Browsers apply it to the redirects that follow a
/// form submission too: the sign-in and consent forms post to Tessera, which then redirects
/// to the client's `redirect_uri` on another origin, and `form-action 'self'` would block
/// that last hop (Chrome does). Listing every registered redirect URI would leak the client
/// list and still break native apps' custom schemes. The forms themselves only ever post to
/// this origin, and their CSRF tokens are checked.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The headers of every page answer, besides `Cache-Control: no-store`.
pub const SECURITY_HEADERS: [(header::HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    // For browsers that predate frame-ancestors.
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// What the pages need, built once at start-up and shared by every handler.
#[derive(Debug)]
pub struct Pages {
    /// What the layout shows and links.
    pub layout: Layout,
    /// How cookies are named and flagged.
    pub cookies: CookiePolicy,
    assets: assets::Assets,
    csrf: csrf::CsrfKey,
    /// `scheme://host[:port]` of the issuer, which a browser sends as `Origin`.
    issuer_origin: String,
}

/// What the base layout reads: the product's name and the URLs of the assets.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `TESSERA_PRODUCT_NAME`.
    pub product_name: String,
    /// The first letter of the name, shown in the mark when there is no logo.
    pub initial: String,
    /// URL of the stylesheet.
    pub stylesheet: String,
    /// URL of the theme stylesheet (the operator's colour).
    pub theme: String,
    /// URL of the script.
    pub script: String,
    /// URL of the icon.
    pub icon: String,
    /// URL of the operator's logo, when configured.
    pub logo: Option<String>,
    /// URL of the admin console's stylesheet.
    pub admin_stylesheet: String,
    /// URL of the admin console's script.
    pub admin_script: String,
    /// URL of the passkey ceremonies' script.
    pub passkey_script: String,
}

/// The pages could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    /// The configured logo cannot be used.
    #[error(transparent)]
    Logo(#[from] assets::LogoError),
}

impl Pages {
    /// Reads the logo and makes the theme; `csrf_key` is the key of the forms' tokens, the
    /// same on every instance (see [`csrf`]).
    pub fn load(config: &Config, csrf_key: &[u8; 32]) -> Result<Pages, PagesError> {
        let assets = assets::Assets::load(&config.branding)?;
        let name = config.branding.product_name.clone();
        let layout = Layout {
            initial: name.chars().find(|c| c.is_alphanumeric()).map(|c| c.to_uppercase().collect()).unwrap_or_default(),
            product_name: name,
            stylesheet: assets.stylesheet.clone(),
            theme: assets.theme.clone(),
            script: assets.script.clone(),
            icon: assets.icon.clone(),
            logo: assets.logo.clone(),
            admin_stylesheet: assets.admin_stylesheet.clone(),
            admin_script: assets.admin_script.clone(),
            passkey_script: assets.passkey_script.clone(),
        };
        Ok(Pages {
            layout,
            cookies: CookiePolicy::for_issuer(&config.issuer),
            assets,
            csrf: csrf::CsrfKey::new(csrf_key),
            issuer_origin: origin_of(&config.issuer),
        })
    }
}

impl FromRef<AppState> for Arc<Pages> {
    fn from_ref(state: &AppState) -> Arc<Pages> {
        state.http().pages.clone()
    }
}

/// `https://host:port` of a URL (the issuer is checked to be `http(s)://host…` at start-up).
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{host}").to_ascii_lowercase()
}

/// The routes of the pages and their assets.
pub fn routes(state: &AppState) -> Router<AppState> {
    // Page routes go here, above the layer that gives the browser its CSRF cookie (a layer
    // wraps only the routes added before it).
    let app = state.clone();
    let credentials = || axum::middleware::from_fn_with_state(app.clone(), crate::http::limit::per_client_address);
    let pages: Router<AppState> = Router::new()
        // Signing in takes credentials: limited per client address like the API's login.
        .route("/login", post(login::sign_in).route_layer(credentials()).get(login::page))
        .route("/login/mfa", post(factors::finish).route_layer(credentials()))
        .route("/login/passkey/options", post(passkeys::sign_in_options).route_layer(credentials()))
        .route("/login/passkey", post(passkeys::sign_in).route_layer(credentials()))
        .route("/register", post(register::register).route_layer(credentials()).get(register::page))
        .route("/logout", get(logout::page).post(logout::sign_out))
        .route("/account", get(account::page))
        .route("/account/sessions/end", post(account::end_session))
        .route("/account/apps/withdraw", post(account::withdraw_app))
        .route("/account/email/verification", post(verify_email::resend))
        .route("/password/forgot", post(password::forgot).route_layer(credentials()).get(password::forgot_page))
        .route("/password/reset", post(password::reset).route_layer(credentials()).get(password::reset_page))
        .route("/verify-email", post(verify_email::verify).route_layer(credentials()).get(verify_email::page))
        .route("/account/totp", get(account_factors::setup).post(account_factors::start))
        .route("/account/totp/confirm", post(account_factors::confirm))
        .route("/account/totp/remove", post(account_factors::remove))
        .route("/account/recovery-codes", post(account_factors::regenerate))
        .route("/account/passkeys/options", post(passkeys::add_options))
        .route("/account/passkeys", post(passkeys::add))
        .route("/account/passkeys/remove", post(passkeys::remove))
        .route("/oauth2/authorize", get(oidc::authorize_get).post(oidc::authorize_post))
        .route("/consent", get(oidc::consent_page).post(oidc::consent_decide))
        .route("/oauth2/logout", get(oidc::logout_get).post(oidc::logout_post))
        .merge(admin::routes());
    let pages = pages.layer(axum::middleware::from_fn_with_state(Arc::<Pages>::from_ref(state), csrf::ensure_cookie));
    Router::new().route("/assets/{name}", get(assets::serve)).merge(pages)
}

/// A 200 page.
pub fn html<T: Template>(page: &T) -> Response {
    html_response(StatusCode::OK, page)
}

/// A page with `status` and the pages' headers. A template that fails to render (a bug: the
/// templates are checked at compile time, only a value's `Display` can fail) is logged and
/// answered with a bare 500.
pub fn html_response<T: Template>(status: StatusCode, page: &T) -> Response {
    let mut response = match page.render() {
        Ok(body) => (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "internal error").into_response()
        }
    };
    set_page_headers(response.headers_mut());
    response
}

/// Adds the security headers and `Cache-Control: no-store`.
pub fn set_page_headers(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Whether an unrouted request should get the HTML 404 page rather than a problem: a browser
/// asking for a page (HTML preferred over JSON), outside the API's paths.
pub fn wants_html(headers: &HeaderMap, path: &str) -> bool {
    let api =
        ["/v1", "/oauth2", "/.well-known"].iter().any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')));
    if api {
        return false;
    }
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let quality = |wanted: &str| {
        accept
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';').map(str::trim);
                let range = parts.next()?;
                let q = parts.find_map(|p| p.strip_prefix("q=")).map_or(Some(1.0), |q| q.parse::<f32>().ok())?;
                range.eq_ignore_ascii_case(wanted).then_some(q)
            })
            .fold(0.0_f32, f32::max)
    };
    let html = quality("text/html");
    html > 0.0 && html >= quality("application/json") && html >= quality("application/problem+json")
}

/// A query string read into `T`, or the 400 error page.
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for PageQuery<T> {
    type Rejection = HtmlError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(PageQuery)
            .map_err(|_| HtmlError::bad_request("invalid_request", "The address of this page is malformed. Check the link and try again."))
    }
}

#[cfg(test)]
mod tests;
