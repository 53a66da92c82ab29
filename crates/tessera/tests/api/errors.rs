use crate::helpers::{PASSWORD, problem, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn unknown_routes_are_a_404_problem() {
    let app = spawn_app().await;
    problem(app.get("/v1/nothing-here").await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn unsupported_methods_are_a_405_problem() {
    let app = spawn_app().await;
    let res = app.request(Method::DELETE, "/v1/auth/login").send().await.unwrap();
    problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused_with_413() {
    let app = spawn_app().await;
    let huge = json!({ "email": "a@example.com", "password": "x".repeat(70 * 1024) });
    problem(app.post_json("/v1/auth/register", &huge).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_415_or_400() {
    let app = spawn_app().await;
    let form = app.request(Method::POST, "/v1/auth/login").header("content-type", "text/plain").body("email=a").send().await.unwrap();
    problem(form, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let broken =
        app.request(Method::POST, "/v1/auth/login").header("content-type", "application/json").body("{\"email\":").send().await.unwrap();
    problem(broken, StatusCode::BAD_REQUEST, "malformed_request").await;
}

#[tokio::test]
async fn deeply_nested_json_is_a_client_error_not_a_crash() {
    let app = spawn_app().await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let res = app.request(Method::POST, "/v1/auth/login").header("content-type", "application/json").body(nested).send().await.unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_types_in_a_body_fail_validation() {
    let app = spawn_app().await;
    let res = app.post_json("/v1/auth/login", &json!({ "email": 42, "password": PASSWORD })).await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn login_needs_an_email_or_a_username() {
    let app = spawn_app().await;
    let res = app.post_json("/v1/auth/login", &json!({ "password": PASSWORD })).await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn every_response_says_nosniff() {
    let app = spawn_app().await;
    for path in ["/", "/healthz", "/v1/missing"] {
        assert_eq!(app.get(path).await.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn a_json_body_must_be_an_object() {
    let app = spawn_app().await;
    for body in ["[\"a@example.com\", \"pw\"]", "null", "\"text\""] {
        let res = app.request(Method::POST, "/v1/auth/login").header("content-type", "application/json").body(body).send().await.unwrap();
        problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors_and_options_is_a_405() {
    let app = spawn_app().await;
    let preflight = app
        .request(Method::OPTIONS, "/v1/auth/login")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
    problem(preflight, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn configured_origins_and_only_those_may_call_from_a_browser() {
    let app = crate::helpers::spawn_app_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        app.request(Method::OPTIONS, "/v1/auth/login")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };

    let allowed = preflight("https://app.example").await.unwrap();
    let refused = preflight("https://evil.example").await.unwrap();

    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example");
    assert!(allowed.headers().get("access-control-allow-credentials").is_none(), "no cookies");
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}
