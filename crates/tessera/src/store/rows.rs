//! Rows as the database holds them, one `FromRow` struct per table (the same for every
//! engine), and their conversions to and from domain values. Each `*_columns!()` list is what
//! the statements select, so a row struct and its query cannot drift apart.

use super::{AuditEvent, RefreshToken, Revocation, StoreError, StoredKey};
use crate::domain::keys::Kid;
use crate::domain::{
    Audiences, BrowserSession, Client, ClientId, ClientName, Consent, Email, PasswordHash, RedirectUris, Roles, Scopes, Session, TokenHash,
    User, Username,
};
use time::OffsetDateTime;

/// Milliseconds since the epoch: how `*_at` columns hold time.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The inverse of [`ms`]; out-of-range values clamp to the epoch rather than fail a read.
pub(crate) fn from_ms(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Roles are stored as a JSON array of names.
pub(crate) fn roles_json(roles: &Roles) -> String {
    serde_json::Value::from(roles.to_vec()).to_string()
}

/// Scopes are stored as a JSON array of tokens.
pub(crate) fn scopes_json(scopes: &Scopes) -> String {
    serde_json::Value::from(scopes.to_vec()).to_string()
}

/// A client's audiences are stored as a JSON array, the default first.
pub(crate) fn audiences_json(audiences: &Audiences) -> String {
    serde_json::Value::from(audiences.as_slice().to_vec()).to_string()
}

/// Redirect URIs are stored as a JSON array, in the order given.
pub(crate) fn uris_json(uris: &RedirectUris) -> String {
    serde_json::Value::from(uris.to_vec()).to_string()
}

/// An authentication-methods list (`amr`) is stored as a JSON array.
pub(crate) fn amr_json(amr: &[String]) -> String {
    serde_json::Value::from(amr.to_vec()).to_string()
}

fn strings(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(StoreError::other)
}

fn uris(json: &str, public: bool) -> Result<RedirectUris, StoreError> {
    RedirectUris::parse(&strings(json)?, public).map_err(StoreError::other)
}

pub(crate) fn parse_list<T>(json: &str, parse: impl Fn(&[String]) -> Result<T, crate::domain::NameError>) -> Result<T, StoreError> {
    let names: Vec<String> = serde_json::from_str(json).map_err(StoreError::other)?;
    parse(&names).map_err(StoreError::other)
}

fn hash(bytes: &[u8], what: &'static str) -> Result<TokenHash, StoreError> {
    TokenHash::from_slice(bytes).ok_or_else(|| StoreError::Other(format!("{what} is not 32 bytes").into()))
}

macro_rules! user_columns {
    () => {
        "id, email, username, password_hash, roles, disabled, tokens_not_before, created_at, updated_at, two_factor, email_verified"
    };
}
pub(crate) use user_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    email: String,
    username: Option<String>,
    password_hash: String,
    roles: String,
    disabled: bool,
    tokens_not_before: i64,
    created_at: i64,
    updated_at: i64,
    two_factor: bool,
    email_verified: bool,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: row.id.parse().map_err(StoreError::other)?,
            email: Email::parse(&row.email).map_err(StoreError::other)?,
            email_verified: row.email_verified,
            username: row.username.map(|u| Username::parse(&u)).transpose().map_err(StoreError::other)?,
            password_hash: PasswordHash::new(row.password_hash),
            roles: parse_list(&row.roles, Roles::parse)?,
            disabled: row.disabled,
            tokens_not_before: row.tokens_not_before,
            created_at: from_ms(row.created_at),
            updated_at: from_ms(row.updated_at),
            two_factor: row.two_factor,
        })
    }
}

macro_rules! client_columns {
    () => {
        "client_id, name, secret_hash, scopes, roles, audiences, redirect_uris, post_logout_redirect_uris, public, first_party, \
         created_at, updated_at"
    };
}
pub(crate) use client_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: Option<Vec<u8>>,
    scopes: String,
    roles: String,
    audiences: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    public: bool,
    first_party: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        Ok(Client {
            id: ClientId::new(row.client_id),
            name: ClientName::parse(&row.name).map_err(StoreError::other)?,
            secret_hash: row.secret_hash.map(|h| hash(&h, "client secret hash")).transpose()?,
            scopes: parse_list(&row.scopes, Scopes::parse)?,
            roles: parse_list(&row.roles, Roles::parse)?,
            audiences: {
                let list: Vec<String> = serde_json::from_str(&row.audiences).map_err(StoreError::other)?;
                Audiences::parse(&list).map_err(StoreError::other)?
            },
            redirect_uris: uris(&row.redirect_uris, row.public)?,
            post_logout_redirect_uris: uris(&row.post_logout_redirect_uris, row.public)?,
            public: row.public,
            first_party: row.first_party,
            created_at: from_ms(row.created_at),
            updated_at: from_ms(row.updated_at),
        })
    }
}

macro_rules! session_columns {
    () => {
        "id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip, client_id, scope, browser_session_id, offline, amr"
    };
}
pub(crate) use session_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: String,
    user_id: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    user_agent: Option<String>,
    ip: Option<String>,
    client_id: Option<String>,
    scope: String,
    browser_session_id: Option<String>,
    offline: bool,
    amr: String,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(row: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id: row.id.parse().map_err(StoreError::other)?,
            user_id: row.user_id.parse().map_err(StoreError::other)?,
            created_at: from_ms(row.created_at),
            last_used_at: from_ms(row.last_used_at),
            expires_at: from_ms(row.expires_at),
            revoked_at: row.revoked_at.map(from_ms),
            user_agent: row.user_agent,
            ip: row.ip.and_then(|ip| ip.parse().ok()),
            client_id: row.client_id.map(ClientId::new),
            scope: parse_list(&row.scope, Scopes::parse)?,
            browser_session_id: row.browser_session_id.map(|id| id.parse()).transpose().map_err(StoreError::other)?,
            offline: row.offline,
            amr: strings(&row.amr)?,
        })
    }
}

macro_rules! browser_session_columns {
    () => {
        "id, secret_hash, user_id, auth_time, amr, created_at, last_seen_at, expires_at, ip, user_agent"
    };
}
pub(crate) use browser_session_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct BrowserSessionRow {
    id: String,
    secret_hash: Vec<u8>,
    user_id: String,
    auth_time: i64,
    amr: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl TryFrom<BrowserSessionRow> for BrowserSession {
    type Error = StoreError;

    fn try_from(row: BrowserSessionRow) -> Result<Self, StoreError> {
        Ok(BrowserSession {
            id: row.id.parse().map_err(StoreError::other)?,
            secret_hash: hash(&row.secret_hash, "browser session secret hash")?,
            user_id: row.user_id.parse().map_err(StoreError::other)?,
            auth_time: from_ms(row.auth_time),
            amr: strings(&row.amr)?,
            created_at: from_ms(row.created_at),
            last_seen_at: from_ms(row.last_seen_at),
            expires_at: from_ms(row.expires_at),
            ip: row.ip.and_then(|ip| ip.parse().ok()),
            user_agent: row.user_agent,
        })
    }
}

macro_rules! consent_columns {
    () => {
        "user_id, client_id, scopes, granted_at"
    };
}
pub(crate) use consent_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct ConsentRow {
    user_id: String,
    client_id: String,
    scopes: String,
    granted_at: i64,
}

impl TryFrom<ConsentRow> for Consent {
    type Error = StoreError;

    fn try_from(row: ConsentRow) -> Result<Self, StoreError> {
        Ok(Consent {
            user_id: row.user_id.parse().map_err(StoreError::other)?,
            client_id: ClientId::new(row.client_id),
            scopes: parse_list(&row.scopes, Scopes::parse)?,
            granted_at: from_ms(row.granted_at),
        })
    }
}

macro_rules! refresh_columns {
    () => {
        "hash, session_id, created_at, expires_at, rotated_at"
    };
}
pub(crate) use refresh_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct RefreshRow {
    hash: Vec<u8>,
    session_id: String,
    created_at: i64,
    expires_at: i64,
    rotated_at: Option<i64>,
}

impl TryFrom<RefreshRow> for RefreshToken {
    type Error = StoreError;

    fn try_from(row: RefreshRow) -> Result<Self, StoreError> {
        Ok(RefreshToken {
            hash: hash(&row.hash, "refresh token hash")?,
            session_id: row.session_id.parse().map_err(StoreError::other)?,
            created_at: from_ms(row.created_at),
            expires_at: from_ms(row.expires_at),
            rotated_at: row.rotated_at.map(from_ms),
        })
    }
}

macro_rules! key_columns {
    () => {
        "kid, alg, status, private_key, encrypted, public_jwk, created_at, retired_at"
    };
}
pub(crate) use key_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    alg: String,
    status: String,
    private_key: Option<Vec<u8>>,
    encrypted: bool,
    public_jwk: Option<String>,
    created_at: i64,
    retired_at: Option<i64>,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = StoreError;

    fn try_from(row: KeyRow) -> Result<Self, StoreError> {
        Ok(StoredKey {
            kid: Kid::new(row.kid),
            alg: row.alg.parse().map_err(StoreError::other)?,
            status: row.status.parse().map_err(StoreError::other)?,
            private_key: row.private_key,
            encrypted: row.encrypted,
            public_jwk: row.public_jwk,
            created_at: from_ms(row.created_at),
            retired_at: row.retired_at.map(from_ms),
        })
    }
}

macro_rules! revocation_columns {
    () => {
        "seq, kind, value, not_before, exp"
    };
}
pub(crate) use revocation_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct RevocationRow {
    seq: i64,
    kind: String,
    value: String,
    not_before: Option<i64>,
    exp: i64,
}

impl From<RevocationRow> for (i64, Revocation) {
    fn from(row: RevocationRow) -> Self {
        let RevocationRow { seq, kind, value, not_before, exp } = row;
        let entry = match kind.as_str() {
            "token" => Revocation::Token { jti: value, exp },
            "session" => Revocation::Session { sid: value, exp },
            _ => Revocation::Subject { sub: value, not_before: not_before.unwrap_or(0), exp },
        };
        (seq, entry)
    }
}

/// The columns of a feed entry: `(kind, value, not_before)`.
pub(crate) fn revocation_values(entry: &Revocation) -> (&'static str, &str, Option<i64>) {
    match entry {
        Revocation::Token { jti, .. } => ("token", jti.as_str(), None),
        Revocation::Session { sid, .. } => ("session", sid.as_str(), None),
        Revocation::Subject { sub, not_before, .. } => ("subject", sub.as_str(), Some(*not_before)),
    }
}

macro_rules! audit_columns {
    () => {
        "seq, at, kind, actor, subject, ip, detail"
    };
}
pub(crate) use audit_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    seq: i64,
    at: i64,
    kind: String,
    actor: Option<String>,
    subject: Option<String>,
    ip: Option<String>,
    detail: Option<String>,
}

impl From<AuditRow> for (i64, AuditEvent) {
    fn from(row: AuditRow) -> Self {
        let AuditRow { seq, at, kind, actor, subject, ip, detail } = row;
        (seq, AuditEvent { at: from_ms(at), kind, actor, subject, ip, detail })
    }
}
