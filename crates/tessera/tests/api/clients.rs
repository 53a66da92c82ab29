use crate::helpers::{TestApp, claims_of, problem, spawn_app, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Creates a client through the admin API; returns the 201 body.
pub async fn create_client(app: &TestApp, admin: &str, body: Value) -> Value {
    let res = app.send_with(Method::POST, "/v1/clients", admin, Some(&body)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json().await.unwrap()
}

#[tokio::test]
async fn admins_create_a_client_and_see_its_secret_only_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let created = create_client(&app, &admin, json!({ "name": "billing", "scopes": ["invoices:read", "invoices:write"] })).await;

    let id = created["client_id"].as_str().unwrap();
    assert!(id.starts_with("svc_"));
    assert!(created["client_secret"].as_str().unwrap().starts_with("tcs_"));
    assert_eq!(created["name"], "billing");
    assert_eq!(created["scopes"], json!(["invoices:read", "invoices:write"]));
    assert_eq!(created["roles"], json!([]));
    assert!(created["created_at"].is_string());
    let one: Value = app.get_with(&format!("/v1/clients/{id}"), &admin).await.json().await.unwrap();
    assert_eq!(one["name"], "billing");
    assert!(one.get("client_secret").is_none());
    let all: Value = app.get_with("/v1/clients", &admin).await.json().await.unwrap();
    let clients = all["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 1);
    assert!(clients[0].get("client_secret").is_none());
}

#[tokio::test]
async fn clients_show_their_audiences_and_default_to_the_configured_one() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let api = create_client(&app, &admin, json!({ "name": "api", "audiences": ["https://notes.example", "https://files.example"] })).await;
    let plain = create_client(&app, &admin, json!({ "name": "plain" })).await;

    let both = json!(["https://notes.example", "https://files.example"]);
    assert_eq!(api["audiences"], both);
    assert_eq!(plain["audiences"], json!(["http://tessera.test"]));
    let one: Value = app.get_with(&format!("/v1/clients/{}", api["client_id"].as_str().unwrap()), &admin).await.json().await.unwrap();
    assert_eq!(one["audiences"], both);
    let all: Value = app.get_with("/v1/clients", &admin).await.json().await.unwrap();
    let listed = all["clients"].as_array().unwrap();
    let of = |c: &Value| listed.iter().find(|l| l["client_id"] == c["client_id"]).unwrap()["audiences"].clone();
    assert_eq!(of(&api), both);
    assert_eq!(of(&plain), json!(["http://tessera.test"]));
}

#[tokio::test]
async fn client_creation_validates_its_input() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for body in [
        json!({ "name": "", "scopes": [] }),
        json!({ "name": "x", "scopes": ["has space"] }),
        json!({ "name": "x", "roles": ["Bad Role"] }),
        json!({ "name": "x", "audiences": ["two words"] }),
        json!({ "name": "x", "audiences": [""] }),
    ] {
        let res = app.send_with(Method::POST, "/v1/clients", &admin, Some(&body)).await;
        problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
}

#[tokio::test]
async fn people_without_the_admin_role_cannot_manage_clients() {
    let app = spawn_app().await;
    let user = app.register(&unique_email()).await;
    let token = user["access_token"].as_str().unwrap();
    let res = app.send_with(Method::POST, "/v1/clients", token, Some(&json!({ "name": "x" }))).await;
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    problem(app.get_with("/v1/clients", token).await, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn unknown_clients_are_not_found() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    problem(app.get_with("/v1/clients/svc_nope", &admin).await, StatusCode::NOT_FOUND, "not_found").await;
    problem(app.send_with(Method::DELETE, "/v1/clients/svc_nope", &admin, None).await, StatusCode::NOT_FOUND, "not_found").await;
    problem(app.send_with(Method::POST, "/v1/clients/svc_nope/secret", &admin, None).await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn rotating_the_secret_makes_the_old_one_stop_working() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "worker", "scopes": ["jobs"] })).await;
    let id = created["client_id"].as_str().unwrap();
    let old = created["client_secret"].as_str().unwrap();

    let res = app.send_with(Method::POST, &format!("/v1/clients/{id}/secret"), &admin, None).await;

    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    assert_eq!(rotated["client_id"], id);
    let new = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new, old);
    let with_old = client_credentials(&app, id, old, None).await;
    assert_eq!(with_old.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(client_credentials(&app, id, new, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn deleting_a_client_stops_its_tokens_everywhere() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "doomed", "scopes": ["a"] })).await;
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    let token: Value = client_credentials(&app, id, secret, None).await.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/v1/auth/verify", access).await.status(), StatusCode::OK);

    let res = app.send_with(Method::DELETE, &format!("/v1/clients/{id}"), &admin, None).await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(app.get_with("/v1/auth/verify", access).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    assert_eq!(client_credentials(&app, id, secret, None).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_admin_client_can_call_the_admin_api() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "ops", "scopes": [], "roles": ["admin"] })).await;
    let token: Value = client_credentials(&app, created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap(), None)
        .await
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    assert_eq!(claims_of(access)["roles"], json!(["admin"]));

    let users = app.get_with("/v1/users", access).await;

    assert_eq!(users.status(), StatusCode::OK);
    assert_eq!(app.get_with("/v1/clients", access).await.status(), StatusCode::OK);
    problem(app.get_with("/v1/users/me", access).await, StatusCode::FORBIDDEN, "forbidden").await;
}

/// `POST /oauth2/token` with client credentials by HTTP Basic.
pub async fn client_credentials(app: &TestApp, id: &str, secret: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    app.request(Method::POST, "/oauth2/token").basic_auth(id, Some(secret)).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn rotating_the_secret_revokes_the_tokens_issued_under_the_old_one() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "leaky", "scopes": ["jobs"] })).await;
    let id = created["client_id"].as_str().unwrap();
    let old: Value = client_credentials(&app, id, created["client_secret"].as_str().unwrap(), None).await.json().await.unwrap();
    let old_token = old["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/v1/auth/verify", old_token).await.status(), StatusCode::OK);

    let rotated: Value = app.send_with(Method::POST, &format!("/v1/clients/{id}/secret"), &admin, None).await.json().await.unwrap();

    problem(app.get_with("/v1/auth/verify", old_token).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let fresh: Value = client_credentials(&app, id, rotated["client_secret"].as_str().unwrap(), None).await.json().await.unwrap();
    let status = app.get_with("/v1/auth/verify", fresh["access_token"].as_str().unwrap()).await.status();
    assert_eq!(status, StatusCode::OK, "a token issued right after the rotation, in the same second, is valid");
}
