//! Several instances on one database: what one does, the others see.

use crate::helpers::{fresh_database_url, header_of, spawn_app_on, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Polls until `check` holds, for at most `limit`; returns how long it took.
async fn within<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() <= limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn two_instances_serve_one_set_of_people_and_share_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let (a, b) = tokio::join!(spawn_app_on(&url, |_| {}), spawn_app_on(&url, |_| {}));
    let email = unique_email();

    a.register(&email).await;
    let login = b.login(&email).await;
    let refreshed: Value = a.post_json("/v1/auth/refresh", &json!({ "refresh_token": login["refresh_token"] })).await.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(a.get_with("/v1/users/me", &access).await.status(), StatusCode::OK);
    assert_eq!(b.send_with(Method::POST, "/v1/auth/logout", &access, None).await.status(), StatusCode::NO_CONTENT);

    let took =
        within(Duration::from_secs(2), || async { a.get_with("/v1/users/me", &access).await.status() == StatusCode::UNAUTHORIZED }).await;
    assert!(took.is_some(), "instance A still accepts a token revoked on B after 2 s");
    println!("revocation reached the other instance in {:?}", took.unwrap());
}

#[tokio::test]
async fn a_key_rotated_on_one_instance_verifies_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let a = spawn_app_on(&url, |_| {}).await;
    let b = spawn_app_on(&url, |_| {}).await;
    let admin = a.admin_token().await;
    let before: Value = a.get("/.well-known/jwks.json").await.json().await.unwrap();
    let before_b: Value = b.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(before, before_b, "both instances publish the same keys");

    let rotated: Value = a.send_with(Method::POST, "/v1/keys/rotate", &admin, None).await.json().await.unwrap();
    let token = a.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    assert_eq!(header_of(&token)["kid"], rotated["kid"]);
    assert_eq!(b.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK, "B already held the next key");
    assert_eq!(b.get_with("/v1/auth/verify", &admin).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn instances_starting_together_on_an_empty_database_agree_on_one_active_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;

    let (a, b, c) = tokio::join!(spawn_app_on(&url, |_| {}), spawn_app_on(&url, |_| {}), spawn_app_on(&url, |_| {}));

    let admin = a.admin_token().await;
    let keys: Value = c.get_with("/v1/keys", &admin).await.json().await.unwrap();
    let active = keys["keys"].as_array().unwrap().iter().filter(|k| k["status"] == "active").count();
    assert_eq!(active, 1);
    assert_eq!(b.get_with("/v1/auth/verify", &admin).await.status(), StatusCode::OK);
}
