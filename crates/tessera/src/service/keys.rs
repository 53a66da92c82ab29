//! The key ring: which key signs, which keys verify, what the JWKS publishes.
//!
//! Keys live in the store so every instance shares them. An asymmetric ring always holds a
//! `next` key, published ahead of its use so verifiers' caches already know it when it
//! becomes active; a rotation promotes it, makes a new next key, and marks the old active
//! key `retiring`, still published until every token it signed has expired. HS256 signs with
//! the configured shared secret and publishes nothing.

use super::error::{Error, Result};
use super::{LEEWAY_SECS, Tessera};
use crate::domain::keys::{self, KeyStatus, Kid, MasterKey, PrivateKeyDer, Signer, SigningAlg, VerifyingKey};
use crate::store::{Conflict, KeyRotation, StoreError, StoredKey};
use secrecy::ExposeSecret;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

/// Setting that remembers the algorithm the configuration asked for last time, so a changed
/// configuration rotates to the new algorithm while `tessera keys rotate --alg` still holds
/// across restarts when the configuration did not change.
const CONFIGURED_ALG: &str = "configured_signing_alg";

/// A key as `/v1/keys` lists it.
#[derive(Debug, Clone, Serialize)]
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

/// One consistent view of the keys; replaced whole on every change.
#[derive(Debug)]
pub(crate) struct KeySet {
    pub(crate) signer: Arc<Signer>,
    pub(crate) verifiers: HashMap<Kid, VerifyingKey>,
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
    /// for asymmetric algorithms), then loads the ring.
    pub(crate) async fn ensure_keys(&self) -> Result<()> {
        let configured = self.settings.signing_alg;
        let config_changed = self.store.setting(CONFIGURED_ALG).await?.as_deref() != Some(configured.as_str());
        let stored = self.store.keys().await?;
        let active = stored.iter().find(|k| k.status == KeyStatus::Active);
        match active {
            None => self.create_first_keys(configured).await?,
            Some(a) if config_changed && a.alg != configured => {
                self.rotate_keys(Some(configured)).await?;
            }
            Some(a) if a.alg == SigningAlg::HS256 && Some(&a.kid) != self.hs256_kid().as_ref() => {
                // The shared secret changed: sign under its new kid from now on.
                self.rotate_keys(Some(SigningAlg::HS256)).await?;
            }
            Some(a) if a.alg.is_asymmetric() && !stored.iter().any(|k| k.status == KeyStatus::Next) => {
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

    /// Makes the next key active (or a new key of `alg`, when the algorithm changes), makes a
    /// new next key, and retires the active one. Returns the new active key.
    pub async fn rotate_keys(&self, alg: Option<SigningAlg>) -> Result<KeyInfo> {
        let now = self.now();
        let stored = self.store.keys().await?;
        let active = stored.iter().find(|k| k.status == KeyStatus::Active);
        let next = stored.iter().find(|k| k.status == KeyStatus::Next);
        let target = alg.or(active.map(|k| k.alg)).unwrap_or(self.settings.signing_alg);

        let mut rotation = KeyRotation { retire: active.map(|k| k.kid.clone()), promote: None, insert: vec![], delete: vec![], now };
        let new_active = match next {
            Some(n) if n.alg == target => {
                rotation.promote = Some(n.kid.clone());
                KeyInfo { kid: n.kid.to_string(), alg: n.alg, status: KeyStatus::Active, created_at: n.created_at }
            }
            _ => {
                if target == SigningAlg::HS256 && active.is_some_and(|a| Some(&a.kid) == self.hs256_kid().as_ref()) {
                    return Err(Error::Conflict(
                        "HS256 signs with TESSERA_HS256_SECRET; change the secret to rotate, or rotate to an asymmetric algorithm",
                    ));
                }
                rotation.delete.extend(next.map(|n| n.kid.clone()));
                let key = self.new_key(target, KeyStatus::Active)?;
                let info = KeyInfo { kid: key.kid.to_string(), alg: key.alg, status: KeyStatus::Active, created_at: now };
                rotation.insert.push(key);
                info
            }
        };
        if target.is_asymmetric() {
            rotation.insert.push(self.new_key(target, KeyStatus::Next)?);
        }
        self.store.rotate_keys(&rotation).await.map_err(|e| match e {
            StoreError::Conflict(Conflict::KeyStatus) => Error::Conflict("another rotation happened at the same time; retry"),
            other => other.into(),
        })?;
        tracing::info!(kid = %new_active.kid, alg = %new_active.alg, "signing key rotated");
        self.audit("key.rotated", None, Some(&new_active.kid), Some(new_active.alg.to_string())).await;
        self.reload_keys().await?;
        Ok(new_active)
    }

    /// Rotates when `interval` has passed since the last rotation (when the current next key
    /// was made). HS256 has nothing to rotate.
    pub async fn rotate_keys_if_due(&self, interval: std::time::Duration) -> Result<Option<KeyInfo>> {
        let listing = self.list_keys()?;
        let Some(active) = listing.iter().find(|k| k.status == KeyStatus::Active) else { return Ok(None) };
        if !active.alg.is_asymmetric() {
            return Ok(None);
        }
        let last = listing.iter().filter(|k| k.status == KeyStatus::Next).map(|k| k.created_at).max();
        if self.now() - last.unwrap_or(active.created_at) < interval {
            return Ok(None);
        }
        self.rotate_keys(None).await.map(Some)
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
        let mut verifiers = HashMap::new();
        let mut listing = Vec::new();
        let mut published = Vec::new();
        for key in stored {
            let verifier = match key.alg {
                SigningAlg::HS256 => match &self.settings.hs256_secret {
                    // A key made under another secret can no longer be checked: skip it.
                    Some(secret) if Some(&key.kid) == self.hs256_kid().as_ref() => {
                        VerifyingKey::hs256(key.kid.clone(), secret.expose_secret().as_bytes())
                    }
                    _ => continue,
                },
                alg => {
                    let json = key.public_jwk.as_deref().ok_or_else(|| Error::internal("stored key has no public JWK"))?;
                    let jwk: serde_json::Value = serde_json::from_str(json).map_err(Error::internal)?;
                    let verifier = VerifyingKey::from_jwk(alg, key.kid.clone(), &jwk).map_err(Error::internal)?;
                    published.push(jwk);
                    verifier
                }
            };
            if key.status == KeyStatus::Active {
                signer = Some(Arc::new(self.signer_for(key)?));
            }
            verifiers.insert(key.kid.clone(), verifier);
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
