//! The second step of signing in on the pages: after the right password, a person with a
//! second factor gets this form (a TOTP or recovery code, `autocomplete="one-time-code"`);
//! `POST /login/mfa` finishes the sign-in through the same service path as
//! `POST /v1/auth/login/mfa` (wrong codes count against the account's failed-login limit).

use super::login::{LoginPage, ReturnTo};
use super::session::{self, cookie_secret};
use super::{CsrfToken, HtmlError, Layout, Pages, VerifiedForm, html_response};
use crate::http::error::retry_after;
use crate::service::{ClientMeta, Error};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// The second step's page.
#[derive(Debug, Template)]
#[template(path = "login_mfa.html")]
pub struct MfaPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// The hidden field of the form.
    pub csrf: CsrfToken,
    /// Carried in a hidden field.
    pub return_to: ReturnTo,
    /// The pending sign-in, carried in a hidden field.
    pub mfa_token: String,
    /// Whether a TOTP code is accepted.
    pub totp: bool,
    /// Whether a recovery code is accepted.
    pub recovery: bool,
    /// Whether a passkey is offered (`#passkey`).
    pub passkey: bool,
    /// About the whole form: shown in `role="alert"`.
    pub error: Option<String>,
    /// About the code field.
    pub code_error: Option<String>,
}

/// The second step for a sign-in the password check left pending.
pub fn second_step(pages: &Pages, csrf: CsrfToken, return_to: ReturnTo, mfa_token: String, methods: &[&str]) -> Response {
    let page = MfaPage {
        layout: &pages.layout,
        csrf,
        return_to,
        mfa_token,
        totp: methods.contains(&"totp"),
        recovery: methods.contains(&"recovery_code"),
        passkey: methods.contains(&"passkey"),
        error: None,
        code_error: None,
    };
    html_response(StatusCode::OK, &page)
}

/// The fields of the second step's form.
#[derive(Debug, Deserialize)]
pub struct MfaForm {
    #[serde(default)]
    mfa_token: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    return_to: Option<String>,
}

/// `POST /login/mfa`.
pub async fn finish(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<MfaForm>,
) -> Result<Response, HtmlError> {
    let return_to = ReturnTo::or_default(form.return_to.as_deref());
    let again = |status: StatusCode, error: Option<String>, code_error: Option<String>| {
        let page = MfaPage {
            layout: &pages.layout,
            csrf: csrf.clone(),
            return_to: return_to.clone(),
            mfa_token: form.mfa_token.clone(),
            totp: true,
            recovery: true,
            passkey: false,
            error,
            code_error,
        };
        html_response(status, &page)
    };
    if form.code.trim().is_empty() {
        return Ok(again(StatusCode::UNPROCESSABLE_ENTITY, None, Some("Enter the code.".to_owned())));
    }
    match app.sign_in_browser_mfa(&form.mfa_token, &form.code, &meta, cookie_secret(&pages, &headers)).await {
        Ok(signed_in) => session::signed_in(&pages, &signed_in, &return_to),
        Err(Error::InvalidCode) => {
            Ok(again(StatusCode::UNAUTHORIZED, None, Some("That code is wrong or was used already. Check it and try again.".to_owned())))
        }
        Err(Error::InvalidMfaToken) => {
            let page = LoginPage {
                layout: &pages.layout,
                csrf: csrf.clone(),
                return_to: return_to.clone(),
                identifier: String::new(),
                error: Some("This sign-in has expired or ended. Sign in again with your password.".to_owned()),
                identifier_error: None,
                password_error: None,
                registration_open: app.settings().registration_open,
                passkeys: app.passkeys_enabled(),
            };
            Ok(html_response(StatusCode::UNAUTHORIZED, &page))
        }
        Err(Error::AccountDisabled) => Ok(again(
            StatusCode::FORBIDDEN,
            Some("This account is disabled. Contact your administrator to have it enabled again.".to_owned()),
            None,
        )),
        Err(e @ Error::RateLimited { .. }) => {
            let wait = retry_after(&e).unwrap_or_default().as_secs().max(1);
            let message = format!("Too many failed attempts to sign in to this account. Wait {} before trying again.", minutes(wait));
            let mut response = again(StatusCode::TOO_MANY_REQUESTS, Some(message), None);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

fn minutes(seconds: u64) -> String {
    let minutes = seconds.div_ceil(60);
    if minutes <= 1 { "a minute".to_owned() } else { format!("{minutes} minutes") }
}
