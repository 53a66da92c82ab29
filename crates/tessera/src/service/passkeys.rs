//! Passkeys (WebAuthn): enrolment, listing and removal under `/v1/users/me/passkeys`, sign-in
//! with a passkey alone (a discoverable credential, the browser picks it), and a passkey as
//! the second step of a password sign-in.
//!
//! The relying party id is the issuer's host and its origin the issuer's origin; user
//! verification is required, so a passkey is two factors at once (`amr` `hwk`, `user`, `mfa`).
//! Passkeys are off with `TESSERA_PASSKEYS=false` and when the issuer's host is an IP address
//! (browsers refuse WebAuthn there): then every passkey use case answers `NotFound`, as an
//! unknown route does.
//!
//! Each ceremony has two requests. Its state (the challenge) is stored between them in
//! `webauthn_challenges`, so any instance finishes what another began; it is taken (deleted)
//! by the request that finishes it, so it works once, and only for [`CEREMONY_TTL`]. After a
//! sign-in the credential is stored again as webauthn-rs updated it (its counter and backup
//! flags).

use super::Tessera;
use super::browser::BrowserSignIn;
use super::error::{Error, Result};
use super::factors::MfaChannel;
use super::sessions::{ClientMeta, IssuedTokens, LoginId};
use crate::config::Config;
use crate::domain::{Amr, User, UserId};
use crate::store::factors::{MfaChallenge, StoredPasskey};
use serde::de::DeserializeOwned;
use std::fmt;
use tessera_verify::Claims;
use time::{Duration, OffsetDateTime};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url,
    Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// How long a ceremony's challenge works.
pub const CEREMONY_TTL: Duration = Duration::minutes(5);

/// The longest passkey name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// The kinds of ceremony state, each taken only by its own finishing request.
const REGISTRATION: &str = "registration";
const SIGN_IN: &str = "sign_in";
const SECOND_STEP: &str = "second_step";

/// The relying party: the issuer's host and origin (built once at start-up).
pub struct RelyingParty(Webauthn);

impl fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelyingParty")
    }
}

impl RelyingParty {
    /// The relying party of `config`'s issuer; `None` when passkeys are off.
    pub fn from_config(config: &Config) -> Result<Option<RelyingParty>> {
        if !config.passkeys_enabled() {
            return Ok(None);
        }
        let issuer = Url::parse(&config.issuer).map_err(Error::internal)?;
        let host = issuer.host_str().ok_or_else(|| Error::internal("the issuer has no host"))?.to_owned();
        let origin = Url::parse(&issuer.origin().ascii_serialization()).map_err(Error::internal)?;
        let webauthn =
            WebauthnBuilder::new(&host, &origin).and_then(|b| b.rp_name(&config.branding.product_name).build()).map_err(Error::internal)?;
        Ok(Some(RelyingParty(webauthn)))
    }
}

/// A ceremony begun: its id (to send back with the credential) and the options for
/// `navigator.credentials.create` or `.get` (the `publicKey` member, as JSON).
#[derive(Debug)]
pub struct Ceremony {
    /// Names the stored state.
    pub challenge_id: String,
    /// `PublicKeyCredentialCreationOptionsJSON` or `PublicKeyCredentialRequestOptionsJSON`.
    pub options: serde_json::Value,
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone)]
pub struct PasskeyInfo {
    /// Its id (for removal).
    pub id: String,
    /// The name its owner gave it.
    pub name: String,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// When it last signed its owner in.
    pub last_used_at: Option<OffsetDateTime>,
}

impl From<StoredPasskey> for PasskeyInfo {
    fn from(p: StoredPasskey) -> Self {
        PasskeyInfo { id: p.id, name: p.name, created_at: p.created_at, last_used_at: p.last_used_at }
    }
}

/// How a passkey alone signs in: `hwk` and `user` (it is user-verified), hence `mfa`.
fn passkey_amr() -> Amr {
    vec!["hwk".to_owned(), "user".to_owned(), "mfa".to_owned()]
}

/// A JSON value read as `T`, or a validation error naming `field`.
fn read_json<T: DeserializeOwned>(field: &str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Validation(format!("{field}: not a WebAuthn credential ({e})")))
}

/// The name a new passkey gets: the one given, trimmed, or `Passkey N`.
fn passkey_name(given: Option<&str>, existing: usize) -> Result<String> {
    let name = given.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Ok(format!("Passkey {}", existing + 1));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::Validation(format!("name: at most {MAX_NAME_CHARS} characters, no control characters")));
    }
    Ok(name.to_owned())
}

impl Tessera {
    /// Whether passkeys are on.
    pub fn passkeys_enabled(&self) -> bool {
        self.passkeys.is_some()
    }

    fn relying_party(&self) -> Result<&Webauthn> {
        self.passkeys.as_ref().map(|rp| &rp.0).ok_or(Error::NotFound("resource"))
    }

    /// Starts enrolling a passkey for the caller (fresh token): a discoverable credential with
    /// user verification, none of the caller's passkeys again.
    pub async fn start_passkey_registration(&self, claims: &Claims) -> Result<Ceremony> {
        let rp = self.relying_party()?;
        if !self.is_fresh(claims) {
            return Err(Error::FreshTokenRequired);
        }
        let user = self.me(claims).await?;
        let existing = self.stored_passkeys(user.id).await?;
        let exclude = existing.iter().map(|p| p.cred_id().clone()).collect::<Vec<_>>();
        let display = user.username.as_ref().map_or(user.email.as_str(), |u| u.as_str());
        let (options, state) =
            rp.start_passkey_registration(user.id.as_uuid(), user.email.as_str(), display, Some(exclude)).map_err(Error::internal)?;
        let mut options = serde_json::to_value(options.public_key).map_err(Error::internal)?;
        // A discoverable credential, so that the passkey alone signs in (webauthn-rs asks
        // for one only when the authenticator prefers to).
        if let Some(selection) = options.get_mut("authenticatorSelection").and_then(|s| s.as_object_mut()) {
            selection.insert("residentKey".to_owned(), "required".into());
            selection.insert("requireResidentKey".to_owned(), true.into());
        }
        let challenge_id = self.save_ceremony(Some(user.id), REGISTRATION, &state).await?;
        Ok(Ceremony { challenge_id, options })
    }

    /// Finishes enrolling the passkey the caller's authenticator made for `challenge_id`.
    pub async fn finish_passkey_registration(
        &self,
        claims: &Claims,
        challenge_id: &str,
        credential: serde_json::Value,
        name: Option<&str>,
        meta: &ClientMeta,
    ) -> Result<PasskeyInfo> {
        let rp = self.relying_party()?;
        let user = self.person(claims)?;
        let credential: RegisterPublicKeyCredential = read_json("credential", credential)?;
        let (owner, state) = self.take_ceremony::<PasskeyRegistration>(challenge_id, REGISTRATION).await?;
        if owner != Some(user) {
            return Err(Error::InvalidChallenge);
        }
        let passkey = rp
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| Error::Validation(format!("credential: the passkey was not accepted ({e})")))?;
        let count = self.store.passkeys_of(user).await?.len();
        let stored = StoredPasskey {
            id: Uuid::new_v4().to_string(),
            user_id: user,
            credential_id: passkey.cred_id().to_vec(),
            name: passkey_name(name, count)?,
            credential: serde_json::to_string(&passkey).map_err(Error::internal)?,
            created_at: self.now(),
            last_used_at: None,
        };
        let person = self.me(claims).await?;
        match self.insert_passkey_noticed(&person, &stored).await {
            Ok(()) => {}
            Err(Error::Conflict(_)) => return Err(Error::Conflict("this passkey is registered already")),
            Err(e) => return Err(e),
        }
        let id = user.to_string();
        self.audit(meta, "passkey.enrolled", Some(&id), Some(&id), Some(stored.name.clone())).await;
        Ok(stored.into())
    }

    /// The caller's passkeys, oldest first.
    pub async fn passkeys(&self, claims: &Claims) -> Result<Vec<PasskeyInfo>> {
        self.relying_party()?;
        let user = self.person(claims)?;
        Ok(self.store.passkeys_of(user).await?.into_iter().map(PasskeyInfo::from).collect())
    }

    /// The passkeys of `user` (for `/account`); empty when passkeys are off.
    pub async fn passkeys_of(&self, user: UserId) -> Result<Vec<PasskeyInfo>> {
        if !self.passkeys_enabled() {
            return Ok(Vec::new());
        }
        Ok(self.store.passkeys_of(user).await?.into_iter().map(PasskeyInfo::from).collect())
    }

    /// Removes one of the caller's passkeys (fresh token). Their recovery codes go with the
    /// last second factor, as when TOTP is removed.
    pub async fn remove_passkey(&self, claims: &Claims, id: &str, meta: &ClientMeta) -> Result<()> {
        self.relying_party()?;
        if !self.is_fresh(claims) {
            return Err(Error::FreshTokenRequired);
        }
        let person = self.me(claims).await?;
        let user = person.id;
        if !self.delete_passkey_noticed(&person, id).await? {
            return Err(Error::NotFound("passkey"));
        }
        let who = user.to_string();
        self.audit(meta, "passkey.removed", Some(&who), Some(&who), Some(id.to_owned())).await;
        Ok(())
    }

    /// Starts a passkey sign-in. Without `mfa_token`: any discoverable passkey of this relying
    /// party (empty `allowCredentials`). With one: the second step of that pending sign-in of
    /// `channel`, naming the person's passkeys.
    pub(crate) async fn start_passkey_sign_in(&self, mfa_token: Option<&str>, channel: MfaChannel) -> Result<Ceremony> {
        let rp = self.relying_party()?;
        let Some(mfa_token) = mfa_token else {
            let (options, state) = rp.start_discoverable_authentication().map_err(Error::internal)?;
            let options = serde_json::to_value(options.public_key).map_err(Error::internal)?;
            let challenge_id = self.save_ceremony(None, SIGN_IN, &state).await?;
            return Ok(Ceremony { challenge_id, options });
        };
        let (_, user) = self.pending_sign_in(mfa_token, channel).await?;
        let passkeys = self.stored_passkeys(user.id).await?;
        if passkeys.is_empty() {
            return Err(Error::Conflict("this account has no passkey; finish signing in with a code"));
        }
        let (options, state) = rp.start_passkey_authentication(&passkeys).map_err(Error::internal)?;
        let options = serde_json::to_value(options.public_key).map_err(Error::internal)?;
        let challenge_id = self.save_ceremony(Some(user.id), SECOND_STEP, &state).await?;
        Ok(Ceremony { challenge_id, options })
    }

    /// Starts a passkey sign-in of the API (see [`Tessera::start_passkey_sign_in`]).
    pub async fn passkey_options(&self, mfa_token: Option<&str>) -> Result<Ceremony> {
        self.start_passkey_sign_in(mfa_token, MfaChannel::Api).await
    }

    /// Starts a passkey sign-in of the pages (see [`Tessera::start_passkey_sign_in`]).
    pub async fn passkey_options_for_browser(&self, mfa_token: Option<&str>) -> Result<Ceremony> {
        self.start_passkey_sign_in(mfa_token, MfaChannel::Page).await
    }

    /// Signs in to the API with a passkey alone: fresh tokens.
    pub async fn passkey_login(
        &self,
        challenge_id: &str,
        credential: serde_json::Value,
        meta: &ClientMeta,
    ) -> Result<(User, IssuedTokens)> {
        let user = self.passkey_sign_in(challenge_id, credential, MfaChannel::Api, meta).await?;
        self.start_session_by(user, passkey_amr(), meta).await
    }

    /// Signs a browser in with a passkey alone (the session `previous` names ends).
    pub async fn sign_in_browser_passkey(
        &self,
        challenge_id: &str,
        credential: serde_json::Value,
        meta: &ClientMeta,
        previous: Option<&str>,
    ) -> Result<BrowserSignIn> {
        let user = self.passkey_sign_in(challenge_id, credential, MfaChannel::Page, meta).await?;
        self.replace_browser_session_by(user, passkey_amr(), meta, previous).await
    }

    /// Finishes a password sign-in of the API with a passkey: fresh tokens.
    pub async fn login_mfa_passkey(
        &self,
        mfa_token: &str,
        challenge_id: &str,
        credential: serde_json::Value,
        meta: &ClientMeta,
    ) -> Result<(User, IssuedTokens)> {
        let (user, amr) = self.second_step_passkey(mfa_token, MfaChannel::Api, challenge_id, credential, meta).await?;
        self.start_session_by(user, amr, meta).await
    }

    /// Finishes a password sign-in of the pages with a passkey: a new browser session.
    pub async fn sign_in_browser_mfa_passkey(
        &self,
        mfa_token: &str,
        challenge_id: &str,
        credential: serde_json::Value,
        meta: &ClientMeta,
        previous: Option<&str>,
    ) -> Result<BrowserSignIn> {
        let (user, amr) = self.second_step_passkey(mfa_token, MfaChannel::Page, challenge_id, credential, meta).await?;
        self.replace_browser_session_by(user, amr, meta, previous).await
    }

    /// Checks a discoverable passkey's assertion: the person it signs in. Audited as a
    /// sign-in of `channel` by passkey.
    async fn passkey_sign_in(
        &self,
        challenge_id: &str,
        credential: serde_json::Value,
        channel: MfaChannel,
        meta: &ClientMeta,
    ) -> Result<User> {
        let rp = self.relying_party()?;
        let credential: PublicKeyCredential = read_json("credential", credential)?;
        let (_, state) = self.take_ceremony::<DiscoverableAuthentication>(challenge_id, SIGN_IN).await?;
        let (succeeded, failed) = match channel {
            MfaChannel::Api => ("login.succeeded", "login.failed"),
            MfaChannel::Page => ("login.page.succeeded", "login.page.failed"),
        };
        let checked = self.check_discoverable(rp, &credential, state).await;
        match &checked {
            Ok(user) => {
                let id = user.id.to_string();
                self.audit(meta, succeeded, Some(&id), Some(&id), Some("by passkey".to_owned())).await;
            }
            Err(e) => {
                let outcome = match e {
                    Error::AccountDisabled => "account_disabled",
                    Error::EmailNotVerified => "email_not_verified",
                    Error::InvalidCredentials => "invalid_credentials",
                    _ => "error",
                };
                self.audit(meta, failed, None, None, Some(format!("{outcome} by passkey"))).await;
            }
        }
        checked
    }

    /// Checks a passkey's assertion as the second step of the pending sign-in `mfa_token`
    /// names: the person and how they signed in. A wrong assertion counts like a wrong code.
    async fn second_step_passkey(
        &self,
        mfa_token: &str,
        channel: MfaChannel,
        challenge_id: &str,
        credential: serde_json::Value,
        meta: &ClientMeta,
    ) -> Result<(User, Amr)> {
        let rp = self.relying_party()?;
        let credential: PublicKeyCredential = read_json("credential", credential)?;
        let (challenge, user) = self.pending_sign_in(mfa_token, channel).await?;
        let counters = self.login_counters(&LoginId::Email(user.email.as_str().to_owned()), meta.ip);
        self.admit_password_check(&counters).await?;
        let (owner, state) = self.take_ceremony::<PasskeyAuthentication>(challenge_id, SECOND_STEP).await?;
        if owner != Some(user.id) {
            return Err(Error::InvalidChallenge);
        }
        let checked = self.check_assertion(rp, &credential, &state, user.id).await?;
        let Some((stored, passkey)) = checked else {
            self.wrong_second_factor(&challenge, &user, &counters, meta).await?;
            return Err(Error::InvalidCode);
        };
        self.finish_pending_sign_in(&challenge, &user, "passkey", meta).await?;
        self.touch(&stored, &passkey).await?;
        Ok((user, vec!["pwd".to_owned(), "hwk".to_owned(), "user".to_owned(), "mfa".to_owned()]))
    }

    /// The person a discoverable passkey's assertion signs in, with the passkey stored again
    /// (its counter and backup state).
    async fn check_discoverable(&self, rp: &Webauthn, credential: &PublicKeyCredential, state: DiscoverableAuthentication) -> Result<User> {
        let (handle, credential_id) = rp.identify_discoverable_authentication(credential).map_err(|_| Error::InvalidCredentials)?;
        let stored = self.store.passkey_by_credential(credential_id).await?.ok_or(Error::InvalidCredentials)?;
        if stored.user_id.as_uuid() != handle {
            return Err(Error::InvalidCredentials);
        }
        let mut passkey: Passkey = serde_json::from_str(&stored.credential).map_err(Error::internal)?;
        let result = rp.finish_discoverable_authentication_v2(credential, state, &passkey).map_err(|_| Error::InvalidCredentials)?;
        if !result.user_verified() {
            return Err(Error::InvalidCredentials);
        }
        passkey.update_credential(&result);
        self.touch(&stored, &passkey).await?;
        let user = self.store.user_by_id(stored.user_id).await?.ok_or(Error::InvalidCredentials)?;
        if user.disabled {
            return Err(Error::AccountDisabled);
        }
        self.require_verified(&user)?;
        Ok(user)
    }

    /// The passkey of `user` the assertion checks out for (updated by it); `None` when it
    /// does not.
    async fn check_assertion(
        &self,
        rp: &Webauthn,
        credential: &PublicKeyCredential,
        state: &PasskeyAuthentication,
        user: UserId,
    ) -> Result<Option<(StoredPasskey, Passkey)>> {
        let stored = self.store.passkey_by_credential(credential.get_credential_id()).await?;
        let Some(stored) = stored.filter(|p| p.user_id == user) else { return Ok(None) };
        let mut passkey: Passkey = serde_json::from_str(&stored.credential).map_err(Error::internal)?;
        let Ok(result) = rp.finish_passkey_authentication(credential, state) else { return Ok(None) };
        if !result.user_verified() {
            return Ok(None);
        }
        passkey.update_credential(&result);
        Ok(Some((stored, passkey)))
    }

    /// A wrong passkey in the second step: a failed sign-in of the account and a wrong code
    /// of the pending sign-in.
    async fn wrong_second_factor(
        &self,
        challenge: &MfaChallenge,
        user: &User,
        counters: &super::ratelimit::LoginCounters,
        meta: &ClientMeta,
    ) -> Result<()> {
        self.password_check_failed(counters).await?;
        let max = super::factors::MFA_MAX_FAILURES;
        let failures = self.store.fail_mfa_challenge(&challenge.hash, max).await?;
        let detail = format!("wrong passkey ({} of {max})", failures.unwrap_or(max));
        let id = user.id.to_string();
        self.audit(meta, "mfa.failed", None, Some(&id), Some(detail)).await;
        Ok(())
    }

    /// Stores a passkey again after a sign-in: its credential as webauthn-rs updated it
    /// (counter, backup state) and the time.
    async fn touch(&self, stored: &StoredPasskey, passkey: &Passkey) -> Result<()> {
        let credential = serde_json::to_string(passkey).map_err(Error::internal)?;
        Ok(self.store.touch_passkey(&stored.id, &credential, self.now()).await?)
    }

    /// The person's passkeys as webauthn-rs reads them.
    async fn stored_passkeys(&self, user: UserId) -> Result<Vec<Passkey>> {
        let stored = self.store.passkeys_of(user).await?;
        stored.iter().map(|p| serde_json::from_str(&p.credential).map_err(Error::internal)).collect()
    }

    /// Stores a ceremony's state: its new id.
    async fn save_ceremony<T: serde::Serialize>(&self, user: Option<UserId>, kind: &str, state: &T) -> Result<String> {
        let id = Uuid::new_v4().simple().to_string();
        let state = serde_json::to_string(state).map_err(Error::internal)?;
        let now = self.now();
        self.store.insert_webauthn_challenge(&id, user, kind, &state, now, now + CEREMONY_TTL).await?;
        Ok(id)
    }

    /// Takes a ceremony's state of `kind`: its person and state. `InvalidChallenge` when it is
    /// unknown, of another kind, finished or expired.
    async fn take_ceremony<T: DeserializeOwned>(&self, id: &str, kind: &str) -> Result<(Option<UserId>, T)> {
        let (user, state) = self.store.take_webauthn_challenge(id, kind, self.now()).await?.ok_or(Error::InvalidChallenge)?;
        Ok((user, serde_json::from_str(&state).map_err(Error::internal)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passkey_without_a_name_is_numbered_and_a_name_is_trimmed_and_bounded() {
        assert_eq!(passkey_name(None, 0).unwrap(), "Passkey 1");
        assert_eq!(passkey_name(Some("  "), 2).unwrap(), "Passkey 3");
        assert_eq!(passkey_name(Some(" Laptop "), 0).unwrap(), "Laptop");
        assert!(passkey_name(Some(&"x".repeat(MAX_NAME_CHARS + 1)), 0).is_err());
        assert!(passkey_name(Some("a\nb"), 0).is_err());
    }

    #[test]
    fn the_relying_party_is_the_issuers_host_and_none_on_an_ip_address() {
        let mut config = Config::for_tests("sqlite://unused.db");
        config.issuer = "https://auth.example.com".to_owned();
        assert!(RelyingParty::from_config(&config).unwrap().is_some());
        config.issuer = "http://127.0.0.1:8080".to_owned();
        assert!(RelyingParty::from_config(&config).unwrap().is_none());
        config.issuer = "https://auth.example.com".to_owned();
        config.passkeys = false;
        assert!(RelyingParty::from_config(&config).unwrap().is_none());
    }
}
