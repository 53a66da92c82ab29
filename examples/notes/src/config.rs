//! Settings from `NOTES_*` environment variables, read once in `main` and passed down.

use std::net::SocketAddr;
use std::time::Duration;
use tessera_verify::{ClientCredentials, Verifier, VerifierBuilder};

/// Why the settings are unusable; names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    key: &'static str,
    problem: String,
}

/// Everything notes needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `NOTES_LISTEN` (default `127.0.0.1:8081`).
    pub listen: SocketAddr,
    /// `NOTES_DATABASE_URL` (default: a `notes.db` in the system temp directory).
    pub database_url: String,
    /// `NOTES_TESSERA_ISSUER`: the `iss` of accepted tokens and where Tessera is reached.
    pub issuer: String,
    /// `NOTES_TESSERA_URL`: reach Tessera here instead of at the issuer (e.g. an internal address).
    pub tessera_url: Option<String>,
    /// `NOTES_AUDIENCE`: the accepted `aud` (default: the issuer, Tessera's default).
    pub audience: Option<String>,
    /// `NOTES_CLIENT_ID`, `NOTES_CLIENT_SECRET`: notes' own Tessera client, for the revocation feed.
    pub credentials: ClientCredentials,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment in `main`).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: std::collections::HashMap<String, String> = vars.into_iter().collect();
        let get = |key: &'static str| vars.get(key).filter(|v| !v.is_empty()).cloned();
        let require = |key: &'static str| get(key).ok_or(ConfigError { key, problem: "is required".into() });
        let listen = get("NOTES_LISTEN")
            .unwrap_or_else(|| "127.0.0.1:8081".into())
            .parse()
            .map_err(|e| ConfigError { key: "NOTES_LISTEN", problem: format!("{e}") })?;
        let database_url =
            get("NOTES_DATABASE_URL").unwrap_or_else(|| format!("sqlite://{}", std::env::temp_dir().join("notes.db").display()));
        Ok(Config {
            listen,
            database_url,
            issuer: require("NOTES_TESSERA_ISSUER")?,
            tessera_url: get("NOTES_TESSERA_URL"),
            audience: get("NOTES_AUDIENCE"),
            credentials: ClientCredentials::new(require("NOTES_CLIENT_ID")?, require("NOTES_CLIENT_SECRET")?),
        })
    }

    /// The verifier these settings describe: local checks with Tessera's keys, revocations
    /// from the feed. Tests adjust the builder (a pinned clock, another audience) before `build`.
    pub fn verifier(&self) -> VerifierBuilder {
        let mut builder = Verifier::builder(&self.issuer).revocation_feed(self.credentials.clone());
        if let Some(url) = &self.tessera_url {
            builder = builder.fetch_from(url);
        }
        if let Some(audience) = &self.audience {
            builder = builder.audience(audience);
        }
        // Tessera's default access-token lifetime is 15 minutes; keep subject cut-offs a bit longer.
        builder.max_token_lifetime(Duration::from_secs(30 * 60))
    }
}
