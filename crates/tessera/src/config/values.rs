//! Typed values from the raw layers: text, lists, whole numbers and durations, and the
//! parsers of the values that need more than that (issuer, origins). Messages show at most a
//! truncated, non-secret value.

use super::ConfigError;
use super::layers::{Entry, Layers, Raw, fail};
use crate::domain::duration::HumanDuration;

/// At most `n` characters of a (non-secret) value, for messages.
pub(super) fn truncated(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().nth(n).is_some() {
        out.push('…');
    }
    out
}

impl Layers {
    /// A single value, trimmed.
    pub(super) fn text(&self, key: &'static str) -> Result<Option<(String, &str)>, ConfigError> {
        match self.values.get(key) {
            None => Ok(None),
            Some(Entry { raw: Raw::Text(t), from }) => Ok(Some((t.trim().to_owned(), from))),
            Some(Entry { raw: Raw::Int(n), from }) => Ok(Some((n.to_string(), from))),
            Some(Entry { raw: Raw::List(_), from }) => Err(fail(key, from, "must be a single value, not a list")),
        }
    }

    /// A list: a TOML array, or one string with commas. Blank items are dropped.
    pub(super) fn list(&self, key: &'static str) -> Result<Option<(Vec<String>, &str)>, ConfigError> {
        let Some(Entry { raw, from }) = self.values.get(key) else { return Ok(None) };
        let items: Vec<&str> = match raw {
            Raw::Text(t) => t.split(',').collect(),
            Raw::List(l) => l.iter().map(String::as_str).collect(),
            Raw::Int(_) => return Err(fail(key, from, "must be a string or a list of strings")),
        };
        let items = items.into_iter().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        Ok(Some((items, from)))
    }

    pub(super) fn parse<T>(&self, key: &'static str, default: T, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        match self.text(key)? {
            None => Ok(default),
            Some((text, from)) => parse(&text).map_err(|e| fail(key, from, e)),
        }
    }

    /// A whole number in `min..=max`.
    pub(super) fn number<T: TryFrom<i128>>(&self, key: &'static str, default: T, min: i128, max: i128) -> Result<T, ConfigError> {
        let Some(Entry { raw, from }) = self.values.get(key) else { return Ok(default) };
        let n = match raw {
            Raw::Int(n) => *n,
            Raw::Text(t) => {
                let t = t.trim();
                t.parse::<i128>().map_err(|_| fail(key, from, format!("`{}` is not a whole number", truncated(t, 40))))?
            }
            Raw::List(_) => return Err(fail(key, from, "must be a single value, not a list")),
        };
        if n < min {
            return Err(fail(key, from, format!("must be at least {min}, not {n}")));
        }
        if n > max {
            return Err(fail(key, from, format!("must be at most {max}, not {n}")));
        }
        T::try_from(n).map_err(|_| fail(key, from, format!("must be at most {max}")))
    }

    /// A [`HumanDuration`]; a TOML integer counts seconds.
    pub(super) fn duration(&self, key: &'static str, default: HumanDuration) -> Result<HumanDuration, ConfigError> {
        let Some(Entry { raw, from }) = self.values.get(key) else { return Ok(default) };
        match raw {
            Raw::Text(t) => HumanDuration::parse(t).map_err(|e| fail(key, from, e)),
            Raw::Int(n) => match u64::try_from(*n) {
                Ok(secs) => Ok(HumanDuration::from_secs(secs)),
                Err(_) => HumanDuration::parse(&n.to_string()).map_err(|e| fail(key, from, e)),
            },
            Raw::List(_) => Err(fail(key, from, "must be a single value, not a list")),
        }
    }

    /// A duration that must not be zero (`min_secs` 0: more than zero; otherwise at least that).
    pub(super) fn positive_duration(&self, key: &'static str, default: HumanDuration, min_secs: u64) -> Result<HumanDuration, ConfigError> {
        let d = self.duration(key, default)?;
        if min_secs > 0 && d.as_secs() < min_secs {
            return Err(fail(key, self.origin(key), format!("must be at least {}", HumanDuration::from_secs(min_secs))));
        }
        if d.is_zero() {
            return Err(fail(key, self.origin(key), "must be more than 0"));
        }
        Ok(d)
    }
}

/// The issuer is kept exactly as written, trailing slash included: `iss` must equal the
/// configured string, and verifiers compare it byte for byte.
pub(super) fn parse_issuer(s: &str) -> Result<String, String> {
    let issuer = s;
    let host = issuer.strip_prefix("https://").or_else(|| issuer.strip_prefix("http://"));
    match host {
        Some(rest)
            if !rest.is_empty() && !rest.starts_with('/') && !rest.contains(['?', '#']) && rest.chars().all(|c| c.is_ascii_graphic()) =>
        {
            Ok(issuer.to_owned())
        }
        _ => Err(format!("`{}` is not an http:// or https:// URL (without query or fragment)", truncated(s, 60))),
    }
}

/// `scheme://host[:port]`, lower-cased, a single trailing `/` tolerated and dropped.
pub(super) fn parse_origin(s: &str) -> Result<String, String> {
    if s == "*" {
        return Err("`*` is not allowed; list the origins".to_owned());
    }
    let lower = s.to_ascii_lowercase();
    let origin = lower.strip_suffix('/').unwrap_or(&lower);
    match origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) {
        Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '@']) && host.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(origin.to_owned())
        }
        _ => Err(format!("`{}` is not an origin such as https://app.example.com (no path)", truncated(s, 60))),
    }
}
