//! Storage behind one interface, [`Store`], with one implementation per database engine.
//! Services see domain types only; row structs and SQL stay in the engine's module.
//!
//! Every operation that must be atomic (rotating a refresh token, ending sessions together
//! with their revocation-feed entries, rotating keys) is one method, so each engine can make
//! it one transaction.

/// One engine's migrations, `migrations/ENGINE/000N_NAME.sql`: both engines have the same
/// numbers and names, so the list is written once. A new migration is one line here and one
/// file per engine.
macro_rules! migrator {
    ($engine:literal) => {{
        use sqlx::SqlSafeStr;
        use sqlx::migrate::{Migration, MigrationType, Migrator};
        let step = |version, description: &'static str, sql: &'static str| {
            Migration::new(version, description.into(), MigrationType::Simple, sql.into_sql_str(), false)
        };
        Migrator::with_migrations(vec![
            step(1, "init", include_str!(concat!("../../migrations/", $engine, "/0001_init.sql"))),
            step(2, "clients", include_str!(concat!("../../migrations/", $engine, "/0002_clients.sql"))),
            step(3, "rate_limits", include_str!(concat!("../../migrations/", $engine, "/0003_rate_limits.sql"))),
            step(4, "audit", include_str!(concat!("../../migrations/", $engine, "/0004_audit.sql"))),
            step(5, "rotation", include_str!(concat!("../../migrations/", $engine, "/0005_rotation.sql"))),
            step(6, "grace", include_str!(concat!("../../migrations/", $engine, "/0006_grace.sql"))),
            step(7, "client_audiences", include_str!(concat!("../../migrations/", $engine, "/0007_client_audiences.sql"))),
            step(8, "oidc", include_str!(concat!("../../migrations/", $engine, "/0008_oidc.sql"))),
            step(9, "email", include_str!(concat!("../../migrations/", $engine, "/0009_email.sql"))),
            step(10, "second_factors", include_str!(concat!("../../migrations/", $engine, "/0010_second_factors.sql"))),
            step(11, "console", include_str!(concat!("../../migrations/", $engine, "/0011_console.sql"))),
            step(14, "code_exchange", include_str!(concat!("../../migrations/", $engine, "/0014_code_exchange.sql"))),
            step(15, "sealed_codes", include_str!(concat!("../../migrations/", $engine, "/0015_sealed_codes.sql"))),
            step(16, "shared_secret", include_str!(concat!("../../migrations/", $engine, "/0016_shared_secret.sql"))),
        ])
    }};
}

mod browser;
mod console;
pub mod factors;
pub mod flow;
mod mail;
mod postgres;
mod rows;
mod shared;
mod sqlite;

use crate::domain::keys::{KeyStatus, Kid, SigningAlg};
use crate::domain::{
    Client, ClientId, ClientName, Email, PasswordHash, RedirectUris, Roles, Scopes, Session, SessionId, TokenHash, User, UserId, Username,
};
use async_trait::async_trait;
use std::sync::Arc;
use time::OffsetDateTime;

/// Milliseconds since the epoch, as `*_at` columns hold time.
pub fn now_ms(t: OffsetDateTime) -> i64 {
    rows::ms(t)
}

pub use browser::{BrowserSessionScope, BrowserStore, EndedBrowserSessions};
pub use console::{AuditFilter, ConsoleCounts, ConsoleStore};
pub use mail::{Enqueued, LinkKind, LinkToken, MailKind, MailLimit, MailStore, OutgoingMail, QueuedMail};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What can go wrong in storage, in terms services can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken.
    #[error("conflict on {0:?}")]
    Conflict(Conflict),
    /// The database cannot be reached or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else; a bug or corrupt data.
    #[error("database error: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Which uniqueness rule a write broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another account has this email.
    Email,
    /// Another account has this username.
    Username,
    /// Another key already holds this status (two instances rotated at once).
    KeyStatus,
    /// Any other unique key.
    Other,
}

impl StoreError {
    pub(crate) fn other(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Other(Box::new(e))
    }
}

/// A refresh token's verifier and where it stands.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// SHA-256 of the token text.
    pub hash: TokenHash,
    /// The session (token family) it belongs to.
    pub session_id: SessionId,
    /// When it was handed out.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// When it was exchanged for a new one; a second use after this is reuse.
    pub rotated_at: Option<OffsetDateTime>,
}

/// How long after its `exp` a feed entry is still served and kept: tokens are accepted until
/// `exp` + the verifier's clock leeway, and tessera-verify allows a leeway of up to 60 s
/// (`tessera_verify::MAX_LEEWAY`), so a verifier with the largest leeway still sees the entry,
/// also on its first full read after a restart. Tessera's own list keeps entries through its
/// own 5 s leeway only.
pub const MAX_VERIFIER_LEEWAY: i64 = 60;

/// One entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// One access token, by `jti`, until its `exp`.
    Token { jti: String, exp: i64 },
    /// Every access token carrying this `sid`, until the last of them expires.
    Session { sid: String, exp: i64 },
    /// Every token of `sub` issued before `not_before`; listed until `exp`.
    Subject { sub: String, not_before: i64, exp: i64 },
}

impl Revocation {
    /// After this second the entry protects nothing and may be dropped.
    pub fn expires(&self) -> i64 {
        match self {
            Revocation::Token { exp, .. } | Revocation::Session { exp, .. } | Revocation::Subject { exp, .. } => *exp,
        }
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened.
    pub at: OffsetDateTime,
    /// What happened, e.g. `login.failed`.
    pub kind: String,
    /// Who did it (a user id or client id), when known.
    pub actor: Option<String>,
    /// To whom or what, when it applies.
    pub subject: Option<String>,
    /// From which address.
    pub ip: Option<String>,
    /// More, e.g. the reason of a failure.
    pub detail: Option<String>,
}

/// Which sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum SessionScope {
    /// One session of one user.
    One(UserId, SessionId),
    /// Every session of a user.
    AllOf(UserId),
    /// Every session of a user but one (password change).
    AllBut(UserId, SessionId),
}

/// The changes of `PATCH /v1/clients/{client_id}`: each `Some` replaces that column, and
/// nothing else is written.
#[derive(Debug, Clone, Default)]
pub struct ClientPatch {
    /// A new display name.
    pub name: Option<ClientName>,
    /// New scopes.
    pub scopes: Option<Scopes>,
    /// New redirect URIs (checked for the client's kind by the caller).
    pub redirect_uris: Option<RedirectUris>,
    /// New post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<RedirectUris>,
    /// Whether consent is skipped.
    pub first_party: Option<bool>,
}

/// How long the record of a spent authorization code is kept past the code's expiry, so that
/// a late replay still finds (and revokes) the token session issued from it. Pruning drops
/// records older than this past their expiry.
pub const CODE_KEPT_AFTER_EXPIRY: std::time::Duration = std::time::Duration::from_secs(600);

/// A signing key as stored. `private_key` is PKCS#8 DER, sealed with the master key when
/// `encrypted`; HS256 keys have none (the secret lives in configuration).
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Key id.
    pub kid: Kid,
    /// Algorithm it signs with.
    pub alg: SigningAlg,
    /// Lifecycle state.
    pub status: KeyStatus,
    /// PKCS#8 DER, possibly sealed.
    pub private_key: Option<Vec<u8>>,
    /// Whether `private_key` is sealed with the master key.
    pub encrypted: bool,
    /// The public JWK as JSON.
    pub public_jwk: Option<String>,
    /// When the key was made.
    pub created_at: OffsetDateTime,
    /// When it stopped being active.
    pub retired_at: Option<OffsetDateTime>,
}

/// The writes of one key rotation, applied together.
#[derive(Debug, Clone)]
pub struct KeyRotation {
    /// The key that was active; becomes `retiring`.
    pub retire: Option<Kid>,
    /// An existing key (the `next` one) that becomes active.
    pub promote: Option<Kid>,
    /// New keys to insert (a fresh active key when none is promoted, and the new next key).
    pub insert: Vec<StoredKey>,
    /// Keys to delete (an unused next key of another algorithm).
    pub delete: Vec<Kid>,
    /// The time of the rotation.
    pub now: OffsetDateTime,
}

/// Storage for everything Tessera keeps.
#[async_trait]
pub trait Store:
    Send + Sync + std::fmt::Debug + 'static + BrowserStore + ConsoleStore + factors::FactorStore + MailStore + flow::FlowStore
{
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Connections in the pool: `(open, idle)`.
    fn pool_stats(&self) -> (u32, u32);

    // --- people ---

    /// Creates an account; `Conflict(Email|Username)` when taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;
    /// An account by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// An account by email (case-insensitive).
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// An account by username.
    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;
    /// Changes an account's email and/or username, and nothing else (so a concurrent change
    /// of another column is never undone); the account as it is afterwards, `None` when it no
    /// longer exists. `Conflict(Email|Username)` when taken.
    async fn update_profile(
        &self,
        id: UserId,
        email: Option<&Email>,
        username: Option<&Username>,
        now: OffsetDateTime,
    ) -> Result<Option<User>, StoreError>;
    /// Replaces the password verifier only while it is still `expected` (compare and set):
    /// false when it changed meanwhile or the account is gone.
    async fn replace_password_hash(
        &self,
        id: UserId,
        expected: &PasswordHash,
        new: &PasswordHash,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Sets the admin-controlled fields that are given, and nothing else; the account as it is
    /// afterwards, `None` when it no longer exists.
    async fn update_admin_fields(
        &self,
        id: UserId,
        disabled: Option<bool>,
        roles: Option<&Roles>,
        now: OffsetDateTime,
    ) -> Result<Option<User>, StoreError>;
    /// Raises the account's token cut-off to `not_before` (never lowers it).
    async fn raise_tokens_not_before(&self, id: UserId, not_before: i64, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Deletes an account with its sessions, appending `revocations` to the feed in the same transaction.
    async fn delete_user(&self, id: UserId, revocations: &[Revocation], now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Accounts in id order, after `after`.
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError>;

    // --- service clients ---

    /// Registers a client.
    async fn insert_client(&self, client: &Client) -> Result<(), StoreError>;
    /// A client by id.
    async fn client(&self, id: &ClientId) -> Result<Option<Client>, StoreError>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError>;
    /// Replaces a client's secret verifier; false when there is no such client.
    async fn set_client_secret(&self, id: &ClientId, hash: &TokenHash, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Deletes a client, appending `revocations` to the feed in the same transaction.
    async fn delete_client(&self, id: &ClientId, revocations: &[Revocation], now: OffsetDateTime) -> Result<bool, StoreError>;
    /// Applies `patch` (only the columns it names, plus `updated_at`); the client as it is
    /// afterwards, `None` when there is no such client.
    async fn update_client(&self, id: &ClientId, patch: &ClientPatch, now: OffsetDateTime) -> Result<Option<Client>, StoreError>;
    /// Ends every live token session issued to `client` (people's sessions through the
    /// authorization endpoint) and appends one feed entry per ended session (expiring at
    /// `feed_exp`), in one transaction. Returns the sessions it ended.
    async fn end_client_sessions(&self, client: &ClientId, now: OffsetDateTime, feed_exp: i64) -> Result<Vec<SessionId>, StoreError>;

    // --- sessions and refresh tokens ---

    /// Starts a session with its first refresh token, only while the account is as `seen`
    /// (enabled, same roles, same token cut-off) and, when the session names a browser
    /// session, while that browser session exists: false, and nothing written, when an admin
    /// or the person changed the account since it was read, or signed out meanwhile, so a
    /// sign-in racing a disabling, a role change or a sign-out cannot outlive it.
    async fn insert_session(&self, session: &Session, token: &RefreshToken, seen: &User) -> Result<bool, StoreError>;
    /// A session by id.
    async fn session(&self, id: SessionId) -> Result<Option<Session>, StoreError>;
    /// A user's sessions that are neither ended nor expired at `now`.
    async fn live_sessions(&self, user: UserId, now: OffsetDateTime) -> Result<Vec<Session>, StoreError>;
    /// A refresh token by its verifier.
    async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshToken>, StoreError>;
    /// Marks `old` rotated at `next.created_at`, stores `next` and extends the session, all
    /// at once; false (and nothing written) when `old` was already rotated or its session
    /// has ended.
    async fn rotate_refresh_token(&self, old: &TokenHash, next: &RefreshToken) -> Result<bool, StoreError>;
    /// The reuse grace: when `old` was rotated at or after `rotated_since` and has not had its
    /// one second chance yet, spends that chance and stores `next` (extending the session),
    /// all at once; false (and nothing written) otherwise.
    async fn rotate_within_grace(&self, old: &TokenHash, next: &RefreshToken, rotated_since: OffsetDateTime) -> Result<bool, StoreError>;
    /// Ends sessions and appends one feed entry per ended
    /// session (expiring at `feed_exp`), in one transaction. Returns the sessions it ended.
    async fn end_sessions(&self, scope: SessionScope, now: OffsetDateTime, feed_exp: i64) -> Result<Vec<SessionId>, StoreError>;

    // --- revocation feed ---

    /// Appends entries to the feed.
    async fn append_revocations(&self, entries: &[Revocation], now: OffsetDateTime) -> Result<(), StoreError>;
    /// Entries after `cursor` (0 = from the start) still kept at `now` (until `exp` +
    /// [`MAX_VERIFIER_LEEWAY`]), oldest first.
    async fn revocations_after(&self, cursor: i64, now: OffsetDateTime, limit: u32) -> Result<Vec<(i64, Revocation)>, StoreError>;
    /// The newest feed position.
    async fn revocation_head(&self) -> Result<i64, StoreError>;

    // --- signing keys ---

    /// Every stored key.
    async fn keys(&self) -> Result<Vec<StoredKey>, StoreError>;
    /// Adds a key.
    async fn insert_key(&self, key: &StoredKey) -> Result<(), StoreError>;
    /// Applies one rotation atomically; `Conflict(KeyStatus)` if another rotation won.
    async fn rotate_keys(&self, rotation: &KeyRotation) -> Result<(), StoreError>;
    /// Deletes keys that no longer protect any token.
    async fn delete_keys(&self, kids: &[Kid]) -> Result<(), StoreError>;

    // --- abuse counters, shared by every instance ---

    /// Counts one failed login for `login` and returns `(failures, window_start_ms)`; a window
    /// older than `window` starts over at one.
    async fn record_login_failure(&self, login: &str, now: OffsetDateTime, window: std::time::Duration) -> Result<(i64, i64), StoreError>;
    /// The failures counted for `login`: `(failures, window_start_ms)`.
    async fn login_failures(&self, login: &str) -> Result<Option<(i64, i64)>, StoreError>;
    /// Forgets the failures of `login` (after a successful login).
    async fn clear_login_failures(&self, login: &str) -> Result<(), StoreError>;
    /// Adds hits to per-client counters of one minute and returns each client's total.
    async fn add_rate_hits(&self, minute: i64, hits: &[(String, i64)]) -> Result<Vec<(String, i64)>, StoreError>;

    // --- audit trail ---

    /// Appends an event.
    async fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// Events newest first, before position `before` (all when `None`).
    async fn audit_events(&self, before: Option<i64>, limit: u32) -> Result<Vec<(i64, AuditEvent)>, StoreError>;
    /// Drops events older than `cutoff`.
    async fn prune_audit(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError>;

    // --- small settings and housekeeping ---

    /// A persisted setting.
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Persists a setting.
    async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Drops expired refresh tokens, dead sessions, expired browser sessions, authorization
    /// codes past [`CODE_KEPT_AFTER_EXPIRY`], and feed entries past `exp` + [`MAX_VERIFIER_LEEWAY`].
    async fn prune(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    // --- signing keys, continued ---

    /// Replaces the unsealed private key of `kid` by `sealed` (encrypted with the master key)
    /// and marks it encrypted; `false` when the key is gone or already sealed (by another
    /// instance).
    async fn reseal_key(&self, kid: &Kid, sealed: &[u8]) -> Result<bool, StoreError>;

    /// The database's shared secret, the root of the keys every instance must share when no
    /// master key is set: `candidate` becomes it when there is none yet, and of racing
    /// instances every one gets the secret that was stored first.
    async fn shared_secret(&self, candidate: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, StoreError>;
}

/// A shared handle to the configured store.
pub type DynStore = Arc<dyn Store>;
