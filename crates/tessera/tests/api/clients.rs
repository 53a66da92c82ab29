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

#[tokio::test]
async fn an_application_client_shows_its_redirect_uris_and_grant_types() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let body = json!({
        "name": "notes web", "scopes": ["notes:read"], "first_party": true,
        "redirect_uris": ["https://notes.example/callback", "http://127.0.0.1/cb"],
        "post_logout_redirect_uris": ["https://notes.example/"],
    });

    let created = create_client(&app, &admin, body).await;

    assert!(created["client_secret"].as_str().unwrap().starts_with("tcs_"));
    assert_eq!(created["redirect_uris"], json!(["https://notes.example/callback", "http://127.0.0.1/cb"]));
    assert_eq!(created["post_logout_redirect_uris"], json!(["https://notes.example/"]));
    assert_eq!((created["public"].clone(), created["first_party"].clone()), (json!(false), json!(true)));
    assert_eq!(created["grant_types"], json!(["authorization_code", "refresh_token", "client_credentials"]));
    let one: Value = app.get_with(&format!("/v1/clients/{}", created["client_id"].as_str().unwrap()), &admin).await.json().await.unwrap();
    assert_eq!(one["redirect_uris"], created["redirect_uris"]);
    assert_eq!(one["grant_types"], created["grant_types"]);
    let service = create_client(&app, &admin, json!({ "name": "worker" })).await;
    assert_eq!(service["grant_types"], json!(["client_credentials"]));
    assert_eq!((service["redirect_uris"].clone(), service["public"].clone()), (json!([]), json!(false)));
}

#[tokio::test]
async fn a_public_client_gets_no_secret_and_authenticates_by_its_id_alone() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let created =
        create_client(&app, &admin, json!({ "name": "mobile", "public": true, "redirect_uris": ["com.example.notes:/cb"] })).await;

    let id = created["client_id"].as_str().unwrap();
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["public"], true);
    assert_eq!(created["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(app.tessera.authenticate_public_client(id).await.unwrap().unwrap().id.as_str(), id);
    let service = create_client(&app, &admin, json!({ "name": "service" })).await;
    assert!(app.tessera.authenticate_public_client(service["client_id"].as_str().unwrap()).await.unwrap().is_err(), "confidential");
    assert!(app.tessera.authenticate_public_client("svc_unknown").await.unwrap().is_err());
    for secret in ["", "tcs_anything"] {
        assert!(app.tessera.authenticate_client(id, secret).await.unwrap().is_err(), "no secret authenticates a public client");
    }
}

#[tokio::test]
async fn a_public_client_may_not_use_client_credentials() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "spa", "public": true, "redirect_uris": ["https://spa.example/cb"] })).await;
    let id = created["client_id"].as_str().unwrap();

    let by_id =
        app.request(Method::POST, "/oauth2/token").form(&[("grant_type", "client_credentials"), ("client_id", id)]).send().await.unwrap();
    let with_secret = client_credentials(&app, id, "tcs_guess", None).await;

    assert_eq!(by_id.status(), StatusCode::BAD_REQUEST);
    assert_eq!(by_id.json::<Value>().await.unwrap()["error"], "unauthorized_client");
    assert_eq!(with_secret.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(with_secret.json::<Value>().await.unwrap()["error"], "invalid_client");
}

#[tokio::test]
async fn a_public_clients_secret_cannot_be_rotated() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "cli", "public": true, "redirect_uris": ["http://[::1]/cb"] })).await;

    let res = app.send_with(Method::POST, &format!("/v1/clients/{}/secret", created["client_id"].as_str().unwrap()), &admin, None).await;

    problem(res, StatusCode::CONFLICT, "public_client").await;
}

#[tokio::test]
async fn redirect_uris_that_break_the_rules_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (public, uri) in [
        (false, "/relative"),
        (false, "https://app.example/cb#fragment"),
        (false, "http://app.example/cb"),
        (false, "http://192.168.1.2/cb"),
        (false, "com.example.app:/cb"),
        (true, "myapp:/cb"),
        (true, "javascript:alert(1)"),
    ] {
        for field in ["redirect_uris", "post_logout_redirect_uris"] {
            let body = json!({ "name": "x", "public": public, field: [uri] });
            let res = app.send_with(Method::POST, "/v1/clients", &admin, Some(&body)).await;
            problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_redirect_uri").await;
        }
    }
    let created = create_client(&app, &admin, json!({ "name": "web", "redirect_uris": ["https://web.example/cb"] })).await;
    let path = format!("/v1/clients/{}", created["client_id"].as_str().unwrap());
    let res = app.send_with(Method::PATCH, &path, &admin, Some(&json!({ "redirect_uris": ["com.example.app:/cb"] }))).await;
    problem(res, StatusCode::UNPROCESSABLE_ENTITY, "invalid_redirect_uri").await;
}

#[tokio::test]
async fn patching_a_client_changes_only_what_is_given() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(
        &app,
        &admin,
        json!({ "name": "web", "scopes": ["a"], "roles": ["reader"], "redirect_uris": ["https://web.example/cb"] }),
    )
    .await;
    let path = format!("/v1/clients/{}", created["client_id"].as_str().unwrap());

    let res = app.send_with(Method::PATCH, &path, &admin, Some(&json!({ "name": "web app", "first_party": true }))).await;

    assert_eq!(res.status(), StatusCode::OK);
    let patched: Value = res.json().await.unwrap();
    assert_eq!((patched["name"].clone(), patched["first_party"].clone()), (json!("web app"), json!(true)));
    assert_eq!((patched["scopes"].clone(), patched["roles"].clone()), (json!(["a"]), json!(["reader"])));
    assert_eq!(patched["redirect_uris"], json!(["https://web.example/cb"]));
    assert!(patched.get("client_secret").is_none());
    let body = json!({ "redirect_uris": ["https://web.example/new", "http://localhost:8080/cb"], "post_logout_redirect_uris": ["https://web.example/"] });
    let moved: Value = app.send_with(Method::PATCH, &path, &admin, Some(&body)).await.json().await.unwrap();
    assert_eq!(moved["redirect_uris"], json!(["https://web.example/new", "http://localhost:8080/cb"]));
    assert_eq!(moved["post_logout_redirect_uris"], json!(["https://web.example/"]));
    assert_eq!(moved["name"], "web app");
    let stored: Value = app.get_with(&path, &admin).await.json().await.unwrap();
    assert_eq!(stored["redirect_uris"], moved["redirect_uris"]);
    let cleared: Value = app.send_with(Method::PATCH, &path, &admin, Some(&json!({ "redirect_uris": [] }))).await.json().await.unwrap();
    assert_eq!(cleared["grant_types"], json!(["client_credentials"]));
}

#[tokio::test]
async fn patching_a_client_validates_its_input_and_is_for_admins_only() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "web" })).await;
    let path = format!("/v1/clients/{}", created["client_id"].as_str().unwrap());
    for body in [json!({ "name": "" }), json!({ "scopes": ["has space"] })] {
        problem(app.send_with(Method::PATCH, &path, &admin, Some(&body)).await, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            .await;
    }
    let fixed = app.send_with(Method::PATCH, &path, &admin, Some(&json!({ "public": true }))).await;
    assert_eq!(fixed.status(), StatusCode::UNPROCESSABLE_ENTITY, "whether a client is public cannot change");
    let res = app.send_with(Method::PATCH, "/v1/clients/svc_nope", &admin, Some(&json!({ "name": "x" }))).await;
    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let person = app.register(&unique_email()).await;
    let res = app.send_with(Method::PATCH, &path, person["access_token"].as_str().unwrap(), Some(&json!({ "name": "x" }))).await;
    problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn changing_a_clients_scopes_revokes_its_tokens_and_keeping_them_does_not() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let created = create_client(&app, &admin, json!({ "name": "worker", "scopes": ["jobs", "reports"] })).await;
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    let path = format!("/v1/clients/{id}");
    let token = |body: Value| body["access_token"].as_str().unwrap().to_owned();
    let before = token(client_credentials(&app, id, secret, None).await.json().await.unwrap());

    app.send_with(Method::PATCH, &path, &admin, Some(&json!({ "name": "renamed", "scopes": ["reports", "jobs"] }))).await;
    assert_eq!(app.get_with("/v1/auth/verify", &before).await.status(), StatusCode::OK, "the same scopes: nothing revoked");

    let res = app.send_with(Method::PATCH, &path, &admin, Some(&json!({ "scopes": ["reports"] }))).await;

    assert_eq!(res.status(), StatusCode::OK);
    problem(app.get_with("/v1/auth/verify", &before).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let after = token(client_credentials(&app, id, secret, None).await.json().await.unwrap());
    assert_eq!(claims_of(&after)["scope"], "reports");
    assert_eq!(app.get_with("/v1/auth/verify", &after).await.status(), StatusCode::OK, "a token issued after the change works");
}
