//! The root of the keys every instance of a deployment must share: the pages' CSRF key, the
//! `login_after` markers of authorization requests, and sealed authorization codes. A form
//! served by one instance is posted to another, and a code issued by one is exchanged at
//! another, so these keys cannot be random per process.
//!
//! The root is `TESSERA_MASTER_KEY` when one is set (which `prod` requires); without one, a
//! random secret the first instance stores in the database (migration 16), which every
//! instance on that database then reads. Each key is derived from the root with HKDF under
//! its own purpose, so no two uses share a key.

use super::error::{Error, Result};
use crate::domain::keys::MasterKey;
use crate::store::DynStore;
use aws_lc_rs::{hkdf, rand};
use std::sync::Arc;
use time::OffsetDateTime;

/// The HKDF salt of keys derived from the database's shared secret.
const DATABASE_SALT: &[u8] = b"tessera shared secret derivation v1";

/// Where the shared keys come from.
pub(crate) enum SharedRoot {
    /// `TESSERA_MASTER_KEY`.
    Master(Arc<MasterKey>),
    /// The database's shared secret (HKDF-Extract of it).
    Database(hkdf::Prk),
}

impl std::fmt::Debug for SharedRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SharedRoot::Master(_) => "SharedRoot::Master([redacted])",
            SharedRoot::Database(_) => "SharedRoot::Database([redacted])",
        })
    }
}

impl SharedRoot {
    /// The master key, or the database's shared secret (made now if no instance made it yet).
    pub(crate) async fn load(master_key: Option<&Arc<MasterKey>>, store: &DynStore, now: OffsetDateTime) -> Result<SharedRoot> {
        if let Some(master) = master_key {
            return Ok(SharedRoot::Master(master.clone()));
        }
        let mut candidate = [0u8; 32];
        rand::fill(&mut candidate).map_err(|_| Error::internal("no random bytes for the shared secret"))?;
        let secret = store.shared_secret(&candidate, now).await?;
        if secret.len() != 32 {
            return Err(Error::internal("the database's shared secret is not 32 bytes"));
        }
        Ok(SharedRoot::Database(hkdf::Salt::new(hkdf::HKDF_SHA256, DATABASE_SALT).extract(&secret)))
    }

    /// A 32-byte key for `purpose`: the same on every instance with this root.
    pub(crate) fn derive(&self, purpose: &str) -> Result<[u8; 32]> {
        match self {
            SharedRoot::Master(master) => master.derive(purpose).map_err(Error::internal),
            SharedRoot::Database(prk) => {
                let mut out = [0u8; 32];
                let info = [purpose.as_bytes()];
                prk.expand(&info, hkdf::HKDF_SHA256)
                    .and_then(|okm| okm.fill(&mut out))
                    .map_err(|_| Error::internal("cannot derive a shared key"))?;
                Ok(out)
            }
        }
    }
}
