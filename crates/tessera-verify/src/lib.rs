//! # tessera-verify
//!
//! Verify Tessera access tokens in your own service, and the claim types
//! the server issues from, so what is issued and what is verified cannot drift apart.
//!
//! ## A tour
//!
//! - [`Claims`] / [`Audience`]: the access token's claims (RFC 9068 profile). Always present;
//!   the server itself uses only these.
//! - [`KeySet`] and [`Expected`]: a parsed JWKS and the checks a token must pass (`typ` is
//!   `at+jwt`, the algorithm is the one its key is published for, signature, `iss`, `aud`,
//!   `exp`, `nbf` with a bounded leeway), as pure functions of a token and "now".
//! - [`RevocationSet`] and [`FeedPage`]: what Tessera's revocation feed has said (revoked
//!   `jti`s, ended sessions, subject cut-offs), pruned as the tokens it could refuse expire.
//! - [`VerifyError`]: why a token was refused, with Tessera's problem codes.
//! - feature **`client`**: [`Verifier`], which discovers Tessera's endpoints, caches its JWKS
//!   (refetching on an unknown `kid`, rate-limited), follows the revocation feed in a
//!   background task, or asks introspection instead ([`Verifier::introspecting`]).
//! - feature **`axum`**: the `Authenticated` extractor and `Rejection`s answered as
//!   `application/problem+json`, exactly as Tessera answers.
//! - feature **`openapi`**: `utoipa::ToSchema` for the wire types ([`Claims`], [`Audience`],
//!   [`FeedPage`] and its entries); the server documents its answers with them.
//!
//! Default features are none: linking the claim types costs no HTTP client.
//!
//! ## Checking a token with keys you already have
//!
//! ```
//! use tessera_verify::{Expected, KeySet, VerifyError};
//! use tessera_verify::JwkSet;
//!
//! let jwks: JwkSet = serde_json::from_str(r#"{"keys": []}"#)?;
//! let keys = KeySet::from_jwks(&jwks);
//! let expected = Expected::new("https://auth.example.com");
//! let now = 1_700_000_000;
//! // A token that is not a JWT at all is refused before any key is looked at.
//! let refused = keys.verify("not-a-jwt", &expected, now);
//! assert!(matches!(refused, Err(VerifyError::Malformed(_))));
//! assert_eq!(refused.unwrap_err().code(), "invalid_token");
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! ## In a service (features `client` and `axum`)
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::get};
//! use tessera_verify::{Authenticated, ClientCredentials, Rejection, Verifier};
//!
//! let verifier = Verifier::builder("https://auth.example.com")
//!     .audience("https://auth.example.com")
//!     .revocation_feed(ClientCredentials::new("svc_…", "tcs_…"))
//!     .build()
//!     .await?;
//!
//! async fn report(auth: Authenticated) -> Result<String, Rejection> {
//!     auth.require_scope("reports:read")?;
//!     Ok(format!("hello {}", auth.sub))
//! }
//!
//! let app: Router = Router::new().route("/report", get(report)).with_state(verifier);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod claims;
mod clock;
mod error;
mod keys;
mod revocations;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "axum")]
mod extract;

pub use claims::{Audience, Claims};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::VerifyError;
/// The JWKS and JWK types keys are parsed from (re-exported so callers need not name jsonwebtoken).
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use keys::{DEFAULT_LEEWAY, Expected, KeySet, MAX_LEEWAY, VerifyingKey};
pub use revocations::{DEFAULT_MAX_TOKEN_LIFETIME, FeedPage, RevocationSet, RevokedSession, RevokedSubject, RevokedToken};

#[cfg(feature = "client")]
pub use client::{
    ClientCredentials, DEFAULT_FEED_WAIT, DEFAULT_INTROSPECTION_CACHE_TTL, DEFAULT_KEYS_MAX_AGE, DEFAULT_MAX_FEED_STALENESS,
    DEFAULT_REFETCH_INTERVAL, Verifier, VerifierBuilder, VerifierStats,
};
#[cfg(feature = "axum")]
pub use extract::{Authenticated, Rejection, bearer_token};
