//! Email use cases: verifying an address, recovering a forgotten password, and the mails that
//! go with registration, an email change and a password change.
//!
//! Every mail is queued in the transaction of the change that causes it (see `store/mail.rs`).
//! Links carry a 256-bit token of which only the SHA-256 is stored, work once, and expire.

use super::Tessera;
use super::error::{Error, Result};
use super::mail::Notice;
use super::sessions::ClientMeta;
use crate::domain::{Email, NewPassword, PasswordHash, PlainToken, TokenKind, User, Username};
use crate::store::{Enqueued, LinkKind, LinkToken, MailKind, MailLimit, OutgoingMail};
use std::sync::Arc;
use std::time::Duration;
use tessera_verify::Claims;
use time::OffsetDateTime;

/// Verification mails per address per hour (the registration's included); past it, 429.
pub const VERIFY_MAILS_PER_HOUR: u32 = 3;
/// Reset mails per address per hour; past it, the request is answered alike but sends nothing.
pub const RESET_MAILS_PER_HOUR: u32 = 3;
const HOUR: Duration = Duration::from_secs(3600);

impl Tessera {
    /// A new link token of `kind` for `user` at `to`, and its URL under the issuer.
    fn new_link(&self, kind: LinkKind, user: &User, to: &Email, now: OffsetDateTime) -> Result<(String, LinkToken)> {
        let plain = PlainToken::generate(TokenKind::EmailLink).map_err(Error::internal)?;
        let (path, ttl) = match kind {
            LinkKind::Verify => ("/verify-email", self.outbox.link_ttl),
            LinkKind::Reset => ("/password/reset", self.outbox.reset_ttl),
        };
        let url = format!("{}{path}?token={}", self.outbox.issuer, plain.expose());
        let link = LinkToken { hash: plain.hash(), kind, user_id: user.id, email: to.clone(), created_at: now, expires_at: now + ttl };
        Ok((url, link))
    }

    /// A verification link for `user`'s address and the mail that carries it.
    fn verification(&self, user: &User, to: &Email, now: OffsetDateTime) -> Result<(LinkToken, OutgoingMail)> {
        let (url, link) = self.new_link(LinkKind::Verify, user, to, now)?;
        let mail = self.link_mail(MailKind::Verify, to, &url, now)?;
        Ok((link, mail))
    }

    /// Stores a new account; a self-registered one gets its verification mail in the same
    /// transaction (when mails are sent at all).
    pub(crate) async fn insert_new_user(&self, user: &User, send_verification: bool, meta: &ClientMeta) -> Result<()> {
        if !(send_verification && self.outbox.enabled()) {
            return Ok(self.store.insert_user(user).await?);
        }
        let (link, mail) = self.verification(user, &user.email, user.created_at)?;
        self.store.insert_user_with_mail(user, &link, &mail).await?;
        self.mails_queued(&[MailKind::Verify]);
        let id = user.id.to_string();
        self.audit(meta, "email.verification_sent", Some(&id), Some(&id), Some("on registration".to_owned())).await;
        Ok(())
    }

    /// Applies a profile change. A new address (not merely new capitals) makes it unverified
    /// and, in the same transaction, queues a verification link to the new address and a
    /// notice to the old one.
    pub(crate) async fn apply_profile_change(
        &self,
        before: &User,
        email: Option<&Email>,
        username: Option<&Username>,
        meta: &ClientMeta,
    ) -> Result<Option<User>> {
        let now = self.now();
        let Some(new) = email.filter(|e| e.normalized() != before.email.normalized()) else {
            return Ok(self.store.update_profile(before.id, email, username, now).await?);
        };
        let (link, mut mails) = if self.outbox.enabled() {
            let (link, mail) = self.verification(before, new, now)?;
            (Some(link), vec![mail])
        } else {
            (None, vec![])
        };
        mails.extend(self.notice_mail(&Notice::EmailChanged { to: new.as_str().to_owned() }, &before.email, now)?);
        let user = self.store.change_email_with_mail(before.id, new, username, now, link.as_ref(), &mails).await?;
        self.mails_queued(&mails.iter().map(|m| m.kind).collect::<Vec<_>>());
        if user.is_some() && link.is_some() {
            let id = before.id.to_string();
            self.audit(meta, "email.verification_sent", Some(&id), Some(&id), Some("on an email change".to_owned())).await;
        }
        Ok(user)
    }

    /// Replaces a password (compare and set) and queues the notice of the change with it.
    pub(crate) async fn replace_password_noticed(&self, user: &User, new: &PasswordHash) -> Result<bool> {
        let now = self.now();
        let notice = self.notice_mail(&Notice::PasswordChanged, &user.email, now)?;
        let replaced = self.store.replace_password_with_mail(user.id, &user.password_hash, new, now, notice.as_ref()).await?;
        if replaced {
            self.mails_queued(&notice.iter().map(|m| m.kind).collect::<Vec<_>>());
        }
        Ok(replaced)
    }

    /// Refuses an unverified address while `TESSERA_REQUIRE_VERIFIED_EMAIL=true`.
    pub(crate) fn require_verified(&self, user: &User) -> Result<()> {
        if self.outbox.require_verified && !user.email_verified { Err(Error::EmailNotVerified) } else { Ok(()) }
    }

    /// Whether registration answers without tokens (the address must be verified first).
    pub fn registration_needs_verification(&self) -> bool {
        self.outbox.require_verified
    }

    /// `POST /v1/users/me/email/verification`: sends the caller a new verification link, at
    /// most [`VERIFY_MAILS_PER_HOUR`] per address per hour (429 past it). An address already
    /// verified gets nothing.
    pub async fn resend_verification(&self, claims: &Claims, meta: &ClientMeta) -> Result<()> {
        let user = self.me(claims).await?;
        self.resend_verification_to(&user, meta).await
    }

    /// Sends `user` a new verification link (the account page's button), under the same limit.
    pub async fn resend_verification_to(&self, user: &User, meta: &ClientMeta) -> Result<()> {
        if !self.outbox.enabled() {
            return Err(Error::EmailUnavailable);
        }
        if user.email_verified {
            return Ok(());
        }
        let now = self.now();
        let (link, mail) = self.verification(user, &user.email, now)?;
        let limit = MailLimit { kind: MailKind::Verify, max: VERIFY_MAILS_PER_HOUR, since: now - HOUR };
        let id = user.id.to_string();
        match self.store.enqueue_link_mail(&link, &mail, &limit).await? {
            Enqueued::Queued => {
                self.mails_queued(&[MailKind::Verify]);
                self.audit(meta, "email.verification_sent", Some(&id), Some(&id), Some("resent".to_owned())).await;
                Ok(())
            }
            Enqueued::Limited { oldest } => {
                self.audit(meta, "email.verification_limited", Some(&id), Some(&id), None).await;
                let wait = Duration::try_from(oldest + HOUR - now).unwrap_or_default().max(Duration::from_secs(1));
                Err(Error::RateLimited { retry_after: wait })
            }
        }
    }

    /// `POST /v1/auth/email/verify`: spends a verification link; the account with its address
    /// verified.
    pub async fn verify_email(&self, token: &str, meta: &ClientMeta) -> Result<User> {
        let hash = PlainToken::from_presented(token).hash();
        let Some(user) = self.store.consume_verify_link(&hash, self.now()).await? else {
            return Err(Error::InvalidLink);
        };
        let id = user.id.to_string();
        self.audit(meta, "email.verified", Some(&id), Some(&id), None).await;
        Ok(user)
    }

    /// `POST /v1/auth/password/forgot`: answers at once, the same way whether or not an
    /// account has this address: the look-up and the mail happen after the answer, so neither
    /// its content nor its time tells. Per address, at most [`RESET_MAILS_PER_HOUR`] reset
    /// mails an hour are sent; later requests are answered alike and send nothing.
    pub fn forgot_password(self: &Arc<Self>, email: &str, meta: &ClientMeta) -> Result<()> {
        if !self.outbox.enabled() {
            return Err(Error::EmailUnavailable);
        }
        let email = Email::parse(email).map_err(|e| Error::Validation(format!("email: {e}")))?;
        let this = Arc::clone(self);
        let meta = meta.clone();
        tokio::spawn(async move {
            if let Err(e) = this.send_reset_link(&email, &meta).await {
                tracing::warn!(error = %e, "cannot queue a password-reset mail");
            }
        });
        Ok(())
    }

    async fn send_reset_link(&self, email: &Email, meta: &ClientMeta) -> Result<()> {
        let Some(user) = self.store.user_by_email(email).await? else {
            self.audit(meta, "password.reset_requested", None, None, Some("no such account".to_owned())).await;
            return Ok(());
        };
        let now = self.now();
        let (url, link) = self.new_link(LinkKind::Reset, &user, &user.email, now)?;
        let mail = self.link_mail(MailKind::Reset, &user.email, &url, now)?;
        let limit = MailLimit { kind: MailKind::Reset, max: RESET_MAILS_PER_HOUR, since: now - HOUR };
        let id = user.id.to_string();
        match self.store.enqueue_link_mail(&link, &mail, &limit).await? {
            Enqueued::Queued => {
                self.mails_queued(&[MailKind::Reset]);
                self.audit(meta, "password.reset_requested", None, Some(&id), Some("link sent".to_owned())).await;
            }
            Enqueued::Limited { .. } => {
                self.audit(meta, "password.reset_requested", None, Some(&id), Some("limit reached; nothing sent".to_owned())).await;
            }
        }
        Ok(())
    }

    /// `POST /v1/auth/password/reset`: spends a reset link and sets the new password, marks
    /// the address verified (the person read mail sent to it), queues a notice, and ends every
    /// session of the person, on the API and in browsers.
    pub async fn reset_password(&self, token: &str, new_password: String, meta: &ClientMeta) -> Result<()> {
        let hash = PlainToken::from_presented(token).hash();
        let link = self.store.live_link(&hash, LinkKind::Reset, self.now()).await?.ok_or(Error::InvalidLink)?;
        let user = self.store.user_by_id(link.user_id).await?.ok_or(Error::InvalidLink)?;
        let local = user.email.as_str().split('@').next().unwrap_or_default().to_owned();
        let context = [user.email.as_str(), local.as_str(), user.username.as_ref().map_or("", Username::as_str)];
        let new = NewPassword::parse(new_password, &context).map_err(|e| Error::WeakPassword(e.0))?;
        let new_hash = self.hasher.hash(&new).await?;
        let now = self.now();
        let notice = self.notice_mail(&Notice::PasswordReset, &user.email, now)?;
        let Some(id) = self.store.consume_reset_link(&hash, &new_hash, now, notice.as_ref()).await? else {
            return Err(Error::InvalidLink);
        };
        self.mails_queued(&notice.iter().map(|m| m.kind).collect::<Vec<_>>());
        self.revoke_everything_of(id).await?;
        let subject = id.to_string();
        self.audit(meta, "password.reset", Some(&subject), Some(&subject), Some("with a link sent by mail".to_owned())).await;
        Ok(())
    }
}
