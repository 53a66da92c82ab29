//! The browser side of OpenID Connect: `GET`/`POST /oauth2/authorize`, the consent page and
//! RP-initiated logout. The handlers translate only; the rules are in `service/oidc.rs`.

use super::cookies::SESSION_COOKIE;
use super::{CsrfToken, HtmlError, Layout, Pages, VerifiedForm, html};
use crate::domain::BrowserSession;
use crate::service::{AuthorizationRequest, AuthorizeOutcome, AuthorizeParams, AuthorizeRefusal, ClientMeta};
use crate::state::AppState;
use askama::Template;
use axum::extract::{RawForm, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

/// A 302 to `location` with the pages' headers.
fn found(location: &str) -> Result<Response, HtmlError> {
    let value = HeaderValue::from_str(location).map_err(|_| HtmlError::internal())?;
    let mut response = (StatusCode::FOUND, [(header::LOCATION, value)]).into_response();
    super::set_page_headers(response.headers_mut());
    Ok(response)
}

fn read_params(raw: &[u8]) -> Result<AuthorizeParams, HtmlError> {
    serde_urlencoded::from_bytes(raw)
        .map_err(|_| HtmlError::bad_request("invalid_request", "The sign-in request is malformed (a parameter is repeated or unreadable)."))
}

/// The browser session the cookie names, if any.
async fn browser_session(app: &AppState, pages: &Pages, headers: &HeaderMap) -> Result<Option<BrowserSession>, HtmlError> {
    match pages.cookies.read(headers, SESSION_COOKIE) {
        Some(secret) if !secret.is_empty() => Ok(app.browser_session_from_cookie(secret).await?),
        _ => Ok(None),
    }
}

/// Validates the request; a refusal becomes the error page or the client's redirect.
async fn checked(app: &AppState, params: AuthorizeParams) -> Result<Result<AuthorizationRequest, Response>, HtmlError> {
    match app.authorization_request(params).await? {
        Ok(request) => Ok(Ok(request)),
        Err(AuthorizeRefusal::Page { code, message }) => Err(HtmlError::bad_request(code, message)),
        Err(AuthorizeRefusal::Redirect(location)) => Ok(Err(found(&location)?)),
    }
}

async fn answer(app: &AppState, pages: &Pages, headers: &HeaderMap, params: AuthorizeParams) -> Result<Response, HtmlError> {
    let request = match checked(app, params).await? {
        Ok(request) => request,
        Err(redirect) => return Ok(redirect),
    };
    let cookie = pages.cookies.read(headers, SESSION_COOKIE);
    match app.authorize(&request, cookie).await? {
        AuthorizeOutcome::Redirect(location) => found(&location),
        AuthorizeOutcome::Consent => found(&format!("/consent?{}", request.params.to_query())),
        AuthorizeOutcome::SignIn { return_to, login_hint } => {
            let query = serde_urlencoded::to_string([("return_to", Some(return_to.as_str())), ("login_hint", login_hint.as_deref())])
                .map_err(|_| HtmlError::internal())?;
            found(&format!("/login?{query}"))
        }
    }
}

/// `GET /oauth2/authorize`.
pub async fn authorize_get(
    State(app): State<AppState>,
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, HtmlError> {
    let params = read_params(uri.query().unwrap_or_default().as_bytes())?;
    answer(&app, &pages, &headers, params).await
}

/// `POST /oauth2/authorize` (the same request as a form).
pub async fn authorize_post(
    State(app): State<AppState>,
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Result<Response, HtmlError> {
    let params = read_params(&body)?;
    answer(&app, &pages, &headers, params).await
}

/// The consent page.
#[derive(Debug, Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    layout: &'a Layout,
    csrf: CsrfToken,
    client_name: String,
    scopes: Vec<String>,
    /// The authorization request, as a query string, to come back to.
    request: String,
}

/// `GET /consent?<the authorization request>`.
pub async fn consent_page(
    State(app): State<AppState>,
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    csrf: CsrfToken,
    uri: Uri,
) -> Result<Response, HtmlError> {
    let params = read_params(uri.query().unwrap_or_default().as_bytes())?;
    let request = match checked(&app, params).await? {
        Ok(request) => request,
        Err(redirect) => return Ok(redirect),
    };
    if browser_session(&app, &pages, &headers).await?.is_none() {
        return found(&format!("/oauth2/authorize?{}", request.params.to_query()));
    }
    let prompt = app.consent_prompt(&request);
    let page = ConsentPage {
        layout: &pages.layout,
        csrf,
        client_name: prompt.client_name,
        scopes: prompt.scopes,
        request: request.params.to_query(),
    };
    Ok(html(&page))
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    request: String,
    decision: String,
}

/// `POST /consent`: allow (recorded, then back to the request, which issues the code) or deny.
pub async fn consent_decide(
    State(app): State<AppState>,
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(form): VerifiedForm<ConsentForm>,
) -> Result<Response, HtmlError> {
    let params = read_params(form.request.as_bytes())?;
    let request = match checked(&app, params).await? {
        Ok(request) => request,
        Err(redirect) => return Ok(redirect),
    };
    let back = format!("/oauth2/authorize?{}", request.params.to_query());
    let Some(session) = browser_session(&app, &pages, &headers).await? else { return found(&back) };
    match form.decision.as_str() {
        "allow" => {
            app.grant_consent(&request, &session, &meta).await?;
            found(&back)
        }
        "deny" => found(&app.authorize_error(&request, "access_denied", "the person did not allow the application")),
        _ => Err(HtmlError::bad_request("invalid_form", "Choose Allow or Deny.")),
    }
}

/// The sign-out page: a confirmation (with a form) or the signed-out notice.
#[derive(Debug, Template)]
#[template(path = "rp_logout.html")]
pub struct LogoutPage<'a> {
    layout: &'a Layout,
    csrf: Option<CsrfToken>,
    client_id: String,
    post_logout_redirect_uri: String,
    state: String,
}

/// The parameters of RP-initiated logout.
#[derive(Debug, Default, Deserialize)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

async fn sign_out_and_leave(
    app: &AppState,
    pages: &Pages,
    session: Option<BrowserSession>,
    client_id: Option<&str>,
    params: &LogoutParams,
    meta: &ClientMeta,
) -> Result<Response, HtmlError> {
    if let Some(session) = session {
        app.sign_out(&session, meta).await?;
    }
    let target = app.post_logout_redirect(client_id, params.post_logout_redirect_uri.as_deref(), params.state.as_deref()).await?;
    let mut response = match target {
        Some(location) => found(&location)?,
        None => html(&LogoutPage {
            layout: &pages.layout,
            csrf: None,
            client_id: String::new(),
            post_logout_redirect_uri: String::new(),
            state: String::new(),
        }),
    };
    response.headers_mut().append(header::SET_COOKIE, pages.cookies.clear(SESSION_COOKIE));
    Ok(response)
}

/// `GET /oauth2/logout` (OpenID Connect RP-Initiated Logout 1.0).
pub async fn logout_get(
    State(app): State<AppState>,
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    meta: ClientMeta,
    csrf: CsrfToken,
    uri: Uri,
) -> Result<Response, HtmlError> {
    let params: LogoutParams = serde_urlencoded::from_str(uri.query().unwrap_or_default())
        .map_err(|_| HtmlError::bad_request("invalid_request", "The sign-out request is malformed."))?;
    let session = browser_session(&app, &pages, &headers).await?;
    let hint = params.id_token_hint.as_deref().and_then(|t| app.logout_hint(t));
    if let Some(hint) = hint {
        if params.client_id.as_deref().is_some_and(|c| c != hint.client_id) {
            return Err(HtmlError::bad_request("invalid_request", "The sign-out request names two different applications."));
        }
        // The hint proves the application asked; the session it names (or the person's own) ends.
        let session = session.filter(|s| s.user_id.to_string() == hint.sub);
        return sign_out_and_leave(&app, &pages, session, Some(&hint.client_id), &params, &meta).await;
    }
    let page = LogoutPage {
        layout: &pages.layout,
        csrf: Some(csrf),
        client_id: params.client_id.unwrap_or_default(),
        post_logout_redirect_uri: params.post_logout_redirect_uri.unwrap_or_default(),
        state: params.state.unwrap_or_default(),
    };
    Ok(html(&page))
}

/// `POST /oauth2/logout`: the person confirmed.
pub async fn logout_post(
    State(app): State<AppState>,
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(form): VerifiedForm<LogoutParams>,
) -> Result<Response, HtmlError> {
    let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let params = LogoutParams {
        id_token_hint: None,
        client_id: nonempty(form.client_id),
        post_logout_redirect_uri: nonempty(form.post_logout_redirect_uri),
        state: nonempty(form.state),
    };
    let session = browser_session(&app, &pages, &headers).await?;
    sign_out_and_leave(&app, &pages, session, params.client_id.as_deref(), &params, &meta).await
}
