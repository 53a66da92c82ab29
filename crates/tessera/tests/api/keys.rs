use crate::helpers::{claims_of, header_of, problem, spawn_app, spawn_app_with, spawn_beside, unique_email};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tessera::domain::keys::KeyStatus;

async fn jwks(app: &crate::helpers::TestApp) -> JwkSet {
    let res = app.get("/.well-known/jwks.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// Checks the signature with the published key, as a verifier in another service would.
fn verify_with_jwks(token: &str, set: &JwkSet) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = set.find(header.kid.as_deref().unwrap()).expect("the token's kid is published");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["http://tessera.test"]);
    validation.set_issuer(&["http://tessera.test"]);
    decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).expect("signature verifies").claims
}

/// Checks a token as tessera-verify does (it reads RFC 9864 names jsonwebtoken does not).
async fn verify_with_tessera_verify(app: &crate::helpers::TestApp, token: &str) -> tessera_verify::Claims {
    let set: tessera_verify::JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let now = app.tessera.clock_now().unix_timestamp();
    tessera_verify::KeySet::from_jwks(&set).verify(token, &tessera_verify::Expected::new("http://tessera.test"), now).expect("verifies")
}

async fn keys_of(app: &crate::helpers::TestApp, admin: &str) -> Vec<Value> {
    let listed: Value = app.get_with("/v1/keys", admin).await.json().await.unwrap();
    listed["keys"].as_array().unwrap().clone()
}

fn with_status<'a>(keys: &'a [Value], status: &str) -> Vec<&'a Value> {
    keys.iter().filter(|k| k["status"] == status).collect()
}

#[tokio::test]
async fn every_asymmetric_algorithm_issues_tokens_that_verify_against_the_jwks() {
    for alg in ["ES256", "RS256", "Ed25519", "EdDSA"] {
        let app = spawn_app_with(|c| c.signing_alg = alg.parse().unwrap()).await;
        let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

        assert_eq!(header_of(&token)["alg"], alg);
        let published: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
        let published = published["keys"].as_array().unwrap();
        assert_eq!(published.len(), 2, "{alg}: the active and the next key are published");
        assert!(published.iter().all(|k| k["alg"] == alg), "{alg}: the JWKS names the algorithm exactly");
        if alg != "Ed25519" {
            // jsonwebtoken (Rust) knows only the EdDSA name.
            let claims = verify_with_jwks(&token, &jwks(&app).await);
            assert_eq!(claims["iss"], "http://tessera.test");
        }
        assert_eq!(verify_with_tessera_verify(&app, &token).await.iss, "http://tessera.test", "{alg}");
        assert_eq!(app.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK, "{alg}");
    }
}

#[tokio::test]
async fn an_ed25519_key_does_not_verify_tokens_that_call_themselves_eddsa() {
    use base64::Engine;
    let app = spawn_app_with(|c| c.signing_alg = "Ed25519".parse().unwrap()).await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let mut header = header_of(&token);
    header["alg"] = "EdDSA".into();
    let renamed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
    let relabelled = format!("{renamed}.{}", token.split_once('.').unwrap().1);

    problem(app.get_with("/v1/auth/verify", &relabelled).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn hs256_publishes_no_keys_and_signs_with_the_shared_secret() {
    let secret = "an-hs256-secret-that-is-at-least-32-bytes-long";
    let app = spawn_app_with(|c| {
        c.signing_alg = "HS256".parse().unwrap();
        c.hs256_secret = Some(secret.to_owned().into());
    })
    .await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    let body: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(body, json!({ "keys": [] }));
    let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["http://tessera.test"]);
    decode::<Value>(&token, &DecodingKey::from_secret(secret.as_bytes()), &validation).expect("verifies with the secret");
    assert_eq!(app.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn keys_list_shows_the_active_and_next_key() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let body: Value = app.get_with("/v1/keys", &admin).await.json().await.unwrap();

    let keys = body["keys"].as_array().unwrap();
    let statuses: Vec<&str> = keys.iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&"active") && statuses.contains(&"next"));
    assert!(keys.iter().all(|k| k["alg"] == "ES256" && k["kid"].is_string() && k["created_at"].is_string()));
    let active_kid = keys.iter().find(|k| k["status"] == "active").unwrap()["kid"].clone();
    assert_eq!(header_of(&admin)["kid"], active_kid);
}

#[tokio::test]
async fn rotation_activates_the_published_next_key_and_old_tokens_keep_working() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let before = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let keys: Value = app.get_with("/v1/keys", &admin).await.json().await.unwrap();
    let next_kid = keys["keys"].as_array().unwrap().iter().find(|k| k["status"] == "next").unwrap()["kid"].clone();

    let res = app.send_with(Method::POST, "/v1/keys/rotate", &admin, None).await;

    assert_eq!(res.status(), StatusCode::CREATED);
    let rotated: Value = res.json().await.unwrap();
    assert_eq!(rotated["kid"], next_kid, "the key verifiers already had becomes active");
    assert_eq!(rotated["alg"], "ES256");
    let after = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&after)["kid"], next_kid);
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 3, "retiring, active and a new next key");
    verify_with_jwks(&before, &set);
    verify_with_jwks(&after, &set);
    assert_eq!(app.get_with("/v1/auth/verify", &before).await.status(), StatusCode::OK);
    let listed: Value = app.get_with("/v1/keys", &admin).await.json().await.unwrap();
    let statuses: Vec<&str> = listed["keys"].as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "retiring").count(), 1);
}

#[tokio::test]
async fn a_retired_key_leaves_the_jwks_once_its_tokens_have_expired() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let old_kid = header_of(&admin)["kid"].as_str().unwrap().to_owned();
    app.send_with(Method::POST, "/v1/keys/rotate", &admin, None).await;
    assert!(jwks(&app).await.find(&old_kid).is_some());

    app.advance(Duration::from_secs(900 + 6));
    app.tessera.reload_keys().await.unwrap();

    assert!(jwks(&app).await.find(&old_kid).is_none());
    assert_eq!(app.get_with("/v1/auth/verify", &admin).await.status(), StatusCode::UNAUTHORIZED);
}

/// Waits (real time) for the rotation job to act on the moved clock.
async fn until_signing_with(app: &crate::helpers::TestApp, alg: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    loop {
        let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
        if header_of(&token)["alg"] == alg || std::time::Instant::now() > deadline {
            return token;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_algorithm_change_publishes_the_new_key_before_it_signs_with_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let es256_kid = header_of(&admin)["kid"].clone();

    let res = app.send_with(Method::POST, "/v1/keys/rotate", &admin, Some(&json!({ "alg": "RS256" }))).await;

    assert_eq!(res.status(), StatusCode::CREATED);
    let rotated: Value = res.json().await.unwrap();
    assert_eq!((&rotated["alg"], &rotated["status"]), (&json!("RS256"), &json!("next")));
    assert!(rotated["active_from"].is_string(), "{rotated}");
    let rs256_kid = rotated["kid"].clone();
    let keys = keys_of(&app, &admin).await;
    assert_eq!(with_status(&keys, "active")[0]["kid"], es256_kid, "the published ES256 key keeps signing");
    assert_eq!(with_status(&keys, "next")[0]["kid"], rs256_kid);
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&token)["kid"], es256_kid);
    assert!(jwks(&app).await.find(rs256_kid.as_str().unwrap()).is_some(), "the new key is published at once");

    // Rotating again before the new key has been published long enough changes nothing.
    let again: Value = app.send_with(Method::POST, "/v1/keys/rotate", &admin, None).await.json().await.unwrap();
    assert_eq!((&again["kid"], &again["status"]), (&rs256_kid, &json!("next")));
    // (The test clock is the system clock plus what the test adds: a few seconds of margin.)
    app.advance(Duration::from_secs(295));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(header_of(app.register(&unique_email()).await["access_token"].as_str().unwrap())["alg"], "ES256");

    // Once it has been in the JWKS for the cache lifetime, it signs by itself.
    app.advance(Duration::from_secs(5));
    let rs256 = until_signing_with(&app, "RS256").await;

    assert_eq!(header_of(&rs256)["kid"], rs256_kid, "the key that was published is the one that signs");
    let keys = keys_of(&app, &admin).await;
    assert_eq!(with_status(&keys, "retiring")[0]["kid"], es256_kid, "the old key stays published for its tokens");
    assert_eq!(with_status(&keys, "next")[0]["alg"], "RS256");
    verify_with_jwks(&rs256, &jwks(&app).await);
    verify_with_jwks(&token, &jwks(&app).await);
    assert_eq!(app.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK, "ES256 tokens still verify");
    let bad = app.send_with(Method::POST, "/v1/keys/rotate", &admin, Some(&json!({ "alg": "none" }))).await;
    problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn asking_for_the_active_algorithm_again_cancels_a_pending_change() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.send_with(Method::POST, "/v1/keys/rotate", &admin, Some(&json!({ "alg": "Ed25519" }))).await;

    let res = app.send_with(Method::POST, "/v1/keys/rotate", &admin, Some(&json!({ "alg": "ES256" }))).await;

    let body: Value = res.json().await.unwrap();
    assert_eq!((&body["alg"], &body["status"]), (&json!("ES256"), &json!("next")));
    assert!(body.get("active_from").is_none());
    app.advance(Duration::from_secs(600));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let keys = keys_of(&app, &admin).await;
    assert!(keys.iter().all(|k| k["alg"] == "ES256"), "{keys:?}");
    assert_eq!(with_status(&keys, "active")[0]["kid"], header_of(&admin)["kid"]);
}

#[tokio::test]
async fn switching_to_or_from_hs256_is_immediate_as_it_publishes_nothing() {
    let app = spawn_app_with(|c| c.hs256_secret = Some("an-hs256-secret-that-is-at-least-32-bytes-long".to_owned().into())).await;
    let admin = app.admin_token().await;

    let to: Value = app.send_with(Method::POST, "/v1/keys/rotate", &admin, Some(&json!({ "alg": "HS256" }))).await.json().await.unwrap();
    assert_eq!((&to["alg"], &to["status"]), (&json!("HS256"), &json!("active")));
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&token)["alg"], "HS256");

    let back: Value = app.send_with(Method::POST, "/v1/keys/rotate", &admin, Some(&json!({ "alg": "ES256" }))).await.json().await.unwrap();
    assert_eq!((&back["alg"], &back["status"]), (&json!("ES256"), &json!("active")));
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&token)["kid"], back["kid"]);
    verify_with_jwks(&token, &jwks(&app).await);
}

#[tokio::test]
async fn scheduled_rotation_happens_when_due_not_an_interval_later() {
    let app = spawn_app_with(|c| c.key_rotation_interval = Some("1h".parse().unwrap())).await;
    let active = || app.tessera.list_keys().unwrap().into_iter().find(|k| k.status == KeyStatus::Active).unwrap().kid;

    // Twice: each rotation is due one interval after the previous one, and happens then.
    for _ in 0..2 {
        let before = active();
        // (The test clock is the system clock plus what the test adds: a few seconds of margin.)
        app.advance(Duration::from_secs(3590));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(active(), before, "not before it is due");

        app.advance(Duration::from_secs(10));
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while active() == before && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_ne!(active(), before, "rotated when due");
    }
}

#[tokio::test]
async fn keys_persist_across_restarts() {
    let app = spawn_app().await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    let again = spawn_beside(&app, |_| {}).await;

    assert_eq!(again.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK);
    assert_eq!(jwks(&again).await.keys.len(), 2);
}

#[tokio::test]
async fn with_a_master_key_private_keys_are_sealed_and_need_that_key_to_open() {
    let master = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
    let app = spawn_app_with(|c| c.master_key = Some(tessera::domain::keys::MasterKey::parse_base64(master).unwrap().into())).await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    let same = spawn_beside(&app, |_| {}).await;
    assert_eq!(same.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK);
    let mut without = app.config.clone();
    without.master_key = None;
    let refused = tessera::startup::Application::build(&without, std::sync::Arc::new(app.clock.clone())).await;
    assert!(refused.is_err(), "sealed keys cannot be used without the master key");
}

#[tokio::test]
async fn a_changed_signing_alg_in_the_configuration_is_published_before_it_signs_after_a_restart() {
    let app = spawn_app().await;
    let es256 = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    let restarted = spawn_beside(&app, |c| c.signing_alg = "RS256".parse().unwrap()).await;

    let still = restarted.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header_of(&still)["alg"], "ES256", "no token is signed with a key verifiers have not seen");
    let published: Value = restarted.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert!(published["keys"].as_array().unwrap().iter().any(|k| k["alg"] == "RS256"));
    restarted.advance(Duration::from_secs(300));
    let rs256 = until_signing_with(&restarted, "RS256").await;
    assert_eq!(header_of(&rs256)["alg"], "RS256");
    assert_eq!(restarted.get_with("/v1/auth/verify", &es256).await.status(), StatusCode::OK);
    assert_eq!(claims_of(&rs256)["iss"], "http://tessera.test");
    verify_with_jwks(&rs256, &jwks(&restarted).await);
}

#[tokio::test]
async fn a_key_rotation_is_audited_with_the_admin_who_asked_for_it() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = crate::helpers::claims_of(&admin)["sub"].as_str().unwrap().to_owned();

    let rotated: serde_json::Value = app.send_with(reqwest::Method::POST, "/v1/keys/rotate", &admin, None).await.json().await.unwrap();

    let trail: serde_json::Value = app.get_with("/v1/audit?limit=20", &admin).await.json().await.unwrap();
    let event = trail["events"].as_array().unwrap().iter().find(|e| e["kind"] == "key.rotated").unwrap().clone();
    assert_eq!(event["actor"], admin_id.as_str());
    assert_eq!(event["subject"], rotated["kid"]);
}
