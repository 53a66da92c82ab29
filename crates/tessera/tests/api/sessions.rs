use crate::helpers::{problem, spawn_app, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn sessions_list_each_login_and_mark_the_current_one() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let res = app
        .request(Method::POST, "/v1/auth/login")
        .header("user-agent", "integration-test/1.0")
        .json(&json!({ "email": email, "password": crate::helpers::PASSWORD }))
        .send()
        .await
        .unwrap();
    let login: Value = res.json().await.unwrap();
    let token = login["access_token"].as_str().unwrap();

    let list: Value = app.get_with("/v1/users/me/sessions", token).await.json().await.unwrap();

    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "integration-test/1.0");
    assert_eq!(current[0]["ip"], "127.0.0.1");
    for field in ["id", "created_at", "last_used_at"] {
        assert!(current[0][field].is_string(), "{field}");
    }
}

#[tokio::test]
async fn deleting_a_session_revokes_its_tokens() {
    let app = spawn_app().await;
    let email = unique_email();
    let phone = app.register(&email).await;
    let laptop = app.login(&email).await;
    let laptop_token = laptop["access_token"].as_str().unwrap();
    let phone_sid = crate::helpers::claims_of(phone["access_token"].as_str().unwrap())["sid"].as_str().unwrap().to_owned();

    let res = app.send_with(Method::DELETE, &format!("/v1/users/me/sessions/{phone_sid}"), laptop_token, None).await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    problem(app.get_with("/v1/users/me", phone["access_token"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED, "token_revoked").await;
    let refresh = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": phone["refresh_token"] })).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get_with("/v1/users/me", laptop_token).await.status(), StatusCode::OK);
    let list: Value = app.get_with("/v1/users/me/sessions", laptop_token).await.json().await.unwrap();
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn nobody_can_end_another_persons_session() {
    let app = spawn_app().await;
    let victim = app.register(&unique_email()).await;
    let attacker = app.register(&unique_email()).await;
    let sid = crate::helpers::claims_of(victim["access_token"].as_str().unwrap())["sid"].as_str().unwrap().to_owned();

    let res =
        app.send_with(Method::DELETE, &format!("/v1/users/me/sessions/{sid}"), attacker["access_token"].as_str().unwrap(), None).await;

    problem(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.get_with("/v1/users/me", victim["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
}

async fn login_ip(app: &crate::helpers::TestApp, email: &str, forwarded: &str) -> Value {
    let login: Value = app
        .request(Method::POST, "/v1/auth/login")
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "email": email, "password": crate::helpers::PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list: Value = app.get_with("/v1/users/me/sessions", login["access_token"].as_str().unwrap()).await.json().await.unwrap();
    list["sessions"].as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["ip"].clone()
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let untrusting = crate::helpers::spawn_app().await;
    let email = unique_email();
    untrusting.register(&email).await;
    assert_eq!(login_ip(&untrusting, &email, "203.0.113.7").await, "127.0.0.1");

    let behind_proxy = crate::helpers::spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    behind_proxy.register(&email).await;
    assert_eq!(login_ip(&behind_proxy, &email, "198.51.100.9, 203.0.113.7").await, "203.0.113.7", "the nearest untrusted hop");
}

#[tokio::test]
async fn a_browser_session_is_found_by_its_cookie_and_ended_only_by_its_owner() {
    let app = spawn_app().await;
    let (alice, bob) = (app.tessera.create_user(registration(&unique_email())).await.unwrap(), unique_email());
    let bob = app.tessera.create_user(registration(&bob)).await.unwrap();
    let meta = tessera::service::ClientMeta::default();
    let (session, cookie) = app.tessera.start_browser_session(&alice, vec!["pwd".into()], &meta).await.unwrap();

    let found = app.tessera.browser_session_from_cookie(cookie.expose()).await.unwrap().unwrap();
    let by_bob = app.tessera.end_browser_session(bob.id, session.id, &meta).await;

    assert!(cookie.expose().starts_with("tbs_"));
    assert_eq!((found.id, found.user_id, found.amr.clone()), (session.id, alice.id, vec!["pwd".to_owned()]));
    assert!(app.tessera.browser_session_from_cookie("tbs_forged").await.unwrap().is_none());
    assert!(matches!(by_bob, Err(tessera::service::Error::NotFound(_))), "{by_bob:?}");
    let ended = app.tessera.end_browser_session(alice.id, session.id, &meta).await.unwrap();
    assert_eq!(ended.browser_sessions, [session.id]);
    assert!(app.tessera.browser_session_from_cookie(cookie.expose()).await.unwrap().is_none(), "signed out");
}

#[tokio::test]
async fn disabling_a_person_signs_them_out_of_every_browser_session() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let person = app.tessera.create_user(registration(&unique_email())).await.unwrap();
    let meta = tessera::service::ClientMeta::default();
    let (_, cookie) = app.tessera.start_browser_session(&person, vec!["pwd".into()], &meta).await.unwrap();
    app.tessera.start_browser_session(&person, vec!["pwd".into()], &meta).await.unwrap();
    assert_eq!(app.tessera.browser_sessions_of(person.id).await.unwrap().len(), 2);

    let res = app.send_with(Method::PATCH, &format!("/v1/users/{}", person.id), &admin, Some(&json!({ "disabled": true }))).await;

    assert_eq!(res.status(), StatusCode::OK);
    assert!(app.tessera.browser_sessions_of(person.id).await.unwrap().is_empty());
    assert!(app.tessera.browser_session_from_cookie(cookie.expose()).await.unwrap().is_none());
}

fn registration(email: &str) -> tessera::service::Registration {
    tessera::service::Registration { email: email.into(), password: crate::helpers::PASSWORD.into(), username: None, admin: false }
}
