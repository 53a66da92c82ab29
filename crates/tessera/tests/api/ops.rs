use crate::helpers::{claims_of, spawn_app, spawn_app_with, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn the_root_names_the_service_and_its_version() {
    let app = spawn_app().await;
    let body: Value = app.get("/").await.json().await.unwrap();
    assert_eq!(body["name"], "tessera");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn health_and_readiness_answer_ok_while_the_database_is_up() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn shutdown_drains_and_returns() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    tokio::time::timeout(std::time::Duration::from_secs(10), app.shutdown()).await.expect("stops within 10 s");
}

#[tokio::test]
async fn metrics_count_requests_logins_tokens_and_limits() {
    let app = crate::helpers::spawn_app_with(|c| c.login_max_failures = 1).await;
    let email = crate::helpers::unique_email();
    app.register(&email).await;
    app.login(&email).await;
    let bad = serde_json::json!({ "email": email, "password": "wrong password" });
    app.post_json("/v1/auth/login", &bad).await;
    app.post_json("/v1/auth/login", &bad).await;

    let res = app.get("/metrics").await;

    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    for expected in [
        r#"tessera_http_requests_total{route="/v1/auth/login",method="POST",status="200"} 1"#,
        r#"tessera_logins_total{outcome="success"} 1"#,
        r#"tessera_logins_total{outcome="invalid_credentials"} 1"#,
        r#"tessera_logins_total{outcome="locked"} 1"#,
        r#"tessera_rate_limited_total{limit="account"} 1"#,
        r#"tessera_tokens_issued_total{grant="password"} 2"#,
        "tessera_http_request_duration_seconds_bucket",
        "tessera_password_hash_queue_depth 0",
        "tessera_password_hash_wait_seconds_count",
        r#"tessera_db_connections{state="idle"}"#,
        r#"tessera_signing_keys{status="active"} 1"#,
        r#"tessera_signing_keys{status="next"} 1"#,
        "tessera_refresh_reuse_detected_total 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_sane_one_is_kept() {
    let app = spawn_app().await;
    let generated = app.get("/healthz").await.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32);
    let kept = app.request(reqwest::Method::GET, "/v1/missing").header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123");
    let insane = app.request(reqwest::Method::GET, "/healthz").header("x-request-id", "a b").send().await.unwrap();
    assert_ne!(insane.headers()["x-request-id"], "a b");
}

#[tokio::test]
async fn the_audit_trail_records_who_did_what_from_where() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let email = crate::helpers::unique_email();
    let user = app.register(&email).await;
    let id = user["user"]["id"].as_str().unwrap().to_owned();
    app.post_json("/v1/auth/login", &serde_json::json!({ "email": email, "password": "wrong password" })).await;
    app.send_with(reqwest::Method::POST, "/v1/auth/logout", user["access_token"].as_str().unwrap(), None).await;
    app.send_with(reqwest::Method::POST, "/v1/clients", &admin, Some(&serde_json::json!({ "name": "audited" }))).await;
    app.send_with(reqwest::Method::POST, "/v1/keys/rotate", &admin, None).await;
    app.send_with(reqwest::Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&serde_json::json!({ "disabled": true }))).await;

    let trail: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();

    let events = trail["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in ["user.registered", "login.succeeded", "login.failed", "logout", "client.created", "key.rotated", "user.disabled"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    assert_eq!(kinds[0], "user.disabled", "newest first");
    let registered = events.iter().find(|e| e["kind"] == "user.registered" && e["subject"] == id.as_str()).unwrap();
    assert_eq!(registered["ip"], "127.0.0.1");
    assert!(registered["at"].as_str().unwrap().ends_with('Z'));
    let failed = events.iter().find(|e| e["kind"] == "login.failed").unwrap();
    assert_eq!(failed["detail"], "invalid_credentials");
    let disabled = &events[0];
    assert_eq!(disabled["subject"], id.as_str());
    assert!(disabled["actor"].is_string());

    let first: Value = app.get_with("/v1/audit?limit=2", &admin).await.json().await.unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app.get_with(&format!("/v1/audit?limit=2&cursor={cursor}"), &admin).await.json().await.unwrap();
    assert_eq!(second["events"][0], events[2]);
    crate::helpers::problem(app.get_with("/v1/audit?cursor=nope", &admin).await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    let someone = app.register(&crate::helpers::unique_email()).await;
    crate::helpers::problem(app.get_with("/v1/audit", someone["access_token"].as_str().unwrap()).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
}

#[tokio::test]
async fn audit_events_older_than_the_retention_are_pruned() {
    let app = crate::helpers::spawn_app_with(|c| c.audit_retention = "30d".parse().unwrap()).await;
    let old = app.register(&crate::helpers::unique_email()).await;
    app.advance(std::time::Duration::from_secs(31 * 86_400));
    let recent = app.register(&crate::helpers::unique_email()).await;

    // What the background job does every ten minutes.
    let pruned = app.tessera.prune_audit(app.config.audit_retention.as_std()).await.unwrap();

    assert!(pruned >= 1, "the old registration is pruned");
    let admin = app.admin_token().await;
    let trail: Value = app.get_with("/v1/audit?limit=1000", &admin).await.json().await.unwrap();
    let subjects: Vec<&str> = trail["events"].as_array().unwrap().iter().filter_map(|e| e["subject"].as_str()).collect();
    assert!(subjects.contains(&recent["user"]["id"].as_str().unwrap()));
    assert!(!subjects.contains(&old["user"]["id"].as_str().unwrap()));
}

#[tokio::test]
async fn discovery_lists_every_published_algorithm_and_neither_private_scopes_nor_an_implicit_flow() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    crate::clients::create_client(&app, &admin, json!({ "name": "private", "scopes": ["payroll:export"] })).await;
    let rotated = app.send_with(Method::POST, "/v1/keys/rotate", &admin, Some(&json!({ "alg": "RS256" }))).await;
    assert_eq!(rotated.status(), StatusCode::CREATED);

    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let meta: Value = app.get(path).await.json().await.unwrap();
        // ES256 signs, RS256 is published as next: middleware must accept both.
        assert_eq!(meta["id_token_signing_alg_values_supported"], json!(["ES256", "RS256"]), "{path}");
        assert_eq!(meta["scopes_supported"], json!([]), "{path}: clients' scopes are not published");
        assert!(!meta["response_types_supported"].as_array().unwrap().contains(&json!("token")), "{path}: there is no implicit flow");
        for required in ["issuer", "token_endpoint", "jwks_uri", "response_types_supported"] {
            assert!(meta.get(required).is_some(), "{path}: RFC 8414 needs {required}");
        }
    }
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_is_kept_exactly_and_urls_under_it_get_no_double_slash() {
    let app = spawn_app_with(|c| c.issuer = "http://tessera.test/".into()).await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    assert_eq!(claims_of(&token)["iss"], "http://tessera.test/");
    let meta: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert_eq!(meta["issuer"], "http://tessera.test/");
    assert_eq!(meta["token_endpoint"], "http://tessera.test/oauth2/token");
    assert_eq!(meta["jwks_uri"], "http://tessera.test/.well-known/jwks.json");
    assert_eq!(app.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_discovery_where_clients_look_for_it() {
    let app = spawn_app_with(|c| c.issuer = "https://tessera.test/auth".into()).await;

    for path in [
        "/auth/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/auth",
        "/auth/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let meta: Value = res.json().await.unwrap();
        assert_eq!(meta["issuer"], "https://tessera.test/auth", "{path}");
        assert_eq!(meta["token_endpoint"], "https://tessera.test/auth/oauth2/token", "{path}");
    }
    assert_eq!(app.get("/other/.well-known/openid-configuration").await.status(), StatusCode::NOT_FOUND);
}
