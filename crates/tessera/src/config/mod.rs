//! Typed, layered configuration: defaults → TOML file → `TESSERA_*` environment variables.
//!
//! Every value is parsed here, once, into a typed field; a bad value stops start-up with one
//! line naming the variable (`TESSERA_…`, even when the value came from the file, which is then
//! added in parentheses) and what is wrong. Secret values are never part of a message.
//!
//! A file's keys are the variable names in lower case without the prefix
//! (`TESSERA_ACCESS_TOKEN_TTL` ↔ `access_token_ttl = "15m"`). A key the file does not know is an
//! error; a `TESSERA_*` variable this module does not know is ignored (tests and tools use the
//! prefix too). Variable names are matched exactly (upper case).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TESSERA_LISTEN` | `127.0.0.1:8080` | address to serve on |
//! | `TESSERA_DATABASE_URL` | `sqlite://tessera.db` | `sqlite://PATH` or `postgres://…` |
//! | `TESSERA_ISSUER` | `http://` + listen address | `iss` of every token (a trailing `/` is dropped) |
//! | `TESSERA_AUDIENCE` | the issuer | `aud`; commas (or a TOML array) give several |
//! | `TESSERA_ACCESS_TOKEN_TTL` | `15m` | at least `1s` |
//! | `TESSERA_REFRESH_TOKEN_TTL` | `30d` | at least `1s` |
//! | `TESSERA_SIGNING_ALG` | `ES256` | `ES256`, `RS256`, `Ed25519` (RFC 9864), `EdDSA` (the same key, older name), `HS256` |
//! | `TESSERA_HS256_SECRET` | — | required for `HS256`, at least 32 bytes |
//! | `TESSERA_MASTER_KEY` | — | base64 of 32 bytes; encrypts private keys at rest |
//! | `TESSERA_PROFILE` | `dev` | `prod` refuses unsafe settings |
//! | `TESSERA_ARGON2_MEMORY_KIB` / `_ITERATIONS` / `_PARALLELISM` | `19456` / `2` / `1` | argon2id cost |
//! | `TESSERA_LOGIN_MAX_FAILURES` / `TESSERA_LOGIN_FAILURE_WINDOW` | `10` / `15m` | per-account lockout |
//! | `TESSERA_RATE_LIMIT_PER_IP` | `120` | credential requests per minute per IP; `0` off |
//! | `TESSERA_REFRESH_REUSE_GRACE` | `0s` | |
//! | `TESSERA_KEY_ROTATION_INTERVAL` | `0` (off) | |
//! | `TESSERA_LOG` / `TESSERA_LOG_FORMAT` | `info` / `text` | log filter; `text` or `json` |
//! | `TESSERA_DATABASE_MAX_CONNECTIONS` | `10` | pool size, at least 1 |
//! | `TESSERA_DATABASE_TIMEOUT` | `5s` | pool acquire timeout, more than 0 |
//! | `TESSERA_TRUSTED_PROXIES` | empty | IP addresses whose `X-Forwarded-For` is believed |
//! | `TESSERA_CORS_ORIGINS` | empty (CORS off) | origins such as `https://app.example.com` |
//! | `TESSERA_AUDIT_RETENTION` | `90d` | more than 0 |
//! | `TESSERA_HASH_QUEUE` | `64` | password hashes allowed to wait, at least 1 |
//! | `TESSERA_SHUTDOWN_GRACE` | `10s` | |
//! | `TESSERA_SESSION_MAX_AGE` | `90d` | absolute lifetime of a session, however often refreshed |
//! | `TESSERA_FRESH_MAX_AGE` | `10m` | how long after its password check a `fresh` token passes the fresh rule |
//! | `TESSERA_METRICS_TOKEN` | — | when set, `/metrics` needs this bearer token |
//! | `TESSERA_PRODUCT_NAME` | `Tessera` | the name the pages show; at most 60 characters |
//! | `TESSERA_LOGO_PATH` | — | an `.svg`, `.png`, `.jpg` or `.webp` file the pages show, served by Tessera |
//! | `TESSERA_BRAND_COLOR` | `#4f46e5` | the pages' accent colour, `#rrggbb` or `#rgb` |
//! | `TESSERA_REGISTRATION` | `open` | `open` or `closed` (only admins and the CLI create accounts) |
//! | `TESSERA_SMTP_URL` | — | `smtp://host:port` (no TLS), `smtp+starttls://user:pass@host:587`, `smtps://user:pass@host:465` |
//! | `TESSERA_EMAIL_FROM` | `Tessera <no-reply@HOST>` | sender of every mail (the product name, HOST the issuer's host) |
//! | `TESSERA_REQUIRE_VERIFIED_EMAIL` | `false` | `true`: no sign-in until the address is verified |
//! | `TESSERA_EMAIL_LINK_TTL` / `TESSERA_PASSWORD_RESET_TTL` | `24h` / `30m` | how long a verification / reset link works |
//!
//! In the file, a duration may also be a whole number of seconds (`shutdown_grace = 30`), and a
//! list (`audience`, `trusted_proxies`, `cors_origins`) either an array of strings or one string
//! with commas.

mod branding;
mod database_url;
mod layers;
mod smtp;
mod values;

pub use branding::{BrandColor, Branding, LOGO_TYPES};
pub use database_url::DatabaseUrl;
pub use smtp::{SmtpSecurity, SmtpUrl};

use crate::domain::duration::HumanDuration;
use crate::domain::keys::{MasterKey, SigningAlg};
use branding::{parse_logo_path, parse_product_name};
use database_url::{parse_database_url, sqlite_path};
use layers::{Layers, PREFIX, env_key, fail, file_layer};
use secrecy::{ExposeSecret, SecretString};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use values::{parse_issuer, parse_origin, truncated};

/// Everything an operator can set.
///
/// `Debug` shows every field but never a secret: each secret's own type redacts it (the HS256
/// secret and the metrics token are [`SecretString`]s, the [`MasterKey`] prints no key bytes,
/// and the [`DatabaseUrl`] hides its password).
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; may hold a password, so it is a [`DatabaseUrl`].
    pub database_url: DatabaseUrl,
    /// `iss` of every token, without a trailing slash.
    pub issuer: String,
    /// `aud` of every token; never empty.
    pub audience: Vec<String>,
    /// Access-token lifetime (at least one second).
    pub access_token_ttl: HumanDuration,
    /// Refresh-token lifetime (at least one second).
    pub refresh_token_ttl: HumanDuration,
    /// Signing algorithm.
    pub signing_alg: SigningAlg,
    /// HS256 shared secret (at least 32 bytes when `signing_alg` is HS256).
    pub hs256_secret: Option<SecretString>,
    /// Encrypts private keys at rest. `MasterKey` is not `Clone`, hence the `Arc`.
    pub master_key: Option<Arc<MasterKey>>,
    /// `dev` or `prod`.
    pub profile: Profile,
    /// argon2id cost.
    pub argon2: Argon2Params,
    /// Failed logins per account before 429.
    pub login_max_failures: u32,
    /// Window in which failed logins count.
    pub login_failure_window: HumanDuration,
    /// Credential-endpoint requests per minute per IP; 0 turns it off.
    pub rate_limit_per_ip: u32,
    /// How long a rotated refresh token still works once.
    pub refresh_reuse_grace: HumanDuration,
    /// Scheduled key rotation; `None` is off (configured as `0`).
    pub key_rotation_interval: Option<HumanDuration>,
    /// Log filter (`tracing_subscriber::EnvFilter` syntax).
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Database pool size.
    pub database_max_connections: u32,
    /// How long to wait for a database connection.
    pub database_timeout: HumanDuration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Origins allowed by CORS (lower case, no trailing slash); empty turns CORS off.
    pub cors_origins: Vec<String>,
    /// How long audit events are kept.
    pub audit_retention: HumanDuration,
    /// Password hashes allowed to wait before 503.
    pub hash_queue: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: HumanDuration,
    /// Absolute lifetime of a session, however often it is refreshed.
    pub session_max_age: HumanDuration,
    /// How long after its password check a `fresh` token still passes the fresh rule.
    pub fresh_max_age: HumanDuration,
    /// When set, `/metrics` answers only requests bearing this token.
    pub metrics_token: Option<SecretString>,
    /// The product name, logo and colour the pages show.
    pub branding: Branding,
    /// Whether people may register themselves (`TESSERA_REGISTRATION=open`).
    pub registration_open: bool,
    /// The mail server; `None`: mails are logged (`dev`) or not sent (`prod`).
    pub smtp_url: Option<SmtpUrl>,
    /// The sender of every mail, as a mailbox (`Name <address>`).
    pub email_from: String,
    /// Whether signing in needs a verified address.
    pub require_verified_email: bool,
    /// How long a verification link works.
    pub email_link_ttl: HumanDuration,
    /// How long a password-reset link works.
    pub password_reset_ttl: HumanDuration,
    /// Whether passkeys are offered (`TESSERA_PASSKEYS`); they are off anyway when the
    /// issuer's host is an IP address (see [`Config::passkeys_enabled`]).
    pub passkeys: bool,
}

/// Which database engine a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    /// An SQLite file at this path (as written in the URL, without a query string).
    Sqlite(String),
    /// A PostgreSQL server.
    Postgres,
}

/// `dev` (anything goes) or `prod` (unsafe settings refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Development.
    Dev,
    /// Production.
    Prod,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// A configuration problem: one line naming the variable and what is wrong. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// The most failed logins per login name and address that `prod` accepts before 429.
const PROD_MAX_LOGIN_FAILURES: u32 = 100;

impl Config {
    /// Defaults → file → process environment. `path` is `--config` (a missing file is then an
    /// error); without it, `tessera.toml` in the working directory is read when present.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with(PREFIX)) else { continue };
            match value.into_string() {
                Ok(value) => env.push((name.to_owned(), value)),
                Err(_) if env_key(name).is_some() => return Err(ConfigError(format!("{name}: is not valid UTF-8"))),
                Err(_) => {}
            }
        }
        Self::load_from(path, env)
    }

    /// Like [`Config::load`], with an explicit environment instead of the process's.
    pub fn load_from(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("tessera.toml")).filter(|p| p.is_file()),
        };
        let mut layers = Layers::default();
        if let Some(file) = &file {
            layers.values.extend(file_layer(file)?);
        }
        layers.add_env(env);
        Self::from_layers(&layers)
    }

    fn from_layers(l: &Layers) -> Result<Config, ConfigError> {
        let listen: SocketAddr = l.parse("listen", SocketAddr::from(([127, 0, 0, 1], 8080)), |s| {
            s.parse().map_err(|_| format!("`{}` is not an address such as 127.0.0.1:8080", truncated(s, 60)))
        })?;
        let database_url = l.parse("database_url", DatabaseUrl::new("sqlite://tessera.db"), parse_database_url)?;
        let issuer = l.parse("issuer", format!("http://{listen}"), parse_issuer)?;
        let audience = match l.list("audience")? {
            Some((list, from)) => {
                if list.is_empty() {
                    return Err(fail("audience", from, "must name at least one audience"));
                }
                let mut unique: Vec<String> = Vec::with_capacity(list.len());
                for a in list {
                    if !unique.contains(&a) {
                        unique.push(a);
                    }
                }
                unique
            }
            None => vec![issuer.clone()],
        };
        // Token lifetimes are whole seconds in `exp`.
        let access_token_ttl = l.positive_duration("access_token_ttl", HumanDuration::from_secs(15 * 60), 1)?;
        let refresh_token_ttl = l.positive_duration("refresh_token_ttl", HumanDuration::from_secs(30 * 86_400), 1)?;
        let signing_alg = l.parse("signing_alg", SigningAlg::ES256, |s| s.parse::<SigningAlg>().map_err(|e| e.to_string()))?;
        let hs256_secret = l.text("hs256_secret")?.map(|(s, _)| SecretString::from(s));
        let metrics_token = l.text("metrics_token")?.filter(|(s, _)| !s.is_empty()).map(|(s, _)| SecretString::from(s));
        let master_key = match l.text("master_key")? {
            None => None,
            Some((s, from)) => Some(Arc::new(MasterKey::parse_base64(&s).map_err(|e| fail("master_key", from, e))?)),
        };
        let profile = l.parse("profile", Profile::Dev, |s| match s.to_ascii_lowercase().as_str() {
            "dev" => Ok(Profile::Dev),
            "prod" => Ok(Profile::Prod),
            _ => Err(format!("`{}` is not dev or prod", truncated(s, 20))),
        })?;
        let u32_max = i128::from(u32::MAX);
        let argon2 = Argon2Params {
            memory_kib: l.number("argon2_memory_kib", 19_456, 8, u32_max)?,
            iterations: l.number("argon2_iterations", 2, 1, u32_max)?,
            parallelism: l.number("argon2_parallelism", 1, 1, 16)?,
        };
        if u64::from(argon2.memory_kib) < 8 * u64::from(argon2.parallelism) {
            return Err(fail(
                "argon2_memory_kib",
                l.origin("argon2_memory_kib"),
                format!("must be at least 8 × TESSERA_ARGON2_PARALLELISM = {}", 8 * u64::from(argon2.parallelism)),
            ));
        }
        let log = l.parse("log", "info".to_owned(), |s| match tracing_subscriber::EnvFilter::try_new(s) {
            Ok(_) => Ok(s.to_owned()),
            Err(_) => Err(format!("`{}` is not a log filter (e.g. info, or tessera=debug,warn)", truncated(s, 60))),
        })?;
        let log_format = l.parse("log_format", LogFormat::Text, |s| match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("`{}` is not text or json", truncated(s, 20))),
        })?;
        let trusted_proxies = match l.list("trusted_proxies")? {
            None => vec![],
            Some((items, from)) => items
                .iter()
                .map(|s| s.parse().map_err(|_| fail("trusted_proxies", from, format!("`{}` is not an IP address", truncated(s, 60)))))
                .collect::<Result<_, _>>()?,
        };
        let cors_origins = match l.list("cors_origins")? {
            None => vec![],
            Some((items, from)) => {
                items.iter().map(|s| parse_origin(s).map_err(|e| fail("cors_origins", from, e))).collect::<Result<_, _>>()?
            }
        };
        let branding = Branding {
            product_name: l.parse("product_name", Branding::default().product_name, parse_product_name)?,
            logo_path: l.text("logo_path")?.map(|(s, from)| parse_logo_path(&s).map_err(|e| fail("logo_path", from, e))).transpose()?,
            brand_color: l.parse("brand_color", BrandColor::DEFAULT, BrandColor::parse)?,
        };
        let key_rotation_interval = Some(l.duration("key_rotation_interval", HumanDuration::ZERO)?).filter(|d| !d.is_zero());
        let config = Config {
            listen,
            database_url,
            issuer,
            audience,
            access_token_ttl,
            refresh_token_ttl,
            signing_alg,
            hs256_secret,
            master_key,
            profile,
            argon2,
            login_max_failures: l.number("login_max_failures", 10, 1, u32_max)?,
            login_failure_window: l.positive_duration("login_failure_window", HumanDuration::from_secs(15 * 60), 0)?,
            rate_limit_per_ip: l.number("rate_limit_per_ip", 120, 0, u32_max)?,
            refresh_reuse_grace: l.duration("refresh_reuse_grace", HumanDuration::ZERO)?,
            key_rotation_interval,
            log,
            log_format,
            database_max_connections: l.number("database_max_connections", 10, 1, u32_max)?,
            database_timeout: l.positive_duration("database_timeout", HumanDuration::from_secs(5), 0)?,
            trusted_proxies,
            cors_origins,
            audit_retention: l.positive_duration("audit_retention", HumanDuration::from_secs(90 * 86_400), 0)?,
            hash_queue: l.number("hash_queue", 64, 1, u32_max)?,
            shutdown_grace: l.duration("shutdown_grace", HumanDuration::from_secs(10))?,
            session_max_age: l.positive_duration("session_max_age", HumanDuration::from_secs(90 * 86_400), 0)?,
            fresh_max_age: l.positive_duration("fresh_max_age", HumanDuration::from_secs(10 * 60), 0)?,
            metrics_token,
            branding,
            registration_open: l.parse("registration", true, |s| match s.to_ascii_lowercase().as_str() {
                "open" => Ok(true),
                "closed" => Ok(false),
                _ => Err(format!("`{}` is not open or closed", truncated(s, 20))),
            })?,
            smtp_url: None,
            email_from: String::new(),
            require_verified_email: false,
            email_link_ttl: HumanDuration::from_secs(86_400),
            password_reset_ttl: HumanDuration::from_secs(30 * 60),
            passkeys: true,
        };
        let config = Config {
            smtp_url: l
                .text("smtp_url")?
                .filter(|(s, _)| !s.is_empty())
                .map(|(s, from)| smtp::parse_smtp_url(&s).map_err(|e| fail("smtp_url", from, e)))
                .transpose()?,
            email_from: match l.text("email_from")? {
                Some((s, from)) => smtp::parse_sender(&s).map_err(|e| fail("email_from", from, e))?,
                None => smtp::default_sender(&config.branding.product_name, &config.issuer),
            },
            require_verified_email: l.parse("require_verified_email", false, |s| match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(format!("`{}` is not true or false", truncated(s, 20))),
            })?,
            email_link_ttl: l.positive_duration("email_link_ttl", HumanDuration::from_secs(86_400), 60)?,
            password_reset_ttl: l.positive_duration("password_reset_ttl", HumanDuration::from_secs(30 * 60), 60)?,
            passkeys: l.parse("passkeys", true, |s| match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(format!("`{}` is not true or false", truncated(s, 20))),
            })?,
            ..config
        };
        config.validate()?;
        Ok(config)
    }

    /// The rules that span several settings, and the `prod` profile's refusals (all of them,
    /// on one line). [`Config::load`] runs this; call it again after changing a loaded config.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.audience.is_empty() {
            return Err(ConfigError("TESSERA_AUDIENCE: must name at least one audience".to_owned()));
        }
        let secret_len = self.hs256_secret.as_ref().map(|s| s.expose_secret().len());
        if self.signing_alg == SigningAlg::HS256 {
            match secret_len {
                None => {
                    return Err(ConfigError(
                        "TESSERA_HS256_SECRET: is not set; TESSERA_SIGNING_ALG=HS256 needs a shared secret of at least 32 bytes".to_owned(),
                    ));
                }
                Some(n) if n < 32 => {
                    return Err(ConfigError("TESSERA_HS256_SECRET: is shorter than 32 bytes, the minimum for HS256".to_owned()));
                }
                Some(_) => {}
            }
        }
        if self.profile == Profile::Prod {
            let mut problems = Vec::new();
            match &self.master_key {
                None => problems.push("TESSERA_MASTER_KEY is not set; private keys would be stored unencrypted".to_owned()),
                Some(key) if key.is_all_zero() => {
                    problems.push("TESSERA_MASTER_KEY is all zero bytes; use 32 random bytes".to_owned());
                }
                Some(_) => {}
            }
            if !self.issuer.starts_with("https://") {
                problems.push(format!("TESSERA_ISSUER `{}` is not https", truncated(&self.issuer, 60)));
            }
            if secret_len.is_some_and(|n| n < 32) {
                problems.push("TESSERA_HS256_SECRET is shorter than 32 bytes".to_owned());
            }
            let Argon2Params { memory_kib, iterations, .. } = self.argon2;
            if memory_kib < 19_456 || iterations < 2 {
                problems.push(format!(
                    "the argon2 cost (TESSERA_ARGON2_MEMORY_KIB={memory_kib}, TESSERA_ARGON2_ITERATIONS={iterations}) \
                     is under 19456 KiB / 2 iterations"
                ));
            }
            if self.rate_limit_per_ip == 0 {
                problems.push("TESSERA_RATE_LIMIT_PER_IP=0 turns the per-address limit of the credential endpoints off".to_owned());
            }
            if self.login_max_failures > PROD_MAX_LOGIN_FAILURES {
                problems.push(format!(
                    "TESSERA_LOGIN_MAX_FAILURES={} is over {PROD_MAX_LOGIN_FAILURES}: passwords could be guessed at leisure",
                    self.login_max_failures
                ));
            }
            if self.require_verified_email && self.smtp_url.is_none() {
                problems.push("TESSERA_REQUIRE_VERIFIED_EMAIL=true without TESSERA_SMTP_URL: nobody could verify an address".to_owned());
            }
            if !problems.is_empty() {
                return Err(ConfigError(format!("TESSERA_PROFILE=prod: {}", problems.join("; "))));
            }
        }
        Ok(())
    }

    /// Settings for tests: all defaults (neither the process environment nor a `tessera.toml`
    /// is read), listen `127.0.0.1:0`, the given database URL, argon2 cost lowered to
    /// 1024 KiB / 1 iteration / 1 lane, issuer `http://tessera.test`.
    ///
    /// # Panics
    ///
    /// If `database_url` is neither `sqlite://…` nor `postgres://…`.
    pub fn for_tests(database_url: &str) -> Config {
        let mut layers = Layers::default();
        layers.add_env(
            [
                ("TESSERA_LISTEN", "127.0.0.1:0"),
                ("TESSERA_ISSUER", "http://tessera.test"),
                ("TESSERA_DATABASE_URL", database_url),
                ("TESSERA_ARGON2_MEMORY_KIB", "1024"),
                ("TESSERA_ARGON2_ITERATIONS", "1"),
                ("TESSERA_ARGON2_PARALLELISM", "1"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        match Self::from_layers(&layers) {
            Ok(config) => config,
            Err(e) => panic!("Config::for_tests: {e}"),
        }
    }

    /// Whether passkeys are on: `TESSERA_PASSKEYS` and an issuer whose host is a domain name
    /// (browsers refuse WebAuthn on an IP address).
    pub fn passkeys_enabled(&self) -> bool {
        self.passkeys && url::Url::parse(&self.issuer).is_ok_and(|u| matches!(u.host(), Some(url::Host::Domain(_))))
    }

    /// Which engine the database URL names: `sqlite://PATH` (or `sqlite:PATH`) is SQLite, anything
    /// else PostgreSQL (loading refuses every other scheme).
    pub fn database_kind(&self) -> DatabaseKind {
        match sqlite_path(self.database_url.expose()) {
            Some(path) => DatabaseKind::Sqlite(path.to_owned()),
            None => DatabaseKind::Postgres,
        }
    }
}

#[cfg(test)]
mod tests;
