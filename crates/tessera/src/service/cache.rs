//! Caches that keep the hot paths free of repeated work.
//!
//! [`VerifiedTokens`] remembers tokens whose signature and claims were already checked, keyed
//! by a SHA-256 of the token, so verifying a token again costs a hash and a map look-up
//! instead of a signature verification. Expiry is checked on every hit and revocation is
//! checked by the caller on every request, so a revoked token is refused at once even when
//! cached. Memory is bounded by a fixed number of entries per shard.

use aws_lc_rs::digest;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tessera_verify::Claims;

const SHARDS: usize = 16;

/// Tokens already verified, by SHA-256.
#[derive(Debug)]
pub struct VerifiedTokens {
    shards: Vec<RwLock<HashMap<[u8; 32], Arc<Claims>>>>,
    per_shard: usize,
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        VerifiedTokens { shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(), per_shard: (capacity / SHARDS).max(1) }
    }

    fn key(token: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        key
    }

    fn shard(&self, key: &[u8; 32]) -> &RwLock<HashMap<[u8; 32], Arc<Claims>>> {
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// The claims of a token verified before, unless it has expired since (`exp + leeway`).
    pub fn get(&self, token: &str, now_secs: i64, leeway: i64) -> Option<Arc<Claims>> {
        let key = Self::key(token);
        let shard = self.shard(&key).read().ok()?;
        shard.get(&key).filter(|c| c.exp + leeway > now_secs).cloned()
    }

    /// Remembers a verified token. A full shard first drops what has expired, then, if it
    /// is still full, everything: verifying again is cheap, unbounded memory is not.
    pub fn insert(&self, token: &str, claims: Arc<Claims>, now_secs: i64, leeway: i64) {
        let key = Self::key(token);
        let Ok(mut shard) = self.shard(&key).write() else { return };
        if shard.len() >= self.per_shard {
            shard.retain(|_, c| c.exp + leeway > now_secs);
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(key, claims);
    }
}

/// Service clients recently read from the store, for at most [`CLIENT_TTL`]: the token
/// endpoint then costs no database read per request. A secret rotation or deletion on this
/// instance evicts at once; other instances see it within the TTL.
#[derive(Debug, Default)]
pub struct RecentClients {
    entries: RwLock<HashMap<String, (crate::domain::Client, std::time::Instant)>>,
}

/// How long a cached client is trusted.
pub const CLIENT_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl RecentClients {
    /// A client read less than [`CLIENT_TTL`] ago.
    pub fn get(&self, id: &str) -> Option<crate::domain::Client> {
        let entries = self.entries.read().ok()?;
        entries.get(id).filter(|(_, at)| at.elapsed() < CLIENT_TTL).map(|(c, _)| c.clone())
    }

    /// Remembers a client just read.
    pub fn put(&self, client: &crate::domain::Client) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= 10_000 {
                entries.retain(|_, (_, at)| at.elapsed() < CLIENT_TTL);
            }
            entries.insert(client.id.to_string(), (client.clone(), std::time::Instant::now()));
        }
    }

    /// Forgets a client (its secret changed or it was deleted).
    pub fn evict(&self, id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(id);
        }
    }
}
