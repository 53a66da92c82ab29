//! Use cases. [`Tessera`] holds what every operation needs (the store, the clock, the key
//! ring, the revocation list, the password hasher) and each file adds the operations of one
//! area as methods. Nothing here knows about HTTP or SQL.

mod accounts;
mod audit;
mod browser;
mod cache;
mod clients;
mod codes;
mod console;
mod email;
mod error;
mod factors;
mod forward;
mod introspection;
mod keys;
mod mail;
mod oauth;
mod oidc;
mod passkeys;
mod passwords;
mod ratelimit;
mod revocation;
mod sessions;
mod shared_keys;
mod tokens;

pub use accounts::{AdminUserPatch, ProfilePatch, Registration, UserPage};
pub use audit::AuditPage;
pub use browser::{BrowserSignIn, TOUCH_EVERY};
pub use clients::{ClientSpec, ClientUpdate, GrantRefused, InvalidClient, NewClient};
pub use console::{ConsoleAdmin, FAILED_SIGN_IN_KINDS, Overview, PersonDetail, SIGN_IN_KINDS, SessionKind, UserSearchPage};
pub use email::{RESET_MAILS_PER_HOUR, VERIFY_MAILS_PER_HOUR};
pub use error::{Error, Result, TokenError};
pub use factors::{MfaMethod, TotpEnrolment};
pub use forward::{Requirements, Unmet, meets};
pub use introspection::{Introspection, NotYourToken, Revoker};
pub use keys::{ALGORITHM_CHANGE_DELAY, KeyInfo, KeyRing, RotatedKey};
pub use mail::{FIRST_BACKOFF, GIVE_UP_AFTER, MAIL_BATCH, MAX_BACKOFF, backoff};
pub use oauth::{ClientAuth, OAuthRefusal, OAuthResult, TokenGrant, TokenRequest};
pub use oidc::{
    AllowedApp, AuthorizationRequest, AuthorizeOutcome, AuthorizeParams, AuthorizeRefusal, CODE_TTL, ConsentPrompt, GrantError, LogoutHint,
    Prompt, UserInfo, at_hash,
};
pub use passkeys::{CEREMONY_TTL, Ceremony, MAX_NAME_CHARS, PasskeyInfo, RelyingParty};
pub use passwords::PasswordHasher;
pub use ratelimit::IpRateLimiter;
pub use revocation::{FeedPage, FeedReader, MAX_FEED_WAIT, RevocationList};
pub use sessions::{ClientMeta, IssuedTokens, LoginId};

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::keys::{MasterKey, SigningAlg};
use crate::store::DynStore;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use tessera_verify::Audience;

/// Clock leeway allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 5;

/// The part of the configuration the use cases read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `iss` of every token.
    pub issuer: String,
    /// `aud` of every token.
    pub audience: Audience,
    /// Every accepted audience.
    pub audiences: Vec<String>,
    /// Access-token lifetime, seconds.
    pub access_ttl: i64,
    /// Refresh-token lifetime.
    pub refresh_ttl: Duration,
    /// How long a rotated refresh token may still be used once (racing tabs).
    pub reuse_grace: Duration,
    /// The configured signing algorithm.
    pub signing_alg: SigningAlg,
    /// Shared secret for HS256.
    pub hs256_secret: Option<SecretString>,
    /// Encrypts private keys at rest.
    pub master_key: Option<std::sync::Arc<MasterKey>>,
    /// Scheduled key rotation.
    pub key_rotation_interval: Option<Duration>,
    /// Failed logins per account before 429.
    pub login_max_failures: u32,
    /// Window in which failed logins count.
    pub login_failure_window: Duration,
    /// How long audit events are kept.
    pub audit_retention: Duration,
    /// Absolute lifetime of a session, however often it is refreshed.
    pub session_max_age: Duration,
    /// How long after its password check a `fresh` token passes the fresh rule, seconds.
    pub fresh_max_age: i64,
    /// Whether people may register themselves.
    pub registration_open: bool,
    /// The product name people see (the issuer of TOTP entries in authenticator apps).
    pub product_name: String,
}

impl Settings {
    /// Picks what the use cases need from the configuration.
    pub fn from_config(config: &Config) -> Self {
        Settings {
            issuer: config.issuer.clone(),
            audience: Audience::from_list(&config.audience),
            audiences: config.audience.clone(),
            access_ttl: i64::try_from(config.access_token_ttl.as_secs()).unwrap_or(i64::MAX).max(1),
            refresh_ttl: config.refresh_token_ttl.as_std(),
            reuse_grace: config.refresh_reuse_grace.as_std(),
            signing_alg: config.signing_alg,
            hs256_secret: config.hs256_secret.clone(),
            master_key: config.master_key.clone(),
            key_rotation_interval: config.key_rotation_interval.map(|d| d.as_std()),
            login_max_failures: config.login_max_failures,
            login_failure_window: config.login_failure_window.as_std(),
            audit_retention: config.audit_retention.as_std(),
            session_max_age: config.session_max_age.as_std(),
            fresh_max_age: i64::try_from(config.fresh_max_age.as_secs()).unwrap_or(i64::MAX),
            registration_open: config.registration_open,
            product_name: config.branding.product_name.clone(),
        }
    }
}

/// Everything the use cases share; one per process, behind an `Arc`.
#[derive(Debug)]
pub struct Tessera {
    pub(crate) store: DynStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: Settings,
    pub(crate) keys: KeyRing,
    /// What every access token must say (`iss`, time with [`LEEWAY_SECS`]), made once.
    pub(crate) expected: tessera_verify::Expected,
    pub(crate) revocations: RevocationList,
    pub(crate) hasher: PasswordHasher,
    pub(crate) rate_limiter: IpRateLimiter,
    pub(crate) verified: cache::VerifiedTokens,
    pub(crate) metrics: std::sync::Arc<crate::metrics::Metrics>,
    pub(crate) clients: cache::RecentClients,
    /// Signs the `login_after` markers of authorization requests.
    pub(crate) markers: oidc::MarkerKey,
    /// Seals and opens authorization codes.
    pub(crate) codes: codes::CodeKey,
    /// The root of the keys every instance shares.
    shared_root: shared_keys::SharedRoot,
    pub(crate) outbox: mail::Outbox,
    /// The WebAuthn relying party; `None` when passkeys are off.
    pub(crate) passkeys: Option<passkeys::RelyingParty>,
}

impl Tessera {
    /// Builds the service on a migrated store: loads or creates signing keys and loads the
    /// live revocations.
    pub async fn start(config: &Config, store: DynStore, clock: Arc<dyn Clock>) -> Result<Arc<Self>> {
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::default());
        let hasher = PasswordHasher::new(&config.argon2, config.hash_queue, metrics.hash_wait.clone())?;
        let expected = tessera_verify::Expected::any_audience(config.issuer.clone())
            .with_leeway(Duration::from_secs(LEEWAY_SECS.unsigned_abs()))
            .map_err(Error::internal)?;
        let shared_root = shared_keys::SharedRoot::load(config.master_key.as_ref(), &store, clock.now()).await?;
        let tessera = Arc::new(Tessera {
            markers: oidc::MarkerKey::new(&shared_root.derive(oidc::MARKER_PURPOSE)?),
            codes: codes::CodeKey::new(&shared_root.derive(codes::CODE_PURPOSE)?),
            shared_root,
            store,
            clock,
            settings: Settings::from_config(config),
            keys: KeyRing::empty(),
            expected,
            revocations: RevocationList::default(),
            hasher,
            rate_limiter: IpRateLimiter::new(config.rate_limit_per_ip),
            verified: cache::VerifiedTokens::new(20_000),
            metrics,
            clients: cache::RecentClients::default(),
            outbox: mail::Outbox::from_config(config)?,
            passkeys: passkeys::RelyingParty::from_config(config)?,
        });
        tessera.seal_unsealed_keys().await?;
        tessera.ensure_keys().await?;
        tessera.sync_revocations().await?;
        Ok(tessera)
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The store, for health checks.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// The metrics, for the HTTP layer to count requests.
    pub fn metrics(&self) -> &std::sync::Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The metrics in Prometheus text format, with the gauges read now.
    pub async fn render_metrics(&self) -> String {
        let m = &self.metrics;
        m.hash_queue_depth.set(i64::try_from(self.hasher.queue_depth()).unwrap_or(i64::MAX));
        let (size, idle) = self.store.pool_stats();
        m.db_connections.get_or_create(&vec![("state", "idle".to_owned())]).set(i64::from(idle));
        m.db_connections.get_or_create(&vec![("state", "in_use".to_owned())]).set(i64::from(size.saturating_sub(idle)));
        match self.oldest_unsent_mail_age().await {
            Ok(age) => {
                m.mail_oldest_unsent_age.set(age);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the age of the oldest unsent mail"),
        }
        if let Ok(keys) = self.list_keys() {
            for status in
                [crate::domain::keys::KeyStatus::Next, crate::domain::keys::KeyStatus::Active, crate::domain::keys::KeyStatus::Retiring]
            {
                let n = keys.iter().filter(|k| k.status == status).count();
                m.signing_keys.get_or_create(&vec![("status", status.as_str().to_owned())]).set(i64::try_from(n).unwrap_or(0));
            }
        }
        m.render()
    }

    /// The service's notion of now.
    /// A 32-byte key for `purpose`, the same on every instance of the deployment (derived from
    /// the master key, or the database's shared secret without one).
    pub fn shared_key(&self, purpose: &str) -> Result<[u8; 32]> {
        self.shared_root.derive(purpose)
    }

    pub fn clock_now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Now, to the millisecond: what storage keeps, so an answer and a later read agree.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        let now = self.clock.now();
        now.replace_millisecond(now.millisecond()).unwrap_or(now)
    }
}
