//! The browser session on the pages: who the session cookie signs in, and the answer that
//! signs a browser in (a new session cookie and a new CSRF cookie) or out.

use super::cookies::SESSION_COOKIE;
use super::csrf::CsrfCookie;
use super::login::ReturnTo;
use super::{HtmlError, Pages, set_page_headers};
use crate::domain::{BrowserSession, User};
use crate::service::BrowserSignIn;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The person the request's session cookie signs in, with their session, if any.
pub async fn current(app: &AppState, pages: &Pages, headers: &HeaderMap) -> Result<Option<(BrowserSession, User)>, HtmlError> {
    match pages.cookies.read(headers, SESSION_COOKIE) {
        Some(secret) => Ok(app.signed_in(secret).await?),
        None => Ok(None),
    }
}

/// The secret of the session cookie the request carries, to end that session when the
/// browser signs in again or out.
pub fn cookie_secret<'a>(pages: &Pages, headers: &'a HeaderMap) -> Option<&'a str> {
    pages.cookies.read(headers, SESSION_COOKIE)
}

/// `303 See Other` to a path on this server, with the pages' headers.
pub fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static(ReturnTo::DEFAULT));
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    set_page_headers(response.headers_mut());
    response
}

/// The answer to a sign-in: the session cookie (kept as long as the session lasts), a new
/// CSRF cookie (so no token fetched before the sign-in outlives it), and a redirect to
/// `return_to`.
pub fn signed_in(pages: &Pages, sign_in: &BrowserSignIn, return_to: &ReturnTo) -> Result<Response, HtmlError> {
    let lifetime = sign_in.session.expires_at - sign_in.session.created_at;
    let max_age = std::time::Duration::try_from(lifetime).unwrap_or_default();
    let session = pages.cookies.set(SESSION_COOKIE, sign_in.secret.expose(), Some(max_age)).map_err(|e| {
        tracing::error!(error = %e, "the browser session secret is not a cookie value");
        HtmlError::internal()
    })?;
    let mut response = see_other(return_to.as_str());
    response.headers_mut().append(header::SET_COOKIE, session);
    append_new_csrf_cookie(pages, &mut response)?;
    Ok(response)
}

/// Makes `response` forget the session cookie and hold a new CSRF cookie.
pub fn signed_out(pages: &Pages, response: &mut Response) -> Result<(), HtmlError> {
    response.headers_mut().append(header::SET_COOKIE, pages.cookies.clear(SESSION_COOKIE));
    append_new_csrf_cookie(pages, response)
}

fn append_new_csrf_cookie(pages: &Pages, response: &mut Response) -> Result<(), HtmlError> {
    let csrf = CsrfCookie::generate().ok().and_then(|c| c.set_cookie(pages.cookies)).ok_or_else(|| {
        tracing::error!("cannot make a new CSRF cookie");
        HtmlError::internal()
    })?;
    response.headers_mut().append(header::SET_COOKIE, csrf);
    Ok(())
}
