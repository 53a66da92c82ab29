//! Redirect URIs of applications (RFC 6749 §3.1.2, RFC 8252 for native apps, RFC 9700).
//!
//! A redirect URI is absolute and has no fragment. It is `https`; or `http` on a loopback
//! host (`127.0.0.1`, `[::1]`, `localhost`), for apps on the person's own machine; or, for
//! public clients only, a private-use scheme named after a domain the app controls
//! (`com.example.app:/cb`, RFC 8252 §7.1). The text is kept exactly as registered, because
//! authorization requests are matched against it exactly.

use std::fmt;
use url::{Host, Url};

/// One registered redirect URI, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

/// Why a redirect URI was refused (`invalid_redirect_uri`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (got {uri:?})")]
pub struct RedirectUriError {
    reason: &'static str,
    uri: String,
}

impl RedirectUriError {
    fn new(reason: &'static str, raw: &str) -> Self {
        RedirectUriError { reason, uri: raw.chars().take(80).collect() }
    }
}

/// Schemes that run or read something in the browser, never a place to send a code to.
const NEVER: [&str; 6] = ["javascript", "data", "file", "vbscript", "blob", "about"];

impl RedirectUri {
    /// Longest accepted URI, in bytes.
    pub const MAX_LEN: usize = 2000;

    /// Checks `raw` as a redirect URI of a client that is `public` (or not).
    pub fn parse(raw: &str, public: bool) -> Result<Self, RedirectUriError> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(RedirectUriError::new("a redirect URI must be 1 to 2000 characters", raw));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RedirectUriError::new("a redirect URI may not hold spaces or control characters", raw));
        }
        let url = Url::parse(raw).map_err(|_| RedirectUriError::new("a redirect URI must be an absolute URI", raw))?;
        if raw.contains('#') {
            return Err(RedirectUriError::new("a redirect URI may not have a fragment", raw));
        }
        match url.scheme() {
            "https" => {
                if url.host().is_none() {
                    return Err(RedirectUriError::new("an https redirect URI needs a host", raw));
                }
            }
            "http" => {
                if !is_loopback(&url) {
                    return Err(RedirectUriError::new("http is allowed only on a loopback host (127.0.0.1, [::1], localhost)", raw));
                }
            }
            scheme => {
                if !public {
                    return Err(RedirectUriError::new("a private-use scheme is only for public clients; use https", raw));
                }
                if NEVER.contains(&scheme) || !scheme.contains('.') {
                    return Err(RedirectUriError::new(
                        "a private-use scheme must be a reversed domain name such as com.example.app (RFC 8252)",
                        raw,
                    ));
                }
            }
        }
        Ok(RedirectUri(raw.to_owned()))
    }

    /// The URI as registered.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` (the `redirect_uri` of a request) names this URI: the same string,
    /// except that for an `http` loopback URI the port may differ (RFC 8252 §7.3: a native
    /// app listens on whatever port the system gives it).
    pub fn matches(&self, presented: &str) -> bool {
        if self.0 == presented {
            return true;
        }
        let (Ok(registered), Ok(presented)) = (Url::parse(&self.0), Url::parse(presented)) else { return false };
        if registered.scheme() != "http" || !is_loopback(&registered) || presented.scheme() != "http" {
            return false;
        }
        let without_port = |u: &Url| {
            let mut u = u.clone();
            // Setting the port of an http URL with a host cannot fail.
            u.set_port(None).ok().map(|()| u)
        };
        match (without_port(&registered), without_port(&presented)) {
            (Some(r), Some(p)) => r.as_str() == p.as_str() && !presented.as_str().contains('#'),
            _ => false,
        }
    }
}

impl fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        Some(Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// A client's redirect URIs (or post-logout redirect URIs), in the order given, without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectUris(Vec<RedirectUri>);

impl RedirectUris {
    /// Most URIs one list may hold.
    pub const MAX: usize = 20;

    /// Checks every URI for a client that is `public` (or not); repeats are dropped.
    pub fn parse<S: AsRef<str>>(raw: &[S], public: bool) -> Result<Self, RedirectUriError> {
        let mut list: Vec<RedirectUri> = Vec::with_capacity(raw.len());
        for uri in raw {
            let uri = RedirectUri::parse(uri.as_ref(), public)?;
            if !list.contains(&uri) {
                list.push(uri);
            }
        }
        if list.len() > Self::MAX {
            return Err(RedirectUriError::new("a client may have at most 20 redirect URIs in a list", ""));
        }
        Ok(RedirectUris(list))
    }

    /// The URIs.
    pub fn as_slice(&self) -> &[RedirectUri] {
        &self.0
    }

    /// The URIs as text.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|u| u.0.clone()).collect()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The registered URI that `presented` names (see [`RedirectUri::matches`]).
    pub fn find(&self, presented: &str) -> Option<&RedirectUri> {
        self.0.iter().find(|u| u.matches(presented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted_for_every_client() {
        for ok in [
            "https://app.example/callback",
            "https://app.example:8443/cb?x=1",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51234/cb",
            "http://[::1]:8080/cb",
            "http://localhost:3000/auth/callback",
        ] {
            assert_eq!(RedirectUri::parse(ok, false).map(|u| u.as_str().to_owned()), Ok(ok.to_owned()), "{ok}");
            assert!(RedirectUri::parse(ok, true).is_ok(), "{ok}");
        }
    }

    #[test]
    fn relative_uris_fragments_and_plain_http_elsewhere_are_refused() {
        for bad in [
            "",
            "/callback",
            "app.example/cb",
            "https://app.example/cb#frag",
            "https://app.example/cb#",
            "http://app.example/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.example/cb",
            "https://app.example/c b",
            "https://app.example/cb\n",
        ] {
            assert!(RedirectUri::parse(bad, false).is_err(), "{bad:?}");
            assert!(RedirectUri::parse(bad, true).is_err(), "{bad:?}");
        }
        assert!(RedirectUri::parse(&format!("https://app.example/{}", "a".repeat(2000)), false).is_err());
    }

    #[test]
    fn private_use_schemes_are_for_public_clients_only_and_must_be_reversed_domains() {
        assert!(RedirectUri::parse("com.example.app:/cb", true).is_ok());
        assert!(RedirectUri::parse("com.example.app:/oauth2redirect/callback", true).is_ok());
        assert!(RedirectUri::parse("com.example.app:/cb", false).is_err(), "a confidential client uses https");
        for bad in ["myapp:/cb", "javascript:alert(1)", "data:text/html,hi", "file:///etc/passwd", "com.example.app:/cb#x"] {
            assert!(RedirectUri::parse(bad, true).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn matching_is_exact_except_the_port_of_a_loopback_uri() {
        let https = RedirectUri::parse("https://app.example/cb", false).unwrap();
        assert!(https.matches("https://app.example/cb"));
        for other in ["https://app.example/cb/", "https://app.example/CB", "https://app.example/cb?x=1", "https://app.example:443/cb"] {
            assert!(!https.matches(other), "{other}");
        }
        let loopback = RedirectUri::parse("http://127.0.0.1/cb", true).unwrap();
        assert!(loopback.matches("http://127.0.0.1:53122/cb"));
        assert!(!loopback.matches("http://127.0.0.1:53122/other"));
        assert!(!loopback.matches("http://localhost:53122/cb"));
        assert!(!loopback.matches("https://127.0.0.1:53122/cb"));
        assert!(!loopback.matches("http://127.0.0.1:53122/cb#x"));
    }

    #[test]
    fn a_list_drops_repeats_keeps_its_order_and_is_bounded() {
        let list = RedirectUris::parse(&["https://b.example/cb", "https://a.example/cb", "https://b.example/cb"], false).unwrap();
        assert_eq!(list.to_vec(), ["https://b.example/cb", "https://a.example/cb"]);
        assert_eq!(list.find("https://a.example/cb").map(RedirectUri::as_str), Some("https://a.example/cb"));
        assert!(list.find("https://c.example/cb").is_none());
        let many: Vec<String> = (0..21).map(|i| format!("https://app.example/cb{i}")).collect();
        assert!(RedirectUris::parse(&many, false).is_err());
    }
}
