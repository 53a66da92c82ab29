//! What every engine shares: conversions between domain values and column values, and the
//! mapping of a row to a domain value, written once against [`Columns`].

use super::{AuditEvent, RefreshToken, Revocation, StoreError, StoredKey};
use crate::domain::keys::Kid;
use crate::domain::{Client, ClientId, ClientName, Email, PasswordHash, Roles, Scopes, Session, TokenHash, User, Username};
use sqlx::Row;
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

fn parse_list<T>(json: &str, parse: impl Fn(&[String]) -> Result<T, crate::domain::NameError>) -> Result<T, StoreError> {
    let names: Vec<String> = serde_json::from_str(json).map_err(StoreError::other)?;
    parse(&names).map_err(StoreError::other)
}

/// Typed column access over any engine's row.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, StoreError>;
    fn opt_bytes(&self, column: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

macro_rules! columns_for {
    ($row:ty) => {
        impl Columns for $row {
            fn text(&self, c: &str) -> Result<String, StoreError> {
                self.try_get(c).map_err(StoreError::other)
            }
            fn opt_text(&self, c: &str) -> Result<Option<String>, StoreError> {
                self.try_get(c).map_err(StoreError::other)
            }
            fn int(&self, c: &str) -> Result<i64, StoreError> {
                self.try_get(c).map_err(StoreError::other)
            }
            fn opt_int(&self, c: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(c).map_err(StoreError::other)
            }
            fn flag(&self, c: &str) -> Result<bool, StoreError> {
                self.try_get(c).map_err(StoreError::other)
            }
            fn bytes(&self, c: &str) -> Result<Vec<u8>, StoreError> {
                self.try_get(c).map_err(StoreError::other)
            }
            fn opt_bytes(&self, c: &str) -> Result<Option<Vec<u8>>, StoreError> {
                self.try_get(c).map_err(StoreError::other)
            }
        }
    };
}

columns_for!(sqlx::sqlite::SqliteRow);
columns_for!(sqlx::postgres::PgRow);

fn hash(bytes: &[u8], what: &'static str) -> Result<TokenHash, StoreError> {
    TokenHash::from_slice(bytes).ok_or_else(|| StoreError::Other(format!("{what} is not 32 bytes").into()))
}

pub(crate) fn user_from_row(row: &impl Columns) -> Result<User, StoreError> {
    let username = row.opt_text("username")?;
    Ok(User {
        id: row.text("id")?.parse().map_err(StoreError::other)?,
        email: Email::parse(&row.text("email")?).map_err(StoreError::other)?,
        username: username.map(|u| Username::parse(&u)).transpose().map_err(StoreError::other)?,
        password_hash: PasswordHash::new(row.text("password_hash")?),
        roles: parse_list(&row.text("roles")?, Roles::parse)?,
        disabled: row.flag("disabled")?,
        tokens_not_before: row.int("tokens_not_before")?,
        created_at: from_ms(row.int("created_at")?),
        updated_at: from_ms(row.int("updated_at")?),
    })
}

pub(crate) fn client_from_row(row: &impl Columns) -> Result<Client, StoreError> {
    Ok(Client {
        id: ClientId::new(row.text("client_id")?),
        name: ClientName::parse(&row.text("name")?).map_err(StoreError::other)?,
        secret_hash: hash(&row.bytes("secret_hash")?, "client secret hash")?,
        scopes: parse_list(&row.text("scopes")?, Scopes::parse)?,
        roles: parse_list(&row.text("roles")?, Roles::parse)?,
        created_at: from_ms(row.int("created_at")?),
        updated_at: from_ms(row.int("updated_at")?),
    })
}

pub(crate) fn session_from_row(row: &impl Columns) -> Result<Session, StoreError> {
    let ip = row.opt_text("ip")?;
    Ok(Session {
        id: row.text("id")?.parse().map_err(StoreError::other)?,
        user_id: row.text("user_id")?.parse().map_err(StoreError::other)?,
        created_at: from_ms(row.int("created_at")?),
        last_used_at: from_ms(row.int("last_used_at")?),
        expires_at: from_ms(row.int("expires_at")?),
        revoked_at: row.opt_int("revoked_at")?.map(from_ms),
        user_agent: row.opt_text("user_agent")?,
        ip: ip.and_then(|ip| ip.parse().ok()),
    })
}

pub(crate) fn refresh_from_row(row: &impl Columns) -> Result<RefreshToken, StoreError> {
    Ok(RefreshToken {
        hash: hash(&row.bytes("hash")?, "refresh token hash")?,
        session_id: row.text("session_id")?.parse().map_err(StoreError::other)?,
        created_at: from_ms(row.int("created_at")?),
        expires_at: from_ms(row.int("expires_at")?),
        rotated_at: row.opt_int("rotated_at")?.map(from_ms),
    })
}

pub(crate) fn key_from_row(row: &impl Columns) -> Result<StoredKey, StoreError> {
    Ok(StoredKey {
        kid: Kid::new(row.text("kid")?),
        alg: row.text("alg")?.parse().map_err(StoreError::other)?,
        status: row.text("status")?.parse().map_err(StoreError::other)?,
        private_key: row.opt_bytes("private_key")?,
        encrypted: row.flag("encrypted")?,
        public_jwk: row.opt_text("public_jwk")?,
        created_at: from_ms(row.int("created_at")?),
        retired_at: row.opt_int("retired_at")?.map(from_ms),
    })
}

pub(crate) fn revocation_from_row(row: &impl Columns) -> Result<(i64, Revocation), StoreError> {
    let value = row.text("value")?;
    let exp = row.int("exp")?;
    let entry = match row.text("kind")?.as_str() {
        "token" => Revocation::Token { jti: value, exp },
        "session" => Revocation::Session { sid: value, exp },
        _ => Revocation::Subject { sub: value, not_before: row.opt_int("not_before")?.unwrap_or(0), exp },
    };
    Ok((row.int("seq")?, entry))
}

/// The columns of a feed entry: `(kind, value, not_before)`.
pub(crate) fn revocation_columns(entry: &Revocation) -> (&'static str, &str, Option<i64>) {
    match entry {
        Revocation::Token { jti, .. } => ("token", jti.as_str(), None),
        Revocation::Session { sid, .. } => ("session", sid.as_str(), None),
        Revocation::Subject { sub, not_before, .. } => ("subject", sub.as_str(), Some(*not_before)),
    }
}

pub(crate) fn audit_from_row(row: &impl Columns) -> Result<(i64, AuditEvent), StoreError> {
    Ok((
        row.int("seq")?,
        AuditEvent {
            at: from_ms(row.int("at")?),
            kind: row.text("kind")?,
            actor: row.opt_text("actor")?,
            subject: row.opt_text("subject")?,
            ip: row.opt_text("ip")?,
            detail: row.opt_text("detail")?,
        },
    ))
}
