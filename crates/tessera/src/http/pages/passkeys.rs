//! Passkeys on the pages: signing in with one on `/login` (the `#passkey` button, and the
//! browser's autofill through conditional UI), as the second step of a password sign-in, and
//! the "Passkeys" section of `/account` (`templates/_account_passkeys.html`) with
//! `#add-passkey` and a Remove button for each.
//!
//! A ceremony is two requests, driven by `assets/passkeys.js`: it fetches the options from a
//! `.../options` endpoint (a POST carrying the page's CSRF token, answered with JSON), runs
//! `navigator.credentials.get` or `.create`, and submits a hidden form with the credential
//! (as JSON) to the finishing endpoint, which answers like any form of the pages (a redirect,
//! or the page again with its error). Each calls the API's service method with the browser
//! session's person as caller, so the same rules hold (a recent sign-in to add or remove a
//! passkey, challenges single use for five minutes, wrong passkeys counting against the
//! account's lockout in the second step).

use super::account::where_and_when;
use super::admin::to_sign_in;
use super::factors::MfaPage;
use super::login::{LoginPage, ReturnTo};
use super::session::{self, cookie_secret, see_other};
use super::{CsrfToken, HtmlError, Pages, VerifiedForm, html_response};
use crate::domain::UserId;
use crate::http::error::ApiError;
use crate::service::{Ceremony, ClientMeta, Error, PasskeyInfo};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// Where the section sends a browser back to.
const SECTION: &str = "#passkeys-title";

/// One passkey in the section of `/account`.
#[derive(Debug)]
pub struct PasskeyRow {
    /// Its id, for the Remove form.
    pub id: String,
    /// Its name.
    pub name: String,
    /// "Added 30 Nov 2026 · Last used 1 Dec 2026".
    pub detail: String,
}

/// The "Passkeys" section of `/account`; `None` when passkeys are off.
#[derive(Debug)]
pub struct PasskeysSection {
    /// The person's passkeys, oldest first.
    pub passkeys: Vec<PasskeyRow>,
}

impl PasskeysSection {
    /// The section for `user`, when passkeys are on.
    pub async fn of(app: &AppState, user: UserId) -> Result<Option<PasskeysSection>, HtmlError> {
        if !app.passkeys_enabled() {
            return Ok(None);
        }
        let passkeys = app.passkeys_of(user).await?.into_iter().map(row).collect();
        Ok(Some(PasskeysSection { passkeys }))
    }
}

fn row(p: PasskeyInfo) -> PasskeyRow {
    let added = where_and_when(None, "Added", p.created_at);
    let used = p.last_used_at.map_or_else(|| "not used yet".to_owned(), |t| where_and_when(None, "last used", t));
    PasskeyRow { id: p.id, name: p.name, detail: format!("{added} · {used}") }
}

/// The notice `/account` shows after one of this section's actions (`?passkey=...`).
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "added" => "The passkey was added. You can sign in with it now.",
        "removed" => "The passkey was removed.",
        _ => return None,
    })
}

/// A ceremony's options as the script reads them, or the error as a problem (the script
/// shows a message; `fresh_token_required` sends the browser to sign in again).
fn ceremony_json(result: Result<Ceremony, Error>) -> Response {
    match result {
        Ok(c) => axum::Json(serde_json::json!({ "challenge_id": c.challenge_id, "options": c.options })).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The form of the sign-in options request.
#[derive(Debug, Deserialize)]
pub struct OptionsForm {
    /// The pending password sign-in, for the second step.
    #[serde(default)]
    mfa_token: Option<String>,
}

/// `POST /login/passkey/options`: a sign-in ceremony (any passkey, or with `mfa_token` the
/// person's), as JSON.
pub async fn sign_in_options(State(app): State<AppState>, VerifiedForm(form): VerifiedForm<OptionsForm>) -> Response {
    let mfa_token = form.mfa_token.filter(|t| !t.is_empty());
    ceremony_json(app.passkey_options_for_browser(mfa_token.as_deref()).await)
}

/// The hidden form the script submits with the credential.
#[derive(Debug, Deserialize)]
pub struct AssertionForm {
    #[serde(default)]
    challenge_id: String,
    /// The `PublicKeyCredential` as JSON.
    #[serde(default)]
    credential: String,
    #[serde(default)]
    return_to: Option<String>,
    /// Set in the second step of a password sign-in.
    #[serde(default)]
    mfa_token: Option<String>,
}

/// `POST /login/passkey`: signs the browser in with the passkey and continues to
/// `return_to` (an authorization request, or `/account`), like a password sign-in.
pub async fn sign_in(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<AssertionForm>,
) -> Result<Response, HtmlError> {
    let return_to = ReturnTo::or_default(form.return_to.as_deref());
    let credential: serde_json::Value = serde_json::from_str(&form.credential).unwrap_or_default();
    let previous = cookie_secret(&pages, &headers);
    let mfa_token = form.mfa_token.filter(|t| !t.is_empty());
    let result = match &mfa_token {
        None => app.sign_in_browser_passkey(&form.challenge_id, credential, &meta, previous).await,
        Some(token) => app.sign_in_browser_mfa_passkey(token, &form.challenge_id, credential, &meta, previous).await,
    };
    let login_again = |status: StatusCode, message: &str| {
        let page = LoginPage {
            layout: &pages.layout,
            csrf: csrf.clone(),
            return_to: return_to.clone(),
            identifier: String::new(),
            error: Some(message.to_owned()),
            identifier_error: None,
            password_error: None,
            registration_open: app.settings().registration_open,
            passkeys: app.passkeys_enabled(),
        };
        html_response(status, &page)
    };
    match (result, mfa_token) {
        (Ok(signed_in), _) => session::signed_in(&pages, &signed_in, &return_to),
        (Err(Error::InvalidCode), Some(mfa_token)) => {
            let page = MfaPage {
                layout: &pages.layout,
                csrf: csrf.clone(),
                return_to: return_to.clone(),
                mfa_token,
                totp: true,
                recovery: true,
                passkey: true,
                error: Some("That passkey was not accepted. Try again, or enter a code.".to_owned()),
                code_error: None,
            };
            Ok(html_response(StatusCode::UNAUTHORIZED, &page))
        }
        (Err(Error::InvalidCredentials | Error::InvalidChallenge | Error::Validation(_)), None) => {
            Ok(login_again(StatusCode::UNAUTHORIZED, "That passkey was not accepted. Try again, or sign in with your password."))
        }
        (Err(Error::InvalidMfaToken | Error::InvalidChallenge), Some(_)) => {
            Ok(login_again(StatusCode::UNAUTHORIZED, "This sign-in has expired or ended. Sign in again with your password."))
        }
        (Err(Error::AccountDisabled), _) => {
            Ok(login_again(StatusCode::FORBIDDEN, "This account is disabled. Contact your administrator to have it enabled again."))
        }
        (Err(Error::EmailNotVerified), _) => {
            Ok(login_again(StatusCode::FORBIDDEN, "Confirm your email address first: open the link we mailed to it, then sign in."))
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// The signed-in person's caller, or `None` (the script then sends the browser to sign in).
async fn caller(app: &AppState, pages: &Pages, headers: &HeaderMap) -> Result<Option<tessera_verify::Claims>, HtmlError> {
    Ok(session::current(app, pages, headers).await?.map(|(browser, user)| app.browser_caller(&browser, &user)))
}

/// The form of a button that needs nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct ButtonForm {}

/// `POST /account/passkeys/options`: a registration ceremony for the signed-in person
/// (recent sign-in required), as JSON.
pub async fn add_options(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let Some(claims) = caller(&app, &pages, &headers).await? else {
        return Ok(ceremony_json(Err(Error::FreshTokenRequired)));
    };
    Ok(ceremony_json(app.start_passkey_registration(&claims).await))
}

/// The hidden form the script submits with the new credential.
#[derive(Debug, Deserialize)]
pub struct RegistrationForm {
    #[serde(default)]
    challenge_id: String,
    /// The `PublicKeyCredential` as JSON.
    #[serde(default)]
    credential: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /account/passkeys`: adds the passkey the browser made.
pub async fn add(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(form): VerifiedForm<RegistrationForm>,
) -> Result<Response, HtmlError> {
    let Some(claims) = caller(&app, &pages, &headers).await? else {
        return Ok(to_sign_in("/account"));
    };
    let credential: serde_json::Value = serde_json::from_str(&form.credential).unwrap_or_default();
    match app.finish_passkey_registration(&claims, &form.challenge_id, credential, form.name.as_deref(), &meta).await {
        Ok(_) => Ok(see_other(&format!("/account?passkey=added{SECTION}"))),
        Err(e) => Err(e.into()),
    }
}

/// The form of each passkey's Remove button.
#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    id: String,
}

/// `POST /account/passkeys/remove`: removes one of the person's passkeys (recent sign-in
/// required).
pub async fn remove(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(form): VerifiedForm<RemoveForm>,
) -> Result<Response, HtmlError> {
    let Some(claims) = caller(&app, &pages, &headers).await? else {
        return Ok(to_sign_in("/account"));
    };
    match app.remove_passkey(&claims, &form.id, &meta).await {
        Ok(()) | Err(Error::NotFound("passkey")) => Ok(see_other(&format!("/account?passkey=removed{SECTION}"))),
        Err(Error::FreshTokenRequired) => Ok(to_sign_in("/account")),
        Err(e) => Err(e.into()),
    }
}
