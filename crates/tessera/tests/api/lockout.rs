//! Failed sign-ins are counted per login name and client address: counted before the hash,
//! so racing guesses cannot slip past the limit; no cross-talk between an account's names;
//! an attack from many addresses slows the account down instead of locking its owner out; and
//! a wrong current password on a password change counts like a failed sign-in.

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app_with, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// An app that believes `X-Forwarded-For` from loopback, so a test can sign in from any address.
async fn behind_a_proxy(max_failures: u32) -> TestApp {
    spawn_app_with(|c| {
        c.login_max_failures = max_failures;
        c.rate_limit_per_ip = 0;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await
}

async fn login_from(app: &TestApp, ip: &str, body: Value) -> reqwest::Response {
    app.request(Method::POST, "/v1/auth/login").header("x-forwarded-for", ip).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn sixty_racing_wrong_passwords_get_exactly_the_limit_of_password_checks() {
    let app = spawn_app_with(|c| {
        c.login_max_failures = 10;
        c.rate_limit_per_ip = 0;
    })
    .await;
    let email = unique_email();
    app.register(&email).await;

    let guesses: Vec<_> = (0..60)
        .map(|i| {
            let (client, url) = (app.client.clone(), app.url("/v1/auth/login"));
            let body = json!({ "email": email, "password": format!("guess number {i}") });
            tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status() })
        })
        .collect();
    let (mut checked, mut limited) = (0, 0);
    for guess in guesses {
        match guess.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }

    assert_eq!((checked, limited), (10, 50), "only the limit's worth of guesses may reach the password check");
    problem(
        app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[tokio::test]
async fn failures_on_the_email_never_change_the_answers_for_the_username() {
    let app = behind_a_proxy(3).await;
    let email = unique_email();
    let username = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let reg = app.post_json("/v1/auth/register", &json!({ "email": email, "password": PASSWORD, "username": username })).await;
    assert_eq!(reg.status(), StatusCode::CREATED);
    for _ in 0..3 {
        let res = login_from(&app, "192.0.2.1", json!({ "email": email, "password": "wrong password" })).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = login_from(&app, "192.0.2.1", json!({ "email": email, "password": PASSWORD })).await;
    problem(locked, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    let by_username_wrong = login_from(&app, "192.0.2.1", json!({ "username": username, "password": "wrong password" })).await;
    let by_username = login_from(&app, "192.0.2.1", json!({ "username": username, "password": PASSWORD })).await;

    problem(by_username_wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(by_username.status(), StatusCode::OK, "the username's answers must not reveal that it owns the locked email");
}

#[tokio::test]
async fn failures_from_one_address_never_lock_the_owner_out_from_another() {
    let app = behind_a_proxy(3).await;
    let email = unique_email();
    app.register(&email).await;
    for _ in 0..5 {
        login_from(&app, "198.51.100.66", json!({ "email": email, "password": "wrong password" })).await;
    }
    let attacker = login_from(&app, "198.51.100.66", json!({ "email": email, "password": PASSWORD })).await;
    problem(attacker, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    let owner = login_from(&app, "203.0.113.5", json!({ "email": email, "password": PASSWORD })).await;

    assert_eq!(owner.status(), StatusCode::OK);
}

#[tokio::test]
async fn failures_spread_over_many_addresses_slow_the_account_down_without_locking_it() {
    let app = behind_a_proxy(3).await;
    let email = unique_email();
    app.register(&email).await;
    let quick = Instant::now();
    assert_eq!(login_from(&app, "203.0.113.5", json!({ "email": email, "password": PASSWORD })).await.status(), StatusCode::OK);
    let unhurried = quick.elapsed();
    for i in 0..8 {
        let res = login_from(&app, &format!("198.51.100.{i}"), json!({ "email": email, "password": "wrong password" })).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "no single address is past its limit");
    }

    let started = Instant::now();
    let owner = login_from(&app, "203.0.113.5", json!({ "email": email, "password": PASSWORD })).await;
    let slowed = started.elapsed();

    assert_eq!(owner.status(), StatusCode::OK, "the owner is slowed down, never locked out");
    assert!(slowed >= Duration::from_millis(1_000), "8 failures against a limit of 3 must cost a pause, took {slowed:?}");
    assert!(slowed < unhurried + Duration::from_secs(6), "the pause is bounded, took {slowed:?}");
    let after = Instant::now();
    assert_eq!(login_from(&app, "203.0.113.5", json!({ "email": email, "password": PASSWORD })).await.status(), StatusCode::OK);
    assert!(after.elapsed() < Duration::from_millis(900), "the owner's success ends the slow-down");
}

#[tokio::test]
async fn wrong_current_passwords_count_as_failed_sign_ins_and_end_in_429() {
    let app = behind_a_proxy(3).await;
    let email = unique_email();
    let token = app.register(&email).await["access_token"].as_str().unwrap().to_owned();
    let change = |current: &str| {
        app.request(Method::PUT, "/v1/users/me/password")
            .bearer_auth(&token)
            .header("x-forwarded-for", "198.51.100.7")
            .json(&json!({ "current_password": current, "new_password": "another horse battery staple" }))
            .send()
    };
    for _ in 0..3 {
        problem(change("wrong password").await.unwrap(), StatusCode::FORBIDDEN, "invalid_credentials").await;
    }

    let with_the_right_one = change(PASSWORD).await.unwrap();

    problem(with_the_right_one, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let login = login_from(&app, "198.51.100.7", json!({ "email": email, "password": PASSWORD })).await;
    problem(login, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let admin = app.admin_token().await;
    let trail: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();
    let failed = trail["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "password.change_failed").count();
    assert_eq!(failed, 3, "each wrong current password is audited");
}

#[tokio::test]
async fn failed_and_locked_sign_ins_name_the_account_in_the_audit_trail() {
    let app = behind_a_proxy(1).await;
    let email = unique_email();
    let id = app.register(&email).await["user"]["id"].as_str().unwrap().to_owned();
    login_from(&app, "198.51.100.8", json!({ "email": email, "password": "wrong password" })).await;
    login_from(&app, "198.51.100.8", json!({ "email": email, "password": "wrong password" })).await;

    let admin = app.admin_token().await;
    let trail: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();

    let events = trail["events"].as_array().unwrap();
    for kind in ["login.failed", "login.locked"] {
        let event = events.iter().find(|e| e["kind"] == kind).unwrap_or_else(|| panic!("no {kind} in {trail}"));
        assert_eq!(event["subject"], id.as_str(), "{kind} names the account");
        assert_eq!(event["ip"], "198.51.100.8");
    }
}
