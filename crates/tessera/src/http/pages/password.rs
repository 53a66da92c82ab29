//! Password recovery pages: `/password/forgot` asks for a reset link (through the same
//! service path as `POST /v1/auth/password/forgot`, behind the same per-address limit), and
//! `/password/reset?token=…` sets the new password. Opening the link (`GET`) never spends it:
//! the token is only used when the form is submitted.

use super::{CsrfToken, HtmlError, Layout, PageQuery, Pages, VerifiedForm, html, html_response};
use crate::service::{ClientMeta, Error};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// The page that asks for a reset link.
#[derive(Debug, Template)]
#[template(path = "password_forgot.html")]
pub struct ForgotPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// The form's token.
    pub csrf: CsrfToken,
    /// The address to show again.
    pub email: String,
    /// What is wrong with it.
    pub email_error: Option<String>,
    /// About the whole form.
    pub error: Option<String>,
    /// The request was accepted.
    pub sent: bool,
}

/// `GET /password/forgot`.
pub async fn forgot_page(State(pages): State<Arc<Pages>>, csrf: CsrfToken) -> Response {
    html(&ForgotPage { layout: &pages.layout, csrf, email: String::new(), email_error: None, error: None, sent: false })
}

/// The field of the forgot form.
#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /password/forgot`: the same answer whether or not an account has the address.
pub async fn forgot(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    meta: ClientMeta,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<ForgotForm>,
) -> Result<Response, HtmlError> {
    let email: String = form.email.trim().chars().take(320).collect();
    let mut page = ForgotPage { layout: &pages.layout, csrf, email, email_error: None, error: None, sent: false };
    let status = match app.tessera().forgot_password(&form.email, &meta) {
        Ok(()) => {
            page.sent = true;
            StatusCode::OK
        }
        Err(Error::Validation(_)) => {
            page.email_error = Some("Enter an email address such as name@example.com.".to_owned());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(Error::EmailUnavailable) => {
            page.error = Some("This server cannot send mail. Ask your administrator to reset your password.".to_owned());
            StatusCode::SERVICE_UNAVAILABLE
        }
        Err(e) => return Err(e.into()),
    };
    Ok(html_response(status, &page))
}

/// The page that sets a new password.
#[derive(Debug, Template)]
#[template(path = "password_reset.html")]
pub struct ResetPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// The form's token.
    pub csrf: CsrfToken,
    /// The link's token, carried in a hidden field.
    pub token: String,
    /// What is wrong with the new password.
    pub password_error: Option<String>,
    /// About the link (unknown, used, expired).
    pub error: Option<String>,
    /// The password was set.
    pub done: bool,
}

/// The query of `GET /password/reset`.
#[derive(Debug, Default, Deserialize)]
pub struct LinkQuery {
    /// The link's token.
    #[serde(default)]
    pub token: Option<String>,
}

/// The longest token carried back into a form (real ones are about 50 characters).
const TOKEN_MAX_CHARS: usize = 200;

fn carried(token: Option<&str>) -> String {
    token.unwrap_or_default().chars().filter(|c| c.is_ascii_graphic()).take(TOKEN_MAX_CHARS).collect()
}

/// `GET /password/reset?token=…`: shows the form; the token is not looked at.
pub async fn reset_page(State(pages): State<Arc<Pages>>, csrf: CsrfToken, PageQuery(query): PageQuery<LinkQuery>) -> Response {
    let token = carried(query.token.as_deref());
    let error = token.is_empty().then(|| "This link is incomplete. Open the whole link from the mail.".to_owned());
    html(&ResetPage { layout: &pages.layout, csrf, token, password_error: None, error, done: false })
}

/// The fields of the reset form.
#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

/// `POST /password/reset`: spends the link and sets the password.
pub async fn reset(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    meta: ClientMeta,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<ResetForm>,
) -> Result<Response, HtmlError> {
    let token = carried(Some(&form.token));
    let mut page = ResetPage { layout: &pages.layout, csrf, token, password_error: None, error: None, done: false };
    let status = match app.reset_password(&form.token, form.new_password, &meta).await {
        Ok(()) => {
            page.done = true;
            StatusCode::OK
        }
        Err(Error::WeakPassword(why)) => {
            page.password_error = Some(super::register::sentence(&why));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(Error::InvalidLink) => {
            page.error = Some("This link does not work any more: it was used already, or it expired. Ask for a new one.".to_owned());
            StatusCode::BAD_REQUEST
        }
        Err(e) => return Err(e.into()),
    };
    Ok(html_response(status, &page))
}
