use crate::helpers::{PASSWORD, claims_of, problem, spawn_app, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn me_returns_the_full_view_of_the_caller() {
    let app = spawn_app().await;
    let reg = app.register("erin@example.com").await;

    let res = app.get_with("/v1/users/me", reg["access_token"].as_str().unwrap()).await;

    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["email"], "erin@example.com");
    assert_eq!(me["disabled"], false);
    for field in ["id", "username", "roles", "created_at", "updated_at"] {
        assert!(me.get(field).is_some(), "{field} missing from {me}");
    }
    assert!(me["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_missing_or_non_bearer_authorization_is_missing_token() {
    let app = spawn_app().await;
    problem(app.get("/v1/users/me").await, StatusCode::UNAUTHORIZED, "missing_token").await;
    let basic = app.request(Method::GET, "/v1/users/me").header("authorization", "Basic dXNlcjpwYXNz").send().await.unwrap();
    assert!(basic.headers().contains_key("www-authenticate"));
    problem(basic, StatusCode::UNAUTHORIZED, "missing_token").await;
}

#[tokio::test]
async fn a_garbage_token_is_invalid() {
    let app = spawn_app().await;
    let res = app.get_with("/v1/users/me", "not.a.jwt").await;
    problem(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
}

#[tokio::test]
async fn patching_the_username_needs_no_fresh_token_but_email_does() {
    let app = spawn_app().await;
    let reg = app.register(&unique_email()).await;
    let refreshed: Value = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": reg["refresh_token"] })).await.json().await.unwrap();
    let stale = refreshed["access_token"].as_str().unwrap();

    let res = app.send_with(Method::PATCH, "/v1/users/me", stale, Some(&json!({ "username": "Frank" }))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["username"], "frank");

    let res = app.send_with(Method::PATCH, "/v1/users/me", stale, Some(&json!({ "email": "new@example.com" }))).await;
    problem(res, StatusCode::FORBIDDEN, "fresh_token_required").await;

    let fresh = reg["access_token"].as_str().unwrap();
    let res = app.send_with(Method::PATCH, "/v1/users/me", fresh, Some(&json!({ "email": " New@Example.com " }))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["email"], "New@Example.com");
    let login = app.post_json("/v1/auth/login", &json!({ "email": "new@example.com", "password": PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test]
async fn patching_to_a_taken_username_is_a_conflict() {
    let app = spawn_app().await;
    let taken = json!({ "email": unique_email(), "password": PASSWORD, "username": "grace" });
    assert_eq!(app.post_json("/v1/auth/register", &taken).await.status(), StatusCode::CREATED);
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    let res = app.send_with(Method::PATCH, "/v1/users/me", &token, Some(&json!({ "username": "GRACE" }))).await;

    problem(res, StatusCode::CONFLICT, "username_taken").await;
}

#[tokio::test]
async fn changing_the_password_needs_a_fresh_token_and_the_current_password() {
    let app = spawn_app().await;
    let email = unique_email();
    let reg = app.register(&email).await;
    let fresh = reg["access_token"].as_str().unwrap();
    let new_password = "another long passphrase 2026";
    let refreshed: Value = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": reg["refresh_token"] })).await.json().await.unwrap();

    let stale = app
        .send_with(
            Method::PUT,
            "/v1/users/me/password",
            refreshed["access_token"].as_str().unwrap(),
            Some(&json!({ "current_password": PASSWORD, "new_password": new_password })),
        )
        .await;
    problem(stale, StatusCode::FORBIDDEN, "fresh_token_required").await;

    let wrong = app
        .send_with(
            Method::PUT,
            "/v1/users/me/password",
            fresh,
            Some(&json!({ "current_password": "wrong one", "new_password": new_password })),
        )
        .await;
    problem(wrong, StatusCode::FORBIDDEN, "invalid_credentials").await;

    let weak = app
        .send_with(
            Method::PUT,
            "/v1/users/me/password",
            fresh,
            Some(&json!({ "current_password": PASSWORD, "new_password": "password123" })),
        )
        .await;
    problem(weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;

    let ok = app
        .send_with(
            Method::PUT,
            "/v1/users/me/password",
            fresh,
            Some(&json!({ "current_password": PASSWORD, "new_password": new_password })),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let old = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    problem(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let new = app.post_json("/v1/auth/login", &json!({ "email": email, "password": new_password })).await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_but_not_this_one() {
    let app = spawn_app().await;
    let email = unique_email();
    let other = app.register(&email).await;
    let this = app.login(&email).await;
    let token = this["access_token"].as_str().unwrap();

    let res = app
        .send_with(
            Method::PUT,
            "/v1/users/me/password",
            token,
            Some(&json!({ "current_password": PASSWORD, "new_password": "another long passphrase 2026" })),
        )
        .await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get_with("/v1/users/me", token).await.status(), StatusCode::OK);
    problem(app.get_with("/v1/users/me", other["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let refresh = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": other["refresh_token"] })).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn deleting_the_account_needs_a_fresh_token_and_removes_everything() {
    let app = spawn_app().await;
    let email = unique_email();
    let reg = app.register(&email).await;
    let refreshed: Value = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": reg["refresh_token"] })).await.json().await.unwrap();
    let stale = refreshed["access_token"].as_str().unwrap();
    problem(app.send_with(Method::DELETE, "/v1/users/me", stale, None).await, StatusCode::FORBIDDEN, "fresh_token_required").await;
    let fresh = app.login(&email).await;
    let token = fresh["access_token"].as_str().unwrap();

    let res = app.send_with(Method::DELETE, "/v1/users/me", token, None).await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(app.get_with("/v1/users/me", token).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    problem(app.get_with("/v1/users/me", stale).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let login = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    problem(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let id = reg["user"]["id"].as_str().unwrap();
    problem(app.get(&format!("/v1/users/{id}")).await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn other_people_see_the_public_view_and_the_owner_and_admins_the_full_one() {
    let app = spawn_app().await;
    let owner = app.register(&unique_email()).await;
    let id = owner["user"]["id"].as_str().unwrap();
    let stranger = app.register(&unique_email()).await;
    let admin = app.admin_token().await;

    let anonymous: Value = app.get(&format!("/v1/users/{id}")).await.json().await.unwrap();
    // Sorted: a dev-dependency (the passkey tests' authenticator) makes JSON objects keep their order.
    let mut keys = anonymous.as_object().unwrap().keys().collect::<Vec<_>>();
    keys.sort();
    assert_eq!(keys, ["created_at", "id", "username"]);
    let by_stranger: Value =
        app.get_with(&format!("/v1/users/{id}"), stranger["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert!(by_stranger.get("email").is_none());
    for token in [owner["access_token"].as_str().unwrap(), admin.as_str()] {
        let full: Value = app.get_with(&format!("/v1/users/{id}"), token).await.json().await.unwrap();
        assert_eq!(full["email"], owner["user"]["email"]);
    }
    problem(app.get("/v1/users/00000000-0000-0000-0000-000000000000").await, StatusCode::NOT_FOUND, "not_found").await;
    problem(app.get("/v1/users/not-a-uuid").await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn admins_list_users_page_by_page_and_others_are_forbidden() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let mut emails = Vec::new();
    for _ in 0..5 {
        let email = unique_email();
        app.register(&email).await;
        emails.push(email);
    }
    let user = app.register(&unique_email()).await;
    problem(app.get_with("/v1/users", user["access_token"].as_str().unwrap()).await, StatusCode::FORBIDDEN, "forbidden").await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users?limit=2&cursor={c}"),
            None => "/v1/users?limit=2".to_owned(),
        };
        let page: Value = app.get_with(&path, &admin).await.json().await.unwrap();
        let users = page["users"].as_array().unwrap();
        assert!(users.len() <= 2);
        seen.extend(users.iter().map(|u| u["email"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "admin + 5 + 1 users, each once: {seen:?}");
    assert!(emails.iter().all(|e| seen.contains(e)));
    problem(app.get_with("/v1/users?cursor=%%%", &admin).await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
    problem(app.get_with("/v1/users?cursor=Zm9v", &admin).await, StatusCode::BAD_REQUEST, "invalid_cursor").await;
}

#[tokio::test]
async fn disabling_a_user_revokes_their_tokens_and_blocks_login() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let email = unique_email();
    let victim = app.register(&email).await;
    let id = victim["user"]["id"].as_str().unwrap();

    let res = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&json!({ "disabled": true }))).await;

    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["disabled"], true);
    problem(app.get_with("/v1/users/me", victim["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let login = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    problem(login, StatusCode::FORBIDDEN, "account_disabled").await;

    let res = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&json!({ "disabled": false }))).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.advance(Duration::from_secs(1));
    let login = app.login(&email).await;
    assert_eq!(app.get_with("/v1/users/me", login["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn admins_grant_roles_and_delete_users() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let email = unique_email();
    let user = app.register(&email).await;
    let id = user["user"]["id"].as_str().unwrap();

    let res = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&json!({ "roles": ["admin", "auditor"] }))).await;
    assert_eq!(res.json::<Value>().await.unwrap()["roles"], json!(["admin", "auditor"]));
    let promoted = app.login(&email).await;
    assert_eq!(claims_of(promoted["access_token"].as_str().unwrap())["roles"], json!(["admin", "auditor"]));
    let bad = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&json!({ "roles": ["Not Valid"] }))).await;
    problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let res = app.send_with(Method::DELETE, &format!("/v1/users/{id}"), &admin, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(app.send_with(Method::DELETE, &format!("/v1/users/{id}"), &admin, None).await, StatusCode::NOT_FOUND, "not_found").await;
    problem(app.get_with("/v1/users/me", promoted["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED, "token_revoked")
        .await;
}

#[tokio::test]
async fn a_normal_user_cannot_use_the_admin_endpoints() {
    let app = spawn_app().await;
    let user = app.register(&unique_email()).await;
    let token = user["access_token"].as_str().unwrap();
    let id = user["user"]["id"].as_str().unwrap();

    let patch = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), token, Some(&json!({ "roles": ["admin"] }))).await;
    problem(patch, StatusCode::FORBIDDEN, "forbidden").await;
    problem(app.send_with(Method::DELETE, &format!("/v1/users/{id}"), token, None).await, StatusCode::FORBIDDEN, "forbidden").await;
    problem(app.get_with("/v1/keys", token).await, StatusCode::FORBIDDEN, "forbidden").await;
    problem(app.send_with(Method::POST, "/v1/keys/rotate", token, None).await, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_demoted_admin_token_stops_working_at_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let email = unique_email();
    let id = app.register(&email).await["user"]["id"].as_str().unwrap().to_owned();
    app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&json!({ "roles": ["admin"] }))).await;
    let their_admin_token = app.login(&email).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_with("/v1/users", &their_admin_token).await.status(), StatusCode::OK);

    let demoted = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&json!({ "roles": [] }))).await;

    assert_eq!(demoted.status(), StatusCode::OK);
    problem(app.get_with("/v1/users", &their_admin_token).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let regrant = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &their_admin_token, Some(&json!({ "roles": ["admin"] }))).await;
    problem(regrant, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let client = app.send_with(Method::POST, "/v1/clients", &their_admin_token, Some(&json!({ "name": "x", "scopes": [] }))).await;
    problem(client, StatusCode::UNAUTHORIZED, "token_revoked").await;
    app.advance(Duration::from_secs(1));
    let again = app.login(&email).await;
    assert_eq!(claims_of(again["access_token"].as_str().unwrap())["roles"], json!([]));
}

#[tokio::test]
async fn an_admin_disabling_during_a_password_change_is_never_undone() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.rate_limit_per_ip = 0;
        // A real cost, so the password change spends tens of milliseconds between read and write.
        c.argon2.memory_kib = 19_456;
        c.argon2.iterations = 2;
    })
    .await;
    let admin = app.admin_token().await;
    for round in 0..6 {
        let email = unique_email();
        let reg = app.register(&email).await;
        let (id, token) = (reg["user"]["id"].as_str().unwrap().to_owned(), reg["access_token"].as_str().unwrap().to_owned());
        let change = {
            let (client, url, token) = (app.client.clone(), app.url("/v1/users/me/password"), token.clone());
            tokio::spawn(async move {
                client
                    .put(url)
                    .bearer_auth(token)
                    .json(&json!({ "current_password": PASSWORD, "new_password": "another horse battery staple" }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        };
        tokio::time::sleep(Duration::from_millis(5 * round)).await;
        let disable = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&json!({ "disabled": true }))).await;
        assert_eq!(disable.status(), StatusCode::OK);
        change.await.unwrap();

        let user: Value = app.get_with(&format!("/v1/users/{id}"), &admin).await.json().await.unwrap();
        assert_eq!(user["disabled"], true, "round {round}: the password change undid the disabling");
        for password in [PASSWORD, "another horse battery staple"] {
            let login = app.post_json("/v1/auth/login", &json!({ "email": email, "password": password })).await;
            assert_ne!(login.status(), StatusCode::OK, "round {round}: a disabled person signed in");
        }
    }
}

#[tokio::test]
async fn changing_the_email_ends_the_other_sessions_and_is_audited() {
    let app = spawn_app().await;
    let email = unique_email();
    let elsewhere = app.register(&email).await;
    let here = app.login(&email).await["access_token"].as_str().unwrap().to_owned();
    let new_email = unique_email();

    let res = app.send_with(Method::PATCH, "/v1/users/me", &here, Some(&json!({ "email": new_email, "username": "renamed" }))).await;

    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.get_with("/v1/users/me", &here).await.status(), StatusCode::OK, "this session lives on");
    let other = elsewhere["access_token"].as_str().unwrap();
    problem(app.get_with("/v1/users/me", other).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let refreshed = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": elsewhere["refresh_token"] })).await;
    problem(refreshed, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let admin = app.admin_token().await;
    let trail: Value = app.get_with("/v1/audit?limit=50", &admin).await.json().await.unwrap();
    let kinds: Vec<&str> = trail["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"user.email_changed") && kinds.contains(&"user.username_changed"), "{kinds:?}");
}

#[tokio::test]
async fn a_fresh_token_stops_passing_the_fresh_rule_after_the_fresh_max_age() {
    let app = crate::helpers::spawn_app_with(|c| c.fresh_max_age = "10m".parse().unwrap()).await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    app.advance(Duration::from_secs(9 * 60));
    let res = app.send_with(Method::PATCH, "/v1/users/me", &token, Some(&json!({ "email": unique_email() }))).await;
    assert_eq!(res.status(), StatusCode::OK, "within the fresh max age");

    app.advance(Duration::from_secs(2 * 60));
    let res = app.send_with(Method::PATCH, "/v1/users/me", &token, Some(&json!({ "email": unique_email() }))).await;

    problem(res, StatusCode::FORBIDDEN, "fresh_token_required").await;
}
