//! End to end: a real Tessera and notes, both in-process on 127.0.0.1, talking over HTTP.
//! Notes authenticates only through tessera-verify (Tessera's JWKS and revocation feed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tessera_verify::{Clock, SystemClock, Verifier, VerifierBuilder};
use tokio::sync::oneshot;

const PASSWORD: &str = "correct horse battery staple";
/// `Config::for_tests` issues tokens with this `iss` and `aud`; Tessera is reached at its real address.
const ISSUER: &str = "http://tessera.test";

/// A running Tessera, with a client registered for notes' revocation feed.
struct Tessera {
    base: String,
    service: Arc<tessera::service::Tessera>,
    notes_client: (String, String),
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Tessera {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn spawn_tessera() -> Tessera {
    let dir = tempfile::tempdir().unwrap();
    let config = tessera::config::Config::for_tests(&format!("sqlite://{}", dir.path().join("t.db").display()));
    let app = tessera::startup::Application::build(&config, Arc::new(tessera::clock::SystemClock)).await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let service = app.tessera().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let mut tessera =
        Tessera { base, service, notes_client: (String::new(), String::new()), http: reqwest::Client::new(), stop: Some(stop), _dir: dir };
    tessera.notes_client = tessera.client(&[]).await;
    tessera
}

impl Tessera {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers a person; returns the 201 body (user and fresh tokens).
    async fn register(&self, email: &str) -> Value {
        let res = self.http.post(self.url("/v1/auth/register")).json(&json!({"email": email, "password": PASSWORD})).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    async fn login(&self, email: &str) -> String {
        let res = self.http.post(self.url("/v1/auth/login")).json(&json!({"email": email, "password": PASSWORD})).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    /// A person with an access token.
    async fn person(&self) -> String {
        let email = format!("u-{}@example.com", uuid::Uuid::new_v4().simple());
        self.register(&email).await;
        self.login(&email).await
    }

    async fn admin(&self) -> String {
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
        let registration = tessera::service::Registration { email: email.clone(), password: PASSWORD.into(), username: None, admin: true };
        self.service.create_user(registration).await.unwrap();
        self.login(&email).await
    }

    /// Registers a service client with `scopes`; returns (id, secret).
    async fn client(&self, scopes: &[&str]) -> (String, String) {
        let spec = tessera::service::ClientSpec {
            name: format!("svc-{}", uuid::Uuid::new_v4().simple()),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let created = self.service.register_client(spec).await.unwrap();
        (created.client.id.to_string(), created.secret.unwrap().expose().to_owned())
    }

    /// A client-credentials access token for a new client with `scopes`.
    async fn client_token(&self, scopes: &[&str]) -> String {
        let (id, secret) = self.client(scopes).await;
        let res = self
            .http
            .post(self.url("/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }
}

/// A running notes service and the verifier it uses.
struct Notes {
    base: String,
    verifier: Verifier,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Notes {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts notes configured as its `main` would be (through `NOTES_*` values), with
/// `adjust` applied to the verifier options.
async fn spawn_notes(tessera: &Tessera, adjust: impl FnOnce(VerifierBuilder) -> VerifierBuilder) -> Notes {
    let config = notes::config::Config::from_vars([
        ("NOTES_TESSERA_ISSUER".to_owned(), ISSUER.to_owned()),
        ("NOTES_TESSERA_URL".to_owned(), tessera.base.clone()),
        ("NOTES_CLIENT_ID".to_owned(), tessera.notes_client.0.clone()),
        ("NOTES_CLIENT_SECRET".to_owned(), tessera.notes_client.1.clone()),
    ])
    .unwrap();
    let verifier = adjust(config.verifier()).build().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("notes.db").display());
    let app = notes::Application::build("127.0.0.1:0".parse().unwrap(), &url, verifier.clone()).await.unwrap();
    let base = format!("http://{}", app.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    Notes { base, verifier, http: reqwest::Client::new(), stop: Some(stop), _dir: dir }
}

impl Notes {
    async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> reqwest::Response {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    async fn create(&self, token: &str, title: &str) -> Value {
        let res = self.send(Method::POST, "/notes", Some(token), Some(json!({"title": title, "body": "text"}))).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    async fn titles(&self, token: &str) -> Vec<String> {
        let res = self.send(Method::GET, "/notes", Some(token), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["notes"].as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap().to_owned()).collect()
    }
}

/// Checks a problem+json answer like Tessera's; returns the body.
async fn problem(res: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status);
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "application/problem+json");
    if status == StatusCode::UNAUTHORIZED {
        let challenge = headers["www-authenticate"].to_str().unwrap();
        if code == "missing_token" {
            assert_eq!(challenge, r#"Bearer realm="tessera""#);
        } else {
            assert!(challenge.starts_with(r#"Bearer realm="tessera", error="invalid_token", error_description=""#), "{challenge}");
        }
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["type"], format!("urn:tessera:problem:{code}"));
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string() && body["detail"].is_string());
    body
}

fn part(token: &str, index: usize) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(index).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn a_logged_out_token_is_refused_by_notes_within_two_seconds() {
    let tessera = spawn_tessera().await;
    let notes = spawn_notes(&tessera, |b| b).await;
    let email = format!("ada-{}@example.com", uuid::Uuid::new_v4().simple());
    tessera.register(&email).await;
    let token = tessera.login(&email).await;

    let note = notes.create(&token, "shopping").await;
    let path = format!("/notes/{}", note["id"].as_str().unwrap());
    let res = notes.send(Method::GET, &path, Some(&token), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["title"], "shopping");

    let res = tessera.http.post(tessera.url("/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let logged_out = Instant::now();
    let deadline = logged_out + Duration::from_secs(2);
    loop {
        let res = notes.send(Method::GET, &path, Some(&token), None).await;
        if res.status() == StatusCode::UNAUTHORIZED {
            println!("notes refused the logged-out token {:?} after logout", logged_out.elapsed());
            problem(res, StatusCode::UNAUTHORIZED, "token_revoked").await;
            break;
        }
        assert!(Instant::now() < deadline, "still accepted 2 s after logout");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn notes_keeps_serving_across_a_key_rotation() {
    let tessera = spawn_tessera().await;
    let notes = spawn_notes(&tessera, |b| b).await;
    let admin = tessera.admin().await;
    let before = tessera.person().await;
    notes.create(&before, "before").await;

    let res = tessera.http.post(tessera.url("/v1/keys/rotate")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let after = tessera.person().await;
    assert_ne!(part(&before, 0)["kid"], part(&after, 0)["kid"], "the new token is signed by the new key");

    assert_eq!(notes.titles(&before).await, ["before"]);
    notes.create(&after, "after").await;
    assert_eq!(notes.titles(&after).await, ["after"]);
    // The next key was published before the rotation, so no refetch was needed.
    assert_eq!(notes.verifier.stats().jwks_fetches, 1);
}

#[tokio::test]
async fn forged_and_confused_tokens_are_refused_with_401() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let tessera = spawn_tessera().await;
    let notes = spawn_notes(&tessera, |b| b).await;
    let genuine = tessera.person().await;
    let header = part(&genuine, 0);
    let claims = part(&genuine, 1);
    let kid = header["kid"].as_str().unwrap().to_owned();

    // Signed by another key under Tessera's kid.
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let mut es = Header::new(Algorithm::ES256);
    es.kid = Some(kid.clone());
    es.typ = Some("at+jwt".into());
    let forged = encode(&es, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref())).unwrap();

    // alg none, and HS256 keyed with the published public key.
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid, "typ": "at+jwt"}).to_string());
    let unsigned = format!("{none_header}.{}.", genuine.split('.').nth(1).unwrap());
    let jwks: Value = tessera.http.get(tessera.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let public = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()).unwrap().to_string();
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    hs.typ = Some("at+jwt".into());
    let confused = encode(&hs, &claims, &EncodingKey::from_secret(public.as_bytes())).unwrap();

    // A genuine signature over a changed claim.
    let mut raised = claims.clone();
    raised["roles"] = json!(["admin"]);
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(raised.to_string()), parts[2]);

    for (what, token) in [("forged", &forged), ("alg none", &unsigned), ("HS256 with the public key", &confused), ("tampered", &tampered)] {
        let res = notes.send(Method::GET, "/notes", Some(token), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        problem(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    assert_eq!(notes.send(Method::GET, "/notes", Some(&genuine), None).await.status(), StatusCode::OK);

    problem(notes.send(Method::GET, "/notes", None, None).await, StatusCode::UNAUTHORIZED, "missing_token").await;
    let basic = notes.http.get(format!("{}/notes", notes.base)).basic_auth("a", Some("b")).send().await.unwrap();
    problem(basic, StatusCode::UNAUTHORIZED, "missing_token").await;
}

/// The system clock moved by an offset the test controls.
#[derive(Debug, Default)]
struct ShiftedClock(AtomicI64);

impl Clock for ShiftedClock {
    fn now(&self) -> i64 {
        SystemClock.now() + self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn an_expired_token_is_refused_with_token_expired() {
    let tessera = spawn_tessera().await;
    let clock = Arc::new(ShiftedClock::default());
    let notes = spawn_notes(&tessera, |b| b.clock(clock.clone())).await;
    let token = tessera.person().await;
    assert_eq!(notes.send(Method::GET, "/notes", Some(&token), None).await.status(), StatusCode::OK);

    let ttl = part(&token, 1)["exp"].as_i64().unwrap() - part(&token, 1)["iat"].as_i64().unwrap();
    clock.0.store(ttl + 4, Ordering::SeqCst);
    assert_eq!(notes.send(Method::GET, "/notes", Some(&token), None).await.status(), StatusCode::OK, "within the 5 s leeway");
    clock.0.store(ttl + 5, Ordering::SeqCst);
    problem(notes.send(Method::GET, "/notes", Some(&token), None).await, StatusCode::UNAUTHORIZED, "token_expired").await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let tessera = spawn_tessera().await;
    let notes = spawn_notes(&tessera, |b| b.audience("http://notes.test")).await;
    let token = tessera.person().await;
    let body = problem(notes.send(Method::GET, "/notes", Some(&token), None).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert!(body["detail"].as_str().unwrap().contains("audience"), "{body}");
}

#[tokio::test]
async fn a_client_token_for_another_api_is_refused_and_one_for_notes_is_accepted() {
    let tessera = spawn_tessera().await;
    let notes = spawn_notes(&tessera, |b| b.audience("http://notes.test")).await;
    let spec = tessera::service::ClientSpec {
        name: "reporting".into(),
        scopes: vec!["notes:read".into()],
        audiences: vec!["http://billing.test".into(), "http://notes.test".into()],
        ..Default::default()
    };
    let created = tessera.service.register_client(spec).await.unwrap();
    let secret = created.secret.clone().unwrap();
    let token_for = |resource: Option<&'static str>| {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(resource.map(|r| ("resource", r)));
        let request = tessera.http.post(tessera.url("/oauth2/token")).basic_auth(created.client.id.to_string(), Some(secret.expose()));
        async move { request.form(&form).send().await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned() }
    };

    let for_billing = token_for(Some("http://billing.test")).await;
    let by_default = token_for(None).await;
    let for_notes = token_for(Some("http://notes.test")).await;

    let body = problem(notes.send(Method::GET, "/notes", Some(&for_billing), None).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert!(body["detail"].as_str().unwrap().contains("audience"), "{body}");
    problem(notes.send(Method::GET, "/notes", Some(&by_default), None).await, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(notes.send(Method::GET, "/notes", Some(&for_notes), None).await.status(), StatusCode::OK);
    assert!(notes.verifier.verify(&for_billing).await.is_err());
}

#[tokio::test]
async fn owners_admins_and_scoped_clients_see_what_they_may() {
    let tessera = spawn_tessera().await;
    let notes = spawn_notes(&tessera, |b| b).await;
    let (ada, bob, admin) = (tessera.person().await, tessera.person().await, tessera.admin().await);
    let note = notes.create(&ada, "ada's").await;
    let path = format!("/notes/{}", note["id"].as_str().unwrap());
    notes.create(&bob, "bob's").await;

    // Owners see their own; another person's note does not exist for them.
    assert_eq!(notes.titles(&ada).await, ["ada's"]);
    assert_eq!(notes.titles(&bob).await, ["bob's"]);
    problem(notes.send(Method::GET, &path, Some(&bob), None).await, StatusCode::NOT_FOUND, "not_found").await;
    problem(notes.send(Method::PATCH, &path, Some(&bob), Some(json!({"title": "mine"}))).await, StatusCode::NOT_FOUND, "not_found").await;
    problem(notes.send(Method::DELETE, &path, Some(&bob), None).await, StatusCode::NOT_FOUND, "not_found").await;

    // The owner edits; validation answers 422.
    let res = notes.send(Method::PATCH, &path, Some(&ada), Some(json!({"title": "ada's list"}))).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["body"], "text");
    problem(
        notes.send(Method::PATCH, &path, Some(&ada), Some(json!({"title": " "}))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // Admins see every note; a client needs notes:read to list and notes:write to write.
    assert_eq!(notes.titles(&admin).await, ["ada's list", "bob's"]);
    let reader = tessera.client_token(&["notes:read"]).await;
    assert_eq!(notes.titles(&reader).await, ["ada's list", "bob's"]);
    assert_eq!(notes.send(Method::GET, &path, Some(&reader), None).await.status(), StatusCode::OK);
    problem(
        notes.send(Method::POST, "/notes", Some(&reader), Some(json!({"title": "t", "body": "b"}))).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let other = tessera.client_token(&["reports:read"]).await;
    problem(notes.send(Method::GET, "/notes", Some(&other), None).await, StatusCode::FORBIDDEN, "forbidden").await;

    // Owner or admin may delete.
    assert_eq!(notes.send(Method::DELETE, &path, Some(&admin), None).await.status(), StatusCode::NO_CONTENT);
    problem(notes.send(Method::GET, &path, Some(&ada), None).await, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_tessera_one_jwks_fetch_per_interval() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let tessera = spawn_tessera().await;
    let notes = spawn_notes(&tessera, |b| b).await;
    let claims = part(&tessera.person().await, 1);
    let key = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let key = EncodingKey::from_ec_der(key.as_ref());
    let started = Instant::now();
    for i in 0..50 {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(format!("bogus-{i}"));
        header.typ = Some("at+jwt".into());
        let token = encode(&header, &claims, &key).unwrap();
        let res = notes.send(Method::GET, "/notes", Some(&token), None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let fetches = notes.verifier.stats().jwks_fetches;
    let allowed = 1 + started.elapsed().as_secs() / 10 + 1;
    assert!(fetches <= allowed, "{fetches} JWKS fetches for 50 bogus kids in {:?}", started.elapsed());
}
