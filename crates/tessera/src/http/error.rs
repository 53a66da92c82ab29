//! The one place errors become responses.
//!
//! Policy: every error outside `/oauth2/*` is `application/problem+json` (RFC 9457) with a
//! stable snake_case `code`; `/oauth2/*` uses the RFC 6749 §5.2 body (see `oauth.rs`).
//! Internal causes are logged here, with the request's span, and never sent to the caller:
//! a 500 says only that something went wrong.

use crate::service::{Error, TokenError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

/// An error on its way to the caller.
#[derive(Debug)]
pub enum ApiError {
    /// A use case refused or failed.
    Service(Error),
    /// The request itself was wrong before any use case ran.
    Request { status: StatusCode, code: &'static str, detail: String },
}

impl ApiError {
    /// A request-level problem with its status, code and detail.
    pub fn request(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Request { status, code, detail: detail.into() }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Service(e)
    }
}

/// The RFC 9457 body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    #[schema(pattern = "^urn:tessera:problem:[a-z_]+$")]
    pub kind: String,
    /// Short human summary (the status phrase).
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What went wrong in this instance.
    pub detail: String,
    /// Stable machine-readable code, e.g. `invalid_credentials`, `token_expired`.
    #[schema(pattern = "^[a-z_]+$")]
    pub code: &'static str,
}

/// The problem a password sign-in (`POST /v1/auth/login`) answers: with the code
/// `mfa_required` (403), it also has `mfa_token` and `methods`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginProblem {
    #[serde(flatten)]
    pub problem: Problem,
    /// With `mfa_required`: the pending sign-in, for `POST /v1/auth/login/mfa` (single use,
    /// 5 minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, pattern = "^tmf_")]
    pub mfa_token: Option<String>,
    /// With `mfa_required`: how the sign-in may be finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<Vec<MfaMethodName>>)]
    pub methods: Option<Vec<&'static str>>,
}

/// A way to finish a sign-in that waits for a second factor.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaMethodName {
    /// A TOTP code (`code`).
    Totp,
    /// A recovery code (`code`).
    RecoveryCode,
    /// A passkey (`challenge_id` and `credential`).
    Passkey,
}

/// The RFC 6749 §5.2 body of `/oauth2/*` errors.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope`, `invalid_target`, `rate_limited`,
    /// `temporarily_unavailable` or `server_error`.
    #[schema(value_type = String, pattern = "^[a-z_]+$")]
    pub error: &'static str,
    pub error_description: String,
}

// The error answers as the OpenAPI document names them (`openapi::ErrorAnswers` declares
// them): a body, RFC 9457 or RFC 6749, with the header it may carry; `code` (`error`) in the
// body says which error it is. `openapi::add_common_errors` declares those that every endpoint
// of a kind gives; an endpoint's annotation names the error sets below for the rest.

/// An error set, for `responses(...)` in an endpoint's annotation: each status with the name
/// of the answer that carries it.
macro_rules! error_sets {
    ($($(#[doc = $doc:literal])* $set:ident: [$(($status:literal, $answer:literal)),+];)+) => {$(
        $(#[doc = $doc])*
        #[derive(Debug)]
        pub struct $set;

        impl IntoResponses for $set {
            fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
                [$(($status, $answer)),+].into_iter().map(|(status, answer)| (status.to_owned(), Ref::from_response_name(answer).into())).collect()
            }
        }
    )+};
}

error_sets! {
    /// 404: the caller's own account is gone (deleted while the token lives).
    AccountGone: [("404", "ProblemAnswer")];
    /// 409: taken (an email, a username) or in the way (a key rotation already under way).
    Conflict: [("409", "ProblemAnswer")];
    /// 404 of a passkey endpoint: passkeys are off (`TESSERA_PASSKEYS=false`, or an issuer
    /// whose host is an IP address); naming a passkey, also one the caller does not have.
    PasskeysOff: [("404", "ProblemAnswer")];
    /// 401 and 403 of an endpoint that checks credentials in its body: wrong ones, an invalid
    /// refresh token, a disabled account.
    CredentialsRefused: [("401", "UnauthorizedAnswer"), ("403", "ProblemAnswer")];
    /// 401 and 403 of a password sign-in: wrong credentials, a disabled account, an
    /// unverified address, or a second factor to give (`mfa_required`, with `mfa_token` and
    /// `methods`).
    LoginRefused: [("401", "UnauthorizedAnswer"), ("403", "LoginRefusedAnswer")];
    /// 403: a person may not register themselves (`registration_closed`).
    RegistrationClosed: [("403", "ProblemAnswer")];
    /// 429: too many wrong passwords for this account.
    TooManyAttempts: [("429", "RetryLaterAnswer")];
    /// 422: a query parameter with a value outside its rules.
    InvalidQuery: [("422", "ProblemAnswer")];
}

pub(crate) use error_sets;

/// Status, code and extra headers of a service error.
pub(crate) fn classify(e: &Error) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        Error::InvalidCredentials | Error::InvalidClient => (S::UNAUTHORIZED, "invalid_credentials"),
        Error::WrongCurrentPassword => (S::FORBIDDEN, "invalid_credentials"),
        Error::AccountDisabled => (S::FORBIDDEN, "account_disabled"),
        Error::RegistrationClosed => (S::FORBIDDEN, "registration_closed"),
        Error::EmailNotVerified => (S::FORBIDDEN, "email_not_verified"),
        Error::EmailUnavailable => (S::SERVICE_UNAVAILABLE, "email_unavailable"),
        Error::InvalidLink => (S::BAD_REQUEST, "invalid_link"),
        Error::EmailTaken => (S::CONFLICT, "email_taken"),
        Error::UsernameTaken => (S::CONFLICT, "username_taken"),
        Error::Validation(_) => (S::UNPROCESSABLE_ENTITY, "validation_failed"),
        Error::WeakPassword(_) => (S::UNPROCESSABLE_ENTITY, "weak_password"),
        Error::InvalidRedirectUri(_) => (S::UNPROCESSABLE_ENTITY, "invalid_redirect_uri"),
        Error::PublicClient => (S::CONFLICT, "public_client"),
        Error::Bearer(t) | Error::Refresh(t) => (S::UNAUTHORIZED, token_code(t)),
        Error::FreshTokenRequired => (S::FORBIDDEN, "fresh_token_required"),
        Error::MfaRequired { .. } => (S::FORBIDDEN, "mfa_required"),
        Error::InvalidCode => (S::UNAUTHORIZED, "invalid_code"),
        Error::InvalidMfaToken => (S::UNAUTHORIZED, "invalid_mfa_token"),
        Error::InvalidChallenge => (S::BAD_REQUEST, "invalid_challenge"),
        Error::Forbidden(_) => (S::FORBIDDEN, "forbidden"),
        Error::InsufficientScope => (S::FORBIDDEN, "insufficient_scope"),
        Error::NotFound(_) => (S::NOT_FOUND, "not_found"),
        Error::Conflict(_) => (S::CONFLICT, "conflict"),
        Error::InvalidCursor => (S::BAD_REQUEST, "invalid_cursor"),
        Error::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "rate_limited"),
        Error::Busy { .. } => (S::SERVICE_UNAVAILABLE, "server_busy"),
        Error::Unavailable => (S::SERVICE_UNAVAILABLE, "database_unavailable"),
        Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal_error"),
    }
}

fn token_code(e: &TokenError) -> &'static str {
    match e {
        TokenError::Missing => "missing_token",
        TokenError::Invalid(_) => "invalid_token",
        TokenError::Expired => "token_expired",
        TokenError::Revoked => "token_revoked",
    }
}

/// Seconds to put in `Retry-After`, rounded up.
pub(crate) fn retry_after(e: &Error) -> Option<Duration> {
    match e {
        Error::RateLimited { retry_after } | Error::Busy { retry_after } => Some(*retry_after),
        Error::Unavailable => Some(Duration::from_secs(1)),
        _ => None,
    }
}

/// An error with every error below it, `outer: inner: root`, for the log.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| (*e).source()).map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

/// Logs what the caller will not see.
pub(crate) fn log(e: &Error) {
    match e {
        Error::Internal(cause) => tracing::error!(error = %chain(cause.as_ref()), "internal error"),
        Error::Unavailable => tracing::warn!("database unavailable"),
        _ => {}
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Request { status, code, detail } => problem(status, code, detail),
            ApiError::Service(e) => {
                log(&e);
                let (status, code) = classify(&e);
                let detail = match &e {
                    Error::Internal(_) => "something went wrong on our side; it has been logged".to_owned(),
                    other => other.to_string(),
                };
                let mut response = match &e {
                    Error::MfaRequired { mfa_token, methods } => mfa_problem(status, code, detail.clone(), mfa_token, methods),
                    _ => problem(status, code, detail.clone()),
                };
                let headers = response.headers_mut();
                if let Some(wait) = retry_after(&e) {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
                }
                if let Error::InsufficientScope = &e {
                    // RFC 6750 §3.1.
                    headers.insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(r#"Bearer realm="tessera", error="insufficient_scope""#),
                    );
                }
                if let Error::Bearer(t) = &e {
                    let challenge = match t {
                        TokenError::Missing => r#"Bearer realm="tessera""#.to_owned(),
                        other => format!(
                            r#"Bearer realm="tessera", error="invalid_token", error_description="{}""#,
                            other.to_string().replace('"', "'")
                        ),
                    };
                    if let Ok(value) = HeaderValue::from_str(&challenge) {
                        headers.insert(header::WWW_AUTHENTICATE, value);
                    }
                }
                response
            }
        }
    }
}

/// A problem+json response.
pub fn problem(status: StatusCode, code: &'static str, detail: String) -> Response {
    let body = Problem {
        kind: format!("urn:tessera:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code,
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

/// The problem of `mfa_required`, with its extra members `mfa_token` and `methods`.
fn mfa_problem(status: StatusCode, code: &'static str, detail: String, mfa_token: &str, methods: &[&'static str]) -> Response {
    let body = LoginProblem {
        problem: Problem {
            kind: format!("urn:tessera:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            code,
        },
        mfa_token: Some(mfa_token.to_owned()),
        methods: Some(methods.to_vec()),
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

/// An RFC 6749 §5.2 error, for `/oauth2/*`: `{"error", "error_description"}`.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// The client tried HTTP Basic: answer with a Basic challenge (RFC 6749 §5.2).
    basic_challenge: bool,
    retry_after: Option<Duration>,
}

impl OAuthError {
    /// An error with its status, RFC 6749 code and description.
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError { status, error, description: description.into(), basic_challenge: false, retry_after: None }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 `invalid_client`, with a Basic challenge when the client used Basic.
    pub fn invalid_client(used_basic: bool) -> Self {
        OAuthError { basic_challenge: used_basic, ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed") }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        log(&e);
        let retry_after = retry_after(&e);
        let (status, error, description) = match &e {
            Error::Refresh(_) | Error::AccountDisabled | Error::EmailNotVerified => {
                (StatusCode::BAD_REQUEST, "invalid_grant", e.to_string())
            }
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string()),
            Error::Busy { .. } | Error::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", e.to_string()),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", "something went wrong on our side".to_owned()),
            other => (StatusCode::BAD_REQUEST, "invalid_request", other.to_string()),
        };
        OAuthError { retry_after, ..OAuthError::new(status, error, description) }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody { error: self.error, error_description: self.description };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="tessera""#));
        }
        if let Some(wait) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("password for db-admin@10.0.0.7 rejected")]
    struct Secret;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open the pool")]
    struct Outer(#[source] Secret);

    async fn body_of(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn the_log_line_names_every_cause_in_the_chain() {
        let e = Error::internal(Outer(Secret));
        let Error::Internal(cause) = &e else { panic!("{e:?}") };

        assert_eq!(chain(cause.as_ref()), "cannot open the pool: password for db-admin@10.0.0.7 rejected");
    }

    #[tokio::test]
    async fn a_500_problem_does_not_show_the_cause() {
        let response = ApiError::from(Error::internal(Outer(Secret))).into_response();

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response).await;
        assert!(body.contains("internal_error"), "{body}");
        assert!(!body.contains("cannot open the pool") && !body.contains("db-admin"), "{body}");
    }

    #[tokio::test]
    async fn a_500_oauth_error_does_not_show_the_cause() {
        let response = OAuthError::from(Error::internal(Outer(Secret))).into_response();

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(response).await;
        assert!(body.contains("server_error"), "{body}");
        assert!(!body.contains("cannot open the pool") && !body.contains("db-admin"), "{body}");
    }
}
