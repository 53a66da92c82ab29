//! The store conformance suite: the `Store` contract, checked directly on this binary's
//! engine (SQLite in `api`, PostgreSQL in `api_postgres`).

use crate::helpers::{fresh_database_url, test_config};
use tessera::domain::keys::{KeyStatus, Kid, SigningAlg};
use tessera::domain::{Email, PasswordHash, PlainToken, Roles, Session, SessionId, TokenKind, User, UserId, Username};
use tessera::store::{Conflict, DynStore, KeyRotation, RefreshToken, Revocation, SessionScope, StoreError, StoredKey};
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
        username: username.map(|u| Username::parse(u).unwrap()),
        password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        roles: Roles::parse(&["admin"]).unwrap(),
        disabled: false,
        tokens_not_before: 0,
        created_at: now(),
        updated_at: now(),
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

    let ended = store.end_sessions(SessionScope::AllBut(owner.id, keep.id), now(), now().unix_timestamp() + 60).await.unwrap();

    assert_eq!(ended, vec![end.id]);
    let feed = store.revocations_after(head, now(), 100).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].1, Revocation::Session { sid: end.id.to_string(), exp: now().unix_timestamp() + 60 });
    let live = store.live_sessions(owner.id, now()).await.unwrap();
    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), vec![keep.id]);
    assert!(store.end_sessions(SessionScope::One(owner.id, end.id), now(), 0).await.unwrap().is_empty(), "ending twice ends nothing");
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
