//! Storage of second factors: TOTP secrets, recovery codes, passkeys, the password sign-ins
//! waiting for a second factor (`mfa_token`s) and WebAuthn ceremony state.
//!
//! [`factors_impl!`] expands inside an engine's module like `store_impl!` (statements in
//! `$N` placeholders through the engine's `sql!`, its `classify`, `Self::write` and
//! `Self::begin`, and `mail_insert_in` of `mail_impl!`).
//!
//! Every write that adds or removes a second factor takes the notice mail to queue with it
//! (`None` when mails are off): it is written in the same transaction, and only when the
//! change happened.

use super::{OutgoingMail, StoreError};
use crate::domain::{TokenHash, UserId};
use time::OffsetDateTime;

/// A person's TOTP secret as stored.
#[derive(Debug, Clone)]
pub struct StoredTotp {
    /// The secret, sealed with the master key when `sealed`.
    pub secret: Vec<u8>,
    /// Whether `secret` is sealed.
    pub sealed: bool,
    /// When its first code confirmed it; `None` while pending.
    pub confirmed_at: Option<OffsetDateTime>,
    /// The newest step whose code was accepted.
    pub last_step: Option<i64>,
}

/// What second factors a person has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorSummary {
    /// A confirmed TOTP secret.
    pub totp: bool,
    /// How many passkeys.
    pub passkeys: i64,
    /// How many unused recovery codes.
    pub recovery_codes: i64,
}

impl FactorSummary {
    /// Whether signing in needs a second factor.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// A password sign-in waiting for its second factor.
#[derive(Debug, Clone)]
pub struct MfaChallenge {
    /// SHA-256 of the `mfa_token`.
    pub hash: TokenHash,
    /// Who passed the password check.
    pub user_id: UserId,
    /// What it signs in to: `api` or `page`.
    pub channel: String,
    /// Wrong codes so far.
    pub failures: i64,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// A passkey as stored.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    /// Its public id.
    pub id: String,
    /// Whose it is.
    pub user_id: UserId,
    /// The WebAuthn credential id.
    pub credential_id: Vec<u8>,
    /// The name the person gave it.
    pub name: String,
    /// The credential as the WebAuthn library serialises it (JSON).
    pub credential: String,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// When it last signed someone in.
    pub last_used_at: Option<OffsetDateTime>,
}

/// Storage of second factors (see the module documentation).
#[async_trait::async_trait]
pub trait FactorStore: Send + Sync {
    /// Stores a pending TOTP secret for `user`, replacing a pending one; false (nothing
    /// written) when the person already has a confirmed one.
    async fn put_pending_totp(&self, user: UserId, secret: &[u8], sealed: bool, now: OffsetDateTime) -> Result<bool, StoreError>;
    /// The person's TOTP secret, pending or confirmed.
    async fn totp(&self, user: UserId) -> Result<Option<StoredTotp>, StoreError>;
    /// Confirms the pending secret with the code of `step`, replaces the recovery codes by
    /// `codes` (hashes) and queues `mail`, at once; false (nothing written) when there is no
    /// pending secret or `step` is not newer than the last accepted one.
    async fn confirm_totp(
        &self,
        user: UserId,
        step: i64,
        codes: &[[u8; 32]],
        now: OffsetDateTime,
        mail: Option<&OutgoingMail>,
    ) -> Result<bool, StoreError>;
    /// Accepts the code of `step` of a confirmed secret: raises `last_step` to `step` only
    /// while it is older (compare and set), so each code works once. False otherwise.
    async fn accept_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError>;
    /// Removes the person's TOTP secret (and their recovery codes when no passkey remains),
    /// queuing `mail` when the secret was a confirmed one; false when there was none.
    async fn delete_totp(&self, user: UserId, mail: Option<&OutgoingMail>) -> Result<bool, StoreError>;
    /// Replaces the person's recovery codes by `codes` (hashes) and queues `mail`.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[[u8; 32]],
        now: OffsetDateTime,
        mail: Option<&OutgoingMail>,
    ) -> Result<(), StoreError>;
    /// Spends one unused recovery code and queues `mail`; false (nothing written) when it is
    /// unknown or used.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &[u8; 32],
        now: OffsetDateTime,
        mail: Option<&OutgoingMail>,
    ) -> Result<bool, StoreError>;
    /// What second factors the person has.
    async fn factor_summary(&self, user: UserId) -> Result<FactorSummary, StoreError>;
    /// Removes every second factor of the person (TOTP, recovery codes, passkeys) and their
    /// pending sign-ins, queuing `mail` when a factor was removed; false when there was none.
    async fn delete_factors(&self, user: UserId, mail: Option<&OutgoingMail>) -> Result<bool, StoreError>;

    /// Stores a password sign-in waiting for its second factor.
    async fn insert_mfa_challenge(&self, challenge: &MfaChallenge) -> Result<(), StoreError>;
    /// The sign-in waiting under `hash`, when it has not expired at `now`.
    async fn mfa_challenge(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<MfaChallenge>, StoreError>;
    /// Takes (deletes) the sign-in waiting under `hash`, when unexpired at `now`: exactly
    /// one of concurrent callers gets it.
    async fn take_mfa_challenge(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<MfaChallenge>, StoreError>;
    /// Counts a wrong code against the sign-in under `hash` and deletes it once `max`
    /// wrong codes are reached; the count, `None` when it is gone.
    async fn fail_mfa_challenge(&self, hash: &TokenHash, max: i64) -> Result<Option<i64>, StoreError>;
    /// Drops expired sign-ins and ceremony state.
    async fn prune_factors(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// Stores a new passkey and queues `mail`; `Conflict` (nothing written) when its
    /// credential is registered already.
    async fn insert_passkey(&self, passkey: &StoredPasskey, mail: Option<&OutgoingMail>) -> Result<(), StoreError>;
    /// The person's passkeys, oldest first.
    async fn passkeys_of(&self, user: UserId) -> Result<Vec<StoredPasskey>, StoreError>;
    /// A passkey by its WebAuthn credential id.
    async fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<StoredPasskey>, StoreError>;
    /// Records a sign-in with a passkey: its updated credential (counter, backup flags) and
    /// the time.
    async fn touch_passkey(&self, id: &str, credential: &str, now: OffsetDateTime) -> Result<(), StoreError>;
    /// Deletes one of the person's passkeys (and their recovery codes when no second factor
    /// remains) and queues `mail`; false (nothing written) when they have no such passkey.
    async fn delete_passkey(&self, user: UserId, id: &str, mail: Option<&OutgoingMail>) -> Result<bool, StoreError>;
    /// Stores the state of a WebAuthn ceremony between its two requests.
    async fn insert_webauthn_challenge(
        &self,
        id: &str,
        user: Option<UserId>,
        kind: &str,
        state: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Takes (deletes) a ceremony's state of `kind`, when unexpired at `now`: `(user, state)`.
    async fn take_webauthn_challenge(
        &self,
        id: &str,
        kind: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Option<UserId>, String)>, StoreError>;
}

/// Reads the optional user id column of ceremony state.
pub(crate) fn parse_user(id: Option<String>) -> Result<Option<UserId>, StoreError> {
    id.map(|id| id.parse().map_err(StoreError::other)).transpose()
}

/// The columns of `mfa_challenges`, in [`MfaChallengeRow`]'s order.
macro_rules! mfa_challenge_columns {
    () => {
        "hash, user_id, channel, failures, created_at, expires_at"
    };
}
pub(crate) use mfa_challenge_columns;

/// The columns of `passkeys`.
macro_rules! passkey_columns {
    () => {
        "id, user_id, credential_id, name, credential, created_at, last_used_at"
    };
}
pub(crate) use passkey_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct MfaChallengeRow {
    hash: Vec<u8>,
    user_id: String,
    channel: String,
    failures: i64,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<MfaChallengeRow> for MfaChallenge {
    type Error = StoreError;

    fn try_from(row: MfaChallengeRow) -> Result<Self, StoreError> {
        Ok(MfaChallenge {
            hash: TokenHash::from_slice(&row.hash).ok_or_else(|| StoreError::Other("an mfa challenge hash is not 32 bytes".into()))?,
            user_id: row.user_id.parse().map_err(StoreError::other)?,
            channel: row.channel,
            failures: row.failures,
            created_at: super::rows::from_ms(row.created_at),
            expires_at: super::rows::from_ms(row.expires_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PasskeyRow {
    id: String,
    user_id: String,
    credential_id: Vec<u8>,
    name: String,
    credential: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<PasskeyRow> for StoredPasskey {
    type Error = StoreError;

    fn try_from(row: PasskeyRow) -> Result<Self, StoreError> {
        Ok(StoredPasskey {
            id: row.id,
            user_id: row.user_id.parse().map_err(StoreError::other)?,
            credential_id: row.credential_id,
            name: row.name,
            credential: row.credential,
            created_at: super::rows::from_ms(row.created_at),
            last_used_at: row.last_used_at.map(super::rows::from_ms),
        })
    }
}

/// `(secret, sealed, confirmed_at, last_step)` of `totp_secrets`.
pub(crate) type TotpRow = (Vec<u8>, bool, Option<i64>, Option<i64>);

macro_rules! factors_impl {
    ($engine:ty, $db:ty) => {
        /// Replaces the person's recovery codes with `codes` (hashes) inside a transaction.
        async fn recovery_codes_replace_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            user: UserId,
            codes: &[[u8; 32]],
            now: OffsetDateTime,
        ) -> Result<(), StoreError> {
            sqlx::query(sql!("DELETE FROM recovery_codes WHERE user_id = $1"))
                .bind(user.to_string())
                .execute(&mut *conn)
                .await
                .map_err(classify)?;
            for code in codes {
                sqlx::query(sql!("INSERT INTO recovery_codes (user_id, hash, used_at, created_at) VALUES ($1, $2, NULL, $3)"))
                    .bind(user.to_string())
                    .bind(code.as_slice())
                    .bind(ms(now))
                    .execute(&mut *conn)
                    .await
                    .map_err(classify)?;
            }
            Ok(())
        }

        /// After the person's factors changed, inside the same transaction (every write that
        /// changes them calls it): recovery codes go with the last second factor, and
        /// `users.two_factor` follows what is left.
        async fn factors_changed_in(conn: &mut <$db as sqlx::Database>::Connection, user: UserId) -> Result<(), StoreError> {
            for statement in [
                sql!(
                    "DELETE FROM recovery_codes WHERE user_id = $1 AND NOT EXISTS (SELECT 1 FROM passkeys WHERE user_id = $1) ",
                    "AND NOT EXISTS (SELECT 1 FROM totp_secrets WHERE user_id = $1 AND confirmed_at IS NOT NULL)"
                ),
                sql!(
                    "UPDATE users SET two_factor = (EXISTS (SELECT 1 FROM totp_secrets WHERE user_id = $1 AND confirmed_at IS NOT NULL) ",
                    "OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = $1)) WHERE id = $1"
                ),
            ] {
                sqlx::query(statement).bind(user.to_string()).execute(&mut *conn).await.map_err(classify)?;
            }
            Ok(())
        }

        #[async_trait::async_trait]
        impl crate::store::factors::FactorStore for $engine {
            async fn put_pending_totp(&self, user: UserId, secret: &[u8], sealed: bool, now: OffsetDateTime) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let done = sqlx::query(sql!(
                    "INSERT INTO totp_secrets (user_id, secret, sealed, confirmed_at, last_step, created_at) ",
                    "VALUES ($1, $2, $3, NULL, NULL, $4) ON CONFLICT (user_id) DO UPDATE SET secret = $2, sealed = $3, ",
                    "last_step = NULL, created_at = $4 WHERE totp_secrets.confirmed_at IS NULL"
                ))
                .bind(user.to_string())
                .bind(secret)
                .bind(sealed)
                .bind(ms(now))
                .execute(&mut *w)
                .await
                .map_err(classify)?;
                Ok(done.rows_affected() == 1)
            }

            async fn totp(&self, user: UserId) -> Result<Option<crate::store::factors::StoredTotp>, StoreError> {
                let row: Option<crate::store::factors::TotpRow> =
                    sqlx::query_as(sql!("SELECT secret, sealed, confirmed_at, last_step FROM totp_secrets WHERE user_id = $1"))
                        .bind(user.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(classify)?;
                Ok(row.map(|(secret, sealed, confirmed_at, last_step)| crate::store::factors::StoredTotp {
                    secret,
                    sealed,
                    confirmed_at: confirmed_at.map(from_ms),
                    last_step,
                }))
            }

            async fn confirm_totp(
                &self,
                user: UserId,
                step: i64,
                codes: &[[u8; 32]],
                now: OffsetDateTime,
                mail: Option<&OutgoingMail>,
            ) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let done = sqlx::query(sql!(
                    "UPDATE totp_secrets SET confirmed_at = $1, last_step = $2 WHERE user_id = $3 AND confirmed_at IS NULL ",
                    "AND (last_step IS NULL OR last_step < $2)"
                ))
                .bind(ms(now))
                .bind(step)
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                recovery_codes_replace_in(&mut tx, user, codes, now).await?;
                factors_changed_in(&mut tx, user).await?;
                if let Some(mail) = mail {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)?;
                Ok(true)
            }

            async fn accept_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let done = sqlx::query(sql!(
                    "UPDATE totp_secrets SET last_step = $1 WHERE user_id = $2 AND confirmed_at IS NOT NULL ",
                    "AND (last_step IS NULL OR last_step < $1)"
                ))
                .bind(step)
                .bind(user.to_string())
                .execute(&mut *w)
                .await
                .map_err(classify)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_totp(&self, user: UserId, mail: Option<&OutgoingMail>) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let deleted: Option<(Option<i64>,)> =
                    sqlx::query_as(sql!("DELETE FROM totp_secrets WHERE user_id = $1 RETURNING confirmed_at"))
                        .bind(user.to_string())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(classify)?;
                factors_changed_in(&mut tx, user).await?;
                // Dropping a pending enrolment removes no second factor: no notice.
                if let (Some((Some(_),)), Some(mail)) = (deleted, mail) {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)?;
                Ok(deleted.is_some())
            }

            async fn replace_recovery_codes(
                &self,
                user: UserId,
                codes: &[[u8; 32]],
                now: OffsetDateTime,
                mail: Option<&OutgoingMail>,
            ) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                recovery_codes_replace_in(&mut tx, user, codes, now).await?;
                if let Some(mail) = mail {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)
            }

            async fn use_recovery_code(
                &self,
                user: UserId,
                code: &[u8; 32],
                now: OffsetDateTime,
                mail: Option<&OutgoingMail>,
            ) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let done = sqlx::query(sql!("UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND hash = $3 AND used_at IS NULL"))
                    .bind(ms(now))
                    .bind(user.to_string())
                    .bind(code.as_slice())
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                if let Some(mail) = mail {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)?;
                Ok(true)
            }

            async fn factor_summary(&self, user: UserId) -> Result<crate::store::factors::FactorSummary, StoreError> {
                let (totp, passkeys, recovery_codes): (i64, i64, i64) = sqlx::query_as(sql!(
                    "SELECT (SELECT COUNT(*) FROM totp_secrets WHERE user_id = $1 AND confirmed_at IS NOT NULL), ",
                    "(SELECT COUNT(*) FROM passkeys WHERE user_id = $1), ",
                    "(SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL)"
                ))
                .bind(user.to_string())
                .fetch_one(&self.pool)
                .await
                .map_err(classify)?;
                Ok(crate::store::factors::FactorSummary { totp: totp > 0, passkeys, recovery_codes })
            }

            async fn delete_factors(&self, user: UserId, mail: Option<&OutgoingMail>) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let mut removed = 0;
                for statement in [
                    sql!("DELETE FROM totp_secrets WHERE user_id = $1"),
                    sql!("DELETE FROM recovery_codes WHERE user_id = $1"),
                    sql!("DELETE FROM passkeys WHERE user_id = $1"),
                ] {
                    removed += sqlx::query(statement).bind(user.to_string()).execute(&mut *tx).await.map_err(classify)?.rows_affected();
                }
                sqlx::query(sql!("DELETE FROM mfa_challenges WHERE user_id = $1"))
                    .bind(user.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
                factors_changed_in(&mut tx, user).await?;
                if let (true, Some(mail)) = (removed > 0, mail) {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)?;
                Ok(removed > 0)
            }

            async fn insert_mfa_challenge(&self, challenge: &crate::store::factors::MfaChallenge) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!(
                    "INSERT INTO mfa_challenges (",
                    crate::store::factors::mfa_challenge_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6)"
                ))
                .bind(challenge.hash.as_bytes().as_slice())
                .bind(challenge.user_id.to_string())
                .bind(challenge.channel.as_str())
                .bind(challenge.failures)
                .bind(ms(challenge.created_at))
                .bind(ms(challenge.expires_at))
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(classify)
            }

            async fn mfa_challenge(
                &self,
                hash: &TokenHash,
                now: OffsetDateTime,
            ) -> Result<Option<crate::store::factors::MfaChallenge>, StoreError> {
                let row: Option<crate::store::factors::MfaChallengeRow> = sqlx::query_as(sql!(
                    "SELECT ",
                    crate::store::factors::mfa_challenge_columns!(),
                    " FROM mfa_challenges WHERE hash = $1 AND expires_at > $2"
                ))
                .bind(hash.as_bytes().as_slice())
                .bind(ms(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
                row.map(TryFrom::try_from).transpose()
            }

            async fn take_mfa_challenge(
                &self,
                hash: &TokenHash,
                now: OffsetDateTime,
            ) -> Result<Option<crate::store::factors::MfaChallenge>, StoreError> {
                let mut w = self.write().await?;
                let row: Option<crate::store::factors::MfaChallengeRow> = sqlx::query_as(sql!(
                    "DELETE FROM mfa_challenges WHERE hash = $1 AND expires_at > $2 RETURNING ",
                    crate::store::factors::mfa_challenge_columns!()
                ))
                .bind(hash.as_bytes().as_slice())
                .bind(ms(now))
                .fetch_optional(&mut *w)
                .await
                .map_err(classify)?;
                row.map(TryFrom::try_from).transpose()
            }

            async fn fail_mfa_challenge(&self, hash: &TokenHash, max: i64) -> Result<Option<i64>, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let failures: Option<(i64,)> =
                    sqlx::query_as(sql!("UPDATE mfa_challenges SET failures = failures + 1 WHERE hash = $1 RETURNING failures"))
                        .bind(hash.as_bytes().as_slice())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(classify)?;
                if failures.is_some_and(|(n,)| n >= max) {
                    sqlx::query(sql!("DELETE FROM mfa_challenges WHERE hash = $1"))
                        .bind(hash.as_bytes().as_slice())
                        .execute(&mut *tx)
                        .await
                        .map_err(classify)?;
                }
                tx.commit().await.map_err(classify)?;
                Ok(failures.map(|(n,)| n))
            }

            async fn prune_factors(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
                let mut w = self.write().await?;
                let challenges = sqlx::query(sql!("DELETE FROM mfa_challenges WHERE expires_at <= $1"))
                    .bind(ms(now))
                    .execute(&mut *w)
                    .await
                    .map_err(classify)?;
                let ceremonies = sqlx::query(sql!("DELETE FROM webauthn_challenges WHERE expires_at <= $1"))
                    .bind(ms(now))
                    .execute(&mut *w)
                    .await
                    .map_err(classify)?;
                Ok(challenges.rows_affected() + ceremonies.rows_affected())
            }

            async fn insert_passkey(
                &self,
                passkey: &crate::store::factors::StoredPasskey,
                mail: Option<&OutgoingMail>,
            ) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let user = passkey.user_id;
                sqlx::query(sql!(
                    "INSERT INTO passkeys (",
                    crate::store::factors::passkey_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ))
                .bind(passkey.id.as_str())
                .bind(passkey.user_id.to_string())
                .bind(passkey.credential_id.as_slice())
                .bind(passkey.name.as_str())
                .bind(passkey.credential.as_str())
                .bind(ms(passkey.created_at))
                .bind(passkey.last_used_at.map(ms))
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                factors_changed_in(&mut tx, user).await?;
                if let Some(mail) = mail {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)
            }

            async fn passkeys_of(&self, user: UserId) -> Result<Vec<crate::store::factors::StoredPasskey>, StoreError> {
                let rows: Vec<crate::store::factors::PasskeyRow> = sqlx::query_as(sql!(
                    "SELECT ",
                    crate::store::factors::passkey_columns!(),
                    " FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
                rows.into_iter().map(TryFrom::try_from).collect()
            }

            async fn passkey_by_credential(
                &self,
                credential_id: &[u8],
            ) -> Result<Option<crate::store::factors::StoredPasskey>, StoreError> {
                let row: Option<crate::store::factors::PasskeyRow> =
                    sqlx::query_as(sql!("SELECT ", crate::store::factors::passkey_columns!(), " FROM passkeys WHERE credential_id = $1"))
                        .bind(credential_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(classify)?;
                row.map(TryFrom::try_from).transpose()
            }

            async fn touch_passkey(&self, id: &str, credential: &str, now: OffsetDateTime) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!("UPDATE passkeys SET credential = $1, last_used_at = $2 WHERE id = $3"))
                    .bind(credential)
                    .bind(ms(now))
                    .bind(id)
                    .execute(&mut *w)
                    .await
                    .map(|_| ())
                    .map_err(classify)
            }

            async fn delete_passkey(&self, user: UserId, id: &str, mail: Option<&OutgoingMail>) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let done = sqlx::query(sql!("DELETE FROM passkeys WHERE user_id = $1 AND id = $2"))
                    .bind(user.to_string())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                factors_changed_in(&mut tx, user).await?;
                if let Some(mail) = mail {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_webauthn_challenge(
                &self,
                id: &str,
                user: Option<UserId>,
                kind: &str,
                state: &str,
                now: OffsetDateTime,
                expires_at: OffsetDateTime,
            ) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!(
                    "INSERT INTO webauthn_challenges (id, user_id, kind, state, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)"
                ))
                .bind(id)
                .bind(user.map(|u| u.to_string()))
                .bind(kind)
                .bind(state)
                .bind(ms(now))
                .bind(ms(expires_at))
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(classify)
            }

            async fn take_webauthn_challenge(
                &self,
                id: &str,
                kind: &str,
                now: OffsetDateTime,
            ) -> Result<Option<(Option<UserId>, String)>, StoreError> {
                let mut w = self.write().await?;
                let row: Option<(Option<String>, String)> = sqlx::query_as(sql!(
                    "DELETE FROM webauthn_challenges WHERE id = $1 AND kind = $2 AND expires_at > $3 RETURNING user_id, state"
                ))
                .bind(id)
                .bind(kind)
                .bind(ms(now))
                .fetch_optional(&mut *w)
                .await
                .map_err(classify)?;
                row.map(|(user, state)| Ok((crate::store::factors::parse_user(user)?, state))).transpose()
            }
        }
    };
}
pub(crate) use factors_impl;
