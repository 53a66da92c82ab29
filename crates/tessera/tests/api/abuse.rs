//! Brute force meets limits: account lockout, per-address limits, the bounded hash queue,
//! and login timing that does not reveal which accounts exist.

use crate::helpers::{PASSWORD, fresh_database_url, problem, spawn_app_on, spawn_app_with, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn login(app: &crate::helpers::TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_json("/v1/auth/login", &json!({ "email": email, "password": password })).await
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_against_the_right_password() {
    let app = spawn_app_with(|c| {
        c.login_max_failures = 3;
        c.login_failure_window = "1m".parse().unwrap();
    })
    .await;
    let email = unique_email();
    app.register(&email).await;
    for _ in 0..3 {
        problem(login(&app, &email, "wrong password").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }

    let locked = login(&app, &email, PASSWORD).await;

    let wait: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    problem(locked, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    app.advance(Duration::from_secs(61));
    assert_eq!(login(&app, &email, PASSWORD).await.status(), StatusCode::OK, "the lock ends with its window");
}

#[tokio::test]
async fn unknown_accounts_lock_the_same_way_so_lockouts_reveal_nothing() {
    let app = spawn_app_with(|c| c.login_max_failures = 2).await;
    let nobody = unique_email();
    for _ in 0..2 {
        problem(login(&app, &nobody, "whatever it is").await, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    problem(login(&app, &nobody, "whatever it is").await, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn a_successful_login_clears_earlier_failures() {
    let app = spawn_app_with(|c| c.login_max_failures = 3).await;
    let email = unique_email();
    app.register(&email).await;
    for _ in 0..2 {
        login(&app, &email, "wrong password").await;
    }
    assert_eq!(login(&app, &email, PASSWORD).await.status(), StatusCode::OK);
    for _ in 0..2 {
        login(&app, &email, "wrong password").await;
    }
    assert_eq!(login(&app, &email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn credential_endpoints_are_limited_per_client_address() {
    let app = spawn_app_with(|c| c.rate_limit_per_ip = 5).await;
    for _ in 0..5 {
        assert_eq!(login(&app, "a@example.com", "x").await.status(), StatusCode::UNAUTHORIZED);
    }

    let limited = login(&app, "a@example.com", "x").await;

    assert!(limited.headers().contains_key("retry-after"));
    problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let token = app.request(Method::POST, "/oauth2/token").form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    assert_eq!(token.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(token.json::<Value>().await.unwrap()["error"], "rate_limited");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "other endpoints are not limited");
}

#[tokio::test]
async fn a_limit_of_zero_turns_the_address_limit_off() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_ip = 0;
        c.login_max_failures = 1_000;
    })
    .await;
    for _ in 0..150 {
        assert_eq!(login(&app, "a@example.com", "x").await.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn instances_share_the_address_counters() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let a = spawn_app_on(&url, |c| c.rate_limit_per_ip = 10).await;
    let b = spawn_app_on(&url, |c| c.rate_limit_per_ip = 10).await;
    // Both clocks to the first second of a minute, so the counting cannot straddle two.
    let to_next_minute = Duration::from_secs(61 - tessera::clock::Clock::now(&a.clock).unix_timestamp().rem_euclid(60).unsigned_abs());
    a.advance(to_next_minute);
    b.advance(to_next_minute);
    for _ in 0..6 {
        assert_eq!(login(&a, "a@example.com", "x").await.status(), StatusCode::UNAUTHORIZED);
    }
    // What the background job does every 500 ms, done here at once: A adds its hits to the
    // store; B, once it has counted a hit of its own, adds it and learns the shared total.
    a.tessera.reconcile_rate_limits().await.unwrap();
    assert_eq!(login(&b, "a@example.com", "x").await.status(), StatusCode::UNAUTHORIZED);
    b.tessera.reconcile_rate_limits().await.unwrap();

    let mut admitted = 1;
    while login(&b, "a@example.com", "x").await.status() == StatusCode::UNAUTHORIZED {
        admitted += 1;
        assert!(admitted <= 10, "B ignores what A counted");
    }
    assert_eq!(admitted, 4, "B admits only what is left of the shared limit");
}

#[tokio::test]
async fn a_full_hash_queue_answers_503_and_other_endpoints_keep_serving() {
    let app = spawn_app_with(|c| {
        c.hash_queue = 1;
        c.rate_limit_per_ip = 0;
        c.argon2.memory_kib = 19_456;
        c.argon2.iterations = 2;
    })
    .await;
    let email = unique_email();
    let token = app.register(&email).await["access_token"].as_str().unwrap().to_owned();

    let flood: Vec<_> = (0..24)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/v1/auth/login"));
            let body = json!({ "email": email, "password": "wrong password" });
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap() })
        })
        .collect();
    let verify_started = Instant::now();
    let verify = app.get_with("/v1/auth/verify", &token).await.status();
    let verify_took = verify_started.elapsed();
    let mut busy = 0;
    for res in flood {
        let res = res.await.unwrap();
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert!(res.headers().contains_key("retry-after"));
            assert_eq!(res.json::<Value>().await.unwrap()["code"], "server_busy");
            busy += 1;
        }
    }

    assert!(busy > 0, "a queue of one must turn some of 24 simultaneous hashes away");
    assert_eq!(verify, StatusCode::OK);
    assert!(verify_took < Duration::from_millis(500), "verify waited {verify_took:?} behind hashing");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn unknown_emails_and_wrong_passwords_take_the_same_time() {
    let app = spawn_app_with(|c| {
        c.rate_limit_per_ip = 0;
        c.login_max_failures = 1_000;
        c.argon2.memory_kib = 19_456;
        c.argon2.iterations = 2;
    })
    .await;
    let email = unique_email();
    app.register(&email).await;
    let (mut known, mut unknown) = (vec![], vec![]);
    // Interleaved, and enough rounds that other tests hashing at the same time move the
    // medians of both sides alike.
    for i in 0..15 {
        let started = Instant::now();
        assert_eq!(login(&app, &email, "wrong password").await.status(), StatusCode::UNAUTHORIZED);
        known.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(login(&app, &format!("nobody{i}@example.com"), "wrong password").await.status(), StatusCode::UNAUTHORIZED);
        unknown.push(started.elapsed());
    }

    let (known, unknown) = (median(known), median(unknown));
    let ratio = known.as_secs_f64() / unknown.as_secs_f64();
    println!("login timing: wrong password {known:?}, unknown email {unknown:?}, ratio {ratio:.2}");
    assert!((0.67..=1.5).contains(&ratio), "wrong password {known:?} vs unknown email {unknown:?}");
}
