//! Token sessions, refresh-token rotation and its grace, and the revocation feed.

use super::*;

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
