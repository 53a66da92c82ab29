use crate::helpers::{PASSWORD, claims_of, header_of, problem, spawn_app, spawn_app_with, unique_email};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn register_returns_the_user_and_a_fresh_token_pair() {
    let app = spawn_app().await;
    let email = unique_email();

    let res = app.post_json("/v1/auth/register", &json!({ "email": email, "password": PASSWORD, "username": "Alice" })).await;

    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["email"], email);
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["user"]["roles"], json!([]));
    assert!(body["user"].get("password_hash").is_none());
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], body["user"]["id"]);
    assert_eq!(claims["fresh"], true);
    assert_eq!(claims["client_id"], "tessera");
}

#[tokio::test]
async fn access_tokens_carry_every_claim_of_the_contract() {
    let app = spawn_app().await;
    let body = app.register(&unique_email()).await;
    let token = body["access_token"].as_str().unwrap();

    let header = header_of(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    let claims = claims_of(token);
    assert_eq!(claims["iss"], "http://tessera.test");
    assert_eq!(claims["aud"], "http://tessera.test");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(claims["scope"], "");
    assert!(claims["jti"].is_string() && claims["sid"].is_string());
    assert_eq!(claims["roles"], json!([]));
}

#[tokio::test]
async fn registering_a_taken_email_in_another_case_is_a_conflict() {
    let app = spawn_app().await;
    app.register("alice@example.com").await;

    let res = app.post_json("/v1/auth/register", &json!({ "email": "  ALICE@example.com ", "password": PASSWORD })).await;

    problem(res, StatusCode::CONFLICT, "email_taken").await;
}

#[tokio::test]
async fn registering_a_taken_username_in_another_case_is_a_conflict() {
    let app = spawn_app().await;
    let first = json!({ "email": unique_email(), "password": PASSWORD, "username": "Alice" });
    assert_eq!(app.post_json("/v1/auth/register", &first).await.status(), StatusCode::CREATED);

    let second = json!({ "email": unique_email(), "password": PASSWORD, "username": "ALICE" });
    problem(app.post_json("/v1/auth/register", &second).await, StatusCode::CONFLICT, "username_taken").await;
}

#[tokio::test]
async fn weak_passwords_are_refused_with_a_helpful_detail() {
    let app = spawn_app().await;
    for weak in ["password123", "qwertyuiop", "short", "bob@example.com"] {
        let res = app.post_json("/v1/auth/register", &json!({ "email": "bob@example.com", "password": weak })).await;
        let body = problem(res, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
        assert!(body["detail"].as_str().unwrap().contains("password"), "{weak}: {body}");
    }
}

#[tokio::test]
async fn invalid_emails_and_usernames_fail_validation() {
    let app = spawn_app().await;
    let bad_email = json!({ "email": "not-an-email", "password": PASSWORD });
    problem(app.post_json("/v1/auth/register", &bad_email).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let bad_name = json!({ "email": unique_email(), "password": PASSWORD, "username": "no spaces" });
    problem(app.post_json("/v1/auth/register", &bad_name).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let missing = json!({ "email": unique_email() });
    problem(app.post_json("/v1/auth/register", &missing).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn login_works_by_email_in_any_case_and_by_username() {
    let app = spawn_app().await;
    let reg = json!({ "email": "Carol@Example.com", "password": PASSWORD, "username": "carol" });
    assert_eq!(app.post_json("/v1/auth/register", &reg).await.status(), StatusCode::CREATED);

    let by_email = app.post_json("/v1/auth/login", &json!({ "email": "carol@EXAMPLE.com", "password": PASSWORD })).await;
    assert_eq!(by_email.status(), StatusCode::OK);
    let body: serde_json::Value = by_email.json().await.unwrap();
    assert_eq!(claims_of(body["access_token"].as_str().unwrap())["fresh"], true);
    assert_eq!(body["user"]["email"], "Carol@Example.com");

    let by_name = app.post_json("/v1/auth/login", &json!({ "username": "CAROL", "password": PASSWORD })).await;
    assert_eq!(by_name.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("dave@example.com").await;

    let wrong = app.post_json("/v1/auth/login", &json!({ "email": "dave@example.com", "password": "not the password" })).await;
    let unknown = app.post_json("/v1/auth/login", &json!({ "email": "nobody@example.com", "password": PASSWORD })).await;

    let a = problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let b = problem(unknown, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(a["detail"], b["detail"]);
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_issues_a_token_that_is_not_fresh() {
    let app = spawn_app().await;
    let reg = app.register(&unique_email()).await;
    let first = reg["refresh_token"].as_str().unwrap();

    let res = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": first })).await;

    assert_eq!(res.status(), StatusCode::OK);
    let body: serde_json::Value = res.json().await.unwrap();
    let second = body["refresh_token"].as_str().unwrap();
    assert_ne!(first, second);
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["fresh"], false);
    assert_eq!(claims["sid"], claims_of(reg["access_token"].as_str().unwrap())["sid"]);
    let again = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": second })).await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_whole_session() {
    let app = spawn_app().await;
    let reg = app.register(&unique_email()).await;
    let stolen = reg["refresh_token"].as_str().unwrap().to_owned();
    let rotated: serde_json::Value = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": stolen })).await.json().await.unwrap();

    let reuse = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": stolen })).await;

    problem(reuse, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let successor = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": rotated["refresh_token"] })).await;
    problem(successor, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let me = app.get_with("/v1/users/me", rotated["access_token"].as_str().unwrap()).await;
    problem(me, StatusCode::UNAUTHORIZED, "token_revoked").await;
}

#[tokio::test]
async fn within_the_reuse_grace_a_racing_refresh_gets_its_own_token_once() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = "10s".parse().unwrap()).await;
    let reg = app.register(&unique_email()).await;
    let original = reg["refresh_token"].as_str().unwrap().to_owned();
    let a: serde_json::Value = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": original })).await.json().await.unwrap();

    let racing = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": original })).await;

    assert_eq!(racing.status(), StatusCode::OK);
    let b: serde_json::Value = racing.json().await.unwrap();
    for token in [&a["refresh_token"], &b["refresh_token"]] {
        let res = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": token })).await;
        assert_eq!(res.status(), StatusCode::OK, "each token handed out in the race works once");
    }
}

#[tokio::test]
async fn after_the_reuse_grace_a_rotated_token_revokes_the_session() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = "10s".parse().unwrap()).await;
    let reg = app.register(&unique_email()).await;
    let original = reg["refresh_token"].as_str().unwrap().to_owned();
    let a: serde_json::Value = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": original })).await.json().await.unwrap();
    app.advance(Duration::from_secs(11));

    let late = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": original })).await;

    problem(late, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let successor = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": a["refresh_token"] })).await;
    problem(successor, StatusCode::UNAUTHORIZED, "token_revoked").await;
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = spawn_app().await;
    let res = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": "tsr_not-a-real-token" })).await;
    problem(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn refresh_tokens_expire_after_their_ttl() {
    let app = spawn_app_with(|c| c.refresh_token_ttl = "1h".parse().unwrap()).await;
    let reg = app.register(&unique_email()).await;
    app.advance(Duration::from_secs(3601));

    let res = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": reg["refresh_token"] })).await;

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn access_tokens_expire_after_their_ttl_plus_leeway() {
    let app = spawn_app().await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    app.advance(Duration::from_secs(900 + 3));
    assert_eq!(app.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK, "within the 5 s leeway");
    app.advance(Duration::from_secs(3));

    let res = app.get_with("/v1/auth/verify", &token).await;
    let www = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    problem(res, StatusCode::UNAUTHORIZED, "token_expired").await;
    assert!(www.starts_with("Bearer") && www.contains(r#"error="invalid_token""#), "{www}");
}

#[tokio::test]
async fn verify_returns_the_claims_of_a_valid_token() {
    let app = spawn_app().await;
    let reg = app.register(&unique_email()).await;
    let token = reg["access_token"].as_str().unwrap();

    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let res = app.request(method, "/v1/auth/verify").bearer_auth(token).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["claims"]["sub"], reg["user"]["id"]);
    }
}

#[tokio::test]
async fn logout_revokes_the_access_token_and_its_session() {
    let app = spawn_app().await;
    let reg = app.register(&unique_email()).await;
    let token = reg["access_token"].as_str().unwrap();

    let res = app.send_with(reqwest::Method::POST, "/v1/auth/logout", token, None).await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(app.get_with("/v1/auth/verify", token).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let refresh = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": reg["refresh_token"] })).await;
    problem(refresh, StatusCode::UNAUTHORIZED, "token_revoked").await;
}

#[tokio::test]
async fn logout_all_revokes_every_session_but_later_logins_work() {
    let app = spawn_app().await;
    let email = unique_email();
    let first = app.register(&email).await;
    let second = app.login(&email).await;

    let res = app.send_with(reqwest::Method::POST, "/v1/auth/logout-all", first["access_token"].as_str().unwrap(), None).await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for tokens in [&first, &second] {
        problem(app.get_with("/v1/auth/verify", tokens["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED, "token_revoked")
            .await;
        let refresh = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": tokens["refresh_token"] })).await;
        assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    }
    let later = app.login(&email).await;
    let res = app.get_with("/v1/auth/verify", later["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::OK, "a token issued after the cut-off is not caught by it");
}

#[tokio::test]
async fn fifty_simultaneous_registrations_of_one_email_make_one_account() {
    let app = spawn_app().await;
    let email = unique_email();
    let attempts = (0..50).map(|_| {
        let client = app.client.clone();
        let url = app.url("/v1/auth/register");
        let body = json!({ "email": email, "password": PASSWORD });
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status() })
    });

    let statuses: Vec<StatusCode> = futures_join(attempts).await;

    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 49, "{statuses:?}");
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn within_the_reuse_grace_a_rotated_token_works_once_more_and_then_is_reuse() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = "10s".parse().unwrap()).await;
    let reg = app.register(&unique_email()).await;
    let original = reg["refresh_token"].as_str().unwrap().to_owned();
    let first = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": original })).await;
    let second = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": original })).await;
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));

    let third = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": original })).await;

    problem(third, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let chain: serde_json::Value = second.json().await.unwrap();
    let parallel = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": chain["refresh_token"] })).await;
    problem(parallel, StatusCode::UNAUTHORIZED, "token_revoked").await;
}

/// Keeps every core busy until dropped, so racing requests interleave the way they do on a
/// loaded machine.
struct BusyCores(std::sync::Arc<std::sync::atomic::AtomicBool>, Vec<std::thread::JoinHandle<()>>);

impl BusyCores {
    fn start() -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cores = 2 * std::thread::available_parallelism().map_or(2, usize::from);
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let deadline = std::time::Instant::now() + Duration::from_secs(60);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        BusyCores(stop, threads)
    }
}

impl Drop for BusyCores {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.1.drain(..) {
            let _ = thread.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_refreshes_of_one_token_have_exactly_one_winner_under_cpu_contention_forty_times() {
    let app = spawn_app_with(|c| c.rate_limit_per_ip = 0).await;
    let busy = BusyCores::start();
    for round in 0..40 {
        let reg = app.register(&unique_email()).await;
        let token = reg["refresh_token"].as_str().unwrap().to_owned();
        let racers: Vec<_> = (0..20)
            .map(|_| {
                let (client, url, token) = (app.client.clone(), app.url("/v1/auth/refresh"), token.clone());
                tokio::spawn(async move { client.post(url).json(&json!({ "refresh_token": token })).send().await.unwrap().status() })
            })
            .collect();
        let statuses = futures_join(racers.into_iter()).await;

        let winners = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(winners, 1, "round {round}: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED), "round {round}: {statuses:?}");
    }
    drop(busy);
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_max_age_however_often_it_is_refreshed() {
    let app = spawn_app_with(|c| {
        c.session_max_age = "2h".parse().unwrap();
        c.refresh_token_ttl = "1h".parse().unwrap();
    })
    .await;
    let mut refresh = app.register(&unique_email()).await["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        app.advance(Duration::from_secs(35 * 60));
        let res = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": refresh })).await;
        assert_eq!(res.status(), StatusCode::OK);
        refresh = res.json::<serde_json::Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_owned();
    }

    app.advance(Duration::from_secs(16 * 60));
    let res = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": refresh })).await;

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "2 h 01 min after sign-in the session is over");
}

#[tokio::test]
async fn raising_the_argon2_cost_rehashes_a_password_at_its_next_sign_in() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let stored = |app: &crate::helpers::TestApp| {
        let (tessera, email) = (app.tessera.clone(), email.clone());
        async move {
            let email = tessera::domain::Email::parse(&email).unwrap();
            tessera.store().user_by_email(&email).await.unwrap().unwrap().password_hash.as_str().to_owned()
        }
    };
    assert!(stored(&app).await.contains("m=1024,t=1,p=1"));

    let stronger = crate::helpers::spawn_beside(&app, |c| c.argon2.memory_kib = 2048).await;
    stronger.login(&email).await;

    assert!(stored(&stronger).await.contains("m=2048,t=1,p=1"), "re-hashed under the new cost");
    stronger.login(&email).await;
}
