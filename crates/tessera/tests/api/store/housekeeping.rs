//! Abuse counters, the audit trail, pruning, and the health of the connection pool.

use super::*;

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
