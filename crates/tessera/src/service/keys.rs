//! The key ring: which key signs, which keys verify, what the JWKS publishes.
//!
//! Keys live in the store so every instance shares them. An asymmetric ring always holds a
//! `next` key, published ahead of its use so verifiers' caches already know it when it
//! becomes active; a rotation promotes it, makes a new next key, and marks the old active
//! key `retiring`, still published until every token it signed has expired. A change of
//! algorithm is published the same way before any token is signed with it (see
//! [`Tessera::rotate_keys`]). HS256 signs with the configured shared secret and publishes nothing.

use super::accounts::require_admin;
use super::error::{Error, Result};
use super::{ClientMeta, LEEWAY_SECS, Tessera};
use crate::domain::keys::{self, KeyStatus, Kid, MasterKey, PrivateKeyDer, Signer, SigningAlg};
use crate::store::{KeyRotation, StoreError, StoredKey};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::sync::{Arc, RwLock};
use tessera_verify::Claims;
use time::OffsetDateTime;

/// Setting that remembers the algorithm the configuration asked for last time, so a changed
/// configuration rotates to the new algorithm while `tessera keys rotate --alg` still holds
/// across restarts when the configuration did not change.
const CONFIGURED_ALG: &str = "configured_signing_alg";

/// A key as `/v1/keys` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    pub alg: SigningAlg,
    /// `next`, `active` or `retiring`.
    pub status: KeyStatus,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// How long the key of a new algorithm is published as `next` before it signs: the
/// `Cache-Control: max-age` of the JWKS and of the metadata (300 s), so that every cache that
/// honours it holds the key, and lists its algorithm, before the first token it signs.
pub const ALGORITHM_CHANGE_DELAY: time::Duration = time::Duration::seconds(300);

fn switch_time(next: &StoredKey) -> OffsetDateTime {
    next.created_at + ALGORITHM_CHANGE_DELAY
}

/// What a rotation did: a key that signs from now on (`status: active`), or a key published
/// as `next` that signs later (`active_from` when an algorithm change switches by itself).
#[derive(Debug, Clone)]
pub struct RotatedKey {
    /// The key.
    pub key: KeyInfo,
    /// When the published key starts signing, for an algorithm change.
    pub active_from: Option<OffsetDateTime>,
}

impl RotatedKey {
    fn active(key: KeyInfo) -> Self {
        RotatedKey { key, active_from: None }
    }

    fn pending(next: &StoredKey, active_from: Option<OffsetDateTime>) -> Self {
        let key = KeyInfo { kid: next.kid.to_string(), alg: next.alg, status: KeyStatus::Next, created_at: next.created_at };
        RotatedKey { key, active_from }
    }
}

/// One consistent view of the keys; replaced whole on every change.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) signer: Arc<Signer>,
    /// Every key a live token may be signed with, parsed once, as tessera-verify checks them.
    pub(crate) verifiers: tessera_verify::KeySet,
    pub(crate) listing: Vec<KeyInfo>,
    pub(crate) jwks: Arc<serde_json::Value>,
}

/// The current [`KeySet`], swapped atomically; readers clone an `Arc` and never wait on I/O.
#[derive(Debug)]
pub struct KeyRing {
    current: RwLock<Option<Arc<KeySet>>>,
}

impl KeyRing {
    pub(crate) fn empty() -> Self {
        KeyRing { current: RwLock::new(None) }
    }

    pub(crate) fn get(&self) -> Result<Arc<KeySet>> {
        self.current
            .read()
            .map_err(|_| Error::internal("key ring lock poisoned"))?
            .clone()
            .ok_or_else(|| Error::internal("key ring not loaded"))
    }

    fn replace(&self, set: KeySet) -> Result<()> {
        *self.current.write().map_err(|_| Error::internal("key ring lock poisoned"))? = Some(Arc::new(set));
        Ok(())
    }
}

impl Tessera {
    /// At start-up: makes sure there is an active key of the right algorithm (and a next key
    /// for asymmetric algorithms), then loads the ring. A changed `TESSERA_SIGNING_ALG` follows
    /// the same rule as `keys rotate --alg`: the new algorithm's key is published as `next`
    /// first and signs once it has been published for [`ALGORITHM_CHANGE_DELAY`] (immediately
    /// when there is no key yet, or when HS256, which publishes nothing, is involved).
    pub(crate) async fn ensure_keys(&self) -> Result<()> {
        // Instances starting together on one database race to make or change the keys; the
        // loser of a rotation reads what the winner wrote and checks again.
        let mut attempts = 0;
        loop {
            match self.try_ensure_keys().await {
                Err(Error::Conflict(_)) if attempts < 3 => attempts += 1,
                done => return done,
            }
        }
    }

    async fn try_ensure_keys(&self) -> Result<()> {
        let configured = self.settings.signing_alg;
        let config_changed = self.store.setting(CONFIGURED_ALG).await?.as_deref() != Some(configured.as_str());
        let stored = self.store.keys().await?;
        let active = stored.iter().find(|k| k.status == KeyStatus::Active);
        let next = stored.iter().find(|k| k.status == KeyStatus::Next);
        match active {
            None => self.create_first_keys(configured).await?,
            // A missing next key of the active key's algorithm is only added (below): another
            // instance starting at the same moment may be adding it.
            Some(a) if config_changed && (a.alg != configured || next.is_some_and(|n| n.alg != configured)) => {
                self.rotate_keys("configuration", Some(configured)).await?;
            }
            Some(a) if a.alg == SigningAlg::HS256 && Some(&a.kid) != self.hs256_kid().as_ref() => {
                // The shared secret changed: sign under its new kid from now on.
                self.rotate_keys("configuration", Some(SigningAlg::HS256)).await?;
            }
            Some(a) if a.alg.is_asymmetric() && next.is_none() => {
                let next = self.new_key(a.alg, KeyStatus::Next)?;
                ignore_lost_race(self.store.insert_key(&next).await)?;
            }
            Some(_) => {}
        }
        self.store.set_setting(CONFIGURED_ALG, configured.as_str()).await?;
        self.reload_keys().await
    }

    async fn create_first_keys(&self, alg: SigningAlg) -> Result<()> {
        let active = self.new_key(alg, KeyStatus::Active)?;
        // Another instance starting on the same empty database may win; then use its keys.
        if ignore_lost_race(self.store.insert_key(&active).await)? && alg.is_asymmetric() {
            let next = self.new_key(alg, KeyStatus::Next)?;
            ignore_lost_race(self.store.insert_key(&next).await)?;
        }
        Ok(())
    }

    /// Rotates the keys. A key never signs before it has been published:
    ///
    /// - same algorithm (or none given): the next key, already in the JWKS, becomes active, a
    ///   new next key is made, and the active key is `retiring`;
    /// - another asymmetric algorithm (`alg`): the next key is replaced by one of the new
    ///   algorithm and the active key keeps signing; the new key becomes active by itself once
    ///   it has been published for [`ALGORITHM_CHANGE_DELAY`] (see [`Self::rotate_keys_if_due`]),
    ///   and rotating again before then only reports when. Asking for the active key's
    ///   algorithm while another one is pending cancels the change the same way;
    /// - from or to HS256, which publishes nothing: at once.
    ///
    /// `actor` is who asked, for the audit trail: an admin's `sub`, `cli`, `schedule` or
    /// `configuration`.
    pub async fn rotate_keys(&self, actor: &str, alg: Option<SigningAlg>) -> Result<RotatedKey> {
        self.rotate_keys_from(actor, alg, &ClientMeta::default()).await
    }

    /// [`Self::rotate_keys`] asked for by a request from `meta`.
    async fn rotate_keys_from(&self, actor: &str, alg: Option<SigningAlg>, meta: &ClientMeta) -> Result<RotatedKey> {
        let now = self.now();
        let stored = self.store.keys().await?;
        let active = stored.iter().find(|k| k.status == KeyStatus::Active);
        let next = stored.iter().find(|k| k.status == KeyStatus::Next);
        let target = alg.or(next.map(|k| k.alg)).or(active.map(|k| k.alg)).unwrap_or(self.settings.signing_alg);

        let mut rotation = KeyRotation { retire: None, promote: None, insert: vec![], delete: vec![], now };
        let rotated = match (active, next) {
            (Some(a), Some(n)) if n.alg == target && a.alg != target && now < switch_time(n) => {
                // An algorithm change in progress: its key is published but not long enough.
                return Ok(RotatedKey::pending(n, Some(switch_time(n))));
            }
            (_, Some(n)) if n.alg == target => {
                rotation.retire = active.map(|k| k.kid.clone());
                rotation.promote = Some(n.kid.clone());
                rotation.insert.push(self.new_key(target, KeyStatus::Next)?);
                RotatedKey::active(KeyInfo { kid: n.kid.to_string(), alg: n.alg, status: KeyStatus::Active, created_at: n.created_at })
            }
            (Some(a), _) if target.is_asymmetric() && a.alg.is_asymmetric() => {
                // Publish the new algorithm's key (or, cancelling a change, the active one's)
                // as next; the active key keeps signing until it has been published long enough.
                rotation.delete.extend(next.map(|n| n.kid.clone()));
                let key = self.new_key(target, KeyStatus::Next)?;
                let when = (a.alg != target).then(|| switch_time(&key));
                let pending = RotatedKey::pending(&key, when);
                rotation.insert.push(key);
                pending
            }
            _ => {
                // No key yet, or HS256 on either side: nothing to publish ahead, switch now.
                if target == SigningAlg::HS256 && active.is_some_and(|a| Some(&a.kid) == self.hs256_kid().as_ref()) {
                    return Err(Error::Conflict(
                        "HS256 signs with TESSERA_HS256_SECRET; change the secret to rotate, or rotate to an asymmetric algorithm",
                    ));
                }
                rotation.retire = active.map(|k| k.kid.clone());
                rotation.delete.extend(next.map(|n| n.kid.clone()));
                let key = self.new_key(target, KeyStatus::Active)?;
                let info = KeyInfo { kid: key.kid.to_string(), alg: key.alg, status: KeyStatus::Active, created_at: now };
                rotation.insert.push(key);
                if target.is_asymmetric() {
                    rotation.insert.push(self.new_key(target, KeyStatus::Next)?);
                }
                RotatedKey::active(info)
            }
        };
        self.store.rotate_keys(&rotation).await.map_err(|e| match e {
            StoreError::Conflict(_) => Error::Conflict("another rotation happened at the same time; retry"),
            other => other.into(),
        })?;
        let key = &rotated.key;
        if key.status == KeyStatus::Active {
            tracing::info!(kid = %key.kid, alg = %key.alg, "signing key rotated");
            self.audit(meta, "key.rotated", Some(actor), Some(&key.kid), Some(key.alg.to_string())).await;
        } else {
            tracing::info!(kid = %key.kid, alg = %key.alg, active_from = ?rotated.active_from, "next signing key published");
            self.audit(meta, "key.rotated", Some(actor), Some(&key.kid), Some(format!("{} published as next", key.alg))).await;
        }
        self.reload_keys().await?;
        Ok(rotated)
    }

    /// Rotates the keys for an admin (see [`Self::rotate_keys`]).
    pub async fn admin_rotate_keys(&self, caller: &Claims, alg: Option<SigningAlg>, meta: &ClientMeta) -> Result<RotatedKey> {
        require_admin(caller)?;
        self.rotate_keys_from(&caller.sub, alg, meta).await
    }

    /// The keys and their states, for an admin.
    pub fn admin_list_keys(&self, caller: &Claims) -> Result<Vec<KeyInfo>> {
        require_admin(caller)?;
        self.list_keys()
    }

    /// When the next rotation is due by the key ring loaded now: the switch of an algorithm
    /// change once its key has been published long enough, else `interval` after the last
    /// rotation (when the current next key was made). `None`: nothing is scheduled.
    pub fn rotation_due(&self, interval: Option<std::time::Duration>) -> Option<OffsetDateTime> {
        let listing = self.list_keys().ok()?;
        let active = listing.iter().find(|k| k.status == KeyStatus::Active)?;
        let next = listing.iter().find(|k| k.status == KeyStatus::Next);
        match next {
            Some(n) if active.alg.is_asymmetric() && n.alg != active.alg => Some(n.created_at + ALGORITHM_CHANGE_DELAY),
            _ if !active.alg.is_asymmetric() => None,
            _ => Some(next.map_or(active.created_at, |n| n.created_at) + interval?),
        }
    }

    /// Rotates when [`Self::rotation_due`] says so (HS256 has nothing to rotate).
    pub async fn rotate_keys_if_due(&self, interval: Option<std::time::Duration>) -> Result<Option<RotatedKey>> {
        if self.rotation_due(interval).is_none_or(|due| due > self.now()) {
            return Ok(None);
        }
        // Another instance may have rotated since the ring was last read: check again on fresh keys.
        self.reload_keys().await?;
        match self.rotation_due(interval) {
            Some(due) if due <= self.now() => match self.rotate_keys("schedule", None).await {
                Ok(rotated) => Ok(Some(rotated)),
                // Another instance rotated at the same moment: its rotation is the one that was due.
                Err(Error::Conflict(_)) => self.reload_keys().await.map(|()| None),
                Err(e) => Err(e),
            },
            _ => Ok(None),
        }
    }

    /// Re-reads the keys from the store (another instance may have rotated) and drops keys
    /// whose tokens have all expired.
    pub async fn reload_keys(&self) -> Result<()> {
        let now = self.now();
        let stored = self.store.keys().await?;
        let horizon = time::Duration::seconds(self.settings.access_ttl + LEEWAY_SECS);
        let (expired, live): (Vec<StoredKey>, Vec<StoredKey>) =
            stored.into_iter().partition(|k| k.status == KeyStatus::Retiring && k.retired_at.is_some_and(|r| r + horizon < now));
        if !expired.is_empty() {
            let kids: Vec<Kid> = expired.into_iter().map(|k| k.kid).collect();
            self.store.delete_keys(&kids).await?;
        }
        self.keys.replace(self.build_key_set(&live)?)
    }

    /// The keys as `/v1/keys` lists them.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        Ok(self.keys.get()?.listing.clone())
    }

    /// The JWKS document (RFC 7517), prebuilt.
    pub fn jwks(&self) -> Result<Arc<serde_json::Value>> {
        Ok(self.keys.get()?.jwks.clone())
    }

    fn hs256_kid(&self) -> Option<Kid> {
        self.settings.hs256_secret.as_ref().map(|s| keys::hs256_kid(s.expose_secret().as_bytes()))
    }

    fn new_key(&self, alg: SigningAlg, status: KeyStatus) -> Result<StoredKey> {
        let now = self.now();
        if alg == SigningAlg::HS256 {
            let kid = self.hs256_kid().ok_or(Error::Conflict("HS256 needs TESSERA_HS256_SECRET (at least 32 bytes)"))?;
            return Ok(StoredKey {
                kid,
                alg,
                status,
                private_key: None,
                encrypted: false,
                public_jwk: None,
                created_at: now,
                retired_at: None,
            });
        }
        let generated = keys::generate(alg).map_err(Error::internal)?;
        let (private_key, encrypted) = match &self.settings.master_key {
            Some(master) => (seal(master, &generated.kid, &generated.private_key)?, true),
            None => (generated.private_key.expose().to_vec(), false),
        };
        let public_jwk = generated.public_jwk.to_string();
        Ok(StoredKey {
            kid: generated.kid,
            alg,
            status,
            private_key: Some(private_key),
            encrypted,
            public_jwk: Some(public_jwk),
            created_at: now,
            retired_at: None,
        })
    }

    fn build_key_set(&self, stored: &[StoredKey]) -> Result<KeySet> {
        let mut signer = None;
        let mut verifiers = tessera_verify::KeySet::default();
        let mut listing = Vec::new();
        let mut published = Vec::new();
        for key in stored {
            let verifier = match key.alg {
                SigningAlg::HS256 => match &self.settings.hs256_secret {
                    // A key made under another secret can no longer be checked: skip it.
                    Some(secret) if Some(&key.kid) == self.hs256_kid().as_ref() => {
                        tessera_verify::VerifyingKey::hs256(secret.expose_secret().as_bytes())
                    }
                    _ => continue,
                },
                alg => {
                    let json = key.public_jwk.as_deref().ok_or_else(|| Error::internal("stored key has no public JWK"))?;
                    let jwk: serde_json::Value = serde_json::from_str(json).map_err(Error::internal)?;
                    let verifier = keys::verifying_key(alg, &jwk).map_err(Error::internal)?;
                    published.push(jwk);
                    verifier
                }
            };
            if key.status == KeyStatus::Active {
                signer = Some(Arc::new(self.signer_for(key)?));
            }
            verifiers.insert(key.kid.as_str(), verifier);
            listing.push(KeyInfo { kid: key.kid.to_string(), alg: key.alg, status: key.status, created_at: key.created_at });
        }
        let signer = signer.ok_or_else(|| Error::internal("no usable active signing key (HS256 active without TESSERA_HS256_SECRET?)"))?;
        Ok(KeySet { signer, verifiers, listing, jwks: Arc::new(serde_json::json!({ "keys": published })) })
    }

    fn signer_for(&self, key: &StoredKey) -> Result<Signer> {
        if key.alg == SigningAlg::HS256 {
            let secret = self.settings.hs256_secret.as_ref().ok_or_else(|| Error::internal("HS256 key without secret"))?;
            return Ok(Signer::hs256(key.kid.clone(), secret.expose_secret().as_bytes()));
        }
        let bytes = key.private_key.as_deref().ok_or_else(|| Error::internal("stored key has no private key"))?;
        let der = if key.encrypted {
            let master = self
                .settings
                .master_key
                .as_ref()
                .ok_or_else(|| Error::internal("signing keys are encrypted but TESSERA_MASTER_KEY is not set"))?;
            PrivateKeyDer::from_bytes(
                master
                    .open(bytes, key.kid.as_str().as_bytes())
                    .map_err(|_| Error::internal("cannot decrypt the signing key: TESSERA_MASTER_KEY is not the key it was sealed with"))?,
            )
        } else {
            PrivateKeyDer::from_bytes(bytes.to_vec())
        };
        Signer::from_pkcs8(key.alg, key.kid.clone(), &der).map_err(Error::internal)
    }
}

fn seal(master: &MasterKey, kid: &Kid, der: &PrivateKeyDer) -> Result<Vec<u8>> {
    // The kid is the associated data: a sealed key copied onto another row does not open.
    master.seal(der.expose(), kid.as_str().as_bytes()).map_err(Error::internal)
}

/// A key insert that lost to another instance is fine: the winner's key is used.
fn ignore_lost_race(result: Result<(), StoreError>) -> Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

impl Tessera {
    /// With a master key set, seals the private keys found stored unsealed (written while no
    /// master key was set), so that none stays readable at rest. Returns how many it sealed.
    pub(crate) async fn seal_unsealed_keys(&self) -> Result<usize> {
        let Some(master) = &self.settings.master_key else { return Ok(0) };
        let mut sealed = 0;
        for key in self.store.keys().await? {
            let Some(plain) = key.private_key.as_deref().filter(|_| !key.encrypted) else { continue };
            let der = PrivateKeyDer::from_bytes(plain.to_vec());
            // Another instance starting beside this one may have sealed it first.
            if self.store.reseal_key(&key.kid, &seal(master, &key.kid, &der)?).await? {
                sealed += 1;
            }
        }
        if sealed > 0 {
            tracing::info!(sealed, "sealed the private signing keys that were stored unencrypted");
        }
        Ok(sealed)
    }
}

// Building a key set and rotating need the whole service (settings, store, clock) and are
// covered by the API tests (`tests/api/keys.rs`); the ring itself and the lost-race rule are
// tested here.
#[cfg(test)]
mod tests {
    use super::*;

    fn set(kid: &str) -> KeySet {
        let secret = [7u8; 32];
        let verifiers = [(kid.to_owned(), tessera_verify::VerifyingKey::hs256(&secret))].into_iter().collect();
        KeySet {
            signer: Arc::new(Signer::hs256(Kid::new(kid), &secret)),
            verifiers,
            listing: Vec::new(),
            jwks: Arc::new(serde_json::json!({ "keys": [] })),
        }
    }

    #[test]
    fn an_empty_ring_says_it_is_not_loaded() {
        let ring = KeyRing::empty();

        assert!(matches!(ring.get(), Err(Error::Internal(e)) if e.to_string() == "key ring not loaded"));
    }

    #[test]
    fn a_replaced_ring_serves_the_new_set_and_readers_keep_the_one_they_hold() {
        let ring = KeyRing::empty();
        ring.replace(set("k1")).unwrap();
        let held = ring.get().unwrap();

        ring.replace(set("k2")).unwrap();

        assert_eq!(ring.get().unwrap().signer.kid().as_str(), "k2");
        assert!(ring.get().unwrap().verifiers.get("k2").is_some());
        assert_eq!(held.signer.kid().as_str(), "k1", "a reader's set is never changed under it");
    }

    #[test]
    fn a_key_insert_that_lost_a_race_is_not_an_error() {
        assert!(ignore_lost_race(Ok(())).unwrap());
        assert!(!ignore_lost_race(Err(StoreError::Conflict(crate::store::Conflict::KeyStatus))).unwrap());
        assert!(matches!(ignore_lost_race(Err(StoreError::other(std::fmt::Error))), Err(Error::Internal(_))));
    }
}
