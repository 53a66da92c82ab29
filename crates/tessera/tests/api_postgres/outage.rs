//! PostgreSQL goes away and comes back: readiness says so, requests fail fast with 503, and
//! the service recovers by itself.

use crate::helpers::{spawn_app_on, unique_email};
use crate::postgres::{Cluster, fresh_database_on};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_outage_gives_fast_503s_and_the_service_recovers_by_itself() {
    let cluster = Cluster::start();
    let url = fresh_database_on(&cluster.url("postgres")).await;
    let app = spawn_app_on(&url, |c| c.database_timeout = "1s".parse().unwrap()).await;
    let email = unique_email();
    let token = app.register(&email).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    cluster.stop_server();

    let started = Instant::now();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json::<Value>().await.unwrap()["code"], "database_unavailable");
    let login = app.post_json("/v1/auth/login", &json!({ "email": email, "password": crate::helpers::PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(login.headers().contains_key("retry-after"));
    assert_eq!(login.json::<Value>().await.unwrap()["code"], "database_unavailable");
    assert!(started.elapsed() < Duration::from_secs(6), "failing took {:?}", started.elapsed());
    assert_eq!(app.get_with("/v1/auth/verify", &token).await.status(), StatusCode::OK, "verifying needs no database");

    cluster.start_server();

    let started = Instant::now();
    while app.get("/readyz").await.status() != StatusCode::OK {
        assert!(started.elapsed() < Duration::from_secs(15), "not ready again after 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = app.post_json("/v1/auth/login", &json!({ "email": email, "password": crate::helpers::PASSWORD })).await;
    let status = login.status();
    assert_eq!(status, StatusCode::OK, "{}", login.text().await.unwrap());
}
