//! Authorization codes: spent once, exchanged once, and a replay that names what the code
//! started.

use super::*;

/// A new store with a person signed in to a browser, and an application to issue codes to.
struct SignedIn {
    store: DynStore,
    _dir: tempfile::TempDir,
    owner: User,
    app: Client,
    browser: BrowserSession,
}

async fn signed_in(email: &str) -> SignedIn {
    let (store, _dir) = store().await;
    let owner = user(email, None);
    store.insert_user(&owner).await.unwrap();
    let app = client("app", now());
    store.insert_client(&app).await.unwrap();
    let browser = browser_session(&owner, now());
    store.insert_browser_session(&browser).await.unwrap();
    SignedIn { store, _dir, owner, app, browser }
}

#[tokio::test]
async fn a_code_refused_before_any_exchange_is_spent_once_and_then_replayed() {
    let SignedIn { store, _dir, owner, app, browser } = signed_in("code@example.com").await;
    let at = now();
    let (hash, issued) = code(&app.id, &owner, browser.id, at);

    let first = store.spend_code(&hash, &issued, at + Duration::seconds(1)).await.unwrap();
    let second = store.spend_code(&hash, &issued, at + Duration::seconds(2)).await.unwrap();
    let (session, token) = code_session(&issued, SessionId::new_random(), at + Duration::seconds(3));
    let exchanged = store.exchange_code(&hash, &issued, &session, &token, &owner, false).await.unwrap();

    assert_eq!(first, CodeSpending::Spent);
    assert_eq!(second, CodeSpending::Replayed { client_id: app.id.clone(), user_id: owner.id, token_session: None });
    assert!(!exchanged, "a spent code starts nothing");
}

#[tokio::test]
async fn a_code_is_spent_exactly_once_however_many_race() {
    let SignedIn { store, _dir, owner, app, browser } = signed_in("code-race@example.com").await;
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
async fn exchanging_a_code_spends_it_and_starts_its_token_session_and_a_replay_names_that_session() {
    let SignedIn { store, _dir, owner, app, browser } = signed_in("spend-code@example.com").await;
    let at = now();
    let (hash, issued) = code(&app.id, &owner, browser.id, at);
    let sid = SessionId::new_random();

    let (session, token) = code_session(&issued, sid, at + Duration::seconds(1));
    let exchanged = store.exchange_code(&hash, &issued, &session, &token, &owner, false).await.unwrap();
    let (second, second_token) = code_session(&issued, SessionId::new_random(), at + Duration::seconds(1));
    let again = store.exchange_code(&hash, &issued, &second, &second_token, &owner, false).await.unwrap();
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
    let SignedIn { store, _dir, owner, app, browser } = signed_in("code-session@example.com").await;
    let at = now();
    let ((spent_hash, spent), (late_hash, late), (orphan_hash, orphan)) =
        (code(&app.id, &owner, browser.id, at), code(&app.id, &owner, browser.id, at), code(&app.id, &owner, browser.id, at));

    store.spend_code(&spent_hash, &spent, at).await.unwrap();
    let (spent_session, token) = code_session(&spent, SessionId::new_random(), at);
    let after_spending = store.exchange_code(&spent_hash, &spent, &spent_session, &token, &owner, false).await.unwrap();

    let (late_session, token) = code_session(&late, SessionId::new_random(), late.expires_at);
    let expired = store.exchange_code(&late_hash, &late, &late_session, &token, &owner, false).await.unwrap();

    store.end_browser_sessions(BrowserSessionScope::One(owner.id, browser.id), at, 0).await.unwrap();
    let (orphan_session, token) = code_session(&orphan, SessionId::new_random(), at);
    let after_sign_out = store.exchange_code(&orphan_hash, &orphan, &orphan_session, &token, &owner, false).await.unwrap();

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
    let SignedIn { store, _dir, owner, app, browser } = signed_in("code-account@example.com").await;
    let at = now();
    let (hash, issued) = code(&app.id, &owner, browser.id, at);
    store.update_admin_fields(owner.id, None, Some(&Roles::parse(&["auditor"]).unwrap()), at).await.unwrap();
    let (session, token) = code_session(&issued, SessionId::new_random(), at);

    let started = store.exchange_code(&hash, &issued, &session, &token, &owner, false).await.unwrap();

    assert!(!started, "the roles changed after `owner` was read");
    assert!(store.session(session.id).await.unwrap().is_none());
    let current = store.user_by_id(owner.id).await.unwrap().unwrap();
    assert!(
        store.exchange_code(&hash, &issued, &session, &token, &current, false).await.unwrap(),
        "a refused exchange leaves the code unspent"
    );
}

#[tokio::test]
async fn a_code_is_exchanged_exactly_once_however_many_race() {
    let SignedIn { store, _dir, owner, app, browser } = signed_in("spend-race@example.com").await;
    let (hash, issued) = code(&app.id, &owner, browser.id, now());

    let attempts = (0..8).map(|_| {
        let store = store.clone();
        let (owner, issued) = (owner.clone(), issued.clone());
        tokio::spawn(async move {
            let (session, token) = code_session(&issued, SessionId::new_random(), now());
            store.exchange_code(&hash, &issued, &session, &token, &owner, false).await.unwrap()
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
async fn of_many_exchanges_at_once_one_that_breaks_a_unique_rule_fails_alone() {
    let SignedIn { store, _dir, owner, app, browser } = signed_in("group-commit@example.com").await;
    let taken = SessionId::new_random();

    // Eight codes at once; two of them would start a session with the same id (a clash).
    let attempts = (0..8).map(|i| {
        let (store, owner) = (store.clone(), owner.clone());
        let (hash, issued) = code(&app.id, &owner, browser.id, now());
        let id = if i < 2 { taken } else { SessionId::new_random() };
        tokio::spawn(async move {
            let (session, token) = code_session(&issued, id, now());
            store.exchange_code(&hash, &issued, &session, &token, &owner, false).await.unwrap()
        })
    });
    let mut started = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        started += usize::from(attempt.await.unwrap());
    }

    assert_eq!(started, 7, "only the second session with the same id is refused");
    assert_eq!(store.live_sessions(owner.id, now()).await.unwrap().len(), 7);
}

#[tokio::test]
async fn no_token_session_starts_for_a_code_whose_consent_was_withdrawn() {
    let SignedIn { store, _dir, owner, app, browser } = signed_in("code-consent@example.com").await;
    let at = now();
    let consent = Consent { user_id: owner.id, client_id: app.id.clone(), scopes: Scopes::parse(&["openid"]).unwrap(), granted_at: at };
    let exchange = |(hash, issued): (TokenHash, AuthorizationCode), consent_required: bool| {
        let (store, owner) = (store.clone(), owner.clone());
        async move {
            let (session, token) = code_session(&issued, SessionId::new_random(), now());
            store.exchange_code(&hash, &issued, &session, &token, &owner, consent_required).await.unwrap()
        }
    };
    let (before, during, after) =
        (code(&app.id, &owner, browser.id, at), code(&app.id, &owner, browser.id, at), code(&app.id, &owner, browser.id, at));

    assert!(!exchange(before.clone(), true).await, "no consent given yet");
    store.upsert_consent(&consent).await.unwrap();
    assert!(exchange(during, true).await, "while the consent stands");
    assert!(store.delete_consent(owner.id, &app.id).await.unwrap());
    assert!(!exchange(after.clone(), true).await, "the consent was withdrawn");
    assert!(exchange(after, false).await, "a first-party client needs no consent, and a refused exchange spent nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_exchange_racing_a_withdrawal_starts_a_session_after_it() {
    let SignedIn { store, _dir, owner, app, browser } = signed_in("code-withdraw-race@example.com").await;
    let consent = Consent { user_id: owner.id, client_id: app.id.clone(), scopes: Scopes::parse(&["openid"]).unwrap(), granted_at: now() };
    store.upsert_consent(&consent).await.unwrap();

    // Exchanges spread over a few milliseconds, the withdrawal in their midst.
    let exchanges: Vec<_> = (0..32u64)
        .map(|i| {
            let (store, owner) = (store.clone(), owner.clone());
            let (hash, issued) = code(&app.id, &owner, browser.id, now());
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(i)).await;
                let (session, token) = code_session(&issued, SessionId::new_random(), now());
                store.exchange_code(&hash, &issued, &session, &token, &owner, true).await.unwrap()
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(16)).await;
    assert!(store.delete_consent(owner.id, &app.id).await.unwrap());
    // What a withdrawal reads after deleting the consent, to end it.
    let seen_by_the_withdrawal = store.live_sessions(owner.id, now()).await.unwrap().len();
    let mut started = 0;
    for exchange in exchanges {
        started += usize::from(exchange.await.unwrap());
    }

    assert_eq!(store.live_sessions(owner.id, now()).await.unwrap().len(), seen_by_the_withdrawal, "none started after the withdrawal");
    assert_eq!(started, seen_by_the_withdrawal);
}
