//! The one way Tessera reads and writes cookies.
//!
//! Every cookie is `HttpOnly; SameSite=Lax; Path=/`; when the issuer is `https` it is also
//! `Secure` and named with the `__Host-` prefix, which browsers accept only from a secure
//! origin, without a `Domain`, for the whole site: a sibling subdomain or a network attacker
//! cannot plant or shadow it. `SameSite=Lax` keeps it off cross-site POSTs while letting it
//! ride on the top-level navigation back from a relying party.

use axum::http::{HeaderMap, HeaderValue, header};
use std::time::Duration;

/// The base name of the browser session cookie (`__Host-tessera-session` on https).
pub const SESSION_COOKIE: &str = "tessera-session";

/// How cookies are named and flagged, decided once from the issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookiePolicy {
    secure: bool,
}

/// A cookie value with a character that cookies may not carry (RFC 6265 §4.1.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cookie value may hold only printable ASCII other than space, `\"`, `,`, `;` and `\\`")]
pub struct InvalidCookieValue;

impl CookiePolicy {
    /// `Secure` and `__Host-` exactly when the issuer is `https`.
    pub fn for_issuer(issuer: &str) -> Self {
        CookiePolicy { secure: issuer.starts_with("https://") }
    }

    /// Whether cookies are `Secure` (and `__Host-` prefixed).
    pub fn secure(self) -> bool {
        self.secure
    }

    /// The name a cookie called `base` has on the wire: `__Host-base` when secure.
    pub fn name(self, base: &str) -> String {
        if self.secure { format!("__Host-{base}") } else { base.to_owned() }
    }

    /// A `Set-Cookie` value for `base=value`, kept for `max_age` (a session cookie without it).
    pub fn set(self, base: &str, value: &str, max_age: Option<Duration>) -> Result<HeaderValue, InvalidCookieValue> {
        if !value.bytes().all(is_cookie_octet) {
            return Err(InvalidCookieValue);
        }
        let mut cookie = format!("{}={value}; Path=/; HttpOnly; SameSite=Lax", self.name(base));
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        HeaderValue::from_str(&cookie).map_err(|_| InvalidCookieValue)
    }

    /// A `Set-Cookie` value that makes the browser forget `base`.
    pub fn clear(self, base: &str) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!("{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}", self.name(base));
        // The name is ours and the rest is fixed text.
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    /// The value of the cookie called `base` (by its wire name) in a request, if sent.
    pub fn read<'a>(self, headers: &'a HeaderMap, base: &str) -> Option<&'a str> {
        read_cookie(headers, &self.name(base))
    }
}

/// The first cookie called exactly `name` in the request's `Cookie` headers.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// RFC 6265 §4.1.1 `cookie-octet`.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_an_https_issuer_cookies_are_secure_and_host_prefixed() {
        let policy = CookiePolicy::for_issuer("https://auth.example.com");
        let set = policy.set("tessera-session", "abc", Some(Duration::from_secs(60))).unwrap();
        assert_eq!(set, "__Host-tessera-session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure");
        assert_eq!(policy.clear("x"), "__Host-x=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure");
    }

    #[test]
    fn on_an_http_issuer_cookies_are_neither_secure_nor_prefixed() {
        let policy = CookiePolicy::for_issuer("http://127.0.0.1:8080");
        assert_eq!(policy.set("tessera-session", "abc", None).unwrap(), "tessera-session=abc; Path=/; HttpOnly; SameSite=Lax");
    }

    #[test]
    fn a_value_that_could_add_attributes_is_refused() {
        let policy = CookiePolicy::for_issuer("https://auth.example.com");
        for bad in ["a;Domain=evil.example", "a b", "a,b", "a\"b", "a\\b", "é"] {
            assert_eq!(policy.set("x", bad, None), Err(InvalidCookieValue), "{bad}");
        }
    }

    #[test]
    fn the_named_cookie_is_found_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; tessera-csrfx=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("tessera-csrf=\"3\";b=4"));
        assert_eq!(read_cookie(&headers, "tessera-csrf"), Some("3"));
        assert_eq!(read_cookie(&headers, "b"), Some("4"));
        assert_eq!(read_cookie(&headers, "c"), None);
        let policy = CookiePolicy::for_issuer("https://auth.example.com");
        assert_eq!(policy.read(&headers, "tessera-csrf"), None, "the secure policy reads only the __Host- name");
    }
}
