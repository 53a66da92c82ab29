//! Signing out of the pages: `GET /logout` asks to confirm with a button (a link must never
//! sign anyone out), `POST /logout` ends the browser session and the token sessions issued
//! through it (except offline ones), forgets the cookie, and shows the signed-out page.

use super::session::{self, cookie_secret};
use super::{CsrfToken, HtmlError, Layout, Pages, VerifiedForm, html};
use crate::service::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// The confirmation page.
#[derive(Debug, Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// The form's token.
    pub csrf: CsrfToken,
    /// Who is signed in, when someone is.
    pub who: Option<String>,
}

/// The page shown once signed out (also the end of RP-initiated logout without a redirect).
#[derive(Debug, Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
}

/// `GET /logout`.
pub async fn page(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    csrf: CsrfToken,
) -> Result<Response, HtmlError> {
    let who = session::current(&app, &pages, &headers).await?.map(|(_, user)| user.email.as_str().to_owned());
    if who.is_none() {
        return Ok(html(&SignedOutPage { layout: &pages.layout }));
    }
    Ok(html(&LogoutPage { layout: &pages.layout, csrf, who }))
}

/// The confirmation form has nothing but its token.
#[derive(Debug, Deserialize)]
pub struct LogoutForm {}

/// `POST /logout`.
pub async fn sign_out(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(LogoutForm {}): VerifiedForm<LogoutForm>,
) -> Result<Response, HtmlError> {
    if let Some(secret) = cookie_secret(&pages, &headers)
        && let Some(session) = app.browser_session_from_cookie(secret).await?
    {
        app.sign_out(&session, &meta).await?;
    }
    let mut response = html(&SignedOutPage { layout: &pages.layout });
    session::signed_out(&pages, &mut response)?;
    Ok(response)
}
