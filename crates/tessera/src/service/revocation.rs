//! Revocation: the store keeps an append-only feed; every instance follows it into an
//! in-memory [`RevocationList`] (tessera-verify's [`RevocationSet`] and a cursor), so checking
//! a token never costs a database round trip.
//! An instance applies its own revocations at once and picks up other instances' on its
//! next poll (see `jobs.rs`), well inside the two seconds the contract allows.

use super::accounts::require_admin;
use super::error::{Error, Result, TokenError};
use super::{LEEWAY_SECS, Tessera};
use crate::store::Revocation;
use std::sync::RwLock;
use std::time::Duration;
use tessera_verify::{Claims, RevocationSet};

/// What is revoked right now: tessera-verify's [`RevocationSet`] (the same check services run
/// on the feed), and how far the feed has been read. Entries are dropped once everything they
/// could refuse has expired, clock leeway included (a token is accepted until `exp` +
/// [`LEEWAY_SECS`], so its revocation lasts as long).
#[derive(Debug)]
pub struct RevocationList {
    inner: RwLock<Revoked>,
    /// Serialises syncs so the cursor only moves forward.
    sync: tokio::sync::Mutex<()>,
    /// The newest feed position applied; long-polling readers of the feed wait on it.
    applied: tokio::sync::watch::Sender<i64>,
}

impl Default for RevocationList {
    fn default() -> Self {
        // The feed gives every entry the `exp` of the last token it can refuse, so no minimum
        // retention is added to subject cut-offs.
        let set = RevocationSet::new(Duration::ZERO, Duration::from_secs(LEEWAY_SECS.unsigned_abs()));
        RevocationList {
            inner: RwLock::new(Revoked { cursor: 0, set }),
            sync: tokio::sync::Mutex::new(()),
            applied: tokio::sync::watch::channel(0).0,
        }
    }
}

#[derive(Debug)]
struct Revoked {
    cursor: i64,
    set: RevocationSet,
}

impl RevocationList {
    /// Whether the token, its session, or its subject (for tokens issued before the cut-off) is revoked.
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        let Ok(r) = self.inner.read() else { return true };
        r.set.is_revoked(claims)
    }

    /// The newest cut-off of a subject: its tokens issued before this second are revoked.
    pub fn subject_not_before(&self, sub: &str) -> Option<i64> {
        self.inner.read().ok()?.set.subject_not_before(sub)
    }

    /// The feed position applied so far.
    pub fn cursor(&self) -> i64 {
        self.inner.read().map(|r| r.cursor).unwrap_or(0)
    }

    fn apply(&self, entries: &[(i64, Revocation)], now_secs: i64) {
        if let Some((last, _)) = entries.last() {
            self.applied.send_if_modified(|seen| {
                let newer = *last > *seen;
                if newer {
                    *seen = *last;
                }
                newer
            });
        }
        let Ok(mut r) = self.inner.write() else { return };
        for (seq, entry) in entries {
            r.cursor = r.cursor.max(*seq);
            match entry {
                Revocation::Token { jti, exp } => r.set.revoke_token(jti, *exp),
                Revocation::Session { sid, exp } => r.set.revoke_session(sid, *exp),
                Revocation::Subject { sub, not_before, exp } => r.set.revoke_subject(sub, *not_before, Some(*exp)),
            }
        }
        r.set.prune(now_secs);
    }
}

/// A page of the revocation feed, as `GET /v1/revocations` serves it.
#[derive(Debug, Clone, Default)]
pub struct FeedPage {
    /// Position to pass as `since` next time.
    pub cursor: i64,
    /// The entries, oldest first.
    pub entries: Vec<Revocation>,
}

/// The longest a reader of the feed may wait for news, seconds.
pub const MAX_FEED_WAIT: u64 = 30;

/// Who asks to read the revocation feed.
#[derive(Debug, Clone, Copy)]
pub enum FeedReader<'a> {
    /// A bearer access token; it must be an admin's.
    Bearer(&'a str),
    /// A service client, by id and secret (HTTP Basic).
    Client {
        /// The client id.
        id: &'a str,
        /// The client secret.
        secret: &'a str,
    },
    /// No usable credentials.
    Anonymous,
}

impl Tessera {
    /// Any authenticated client, or an admin, may read the feed.
    async fn authorize_feed_reader(&self, reader: FeedReader<'_>) -> Result<()> {
        match reader {
            FeedReader::Bearer(token) => require_admin(self.authenticate(token).map_err(Error::Bearer)?.as_ref()),
            FeedReader::Client { id, secret } => match self.authenticate_client(id, secret).await? {
                Ok(_) => Ok(()),
                Err(_) => Err(Error::InvalidClient),
            },
            FeedReader::Anonymous => Err(Error::Bearer(TokenError::Missing)),
        }
    }

    /// Pulls new feed entries into the in-memory list.
    pub async fn sync_revocations(&self) -> Result<()> {
        let _one_at_a_time = self.revocations.sync.lock().await;
        loop {
            let now = self.now();
            let batch = self.store.revocations_after(self.revocations.cursor(), now, 1000).await?;
            let done = batch.len() < 1000;
            self.revocations.apply(&batch, now.unix_timestamp());
            if done {
                return Ok(());
            }
        }
    }

    /// Records revocations in the feed and applies them here at once.
    pub(crate) async fn revoke(&self, entries: &[Revocation]) -> Result<()> {
        if !entries.is_empty() {
            self.store.append_revocations(entries, self.now()).await?;
        }
        self.sync_revocations().await
    }

    /// The feed for `reader` (any authenticated client, or an admin): entries after the cursor
    /// `since` (all live ones when `None`); when there are none yet, waits up to `wait` whole
    /// seconds (at most [`MAX_FEED_WAIT`]) for the next one to arrive on this instance. The
    /// reader is checked before the parameters.
    pub async fn revocation_feed(&self, reader: FeedReader<'_>, since: Option<&str>, wait: Option<&str>) -> Result<FeedPage> {
        self.authorize_feed_reader(reader).await?;
        let since = since.map(|s| s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or(Error::InvalidCursor)).transpose()?;
        let wait = match wait {
            None | Some("") => 0,
            Some(w) => w.parse::<u64>().map_err(|_| Error::Validation("wait must be whole seconds (0 to 30)".into()))?.min(MAX_FEED_WAIT),
        };
        self.wait_for_feed(since, std::time::Duration::from_secs(wait)).await
    }

    async fn wait_for_feed(&self, since: Option<i64>, wait: std::time::Duration) -> Result<FeedPage> {
        let mut applied = self.revocations.applied.subscribe();
        let page = self.feed_page(since).await?;
        if !page.entries.is_empty() || wait.is_zero() {
            return Ok(page);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let woke = tokio::time::timeout_at(deadline, applied.changed()).await;
            let page = self.feed_page(Some(page.cursor)).await?;
            if !page.entries.is_empty() || !matches!(woke, Ok(Ok(()))) {
                return Ok(page);
            }
        }
    }

    async fn feed_page(&self, since: Option<i64>) -> Result<FeedPage> {
        let now = self.now();
        let rows = self.store.revocations_after(since.unwrap_or(0), now, 10_000).await?;
        let cursor = match rows.last() {
            Some((seq, _)) => *seq,
            None => since.unwrap_or(self.store.revocation_head().await?),
        };
        Ok(FeedPage { cursor, entries: rows.into_iter().map(|(_, e)| e).collect() })
    }

    /// When a session's access tokens have all expired: the feed keeps its entry until then.
    pub(crate) fn session_feed_exp(&self) -> i64 {
        self.now().unix_timestamp() + self.settings.access_ttl + super::LEEWAY_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims(jti: &str, sub: &str, sid: Option<&str>, iat: i64) -> Claims {
        serde_json::from_value(serde_json::json!({
            "iss": "https://tessera.test", "sub": sub, "aud": "api", "exp": iat + 900, "iat": iat, "nbf": iat,
            "jti": jti, "client_id": "tessera", "sid": sid,
        }))
        .unwrap()
    }

    fn list(entries: &[Revocation], now: i64) -> RevocationList {
        let list = RevocationList::default();
        let numbered: Vec<(i64, Revocation)> = entries.iter().cloned().zip(1..).map(|(e, seq)| (seq, e)).collect();
        list.apply(&numbered, now);
        list
    }

    #[test]
    fn a_revoked_jti_is_refused_and_other_tokens_are_not() {
        let list = list(&[Revocation::Token { jti: "j1".into(), exp: NOW + 60 }], NOW);

        assert!(list.is_revoked(&claims("j1", "u1", None, NOW)));
        assert!(!list.is_revoked(&claims("j2", "u1", None, NOW)));
        assert_eq!(list.cursor(), 1);
    }

    #[test]
    fn a_revoked_session_refuses_every_token_carrying_its_sid() {
        let list = list(&[Revocation::Session { sid: "s1".into(), exp: NOW + 60 }], NOW);

        assert!(list.is_revoked(&claims("j1", "u1", Some("s1"), NOW)));
        assert!(list.is_revoked(&claims("j2", "u2", Some("s1"), NOW)));
        assert!(!list.is_revoked(&claims("j3", "u1", Some("s2"), NOW)));
        assert!(!list.is_revoked(&claims("j4", "u1", None, NOW)));
    }

    #[test]
    fn a_subject_cut_off_refuses_tokens_issued_before_its_second_and_not_at_it() {
        let list = list(&[Revocation::Subject { sub: "u1".into(), not_before: NOW, exp: NOW + 60 }], NOW);

        assert!(list.is_revoked(&claims("j1", "u1", None, NOW - 1)));
        assert!(!list.is_revoked(&claims("j2", "u1", None, NOW)), "issued at the cut-off second");
        assert!(!list.is_revoked(&claims("j3", "u1", None, NOW + 1)));
        assert!(!list.is_revoked(&claims("j4", "u2", None, NOW - 1)), "another subject");
        assert_eq!(list.subject_not_before("u1"), Some(NOW));
        assert_eq!(list.subject_not_before("u2"), None);
    }

    #[test]
    fn a_subject_cut_off_only_moves_forward() {
        let list = list(
            &[
                Revocation::Subject { sub: "u1".into(), not_before: NOW, exp: NOW + 60 },
                Revocation::Subject { sub: "u1".into(), not_before: NOW - 30, exp: NOW + 10 },
            ],
            NOW,
        );

        assert_eq!(list.subject_not_before("u1"), Some(NOW));
        assert!(list.is_revoked(&claims("j1", "u1", None, NOW - 10)));
    }

    #[test]
    fn entries_are_kept_through_the_leeway_and_dropped_after_it() {
        let entries = [
            Revocation::Token { jti: "j1".into(), exp: NOW },
            Revocation::Session { sid: "s1".into(), exp: NOW },
            Revocation::Subject { sub: "u1".into(), not_before: NOW - 100, exp: NOW },
        ];
        let revoked = |list: &RevocationList| {
            [
                list.is_revoked(&claims("j1", "x", None, NOW - 200)),
                list.is_revoked(&claims("x", "y", Some("s1"), NOW - 200)),
                list.is_revoked(&claims("x", "u1", None, NOW - 200)),
            ]
        };

        assert_eq!(revoked(&list(&entries, NOW + LEEWAY_SECS - 1)), [true; 3], "kept through the leeway");
        assert_eq!(revoked(&list(&entries, NOW + LEEWAY_SECS)), [false; 3], "dropped once a token of that exp is refused as expired");
    }

    #[test]
    fn a_later_apply_drops_what_expired_meanwhile() {
        let list = list(&[Revocation::Token { jti: "j1".into(), exp: NOW }], NOW);
        assert!(list.is_revoked(&claims("j1", "u1", None, NOW - 100)));

        list.apply(&[(2, Revocation::Token { jti: "j2".into(), exp: NOW + 600 })], NOW + LEEWAY_SECS);

        assert!(!list.is_revoked(&claims("j1", "u1", None, NOW - 100)));
        assert!(list.is_revoked(&claims("j2", "u1", None, NOW - 100)));
        assert_eq!(list.cursor(), 2);
    }
}
