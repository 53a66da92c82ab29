//! Extractors: turn the parts of a request into typed values, or into the right problem.

use super::error::ApiError;
use crate::service::{ClientMeta, Error, TokenError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
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
        json_object(&body).map(Json)
    }
}

/// A JSON object, with the rejections of [`Json`] past the content type.
fn json_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        return Err(ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "the body must be a JSON object"));
    }
    axum::Json::<T>::from_bytes(body).map(|axum::Json(value)| value).map_err(json_rejection)
}

/// A JSON object body that may be absent: `None` for an empty (or all-whitespace) body;
/// otherwise it is read as JSON whatever its content type, with the rejections of [`Json`]
/// (400 not JSON, 422 not an object or wrong fields, 413 over the body limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state).await.map_err(|e| body_rejection(e.status()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        json_object(&body).map(|value| OptionalJson(Some(value)))
    }
}

/// Query parameters whose rejection (a parameter of the wrong type, missing or repeated) is a
/// problem, 400 `malformed_request`, rather than axum's plain-text answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e| ApiError::request(StatusCode::BAD_REQUEST, "malformed_request", short(&e.body_text())))
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

/// An `Authorization: Basic …` header that does not decode to `id:secret`. As a rejection it
/// is a failed client authentication (401 problem, like a wrong secret); handlers that answer otherwise
/// take `Result<Option<BasicCredentials>, MalformedBasic>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedBasic;

impl IntoResponse for MalformedBasic {
    fn into_response(self) -> Response {
        ApiError::from(Error::InvalidClient).into_response()
    }
}

/// The client credentials of an `Authorization: Basic …` header, decoded by
/// [`basic_credentials`]. Taken as `Option<BasicCredentials>`: `None` without such a header.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The client id.
    pub id: String,
    /// The client secret.
    pub secret: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials").field("id", &self.id).finish_non_exhaustive()
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for BasicCredentials {
    type Rejection = MalformedBasic;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        basic_credentials(&parts.headers).transpose().map(|found| found.map(|(id, secret)| BasicCredentials { id, secret }))
    }
}

/// The client credentials of an `Authorization: Basic …` header (RFC 6749 §2.3.1: each part
/// `application/x-www-form-urlencoded` before base64); `None` when there is no such header.
/// The one parser every endpoint that takes client credentials uses, through [`BasicCredentials`].
fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<Result<(String, String), MalformedBasic>> {
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

/// Where the request came from: the client address (see [`client_ip`]) and the `User-Agent`
/// (at most 256 characters), for the service methods that audit, rate-limit or start sessions.
impl FromRequestParts<AppState> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(256).collect());
        Ok(ClientMeta { ip: client_ip(&parts.headers, &parts.extensions, &state.http().trusted_proxies), user_agent })
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use proptest::prelude::*;

    #[derive(Debug, serde::Deserialize)]
    struct Page {
        #[serde(default)]
        limit: Option<u32>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Alg {
        alg: Option<String>,
    }

    async fn query(uri: &str) -> Result<Query<Page>, ApiError> {
        let (mut parts, ()) = Request::builder().uri(uri).body(()).unwrap().into_parts();
        Query::<Page>::from_request_parts(&mut parts, &()).await
    }

    async fn optional_json(content_type: Option<&str>, body: &'static str) -> Result<OptionalJson<Alg>, ApiError> {
        let mut req = Request::builder().method("POST").uri("/");
        if let Some(t) = content_type {
            req = req.header(header::CONTENT_TYPE, t);
        }
        OptionalJson::<Alg>::from_request(req.body(Body::from(body)).unwrap(), &()).await
    }

    async fn basic(value: Option<&str>) -> Result<Option<BasicCredentials>, MalformedBasic> {
        let mut req = Request::builder().uri("/");
        if let Some(v) = value {
            req = req.header(header::AUTHORIZATION, v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        <BasicCredentials as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &()).await
    }

    async fn problem_of(rejection: impl IntoResponse) -> (StatusCode, String, serde_json::Value) {
        let res = rejection.into_response();
        let status = res.status();
        let content_type = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let body = axum::body::to_bytes(res.into_body(), 64 * 1024).await.unwrap();
        (status, content_type, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_query_string_that_does_not_fit_its_parameters_is_a_400_problem() {
        assert_eq!(query("/v1/users?limit=20").await.unwrap().0.limit, Some(20));
        assert_eq!(query("/v1/users").await.unwrap().0.limit, None);

        for bad in ["/v1/users?limit=abc", "/v1/users?limit=-1", "/v1/users?limit=1&limit=2"] {
            let (status, content_type, body) = problem_of(query(bad).await.unwrap_err()).await;
            assert_eq!((status, content_type.as_str()), (StatusCode::BAD_REQUEST, "application/problem+json"), "{bad}");
            assert_eq!(body["code"], "malformed_request", "{bad}");
        }
    }

    #[tokio::test]
    async fn an_optional_body_is_none_when_empty_and_read_as_json_whatever_its_content_type() {
        assert!(optional_json(None, "").await.unwrap().0.is_none());
        assert!(optional_json(Some("application/json"), "  \n").await.unwrap().0.is_none());
        let read = optional_json(Some("text/plain"), r#"{"alg": "RS256"}"#).await.unwrap().0;
        assert_eq!(read.and_then(|b| b.alg).as_deref(), Some("RS256"));
    }

    #[tokio::test]
    async fn an_optional_body_that_is_not_json_is_400_and_the_wrong_json_is_422() {
        let (status, content_type, body) = problem_of(optional_json(None, "{nope").await.unwrap_err()).await;
        assert_eq!(
            (status, content_type.as_str(), &body["code"]),
            (StatusCode::BAD_REQUEST, "application/problem+json", &"malformed_request".into())
        );
        for wrong in ["[1]", r#"{"alg": 5}"#] {
            let (status, _, body) = problem_of(optional_json(None, wrong).await.unwrap_err()).await;
            assert_eq!((status, &body["code"]), (StatusCode::UNPROCESSABLE_ENTITY, &"validation_failed".into()), "{wrong}");
        }
    }

    #[tokio::test]
    async fn basic_credentials_are_none_without_a_basic_header_and_a_401_problem_when_malformed() {
        assert_eq!(basic(None).await, Ok(None));
        assert_eq!(basic(Some("Bearer abc")).await, Ok(None), "another scheme is not client authentication");
        let found = basic(Some("Basic c3ZjXzE6dGNzJTNBeCt5")).await.unwrap().unwrap();
        assert_eq!((found.id.as_str(), found.secret.as_str()), ("svc_1", "tcs:x y"), "each part is form-decoded");
        assert!(!format!("{found:?}").contains("tcs"), "the secret is not in Debug output");

        for malformed in ["Basic !!!", "Basic bm8tY29sb24="] {
            let rejection = basic(Some(malformed)).await.unwrap_err();
            let (status, content_type, body) = problem_of(rejection).await;
            assert_eq!(
                (status, content_type.as_str(), &body["code"]),
                (StatusCode::UNAUTHORIZED, "application/problem+json", &"invalid_credentials".into())
            );
        }
    }

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
