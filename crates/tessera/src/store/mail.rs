//! Storage of email: the outbox the mail worker sends from, and the single-use link tokens
//! (verification, password reset) the mails carry.
//!
//! A mail is written in the same transaction as the change that causes it (a registration, an
//! email change, a password change or reset, a request for a link, a second factor's change
//! in `factors.rs`), so a change is never made
//! without its mail, nor a mail queued for a change that did not happen. [`mail_impl!`] writes
//! each statement once for both engines, like `store_impl!`.

use super::StoreError;
use crate::domain::{Email, PasswordHash, TokenHash, User, UserId, Username};
use time::OffsetDateTime;

/// What a mail is about; counted per address for the per-address limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A link that verifies an address.
    Verify,
    /// A link that sets a new password.
    Reset,
    /// A notice to the old address that the account's address changed.
    EmailChanged,
    /// A notice that the password was changed.
    PasswordChanged,
    /// A notice that the password was reset through a link.
    PasswordReset,
    /// A notice that a second factor (TOTP, a passkey) was added.
    FactorAdded,
    /// A notice that a second factor was removed.
    FactorRemoved,
    /// A notice that new recovery codes replaced the old ones.
    RecoveryCodes,
    /// A notice that an administrator removed every second factor.
    FactorsReset,
    /// A notice that a recovery code was used to sign in.
    RecoveryCodeUsed,
}

impl MailKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Verify => "verify",
            MailKind::Reset => "reset",
            MailKind::EmailChanged => "email_changed",
            MailKind::PasswordChanged => "password_changed",
            MailKind::PasswordReset => "password_reset",
            MailKind::FactorAdded => "factor_added",
            MailKind::FactorRemoved => "factor_removed",
            MailKind::RecoveryCodes => "recovery_codes",
            MailKind::FactorsReset => "factors_reset",
            MailKind::RecoveryCodeUsed => "recovery_code_used",
        }
    }

    /// The kind a stored name names.
    pub fn parse(s: &str) -> Option<MailKind> {
        [
            MailKind::Verify,
            MailKind::Reset,
            MailKind::EmailChanged,
            MailKind::PasswordChanged,
            MailKind::PasswordReset,
            MailKind::FactorAdded,
            MailKind::FactorRemoved,
            MailKind::RecoveryCodes,
            MailKind::FactorsReset,
            MailKind::RecoveryCodeUsed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A mail to queue.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// Its id, also the left part of its `Message-ID`.
    pub id: uuid::Uuid,
    /// What it is about.
    pub kind: MailKind,
    /// Where it goes.
    pub recipient: Email,
    /// Its subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The link it carries, when it carries one (logged instead of sent in `dev` without SMTP).
    pub link: Option<String>,
    /// When it was queued (its `Date`).
    pub created_at: OffsetDateTime,
}

impl OutgoingMail {
    /// A new mail of `kind` to `recipient`, queued `now`, its subject and both parts
    /// rendered, carrying no link.
    pub fn new(kind: MailKind, recipient: &Email, subject: String, text: String, html: String, now: OffsetDateTime) -> Self {
        OutgoingMail { id: uuid::Uuid::new_v4(), kind, recipient: recipient.clone(), subject, text, html, link: None, created_at: now }
    }
}

/// What a link token does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Proves that the address belongs to the person.
    Verify,
    /// Sets a new password.
    Reset,
}

impl LinkKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Verify => "verify",
            LinkKind::Reset => "reset",
        }
    }
}

/// A link token as stored: only the hash of its text.
#[derive(Debug, Clone)]
pub struct LinkToken {
    /// SHA-256 of the token text.
    pub hash: TokenHash,
    /// What it does.
    pub kind: LinkKind,
    /// Whose it is.
    pub user_id: UserId,
    /// The address it was sent to.
    pub email: Email,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// A per-address limit: at most `max` mails of `kind` to the mail's recipient since `since`.
#[derive(Debug, Clone, Copy)]
pub struct MailLimit {
    /// The kind counted.
    pub kind: MailKind,
    /// How many are allowed.
    pub max: u32,
    /// The start of the window.
    pub since: OffsetDateTime,
}

/// What asking to queue a limited mail did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// The mail (and its link) were stored.
    Queued,
    /// The limit was reached: nothing was stored. The oldest counted mail was queued at
    /// `oldest`, so the window has room again one window after it.
    Limited {
        /// When the oldest mail counted was queued.
        oldest: OffsetDateTime,
    },
}

/// A mail claimed by the worker for sending.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    /// Its id.
    pub id: uuid::Uuid,
    /// What it is about.
    pub kind: MailKind,
    /// Where it goes, as written.
    pub recipient: String,
    /// Its subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
    /// The link it carries, if any.
    pub link: Option<String>,
    /// When it was queued.
    pub created_at: OffsetDateTime,
    /// How many times it was claimed, this time included.
    pub attempts: u32,
}

/// Storage of the outbox and of link tokens.
#[async_trait::async_trait]
pub trait MailStore: Send + Sync {
    /// Creates an account (like `insert_user`) together with its verification link and mail,
    /// in one transaction. `Conflict(Email|Username)` when taken.
    async fn insert_user_with_mail(&self, user: &User, link: &LinkToken, mail: &OutgoingMail) -> Result<(), StoreError>;

    /// Stores a link and the mail carrying it, in one transaction, unless the mail's
    /// recipient already got `limit.max` mails of `limit.kind` since `limit.since`.
    async fn enqueue_link_mail(&self, link: &LinkToken, mail: &OutgoingMail, limit: &MailLimit) -> Result<Enqueued, StoreError>;

    /// Changes an account's email (marking it unverified) and optionally its username, stores
    /// `link` and queues `mails`, in one transaction; the account as it is afterwards, `None`
    /// when it no longer exists. `Conflict(Email|Username)` when taken.
    async fn change_email_with_mail(
        &self,
        id: UserId,
        email: &Email,
        username: Option<&Username>,
        now: OffsetDateTime,
        link: Option<&LinkToken>,
        mails: &[OutgoingMail],
    ) -> Result<Option<User>, StoreError>;

    /// Replaces the password verifier while it is still `expected` (like
    /// `replace_password_hash`) and queues `mail` with it; false (nothing written) when it
    /// changed meanwhile or the account is gone.
    async fn replace_password_with_mail(
        &self,
        id: UserId,
        expected: &PasswordHash,
        new: &PasswordHash,
        now: OffsetDateTime,
        mail: Option<&OutgoingMail>,
    ) -> Result<bool, StoreError>;

    /// The link whose token hashes to `hash`, when it is of `kind`, unused and unexpired at `now`.
    async fn live_link(&self, hash: &TokenHash, kind: LinkKind, now: OffsetDateTime) -> Result<Option<LinkToken>, StoreError>;

    /// Spends a verification link (one conditional write: of racing uses, one wins) and marks
    /// the address verified when it is still the account's address; the account afterwards.
    /// `None` when the link is unknown, used, expired, or for an address the account no longer has.
    async fn consume_verify_link(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<User>, StoreError>;

    /// Spends a reset link, sets the password to `new`, marks the address verified when the
    /// link was sent to the account's current address, and queues `mail`, in one transaction.
    /// The account whose password was set; `None` (nothing written) when the link is unknown,
    /// used or expired.
    async fn consume_reset_link(
        &self,
        hash: &TokenHash,
        new: &PasswordHash,
        now: OffsetDateTime,
        mail: Option<&OutgoingMail>,
    ) -> Result<Option<UserId>, StoreError>;

    /// Claims up to `limit` mails that are due at `now` and not claimed by a live lease,
    /// leasing them until `lease_until`; each instance's claim is its own (PostgreSQL: `FOR
    /// UPDATE SKIP LOCKED`), so no mail goes out twice while its lease lasts.
    async fn claim_mails(&self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32) -> Result<Vec<QueuedMail>, StoreError>;

    /// Marks a mail sent, blanking its bodies and link.
    async fn mail_sent(&self, id: uuid::Uuid, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Releases a mail whose sending failed, to be tried again at `due_at`.
    async fn mail_retry(&self, id: uuid::Uuid, due_at: OffsetDateTime, error: &str) -> Result<(), StoreError>;

    /// Gives a mail up (failed for too long), blanking its bodies and link.
    async fn mail_failed(&self, id: uuid::Uuid, now: OffsetDateTime, error: &str) -> Result<(), StoreError>;

    /// When the oldest mail still waiting to be sent was queued.
    async fn oldest_unsent_mail(&self) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Drops sent and failed mails queued before `cutoff`, and link tokens expired before it.
    async fn prune_mail(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError>;
}

/// The engine's `impl MailStore`. `$skip_locked` ends the claim's row selection and
/// `$for_update` the read that serializes a person's limited mails: PostgreSQL's `FOR UPDATE
/// SKIP LOCKED` and `FOR UPDATE`, nothing on SQLite (one writer at a time already).
macro_rules! mail_impl {
    ($engine:ty, $db:ty, $skip_locked:tt, $for_update:tt) => {
        #[async_trait::async_trait]
        impl MailStore for $engine {
            async fn insert_user_with_mail(&self, user: &User, link: &LinkToken, mail: &OutgoingMail) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                insert_user_in(&mut tx, user).await?;
                mail_link_in(&mut tx, link).await?;
                mail_insert_in(&mut tx, mail).await?;
                tx.commit().await.map_err(classify)
            }

            async fn enqueue_link_mail(&self, link: &LinkToken, mail: &OutgoingMail, limit: &MailLimit) -> Result<Enqueued, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                // Racing requests for one person count one after the other.
                sqlx::query(sql!("SELECT id FROM users WHERE id = $1", $for_update))
                    .bind(link.user_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(classify)?;
                let (count, oldest): (i64, Option<i64>) = sqlx::query_as(sql!(
                    "SELECT COUNT(*), MIN(created_at) FROM mail_outbox WHERE recipient_normalized = $1 AND kind = $2 AND created_at > $3"
                ))
                .bind(mail.recipient.normalized())
                .bind(limit.kind.as_str())
                .bind(ms(limit.since))
                .fetch_one(&mut *tx)
                .await
                .map_err(classify)?;
                if count >= i64::from(limit.max) {
                    return Ok(Enqueued::Limited { oldest: oldest.map_or(mail.created_at, from_ms) });
                }
                mail_link_in(&mut tx, link).await?;
                mail_insert_in(&mut tx, mail).await?;
                tx.commit().await.map_err(classify)?;
                Ok(Enqueued::Queued)
            }

            async fn change_email_with_mail(
                &self,
                id: UserId,
                email: &Email,
                username: Option<&Username>,
                now: OffsetDateTime,
                link: Option<&LinkToken>,
                mails: &[OutgoingMail],
            ) -> Result<Option<User>, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let row: Option<UserRow> = sqlx::query_as(sql!(
                    "UPDATE users SET email = $1, email_normalized = $2, email_verified = FALSE, ",
                    "username = COALESCE($3, username), updated_at = $4 WHERE id = $5 RETURNING ",
                    user_columns!()
                ))
                .bind(email.as_str())
                .bind(email.normalized())
                .bind(username.map(Username::as_str))
                .bind(ms(now))
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
                let Some(row) = row else { return Ok(None) };
                if let Some(link) = link {
                    mail_link_in(&mut tx, link).await?;
                }
                for mail in mails {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)?;
                User::try_from(row).map(Some)
            }

            async fn replace_password_with_mail(
                &self,
                id: UserId,
                expected: &PasswordHash,
                new: &PasswordHash,
                now: OffsetDateTime,
                mail: Option<&OutgoingMail>,
            ) -> Result<bool, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let done = sqlx::query(sql!("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4"))
                    .bind(new.as_str())
                    .bind(ms(now))
                    .bind(id.to_string())
                    .bind(expected.as_str())
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

            async fn live_link(&self, hash: &TokenHash, kind: LinkKind, now: OffsetDateTime) -> Result<Option<LinkToken>, StoreError> {
                let row: Option<(String, String, i64, i64)> = sqlx::query_as(sql!(
                    "SELECT user_id, email, created_at, expires_at FROM link_tokens ",
                    "WHERE hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3"
                ))
                .bind(hash.as_bytes().as_slice())
                .bind(kind.as_str())
                .bind(ms(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
                let Some((user_id, email, created_at, expires_at)) = row else { return Ok(None) };
                Ok(Some(LinkToken {
                    hash: *hash,
                    kind,
                    user_id: user_id.parse().map_err(StoreError::other)?,
                    email: Email::parse(&email).map_err(StoreError::other)?,
                    created_at: from_ms(created_at),
                    expires_at: from_ms(expires_at),
                }))
            }

            async fn consume_verify_link(&self, hash: &TokenHash, now: OffsetDateTime) -> Result<Option<User>, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let Some((user_id, email)) = mail_spend_link_in(&mut tx, hash, LinkKind::Verify, now).await? else {
                    return Ok(None);
                };
                let row: Option<UserRow> = sqlx::query_as(sql!(
                    "UPDATE users SET email_verified = TRUE, updated_at = $1 WHERE id = $2 AND email_normalized = $3 RETURNING ",
                    user_columns!()
                ))
                .bind(ms(now))
                .bind(&user_id)
                .bind(&email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(classify)?;
                tx.commit().await.map_err(classify)?;
                row.map(User::try_from).transpose()
            }

            async fn consume_reset_link(
                &self,
                hash: &TokenHash,
                new: &PasswordHash,
                now: OffsetDateTime,
                mail: Option<&OutgoingMail>,
            ) -> Result<Option<UserId>, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let Some((user_id, email)) = mail_spend_link_in(&mut tx, hash, LinkKind::Reset, now).await? else {
                    return Ok(None);
                };
                let done = sqlx::query(sql!(
                    "UPDATE users SET password_hash = $1, updated_at = $2, ",
                    "email_verified = CASE WHEN email_normalized = $3 THEN TRUE ELSE email_verified END WHERE id = $4"
                ))
                .bind(new.as_str())
                .bind(ms(now))
                .bind(&email)
                .bind(&user_id)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                if done.rows_affected() != 1 {
                    return Ok(None);
                }
                if let Some(mail) = mail {
                    mail_insert_in(&mut tx, mail).await?;
                }
                tx.commit().await.map_err(classify)?;
                user_id.parse().map(Some).map_err(StoreError::other)
            }

            async fn claim_mails(&self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32) -> Result<Vec<QueuedMail>, StoreError> {
                let mut w = self.write().await?;
                let rows: Vec<(String, String, String, String, String, String, Option<String>, i64, i32)> = sqlx::query_as(sql!(
                    "UPDATE mail_outbox SET claimed_until = $2, attempts = attempts + 1 WHERE id IN (",
                    "SELECT id FROM mail_outbox WHERE status = 'queued' AND due_at <= $1 ",
                    "AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY due_at LIMIT $3",
                    $skip_locked,
                    ") RETURNING id, kind, recipient, subject, text_body, html_body, link, created_at, attempts"
                ))
                .bind(ms(now))
                .bind(ms(lease_until))
                .bind(i64::from(limit))
                .fetch_all(&mut *w)
                .await
                .map_err(classify)?;
                rows.into_iter()
                    .map(|(id, kind, recipient, subject, text, html, link, created_at, attempts)| {
                        Ok(QueuedMail {
                            id: id.parse().map_err(StoreError::other)?,
                            kind: MailKind::parse(&kind).ok_or_else(|| StoreError::other(std::io::Error::other("unknown mail kind")))?,
                            recipient,
                            subject,
                            text,
                            html,
                            link,
                            created_at: from_ms(created_at),
                            attempts: u32::try_from(attempts).unwrap_or(0),
                        })
                    })
                    .collect()
            }

            async fn mail_sent(&self, id: uuid::Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!(
                    "UPDATE mail_outbox SET status = 'sent', sent_at = $2, claimed_until = NULL, last_error = NULL, ",
                    "text_body = '', html_body = '', link = NULL WHERE id = $1"
                ))
                .bind(id.to_string())
                .bind(ms(now))
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(classify)
            }

            async fn mail_retry(&self, id: uuid::Uuid, due_at: OffsetDateTime, error: &str) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!("UPDATE mail_outbox SET due_at = $2, claimed_until = NULL, last_error = $3 WHERE id = $1 AND status = 'queued'"))
                    .bind(id.to_string())
                    .bind(ms(due_at))
                    .bind(error)
                    .execute(&mut *w)
                    .await
                    .map(|_| ())
                    .map_err(classify)
            }

            async fn mail_failed(&self, id: uuid::Uuid, now: OffsetDateTime, error: &str) -> Result<(), StoreError> {
                let mut w = self.write().await?;
                sqlx::query(sql!(
                    "UPDATE mail_outbox SET status = 'failed', sent_at = $2, claimed_until = NULL, last_error = $3, ",
                    "text_body = '', html_body = '', link = NULL WHERE id = $1"
                ))
                .bind(id.to_string())
                .bind(ms(now))
                .bind(error)
                .execute(&mut *w)
                .await
                .map(|_| ())
                .map_err(classify)
            }

            async fn oldest_unsent_mail(&self) -> Result<Option<OffsetDateTime>, StoreError> {
                let oldest: Option<i64> = sqlx::query_scalar(sql!("SELECT MIN(created_at) FROM mail_outbox WHERE status = 'queued'"))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(classify)?;
                Ok(oldest.map(from_ms))
            }

            async fn prune_mail(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
                let mut w = self.write().await?;
                let mut tx = Self::begin(&mut w).await?;
                let mails = sqlx::query(sql!("DELETE FROM mail_outbox WHERE status <> 'queued' AND created_at < $1"))
                    .bind(ms(cutoff))
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?
                    .rows_affected();
                let links = sqlx::query(sql!("DELETE FROM link_tokens WHERE expires_at < $1"))
                    .bind(ms(cutoff))
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?
                    .rows_affected();
                tx.commit().await.map_err(classify)?;
                Ok(mails + links)
            }
        }

        async fn mail_insert_in(conn: &mut <$db as sqlx::Database>::Connection, mail: &OutgoingMail) -> Result<(), StoreError> {
            sqlx::query(sql!(
                "INSERT INTO mail_outbox (id, kind, recipient, recipient_normalized, subject, text_body, html_body, link, ",
                "created_at, due_at, attempts, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 0, 'queued')"
            ))
            .bind(mail.id.to_string())
            .bind(mail.kind.as_str())
            .bind(mail.recipient.as_str())
            .bind(mail.recipient.normalized())
            .bind(&mail.subject)
            .bind(&mail.text)
            .bind(&mail.html)
            .bind(mail.link.as_deref())
            .bind(ms(mail.created_at))
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(classify)
        }

        async fn mail_link_in(conn: &mut <$db as sqlx::Database>::Connection, link: &LinkToken) -> Result<(), StoreError> {
            sqlx::query(sql!(
                "INSERT INTO link_tokens (hash, kind, user_id, email, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)"
            ))
            .bind(link.hash.as_bytes().as_slice())
            .bind(link.kind.as_str())
            .bind(link.user_id.to_string())
            .bind(link.email.normalized())
            .bind(ms(link.created_at))
            .bind(ms(link.expires_at))
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(classify)
        }

        /// Spends a live link of `kind` (one conditional write): its user id and normalized address.
        async fn mail_spend_link_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            hash: &TokenHash,
            kind: LinkKind,
            now: OffsetDateTime,
        ) -> Result<Option<(String, String)>, StoreError> {
            sqlx::query_as(sql!(
                "UPDATE link_tokens SET used_at = $3 WHERE hash = $1 AND kind = $2 AND used_at IS NULL AND expires_at > $3 ",
                "RETURNING user_id, email"
            ))
            .bind(hash.as_bytes().as_slice())
            .bind(kind.as_str())
            .bind(ms(now))
            .fetch_optional(conn)
            .await
            .map_err(classify)
        }
    };
}

pub(crate) use mail_impl;
