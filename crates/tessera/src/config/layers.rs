//! The layering engine: raw values from the file and the `TESSERA_*` environment, each with
//! where it came from, merged so that the environment wins over the file.

use super::ConfigError;
use super::values::truncated;
use figment::Figment;
use figment::providers::{Format, Toml};
use figment::value::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// Every key a file may hold (the variable name without `TESSERA_`, lower case).
const KEYS: &[&str] = &[
    "listen",
    "database_url",
    "issuer",
    "audience",
    "access_token_ttl",
    "refresh_token_ttl",
    "signing_alg",
    "hs256_secret",
    "master_key",
    "profile",
    "argon2_memory_kib",
    "argon2_iterations",
    "argon2_parallelism",
    "login_max_failures",
    "login_failure_window",
    "rate_limit_per_ip",
    "refresh_reuse_grace",
    "key_rotation_interval",
    "log",
    "log_format",
    "database_max_connections",
    "database_timeout",
    "trusted_proxies",
    "cors_origins",
    "audit_retention",
    "hash_queue",
    "shutdown_grace",
    "session_max_age",
    "fresh_max_age",
    "metrics_token",
    "product_name",
    "logo_path",
    "brand_color",
    "registration",
    "smtp_url",
    "email_from",
    "require_verified_email",
    "email_link_ttl",
    "password_reset_ttl",
    "passkeys",
];

pub(super) const PREFIX: &str = "TESSERA_";

/// The key for an environment variable name, if it is one of ours (exact, upper case).
pub(super) fn env_key(name: &str) -> Option<&'static str> {
    let rest = name.strip_prefix(PREFIX)?;
    KEYS.iter().copied().find(|k| k.len() == rest.len() && k.bytes().zip(rest.bytes()).all(|(k, r)| k.to_ascii_uppercase() == r))
}

fn env_name(key: &str) -> String {
    format!("{PREFIX}{}", key.to_ascii_uppercase())
}

/// `TESSERA_KEY (from FILE): what`.
pub(super) fn fail(key: &str, from: &str, what: impl fmt::Display) -> ConfigError {
    ConfigError(format!("{}{from}: {what}", env_name(key)))
}

/// A raw value before parsing.
#[derive(Debug, Clone)]
pub(super) enum Raw {
    /// From the environment, or a TOML string (or float).
    Text(String),
    /// A TOML integer.
    Int(i128),
    /// A TOML array of strings.
    List(Vec<String>),
}

/// One raw value and where it came from: `""` for the environment, ` (from FILE)` for the file.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) raw: Raw,
    pub(super) from: String,
}

/// The merged raw layers (the environment wins over the file).
#[derive(Debug, Default)]
pub(super) struct Layers {
    pub(super) values: BTreeMap<&'static str, Entry>,
}

impl Layers {
    pub(super) fn add_env(&mut self, env: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in env {
            // Other TESSERA_* variables (e.g. for tests) are not ours to refuse.
            if let Some(key) = env_key(&name) {
                self.values.insert(key, Entry { raw: Raw::Text(value), from: String::new() });
            }
        }
    }

    /// Where `key` came from, for messages about rules that span several keys.
    pub(super) fn origin(&self, key: &str) -> &str {
        self.values.get(key).map_or("", |e| e.from.as_str())
    }
}

/// The file layer, read with figment. Keys must be ours.
pub(super) fn file_layer(path: &Path) -> Result<Vec<(&'static str, Entry)>, ConfigError> {
    let shown = path.display();
    if !path.exists() {
        return Err(ConfigError(format!("{shown}: the configuration file does not exist")));
    }
    let dict: BTreeMap<String, Value> =
        Figment::from(Toml::file_exact(path)).extract().map_err(|e| ConfigError(format!("{shown}: {}", figment_summary(&e))))?;
    let from = format!(" (from {shown})");
    let mut out = Vec::with_capacity(dict.len());
    for (name, value) in dict {
        let Some(key) = KEYS.iter().copied().find(|k| *k == name) else {
            let lowered = name.to_ascii_lowercase();
            let hint = KEYS
                .iter()
                .find(|k| **k == lowered.strip_prefix("tessera_").unwrap_or(&lowered))
                .map(|k| format!(" (keys are lower case without TESSERA_: did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(ConfigError(format!("{shown}: unknown key `{}`{hint}", truncated(&name, 60))));
        };
        let raw = match value {
            Value::String(_, s) => Raw::Text(s),
            Value::Char(_, c) => Raw::Text(c.to_string()),
            Value::Num(_, n) => match n.to_i128() {
                Some(i) => Raw::Int(i),
                None => Raw::Text(n.to_f64().map(|f| f.to_string()).unwrap_or_default()),
            },
            Value::Array(_, items) => Raw::List(
                items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(_, s) => Some(s),
                        _ => None,
                    })
                    .collect::<Option<_>>()
                    .ok_or_else(|| fail(key, &from, "must be a list of strings"))?,
            ),
            _ => return Err(fail(key, &from, "must be a string, a number or a list of strings")),
        };
        out.push((key, Entry { raw, from: from.clone() }));
    }
    Ok(out)
}

/// One line from a figment error, without the source excerpt (which may show a secret).
fn figment_summary(e: &figment::Error) -> String {
    let message = match &e.kind {
        figment::error::Kind::Message(m) => m.clone(),
        other => other.to_string(),
    };
    // TOML parse errors are "TOML parse error at line L, column C", an excerpt (lines with
    // `|`), and the reason on the last line. Keep the first and the last.
    let lines: Vec<&str> = message.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains('|')).collect();
    match (lines.first(), lines.last()) {
        (Some(first), Some(last)) if first != last => format!("{first}: {last}"),
        (Some(first), _) => (*first).to_owned(),
        _ => "cannot read the configuration file".to_owned(),
    }
}
