//! The database URL, which may hold a password: kept secret, shown redacted, checked once.

use super::values::truncated;
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// The database URL. It may carry a password, so it is kept as a [`SecretString`]; `Debug`
/// and `Display` show it with the user information and any `password` query parameter
/// replaced by `[redacted]`. [`DatabaseUrl::expose`] gives the real URL, for the driver only.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Wraps a URL (not validated; [`Config::load`](super::Config::load) validates what it reads).
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(SecretString::from(url.into()))
    }

    /// The URL, for the driver only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact_url(self.expose()))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(self.expose()))
    }
}

/// `scheme://[redacted]@host/db?password=[redacted]`: user information and any query
/// parameter whose name contains `pass` are hidden.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // `sqlite:PATH` and the like carry no credentials.
        return url.to_owned();
    };
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((_, after)) => ("[redacted]@", after),
        None => ("", rest),
    };
    let (base, query) = match rest.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://{userinfo}{base}");
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("pass") => format!("{name}=[redacted]"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

/// The file path of an `sqlite://PATH` (or sqlx's `sqlite:PATH`) URL, without a query.
pub(super) fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split_once('?').map_or(rest, |(path, _)| path))
}

pub(super) fn parse_database_url(s: &str) -> Result<DatabaseUrl, String> {
    if let Some(path) = sqlite_path(s) {
        if path.is_empty() {
            return Err("an SQLite URL needs a file path, e.g. sqlite://tessera.db".to_owned());
        }
        return Ok(DatabaseUrl::new(s));
    }
    if let Some(rest) = s.strip_prefix("postgres://").or_else(|| s.strip_prefix("postgresql://")) {
        if rest.is_empty() {
            return Err("a PostgreSQL URL needs a host, e.g. postgres://user@host/tessera".to_owned());
        }
        return Ok(DatabaseUrl::new(s));
    }
    // Only ever show a scheme: the rest may hold a password.
    match s.split_once("://") {
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
            Err(format!("`{}` is not a supported database; use sqlite://PATH or postgres://…", truncated(scheme, 20)))
        }
        _ => Err("is not a database URL; use sqlite://PATH or postgres://…".to_owned()),
    }
}
