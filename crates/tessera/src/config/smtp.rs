//! The mail settings: the SMTP server (`TESSERA_SMTP_URL`, which may hold a password) and the
//! sender (`TESSERA_EMAIL_FROM`).

use super::values::truncated;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: no TLS (a relay on the same machine or network, tests).
    Plain,
    /// `smtp+starttls://`: STARTTLS, required.
    StartTls,
    /// `smtps://`: TLS from the first byte (implicit TLS).
    Tls,
}

/// A parsed `TESSERA_SMTP_URL`. `Debug` never shows the password.
#[derive(Clone)]
pub struct SmtpUrl {
    /// How the connection is protected.
    pub security: SmtpSecurity,
    /// The server's host name (or address).
    pub host: String,
    /// The port: given, or 25, 587 and 465 by the scheme.
    pub port: u16,
    /// User name for authentication, when given.
    pub username: Option<String>,
    /// Password for authentication, when given.
    pub password: Option<SecretString>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl SmtpUrl {
    /// The password, for the transport only.
    pub fn expose_password(&self) -> Option<&str> {
        self.password.as_ref().map(|p| p.expose_secret())
    }
}

/// `smtp://host[:port]`, `smtp+starttls://user:pass@host[:587]`, `smtps://user:pass@host[:465]`.
/// The message never repeats the URL (it may hold a password).
pub(super) fn parse_smtp_url(s: &str) -> Result<SmtpUrl, String> {
    let url =
        url::Url::parse(s).map_err(|_| "is not a URL such as smtp://localhost:25 or smtps://user:pass@mail.example.com".to_owned())?;
    let (security, default_port) = match url.scheme() {
        "smtp" => (SmtpSecurity::Plain, 25),
        "smtp+starttls" => (SmtpSecurity::StartTls, 587),
        "smtps" => (SmtpSecurity::Tls, 465),
        other => return Err(format!("the scheme `{}` is not smtp, smtp+starttls or smtps", truncated(other, 20))),
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err("names no host".to_owned()),
    };
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err("has a path, query or fragment; only scheme://[user:password@]host[:port] is read".to_owned());
    }
    let decode = |s: &str| percent_decode(s).ok_or_else(|| "has user information that is not valid percent-encoded UTF-8".to_owned());
    let username = Some(url.username()).filter(|u| !u.is_empty()).map(decode).transpose()?;
    let password = url.password().map(decode).transpose()?.map(SecretString::from);
    if password.is_some() && username.is_none() {
        return Err("has a password without a user name".to_owned());
    }
    Ok(SmtpUrl { security, host, port: url.port().unwrap_or(default_port), username, password })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The default sender: the product name (`Tessera` unless branded) and `no-reply@HOST`,
/// HOST being the issuer's host without its port.
pub(super) fn default_sender(product_name: &str, issuer: &str) -> String {
    let host = url::Url::parse(issuer).ok().and_then(|u| {
        u.host().map(|h| match h {
            url::Host::Domain(d) => d.to_owned(),
            url::Host::Ipv4(ip) => ip.to_string(),
            // An IPv6 address literal is not accepted by every mail library; no host name then.
            url::Host::Ipv6(_) => "localhost".to_owned(),
        })
    });
    let name: String = product_name.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '<' | '>')).collect();
    format!("\"{name}\" <no-reply@{}>", host.unwrap_or_else(|| "localhost".to_owned()))
}

/// A sender such as `Example <no-reply@example.com>` or `no-reply@example.com`.
pub(super) fn parse_sender(s: &str) -> Result<String, String> {
    s.parse::<lettre::message::Mailbox>()
        .map(|m| m.to_string())
        .map_err(|_| format!("`{}` is not an address such as `Example <no-reply@example.com>`", truncated(s, 60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_has_its_security_and_default_port() {
        let plain = parse_smtp_url("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((plain.security, plain.host.as_str(), plain.port), (SmtpSecurity::Plain, "127.0.0.1", 2525));
        let starttls = parse_smtp_url("smtp+starttls://me%40example.com:p%3Ass@mail.example.com").unwrap();
        assert_eq!((starttls.security, starttls.port), (SmtpSecurity::StartTls, 587));
        assert_eq!(starttls.username.as_deref(), Some("me@example.com"));
        assert_eq!(starttls.expose_password(), Some("p:ss"));
        assert_eq!(parse_smtp_url("smtps://u:p@mail.example.com").unwrap().port, 465);
    }

    #[test]
    fn a_bad_smtp_url_is_refused_without_repeating_its_password() {
        for bad in ["http://mail.example.com", "smtp://", "smtp://:secret@host", "smtp://host/path", "not a url secret"] {
            let e = parse_smtp_url(bad).unwrap_err();
            assert!(!e.contains("secret"), "{bad}: {e}");
        }
        let shown = format!("{:?}", parse_smtp_url("smtps://u:hunter2@mail.example.com").unwrap());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn the_default_sender_is_no_reply_at_the_issuer_host_without_port() {
        assert_eq!(default_sender("Tessera", "https://id.example.com:8443"), "\"Tessera\" <no-reply@id.example.com>");
        assert!(parse_sender(&default_sender("Acme ID", "http://127.0.0.1:8080")).is_ok());
    }
}
