//! The `Verifier` against a small fake Tessera on 127.0.0.1: discovery, JWKS refetch limits,
//! the revocation feed follower, introspection.
#![cfg(feature = "client")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{ISSUER, TestKey, jwks};
use tessera_verify::{ClientCredentials, FixedClock, SystemClock, Verifier, VerifyError};
use tokio::sync::Notify;

/// What the fake serves and what it has seen.
#[derive(Default)]
struct Fake {
    jwks: Mutex<Value>,
    jwks_hits: AtomicU64,
    feed: Mutex<Vec<Value>>,
    subjects: Mutex<Vec<Value>>,
    feed_hits: AtomicU64,
    feed_fails: std::sync::atomic::AtomicBool,
    news: Notify,
    introspection: Mutex<Value>,
    introspect_hits: AtomicUsize,
}

struct Server {
    base: String,
    fake: Arc<Fake>,
}

/// Moves tokio's clock forward by `by` at once, then lets it run on in real time. Only
/// called while no request is in flight: paused time would otherwise fire the HTTP client's
/// timers while it waits on a real socket.
async fn skip(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

async fn spawn_fake(keys: &[&TestKey]) -> Server {
    let fake = Arc::new(Fake::default());
    *fake.jwks.lock().unwrap() = serde_json::to_value(jwks(keys)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(|| async {
                Json(json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/.well-known/jwks.json"),
                    "introspection_endpoint": format!("{ISSUER}/oauth2/introspect")}))
            }),
        )
        .route(
            "/.well-known/jwks.json",
            get(|State(f): State<Arc<Fake>>| async move {
                f.jwks_hits.fetch_add(1, Ordering::SeqCst);
                Json(f.jwks.lock().unwrap().clone())
            }),
        )
        .route("/v1/revocations", get(feed))
        .route(
            "/oauth2/introspect",
            post(|State(f): State<Arc<Fake>>| async move {
                f.introspect_hits.fetch_add(1, Ordering::SeqCst);
                Json(f.introspection.lock().unwrap().clone())
            }),
        )
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server { base, fake }
}

/// A feed whose cursor is the number of entries; `wait` long-polls on `news`.
async fn feed(State(f): State<Arc<Fake>>, Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    f.feed_hits.fetch_add(1, Ordering::SeqCst);
    if f.feed_fails.load(Ordering::SeqCst) {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let since: usize = q.get("since").map_or(0, |s| s.parse().unwrap());
    let wait: u64 = q.get("wait").map_or(0, |s| s.parse().unwrap());
    if f.feed.lock().unwrap().len() <= since && wait > 0 {
        let _ = tokio::time::timeout(Duration::from_secs(wait), f.news.notified()).await;
    }
    let entries = f.feed.lock().unwrap().clone();
    let tokens: Vec<Value> = entries.iter().skip(since).cloned().collect();
    let subjects: Vec<Value> = if since == 0 { f.subjects.lock().unwrap().clone() } else { vec![] };
    Json(json!({"cursor": entries.len().to_string(), "tokens": tokens, "sessions": [], "subjects": subjects})).into_response()
}

fn now() -> i64 {
    use tessera_verify::Clock;
    SystemClock.now()
}

#[tokio::test]
async fn a_verifier_discovers_the_keys_and_accepts_their_tokens() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let verifier = Verifier::builder(ISSUER).fetch_from(&server.base).build().await.unwrap();
    let claims = verifier.verify(&key.token(now())).await.unwrap();
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(verifier.stats().jwks_fetches, 1);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_refetches_the_jwks_at_most_once_per_interval() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let interval = Duration::from_millis(400);
    let verifier = Verifier::builder(ISSUER).fetch_from(&server.base).refetch_interval(interval).build().await.unwrap();
    // One interval since the first fetch, without waiting for it; the clock runs on afterwards.
    skip(interval).await;
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..200 {
        let bogus = TestKey::es256(&format!("bogus-{i}"));
        if verifier.verify(&bogus.token(now())).await == Err(VerifyError::UnknownKey) {
            refused += 1;
        }
    }
    let elapsed = started.elapsed();
    let allowed = 1 + 1 + (elapsed.as_millis() / interval.as_millis()) as u64;
    let fetched = server.fake.jwks_hits.load(Ordering::SeqCst);
    assert_eq!(refused, 200);
    assert!(fetched <= allowed, "{fetched} fetches in {elapsed:?}, at most {allowed} allowed");
    assert_eq!(verifier.stats().jwks_fetches, fetched);
}

#[tokio::test]
async fn a_new_key_is_found_by_refetching_on_its_unknown_kid() {
    let old = TestKey::es256("old");
    let server = spawn_fake(&[&old]).await;
    let verifier = Verifier::builder(ISSUER).fetch_from(&server.base).refetch_interval(Duration::ZERO).build().await.unwrap();
    let new = TestKey::es256("new");
    *server.fake.jwks.lock().unwrap() = serde_json::to_value(jwks(&[&old, &new])).unwrap();
    assert!(verifier.verify(&new.token(now())).await.is_ok());
    assert!(verifier.verify(&old.token(now())).await.is_ok());
}

#[tokio::test]
async fn a_revoked_token_is_refused_as_soon_as_the_feed_lists_it() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let verifier =
        Verifier::builder(ISSUER).fetch_from(&server.base).revocation_feed(ClientCredentials::new("svc_x", "tcs_y")).build().await.unwrap();
    let token = key.token(now());
    let claims = verifier.verify(&token).await.unwrap();
    // Let the follower park in its long poll first.
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.fake.feed_hits.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let revoked_at = Instant::now();
    server.fake.feed.lock().unwrap().push(json!({"jti": claims.jti, "exp": claims.exp}));
    server.fake.news.notify_waiters();
    let deadline = revoked_at + Duration::from_secs(2);
    let mut outcome = verifier.verify(&token).await;
    while outcome.is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        outcome = verifier.verify(&token).await;
    }
    assert_eq!(outcome, Err(VerifyError::Revoked), "refused after {:?}", revoked_at.elapsed());
    assert_eq!(VerifyError::Revoked.code(), "token_revoked");
    assert!(verifier.verify(&key.token(now())).await.is_ok(), "other tokens still pass");
}

#[tokio::test]
async fn tokens_are_unverifiable_once_the_feed_has_been_silent_too_long() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let verifier = Verifier::builder(ISSUER)
        .fetch_from(&server.base)
        .revocation_feed(ClientCredentials::new("svc_x", "tcs_y"))
        .feed_wait(Duration::from_secs(1))
        .max_feed_staleness(Some(Duration::from_millis(300)))
        .build()
        .await
        .unwrap();
    server.fake.feed_fails.store(true, Ordering::SeqCst);
    server.fake.news.notify_waiters();
    let token = key.token(now());
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut outcome = verifier.verify(&token).await;
    while outcome.is_ok() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        outcome = verifier.verify(&token).await;
    }
    assert!(matches!(outcome, Err(VerifyError::Unavailable(_))), "{outcome:?}");

    // The follower retries with back-off and recovers by itself.
    server.fake.feed_fails.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while verifier.verify(&token).await.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn dropping_the_verifier_stops_its_follower() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let verifier =
        Verifier::builder(ISSUER).fetch_from(&server.base).revocation_feed(ClientCredentials::new("svc_x", "tcs_y")).build().await.unwrap();
    let clone = verifier.clone();
    drop(verifier);
    assert!(clone.verify(&key.token(now())).await.is_ok(), "a clone keeps it alive");
    drop(clone);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let hits = server.fake.feed_hits.load(Ordering::SeqCst);
    // A news burst would wake a live follower into another poll.
    server.fake.feed.lock().unwrap().push(json!({"jti": "x", "exp": now() + 60}));
    server.fake.news.notify_waiters();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.fake.feed_hits.load(Ordering::SeqCst), hits);
}

#[tokio::test]
async fn shutdown_stops_the_follower_and_waits_for_it() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let verifier =
        Verifier::builder(ISSUER).fetch_from(&server.base).revocation_feed(ClientCredentials::new("svc_x", "tcs_y")).build().await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), verifier.shutdown()).await.expect("shutdown is prompt");
}

#[tokio::test]
async fn introspection_answers_are_cached_briefly_and_checked() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let token = key.token(now());
    let mut answer: Value = support::claims(now());
    answer["active"] = true.into();
    answer["token_type"] = "Bearer".into();
    *server.fake.introspection.lock().unwrap() = answer;
    let verifier = Verifier::introspecting(ISSUER, ClientCredentials::new("svc_x", "tcs_y"))
        .fetch_from(&server.base)
        .introspection_cache_ttl(Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(server.fake.introspect_hits.load(Ordering::SeqCst), 1, "the second answer came from the cache");

    *server.fake.introspection.lock().unwrap() = json!({"active": false});
    skip(Duration::from_millis(250)).await;
    assert_eq!(verifier.verify(&token).await, Err(VerifyError::Inactive));
    assert_eq!(verifier.stats().introspections, 2);
    assert_eq!(verifier.stats().jwks_fetches, 0, "introspection mode needs no keys");
}

#[tokio::test]
async fn a_verifier_refuses_discovery_for_another_issuer() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let built = Verifier::builder("http://other.test").fetch_from(&server.base).build().await;
    assert!(matches!(built, Err(VerifyError::Config(_))));
}

#[tokio::test]
async fn a_verifier_does_not_start_when_tessera_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let built = Verifier::builder(ISSUER).fetch_from(base).build().await;
    assert!(matches!(built, Err(VerifyError::Unavailable(_))));
}

#[tokio::test]
async fn a_subject_cut_off_outlives_max_token_lifetime_when_its_exp_says_so() {
    // Tessera issues 2-hour tokens; the verifier keeps its default 1 h max_token_lifetime.
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let issued = support::NOW;
    let token = key.token_with(issued, |c| c["exp"] = json!(issued + 7200));
    let cut_off = issued + 10;
    server.fake.subjects.lock().unwrap().push(json!({"sub": "user-1", "not_before": cut_off, "exp": cut_off + 7200 + 5}));
    // A verifier started an hour and a half later: past not_before + 1 h, before the token's exp.
    let verifier = Verifier::builder(ISSUER)
        .fetch_from(&server.base)
        .revocation_feed(ClientCredentials::new("svc_x", "tcs_y"))
        .clock(Arc::new(FixedClock(issued + 5400)))
        .build()
        .await
        .unwrap();

    assert_eq!(verifier.verify(&token).await, Err(VerifyError::Revoked), "the disabled person's token verifies again");
}

#[tokio::test]
async fn a_restarted_verifier_sees_a_revocation_whose_exp_is_within_its_leeway() {
    let key = TestKey::es256("k1");
    let server = spawn_fake(&[&key]).await;
    let issued = support::NOW;
    let token = key.token(issued);
    let claims: Value = serde_json::from_slice(&base64_url(token.split('.').nth(1).unwrap())).unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    // Tessera serves entries until exp + 60 s; the verifier reads the whole feed at start-up
    // 30 s after exp, inside its 60 s leeway, where the token itself still passes.
    server.fake.feed.lock().unwrap().push(json!({"jti": claims["jti"], "exp": exp}));
    let verifier = Verifier::builder(ISSUER)
        .fetch_from(&server.base)
        .revocation_feed(ClientCredentials::new("svc_x", "tcs_y"))
        .leeway(Duration::from_secs(60))
        .clock(Arc::new(FixedClock(exp + 30)))
        .build()
        .await
        .unwrap();

    assert_eq!(verifier.verify(&token).await, Err(VerifyError::Revoked));
    assert!(verifier.verify(&key.token(issued + 1)).await.is_ok(), "an unrevoked token of the same age passes the leeway");
}

#[tokio::test]
async fn ed25519_and_eddsa_tokens_verify_with_keys_published_under_their_own_name() {
    for name in ["Ed25519", "EdDSA"] {
        let key = TestKey::ed25519("ed", name);
        let server = spawn_fake(&[]).await;
        *server.fake.jwks.lock().unwrap() = json!({"keys": [key.jwk.clone()]});
        let verifier = Verifier::builder(ISSUER).fetch_from(&server.base).build().await.unwrap();

        assert!(verifier.verify(&key.token(now())).await.is_ok(), "{name}");
        let other = if name == "Ed25519" { "EdDSA" } else { "Ed25519" };
        let relabelled = key.token_named(now(), other);
        assert_eq!(verifier.verify(&relabelled).await, Err(VerifyError::WrongAlgorithm), "{name} key, {other} token");
    }
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap()
}
