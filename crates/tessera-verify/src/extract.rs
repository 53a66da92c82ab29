//! The axum side (feature `axum`): [`Authenticated`] reads `Authorization: Bearer`, verifies
//! with the [`Verifier`] found in the router state, and [`Rejection`] answers exactly as
//! Tessera does: `application/problem+json` with the same codes and `WWW-Authenticate`.

use crate::{Claims, Verifier, VerifyError};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The verified claims of the request's bearer token.
///
/// Needs a [`Verifier`] reachable from the router state (`Verifier: FromRef<S>`). Scopes and
/// roles are then required in the handler: `auth.require_scope("notes:read")?`.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

impl Authenticated {
    /// The claims.
    pub fn claims(&self) -> &Claims {
        &self.0
    }

    /// `403 forbidden` unless the token was granted `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<&Claims, Rejection> {
        if self.0.has_scope(scope) { Ok(&self.0) } else { Err(Rejection::forbidden(format!("this needs the scope {scope}"))) }
    }

    /// `403 forbidden` unless the subject has `role`.
    pub fn require_role(&self, role: &str) -> Result<&Claims, Rejection> {
        if self.0.has_role(role) { Ok(&self.0) } else { Err(Rejection::forbidden(format!("this needs the role {role}"))) }
    }
}

impl std::ops::Deref for Authenticated {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or_else(Rejection::missing_token)?;
        let verifier = Verifier::from_ref(state);
        match verifier.verify(token).await {
            Ok(claims) => Ok(Authenticated(claims)),
            Err(e) => Err(Rejection::from(e)),
        }
    }
}

/// The token of `Authorization: Bearer <token>`; any other scheme counts as no token, as in
/// Tessera (API.md: "treated as no token").
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A refused request, answered as `application/problem+json`
/// `{"type", "title", "status", "detail", "code"}` with `type` = `urn:tessera:problem:<code>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    code: &'static str,
    detail: String,
    challenge: Option<String>,
}

impl Rejection {
    /// `401 missing_token`: no `Authorization: Bearer` header.
    pub fn missing_token() -> Self {
        Rejection {
            status: StatusCode::UNAUTHORIZED,
            code: "missing_token",
            detail: "a bearer token is required".into(),
            challenge: Some(r#"Bearer realm="tessera""#.into()),
        }
    }

    /// `403 forbidden`: a valid token that is not allowed to do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Rejection { status: StatusCode::FORBIDDEN, code: "forbidden", detail: detail.into(), challenge: None }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem `code`.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for Rejection {}

impl From<VerifyError> for Rejection {
    fn from(e: VerifyError) -> Self {
        if !e.is_token_error() {
            // The cause is for logs; the caller only learns that it is not their fault.
            tracing::warn!(error = %e, "cannot verify a bearer token");
            return Rejection {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: e.code(),
                detail: "tokens cannot be verified right now; try again shortly".into(),
                challenge: None,
            };
        }
        let detail = e.to_string();
        let challenge = format!(r#"Bearer realm="tessera", error="invalid_token", error_description="{}""#, detail.replace('"', "'"));
        Rejection { status: StatusCode::UNAUTHORIZED, code: e.code(), detail, challenge: Some(challenge) }
    }
}

#[derive(serde::Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: format!("urn:tessera:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(value) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_token_is_answered_like_tessera() {
        let rejection = Rejection::from(VerifyError::Expired);
        assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
        let response = rejection.into_response();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="tessera", error="invalid_token", error_description="the token has expired""#
        );
    }

    #[test]
    fn a_non_bearer_header_counts_as_no_token() {
        let (mut parts, ()) = axum::http::Request::new(()).into_parts();
        parts.headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&parts), None);
        parts.headers.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer abc"));
        assert_eq!(bearer_token(&parts), Some("abc"));
    }
}
