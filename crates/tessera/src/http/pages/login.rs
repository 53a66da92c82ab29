//! The sign-in page.
//!
//! `GET /login` is ready but not routed yet: signing in from it needs browser sessions, and
//! the page is routed together with its `POST` once they exist. The `POST` handler takes a
//! `VerifiedForm` of the form's fields (`identifier`, `password`, `return_to`), calls the same
//! service method as `POST /v1/auth/login` (lockout, per-address limits and constant-time
//! answer included) and, on failure, renders [`LoginPage`] again with `error` set.

use super::{CsrfToken, HtmlError, Layout, PageQuery, Pages, html};
use askama::Template;
use axum::extract::State;
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
}

/// The longest `login_hint` shown back in the form.
const LOGIN_HINT_MAX_CHARS: usize = 320;

/// `GET /login`.
pub async fn page(
    State(pages): State<Arc<Pages>>,
    csrf: CsrfToken,
    PageQuery(query): PageQuery<LoginQuery>,
) -> Result<Response, HtmlError> {
    let identifier = query.login_hint.unwrap_or_default().chars().filter(|c| !c.is_control()).take(LOGIN_HINT_MAX_CHARS).collect();
    let page = LoginPage {
        layout: &pages.layout,
        csrf,
        return_to: ReturnTo::or_default(query.return_to.as_deref()),
        identifier,
        error: None,
        identifier_error: None,
        password_error: None,
    };
    Ok(html(&page))
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
