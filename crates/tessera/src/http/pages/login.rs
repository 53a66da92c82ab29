//! The sign-in page.
//!
//! `GET /login` shows the form (a signed-in person without a `return_to` goes to `/account`
//! instead). `POST /login` checks the password through the same service path as
//! `POST /v1/auth/login` (the failed-login count per login name and address, the same cost
//! whether the account exists or not), behind the same per-address limit; on success it
//! starts a new browser session and redirects to `return_to`, and on failure shows the form
//! again with the identifier kept and the error in `role="alert"`.

use super::session::{self, cookie_secret};
use super::{CsrfToken, HtmlError, Layout, PageQuery, Pages, VerifiedForm, html, html_response};
use crate::http::error::retry_after;
use crate::service::{ClientMeta, Error, LoginId};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

/// Where the browser goes after signing in: a path on this server (an authorization
/// request being resumed, or `/account`), never another site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// Where signing in without an authorization request leads (the contract's rule).
    pub const DEFAULT: &'static str = "/account";

    /// The longest accepted: an authorization request with its parameters fits easily.
    const MAX_LEN: usize = 4096;

    /// A path on this server: it starts with one `/` (`//host` and `/\host` are other sites
    /// to a browser), has no backslash or control character, and is not overlong.
    pub fn parse(s: &str) -> Option<ReturnTo> {
        let local = s.starts_with('/') && !s.starts_with("//") && s.len() <= Self::MAX_LEN;
        let clean = !s.chars().any(|c| c == '\\' || c.is_control());
        (local && clean).then(|| ReturnTo(s.to_owned()))
    }

    /// The parsed value, or [`ReturnTo::DEFAULT`] when absent or not a local path.
    pub fn or_default(s: Option<&str>) -> ReturnTo {
        s.and_then(ReturnTo::parse).unwrap_or_else(|| ReturnTo(Self::DEFAULT.to_owned()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The query of `GET /login`.
#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    /// Fills the identifier (OpenID Connect `login_hint`).
    pub login_hint: Option<String>,
    /// Where to go after signing in.
    pub return_to: Option<String>,
}

/// The sign-in page.
#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// The hidden field of the form.
    pub csrf: CsrfToken,
    /// Carried in a hidden field.
    pub return_to: ReturnTo,
    /// The identifier to show again (or the `login_hint`).
    pub identifier: String,
    /// About the whole form (wrong credentials, locked out): shown in `role="alert"`.
    pub error: Option<String>,
    /// About the identifier field.
    pub identifier_error: Option<String>,
    /// About the password field.
    pub password_error: Option<String>,
    /// Whether to offer `/register`.
    pub registration_open: bool,
    /// Whether to offer signing in with a passkey (`#passkey`, and the autofill).
    pub passkeys: bool,
}

/// The longest `login_hint` shown back in the form.
const LOGIN_HINT_MAX_CHARS: usize = 320;

/// `GET /login`.
pub async fn page(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    csrf: CsrfToken,
    PageQuery(query): PageQuery<LoginQuery>,
) -> Result<Response, HtmlError> {
    if query.return_to.is_none() && session::current(&app, &pages, &headers).await?.is_some() {
        return Ok(session::see_other(ReturnTo::DEFAULT));
    }
    Ok(form(&pages, csrf, query, app.settings().registration_open, app.passkeys_enabled()))
}

/// The sign-in form for `query`, empty but for its `login_hint`.
pub fn form(pages: &Pages, csrf: CsrfToken, query: LoginQuery, registration_open: bool, passkeys: bool) -> Response {
    let identifier = query.login_hint.unwrap_or_default().chars().filter(|c| !c.is_control()).take(LOGIN_HINT_MAX_CHARS).collect();
    let page = LoginPage {
        layout: &pages.layout,
        csrf,
        return_to: ReturnTo::or_default(query.return_to.as_deref()),
        identifier,
        error: None,
        identifier_error: None,
        password_error: None,
        registration_open,
        passkeys,
    };
    html(&page)
}

/// The fields of the sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// An email (it has an `@`) or a username.
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    return_to: Option<String>,
}

/// `POST /login`.
pub async fn sign_in(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<LoginForm>,
) -> Result<Response, HtmlError> {
    let return_to = ReturnTo::or_default(form.return_to.as_deref());
    let identifier = form.identifier.trim().to_owned();
    let again = |status: StatusCode, error: Option<String>, identifier_error: Option<String>, password_error: Option<String>| {
        let page = LoginPage {
            layout: &pages.layout,
            csrf: csrf.clone(),
            return_to: return_to.clone(),
            identifier: identifier.chars().take(LOGIN_HINT_MAX_CHARS).collect(),
            error,
            identifier_error,
            password_error,
            registration_open: app.settings().registration_open,
            passkeys: app.passkeys_enabled(),
        };
        html_response(status, &page)
    };
    if identifier.is_empty() || form.password.is_empty() {
        let missing = |empty: bool, what: &str| empty.then(|| format!("Enter your {what}."));
        return Ok(again(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            missing(identifier.is_empty(), "email or username"),
            missing(form.password.is_empty(), "password"),
        ));
    }
    let id = if identifier.contains('@') { LoginId::Email(identifier.clone()) } else { LoginId::Username(identifier.clone()) };
    match app.sign_in_browser(id, form.password, &meta, cookie_secret(&pages, &headers)).await {
        Ok(signed_in) => session::signed_in(&pages, &signed_in, &return_to),
        Err(Error::MfaRequired { mfa_token, methods }) => {
            Ok(super::factors::second_step(&pages, csrf.clone(), return_to.clone(), mfa_token, &methods))
        }
        Err(Error::InvalidCredentials) => Ok(again(
            StatusCode::UNAUTHORIZED,
            Some("That email or username and password do not match an account. Check them and try again.".to_owned()),
            None,
            None,
        )),
        Err(Error::AccountDisabled) => Ok(again(
            StatusCode::FORBIDDEN,
            Some("This account is disabled. Contact your administrator to have it enabled again.".to_owned()),
            None,
            None,
        )),
        Err(Error::EmailNotVerified) => Ok(again(
            StatusCode::FORBIDDEN,
            Some("Confirm your email address first: open the link we mailed to it, then sign in.".to_owned()),
            None,
            None,
        )),
        Err(e @ Error::RateLimited { .. }) => {
            let wait = retry_after(&e).unwrap_or_default().as_secs().max(1);
            let minutes = wait.div_ceil(60);
            let message = format!(
                "Too many failed attempts to sign in to this account from here. Wait {} before trying again.",
                if minutes <= 1 { "a minute".to_owned() } else { format!("{minutes} minutes") }
            );
            let mut response = again(StatusCode::TOO_MANY_REQUESTS, Some(message), None, None);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_are_places_to_return_to() {
        for good in ["/account", "/oauth2/authorize?client_id=a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb", "/"] {
            assert_eq!(ReturnTo::parse(good).map(|r| r.0), Some(good.to_owned()));
        }
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "/a\\b", "account", "", "/a\nb", "javascript:alert(1)"] {
            assert_eq!(ReturnTo::parse(bad), None, "{bad}");
        }
        assert_eq!(ReturnTo::or_default(Some("//evil.example")).as_str(), "/account");
        assert_eq!(ReturnTo::or_default(None).as_str(), "/account");
    }
}
