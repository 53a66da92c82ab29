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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Audiences, Client, ClientId, ClientName, PlainToken, Roles, Scopes, TokenKind};
    use std::time::Instant;

    const NOW: i64 = 1_800_000_000;
    const LEEWAY: i64 = 5;

    fn claims(jti: &str, exp: i64) -> Arc<Claims> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "iss": "https://tessera.test", "sub": "u1", "aud": "api", "exp": exp, "iat": exp - 900, "nbf": exp - 900,
                "jti": jti, "client_id": "tessera",
            }))
            .unwrap(),
        )
    }

    /// `n` distinct tokens that land in the same shard.
    fn same_shard(n: usize) -> Vec<String> {
        let shard = |t: &str| usize::from(VerifiedTokens::key(t)[0]) % SHARDS;
        let first = shard("token-0");
        (0..).map(|i| format!("token-{i}")).filter(|t| shard(t) == first).take(n).collect()
    }

    #[test]
    fn a_verified_token_is_found_again_and_an_unknown_one_is_not() {
        let cache = VerifiedTokens::new(1_000);
        cache.insert("a.b.c", claims("j1", NOW + 60), NOW, LEEWAY);

        assert_eq!(cache.get("a.b.c", NOW, LEEWAY).map(|c| c.jti.clone()).as_deref(), Some("j1"));
        assert!(cache.get("a.b.d", NOW, LEEWAY).is_none());
    }

    #[test]
    fn a_cached_token_is_served_until_exp_plus_leeway_and_not_at_it() {
        let cache = VerifiedTokens::new(1_000);
        cache.insert("a.b.c", claims("j1", NOW), NOW - 10, LEEWAY);

        assert!(cache.get("a.b.c", NOW + LEEWAY - 1, LEEWAY).is_some());
        assert!(cache.get("a.b.c", NOW + LEEWAY, LEEWAY).is_none());
    }

    #[test]
    fn a_full_shard_drops_expired_tokens_first() {
        let cache = VerifiedTokens::new(2 * SHARDS);
        let tokens = same_shard(3);
        cache.insert(&tokens[0], claims("expiring", NOW), NOW - 10, LEEWAY);
        cache.insert(&tokens[1], claims("live", NOW + 600), NOW - 10, LEEWAY);

        cache.insert(&tokens[2], claims("new", NOW + 600), NOW + LEEWAY, LEEWAY);

        assert!(cache.get(&tokens[1], NOW + LEEWAY, LEEWAY).is_some(), "a live token is kept");
        assert!(cache.get(&tokens[2], NOW + LEEWAY, LEEWAY).is_some());
        assert_eq!(cache.shard(&VerifiedTokens::key(&tokens[0])).read().unwrap().len(), 2, "the expired one was dropped");
    }

    #[test]
    fn a_shard_full_of_live_tokens_is_emptied_before_the_next_insert() {
        let cache = VerifiedTokens::new(2 * SHARDS);
        let tokens = same_shard(3);
        cache.insert(&tokens[0], claims("j0", NOW + 600), NOW, LEEWAY);
        cache.insert(&tokens[1], claims("j1", NOW + 600), NOW, LEEWAY);

        cache.insert(&tokens[2], claims("j2", NOW + 600), NOW, LEEWAY);

        assert!(cache.get(&tokens[0], NOW, LEEWAY).is_none());
        assert!(cache.get(&tokens[1], NOW, LEEWAY).is_none());
        assert!(cache.get(&tokens[2], NOW, LEEWAY).is_some());
    }

    #[test]
    fn a_full_shard_leaves_the_other_shards_alone() {
        let cache = VerifiedTokens::new(SHARDS);
        let tokens = same_shard(2);
        let elsewhere = (0..)
            .map(|i| format!("other-{i}"))
            .find(|t| usize::from(VerifiedTokens::key(t)[0]) % SHARDS != usize::from(VerifiedTokens::key(&tokens[0])[0]) % SHARDS)
            .unwrap();
        cache.insert(&elsewhere, claims("other", NOW + 600), NOW, LEEWAY);
        cache.insert(&tokens[0], claims("j0", NOW + 600), NOW, LEEWAY);

        cache.insert(&tokens[1], claims("j1", NOW + 600), NOW, LEEWAY);

        assert!(cache.get(&elsewhere, NOW, LEEWAY).is_some());
        assert!(cache.get(&tokens[0], NOW, LEEWAY).is_none());
    }

    fn client() -> Client {
        Client {
            id: ClientId::generate().unwrap(),
            name: ClientName::parse("billing").unwrap(),
            secret_hash: Some(PlainToken::generate(TokenKind::ClientSecret).unwrap().hash()),
            scopes: Scopes::default(),
            roles: Roles::default(),
            audiences: Audiences::default(),
            redirect_uris: Default::default(),
            post_logout_redirect_uris: Default::default(),
            public: false,
            first_party: false,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn read_ago(clients: &RecentClients, client: &Client, ago: std::time::Duration) {
        let at = Instant::now().checked_sub(ago).unwrap();
        clients.entries.write().unwrap().insert(client.id.to_string(), (client.clone(), at));
    }

    #[test]
    fn a_client_read_just_now_is_served_from_memory() {
        let clients = RecentClients::default();
        let billing = client();
        clients.put(&billing);

        let found = clients.get(billing.id.as_str()).unwrap();

        assert_eq!(found.id, billing.id);
        assert_eq!(found.secret_hash, billing.secret_hash);
        assert!(clients.get("svc_unknown").is_none());
    }

    #[test]
    fn a_client_read_a_ttl_ago_is_no_longer_served() {
        let clients = RecentClients::default();
        let (fresh, stale) = (client(), client());
        read_ago(&clients, &fresh, CLIENT_TTL - std::time::Duration::from_millis(200));
        read_ago(&clients, &stale, CLIENT_TTL);

        assert!(clients.get(fresh.id.as_str()).is_some());
        assert!(clients.get(stale.id.as_str()).is_none());
    }

    #[test]
    fn an_evicted_client_is_read_again() {
        let clients = RecentClients::default();
        let billing = client();
        clients.put(&billing);

        clients.evict(billing.id.as_str());

        assert!(clients.get(billing.id.as_str()).is_none());
    }

    #[test]
    fn a_full_client_cache_drops_what_is_past_its_ttl() {
        let clients = RecentClients::default();
        let stale = client();
        read_ago(&clients, &stale, CLIENT_TTL);
        for _ in 0..9_999 {
            clients.put(&client());
        }
        assert_eq!(clients.entries.read().unwrap().len(), 10_000);

        clients.put(&client());

        let entries = clients.entries.read().unwrap();
        assert_eq!(entries.len(), 10_000, "the stale entry made room");
        assert!(!entries.contains_key(stale.id.as_str()));
    }
}
