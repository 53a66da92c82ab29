use crate::clients::{client_credentials, create_client};
use crate::helpers::{TestApp, claims_of, spawn_app, spawn_app_with, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

struct Svc {
    id: String,
    secret: String,
}

async fn service_client(app: &TestApp, scopes: &[&str], roles: &[&str]) -> Svc {
    let admin = app.admin_token().await;
    let created = create_client(app, &admin, json!({ "name": "svc", "scopes": scopes, "roles": roles })).await;
    Svc { id: created["client_id"].as_str().unwrap().into(), secret: created["client_secret"].as_str().unwrap().into() }
}

async fn oauth_error(res: reqwest::Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    body
}

#[tokio::test]
async fn client_credentials_by_basic_auth_grant_all_scopes_by_default() {
    let app = spawn_app().await;
    let svc = service_client(&app, &["notes:read", "notes:write"], &[]).await;

    let res = client_credentials(&app, &svc.id, &svc.secret, None).await;

    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "notes:read notes:write");
    assert!(body.get("refresh_token").is_none());
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], svc.id);
    assert_eq!(claims["client_id"], svc.id);
    assert_eq!(claims["scope"], "notes:read notes:write");
    assert!(claims.get("sid").is_none() && claims.get("fresh").is_none());
}

#[tokio::test]
async fn client_credentials_in_the_body_work_and_scope_narrows_the_grant() {
    let app = spawn_app().await;
    let svc = service_client(&app, &["a", "b"], &[]).await;

    let res = app
        .request(Method::POST, "/oauth2/token")
        .form(&[("grant_type", "client_credentials"), ("client_id", &svc.id), ("client_secret", &svc.secret), ("scope", "b")])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "b");
}

#[tokio::test]
async fn asking_for_a_scope_the_client_lacks_is_invalid_scope() {
    let app = spawn_app().await;
    let svc = service_client(&app, &["a"], &[]).await;
    oauth_error(client_credentials(&app, &svc.id, &svc.secret, Some("a admin")).await, StatusCode::BAD_REQUEST, "invalid_scope").await;
}

#[tokio::test]
async fn bad_client_credentials_are_invalid_client_with_a_basic_challenge() {
    let app = spawn_app().await;
    let svc = service_client(&app, &["a"], &[]).await;

    let wrong = client_credentials(&app, &svc.id, "tcs_wrong", None).await;
    assert_eq!(wrong.headers()["www-authenticate"], r#"Basic realm="tessera""#);
    oauth_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
    oauth_error(client_credentials(&app, "svc_unknown", &svc.secret, None).await, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let none = app.request(Method::POST, "/oauth2/token").form(&[("grant_type", "client_credentials")]).send().await.unwrap();
    oauth_error(none, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn malformed_token_requests_get_rfc_6749_errors() {
    let app = spawn_app().await;
    let missing = app.request(Method::POST, "/oauth2/token").form(&[("scope", "a")]).send().await.unwrap();
    oauth_error(missing, StatusCode::BAD_REQUEST, "invalid_request").await;
    let unknown = app.request(Method::POST, "/oauth2/token").form(&[("grant_type", "password")]).send().await.unwrap();
    oauth_error(unknown, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    let repeated = app
        .request(Method::POST, "/oauth2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    oauth_error(repeated, StatusCode::BAD_REQUEST, "invalid_request").await;
    let json_body = app.post_json("/oauth2/token", &json!({ "grant_type": "client_credentials" })).await;
    assert_eq!(json_body.json::<Value>().await.unwrap()["error"], "invalid_request");
    let get = app.get("/oauth2/token").await;
    oauth_error(get, StatusCode::METHOD_NOT_ALLOWED, "invalid_request").await;
}

#[tokio::test]
async fn the_refresh_token_grant_serves_people_through_the_first_party_client() {
    let app = spawn_app().await;
    let reg = app.register(&unique_email()).await;

    let res = app
        .request(Method::POST, "/oauth2/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", reg["refresh_token"].as_str().unwrap()), ("client_id", "tessera")])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_ne!(body["refresh_token"], reg["refresh_token"]);
    assert_eq!(claims_of(body["access_token"].as_str().unwrap())["fresh"], false);
    let reused = app
        .request(Method::POST, "/oauth2/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", reg["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    oauth_error(reused, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let bogus = app
        .request(Method::POST, "/oauth2/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "tsr_x")])
        .send()
        .await
        .unwrap();
    oauth_error(bogus, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn introspect(app: &TestApp, svc: &Svc, token: &str) -> Value {
    let res = app
        .request(Method::POST, "/oauth2/introspect")
        .basic_auth(&svc.id, Some(&svc.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[tokio::test]
async fn introspection_reports_active_tokens_with_their_claims() {
    let app = spawn_app().await;
    let svc = service_client(&app, &["a"], &[]).await;
    let person = app.register(&unique_email()).await;
    let own: Value = client_credentials(&app, &svc.id, &svc.secret, None).await.json().await.unwrap();

    let body = introspect(&app, &svc, person["access_token"].as_str().unwrap()).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], person["user"]["id"]);
    assert_eq!(body["client_id"], "tessera");
    assert_eq!(body["token_type"], "Bearer");
    for claim in ["exp", "iat", "nbf", "iss", "aud", "jti", "scope"] {
        assert!(body.get(claim).is_some(), "{claim}");
    }
    let body = introspect(&app, &svc, own["access_token"].as_str().unwrap()).await;
    assert_eq!(body["scope"], "a");
    let refresh = introspect(&app, &svc, person["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
}

#[tokio::test]
async fn introspection_reports_expired_revoked_and_foreign_tokens_inactive() {
    let app = spawn_app().await;
    let svc = service_client(&app, &[], &[]).await;
    let person = app.register(&unique_email()).await;
    let access = person["access_token"].as_str().unwrap().to_owned();
    let other = crate::helpers::spawn_app().await;
    let foreign = other.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    assert_eq!(introspect(&app, &svc, &foreign).await, json!({ "active": false }));
    assert_eq!(introspect(&app, &svc, "garbage").await, json!({ "active": false }));
    app.send_with(Method::POST, "/v1/auth/logout", &access, None).await;
    assert_eq!(introspect(&app, &svc, &access).await, json!({ "active": false }));
    assert_eq!(introspect(&app, &svc, person["refresh_token"].as_str().unwrap()).await, json!({ "active": false }));
    let fresh = app.login(person["user"]["email"].as_str().unwrap()).await;
    app.advance(Duration::from_secs(906));
    assert_eq!(introspect(&app, &svc, fresh["access_token"].as_str().unwrap()).await, json!({ "active": false }));
}

#[tokio::test]
async fn introspection_needs_an_authenticated_client() {
    let app = spawn_app().await;
    let res = app.request(Method::POST, "/oauth2/introspect").form(&[("token", "x")]).send().await.unwrap();
    oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

async fn revoke(app: &TestApp, svc: &Svc, token: &str) -> reqwest::Response {
    app.request(Method::POST, "/oauth2/revoke").basic_auth(&svc.id, Some(&svc.secret)).form(&[("token", token)]).send().await.unwrap()
}

#[tokio::test]
async fn a_client_revokes_its_own_tokens_idempotently() {
    let app = spawn_app().await;
    let svc = service_client(&app, &["a"], &[]).await;
    let own: Value = client_credentials(&app, &svc.id, &svc.secret, None).await.json().await.unwrap();
    let token = own["access_token"].as_str().unwrap();

    assert_eq!(revoke(&app, &svc, token).await.status(), StatusCode::OK);
    assert_eq!(revoke(&app, &svc, token).await.status(), StatusCode::OK, "revoking twice is fine");
    assert_eq!(revoke(&app, &svc, "not-a-token").await.status(), StatusCode::OK, "unknown tokens are not an error");

    assert_eq!(introspect(&app, &svc, token).await, json!({ "active": false }));
    assert_eq!(app.get_with("/v1/auth/verify", token).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token_but_an_admin_client_can() {
    let app = spawn_app().await;
    let owner = service_client(&app, &[], &[]).await;
    let stranger = service_client(&app, &[], &[]).await;
    let admin = service_client(&app, &[], &["admin"]).await;
    let token: Value = client_credentials(&app, &owner.id, &owner.secret, None).await.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();

    oauth_error(revoke(&app, &stranger, token).await, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    assert_eq!(introspect(&app, &owner, token).await["active"], true);
    assert_eq!(revoke(&app, &admin, token).await.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &owner, token).await["active"], false);
}

#[tokio::test]
async fn people_revoke_their_refresh_token_through_the_first_party_client() {
    let app = spawn_app().await;
    let person = app.register(&unique_email()).await;

    let res = app
        .request(Method::POST, "/oauth2/revoke")
        .form(&[("token", person["refresh_token"].as_str().unwrap()), ("client_id", "tessera"), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), StatusCode::OK);
    let refresh = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": person["refresh_token"] })).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get_with("/v1/users/me", person["access_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn discovery_metadata_points_at_working_endpoints() {
    let app = spawn_app().await;
    let svc = service_client(&app, &["notes:read"], &[]).await;

    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let meta: Value = app.get(path).await.json().await.unwrap();
        assert_eq!(meta["issuer"], "http://tessera.test");
        assert_eq!(meta["grant_types_supported"], json!(["authorization_code", "refresh_token", "client_credentials"]));
        assert!(meta["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("client_secret_basic")));
        assert!(!meta["scopes_supported"].as_array().unwrap().contains(&json!("notes:read")), "a client's scopes are its own");
        assert!(meta["response_types_supported"].is_array());
        for endpoint in ["token_endpoint", "jwks_uri", "introspection_endpoint", "revocation_endpoint"] {
            let url = meta[endpoint].as_str().unwrap();
            let path = url.strip_prefix("http://tessera.test").expect("under the issuer");
            let res = if endpoint == "jwks_uri" {
                app.get(path).await
            } else {
                app.request(Method::POST, path)
                    .basic_auth(&svc.id, Some(&svc.secret))
                    .form(&[("grant_type", "client_credentials"), ("token", "x")])
                    .send()
                    .await
                    .unwrap()
            };
            assert_eq!(res.status(), StatusCode::OK, "{endpoint} at {path}");
        }
    }
}

/// `POST /oauth2/token` for `svc` with `resource` (RFC 8707).
async fn token_for(app: &TestApp, svc: &Svc, resource: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(resource) = resource {
        form.push(("resource", resource));
    }
    app.request(Method::POST, "/oauth2/token").basic_auth(&svc.id, Some(&svc.secret)).form(&form).send().await.unwrap()
}

async fn client_with_audiences(app: &TestApp, audiences: &[&str], roles: &[&str]) -> Svc {
    let admin = app.admin_token().await;
    let created = create_client(app, &admin, json!({ "name": "api", "audiences": audiences, "roles": roles })).await;
    Svc { id: created["client_id"].as_str().unwrap().into(), secret: created["client_secret"].as_str().unwrap().into() }
}

async fn access_token(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_client_token_is_for_the_requested_resource_or_else_the_clients_first_audience() {
    let app = spawn_app().await;
    let svc = client_with_audiences(&app, &["https://notes.example", "https://billing.example"], &[]).await;

    let default = access_token(token_for(&app, &svc, None).await).await;
    let billing = access_token(token_for(&app, &svc, Some("https://billing.example")).await).await;

    assert_eq!(claims_of(&default)["aud"], "https://notes.example");
    assert_eq!(claims_of(&billing)["aud"], "https://billing.example");
}

#[tokio::test]
async fn a_resource_that_is_not_one_of_the_clients_audiences_is_invalid_target() {
    let app = spawn_app().await;
    let svc = client_with_audiences(&app, &["https://notes.example"], &[]).await;
    let plain = service_client(&app, &[], &[]).await;

    oauth_error(token_for(&app, &svc, Some("https://billing.example")).await, StatusCode::BAD_REQUEST, "invalid_target").await;
    oauth_error(token_for(&app, &svc, Some("http://tessera.test")).await, StatusCode::BAD_REQUEST, "invalid_target").await;
    // A client created without audiences has the configured one.
    oauth_error(token_for(&app, &plain, Some("https://notes.example")).await, StatusCode::BAD_REQUEST, "invalid_target").await;
    let own = access_token(token_for(&app, &plain, Some("http://tessera.test")).await).await;
    assert_eq!(claims_of(&own)["aud"], "http://tessera.test");
}

#[tokio::test]
async fn people_and_clients_without_audiences_get_the_configured_audience() {
    let app = spawn_app_with(|c| c.audience = vec!["http://tessera.test".into(), "https://legacy.example".into()]).await;
    let svc = service_client(&app, &[], &[]).await;
    let person = app.register(&unique_email()).await;

    let client_token = access_token(token_for(&app, &svc, None).await).await;

    let configured = json!(["http://tessera.test", "https://legacy.example"]);
    assert_eq!(claims_of(&client_token)["aud"], configured);
    assert_eq!(claims_of(person["access_token"].as_str().unwrap())["aud"], configured);
}

#[tokio::test]
async fn introspection_and_verify_accept_any_audience_tessera_issued_but_its_own_api_does_not() {
    let app = spawn_app().await;
    let billing_admin = client_with_audiences(&app, &["https://billing.example"], &["admin"]).await;
    let resource_server = service_client(&app, &[], &[]).await;
    let token = access_token(token_for(&app, &billing_admin, None).await).await;

    let introspected = introspect(&app, &resource_server, &token).await;
    let verified = app.get_with("/v1/auth/verify", &token).await;
    let for_billing = app.get_with("/v1/auth/verify?aud=https://billing.example", &token).await;
    let for_notes = app.get_with("/v1/auth/verify?aud=https://notes.example", &token).await;
    let admin_api = app.get_with("/v1/clients", &token).await;

    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["aud"], "https://billing.example");
    assert_eq!(verified.status(), StatusCode::OK);
    assert_eq!(for_billing.status(), StatusCode::OK);
    let refused = crate::helpers::problem(for_notes, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert!(refused["detail"].as_str().unwrap().contains("audience"), "{refused}");
    // A token minted for billing cannot be replayed against Tessera's own API, admin role or not.
    crate::helpers::problem(admin_api, StatusCode::UNAUTHORIZED, "invalid_token").await;
    let revoked = revoke(&app, &billing_admin, &token).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &resource_server, &token).await, json!({ "active": false }), "revocation accepts it too");
}

async fn introspect_as(app: &TestApp, id: &str, secret: &str, token: &str) -> reqwest::Response {
    app.request(Method::POST, "/oauth2/introspect").basic_auth(id, Some(secret)).form(&[("token", token)]).send().await.unwrap()
}

#[tokio::test]
async fn a_resource_server_introspecting_every_request_is_not_starved_by_the_address_limit() {
    let app = spawn_app_with(|c| c.rate_limit_per_ip = 120).await;
    let resource_server = service_client(&app, &["a"], &[]).await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();

    for i in 0..300 {
        let res = introspect_as(&app, &resource_server.id, &resource_server.secret, &token).await;
        assert_eq!(res.status(), StatusCode::OK, "introspection {i}");
    }
    for i in 0..150 {
        let res = app
            .request(Method::GET, "/v1/revocations")
            .basic_auth(&resource_server.id, Some(&resource_server.secret))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "feed read {i}");
    }

    assert_eq!(client_credentials(&app, &resource_server.id, &resource_server.secret, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn guessing_client_secrets_at_introspection_still_meets_the_address_limit() {
    let app = spawn_app_with(|c| c.rate_limit_per_ip = 5).await;
    let svc = service_client(&app, &[], &[]).await;
    let token = app.register(&unique_email()).await["access_token"].as_str().unwrap().to_owned();
    // A new minute: the logins above counted against the old one.
    app.advance(Duration::from_secs(60));
    for _ in 0..5 {
        oauth_error(introspect_as(&app, &svc.id, "tcs_guess", &token).await, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }

    let limited = introspect_as(&app, &svc.id, "tcs_guess", &token).await;
    let right_secret = introspect_as(&app, &svc.id, &svc.secret, &token).await;
    let feed = app.request(Method::GET, "/v1/revocations").basic_auth(&svc.id, Some("tcs_guess")).send().await.unwrap();
    let token_endpoint = client_credentials(&app, &svc.id, &svc.secret, None).await;

    assert!(limited.headers().contains_key("retry-after"));
    oauth_error(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    oauth_error(right_secret, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    crate::helpers::problem(feed, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    oauth_error(token_endpoint, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn wrong_client_secrets_at_the_revocation_feed_count_against_the_address_limit() {
    let app = spawn_app_with(|c| c.rate_limit_per_ip = 3).await;
    let svc = service_client(&app, &[], &[]).await;
    app.advance(Duration::from_secs(60));
    for _ in 0..3 {
        let res = app.request(Method::GET, "/v1/revocations").basic_auth(&svc.id, Some("tcs_guess")).send().await.unwrap();
        crate::helpers::problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }

    let token_endpoint = client_credentials(&app, &svc.id, &svc.secret, None).await;

    oauth_error(token_endpoint, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn an_rfc_7009_revocation_is_audited_with_the_client_that_revoked() {
    let app = spawn_app().await;
    let svc = service_client(&app, &["a"], &[]).await;
    let own: Value = client_credentials(&app, &svc.id, &svc.secret, None).await.json().await.unwrap();
    let token = own["access_token"].as_str().unwrap();

    assert_eq!(revoke(&app, &svc, token).await.status(), StatusCode::OK);

    let admin = app.admin_token().await;
    let trail: Value = app.get_with("/v1/audit?limit=20", &admin).await.json().await.unwrap();
    let event = trail["events"].as_array().unwrap().iter().find(|e| e["kind"] == "token.revoked").expect("a token.revoked event");
    assert_eq!(event["actor"], svc.id.as_str());
    assert_eq!(event["subject"], svc.id.as_str());
}
