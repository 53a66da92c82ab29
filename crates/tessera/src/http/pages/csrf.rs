//! Cross-site request forgery: every form a page serves carries a token, and every form POST
//! is checked before its handler runs.
//!
//! The design is a signed double-submit token (OWASP's "signed double-submit cookie"):
//! - The browser holds a random 256-bit value in the `tessera-csrf` cookie (`__Host-` prefixed
//!   on https; see [`super::cookies`]), set by the page routes' layer on the first page it sees.
//! - A form carries `csrf_token` = HMAC-SHA256(key, cookie value). A POST passes only when
//!   the token is the MAC of the cookie the browser sent.
//! - Besides the token, a POST that the browser itself labels cross-site or same-site
//!   (`Sec-Fetch-Site`), or, from a browser that sends no such label, whose `Origin` is not the
//!   issuer's, is refused. `SameSite=Lax` already keeps the cookie off cross-site POSTs.
//!
//! The key: forms are served by one instance and posted to another behind a load balancer,
//! so every instance must hold the same key, and it must survive restarts. It is derived
//! (HKDF) from the root every instance shares (`service/shared_keys.rs`: `TESSERA_MASTER_KEY`,
//! or without one the database's shared secret). Rotating the master key invalidates open
//! forms, nothing else.
//!
//! What the signature adds over a plain double submit: a token cannot be made for a cookie
//! value without the key, so a planted cookie is useless without also fetching a token for
//! it from Tessera. Once browser sessions exist, rotating the CSRF cookie at each sign-in
//! (a new [`CsrfCookie`]) keeps a token fetched before sign-in from outliving it.

use super::HtmlError;
use super::Pages;
use super::cookies::CookiePolicy;
use aws_lc_rs::{hmac, rand};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;

/// The base name of the cookie (`__Host-tessera-csrf` on https).
pub const COOKIE: &str = "tessera-csrf";

/// The name of the hidden form field.
pub const FIELD: &str = "csrf_token";

/// How long the CSRF cookie lives: long enough for a form left open over a weekend.
const COOKIE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// The HKDF purpose of the key, under the shared root.
pub const PURPOSE: &str = "tessera pages csrf v1";

/// Length of a cookie value: base64url of 32 bytes.
const COOKIE_LEN: usize = 43;

/// The HMAC key of the tokens.
pub struct CsrfKey {
    key: hmac::Key,
}

impl fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfKey([redacted])")
    }
}

/// The system's random source failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot make a CSRF cookie: no random bytes")]
pub struct CsrfKeyError;

impl CsrfKey {
    /// The key for `bytes` (derived for [`PURPOSE`] from the shared root).
    pub fn new(bytes: &[u8; 32]) -> CsrfKey {
        CsrfKey { key: hmac::Key::new(hmac::HMAC_SHA256, bytes) }
    }

    /// The token for forms shown to the browser holding `cookie`.
    fn token(&self, cookie: &CsrfCookie) -> CsrfToken {
        CsrfToken(URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, cookie.0.as_bytes())))
    }

    /// Whether `token` was made for `cookie` (in constant time).
    fn verify(&self, cookie: &CsrfCookie, token: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else { return false };
        hmac::verify(&self.key, cookie.0.as_bytes(), &tag).is_ok()
    }
}

/// The browser's CSRF cookie value: 256 random bits, base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfCookie(String);

impl fmt::Debug for CsrfCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfCookie([redacted])")
    }
}

impl CsrfCookie {
    /// A new random value.
    pub fn generate() -> Result<CsrfCookie, CsrfKeyError> {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes).map_err(|_| CsrfKeyError)?;
        Ok(CsrfCookie(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The value a request sent, when it has the shape of one Tessera sets.
    pub fn from_request(policy: CookiePolicy, headers: &HeaderMap) -> Option<CsrfCookie> {
        policy
            .read(headers, COOKIE)
            .filter(|v| v.len() == COOKIE_LEN && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .map(|v| CsrfCookie(v.to_owned()))
    }

    /// The `Set-Cookie` header value that gives this value to the browser.
    pub fn set_cookie(&self, policy: CookiePolicy) -> Option<HeaderValue> {
        policy.set(COOKIE, &self.0, Some(COOKIE_MAX_AGE)).ok()
    }
}

/// The token a page puts in its forms' hidden `csrf_token` field (the `forms::csrf` partial).
/// A handler of the page routes takes it as an extractor.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfToken(String);

impl fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CsrfToken([redacted])")
    }
}

impl fmt::Display for CsrfToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<S> FromRequestParts<S> for CsrfToken
where
    Arc<Pages>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = HtmlError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let pages = Arc::<Pages>::from_ref(state);
        match parts.extensions.get::<CsrfCookie>() {
            Some(cookie) => Ok(pages.csrf.token(cookie)),
            None => {
                tracing::error!("a page handler took a CsrfToken outside the page routes' CSRF layer");
                Err(HtmlError::internal())
            }
        }
    }
}

/// The page routes' layer: makes sure the browser holds a CSRF cookie. A request without a
/// well-formed one gets a new value, which handlers' [`CsrfToken`] signs and the response
/// sets. A POST is still checked against the cookie it actually sent.
pub async fn ensure_cookie(axum::extract::State(pages): axum::extract::State<Arc<Pages>>, mut req: Request, next: Next) -> Response {
    let policy = pages.cookies;
    let (cookie, fresh) = match CsrfCookie::from_request(policy, req.headers()) {
        Some(cookie) => (cookie, false),
        None => match CsrfCookie::generate() {
            Ok(cookie) => (cookie, true),
            Err(e) => {
                tracing::error!(error = %e, "cannot make a CSRF cookie");
                return axum::response::IntoResponse::into_response(HtmlError::internal());
            }
        },
    };
    let set_cookie = if fresh { cookie.set_cookie(policy) } else { None };
    req.extensions_mut().insert(cookie);
    let mut response = next.run(req).await;
    if let Some(value) = set_cookie {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A form body whose CSRF token checked out: `VerifiedForm(form): VerifiedForm<MyForm>` in a
/// POST handler. `T` is deserialized from the same `application/x-www-form-urlencoded` body
/// (it does not need a `csrf_token` field; unknown fields are ignored unless `T` denies them).
/// A missing or wrong token, a missing cookie, or a cross-site request answers the 403 error
/// page (`csrf_failed`) before the handler runs; a body `T` cannot read answers 400
/// (`invalid_form`).
#[derive(Debug)]
pub struct VerifiedForm<T>(pub T);

#[derive(serde::Deserialize)]
struct TokenField {
    #[serde(rename = "csrf_token")]
    token: Option<String>,
}

impl<S, T> FromRequest<S> for VerifiedForm<T>
where
    Arc<Pages>: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = HtmlError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let pages = Arc::<Pages>::from_ref(state);
        if req.method() != Method::POST {
            return Err(HtmlError::bad_request("invalid_form", "This address takes a form sent with POST."));
        }
        if !same_origin(req.headers(), &pages.issuer_origin) {
            return Err(HtmlError::csrf());
        }
        let cookie = CsrfCookie::from_request(pages.cookies, req.headers());
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")));
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| HtmlError::bad_request("invalid_form", "The form could not be read. Go back and try again."))?;
        let token = if is_form { serde_urlencoded::from_bytes::<TokenField>(&body).ok().and_then(|f| f.token) } else { None };
        match (cookie, token) {
            (Some(cookie), Some(token)) if pages.csrf.verify(&cookie, &token) => {}
            _ => return Err(HtmlError::csrf()),
        }
        serde_urlencoded::from_bytes::<T>(&body)
            .map(VerifiedForm)
            .map_err(|_| HtmlError::bad_request("invalid_form", "The form was incomplete. Go back and try again."))
    }
}

/// Fetch Metadata first (every current browser sends it); `Origin` for a browser that does
/// not; a request with neither (not a browser) is judged by its token alone.
fn same_origin(headers: &HeaderMap, issuer_origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin.eq_ignore_ascii_case(issuer_origin),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CsrfKey {
        CsrfKey::new(&[7; 32])
    }

    #[test]
    fn a_token_verifies_only_with_the_cookie_and_key_it_was_made_for() {
        let (cookie, other) = (CsrfCookie::generate().unwrap(), CsrfCookie::generate().unwrap());
        let token = key().token(&cookie);
        assert!(key().verify(&cookie, &token.0));
        assert!(!key().verify(&other, &token.0));
        assert!(!CsrfKey::new(&[8; 32]).verify(&cookie, &token.0));
        assert!(!key().verify(&cookie, &cookie.0), "the cookie itself is not a token");
        assert!(!key().verify(&cookie, ""));
        assert!(!key().verify(&cookie, "not base64!"));
    }

    #[test]
    fn only_a_cookie_of_the_shape_tessera_sets_is_read() {
        let policy = CookiePolicy::for_issuer("http://127.0.0.1:1");
        let good = CsrfCookie::generate().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("tessera-csrf={}", good.0)).unwrap());
        assert_eq!(CsrfCookie::from_request(policy, &headers), Some(good));
        headers.insert(header::COOKIE, HeaderValue::from_static("tessera-csrf=short"));
        assert_eq!(CsrfCookie::from_request(policy, &headers), None);
    }

    #[test]
    fn cross_site_posts_are_refused_by_fetch_metadata_or_origin() {
        let origin = "http://127.0.0.1:8080";
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            same_origin(&h, origin)
        };
        assert!(with(&[("sec-fetch-site", "same-origin"), ("origin", "http://127.0.0.1:8080")]));
        assert!(!with(&[("sec-fetch-site", "cross-site"), ("origin", "http://127.0.0.1:8080")]));
        assert!(!with(&[("sec-fetch-site", "same-site")]));
        assert!(with(&[("origin", "http://127.0.0.1:8080")]));
        assert!(!with(&[("origin", "https://evil.example")]));
        assert!(!with(&[("origin", "null")]));
        assert!(with(&[]));
    }
}
