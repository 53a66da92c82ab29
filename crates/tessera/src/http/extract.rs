//! Extractors: turn the parts of a request into typed values, or into the right problem.

use super::error::ApiError;
use crate::service::{ClientMeta, Error, TokenError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};
use tessera_verify::Claims;

/// A JSON object body whose every rejection is a problem: 415 without a JSON content type,
/// 400 for malformed JSON, 422 when it is not an object (serde would read a struct from an
/// array too) or fields are missing or of the wrong type, 413 over the body limit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(&req) {
            return Err(ApiError::request(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let body = Bytes::from_request(req, state).await.map_err(|e| body_rejection(e.status()))?;
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok() {
            return Err(ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "the body must be a JSON object"));
        }
        axum::Json::<T>::from_bytes(&body).map(|axum::Json(value)| Json(value)).map_err(json_rejection)
    }
}

/// `application/json`, or any `application/…+json`, with or without parameters.
fn has_json_content_type(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::request(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonDataError(e) => ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", short(&e.body_text())),
        JsonRejection::JsonSyntaxError(_) => ApiError::request(StatusCode::BAD_REQUEST, "malformed_request", "the body is not valid JSON"),
        JsonRejection::BytesRejection(e) => body_rejection(e.status()),
        other => ApiError::request(other.status(), "malformed_request", short(&other.body_text())),
    }
}

/// A body read as bytes, for endpoints whose JSON body is optional; over the body limit it is
/// the same 413 problem as for [`Json`], not axum's plain-text answer.
#[derive(Debug, Clone, Default)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|e| body_rejection(e.status()))
    }
}

/// Path parameters whose rejection (a segment that is not UTF-8 after percent-decoding) is a
/// problem rather than axum's plain-text answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match <axum::extract::Path<T> as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = if status.is_server_error() { "internal_error" } else { "malformed_request" };
                Err(ApiError::request(status, code, short(&rejection.body_text())))
            }
        }
    }
}

pub(crate) fn form_rejection(rejection: &FormRejection) -> (StatusCode, String) {
    match rejection {
        FormRejection::InvalidFormContentType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/x-www-form-urlencoded".into())
        }
        other => (other.status(), short(&other.body_text())),
    }
}

fn body_rejection(status: StatusCode) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::request(status, "payload_too_large", "the body is larger than 64 KiB")
    } else {
        ApiError::request(status, "malformed_request", "the body could not be read")
    }
}

/// Keeps detail lines short; serde messages can quote parts of the input.
fn short(text: &str) -> String {
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// The claims of a valid, unrevoked bearer token.
#[derive(Debug, Clone)]
pub struct Bearer(pub std::sync::Arc<Claims>);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or(Error::Bearer(TokenError::Missing))?;
        state.authenticate(token).map(Bearer).map_err(|e| Error::Bearer(e).into())
    }
}

impl OptionalFromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    /// No token is `None`; a token that is present must be valid.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        match bearer_token(parts) {
            None => Ok(None),
            Some(token) => state.authenticate(token).map(|c| Some(Bearer(c))).map_err(|e| Error::Bearer(e).into()),
        }
    }
}

/// The token of an `Authorization: Bearer …` header; any other scheme counts as none.
pub(crate) fn bearer_token(parts: &Parts) -> Option<&str> {
    parse_bearer(parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// An `Authorization: Basic …` header that does not decode to `id:secret`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MalformedBasic;

/// The client credentials of an `Authorization: Basic …` header (RFC 6749 §2.3.1: each part
/// `application/x-www-form-urlencoded` before base64); `None` when there is no such header.
/// The one parser every endpoint that takes client credentials uses.
pub(crate) fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<Result<(String, String), MalformedBasic>> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok().and_then(|b| String::from_utf8(b).ok());
    Some(decoded.as_deref().and_then(|d| d.split_once(':')).map(|(i, s)| (form_decode(i), form_decode(s))).ok_or(MalformedBasic))
}

/// `application/x-www-form-urlencoded` decoding of a Basic credential part.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(hex)) => match std::str::from_utf8(hex).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1) → the token.
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' ')).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::parse_bearer;
    use proptest::prelude::*;

    #[test]
    fn only_the_bearer_scheme_yields_a_token() {
        assert_eq!(parse_bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(parse_bearer("bearer  abc "), Some("abc"));
        for none in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearerabc", "abc", "", "Bearer a b"] {
            assert_eq!(parse_bearer(none), None, "{none:?}");
        }
    }

    proptest! {
        #[test]
        fn any_header_value_parses_without_panicking(value in ".{0,300}") {
            let _ = parse_bearer(&value);
        }

        #[test]
        fn a_bearer_header_gives_back_its_token(token in "[A-Za-z0-9._~+/=-]{1,200}", scheme in "(?i)bearer") {
            let header = format!("{scheme} {token}");
            prop_assert_eq!(parse_bearer(&header), Some(token.as_str()));
        }
    }
}

/// Where the request came from.
#[derive(Debug, Clone)]
pub struct Client(pub ClientMeta);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect());
        Ok(Client(ClientMeta { ip: client_ip(&parts.headers, &parts.extensions, &state.http().trusted_proxies), user_agent }))
    }
}

/// The peer address, or the last address a trusted proxy added to `X-Forwarded-For`.
pub(crate) fn client_ip(headers: &axum::http::HeaderMap, extensions: &axum::http::Extensions, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    // Walk from the nearest hop outwards, skipping our own proxies.
    let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let hops: Vec<IpAddr> = forwarded.flat_map(|v| v.split(',')).filter_map(|s| s.trim().parse().ok()).collect();
    hops.into_iter().rev().find(|ip| !trusted.contains(ip)).or(Some(peer))
}
