//! `GET /v1/revocations`: what a service verifying tokens locally follows.

use crate::clients::create_client;
use crate::helpers::{TestApp, claims_of, problem, spawn_app, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn reader(app: &TestApp) -> (String, String) {
    let admin = app.admin_token().await;
    let c = create_client(app, &admin, json!({ "name": "verifier" })).await;
    (c["client_id"].as_str().unwrap().to_owned(), c["client_secret"].as_str().unwrap().to_owned())
}

async fn feed(app: &TestApp, who: &(String, String), query: &str) -> Value {
    let res = app.request(Method::GET, &format!("/v1/revocations{query}")).basic_auth(&who.0, Some(&who.1)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn logouts_appear_in_the_feed_by_token_session_and_subject() {
    let app = spawn_app().await;
    let who = reader(&app).await;
    let start = feed(&app, &who, "").await;
    let cursor = start["cursor"].as_str().unwrap().to_owned();
    let email = unique_email();
    let first = app.register(&email).await;
    let first_claims = claims_of(first["access_token"].as_str().unwrap());

    app.send_with(Method::POST, "/v1/auth/logout", first["access_token"].as_str().unwrap(), None).await;
    let page = feed(&app, &who, &format!("?since={cursor}")).await;

    assert_eq!(page["tokens"], json!([{ "jti": first_claims["jti"], "exp": first_claims["exp"] }]));
    assert_eq!(page["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(page["sessions"][0]["sid"], first_claims["sid"]);
    assert!(page["sessions"][0]["exp"].as_i64().unwrap() >= first_claims["exp"].as_i64().unwrap());
    assert_eq!(page["subjects"], json!([]));
    let next = page["cursor"].as_str().unwrap().to_owned();
    assert_ne!(next, cursor);

    let second = app.login(&email).await;
    let before = claims_of(second["access_token"].as_str().unwrap());
    app.send_with(Method::POST, "/v1/auth/logout-all", second["access_token"].as_str().unwrap(), None).await;
    let after = app.login(&email).await;
    let after = claims_of(after["access_token"].as_str().unwrap());
    let page = feed(&app, &who, &format!("?since={next}")).await;

    let subject = &page["subjects"][0];
    assert_eq!(subject["sub"], before["sub"]);
    let not_before = subject["not_before"].as_i64().unwrap();
    assert_eq!(subject["exp"], not_before + 900 + 5, "the cut-off says how long it matters: one token lifetime and the leeway");
    assert!(before["iat"].as_i64().unwrap() < not_before, "a token issued before the cut-off is caught");
    assert!(after["iat"].as_i64().unwrap() >= not_before, "a token issued after the cut-off is not");
    let everything = feed(&app, &who, "").await;
    assert_eq!(everything["tokens"].as_array().unwrap().len(), 1, "without since: every live revocation");
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_something_is_revoked() {
    let app = spawn_app().await;
    let who = reader(&app).await;
    let cursor = feed(&app, &who, "").await["cursor"].as_str().unwrap().to_owned();
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let started = Instant::now();

    let query = format!("?since={cursor}&wait=10");
    let (page, _) = tokio::join!(feed(&app, &who, &query), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.send_with(Method::POST, "/v1/auth/logout", &token, None).await
    });

    assert_eq!(page["tokens"].as_array().unwrap().len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let drained = feed(&app, &who, &format!("?since={}", page["cursor"].as_str().unwrap())).await;
    let quiet = Instant::now();
    let empty = feed(&app, &who, &format!("?since={}&wait=1", drained["cursor"].as_str().unwrap())).await;
    assert_eq!(empty["tokens"], json!([]));
    assert!(quiet.elapsed() >= Duration::from_millis(900), "waited only {:?}", quiet.elapsed());
}

#[tokio::test]
async fn the_feed_needs_a_client_or_an_admin_and_a_valid_cursor() {
    let app = spawn_app().await;
    let who = reader(&app).await;
    problem(app.get("/v1/revocations").await, StatusCode::UNAUTHORIZED, "missing_token").await;
    let user = app.register(&unique_email()).await;
    problem(app.get_with("/v1/revocations", user["access_token"].as_str().unwrap()).await, StatusCode::FORBIDDEN, "forbidden").await;
    let admin = app.admin_token().await;
    assert_eq!(app.get_with("/v1/revocations", &admin).await.status(), StatusCode::OK);
    let wrong = app.request(Method::GET, "/v1/revocations").basic_auth(&who.0, Some("tcs_wrong")).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let bad = app.request(Method::GET, "/v1/revocations?since=abc").basic_auth(&who.0, Some(&who.1)).send().await.unwrap();
    problem(bad, StatusCode::BAD_REQUEST, "invalid_cursor").await;
}

/// A client-credentials token (no session: only its `jti` can revoke it), revoked through
/// RFC 7009; returns the token and its `exp`.
async fn revoked_client_token(app: &TestApp, who: &(String, String)) -> (String, i64) {
    let res = app
        .request(Method::POST, "/oauth2/token")
        .basic_auth(&who.0, Some(&who.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let res = app
        .request(Method::POST, "/oauth2/revoke")
        .basic_auth(&who.0, Some(&who.1))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let exp = claims_of(&token)["exp"].as_i64().unwrap();
    (token, exp)
}

#[tokio::test]
async fn a_token_revoked_by_jti_stays_refused_through_the_clock_leeway_after_its_exp() {
    let app = spawn_app().await;
    let who = reader(&app).await;
    let (token, exp) = revoked_client_token(&app, &who).await;
    problem(app.get_with("/v1/auth/verify", &token).await, StatusCode::UNAUTHORIZED, "token_revoked").await;

    // Past exp, inside the 5 s leeway: the token itself would still pass.
    let now = app.tessera.clock_now().unix_timestamp();
    app.advance(Duration::from_secs((exp - now + 3) as u64));
    app.tessera.sync_revocations().await.unwrap();

    problem(app.get_with("/v1/auth/verify", &token).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
}

#[tokio::test]
async fn the_feed_serves_a_revoked_token_until_a_minute_after_its_exp_also_on_a_first_full_read() {
    let app = spawn_app().await;
    let who = reader(&app).await;
    let (token, exp) = revoked_client_token(&app, &who).await;
    let jti = claims_of(&token)["jti"].clone();
    let listed = |page: &Value| page["tokens"].as_array().unwrap().iter().any(|t| t["jti"] == jti);

    // A verifier with a 60 s leeway restarts 30 s after exp: its first read has no `since`.
    let now = app.tessera.clock_now().unix_timestamp();
    app.advance(Duration::from_secs((exp - now + 30) as u64));
    app.tessera.store().prune(app.tessera.clock_now()).await.unwrap();
    assert!(listed(&feed(&app, &who, "").await), "dropped while a verifier's leeway still accepts the token");

    app.advance(Duration::from_secs(31));
    app.tessera.store().prune(app.tessera.clock_now()).await.unwrap();
    assert!(!listed(&feed(&app, &who, "").await), "kept past every verifier's leeway");
}
