//! OpenID Connect over HTTP: the authorization endpoint, consent, the code exchange, the
//! id_token checked against the JWKS, userinfo, refresh for applications, RP-initiated
//! logout and discovery. The browser session is started through the service (the sign-in
//! page is tested on its own); everything else goes over HTTP with redirects not followed.

use crate::helpers::{PASSWORD, TestApp, claims_of, header_of, spawn_app, spawn_app_with, spawn_beside, unique_email};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tessera::domain::User;
use tessera::service::{ClientMeta, ClientSpec, Registration};

const REDIRECT: &str = "https://app.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Rp {
    id: String,
    secret: Option<String>,
}

struct Person {
    user: User,
    cookie: String,
    sid: String,
}

async fn person(app: &TestApp) -> Person {
    let user = app
        .tessera
        .create_user(Registration {
            email: unique_email(),
            password: PASSWORD.into(),
            username: Some(format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..10])),
            admin: false,
        })
        .await
        .unwrap();
    sign_in(app, user).await
}

async fn sign_in(app: &TestApp, user: User) -> Person {
    let (session, secret) = app.tessera.start_browser_session(&user, vec!["pwd".to_owned()], &ClientMeta::default()).await.unwrap();
    Person { user, cookie: format!("tessera-session={}", secret.expose()), sid: session.id.to_string() }
}

async fn application(app: &TestApp, public: bool, first_party: bool) -> Rp {
    let created = app
        .tessera
        .register_client(ClientSpec {
            name: "Notes".into(),
            scopes: vec!["notes:read".into()],
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec!["https://app.example/bye".into()],
            public,
            first_party,
            ..ClientSpec::default()
        })
        .await
        .unwrap();
    Rp { id: created.client.id.to_string(), secret: created.secret.map(|s| s.expose().to_owned()) }
}

fn query(rp: &Rp, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &rp.id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    serde_urlencoded::to_string(pairs).unwrap()
}

async fn authorize(app: &TestApp, cookie: Option<&str>, q: &str) -> Response {
    let mut req = app.client.get(app.url(&format!("/oauth2/authorize?{q}")));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

fn location(res: &Response) -> String {
    assert_eq!(res.status(), StatusCode::FOUND, "a redirect");
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// The query parameters of a redirect to the application.
fn callback(res: &Response) -> HashMap<String, String> {
    let loc = location(res);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    url::Url::parse(&loc).unwrap().query_pairs().into_owned().collect()
}

async fn code_for(app: &TestApp, p: &Person, rp: &Rp, extra: &[(&str, &str)]) -> String {
    let res = authorize(app, Some(&p.cookie), &query(rp, extra)).await;
    let params = callback(&res);
    assert_eq!(params.get("state").map(String::as_str), Some("st-123"));
    assert_eq!(params.get("iss"), Some(&app.config.issuer));
    params.get("code").cloned().unwrap_or_else(|| panic!("a code in {params:?}"))
}

async fn exchange(app: &TestApp, rp: &Rp, code: &str, verifier: &str) -> Response {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("code_verifier", verifier.to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
    ];
    let mut req = app.client.post(app.url("/oauth2/token"));
    match &rp.secret {
        Some(secret) => req = req.basic_auth(&rp.id, Some(secret)),
        None => form.push(("client_id", rp.id.clone())),
    }
    req.form(&form).send().await.unwrap()
}

async fn tokens(app: &TestApp, rp: &Rp, code: &str) -> Value {
    let res = exchange(app, rp, code, VERIFIER).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn oauth_error(res: Response, error: &str) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
}

/// Consents through the page: fetch it (CSRF cookie and token), then post `decision`.
async fn consent(app: &TestApp, p: &Person, q: &str, decision: &str) -> Response {
    let res = app.client.get(app.url(&format!("/consent?{q}"))).header("cookie", &p.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csrf_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tessera-csrf="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("the page sets the CSRF cookie");
    let html = res.text().await.unwrap();
    assert!(html.contains("Notes"), "the application's name is shown");
    assert!(html.contains(r#"name="decision" value="allow""#) && html.contains(r#"name="decision" value="deny""#), "{html}");
    assert!(html.contains("See your email address"), "scopes in plain words");
    let token = html.split(r#"name="csrf_token" value=""#).nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    app.client
        .post(app.url("/consent"))
        .header("cookie", format!("{}; {csrf_cookie}", p.cookie))
        .form(&[("csrf_token", token.as_str()), ("request", q), ("decision", decision)])
        .send()
        .await
        .unwrap()
}

/// Verifies a JWT against the JWKS and returns its claims.
async fn verified(app: &TestApp, token: &str, aud: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the key is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[&app.config.issuer]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation).expect("the signature and claims check out").claims
}

#[tokio::test]
async fn a_signed_in_person_gets_a_code_then_tokens_an_id_token_and_userinfo() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    assert!(URL_SAFE_NO_PAD.decode(code.trim_start_matches("tac_")).unwrap().len() >= 16, "at least 128 random bits");

    let body = tokens(&app, &rp, &code).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "email openid profile");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert!(body["refresh_token"].is_string());
    let access = body["access_token"].as_str().unwrap();
    let at = claims_of(access);
    assert_eq!(at["client_id"], rp.id.as_str(), "the application's client id");
    assert!(at.get("fresh").is_none_or(|f| f == false), "never fresh outside the first-party client: {at}");
    assert_eq!(at["sub"], p.user.id.to_string());
    assert_ne!(at["sid"], p.sid.as_str(), "the access token's sid is its token session");

    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(header_of(id_token)["typ"], "JWT");
    let claims = verified(&app, id_token, &rp.id).await;
    assert_eq!(claims["iss"], app.config.issuer.as_str());
    assert_eq!(claims["sub"], p.user.id.to_string());
    assert_eq!(claims["aud"], rp.id.as_str());
    assert_eq!(claims["azp"], rp.id.as_str());
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["sid"], p.sid.as_str(), "the browser session");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
    assert_eq!(claims["email"], p.user.email.as_str());
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["preferred_username"], p.user.username.as_ref().unwrap().as_str());
    assert!(claims["updated_at"].is_i64());

    let info: Value = app.get_with("/oauth2/userinfo", access).await.json().await.unwrap();
    assert_eq!(info["sub"], p.user.id.to_string());
    assert_eq!(info["email"], p.user.email.as_str());
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["preferred_username"], claims["preferred_username"]);
    let posted = app.client.post(app.url("/oauth2/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::OK);

    // The access token works on Tessera's own API too, as the person's.
    assert_eq!(app.get_with("/v1/users/me", access).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_client_or_an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let unknown = Rp { id: "svc_nobody".into(), secret: None };
    for q in [
        query(&unknown, &[]),
        query(&rp, &[("redirect_uri", "https://evil.example/cb")]),
        query(&rp, &[("redirect_uri", "https://app.example/cb/extra")]),
        query(&rp, &[("client_id", "")]),
    ] {
        let res = authorize(&app, Some(&p.cookie), &q).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{q}");
        assert!(res.headers().get("location").is_none());
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(res.text().await.unwrap().contains("<html"));
    }
    // With exactly one registered URI it may be left out.
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("redirect_uri", "")])).await;
    assert!(callback(&res).contains_key("code"));
}

#[tokio::test]
async fn pkce_s256_is_required_of_every_client_and_plain_is_refused() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    for extra in [
        vec![("code_challenge", ""), ("code_challenge_method", "")],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge", "too-short")],
    ] {
        let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &extra)).await);
        assert_eq!(params["error"], "invalid_request", "{extra:?}");
        assert_eq!(params["state"], "st-123");
        assert_eq!(params["iss"], app.config.issuer);
    }
    let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[("response_type", "token")])).await);
    assert_eq!(params["error"], "unsupported_response_type");
    let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[("scope", "openid admin:everything")])).await);
    assert_eq!(params["error"], "invalid_scope");
    let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[("scope", "openid notes:read offline_access")])).await);
    assert!(params.contains_key("code"), "the client's own scopes and the OpenID ones are allowed");
}

#[tokio::test]
async fn a_wrong_verifier_another_client_or_another_redirect_uri_is_invalid_grant() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let other = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    oauth_error(exchange(&app, &rp, &code, &"x".repeat(43)).await, "invalid_grant").await;
    let code = code_for(&app, &p, &rp, &[]).await;
    oauth_error(exchange(&app, &other, &code, VERIFIER).await, "invalid_grant").await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&rp.id, rp.secret.as_ref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", "https://app.example/other"),
        ])
        .send()
        .await
        .unwrap();
    oauth_error(res, "invalid_grant").await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let wrong_secret = Rp { id: rp.id.clone(), secret: Some("tcs_wrong".into()) };
    assert_eq!(exchange(&app, &wrong_secret, &code, VERIFIER).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_the_tokens_it_issued() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let first = tokens(&app, &rp, &code).await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/oauth2/userinfo", access).await.status(), StatusCode::OK);

    oauth_error(exchange(&app, &rp, &code, VERIFIER).await, "invalid_grant").await;
    assert_eq!(app.get_with("/oauth2/userinfo", access).await.status(), StatusCode::UNAUTHORIZED, "the access token is revoked");
    let refreshed = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&rp.id, rp.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST, "the refresh token is revoked too");
    let admin = app.admin_token().await;
    let audit: Value = app.get_with("/v1/audit?limit=50", &admin).await.json().await.unwrap();
    assert!(audit["events"].as_array().unwrap().iter().any(|e| e["kind"] == "code.replayed"), "{audit}");
}

#[tokio::test]
async fn a_code_works_for_sixty_seconds_only() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    app.advance(Duration::from_secs(59));
    assert_eq!(exchange(&app, &rp, &code, VERIFIER).await.status(), StatusCode::OK);
    let code = code_for(&app, &p, &rp, &[]).await;
    app.advance(Duration::from_secs(61));
    oauth_error(exchange(&app, &rp, &code, VERIFIER).await, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_replayed_after_its_expiry_still_revokes_the_tokens_it_issued() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let first = tokens(&app, &rp, &code).await;
    app.advance(Duration::from_secs(120));

    oauth_error(exchange(&app, &rp, &code, VERIFIER).await, "invalid_grant").await;

    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/oauth2/userinfo", access).await.status(), StatusCode::UNAUTHORIZED, "the access token is revoked");
    assert!(audit_kinds(&app).await.iter().any(|k| k == "code.replayed"));
}

#[tokio::test]
async fn a_code_issued_by_one_instance_is_exchanged_at_another_and_a_forged_one_nowhere() {
    // No master key: the instances share the database's secret.
    let one = spawn_app().await;
    assert!(one.config.master_key.is_none());
    let two = spawn_beside(&one, |_| {}).await;
    let elsewhere = spawn_app().await;
    let rp = application(&one, false, true).await;
    let p = person(&one).await;

    let code = code_for(&one, &p, &rp, &[]).await;
    let issued = tokens(&two, &rp, &code).await;
    oauth_error(exchange(&one, &rp, &code, VERIFIER).await, "invalid_grant").await;

    assert!(issued["id_token"].is_string());
    let access = issued["access_token"].as_str().unwrap();
    assert_eq!(one.get_with("/oauth2/userinfo", access).await.status(), StatusCode::UNAUTHORIZED, "the replay revoked them");
    let code = code_for(&one, &p, &rp, &[]).await;
    let mut tampered = code.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    oauth_error(exchange(&one, &rp, std::str::from_utf8(&tampered).unwrap(), VERIFIER).await, "invalid_grant").await;
    let foreign_rp = application(&elsewhere, false, true).await;
    let foreign = code_for(&elsewhere, &person(&elsewhere).await, &foreign_rp, &[]).await;
    oauth_error(exchange(&one, &rp, &foreign, VERIFIER).await, "invalid_grant").await;
    assert_eq!(exchange(&one, &rp, &code, VERIFIER).await.status(), StatusCode::OK, "the code itself was untouched");
}

#[tokio::test]
async fn a_form_served_by_one_instance_is_accepted_by_another() {
    let one = spawn_app().await;
    let two = spawn_beside(&one, |_| {}).await;
    let rp = application(&one, false, false).await;
    let p = person(&one).await;
    let q = query(&rp, &[]);
    let (csrf_cookie, token) = form_token(&one, &format!("/consent?{q}"), &p.cookie).await;

    let res = two
        .client
        .post(two.url("/consent"))
        .header("cookie", format!("{}; {csrf_cookie}", p.cookie))
        .form(&[("csrf_token", token.as_str()), ("request", q.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), StatusCode::FOUND, "the consent is taken and the browser sent on");
}

#[tokio::test]
async fn without_a_session_the_request_goes_to_sign_in_with_the_login_hint_and_prompt_none_shows_no_page() {
    let app = spawn_app().await;
    let rp = application(&app, false, false).await;
    let res = authorize(&app, None, &query(&rp, &[("login_hint", "ann@example.com")])).await;
    let loc = location(&res);
    assert!(loc.starts_with("/login?"), "{loc}");
    let params: HashMap<String, String> = url::Url::parse(&format!("http://x{loc}")).unwrap().query_pairs().into_owned().collect();
    assert_eq!(params["login_hint"], "ann@example.com");
    assert!(params["return_to"].starts_with("/oauth2/authorize?"), "{params:?}");
    assert!(params["return_to"].contains(&format!("client_id={}", rp.id)));

    let params = callback(&authorize(&app, None, &query(&rp, &[("prompt", "none")])).await);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "st-123");
    let p = person(&app).await;
    let params = callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[("prompt", "none")])).await);
    assert_eq!(params["error"], "consent_required", "not first-party and no consent yet");
    // A bogus cookie is no session.
    let res = authorize(&app, Some("tessera-session=tbs_forged"), &query(&rp, &[])).await;
    assert!(location(&res).starts_with("/login?"));
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_new_sign_in_and_the_return_does_not_loop() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    app.advance(Duration::from_secs(120));
    for extra in [("prompt", "login"), ("max_age", "60"), ("max_age", "0")] {
        let res = authorize(&app, Some(&p.cookie), &query(&rp, &[extra])).await;
        let loc = location(&res);
        assert!(loc.starts_with("/login?"), "{extra:?}: {loc}");
        let params: HashMap<String, String> = url::Url::parse(&format!("http://x{loc}")).unwrap().query_pairs().into_owned().collect();
        let return_to = params["return_to"].clone();
        // The old session coming back is still sent to sign in.
        assert!(
            location(&authorize(&app, Some(&p.cookie), return_to.trim_start_matches("/oauth2/authorize?")).await).starts_with("/login?")
        );
        // A new sign-in after the request: back to the request, which now issues a code.
        app.advance(Duration::from_secs(1));
        let again = sign_in(&app, p.user.clone()).await;
        let res = authorize(&app, Some(&again.cookie), return_to.trim_start_matches("/oauth2/authorize?")).await;
        assert!(callback(&res).contains_key("code"), "{extra:?}");
        app.advance(Duration::from_secs(120));
    }
    // A recent enough sign-in satisfies max_age without a page.
    let fresh = sign_in(&app, p.user.clone()).await;
    let res = authorize(&app, Some(&fresh.cookie), &query(&rp, &[("max_age", "60"), ("prompt", "none")])).await;
    assert!(callback(&res).contains_key("code"));
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("max_age", "60"), ("prompt", "none")])).await;
    assert_eq!(callback(&res)["error"], "login_required");
}

#[tokio::test]
async fn consent_is_asked_once_remembered_and_asked_again_for_more_scopes() {
    let app = spawn_app().await;
    let rp = application(&app, false, false).await;
    let p = person(&app).await;
    let q = query(&rp, &[("scope", "openid email")]);
    let res = authorize(&app, Some(&p.cookie), &q).await;
    assert!(location(&res).starts_with("/consent?"));
    let res = consent(&app, &p, &q, "allow").await;
    assert!(location(&res).starts_with("/oauth2/authorize?"));
    let res = authorize(&app, Some(&p.cookie), location(&res).trim_start_matches("/oauth2/authorize?")).await;
    assert!(callback(&res).contains_key("code"));
    // Remembered: no page, even with prompt=none.
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("scope", "openid"), ("prompt", "none")])).await;
    assert!(callback(&res).contains_key("code"));
    // More scopes than allowed: asked again.
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("scope", "openid email profile")])).await;
    assert!(location(&res).starts_with("/consent?"));
    let admin = app.admin_token().await;
    let audit: Value = app.get_with("/v1/audit?limit=50", &admin).await.json().await.unwrap();
    assert!(audit["events"].as_array().unwrap().iter().any(|e| e["kind"] == "consent.granted"), "{audit}");
}

#[tokio::test]
async fn denied_consent_sends_access_denied_and_a_post_without_csrf_is_refused() {
    let app = spawn_app().await;
    let rp = application(&app, false, false).await;
    let p = person(&app).await;
    let q = query(&rp, &[]);
    let params = callback(&consent(&app, &p, &q, "deny").await);
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], app.config.issuer);
    let res = app
        .client
        .post(app.url("/consent"))
        .header("cookie", &p.cookie)
        .form(&[("request", q.as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(location(&authorize(&app, Some(&p.cookie), &q).await).starts_with("/consent?"), "nothing was recorded");
}

#[tokio::test]
async fn a_public_client_exchanges_and_refreshes_by_client_id_alone() {
    let app = spawn_app().await;
    let rp = application(&app, true, true).await;
    let p = person(&app).await;
    let code = code_for(&app, &p, &rp, &[]).await;
    let body = tokens(&app, &rp, &code).await;
    let refresh = |token: String, client: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/oauth2/token"))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str()), ("client_id", client.as_str())])
                .send()
                .await
                .unwrap()
        }
    };
    let res = refresh(body["refresh_token"].as_str().unwrap().to_owned(), rp.id.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let renewed: Value = res.json().await.unwrap();
    let claims = claims_of(renewed["access_token"].as_str().unwrap());
    assert_eq!(claims["client_id"], rp.id.as_str());
    assert_eq!(claims["scope"], "email openid profile");
    // The first-party client cannot spend an application's refresh token.
    let res = refresh(renewed["refresh_token"].as_str().unwrap().to_owned(), "tessera".into()).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Nor can a public client use client_credentials.
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", rp.id.as_str())])
        .send()
        .await
        .unwrap();
    oauth_error(res, "unauthorized_client").await;
}

#[tokio::test]
async fn signing_out_ends_the_tokens_issued_through_the_browser_session_except_offline_ones() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let online = tokens(&app, &rp, &code_for(&app, &p, &rp, &[]).await).await;
    let offline = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "openid offline_access")]).await).await;
    let id_token = online["id_token"].as_str().unwrap();

    let res = app
        .client
        .get(app.url(&format!(
                "/oauth2/logout?{}",
                serde_urlencoded::to_string([
                    ("id_token_hint", id_token),
                    ("post_logout_redirect_uri", "https://app.example/bye"),
                    ("state", "s9")
                ])
                .unwrap()
            )))
        .header("cookie", &p.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "https://app.example/bye?state=s9");
    let online_at = online["access_token"].as_str().unwrap();
    let offline_at = offline["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/oauth2/userinfo", online_at).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get_with("/oauth2/userinfo", offline_at).await.status(), StatusCode::OK, "offline_access outlives sign-out");
    // The browser session is gone: the next request asks for sign-in.
    assert!(location(&authorize(&app, Some(&p.cookie), &query(&rp, &[])).await).starts_with("/login?"));
}

#[tokio::test]
async fn logout_without_an_id_token_hint_asks_first_and_an_unregistered_uri_is_not_followed() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let q =
        serde_urlencoded::to_string([("client_id", rp.id.as_str()), ("post_logout_redirect_uri", "https://evil.example/"), ("state", "s")])
            .unwrap();
    let res = app.client.get(app.url(&format!("/oauth2/logout?{q}"))).header("cookie", &p.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csrf_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tessera-csrf="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<button type="submit">Sign out</button>"#), "{html}");
    // Nothing has ended yet.
    assert!(callback(&authorize(&app, Some(&p.cookie), &query(&rp, &[])).await).contains_key("code"));
    let token = html.split(r#"name="csrf_token" value=""#).nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    let res = app
        .client
        .post(app.url("/oauth2/logout"))
        .header("cookie", format!("{}; {csrf_cookie}", p.cookie))
        .form(&[
            ("csrf_token", token.as_str()),
            ("client_id", rp.id.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
            ("state", "s"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "an unregistered URI: the signed-out page, no redirect");
    assert!(res.text().await.unwrap().contains("signed out"));
    assert!(location(&authorize(&app, Some(&p.cookie), &query(&rp, &[])).await).starts_with("/login?"));
}

#[tokio::test]
async fn userinfo_needs_openid_and_shows_only_what_the_scopes_allow() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let body = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "openid")]).await).await;
    let info: Value = app.get_with("/oauth2/userinfo", body["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(info, serde_json::json!({ "sub": p.user.id.to_string() }));
    let claims = claims_of(body["id_token"].as_str().unwrap());
    assert!(claims.get("email").is_none() && claims.get("preferred_username").is_none(), "{claims}");

    let body = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "notes:read")]).await).await;
    assert!(body.get("id_token").is_none(), "no openid, no id_token");
    let res = app.get_with("/oauth2/userinfo", body["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains(r#"error="insufficient_scope""#));
    // A person's own token (first-party, no scopes) is not an OpenID Connect token either.
    let email = unique_email();
    let own = app.register(&email).await;
    assert_eq!(app.get_with("/oauth2/userinfo", own["access_token"].as_str().unwrap()).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn discovery_lists_every_openid_connect_field() {
    let app = spawn_app().await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let m: Value = app.get(path).await.json().await.unwrap();
        let base = app.config.issuer.trim_end_matches('/');
        assert_eq!(m["authorization_endpoint"], format!("{base}/oauth2/authorize"));
        assert_eq!(m["userinfo_endpoint"], format!("{base}/oauth2/userinfo"));
        assert_eq!(m["end_session_endpoint"], format!("{base}/oauth2/logout"));
        assert_eq!(m["jwks_uri"], format!("{base}/.well-known/jwks.json"));
        assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(m["response_modes_supported"], serde_json::json!(["query"]));
        assert_eq!(m["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(m["subject_types_supported"], serde_json::json!(["public"]));
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        for grant in ["authorization_code", "refresh_token", "client_credentials"] {
            assert!(m["grant_types_supported"].as_array().unwrap().iter().any(|g| g == grant), "{grant}");
        }
        assert!(m["token_endpoint_auth_methods_supported"].as_array().unwrap().iter().any(|g| g == "none"));
        for scope in ["openid", "profile", "email", "offline_access"] {
            assert!(m["scopes_supported"].as_array().unwrap().iter().any(|s| s == scope), "{scope}");
        }
        for claim in ["sub", "sid", "amr", "at_hash", "auth_time", "nonce", "email", "email_verified", "preferred_username"] {
            assert!(m["claims_supported"].as_array().unwrap().iter().any(|c| c == claim), "{claim}");
        }
        assert!(!m["id_token_signing_alg_values_supported"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn with_hs256_there_is_no_openid_connect() {
    let app = spawn_app_with(|c| {
        c.signing_alg = tessera::domain::keys::SigningAlg::HS256;
        c.hs256_secret = Some("0123456789abcdef0123456789abcdef-test".to_owned().into());
    })
    .await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("HS256"));
    let m: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert!(m.get("authorization_endpoint").is_none(), "{m}");
    assert!(m.get("userinfo_endpoint").is_none());
    assert_eq!(m["response_types_supported"], serde_json::json!([]));
}

/// A page's CSRF cookie (`name=value`) and the token of its forms.
async fn form_token(app: &TestApp, path: &str, cookie: &str) -> (String, String) {
    let res = app.client.get(app.url(path)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let csrf_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tessera-csrf="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("the page sets the CSRF cookie");
    let html = res.text().await.unwrap();
    let token = html.split(r#"name="csrf_token" value=""#).nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    (csrf_cookie, token)
}

async fn audit_kinds(app: &TestApp) -> Vec<String> {
    let admin = app.admin_token().await;
    let audit: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();
    audit["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn withdrawing_consent_on_the_account_page_deletes_it_and_ends_the_applications_sessions() {
    let app = spawn_app().await;
    let rp = application(&app, false, false).await;
    let other = application(&app, false, true).await;
    let p = person(&app).await;
    let q = query(&rp, &[("scope", "openid email offline_access")]);
    let back = location(&consent(&app, &p, &q, "allow").await);
    let code = callback(&authorize(&app, Some(&p.cookie), back.trim_start_matches("/oauth2/authorize?")).await)["code"].clone();
    let online = tokens(&app, &rp, &code).await;
    let offline = tokens(&app, &rp, &code_for(&app, &p, &rp, &[("scope", "openid offline_access")]).await).await;
    let untouched = tokens(&app, &other, &code_for(&app, &p, &other, &[]).await).await;
    let html = app.client.get(app.url("/account")).header("cookie", &p.cookie).send().await.unwrap().text().await.unwrap();
    let section = html.split(r#"id="allowed-title""#).nth(1).expect("the allowed applications' section");
    assert!(section.contains("Notes") && section.contains("See your email address"), "{section}");
    assert!(section.contains(&format!(r#"name="client_id" value="{}""#, rp.id)), "{section}");
    assert!(!section.contains(&other.id), "a first-party application was never asked, so it is not listed");

    let (csrf, token) = form_token(&app, "/account", &p.cookie).await;
    let withdraw = |client_id: String, with_token: bool| {
        let mut form = vec![("client_id", client_id)];
        if with_token {
            form.push(("csrf_token", token.clone()));
        }
        app.client.post(app.url("/account/apps/withdraw")).header("cookie", format!("{}; {csrf}", p.cookie)).form(&form).send()
    };
    assert_eq!(withdraw(rp.id.clone(), false).await.unwrap().status(), StatusCode::FORBIDDEN, "CSRF");
    let res = withdraw(rp.id.clone(), true).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/account?withdrawn=1");

    for (tokens, what) in [(&online, "online"), (&offline, "offline_access")] {
        let at = tokens["access_token"].as_str().unwrap();
        assert_eq!(app.get_with("/oauth2/userinfo", at).await.status(), StatusCode::UNAUTHORIZED, "{what}");
        let refresh = [("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())];
        let res = app.client.post(app.url("/oauth2/token")).basic_auth(&rp.id, rp.secret.as_ref()).form(&refresh).send().await.unwrap();
        oauth_error(res, "invalid_grant").await;
    }
    let at = untouched["access_token"].as_str().unwrap();
    assert_eq!(app.get_with("/oauth2/userinfo", at).await.status(), StatusCode::OK, "another application keeps its session");
    assert!(location(&authorize(&app, Some(&p.cookie), &q).await).starts_with("/consent?"), "asked again");
    assert_eq!(withdraw(rp.id.clone(), true).await.unwrap().status(), StatusCode::NOT_FOUND, "nothing left to withdraw");
    let kinds = audit_kinds(&app).await;
    assert!(kinds.iter().any(|k| k == "consent.granted") && kinds.iter().any(|k| k == "consent.withdrawn"), "{kinds:?}");
}

#[tokio::test]
async fn a_login_after_marker_the_client_wrote_does_not_skip_the_new_sign_in() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    app.advance(Duration::from_secs(120));
    // A genuine marker, made for another request (another PKCE challenge).
    let res = authorize(&app, Some(&p.cookie), &query(&rp, &[("prompt", "login"), ("code_challenge", &"A".repeat(43))])).await;
    let loc = location(&res);
    let params: HashMap<String, String> = url::Url::parse(&format!("http://x{loc}")).unwrap().query_pairs().into_owned().collect();
    let returned: HashMap<String, String> =
        url::Url::parse(&format!("http://x{}", params["return_to"])).unwrap().query_pairs().into_owned().collect();
    let genuine = returned["login_after"].clone();
    assert!(genuine.contains('.'), "signed: {genuine}");
    let millis = genuine.split('.').next().unwrap().to_owned();

    for forged in ["0", "0.AAAA", &millis, &format!("{millis}.AAAA"), &genuine] {
        for extra in [("prompt", "login"), ("max_age", "60")] {
            let res = authorize(&app, Some(&p.cookie), &query(&rp, &[extra, ("login_after", forged)])).await;
            assert!(location(&res).starts_with("/login?"), "{extra:?} with login_after={forged}");
        }
    }
}

#[tokio::test]
async fn introspection_and_revocation_of_an_applications_tokens_name_the_application() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let p = person(&app).await;
    let body = tokens(&app, &rp, &code_for(&app, &p, &rp, &[]).await).await;
    let introspect = |token: String| {
        app.client.post(app.url("/oauth2/introspect")).basic_auth(&rp.id, rp.secret.as_ref()).form(&[("token", token)]).send()
    };
    for kind in ["access_token", "refresh_token"] {
        let answer: Value = introspect(body[kind].as_str().unwrap().to_owned()).await.unwrap().json().await.unwrap();
        assert_eq!(answer["active"], true, "{kind}: {answer}");
        assert_eq!(answer["client_id"], rp.id.as_str(), "{kind}: {answer}");
        assert_eq!(answer["sub"], p.user.id.to_string());
    }
    // RFC 7009: the application may revoke its own refresh token.
    let refresh = body["refresh_token"].as_str().unwrap();
    let res =
        app.client.post(app.url("/oauth2/revoke")).basic_auth(&rp.id, rp.secret.as_ref()).form(&[("token", refresh)]).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = introspect(refresh.to_owned()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["active"], false);
    // A person's own refresh token still says the first-party client.
    let email = unique_email();
    app.register(&email).await;
    let own = app.login(&email).await;
    let answer: Value = introspect(own["refresh_token"].as_str().unwrap().to_owned()).await.unwrap().json().await.unwrap();
    assert_eq!(answer["client_id"], "tessera", "{answer}");
}

#[tokio::test]
async fn signing_out_on_the_page_and_through_rp_logout_is_one_path_recorded_alike() {
    let app = spawn_app().await;
    let rp = application(&app, false, true).await;
    let hinted = person(&app).await;
    let on_page = person(&app).await;
    let online = tokens(&app, &rp, &code_for(&app, &on_page, &rp, &[]).await).await;
    let id_token = tokens(&app, &rp, &code_for(&app, &hinted, &rp, &[]).await).await["id_token"].as_str().unwrap().to_owned();

    let hint = serde_urlencoded::to_string([("id_token_hint", id_token.as_str())]).unwrap();
    let res = app.client.get(app.url(&format!("/oauth2/logout?{hint}"))).header("cookie", &hinted.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (csrf, token) = form_token(&app, "/logout", &on_page.cookie).await;
    let res = app
        .client
        .post(app.url("/logout"))
        .header("cookie", format!("{}; {csrf}", on_page.cookie))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.get_with("/oauth2/userinfo", online["access_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);

    let admin = app.admin_token().await;
    let audit: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();
    let signed_out: Vec<String> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "logout.page")
        .filter_map(|e| e["actor"].as_str().map(str::to_owned))
        .collect();
    for who in [&hinted, &on_page] {
        assert_eq!(signed_out.iter().filter(|a| **a == who.user.id.to_string()).count(), 1, "{signed_out:?}");
    }
    // Signing out again (the session already ended) records nothing more.
    let res = app.client.get(app.url(&format!("/oauth2/logout?{hint}"))).header("cookie", &hinted.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let audit: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();
    assert_eq!(audit["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "logout.page").count(), 2);
}
