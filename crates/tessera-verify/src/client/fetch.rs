//! The HTTP calls a verifier makes to Tessera: discovery, JWKS, one page of the revocation
//! feed, introspection. Every failure becomes `VerifyError::Unavailable` with a loggable detail.

use super::ClientCredentials;
use crate::{FeedPage, VerifyError};
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// RFC 8414 metadata, only the fields a verifier needs.
#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> VerifyError {
    VerifyError::Unavailable(format!("{what}: {e}"))
}

async fn read_json<T: DeserializeOwned>(what: &str, res: reqwest::Response) -> Result<T, VerifyError> {
    let status = res.status();
    if !status.is_success() {
        return Err(unavailable(what, format!("answered {status}")));
    }
    res.json::<T>().await.map_err(|e| unavailable(what, e))
}

pub(crate) async fn metadata(http: &reqwest::Client, base: &str) -> Result<Metadata, VerifyError> {
    let url = format!("{base}/.well-known/oauth-authorization-server");
    let res = http.get(&url).send().await.map_err(|e| unavailable("discovery", e))?;
    read_json("discovery", res).await
}

pub(crate) async fn jwks(http: &reqwest::Client, url: &str) -> Result<JwkSet, VerifyError> {
    let res = http.get(url).send().await.map_err(|e| unavailable("JWKS", e))?;
    read_json("JWKS", res).await
}

/// One page of `GET /v1/revocations`; `wait` long-polls, so the request may take that long.
pub(crate) async fn feed_page(
    http: &reqwest::Client,
    url: &str,
    creds: &ClientCredentials,
    since: Option<&str>,
    wait: Duration,
) -> Result<FeedPage, VerifyError> {
    let mut query: Vec<(&str, String)> = vec![("wait", wait.as_secs().to_string())];
    if let Some(cursor) = since {
        query.push(("since", cursor.to_owned()));
    }
    let res = http
        .get(url)
        .query(&query)
        .basic_auth(&creds.id, Some(&creds.secret))
        // The server holds the request up to `wait`; give the answer time to travel back.
        .timeout(wait + Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| unavailable("revocation feed", e))?;
    read_json("revocation feed", res).await
}

/// RFC 7662 introspection: the raw JSON answer (`{"active": …, …claims}`).
pub(crate) async fn introspect(
    http: &reqwest::Client,
    url: &str,
    creds: &ClientCredentials,
    token: &str,
) -> Result<serde_json::Value, VerifyError> {
    let res = http
        .post(url)
        .basic_auth(&creds.id, Some(&creds.secret))
        .form(&[("token", token), ("token_type_hint", "access_token")])
        .send()
        .await
        .map_err(|e| unavailable("introspection", e))?;
    read_json("introspection", res).await
}
