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

mod endpoints;
mod flow;
mod logout;
mod prompts;

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
    let (csrf_cookie, token, html) = csrf_form(res).await;
    assert!(html.contains("Notes"), "the application's name is shown");
    assert!(html.contains(r#"name="decision" value="allow""#) && html.contains(r#"name="decision" value="deny""#), "{html}");
    assert!(html.contains("See your email address"), "scopes in plain words");
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

/// A page's CSRF cookie (`name=value`) and the token of its forms.
async fn form_token(app: &TestApp, path: &str, cookie: &str) -> (String, String) {
    let res = app.client.get(app.url(path)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let (csrf_cookie, token, _) = csrf_form(res).await;
    (csrf_cookie, token)
}

/// A form page's CSRF cookie (`name=value`), the token of its forms, and the page.
async fn csrf_form(res: Response) -> (String, String, String) {
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
    (csrf_cookie, token, html)
}

async fn audit_kinds(app: &TestApp) -> Vec<String> {
    let admin = app.admin_token().await;
    let audit: Value = app.get_with("/v1/audit?limit=100", &admin).await.json().await.unwrap();
    audit["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}
