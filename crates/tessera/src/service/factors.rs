//! Second factors: TOTP enrolment and removal, recovery codes, and the second step of a
//! password sign-in.
//!
//! A person with a confirmed TOTP secret or a passkey never gets a token, nor a browser
//! session, from a password alone: the password check answers `MfaRequired` with an
//! `mfa_token` (a pending sign-in stored by its hash: single use, 5 minutes, 5 wrong codes),
//! and the sign-in finishes with a code or a passkey. Wrong codes count against the same
//! failed-login limit as wrong passwords, under the account's email, and a right password
//! does not clear that count for such a person (only a finished sign-in does), so signing in
//! again does not buy more guesses.
//!
//! Adding or removing a second factor, new recovery codes, an admin's reset and the use of a
//! recovery code each queue a notice to the person's address, in the transaction of the change.

use super::Tessera;
use super::accounts::require_admin;
use super::browser::BrowserSignIn;
use super::error::{Error, Result};
use super::mail::{FactorNotice, Notice, SecondFactor};
use super::sessions::{ClientMeta, IssuedTokens, LoginId};
use crate::domain::factors::{TotpSecret, generate_recovery_codes, recovery_code_hash};
use crate::domain::{Amr, Email, PlainToken, TokenKind, User, UserId};
use crate::store::OutgoingMail;
use crate::store::factors::{FactorSummary, MfaChallenge, StoredPasskey};
use tessera_verify::Claims;
use time::Duration;

/// How long an `mfa_token` works.
pub const MFA_TOKEN_TTL: Duration = Duration::minutes(5);
/// Wrong codes that end an `mfa_token`.
pub const MFA_MAX_FAILURES: i64 = 5;

/// A new (pending) TOTP secret, shown once.
#[derive(Debug)]
pub struct TotpEnrolment {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// The `otpauth://` URI (the QR code's content).
    pub otpauth_uri: String,
}

/// How a pending sign-in may be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaMethod {
    /// A TOTP code.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// A passkey.
    Passkey,
}

impl MfaMethod {
    /// The name in `methods`.
    pub fn as_str(self) -> &'static str {
        match self {
            MfaMethod::Totp => "totp",
            MfaMethod::RecoveryCode => "recovery_code",
            MfaMethod::Passkey => "passkey",
        }
    }
}

/// Where a pending sign-in leads: the API's tokens or a browser session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MfaChannel {
    /// `POST /v1/auth/login`.
    Api,
    /// The sign-in page.
    Page,
}

impl MfaChannel {
    fn as_str(self) -> &'static str {
        match self {
            MfaChannel::Api => "api",
            MfaChannel::Page => "page",
        }
    }
}

/// The additional authentication data a TOTP secret is sealed under: it opens only as the
/// secret of this person.
fn totp_aad(user: UserId) -> String {
    format!("totp:{user}")
}

impl Tessera {
    /// Starts TOTP enrolment (fresh token): a new pending secret, replacing a pending one.
    /// `Conflict` when TOTP is on already.
    pub async fn enrol_totp(&self, claims: &Claims, meta: &ClientMeta) -> Result<TotpEnrolment> {
        if !self.is_fresh(claims) {
            return Err(Error::FreshTokenRequired);
        }
        let user = self.me(claims).await?;
        let secret = TotpSecret::generate().map_err(Error::internal)?;
        let (stored, sealed) = match &self.settings.master_key {
            Some(master) => (master.seal(secret.as_bytes(), totp_aad(user.id).as_bytes()).map_err(Error::internal)?, true),
            None => (secret.as_bytes().to_vec(), false),
        };
        if !self.store.put_pending_totp(user.id, &stored, sealed, self.now()).await? {
            return Err(Error::Conflict("TOTP is on already; remove it before enrolling a new authenticator"));
        }
        let id = user.id.to_string();
        self.audit(meta, "totp.enrolment_started", Some(&id), Some(&id), None).await;
        Ok(TotpEnrolment { secret: secret.base32(), otpauth_uri: secret.otpauth_uri(&self.settings.product_name, user.email.as_str()) })
    }

    /// The caller's pending TOTP secret, to show again until a code confirms it; `None`
    /// when no enrolment is pending.
    pub async fn pending_totp(&self, claims: &Claims) -> Result<Option<TotpEnrolment>> {
        let user = self.me(claims).await?;
        let Some(stored) = self.store.totp(user.id).await?.filter(|t| t.confirmed_at.is_none()) else { return Ok(None) };
        let secret = self.open_totp(user.id, stored.secret, stored.sealed)?;
        Ok(Some(TotpEnrolment {
            secret: secret.base32(),
            otpauth_uri: secret.otpauth_uri(&self.settings.product_name, user.email.as_str()),
        }))
    }

    /// Whether `user` started a TOTP enrolment and has not confirmed it.
    pub async fn has_pending_totp(&self, user: UserId) -> Result<bool> {
        Ok(self.store.totp(user).await?.is_some_and(|t| t.confirmed_at.is_none()))
    }

    /// Confirms the pending TOTP secret with its first code; returns ten new recovery codes
    /// (the old ones void), shown this once.
    pub async fn confirm_totp(&self, claims: &Claims, code: &str, meta: &ClientMeta) -> Result<Vec<String>> {
        let person = self.me(claims).await?;
        let user = person.id;
        let stored = self.store.totp(user).await?.filter(|t| t.confirmed_at.is_none());
        let Some(stored) = stored else {
            return Err(Error::Conflict("there is no TOTP enrolment to confirm; start one first"));
        };
        let secret = self.open_totp(user, stored.secret, stored.sealed)?;
        let step = self.totp_step(&secret, code).ok_or(Error::InvalidCode)?;
        let codes = generate_recovery_codes().map_err(Error::internal)?;
        let hashes: Vec<[u8; 32]> = codes.iter().filter_map(|c| recovery_code_hash(c)).collect();
        let notice = self.factor_notice_to(&person, FactorNotice::Added(SecondFactor::Totp))?;
        if !self.store.confirm_totp(user, step, &hashes, self.now(), notice.as_ref()).await? {
            return Err(Error::InvalidCode);
        }
        self.notices_queued(notice.as_ref());
        let id = user.to_string();
        self.audit(meta, "totp.enrolled", Some(&id), Some(&id), None).await;
        self.audit(meta, "recovery_codes.generated", Some(&id), Some(&id), None).await;
        Ok(codes)
    }

    /// Removes the caller's TOTP (fresh token); their recovery codes go too unless a passkey
    /// remains.
    pub async fn remove_totp(&self, claims: &Claims, meta: &ClientMeta) -> Result<()> {
        if !self.is_fresh(claims) {
            return Err(Error::FreshTokenRequired);
        }
        let person = self.me(claims).await?;
        let user = person.id;
        // Dropping an enrolment never confirmed removes no second factor: no notice.
        let confirmed = self.store.totp(user).await?.is_some_and(|t| t.confirmed_at.is_some());
        let notice = if confirmed { self.factor_notice_to(&person, FactorNotice::Removed(SecondFactor::Totp))? } else { None };
        if !self.store.delete_totp(user, notice.as_ref()).await? {
            return Err(Error::NotFound("TOTP"));
        }
        self.notices_queued(notice.as_ref());
        let id = user.to_string();
        self.audit(meta, "totp.removed", Some(&id), Some(&id), None).await;
        Ok(())
    }

    /// Ten new recovery codes for the caller (fresh token), the old ones void. `Conflict`
    /// without a second factor, which they would stand in for.
    pub async fn regenerate_recovery_codes(&self, claims: &Claims, meta: &ClientMeta) -> Result<Vec<String>> {
        if !self.is_fresh(claims) {
            return Err(Error::FreshTokenRequired);
        }
        let person = self.me(claims).await?;
        let user = person.id;
        if !self.second_factors(user).await?.any() {
            return Err(Error::Conflict("recovery codes stand in for a second factor; add TOTP or a passkey first"));
        }
        let codes = generate_recovery_codes().map_err(Error::internal)?;
        let hashes: Vec<[u8; 32]> = codes.iter().filter_map(|c| recovery_code_hash(c)).collect();
        let notice = self.factor_notice_to(&person, FactorNotice::RecoveryCodesReplaced)?;
        self.store.replace_recovery_codes(user, &hashes, self.now(), notice.as_ref()).await?;
        self.notices_queued(notice.as_ref());
        let id = user.to_string();
        self.audit(meta, "recovery_codes.generated", Some(&id), Some(&id), None).await;
        Ok(codes)
    }

    /// What second factors a person has.
    pub async fn second_factors(&self, user: UserId) -> Result<FactorSummary> {
        Ok(self.store.factor_summary(user).await?)
    }

    /// Removes every second factor of an account (admin): TOTP, recovery codes, passkeys.
    pub async fn admin_reset_mfa(&self, caller: &Claims, id: &str, meta: &ClientMeta) -> Result<()> {
        require_admin(caller)?;
        let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
        let user = self.store.user_by_id(id).await?.ok_or(Error::NotFound("user"))?;
        self.reset_mfa(&user, Some(&caller.sub), meta).await
    }

    /// Removes every second factor of the account with this email (the command line); the
    /// account as it is afterwards.
    pub async fn reset_mfa_by_email(&self, email: &str) -> Result<User> {
        let email = Email::parse(email).map_err(|e| Error::Validation(format!("email: {e}")))?;
        let user = self.store.user_by_email(&email).await?.ok_or(Error::NotFound("user"))?;
        self.reset_mfa(&user, None, &ClientMeta::default()).await?;
        self.store.user_by_id(user.id).await?.ok_or(Error::NotFound("user"))
    }

    async fn reset_mfa(&self, user: &User, actor: Option<&str>, meta: &ClientMeta) -> Result<()> {
        let notice = self.factor_notice_to(user, FactorNotice::Reset)?;
        let removed = self.store.delete_factors(user.id, notice.as_ref()).await?;
        if removed {
            self.notices_queued(notice.as_ref());
        }
        let id = user.id.to_string();
        let detail = if removed { "every second factor removed" } else { "there was no second factor" };
        self.audit(meta, "mfa.reset", actor, Some(&id), Some(detail.to_owned())).await;
        Ok(())
    }

    /// Stores a passkey `user` just registered and queues the notice of it in the same
    /// transaction; `Conflict` when its credential is registered already. (The caller
    /// audits.)
    pub async fn insert_passkey_noticed(&self, user: &User, passkey: &StoredPasskey) -> Result<()> {
        let added = FactorNotice::Added(SecondFactor::Passkey { name: passkey.name.clone() });
        let notice = self.factor_notice_to(user, added)?;
        self.store.insert_passkey(passkey, notice.as_ref()).await?;
        self.notices_queued(notice.as_ref());
        Ok(())
    }

    /// Deletes one of `user`'s passkeys and queues the notice of it in the same transaction;
    /// false (nothing written, nothing sent) when they have no such passkey. (The caller
    /// audits.)
    pub async fn delete_passkey_noticed(&self, user: &User, id: &str) -> Result<bool> {
        let Some(passkey) = self.store.passkeys_of(user.id).await?.into_iter().find(|p| p.id == id) else { return Ok(false) };
        let notice = self.factor_notice_to(user, FactorNotice::Removed(SecondFactor::Passkey { name: passkey.name }))?;
        let deleted = self.store.delete_passkey(user.id, id, notice.as_ref()).await?;
        if deleted {
            self.notices_queued(notice.as_ref());
        }
        Ok(deleted)
    }

    /// The notice about `user`'s second factors, to their address, when mails are sent.
    fn factor_notice_to(&self, user: &User, notice: FactorNotice) -> Result<Option<OutgoingMail>> {
        self.notice_mail(&Notice::Factor(notice), &user.email, self.now())
    }

    /// Counts a notice just queued with its change and wakes the mail worker.
    fn notices_queued(&self, notice: Option<&OutgoingMail>) {
        self.mails_queued(&notice.iter().map(|m| m.kind).collect::<Vec<_>>());
    }

    /// The methods a person's sign-in must finish with; empty when a password is enough.
    pub(crate) async fn mfa_methods(&self, user: UserId) -> Result<Vec<MfaMethod>> {
        let factors = self.second_factors(user).await?;
        // With passkeys off, a passkey is no factor at all.
        let passkeys = if self.passkeys_enabled() { factors.passkeys } else { 0 };
        let mut methods = Vec::new();
        if factors.totp {
            methods.push(MfaMethod::Totp);
        }
        if (factors.totp || passkeys > 0) && factors.recovery_codes > 0 {
            methods.push(MfaMethod::RecoveryCode);
        }
        if passkeys > 0 {
            methods.push(MfaMethod::Passkey);
        }
        Ok(methods)
    }

    /// After a right password: `Ok` when a password is enough for `user`, else the
    /// `MfaRequired` refusal with a new pending sign-in for `channel`.
    pub(crate) async fn require_second_factor_if_any(&self, user: &User, channel: MfaChannel) -> Result<()> {
        let methods = self.mfa_methods(user.id).await?;
        if methods.is_empty() {
            return Ok(());
        }
        let token = PlainToken::generate(TokenKind::MfaToken).map_err(Error::internal)?;
        let now = self.now();
        let challenge = MfaChallenge {
            hash: token.hash(),
            user_id: user.id,
            channel: channel.as_str().to_owned(),
            failures: 0,
            created_at: now,
            expires_at: now + MFA_TOKEN_TTL,
        };
        self.store.insert_mfa_challenge(&challenge).await?;
        Err(Error::MfaRequired { mfa_token: token.expose().to_owned(), methods: methods.into_iter().map(MfaMethod::as_str).collect() })
    }

    /// Finishes a password sign-in of the API with a TOTP or recovery code: fresh tokens.
    pub async fn login_mfa(&self, mfa_token: &str, code: &str, meta: &ClientMeta) -> Result<(User, IssuedTokens)> {
        let (user, amr) = self.check_code(mfa_token, MfaChannel::Api, code, meta).await?;
        self.start_session_by(user, amr, meta).await
    }

    /// Finishes a password sign-in of the pages with a TOTP or recovery code: a new browser
    /// session (the one `previous` names ends).
    pub async fn sign_in_browser_mfa(
        &self,
        mfa_token: &str,
        code: &str,
        meta: &ClientMeta,
        previous: Option<&str>,
    ) -> Result<BrowserSignIn> {
        let (user, amr) = self.check_code(mfa_token, MfaChannel::Page, code, meta).await?;
        self.replace_browser_session_by(user, amr, meta, previous).await
    }

    /// The pending sign-in `mfa_token` names, for `channel`, and its person, when they may
    /// still sign in.
    pub(crate) async fn pending_sign_in(&self, mfa_token: &str, channel: MfaChannel) -> Result<(MfaChallenge, User)> {
        let hash = PlainToken::from_presented(mfa_token).hash();
        let challenge = self.store.mfa_challenge(&hash, self.now()).await?.filter(|c| c.channel == channel.as_str());
        let Some(challenge) = challenge else { return Err(Error::InvalidMfaToken) };
        let user = self.store.user_by_id(challenge.user_id).await?.ok_or(Error::InvalidMfaToken)?;
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        Ok((challenge, user))
    }

    /// Ends a pending sign-in once its second factor passed: exactly one request gets to,
    /// and the failed-login counts of the account start over.
    pub(crate) async fn finish_pending_sign_in(
        &self,
        challenge: &MfaChallenge,
        user: &User,
        method: &str,
        meta: &ClientMeta,
    ) -> Result<()> {
        if self.store.take_mfa_challenge(&challenge.hash, self.now()).await?.is_none() {
            return Err(Error::InvalidMfaToken);
        }
        let counters = self.login_counters(&LoginId::Email(user.email.as_str().to_owned()), meta.ip);
        self.password_check_passed(&counters).await?;
        let id = user.id.to_string();
        self.audit(meta, "mfa.succeeded", Some(&id), Some(&id), Some(method.to_owned())).await;
        Ok(())
    }

    /// Checks a TOTP or recovery code against a pending sign-in: the person and how they
    /// signed in. A wrong code counts as a failed sign-in of the account and against the
    /// pending sign-in, which ends at the fifth.
    async fn check_code(&self, mfa_token: &str, channel: MfaChannel, code: &str, meta: &ClientMeta) -> Result<(User, Amr)> {
        let (challenge, user) = self.pending_sign_in(mfa_token, channel).await?;
        let counters = self.login_counters(&LoginId::Email(user.email.as_str().to_owned()), meta.ip);
        self.admit_password_check(&counters).await?;
        let id = user.id.to_string();
        let method = match self.accept_code(&user, code).await? {
            Some(method) => method,
            None => {
                self.password_check_failed(&counters).await?;
                let failures = self.store.fail_mfa_challenge(&challenge.hash, MFA_MAX_FAILURES).await?;
                let detail = format!("wrong code ({} of {MFA_MAX_FAILURES})", failures.unwrap_or(MFA_MAX_FAILURES));
                self.audit(meta, "mfa.failed", None, Some(&id), Some(detail)).await;
                return Err(Error::InvalidCode);
            }
        };
        self.finish_pending_sign_in(&challenge, &user, method.as_str(), meta).await?;
        if method == MfaMethod::RecoveryCode {
            self.audit(meta, "recovery_code.used", Some(&id), Some(&id), None).await;
        }
        Ok((user, vec!["pwd".to_owned(), "otp".to_owned(), "mfa".to_owned()]))
    }

    /// Spends `code` as a TOTP code of a confirmed secret (each step once) or as an unused
    /// recovery code: which it was, `None` when neither.
    async fn accept_code(&self, user: &User, code: &str) -> Result<Option<MfaMethod>> {
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            let Some(stored) = self.store.totp(user.id).await?.filter(|t| t.confirmed_at.is_some()) else { return Ok(None) };
            let secret = self.open_totp(user.id, stored.secret, stored.sealed)?;
            let Some(step) = self.totp_step(&secret, &digits) else { return Ok(None) };
            return Ok(self.store.accept_totp_step(user.id, step).await?.then_some(MfaMethod::Totp));
        }
        let Some(hash) = recovery_code_hash(code) else { return Ok(None) };
        // The notice tells how many codes are left once this one is spent.
        let left = (self.second_factors(user.id).await?.recovery_codes - 1).max(0);
        let notice = self.factor_notice_to(user, FactorNotice::RecoveryCodeUsed { left })?;
        if !self.store.use_recovery_code(user.id, &hash, self.now(), notice.as_ref()).await? {
            return Ok(None);
        }
        self.notices_queued(notice.as_ref());
        Ok(Some(MfaMethod::RecoveryCode))
    }

    /// The step of `code` within one step of now.
    fn totp_step(&self, secret: &TotpSecret, code: &str) -> Option<i64> {
        let now = u64::try_from(self.now().unix_timestamp()).ok()?;
        secret.check(code, now).and_then(|step| i64::try_from(step).ok())
    }

    /// A stored TOTP secret, unsealed.
    fn open_totp(&self, user: UserId, stored: Vec<u8>, sealed: bool) -> Result<TotpSecret> {
        if !sealed {
            return Ok(TotpSecret::from_bytes(stored));
        }
        let master =
            self.settings.master_key.as_ref().ok_or_else(|| Error::internal("a TOTP secret is sealed and no master key is set"))?;
        Ok(TotpSecret::from_bytes(master.open(&stored, totp_aad(user).as_bytes()).map_err(Error::internal)?))
    }
}
