//! The revocations a verifier knows of, fed from Tessera's revocation feed
//! (`GET /v1/revocations`), with no I/O: the follower in `client` fills it, `verify` asks it.
//!
//! Entries are dropped once nothing they could refuse is still alive, so memory is bounded by
//! what was revoked within one access-token lifetime.

use crate::Claims;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// One page of the revocation feed, as `GET /v1/revocations` answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedPage {
    /// Opaque position in the feed; pass it back as `since` to get what came after.
    pub cursor: String,
    /// Single revoked tokens.
    #[serde(default)]
    pub tokens: Vec<RevokedToken>,
    /// Ended sessions: every token carrying the `sid` is revoked.
    #[serde(default)]
    pub sessions: Vec<RevokedSession>,
    /// Subject cut-offs: every token of `sub` issued before `not_before` is revoked.
    #[serde(default)]
    pub subjects: Vec<RevokedSubject>,
}

/// A revoked token (`jti`), listed until its `exp` (and a clock leeway) has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedToken {
    /// The token's `jti`.
    pub jti: String,
    /// The token's `exp`.
    pub exp: i64,
}

/// An ended session (`sid`), listed until its last access token expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedSession {
    /// The session id.
    pub sid: String,
    /// When the last token of the session expires.
    pub exp: i64,
}

/// A subject cut-off: tokens of `sub` with `iat < not_before` are revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedSubject {
    /// The subject (user id or client id).
    pub sub: String,
    /// NumericDate of the cut-off.
    pub not_before: i64,
    /// When the last token the cut-off can refuse expires (Tessera sends it; older servers
    /// did not, and then the verifier's `max_token_lifetime` decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub exp: Option<i64>,
}

/// How long subject entries are kept when the feed does not say: longer than any access token.
pub const DEFAULT_MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The known revocations.
#[derive(Debug, Clone)]
pub struct RevocationSet {
    /// `jti` → keep until (its `exp` + leeway).
    tokens: HashMap<String, i64>,
    /// `sid` → keep until.
    sessions: HashMap<String, i64>,
    /// `sub` → (the latest `not_before`, keep until).
    subjects: HashMap<String, (i64, i64)>,
    /// Seconds a subject cut-off stays relevant: the longest token life plus leeway.
    subject_retention: i64,
    leeway: i64,
}

impl RevocationSet {
    /// An empty set that keeps subject cut-offs until the `exp` the feed gives them, and at
    /// least `max_token_lifetime` after the cut-off (a cut-off can only refuse tokens issued
    /// before it, all expired one token lifetime later), plus `leeway`.
    pub fn new(max_token_lifetime: Duration, leeway: Duration) -> Self {
        let to_secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        RevocationSet {
            tokens: HashMap::new(),
            sessions: HashMap::new(),
            subjects: HashMap::new(),
            subject_retention: to_secs(max_token_lifetime),
            leeway: to_secs(leeway),
        }
    }

    /// Adds one page of the feed.
    pub fn apply(&mut self, page: &FeedPage) {
        for t in &page.tokens {
            self.revoke_token(&t.jti, t.exp);
        }
        for s in &page.sessions {
            self.revoke_session(&s.sid, s.exp);
        }
        for s in &page.subjects {
            self.revoke_subject(&s.sub, s.not_before, s.exp);
        }
    }

    /// Revokes the token `jti`, which expires at `exp`.
    pub fn revoke_token(&mut self, jti: &str, exp: i64) {
        let until = exp.saturating_add(self.leeway);
        keep_latest(self.tokens.entry(jti.to_owned()).or_insert(until), until);
    }

    /// Ends the session `sid`, whose last token expires at `exp`.
    pub fn revoke_session(&mut self, sid: &str, exp: i64) {
        let until = exp.saturating_add(self.leeway);
        keep_latest(self.sessions.entry(sid.to_owned()).or_insert(until), until);
    }

    /// Revokes every token of `sub` issued before `not_before`; `exp`, when given, is when the
    /// last of them expires.
    pub fn revoke_subject(&mut self, sub: &str, not_before: i64, exp: Option<i64>) {
        // A server's access-token TTL may be longer than our `max_token_lifetime`: then its
        // `exp` keeps the cut-off, or disabled people's tokens would verify again.
        let until = exp.unwrap_or(i64::MIN).max(not_before.saturating_add(self.subject_retention)).saturating_add(self.leeway);
        // Only the latest cut-off matters: it refuses everything an earlier one did.
        let slot = self.subjects.entry(sub.to_owned()).or_insert((not_before, until));
        *slot = (slot.0.max(not_before), slot.1.max(until));
    }

    /// The latest cut-off of `sub`: its tokens issued before this second are revoked.
    pub fn subject_not_before(&self, sub: &str) -> Option<i64> {
        self.subjects.get(sub).map(|(not_before, _)| *not_before)
    }

    /// Whether `claims` name a revoked token, session or subject cut-off.
    pub fn is_revoked(&self, claims: &Claims) -> bool {
        self.tokens.contains_key(&claims.jti)
            || claims.sid.as_ref().is_some_and(|sid| self.sessions.contains_key(sid))
            || self.subjects.get(&claims.sub).is_some_and(|(not_before, _)| claims.iat < *not_before)
    }

    /// Drops every entry that can no longer refuse a live token.
    pub fn prune(&mut self, now: i64) {
        self.tokens.retain(|_, until| *until > now);
        self.sessions.retain(|_, until| *until > now);
        self.subjects.retain(|_, (_, until)| *until > now);
    }

    /// How many entries are held (tokens + sessions + subjects).
    pub fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.subjects.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn keep_latest(slot: &mut i64, until: i64) {
    *slot = (*slot).max(until);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Audience;

    fn claims(jti: &str, sub: &str, sid: Option<&str>, iat: i64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: sub.into(),
            aud: Audience::One("i".into()),
            exp: iat + 900,
            iat,
            nbf: iat,
            jti: jti.into(),
            scope: String::new(),
            client_id: "tessera".into(),
            roles: vec![],
            sid: sid.map(Into::into),
            fresh: None,
            amr: None,
        }
    }

    fn page(json: serde_json::Value) -> FeedPage {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_listed_jti_or_sid_is_revoked() {
        let mut set = RevocationSet::new(DEFAULT_MAX_TOKEN_LIFETIME, Duration::from_secs(5));
        set.apply(&page(serde_json::json!({"cursor": "1", "tokens": [{"jti": "j1", "exp": 2000}],
            "sessions": [{"sid": "s1", "exp": 2000}], "subjects": []})));
        assert!(set.is_revoked(&claims("j1", "u", None, 1000)));
        assert!(set.is_revoked(&claims("j2", "u", Some("s1"), 1000)));
        assert!(!set.is_revoked(&claims("j3", "u", Some("s2"), 1000)));
    }

    #[test]
    fn a_subject_cut_off_is_exact_at_the_second() {
        let mut set = RevocationSet::new(DEFAULT_MAX_TOKEN_LIFETIME, Duration::from_secs(5));
        set.apply(&page(serde_json::json!({"cursor": "1", "subjects": [{"sub": "u", "not_before": 1000}]})));
        assert!(set.is_revoked(&claims("a", "u", None, 999)));
        assert!(!set.is_revoked(&claims("b", "u", None, 1000)));
        assert!(!set.is_revoked(&claims("c", "other", None, 999)));
    }

    #[test]
    fn entries_are_dropped_once_nothing_they_refuse_is_alive() {
        let mut set = RevocationSet::new(Duration::from_secs(900), Duration::from_secs(5));
        set.apply(&page(serde_json::json!({"cursor": "1", "tokens": [{"jti": "j", "exp": 2000}],
            "sessions": [{"sid": "s", "exp": 2100}], "subjects": [{"sub": "u", "not_before": 1100}]})));
        set.prune(2004);
        assert_eq!(set.len(), 3);
        set.prune(2005);
        assert_eq!(set.len(), 1, "only the session is left");
        set.prune(2105);
        assert!(set.is_empty());
    }

    #[test]
    fn a_subject_cut_off_is_kept_until_the_exp_the_feed_gives_it() {
        // Tessera with 2 h access tokens: the cut-off must outlive a 1 h max_token_lifetime.
        let mut set = RevocationSet::new(DEFAULT_MAX_TOKEN_LIFETIME, Duration::from_secs(5));
        set.apply(&page(serde_json::json!({"cursor": "1", "subjects": [{"sub": "u", "not_before": 10_000, "exp": 10_000 + 7205}]})));
        let issued_before = claims("a", "u", None, 9_000);
        set.prune(10_000 + 3600 + 100);
        assert!(set.is_revoked(&issued_before), "dropped after max_token_lifetime although its exp is later");
        set.prune(10_000 + 7205 + 4);
        assert!(set.is_revoked(&issued_before), "kept through the leeway after exp");
        set.prune(10_000 + 7205 + 5);
        assert!(set.is_empty());
    }

    #[test]
    fn a_subject_without_exp_is_kept_for_max_token_lifetime() {
        let mut set = RevocationSet::new(Duration::from_secs(900), Duration::from_secs(5));
        set.apply(&page(serde_json::json!({"cursor": "1", "subjects": [{"sub": "u", "not_before": 1000, "exp": 1100}]})));
        set.apply(&page(serde_json::json!({"cursor": "2", "subjects": [{"sub": "v", "not_before": 1000}]})));
        set.prune(1904);
        assert_eq!(set.len(), 2, "a short exp does not undercut max_token_lifetime");
        set.prune(1905);
        assert!(set.is_empty());
    }

    #[test]
    fn single_entries_revoke_like_a_page_and_a_cut_off_only_moves_forward() {
        let mut set = RevocationSet::new(Duration::ZERO, Duration::from_secs(5));
        set.revoke_token("j1", 2000);
        set.revoke_session("s1", 2000);
        set.revoke_subject("u", 1000, Some(1900));
        set.revoke_subject("u", 900, Some(1950));

        assert!(set.is_revoked(&claims("j1", "x", None, 1000)));
        assert!(set.is_revoked(&claims("j2", "x", Some("s1"), 1000)));
        assert_eq!(set.subject_not_before("u"), Some(1000), "the earlier cut-off does not undo the later");
        assert_eq!(set.subject_not_before("v"), None);
        assert!(set.is_revoked(&claims("j3", "u", None, 950)));
        set.prune(1954);
        assert_eq!(set.len(), 3, "the subject is kept until the latest exp plus leeway");
        set.prune(1955);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn a_token_entry_is_kept_until_its_exp_plus_leeway_and_not_at_it() {
        let mut set = RevocationSet::new(Duration::ZERO, Duration::from_secs(5));
        set.revoke_token("j1", 2000);
        set.revoke_token("j1", 1000);
        set.prune(2004);
        assert!(set.is_revoked(&claims("j1", "x", None, 1000)), "an earlier exp does not shorten it");
        set.prune(2005);
        assert!(set.is_empty());
    }
}
