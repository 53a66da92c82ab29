//! The registration page, offered while `TESSERA_REGISTRATION=open`: an account from an
//! email, an optional username and a password, signed in at once like `/login` does.

use super::login::ReturnTo;
use super::session::{self, cookie_secret};
use super::{CsrfToken, HtmlError, Layout, PageQuery, Pages, VerifiedForm, html, html_response};
use crate::service::{ClientMeta, Error, Registration};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// The registration page.
#[derive(Debug, Default)]
pub struct Fields {
    /// The email to show again.
    pub email: String,
    /// The username to show again.
    pub username: String,
    /// What is wrong with the email.
    pub email_error: Option<String>,
    /// What is wrong with the username.
    pub username_error: Option<String>,
    /// What is wrong with the password.
    pub password_error: Option<String>,
}

/// The registration page.
#[derive(Debug, Template)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// The form's token.
    pub csrf: CsrfToken,
    /// Carried in a hidden field.
    pub return_to: ReturnTo,
    /// The fields and their errors.
    pub fields: Fields,
}

/// The query of `GET /register`.
#[derive(Debug, Default, Deserialize)]
pub struct RegisterQuery {
    /// Where to go once registered.
    pub return_to: Option<String>,
}

/// `GET /register` (404 while registration is closed).
pub async fn page(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    csrf: CsrfToken,
    PageQuery(query): PageQuery<RegisterQuery>,
) -> Result<Response, HtmlError> {
    if !app.settings().registration_open {
        return Err(HtmlError::not_found());
    }
    if query.return_to.is_none() && session::current(&app, &pages, &headers).await?.is_some() {
        return Ok(session::see_other(ReturnTo::DEFAULT));
    }
    let return_to = ReturnTo::or_default(query.return_to.as_deref());
    Ok(html(&RegisterPage { layout: &pages.layout, csrf, return_to, fields: Fields::default() }))
}

/// The fields of the registration form.
#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    return_to: Option<String>,
}

/// `POST /register`.
pub async fn register(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<RegisterForm>,
) -> Result<Response, HtmlError> {
    if !app.settings().registration_open {
        return Err(HtmlError::not_found());
    }
    let return_to = ReturnTo::or_default(form.return_to.as_deref());
    let username = form.username.trim().to_owned();
    let mut fields =
        Fields { email: form.email.trim().chars().take(320).collect(), username: username.chars().take(64).collect(), ..Fields::default() };
    let reg =
        Registration { email: form.email, password: form.password, username: (!username.is_empty()).then_some(username), admin: false };
    let status = match app.register_browser(reg, &meta, cookie_secret(&pages, &headers)).await {
        Ok(signed_in) => return session::signed_in(&pages, &signed_in, &return_to),
        Err(Error::Validation(message)) => {
            match message.split_once(": ") {
                Some(("username", why)) => fields.username_error = Some(sentence(why)),
                Some((_, why)) => fields.email_error = Some(sentence(why)),
                None => fields.email_error = Some(sentence(&message)),
            }
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(Error::WeakPassword(why)) => {
            fields.password_error = Some(sentence(&why));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(Error::EmailTaken) => {
            fields.email_error = Some("An account with this email already exists. Sign in instead.".to_owned());
            StatusCode::CONFLICT
        }
        Err(Error::UsernameTaken) => {
            fields.username_error = Some("This username is taken. Choose another, or leave it empty.".to_owned());
            StatusCode::CONFLICT
        }
        Err(Error::RegistrationClosed) => return Err(HtmlError::not_found()),
        Err(Error::EmailNotVerified) => {
            return Err(HtmlError::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                "Your account is created. Open the link we mailed to your address to confirm it, then sign in.",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(html_response(status, &RegisterPage { layout: &pages.layout, csrf, return_to, fields }))
}

/// A service message fragment as a sentence.
pub(crate) fn sentence(fragment: &str) -> String {
    let mut chars = fragment.trim().chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}
