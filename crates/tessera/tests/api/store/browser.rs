//! Browser sessions (the sign-in cookie) and consents.

use super::*;

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
