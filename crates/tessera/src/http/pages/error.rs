//! The one error page: its status, a title, a sentence for people, and the stable `code` the
//! API would use, never a cause or a trace.
//!
//! A handler returns `Result<_, HtmlError>` and uses `?` on service calls. An `HtmlError`
//! cannot render itself (the layout needs the product name, which only the state knows), so
//! it travels in the response's extensions to [`render_errors`], the router-wide layer that
//! draws the page.

use super::{Pages, html_response};
use crate::http::error::{classify, log, retry_after};
use crate::service::Error;
use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// An error on its way to a person, as a page.
#[derive(Debug, Clone)]
pub struct HtmlError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

impl HtmlError {
    /// An error page with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        HtmlError { status, code, message: message.into(), retry_after: None }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "There is no page at this address. Check the link, or go back and try again.")
    }

    /// 403 `csrf_failed`: a form without a valid CSRF token.
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "This form has expired or was not sent from this site, so nothing was done. Go back, reload the page and try again.",
        )
    }

    /// 500 `internal_error`, saying nothing of the cause (log it where it happens).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side. It has been logged; please try again.",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<Error> for HtmlError {
    fn from(e: Error) -> Self {
        log(&e);
        let (status, code) = classify(&e);
        let message = match &e {
            Error::Internal(_) => return HtmlError::internal(),
            Error::RateLimited { .. } => "There have been too many attempts. Wait a little, then try again.".to_owned(),
            Error::Busy { .. } | Error::Unavailable => "The service is busy right now. Please try again in a moment.".to_owned(),
            Error::NotFound(_) => "There is nothing here. It may have been removed.".to_owned(),
            other => sentence(&other.to_string()),
        };
        HtmlError { retry_after: retry_after(&e), ..HtmlError::new(status, code, message) }
    }
}

/// The service's messages are lower-case fragments for the API (`the account is disabled`);
/// a page shows a sentence.
pub(crate) fn sentence(fragment: &str) -> String {
    let mut chars = fragment.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

impl IntoResponse for HtmlError {
    fn into_response(self) -> Response {
        // The text body is what a client that bypasses the layer would see; `render_errors`
        // replaces it with the page.
        let mut response = (self.status, format!("{} ({})", self.message, self.code)).into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        }
        response.extensions_mut().insert(self);
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: &'a super::Layout,
    status: u16,
    title: &'static str,
    message: &'a str,
    code: &'static str,
}

/// A short title for people, by status.
fn title(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "This request cannot be completed",
        401 | 403 => "You cannot do this",
        404 => "Page not found",
        405 => "This address does not take that request",
        413 => "That was too much to send",
        429 => "Too many attempts",
        503 => "Temporarily unavailable",
        s if s >= 500 => "Something went wrong",
        _ => "This request cannot be completed",
    }
}

/// The router-wide layer that turns an [`HtmlError`] into the error page.
pub async fn render_errors(State(pages): State<Arc<Pages>>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let Some(error) = response.extensions_mut().remove::<HtmlError>() else { return response };
    let page = ErrorPage {
        layout: &pages.layout,
        status: error.status.as_u16(),
        title: title(error.status),
        message: &error.message,
        code: error.code,
    };
    let mut rendered = html_response(error.status, &page);
    // Keep what the handler or the error added (Retry-After, Set-Cookie).
    for name in [header::RETRY_AFTER, header::SET_COOKIE] {
        for value in response.headers().get_all(&name) {
            rendered.headers_mut().append(&name, value.clone());
        }
    }
    rendered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_become_sentences_with_their_api_code() {
        let e = HtmlError::from(Error::AccountDisabled);
        assert_eq!((e.status(), e.code()), (StatusCode::FORBIDDEN, "account_disabled"));
        assert!(e.message.starts_with(char::is_uppercase) && e.message.ends_with('.'), "{}", e.message);
    }

    #[test]
    fn an_internal_error_shows_nothing_of_its_cause() {
        let e = HtmlError::from(Error::internal(std::io::Error::other("password for db-admin rejected")));
        assert_eq!((e.status(), e.code()), (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"));
        assert!(!e.message.contains("db-admin"), "{}", e.message);
    }

    #[test]
    fn a_rate_limit_keeps_its_retry_after() {
        let e = HtmlError::from(Error::RateLimited { retry_after: Duration::from_secs(30) });
        assert_eq!((e.status(), e.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
        let response = e.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
    }
}
