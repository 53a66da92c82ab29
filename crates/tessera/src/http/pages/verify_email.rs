//! `/verify-email?token=…`: the page a verification link opens. Opening it (`GET`) only shows
//! a button; the link is spent when the button is pressed (`POST`), so a mail scanner that
//! follows links cannot use it up.

use super::password::LinkQuery;
use super::session::{self, see_other};
use super::{CsrfToken, HtmlError, Layout, PageQuery, Pages, VerifiedForm, html, html_response};
use crate::service::{ClientMeta, Error};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// The confirmation page.
#[derive(Debug, Template)]
#[template(path = "verify_email.html")]
pub struct VerifyPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// The form's token.
    pub csrf: CsrfToken,
    /// The link's token, carried in a hidden field.
    pub token: String,
    /// About the link (unknown, used, expired).
    pub error: Option<String>,
    /// The address just verified.
    pub verified: Option<String>,
}

/// `GET /verify-email?token=…`: a button; the token is not looked at.
pub async fn page(State(pages): State<Arc<Pages>>, csrf: CsrfToken, PageQuery(query): PageQuery<LinkQuery>) -> Response {
    let token: String = query.token.unwrap_or_default().chars().filter(|c| c.is_ascii_graphic()).take(200).collect();
    let error = token.is_empty().then(|| "This link is incomplete. Open the whole link from the mail.".to_owned());
    html(&VerifyPage { layout: &pages.layout, csrf, token, error, verified: None })
}

/// The field of the confirmation form.
#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    token: String,
}

/// `POST /verify-email`: spends the link.
pub async fn verify(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    meta: ClientMeta,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<VerifyForm>,
) -> Result<Response, HtmlError> {
    let mut page = VerifyPage { layout: &pages.layout, csrf, token: String::new(), error: None, verified: None };
    let status = match app.verify_email(&form.token, &meta).await {
        Ok(user) => {
            page.verified = Some(user.email.as_str().to_owned());
            StatusCode::OK
        }
        Err(Error::InvalidLink) => {
            page.error = Some("This link does not work any more: it was used already, or it expired.".to_owned());
            StatusCode::BAD_REQUEST
        }
        Err(e) => return Err(e.into()),
    };
    Ok(html_response(status, &page))
}

/// `POST /account/email/verification`: mails the signed-in person a new verification link.
pub async fn resend(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(_): VerifiedForm<serde::de::IgnoredAny>,
) -> Result<Response, HtmlError> {
    let Some((_, user)) = session::current(&app, &pages, &headers).await? else {
        return Ok(see_other("/login?return_to=%2Faccount"));
    };
    match app.resend_verification_to(&user, &meta).await {
        Ok(()) => Ok(see_other("/account?mailed=1")),
        Err(e @ Error::RateLimited { .. }) => Err(HtmlError::from(e)),
        Err(e) => Err(e.into()),
    }
}
