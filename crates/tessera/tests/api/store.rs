//! The store conformance suite: the `Store` contract, checked directly on this binary's
//! engine (SQLite in `api`, PostgreSQL in `api_postgres`).

use crate::helpers::{fresh_database_url, test_config};
use tessera::domain::keys::{KeyStatus, Kid, SigningAlg};
use tessera::domain::{
    Audiences, AuthorizationCode, BrowserSession, BrowserSessionId, Client, ClientId, ClientName, CodeChallenge, Consent, Email,
    PasswordHash, PlainToken, RedirectUris, Roles, Scopes, Session, SessionId, TokenHash, TokenKind, User, UserId, Username,
};
use tessera::store::flow::CodeSpending;
use tessera::store::{
    AuditEvent, BrowserSessionScope, CODE_KEPT_AFTER_EXPIRY, ClientPatch, Conflict, DynStore, KeyRotation, MAX_VERIFIER_LEEWAY,
    RefreshToken, Revocation, SessionScope, StoreError, StoredKey,
};
use time::{Duration, OffsetDateTime};

async fn store() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&fresh_database_url(dir.path()).await);
    (tessera::startup::open_store(&config).await.unwrap(), dir)
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_millisecond(t.millisecond()).unwrap()
}

fn user(email: &str, username: Option<&str>) -> User {
    User {
        id: UserId::new_time_ordered(),
        email: Email::parse(email).unwrap(),
        email_verified: false,
        username: username.map(|u| Username::parse(u).unwrap()),
        password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        roles: Roles::parse(&["admin"]).unwrap(),
        disabled: false,
        tokens_not_before: 0,
        created_at: now(),
        updated_at: now(),
        two_factor: false,
    }
}

async fn session_for(store: &DynStore, user: &User) -> (Session, RefreshToken) {
    let at = now();
    let session = Session {
        id: SessionId::new_random(),
        user_id: user.id,
        created_at: at,
        last_used_at: at,
        expires_at: at + Duration::days(1),
        revoked_at: None,
        user_agent: Some("ua".into()),
        ip: Some("127.0.0.1".parse().unwrap()),
        client_id: None,
        scope: Scopes::default(),
        browser_session_id: None,
        offline: false,
        amr: vec!["pwd".to_owned()],
    };
    let token = refresh(session.id, at);
    assert!(store.insert_session(&session, &token, user).await.unwrap());
    (session, token)
}

fn refresh(session_id: SessionId, at: OffsetDateTime) -> RefreshToken {
    RefreshToken {
        hash: PlainToken::generate(TokenKind::Refresh).unwrap().hash(),
        session_id,
        created_at: at,
        expires_at: at + Duration::days(1),
        rotated_at: None,
    }
}

#[tokio::test]
async fn users_round_trip_and_uniqueness_is_case_insensitive() {
    let (store, _dir) = store().await;
    let alice = user("Alice@Example.com", Some("alice"));
    store.insert_user(&alice).await.unwrap();

    let found = store.user_by_email(&Email::parse("alice@example.COM").unwrap()).await.unwrap().unwrap();
    assert_eq!(found.id, alice.id);
    assert_eq!(found.email.as_str(), "Alice@Example.com");
    assert!(found.roles.is_admin());
    assert_eq!(found.created_at, alice.created_at);
    let by_name = store.user_by_username(&Username::parse("ALICE").unwrap()).await.unwrap().unwrap();
    assert_eq!(by_name.id, alice.id);

    let same_email = store.insert_user(&user("ALICE@example.com", None)).await;
    assert!(matches!(same_email, Err(StoreError::Conflict(Conflict::Email))), "{same_email:?}");
    let same_name = store.insert_user(&user("other@example.com", Some("alice"))).await;
    assert!(matches!(same_name, Err(StoreError::Conflict(Conflict::Username))), "{same_name:?}");
}

#[tokio::test]
async fn a_refresh_token_rotates_exactly_once_however_many_race() {
    let (store, _dir) = store().await;
    let owner = user("race@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let (session, first) = session_for(&store, &owner).await;

    let attempts = (0..8).map(|_| {
        let store = store.clone();
        let next = refresh(session.id, now());
        tokio::spawn(async move { store.rotate_refresh_token(&first.hash, &next).await.unwrap() })
    });
    let mut winners = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        winners += usize::from(attempt.await.unwrap());
    }

    assert_eq!(winners, 1);
    assert!(store.refresh_token(&first.hash).await.unwrap().unwrap().rotated_at.is_some());
}

#[tokio::test]
async fn ending_sessions_writes_the_feed_in_the_same_step() {
    let (store, _dir) = store().await;
    let owner = user("feed@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let (keep, _) = session_for(&store, &owner).await;
    let (end, _) = session_for(&store, &owner).await;
    let head = store.revocation_head().await.unwrap();
    // One reading of the clock: a second boundary between two readings would move `exp`.
    let at = now();
    let feed_exp = at.unix_timestamp() + 60;

    let ended = store.end_sessions(SessionScope::AllBut(owner.id, keep.id), at, feed_exp).await.unwrap();

    assert_eq!(ended, vec![end.id]);
    let feed = store.revocations_after(head, at, 100).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].1, Revocation::Session { sid: end.id.to_string(), exp: feed_exp });
    let live = store.live_sessions(owner.id, at).await.unwrap();
    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), vec![keep.id]);
    assert!(store.end_sessions(SessionScope::One(owner.id, end.id), at, 0).await.unwrap().is_empty(), "ending twice ends nothing");
}

#[tokio::test]
async fn the_feed_keeps_its_order_and_drops_what_has_expired() {
    let (store, _dir) = store().await;
    let t = now().unix_timestamp();
    let entries = [
        Revocation::Token { jti: "a".into(), exp: t + 60 },
        Revocation::Subject { sub: "s".into(), not_before: t, exp: t + 60 },
        // Within the largest clock leeway a verifier may use: still served.
        Revocation::Token { jti: "recent".into(), exp: t - 50 },
        Revocation::Token { jti: "old".into(), exp: t - 70 },
    ];
    store.append_revocations(&entries, now()).await.unwrap();

    let feed = store.revocations_after(0, now(), 100).await.unwrap();

    assert_eq!(feed.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(), entries[..3].to_vec());
    assert!(feed[0].0 < feed[1].0);
    assert!(store.prune(now()).await.unwrap() >= 1);
}

#[tokio::test]
async fn only_one_key_can_be_active() {
    let (store, _dir) = store().await;
    let key = |kid: &str| StoredKey {
        kid: Kid::new(kid),
        alg: SigningAlg::ES256,
        status: KeyStatus::Active,
        private_key: Some(vec![1, 2, 3]),
        encrypted: false,
        public_jwk: Some("{}".into()),
        created_at: now(),
        retired_at: None,
    };
    store.insert_key(&key("k1")).await.unwrap();

    let second = store.insert_key(&key("k2")).await;

    assert!(matches!(second, Err(StoreError::Conflict(Conflict::KeyStatus))), "{second:?}");
    let stale = KeyRotation { retire: Some(Kid::new("nope")), promote: None, insert: vec![], delete: vec![], now: now() };
    assert!(matches!(store.rotate_keys(&stale).await, Err(StoreError::Conflict(Conflict::KeyStatus))));
    assert_eq!(store.keys().await.unwrap().len(), 1);
}

#[tokio::test]
async fn values_that_look_like_sql_are_only_data() {
    let (store, _dir) = store().await;
    let evil = user("robert');DROP/**/TABLE/**/users;--@example.com", None);
    store.insert_user(&evil).await.unwrap();
    let found = store.user_by_email(&evil.email).await.unwrap().unwrap();
    assert_eq!(found.email.as_str(), evil.email.as_str());
    store.set_setting("x' OR '1'='1", "v").await.unwrap();
    assert_eq!(store.setting("x' OR '1'='1").await.unwrap().as_deref(), Some("v"));
    assert!(store.setting("anything").await.unwrap().is_none());
    assert_eq!(store.list_users(None, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn each_user_update_changes_only_its_own_columns() {
    let (store, _dir) = store().await;
    let bob = user("bob@example.com", Some("bob"));
    store.insert_user(&bob).await.unwrap();

    let disabled = store.update_admin_fields(bob.id, Some(true), None, now()).await.unwrap().unwrap();
    let renamed = store.update_profile(bob.id, None, Some(&Username::parse("bobby").unwrap()), now()).await.unwrap().unwrap();
    let new_hash = PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$bmV3".into());
    let replaced = store.replace_password_hash(bob.id, &bob.password_hash, &new_hash, now()).await.unwrap();
    let stale = store.replace_password_hash(bob.id, &bob.password_hash, &bob.password_hash, now()).await.unwrap();
    store.raise_tokens_not_before(bob.id, 500, now()).await.unwrap();
    store.raise_tokens_not_before(bob.id, 400, now()).await.unwrap();
    let moved = store.update_profile(bob.id, Some(&Email::parse("Robert@Example.com").unwrap()), None, now()).await.unwrap().unwrap();

    assert!(disabled.disabled && disabled.roles.is_admin());
    assert_eq!((renamed.username.as_ref().map(Username::as_str), renamed.disabled), (Some("bobby"), true));
    assert!(replaced && !stale, "the password is compared and set");
    let last = store.user_by_id(bob.id).await.unwrap().unwrap();
    assert_eq!(last.password_hash.as_str(), new_hash.as_str());
    assert_eq!(last.tokens_not_before, 500, "a cut-off is never lowered");
    assert_eq!((moved.email.as_str(), moved.disabled, moved.roles.is_admin()), ("Robert@Example.com", true, true));
    assert!(store.update_admin_fields(UserId::new_time_ordered(), Some(true), None, now()).await.unwrap().is_none());
    let taken = store.insert_user(&user("carol@example.com", Some("carol"))).await;
    assert!(taken.is_ok());
    let clash = store.update_profile(bob.id, None, Some(&Username::parse("carol").unwrap()), now()).await;
    assert!(matches!(clash, Err(StoreError::Conflict(Conflict::Username))), "{clash:?}");
}

#[tokio::test]
async fn a_session_is_not_started_for_an_account_that_changed_since_it_was_read() {
    let (store, _dir) = store().await;
    let dave = user("dave@example.com", None);
    store.insert_user(&dave).await.unwrap();
    store.update_admin_fields(dave.id, None, Some(&Roles::parse(&["auditor"]).unwrap()), now()).await.unwrap();
    let at = now();
    let session = Session {
        id: SessionId::new_random(),
        user_id: dave.id,
        created_at: at,
        last_used_at: at,
        expires_at: at + Duration::days(1),
        revoked_at: None,
        user_agent: None,
        ip: None,
        client_id: None,
        scope: Scopes::default(),
        browser_session_id: None,
        offline: false,
        amr: vec!["pwd".to_owned()],
    };

    let started = store.insert_session(&session, &refresh(session.id, at), &dave).await.unwrap();

    assert!(!started, "the roles changed after `dave` was read");
    assert!(store.session(session.id).await.unwrap().is_none());
    let current = store.user_by_id(dave.id).await.unwrap().unwrap();
    assert!(store.insert_session(&session, &refresh(session.id, at), &current).await.unwrap());
}

#[tokio::test]
async fn a_rotated_token_gets_one_second_chance_within_the_grace_however_many_race() {
    let (store, _dir) = store().await;
    let owner = user("grace@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let (session, first) = session_for(&store, &owner).await;
    assert!(
        !store.rotate_within_grace(&first.hash, &refresh(session.id, now()), now() - Duration::seconds(10)).await.unwrap(),
        "not rotated yet"
    );
    assert!(store.rotate_refresh_token(&first.hash, &refresh(session.id, now())).await.unwrap());
    assert!(
        !store.rotate_within_grace(&first.hash, &refresh(session.id, now()), now() + Duration::seconds(10)).await.unwrap(),
        "rotated before the window"
    );

    let attempts = (0..8).map(|_| {
        let store = store.clone();
        let next = refresh(session.id, now());
        tokio::spawn(async move { store.rotate_within_grace(&first.hash, &next, now() - Duration::seconds(10)).await.unwrap() })
    });
    let mut second_chances = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        second_chances += usize::from(attempt.await.unwrap());
    }

    assert_eq!(second_chances, 1);
}

fn client(name: &str, created_at: OffsetDateTime) -> Client {
    Client {
        id: ClientId::generate().unwrap(),
        name: ClientName::parse(name).unwrap(),
        secret_hash: Some(PlainToken::generate(TokenKind::ClientSecret).unwrap().hash()),
        scopes: Scopes::parse(&["read", "write"]).unwrap(),
        roles: Roles::parse(&["service"]).unwrap(),
        audiences: Audiences::parse(&["https://api.example", "billing"]).unwrap(),
        redirect_uris: RedirectUris::parse(&["https://app.example/cb", "http://127.0.0.1/cb"], false).unwrap(),
        post_logout_redirect_uris: RedirectUris::parse(&["https://app.example/bye"], false).unwrap(),
        public: false,
        first_party: true,
        created_at,
        updated_at: created_at,
    }
}

fn stored_key(kid: &str, alg: SigningAlg, status: KeyStatus, created_at: OffsetDateTime) -> StoredKey {
    StoredKey {
        kid: Kid::new(kid),
        alg,
        status,
        private_key: Some(kid.as_bytes().to_vec()),
        encrypted: false,
        public_jwk: Some(format!(r#"{{"kid":"{kid}"}}"#)),
        created_at,
        retired_at: None,
    }
}

/// `(kid, status, retired_at)` of every stored key, by kid.
async fn key_states(store: &DynStore) -> Vec<(String, KeyStatus, Option<OffsetDateTime>)> {
    let mut keys: Vec<_> = store.keys().await.unwrap().into_iter().map(|k| (k.kid.to_string(), k.status, k.retired_at)).collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys
}

/// Every feed entry still stored after `cursor`, whatever its `exp`.
async fn stored_feed(store: &DynStore, cursor: i64) -> Vec<Revocation> {
    let long_ago = OffsetDateTime::UNIX_EPOCH + Duration::seconds(MAX_VERIFIER_LEEWAY);
    store.revocations_after(cursor, long_ago, 1000).await.unwrap().into_iter().map(|(_, e)| e).collect()
}

fn event(kind: &str, at: OffsetDateTime) -> AuditEvent {
    AuditEvent {
        at,
        kind: kind.into(),
        actor: Some("usr_1".into()),
        subject: None,
        ip: Some("192.0.2.7".into()),
        detail: Some(format!("detail of {kind}")),
    }
}

#[tokio::test]
async fn clients_round_trip_with_their_audiences_and_are_listed_oldest_first() {
    let (store, _dir) = store().await;
    let at = now();
    let newer = client("newer", at);
    let older = client("older", at - Duration::seconds(5));
    store.insert_client(&newer).await.unwrap();
    store.insert_client(&older).await.unwrap();

    let found = store.client(&newer.id).await.unwrap().unwrap();
    let listed = store.list_clients().await.unwrap();

    assert_eq!((found.id.as_str(), found.name.as_str()), (newer.id.as_str(), "newer"));
    assert_eq!(found.secret_hash, newer.secret_hash);
    assert_eq!((&found.scopes, &found.roles, &found.audiences), (&newer.scopes, &newer.roles, &newer.audiences));
    assert_eq!((found.created_at, found.updated_at), (at, at));
    assert_eq!(listed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["older", "newer"]);
    assert!(store.client(&ClientId::generate().unwrap()).await.unwrap().is_none());
    assert!(matches!(store.insert_client(&newer).await, Err(StoreError::Conflict(_))), "a client id is unique");
}

#[tokio::test]
async fn a_client_secret_is_replaced_only_for_a_client_that_exists() {
    let (store, _dir) = store().await;
    let at = now();
    let billing = client("billing", at);
    store.insert_client(&billing).await.unwrap();
    let new_hash = PlainToken::generate(TokenKind::ClientSecret).unwrap().hash();
    let later = at + Duration::seconds(30);

    assert!(store.set_client_secret(&billing.id, &new_hash, later).await.unwrap());
    assert!(!store.set_client_secret(&ClientId::generate().unwrap(), &new_hash, later).await.unwrap());

    let found = store.client(&billing.id).await.unwrap().unwrap();
    assert_eq!(found.secret_hash, Some(new_hash));
    assert_eq!((found.created_at, found.updated_at), (at, later));
    assert_eq!(found.audiences, billing.audiences, "nothing else changes");
}

#[tokio::test]
async fn deleting_a_client_writes_its_feed_entries_in_the_same_step() {
    let (store, _dir) = store().await;
    let at = now();
    let billing = client("billing", at);
    store.insert_client(&billing).await.unwrap();
    let head = store.revocation_head().await.unwrap();
    let entries =
        [Revocation::Subject { sub: billing.id.to_string(), not_before: at.unix_timestamp() + 1, exp: at.unix_timestamp() + 900 }];

    assert!(store.delete_client(&billing.id, &entries, at).await.unwrap());

    assert!(store.client(&billing.id).await.unwrap().is_none());
    assert_eq!(stored_feed(&store, head).await, entries.to_vec());
    let after = store.revocation_head().await.unwrap();
    assert!(!store.delete_client(&billing.id, &entries, at).await.unwrap(), "already gone");
    assert_eq!(store.revocation_head().await.unwrap(), after, "a delete that found nothing writes no feed entry");
}

#[tokio::test]
async fn deleting_a_user_takes_its_sessions_and_writes_its_feed_entries_in_the_same_step() {
    let (store, _dir) = store().await;
    let erin = user("erin@example.com", Some("erin"));
    let other = user("other@example.com", None);
    store.insert_user(&erin).await.unwrap();
    store.insert_user(&other).await.unwrap();
    let (session, token) = session_for(&store, &erin).await;
    let (kept, _) = session_for(&store, &other).await;
    let at = now();
    let head = store.revocation_head().await.unwrap();
    let entries = [
        Revocation::Subject { sub: erin.id.to_string(), not_before: at.unix_timestamp() + 1, exp: at.unix_timestamp() + 900 },
        Revocation::Session { sid: session.id.to_string(), exp: at.unix_timestamp() + 900 },
    ];

    assert!(store.delete_user(erin.id, &entries, at).await.unwrap());

    assert!(store.user_by_id(erin.id).await.unwrap().is_none());
    assert!(store.user_by_username(&Username::parse("erin").unwrap()).await.unwrap().is_none());
    assert!(store.session(session.id).await.unwrap().is_none());
    assert!(store.refresh_token(&token.hash).await.unwrap().is_none());
    assert!(store.session(kept.id).await.unwrap().is_some(), "another account's session stays");
    assert_eq!(stored_feed(&store, head).await, entries.to_vec());
    let after = store.revocation_head().await.unwrap();
    assert!(!store.delete_user(erin.id, &entries, at).await.unwrap(), "already gone");
    assert_eq!(store.revocation_head().await.unwrap(), after, "a delete that found nothing writes no feed entry");
}

#[tokio::test]
async fn users_are_listed_in_id_order_one_page_after_another() {
    let (store, _dir) = store().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let u = user(&format!("page{n}@example.com"), None);
        store.insert_user(&u).await.unwrap();
        ids.push(u.id);
    }
    ids.sort_by_key(|id| id.to_string());

    let first = store.list_users(None, 2).await.unwrap();
    let second = store.list_users(first.last().map(|u| u.id), 2).await.unwrap();
    let third = store.list_users(second.last().map(|u| u.id), 2).await.unwrap();
    let past_the_end = store.list_users(third.last().map(|u| u.id), 2).await.unwrap();

    let listed: Vec<UserId> = [first, second, third.clone()].concat().iter().map(|u| u.id).collect();
    assert_eq!(listed, ids);
    assert_eq!(third.len(), 1);
    assert!(past_the_end.is_empty());
}

#[tokio::test]
async fn live_sessions_are_the_ones_neither_ended_nor_expired_newest_first() {
    let (store, _dir) = store().await;
    let owner = user("live@example.com", None);
    let other = user("other-live@example.com", None);
    store.insert_user(&owner).await.unwrap();
    store.insert_user(&other).await.unwrap();
    let at = now();
    let started = |created: OffsetDateTime, expires: OffsetDateTime| {
        let id = SessionId::new_random();
        let session = Session {
            id,
            user_id: owner.id,
            created_at: created,
            last_used_at: created,
            expires_at: expires,
            revoked_at: None,
            user_agent: None,
            ip: None,
            client_id: None,
            scope: Scopes::default(),
            browser_session_id: None,
            offline: false,
            amr: vec!["pwd".to_owned()],
        };
        let token = RefreshToken { expires_at: expires, ..refresh(id, created) };
        let store = store.clone();
        let owner = owner.clone();
        async move {
            assert!(store.insert_session(&session, &token, &owner).await.unwrap());
            id
        }
    };
    let older = started(at - Duration::hours(2), at + Duration::hours(1)).await;
    let newer = started(at - Duration::hours(1), at + Duration::hours(1)).await;
    let expired = started(at - Duration::hours(3), at).await;
    let ended = started(at - Duration::minutes(30), at + Duration::hours(1)).await;
    store.end_sessions(SessionScope::One(owner.id, ended), at, at.unix_timestamp() + 60).await.unwrap();
    session_for(&store, &other).await;

    let live = store.live_sessions(owner.id, at).await.unwrap();

    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), [newer, older]);
    assert!(store.session(expired).await.unwrap().is_some(), "an expired session is only hidden");
    assert_eq!(store.session(ended).await.unwrap().unwrap().revoked_at, Some(at));
}

#[tokio::test]
async fn a_key_rotation_promotes_retires_inserts_and_deletes_together() {
    let (store, _dir) = store().await;
    let t0 = now() - Duration::hours(1);
    store.insert_key(&stored_key("k1", SigningAlg::ES256, KeyStatus::Active, t0)).await.unwrap();
    store.insert_key(&stored_key("k2", SigningAlg::ES256, KeyStatus::Next, t0)).await.unwrap();
    let t1 = now();

    let promote = KeyRotation {
        retire: Some(Kid::new("k1")),
        promote: Some(Kid::new("k2")),
        insert: vec![stored_key("k3", SigningAlg::ES256, KeyStatus::Next, t1)],
        delete: vec![],
        now: t1,
    };
    store.rotate_keys(&promote).await.unwrap();

    assert_eq!(
        key_states(&store).await,
        [("k1".into(), KeyStatus::Retiring, Some(t1)), ("k2".into(), KeyStatus::Active, None), ("k3".into(), KeyStatus::Next, None)]
    );

    let t2 = t1 + Duration::minutes(1);
    let change_alg = KeyRotation {
        retire: Some(Kid::new("k2")),
        promote: None,
        insert: vec![stored_key("k4", SigningAlg::RS256, KeyStatus::Active, t2), stored_key("k5", SigningAlg::RS256, KeyStatus::Next, t2)],
        delete: vec![Kid::new("k3")],
        now: t2,
    };
    store.rotate_keys(&change_alg).await.unwrap();

    let stored = store.keys().await.unwrap();
    let k4 = stored.iter().find(|k| k.kid.as_str() == "k4").unwrap();
    assert_eq!(
        (k4.alg, k4.private_key.as_deref(), k4.public_jwk.as_deref()),
        (SigningAlg::RS256, Some(&b"k4"[..]), Some(r#"{"kid":"k4"}"#))
    );
    assert_eq!(
        key_states(&store).await,
        [
            ("k1".into(), KeyStatus::Retiring, Some(t1)),
            ("k2".into(), KeyStatus::Retiring, Some(t2)),
            ("k4".into(), KeyStatus::Active, None),
            ("k5".into(), KeyStatus::Next, None),
        ]
    );
}

#[tokio::test]
async fn a_rotation_that_loses_a_race_changes_nothing() {
    let (store, _dir) = store().await;
    let t0 = now();
    store.insert_key(&stored_key("k1", SigningAlg::ES256, KeyStatus::Active, t0)).await.unwrap();
    store.insert_key(&stored_key("k2", SigningAlg::ES256, KeyStatus::Next, t0)).await.unwrap();
    let before = key_states(&store).await;

    let stale = KeyRotation {
        retire: Some(Kid::new("k1")),
        promote: Some(Kid::new("k-promoted-by-someone-else")),
        insert: vec![stored_key("k3", SigningAlg::ES256, KeyStatus::Next, t0)],
        delete: vec![Kid::new("k2")],
        now: t0,
    };
    let lost = store.rotate_keys(&stale).await;

    assert!(matches!(lost, Err(StoreError::Conflict(Conflict::KeyStatus))), "{lost:?}");
    assert_eq!(key_states(&store).await, before, "the delete and the retirement were rolled back");
}

#[tokio::test]
async fn deleting_keys_removes_exactly_those_keys() {
    let (store, _dir) = store().await;
    let t0 = now();
    store.insert_key(&stored_key("k1", SigningAlg::ES256, KeyStatus::Active, t0)).await.unwrap();
    store.insert_key(&stored_key("k2", SigningAlg::ES256, KeyStatus::Next, t0)).await.unwrap();
    store.insert_key(&stored_key("k3", SigningAlg::ES256, KeyStatus::Retiring, t0)).await.unwrap();
    store.insert_key(&stored_key("k4", SigningAlg::RS256, KeyStatus::Retiring, t0)).await.unwrap();

    store.delete_keys(&[Kid::new("k3"), Kid::new("k4"), Kid::new("unknown")]).await.unwrap();
    store.delete_keys(&[]).await.unwrap();

    let kids: Vec<String> = key_states(&store).await.into_iter().map(|(kid, _, _)| kid).collect();
    assert_eq!(kids, ["k1", "k2"]);
}

#[tokio::test]
async fn resealing_replaces_only_a_private_key_that_is_not_sealed_yet() {
    let (store, _dir) = store().await;
    store.insert_key(&stored_key("k1", SigningAlg::ES256, KeyStatus::Active, now())).await.unwrap();
    let sealed_key = |store: &DynStore| {
        let store = store.clone();
        async move {
            let key = store.keys().await.unwrap().into_iter().find(|k| k.kid.as_str() == "k1").unwrap();
            (key.private_key.unwrap(), key.encrypted)
        }
    };

    assert!(store.reseal_key(&Kid::new("k1"), b"sealed once").await.unwrap());
    assert_eq!(sealed_key(&store).await, (b"sealed once".to_vec(), true));

    assert!(!store.reseal_key(&Kid::new("k1"), b"sealed twice").await.unwrap(), "another instance sealed it first");
    assert_eq!(sealed_key(&store).await, (b"sealed once".to_vec(), true));
    assert!(!store.reseal_key(&Kid::new("gone"), b"sealed").await.unwrap());
}

#[tokio::test]
async fn login_failures_count_up_within_the_window_and_start_over_after_it() {
    let (store, _dir) = store().await;
    let window = std::time::Duration::from_secs(900);
    let t = now();
    let t_ms = tessera::store::now_ms(t);

    assert_eq!(store.record_login_failure("email:a", t, window).await.unwrap(), (1, t_ms));
    assert_eq!(store.record_login_failure("email:a", t + Duration::seconds(1), window).await.unwrap(), (2, t_ms));
    assert_eq!(
        store.record_login_failure("email:a", t + Duration::seconds(900), window).await.unwrap(),
        (3, t_ms),
        "the window's last instant"
    );
    assert_eq!(store.record_login_failure("email:b", t, window).await.unwrap(), (1, t_ms), "each login counts alone");
    assert_eq!(store.login_failures("email:a").await.unwrap(), Some((3, t_ms)));

    let later = t + Duration::seconds(900) + Duration::milliseconds(1);
    assert_eq!(store.record_login_failure("email:a", later, window).await.unwrap(), (1, t_ms + 900_001), "a new window");
    assert_eq!(store.login_failures("email:a").await.unwrap(), Some((1, t_ms + 900_001)));

    store.clear_login_failures("email:a").await.unwrap();
    store.clear_login_failures("email:never-failed").await.unwrap();
    assert_eq!(store.login_failures("email:a").await.unwrap(), None);
    assert_eq!(store.login_failures("email:b").await.unwrap(), Some((1, t_ms)), "clearing one login leaves the others");
}

#[tokio::test]
async fn rate_hits_add_up_across_calls_per_address_and_minute() {
    let (store, _dir) = store().await;
    let minute = now().unix_timestamp() / 60;

    let first = store.add_rate_hits(minute, &[("192.0.2.1".into(), 2), ("192.0.2.2".into(), 1)]).await.unwrap();
    let second = store.add_rate_hits(minute, &[("192.0.2.1".into(), 3)]).await.unwrap();
    let next_minute = store.add_rate_hits(minute + 1, &[("192.0.2.1".into(), 1)]).await.unwrap();

    assert_eq!(first, [("192.0.2.1".to_owned(), 2), ("192.0.2.2".to_owned(), 1)]);
    assert_eq!(second, [("192.0.2.1".to_owned(), 5)]);
    assert_eq!(next_minute, [("192.0.2.1".to_owned(), 1)]);
    assert!(store.add_rate_hits(minute, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn audit_events_come_newest_first_page_by_page_and_pruning_drops_the_older_ones() {
    let (store, _dir) = store().await;
    let t = now();
    let events: Vec<AuditEvent> = (0..5).map(|n| event(&format!("kind.{n}"), t - Duration::seconds(4 - n))).collect();
    for e in &events {
        store.append_audit(e).await.unwrap();
    }
    let bare = AuditEvent { at: t, kind: "bare".into(), actor: None, subject: None, ip: None, detail: None };
    store.append_audit(&bare).await.unwrap();

    let first = store.audit_events(None, 2).await.unwrap();
    let second = store.audit_events(first.last().map(|(seq, _)| *seq), 3).await.unwrap();

    assert_eq!(first.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(), [bare.clone(), events[4].clone()]);
    assert_eq!(second.iter().map(|(_, e)| e.kind.as_str()).collect::<Vec<_>>(), ["kind.3", "kind.2", "kind.1"]);
    assert!(first[0].0 > first[1].0 && first[1].0 > second[0].0);

    let pruned = store.prune_audit(t - Duration::seconds(2)).await.unwrap();

    assert_eq!(pruned, 2, "events before the cut-off, not at it");
    let kinds: Vec<String> = store.audit_events(None, 100).await.unwrap().into_iter().map(|(_, e)| e.kind).collect();
    assert_eq!(kinds, ["bare", "kind.4", "kind.3", "kind.2"]);
}

#[tokio::test]
async fn the_feed_head_is_its_newest_position() {
    let (store, _dir) = store().await;
    assert_eq!(store.revocation_head().await.unwrap(), 0, "an empty feed");
    let exp = now().unix_timestamp() + 60;
    let entries = [Revocation::Token { jti: "a".into(), exp }, Revocation::Token { jti: "b".into(), exp }];

    store.append_revocations(&entries, now()).await.unwrap();
    store.append_revocations(&[], now()).await.unwrap();

    let feed = store.revocations_after(0, now(), 100).await.unwrap();
    assert_eq!(store.revocation_head().await.unwrap(), feed[1].0);
    assert!(store.revocations_after(feed[1].0, now(), 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn prune_drops_what_has_expired_and_keeps_what_still_protects_something() {
    let (store, _dir) = store().await;
    let owner = user("prune@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let at = now();
    let (live, live_token) = session_for(&store, &owner).await;
    let (ended, ended_token) = session_for(&store, &owner).await;
    store.end_sessions(SessionScope::One(owner.id, ended.id), at, at.unix_timestamp() + 60).await.unwrap();
    let rotated = refresh(live.id, at);
    assert!(store.rotate_refresh_token(&live_token.hash, &rotated).await.unwrap());
    let head = store.revocation_head().await.unwrap();
    let t = at.unix_timestamp();
    let feed = [
        Revocation::Token { jti: "kept until exp + leeway".into(), exp: t - MAX_VERIFIER_LEEWAY },
        Revocation::Token { jti: "past the leeway".into(), exp: t - MAX_VERIFIER_LEEWAY - 1 },
        Revocation::Session { sid: "live".into(), exp: t + 60 },
    ];
    store.append_revocations(&feed, at).await.unwrap();
    let minute = t.div_euclid(60);
    store.add_rate_hits(minute - 2, &[("192.0.2.1".into(), 4)]).await.unwrap();
    store.add_rate_hits(minute - 1, &[("192.0.2.1".into(), 5)]).await.unwrap();

    let pruned = store.prune(at).await.unwrap();

    assert_eq!(pruned, 3, "the ended session, the old minute's counter and one feed entry");
    assert!(store.session(ended.id).await.unwrap().is_none());
    assert!(store.refresh_token(&ended_token.hash).await.unwrap().is_none(), "its refresh tokens go with it");
    assert!(store.session(live.id).await.unwrap().is_some());
    assert!(store.refresh_token(&live_token.hash).await.unwrap().is_some(), "kept for reuse detection until it expires");
    let kept: Vec<Revocation> = stored_feed(&store, head).await;
    assert_eq!(kept, [feed[0].clone(), feed[2].clone()]);
    assert_eq!(store.add_rate_hits(minute - 1, &[("192.0.2.1".into(), 0)]).await.unwrap()[0].1, 5, "last minute's counter is kept");
    assert_eq!(store.add_rate_hits(minute - 2, &[("192.0.2.1".into(), 0)]).await.unwrap()[0].1, 0, "older minutes are dropped");

    let a_day_later = at + Duration::days(1) + Duration::seconds(1);
    let pruned = store.prune(a_day_later).await.unwrap();

    assert!(store.refresh_token(&live_token.hash).await.unwrap().is_none(), "an expired refresh token is dropped");
    assert!(store.session(live.id).await.unwrap().is_none(), "a session past its expiry is dropped");
    assert!(pruned >= 2, "{pruned}");
}

#[tokio::test]
async fn the_database_answers_a_ping_and_the_pool_reports_its_connections() {
    let (store, _dir) = store().await;

    store.ping().await.unwrap();

    let (open, idle) = store.pool_stats();
    assert!(open >= 1, "the ping used a connection: {open}");
    assert!(idle <= open, "{idle} idle of {open}");
}

fn browser_session(user: &User, at: OffsetDateTime) -> BrowserSession {
    BrowserSession {
        id: BrowserSessionId::new_random(),
        secret_hash: PlainToken::generate(TokenKind::BrowserSession).unwrap().hash(),
        user_id: user.id,
        auth_time: at,
        amr: vec!["pwd".into()],
        created_at: at,
        last_seen_at: at,
        expires_at: at + Duration::days(1),
        ip: Some("192.0.2.9".parse().unwrap()),
        user_agent: Some("Firefox".into()),
    }
}

/// A token session issued to `client` through `browser`, offline or not.
async fn app_session(
    store: &DynStore,
    user: &User,
    client: &ClientId,
    browser: Option<BrowserSessionId>,
    offline: bool,
) -> Option<Session> {
    let at = now();
    let session = Session {
        id: SessionId::new_random(),
        user_id: user.id,
        created_at: at,
        last_used_at: at,
        expires_at: at + Duration::days(1),
        revoked_at: None,
        user_agent: None,
        ip: None,
        client_id: Some(client.clone()),
        scope: Scopes::parse(&["openid", "read"]).unwrap(),
        browser_session_id: browser,
        offline,
        amr: vec!["pwd".to_owned()],
    };
    store.insert_session(&session, &refresh(session.id, at), user).await.unwrap().then_some(session)
}

/// What a code was issued for, with the hash of a code (the store never sees a code).
fn code(client: &ClientId, user: &User, browser: BrowserSessionId, at: OffsetDateTime) -> (TokenHash, AuthorizationCode) {
    let hash = PlainToken::generate(TokenKind::EmailLink).unwrap().hash();
    let code = AuthorizationCode {
        client_id: client.clone(),
        user_id: user.id,
        browser_session_id: browser,
        redirect_uri: Some("https://app.example/cb".into()),
        code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        scope: Scopes::parse(&["openid", "email"]).unwrap(),
        auth_time: at - Duration::minutes(5),
        amr: vec!["pwd".into()],
        created_at: at,
        expires_at: at + Duration::seconds(60),
    };
    (hash, code)
}

#[tokio::test]
async fn a_public_client_round_trips_without_a_secret_and_cannot_be_given_one() {
    let (store, _dir) = store().await;
    let spa = Client {
        secret_hash: None,
        public: true,
        first_party: false,
        redirect_uris: RedirectUris::parse(&["com.example.app:/cb"], true).unwrap(),
        ..client("spa", now())
    };
    store.insert_client(&spa).await.unwrap();

    let found = store.client(&spa.id).await.unwrap().unwrap();
    let given = store.set_client_secret(&spa.id, &PlainToken::generate(TokenKind::ClientSecret).unwrap().hash(), now()).await.unwrap();

    assert!(found.public && found.secret_hash.is_none());
    assert_eq!(found.redirect_uris.to_vec(), ["com.example.app:/cb"]);
    assert!(!given, "a public client never gets a secret");
    assert!(store.client(&spa.id).await.unwrap().unwrap().secret_hash.is_none());
    let confidential_without_secret = Client { secret_hash: None, ..client("broken", now()) };
    assert!(store.insert_client(&confidential_without_secret).await.is_err(), "a confidential client must have a secret");
}

#[tokio::test]
async fn a_client_update_changes_only_the_columns_it_names() {
    let (store, _dir) = store().await;
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let later = now() + Duration::seconds(3);

    let rename = ClientPatch { name: Some(ClientName::parse("renamed").unwrap()), ..Default::default() };
    let renamed = store.update_client(&app.id, &rename, later).await.unwrap().unwrap();
    let patch = ClientPatch {
        scopes: Some(Scopes::parse(&["read"]).unwrap()),
        redirect_uris: Some(RedirectUris::parse(&["https://new.example/cb"], false).unwrap()),
        post_logout_redirect_uris: Some(RedirectUris::default()),
        first_party: Some(false),
        ..Default::default()
    };
    let changed = store.update_client(&app.id, &patch, later).await.unwrap().unwrap();

    assert_eq!((renamed.name.as_str(), &renamed.scopes, renamed.first_party), ("renamed", &app.scopes, true));
    assert_eq!((changed.name.as_str(), changed.scopes.to_string().as_str()), ("renamed", "read"));
    assert_eq!(changed.redirect_uris.to_vec(), ["https://new.example/cb"]);
    assert!(changed.post_logout_redirect_uris.is_empty() && !changed.first_party);
    assert_eq!((&changed.roles, &changed.audiences, changed.secret_hash), (&app.roles, &app.audiences, app.secret_hash));
    assert_eq!((changed.created_at, changed.updated_at), (app.created_at, later));
    assert!(store.update_client(&ClientId::generate().unwrap(), &patch, later).await.unwrap().is_none());
}

#[tokio::test]
async fn ending_a_clients_sessions_ends_only_that_clients_and_writes_the_feed() {
    let (store, _dir) = store().await;
    let owner = user("client-sessions@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let (a, b) = (client("a", now()), client("b", now()));
    store.insert_client(&a).await.unwrap();
    store.insert_client(&b).await.unwrap();
    let of_a = app_session(&store, &owner, &a.id, None, true).await.unwrap();
    let of_b = app_session(&store, &owner, &b.id, None, false).await.unwrap();
    let (first_party, _) = session_for(&store, &owner).await;
    let head = store.revocation_head().await.unwrap();
    let at = now();

    let ended = store.end_client_sessions(&a.id, at, at.unix_timestamp() + 60).await.unwrap();

    assert_eq!(ended, [of_a.id]);
    assert_eq!(stored_feed(&store, head).await, [Revocation::Session { sid: of_a.id.to_string(), exp: at.unix_timestamp() + 60 }]);
    let stored = store.session(of_a.id).await.unwrap().unwrap();
    assert_eq!((stored.client_id.as_ref(), stored.offline, stored.scope.to_string()), (Some(&a.id), true, "openid read".to_owned()));
    assert!(store.session(of_b.id).await.unwrap().unwrap().revoked_at.is_none());
    assert!(store.session(first_party.id).await.unwrap().unwrap().client_id.is_none());
}

#[tokio::test]
async fn browser_sessions_are_found_by_their_cookie_secret_touched_and_listed_newest_first() {
    let (store, _dir) = store().await;
    let owner = user("browser@example.com", None);
    let other = user("browser-other@example.com", None);
    store.insert_user(&owner).await.unwrap();
    store.insert_user(&other).await.unwrap();
    let at = now();
    let older = browser_session(&owner, at - Duration::hours(1));
    let newer = browser_session(&owner, at);
    let expired = BrowserSession { expires_at: at, ..browser_session(&owner, at - Duration::days(2)) };
    for s in [&older, &newer, &expired, &browser_session(&other, at)] {
        store.insert_browser_session(s).await.unwrap();
    }

    let found = store.browser_session_by_secret(&newer.secret_hash, at).await.unwrap().unwrap();
    let touched = store.touch_browser_session(newer.id, at + Duration::minutes(5)).await.unwrap();
    let not_back = store.touch_browser_session(newer.id, at + Duration::minutes(1)).await.unwrap();
    let listed = store.browser_sessions_of(owner.id, at).await.unwrap();

    assert_eq!((found.id, found.user_id, found.amr.clone(), found.auth_time), (newer.id, owner.id, vec!["pwd".to_owned()], at));
    assert_eq!((found.ip, found.user_agent.as_deref()), (newer.ip, Some("Firefox")));
    assert!(touched && not_back);
    assert_eq!(store.browser_session(newer.id, at).await.unwrap().unwrap().last_seen_at, at + Duration::minutes(5), "never moved back");
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [newer.id, older.id]);
    assert!(store.browser_session_by_secret(&expired.secret_hash, at).await.unwrap().is_none(), "expired");
    assert!(store.browser_session(expired.id, at).await.unwrap().is_none());
    assert!(store.browser_session_by_secret(&PlainToken::generate(TokenKind::BrowserSession).unwrap().hash(), at).await.unwrap().is_none());
    assert!(!store.touch_browser_session(BrowserSessionId::new_random(), at).await.unwrap());
}

#[tokio::test]
async fn ending_a_browser_session_ends_its_token_sessions_except_offline_ones() {
    let (store, _dir) = store().await;
    let owner = user("signout@example.com", None);
    let stranger = user("stranger@example.com", None);
    store.insert_user(&owner).await.unwrap();
    store.insert_user(&stranger).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    let kept_browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    store.insert_browser_session(&kept_browser).await.unwrap();
    let online = app_session(&store, &owner, &app.id, Some(browser.id), false).await.unwrap();
    let offline = app_session(&store, &owner, &app.id, Some(browser.id), true).await.unwrap();
    let elsewhere = app_session(&store, &owner, &app.id, Some(kept_browser.id), false).await.unwrap();
    let head = store.revocation_head().await.unwrap();
    let at = now();

    let by_stranger = store.end_browser_sessions(BrowserSessionScope::One(stranger.id, browser.id), at, 0).await.unwrap();
    let ended = store.end_browser_sessions(BrowserSessionScope::One(owner.id, browser.id), at, at.unix_timestamp() + 60).await.unwrap();

    assert!(by_stranger.browser_sessions.is_empty() && by_stranger.token_sessions.is_empty(), "scoped to its owner");
    assert_eq!((ended.browser_sessions, ended.token_sessions), (vec![browser.id], vec![online.id]));
    assert_eq!(stored_feed(&store, head).await, [Revocation::Session { sid: online.id.to_string(), exp: at.unix_timestamp() + 60 }]);
    assert!(store.browser_session(browser.id, at).await.unwrap().is_none());
    assert!(store.session(offline.id).await.unwrap().unwrap().revoked_at.is_none(), "offline_access outlives the browser");
    assert!(store.session(elsewhere.id).await.unwrap().unwrap().revoked_at.is_none());
    assert!(app_session(&store, &owner, &app.id, Some(browser.id), false).await.is_none(), "no session through a signed-out browser");

    let all = store.end_browser_sessions(BrowserSessionScope::AllOf(owner.id), at, at.unix_timestamp() + 60).await.unwrap();

    assert_eq!((all.browser_sessions, all.token_sessions), (vec![kept_browser.id], vec![elsewhere.id]));
    assert!(store.browser_sessions_of(owner.id, at).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_code_refused_before_any_exchange_is_spent_once_and_then_replayed() {
    let (store, _dir) = store().await;
    let owner = user("code@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    let at = now();
    let (hash, issued) = code(&app.id, &owner, browser.id, at);

    let first = store.spend_code(&hash, &issued, at + Duration::seconds(1)).await.unwrap();
    let second = store.spend_code(&hash, &issued, at + Duration::seconds(2)).await.unwrap();
    let (session, token) = code_session(&issued, SessionId::new_random(), at + Duration::seconds(3));
    let exchanged = store.exchange_code(&hash, &issued, &session, &token, &owner).await.unwrap();

    assert_eq!(first, CodeSpending::Spent);
    assert_eq!(second, CodeSpending::Replayed { client_id: app.id.clone(), user_id: owner.id, token_session: None });
    assert!(!exchanged, "a spent code starts nothing");
}

#[tokio::test]
async fn a_code_is_spent_exactly_once_however_many_race() {
    let (store, _dir) = store().await;
    let owner = user("code-race@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    let (hash, issued) = code(&app.id, &owner, browser.id, now());

    let attempts = (0..8).map(|_| {
        let (store, issued) = (store.clone(), issued.clone());
        tokio::spawn(async move { store.spend_code(&hash, &issued, now()).await.unwrap() })
    });
    let (mut spent, mut replayed) = (0, 0);
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            CodeSpending::Spent => spent += 1,
            CodeSpending::Replayed { .. } => replayed += 1,
        }
    }

    assert_eq!((spent, replayed), (1, 7));
}

#[tokio::test]
async fn consents_are_upserted_found_listed_and_withdrawn() {
    let (store, _dir) = store().await;
    let owner = user("consent@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let (a, b) = (client("a", now()), client("b", now()));
    store.insert_client(&a).await.unwrap();
    store.insert_client(&b).await.unwrap();
    let at = now();
    let to_a = Consent { user_id: owner.id, client_id: a.id.clone(), scopes: Scopes::parse(&["openid"]).unwrap(), granted_at: at };
    let to_b = Consent { client_id: b.id.clone(), granted_at: at + Duration::seconds(1), ..to_a.clone() };
    store.upsert_consent(&to_a).await.unwrap();
    store.upsert_consent(&to_b).await.unwrap();
    let widened = Consent { scopes: Scopes::parse(&["openid", "email"]).unwrap(), granted_at: at + Duration::seconds(2), ..to_a.clone() };

    store.upsert_consent(&widened).await.unwrap();

    assert_eq!(store.consent(owner.id, &a.id).await.unwrap(), Some(widened.clone()));
    assert_eq!(store.consents_of(owner.id).await.unwrap(), [widened, to_b.clone()]);
    assert!(store.delete_consent(owner.id, &a.id).await.unwrap());
    assert!(!store.delete_consent(owner.id, &a.id).await.unwrap(), "already withdrawn");
    assert!(store.consent(owner.id, &a.id).await.unwrap().is_none());
    assert!(store.delete_client(&b.id, &[], now()).await.unwrap());
    assert!(store.consents_of(owner.id).await.unwrap().is_empty(), "a deleted client's consents go with it");
}

#[tokio::test]
async fn prune_drops_expired_browser_sessions_and_codes_kept_past_their_replay_window() {
    let (store, _dir) = store().await;
    let owner = user("prune-oidc@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let at = now();
    let gone = BrowserSession { expires_at: at - Duration::seconds(1), ..browser_session(&owner, at - Duration::days(1)) };
    let live = browser_session(&owner, at);
    store.insert_browser_session(&gone).await.unwrap();
    store.insert_browser_session(&live).await.unwrap();
    let kept_window = Duration::try_from(CODE_KEPT_AFTER_EXPIRY).unwrap();
    let (old_hash, old) = code(&app.id, &owner, live.id, at - kept_window - Duration::seconds(61));
    let (recent_hash, recent) = code(&app.id, &owner, live.id, at - Duration::seconds(61));
    assert_eq!(store.spend_code(&old_hash, &old, old.created_at).await.unwrap(), CodeSpending::Spent);
    assert_eq!(store.spend_code(&recent_hash, &recent, recent.created_at).await.unwrap(), CodeSpending::Spent);

    store.prune(at).await.unwrap();

    assert!(store.browser_session(live.id, at).await.unwrap().is_some());
    assert!(store.browser_sessions_of(owner.id, at - Duration::days(1)).await.unwrap().iter().all(|s| s.id != gone.id));
    assert_eq!(store.spend_code(&old_hash, &old, at).await.unwrap(), CodeSpending::Spent, "pruned");
    assert!(matches!(store.spend_code(&recent_hash, &recent, at).await.unwrap(), CodeSpending::Replayed { .. }), "kept for replays");
}

/// The token session an application's code would start, with its first refresh token.
fn code_session(issued: &AuthorizationCode, id: SessionId, at: OffsetDateTime) -> (Session, RefreshToken) {
    let session = Session {
        id,
        user_id: issued.user_id,
        created_at: at,
        last_used_at: at,
        expires_at: at + Duration::days(1),
        revoked_at: None,
        user_agent: None,
        ip: Some("192.0.2.9".parse().unwrap()),
        client_id: Some(issued.client_id.clone()),
        scope: issued.scope.clone(),
        browser_session_id: Some(issued.browser_session_id),
        offline: false,
        amr: issued.amr.clone(),
    };
    let token = refresh(id, at);
    (session, token)
}

#[tokio::test]
async fn one_read_finds_a_browser_session_with_its_account_state_and_its_consent_to_one_client() {
    let (store, _dir) = store().await;
    let owner = user("browser-for-client@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let (allowed, other) = (client("allowed", now()), client("other", now()));
    store.insert_client(&allowed).await.unwrap();
    store.insert_client(&other).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    let at = now();
    let consent =
        Consent { user_id: owner.id, client_id: allowed.id.clone(), scopes: Scopes::parse(&["openid", "email"]).unwrap(), granted_at: at };
    store.upsert_consent(&consent).await.unwrap();

    let found = store.browser_for_client(&browser.secret_hash, at, &allowed.id).await.unwrap().unwrap();
    let for_other = store.browser_for_client(&browser.secret_hash, at, &other.id).await.unwrap().unwrap();
    let expired = store.browser_for_client(&browser.secret_hash, browser.expires_at, &allowed.id).await.unwrap();
    let unknown = PlainToken::generate(TokenKind::BrowserSession).unwrap().hash();
    let stranger = store.browser_for_client(&unknown, at, &allowed.id).await.unwrap();
    store.update_admin_fields(owner.id, Some(true), None, at).await.unwrap();
    let disabled = store.browser_for_client(&browser.secret_hash, at, &allowed.id).await.unwrap().unwrap();

    assert_eq!((found.session.id, found.session.user_id, found.session.auth_time), (browser.id, owner.id, browser.auth_time));
    assert!(found.account_enabled);
    let given = found.consent.unwrap();
    assert_eq!(
        (given.user_id, given.client_id, given.scopes.to_string(), given.granted_at),
        (owner.id, allowed.id, "email openid".to_owned(), at)
    );
    assert!(for_other.consent.is_none() && for_other.account_enabled, "a consent is per client");
    assert!(expired.is_none() && stranger.is_none());
    assert!(!disabled.account_enabled);
}

#[tokio::test]
async fn exchanging_a_code_spends_it_and_starts_its_token_session_and_a_replay_names_that_session() {
    let (store, _dir) = store().await;
    let owner = user("spend-code@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    let at = now();
    let (hash, issued) = code(&app.id, &owner, browser.id, at);
    let sid = SessionId::new_random();

    let (session, token) = code_session(&issued, sid, at + Duration::seconds(1));
    let exchanged = store.exchange_code(&hash, &issued, &session, &token, &owner).await.unwrap();
    let (second, second_token) = code_session(&issued, SessionId::new_random(), at + Duration::seconds(1));
    let again = store.exchange_code(&hash, &issued, &second, &second_token, &owner).await.unwrap();
    let replay = store.spend_code(&hash, &issued, at + Duration::seconds(2)).await.unwrap();

    assert!(exchanged);
    assert!(!again, "a code is exchanged once");
    let stored = store.session(sid).await.unwrap().unwrap();
    assert_eq!(
        (stored.client_id, stored.browser_session_id, stored.ip, stored.expires_at, stored.scope.to_string()),
        (Some(app.id.clone()), Some(browser.id), session.ip, session.expires_at, "email openid".to_owned())
    );
    assert_eq!(store.refresh_token(&token.hash).await.unwrap().unwrap().session_id, sid);
    assert!(store.session(second.id).await.unwrap().is_none() && store.refresh_token(&second_token.hash).await.unwrap().is_none());
    assert_eq!(replay, CodeSpending::Replayed { client_id: app.id.clone(), user_id: owner.id, token_session: Some(sid) });
}

#[tokio::test]
async fn no_token_session_starts_for_a_code_spent_expired_or_whose_browser_signed_out() {
    let (store, _dir) = store().await;
    let owner = user("code-session@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    let at = now();
    let ((spent_hash, spent), (late_hash, late), (orphan_hash, orphan)) =
        (code(&app.id, &owner, browser.id, at), code(&app.id, &owner, browser.id, at), code(&app.id, &owner, browser.id, at));

    store.spend_code(&spent_hash, &spent, at).await.unwrap();
    let (spent_session, token) = code_session(&spent, SessionId::new_random(), at);
    let after_spending = store.exchange_code(&spent_hash, &spent, &spent_session, &token, &owner).await.unwrap();

    let (late_session, token) = code_session(&late, SessionId::new_random(), late.expires_at);
    let expired = store.exchange_code(&late_hash, &late, &late_session, &token, &owner).await.unwrap();

    store.end_browser_sessions(BrowserSessionScope::One(owner.id, browser.id), at, 0).await.unwrap();
    let (orphan_session, token) = code_session(&orphan, SessionId::new_random(), at);
    let after_sign_out = store.exchange_code(&orphan_hash, &orphan, &orphan_session, &token, &owner).await.unwrap();

    assert!(!after_spending, "a code spent before starts nothing");
    assert!(!expired, "a code starts nothing once expired");
    assert!(!after_sign_out, "no session through a signed-out browser");
    for session in [spent_session, late_session, orphan_session] {
        assert!(store.session(session.id).await.unwrap().is_none());
    }
    assert_eq!(store.spend_code(&late_hash, &late, at).await.unwrap(), CodeSpending::Spent, "a refused exchange spends nothing");
}

#[tokio::test]
async fn no_token_session_starts_for_a_code_whose_account_changed_since_it_was_read() {
    let (store, _dir) = store().await;
    let owner = user("code-account@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    let at = now();
    let (hash, issued) = code(&app.id, &owner, browser.id, at);
    store.update_admin_fields(owner.id, None, Some(&Roles::parse(&["auditor"]).unwrap()), at).await.unwrap();
    let (session, token) = code_session(&issued, SessionId::new_random(), at);

    let started = store.exchange_code(&hash, &issued, &session, &token, &owner).await.unwrap();

    assert!(!started, "the roles changed after `owner` was read");
    assert!(store.session(session.id).await.unwrap().is_none());
    let current = store.user_by_id(owner.id).await.unwrap().unwrap();
    assert!(store.exchange_code(&hash, &issued, &session, &token, &current).await.unwrap(), "a refused exchange leaves the code unspent");
}

#[tokio::test]
async fn a_code_is_exchanged_exactly_once_however_many_race() {
    let (store, _dir) = store().await;
    let owner = user("spend-race@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    let (hash, issued) = code(&app.id, &owner, browser.id, now());

    let attempts = (0..8).map(|_| {
        let store = store.clone();
        let (owner, issued) = (owner.clone(), issued.clone());
        tokio::spawn(async move {
            let (session, token) = code_session(&issued, SessionId::new_random(), now());
            store.exchange_code(&hash, &issued, &session, &token, &owner).await.unwrap()
        })
    });
    let mut spent = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        spent += usize::from(attempt.await.unwrap());
    }

    assert_eq!(spent, 1);
    assert!(matches!(store.spend_code(&hash, &issued, now()).await.unwrap(), CodeSpending::Replayed { token_session: Some(_), .. }));
}

#[tokio::test]
async fn the_first_shared_secret_stored_is_the_one_every_instance_reads() {
    let (store, _dir) = store().await;

    let first = store.shared_secret(&[1; 32], now()).await.unwrap();
    let racing = (0..4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.shared_secret(&[i + 2; 32], now()).await.unwrap() })
    });
    let mut later = Vec::new();
    for one in racing.collect::<Vec<_>>() {
        later.push(one.await.unwrap());
    }

    assert_eq!(first, vec![1; 32]);
    assert!(later.iter().all(|secret| *secret == first), "{later:?}");
}

#[tokio::test]
async fn of_many_exchanges_at_once_one_that_breaks_a_unique_rule_fails_alone() {
    let (store, _dir) = store().await;
    let owner = user("group-commit@example.com", None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    let taken = SessionId::new_random();

    // Eight codes at once; two of them would start a session with the same id (a clash).
    let attempts = (0..8).map(|i| {
        let (store, owner) = (store.clone(), owner.clone());
        let (hash, issued) = code(&app.id, &owner, browser.id, now());
        let id = if i < 2 { taken } else { SessionId::new_random() };
        tokio::spawn(async move {
            let (session, token) = code_session(&issued, id, now());
            store.exchange_code(&hash, &issued, &session, &token, &owner).await.unwrap()
        })
    });
    let mut started = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        started += usize::from(attempt.await.unwrap());
    }

    assert_eq!(started, 7, "only the second session with the same id is refused");
    assert_eq!(store.live_sessions(owner.id, now()).await.unwrap().len(), 7);
}
