use crate::helpers::{claims_of, problem, spawn_app, spawn_app_with, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

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
    assert_eq!(res.headers()["content-type"], OPENMETRICS);
    let text = res.text().await.unwrap();
    for expected in [
        r#"tessera_http_requests_total{route="/v1/auth/login",method="POST",status="200"} 1"#,
        r#"tessera_logins_total{outcome="success"} 1"#,
        r#"tessera_logins_total{outcome="invalid_credentials"} 1"#,
        r#"tessera_logins_total{outcome="locked"} 1"#,
        r#"tessera_rate_limited_total{limit="login"} 1"#,
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
    assert_eq!(failed["detail"], "invalid_credentials by email");
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

/// Parses an exposition with Debian's `python3-prometheus-client` (`.ci/run` installs it):
/// `module` is `prometheus_client.parser` (classic text format) or
/// `prometheus_client.openmetrics.parser`. Returns `[{name, type, samples: [[name, labels,
/// value]]}]`; panics with the parser's message when it refuses the text.
fn parse_with_prometheus_client(module: &str, text: &str) -> Vec<Value> {
    let script = format!(
        "import json, sys\n\
         from {module} import text_string_to_metric_families\n\
         families = [{{'name': f.name, 'type': f.type, 'samples': [[s.name, s.labels, repr(float(s.value))] for s in f.samples]}}\n\
                     for f in text_string_to_metric_families(sys.stdin.read())]\n\
         print(json.dumps(families))\n"
    );
    // Debian's interpreter, which has Debian's modules, whatever `python3` the PATH finds first.
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 runs (install Debian's python3-prometheus-client)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{module} refuses the exposition:\n{}\n{text}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Metrics with a little of everything counted.
async fn busy_metrics_app() -> crate::helpers::TestApp {
    let app = spawn_app().await;
    let email = crate::helpers::unique_email();
    app.register(&email).await;
    app.login(&email).await;
    app.post_json("/v1/auth/login", &serde_json::json!({ "email": email, "password": "wrong password" })).await;
    app
}

fn family<'a>(families: &'a [Value], name: &str) -> &'a Value {
    families.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("no family {name} in {families:#?}"))
}

#[tokio::test]
async fn metrics_are_openmetrics_that_a_strict_parser_reads() {
    let app = busy_metrics_app().await;
    // Prometheus's own Accept header.
    let accept = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,\
                  text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    for res in [app.get("/metrics").await, app.request(Method::GET, "/metrics").header("accept", accept).send().await.unwrap()] {
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], OPENMETRICS);
        let text = res.text().await.unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");

        let families = parse_with_prometheus_client("prometheus_client.openmetrics.parser", &text);

        let requests = family(&families, "tessera_http_requests");
        assert_eq!(requests["type"], "counter");
        assert!(requests["samples"].as_array().unwrap().iter().any(|s| s[0] == "tessera_http_requests_total"
            && s[1]["route"] == "/v1/auth/login"
            && s[1]["status"] == "200"
            && s[2] == "1.0"));
        assert_eq!(family(&families, "tessera_http_request_duration_seconds")["type"], "histogram");
        assert_eq!(family(&families, "tessera_signing_keys")["type"], "gauge");
    }
}

#[tokio::test]
async fn metrics_are_the_classic_text_format_when_only_text_plain_is_accepted() {
    let app = busy_metrics_app().await;
    let res = app.request(Method::GET, "/metrics").header("accept", "text/plain;version=0.0.4").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], CLASSIC);
    let text = res.text().await.unwrap();
    assert!(!text.contains("# EOF") && !text.contains("# UNIT") && !text.contains("_created"), "{text}");

    let families = parse_with_prometheus_client("prometheus_client.parser", &text);

    // A counter's samples belong to its family: with OpenMetrics' `# TYPE x counter` over
    // `x_total` samples, a classic parser sees an empty counter and stray untyped samples.
    for f in &families {
        assert_ne!(f["type"], "untyped", "a sample outside its family: {f}");
        assert_ne!(f["type"], "unknown", "a sample outside its family: {f}");
        assert!(!f["samples"].as_array().unwrap().is_empty() || f["type"] != "counter", "a counter without samples: {f}");
    }
    let logins = family(&families, "tessera_logins");
    assert_eq!(logins["type"], "counter");
    let outcomes: Vec<(&str, &str)> =
        logins["samples"].as_array().unwrap().iter().map(|s| (s[1]["outcome"].as_str().unwrap(), s[2].as_str().unwrap())).collect();
    assert!(outcomes.contains(&("success", "1.0")) && outcomes.contains(&("invalid_credentials", "1.0")), "{outcomes:?}");
    let latency = family(&families, "tessera_http_request_duration_seconds");
    assert_eq!(latency["type"], "histogram");
    assert!(
        latency["samples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s[0] == "tessera_http_request_duration_seconds_bucket" && s[1]["le"] == "+Inf")
    );
    assert_eq!(family(&families, "tessera_password_hash_queue_depth")["type"], "gauge");
}

#[tokio::test]
async fn with_a_metrics_token_metrics_need_that_bearer_token() {
    let app = spawn_app_with(|c| c.metrics_token = Some(secrecy::SecretString::from("scrape-me-9f2c"))).await;

    problem(app.get("/metrics").await, StatusCode::UNAUTHORIZED, "missing_token").await;
    problem(app.get_with("/metrics", "scrape-me-9f2").await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let basic = app.request(Method::GET, "/metrics").basic_auth("scrape-me-9f2c", None::<&str>).send().await.unwrap();
    problem(basic, StatusCode::UNAUTHORIZED, "missing_token").await;
    // An access token is not the metrics token, even an admin's.
    let admin = app.admin_token().await;
    let refused = problem(app.get_with("/metrics", &admin).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert!(!refused.to_string().contains("scrape-me"), "{refused}");

    let res = app.get_with("/metrics", "scrape-me-9f2c").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("tessera_http_requests_total"));
    // Other operations stay open.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
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
        assert_eq!(
            meta["scopes_supported"],
            json!(["openid", "profile", "email", "offline_access"]),
            "{path}: OpenID Connect's scopes, and clients' own are not published"
        );
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
