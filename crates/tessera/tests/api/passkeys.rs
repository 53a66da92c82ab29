//! Passkeys over HTTP: enrolment, list and removal, sign-in with a passkey alone and as the
//! second step of a password sign-in, challenges single use for five minutes, counters, and
//! passkeys turned off. The ceremonies are driven by a software authenticator (1Password's
//! `passkey` crate) holding one passkey, as a browser on the issuer's origin would.

use crate::helpers::{PASSWORD, TestApp, claims_of, problem, spawn_app_with, unique_email};
use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::crypto::rust_crypto::RustCryptoBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use url::Url;

/// The issuer of these tests: a domain name (browsers refuse WebAuthn on an IP address).
const ISSUER: &str = "http://localhost:8443";

/// The person always verifies themselves (a fingerprint, a PIN).
struct Verified;

#[async_trait::async_trait]
impl UserValidationMethod for Verified {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(&self, _hint: UiHint<'a, Passkey>, _presence: bool, _verification: bool) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck { presence: true, verification: true })
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }
}

/// The credential JSON a browser's `toJSON()` gives: binary values base64url (the crate
/// writes them as arrays of bytes).
fn as_browser_json(value: Value) -> Value {
    use base64::Engine;
    match value {
        Value::Array(items) if !items.is_empty() && items.iter().all(|i| i.as_u64().is_some_and(|n| n < 256)) => {
            let bytes: Vec<u8> = items.iter().filter_map(Value::as_u64).filter_map(|n| u8::try_from(n).ok()).collect();
            Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(as_browser_json).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, as_browser_json(v))).collect()),
        other => other,
    }
}

/// A device holding (at most) one passkey, on `origin`.
pub struct Device {
    origin: Url,
    passkey: Option<Passkey>,
}

impl Device {
    pub fn new(origin: &str) -> Device {
        Device { origin: Url::parse(origin).unwrap(), passkey: None }
    }

    /// The authenticator, holding the device's passkey until it is put back.
    fn authenticator(&mut self) -> Authenticator<Option<Passkey>, Verified, RustCryptoBackend> {
        let mut authenticator = Authenticator::new(Aaguid::new_empty(), self.passkey.take(), Verified, RustCryptoBackend);
        authenticator.set_make_credentials_with_signature_counter(true);
        authenticator
    }

    /// `navigator.credentials.create` with the server's options: the credential as JSON.
    pub async fn create(&mut self, options: &Value) -> Value {
        let mut options = options.clone();
        options.as_object_mut().unwrap().remove("extensions");
        let request: CredentialCreationOptions = serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let created = client.register(&self.origin, request, DefaultClientData).await;
        self.passkey = client.authenticator().store().clone();
        as_browser_json(serde_json::to_value(created.expect("the authenticator makes a passkey")).unwrap())
    }

    /// `navigator.credentials.get` with the server's options: the assertion as JSON.
    pub async fn get(&mut self, options: &Value) -> Value {
        let mut options = options.clone();
        options.as_object_mut().unwrap().remove("extensions");
        let request: CredentialRequestOptions = serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let mut client = Client::new(self.authenticator()).allows_insecure_localhost(true);
        let asserted = client.authenticate(&self.origin, request, DefaultClientData).await;
        self.passkey = client.authenticator().store().clone();
        as_browser_json(serde_json::to_value(asserted.expect("the authenticator signs")).unwrap())
    }
}

/// A Tessera whose issuer is [`ISSUER`].
async fn passkey_app() -> TestApp {
    spawn_app_with(|c| c.issuer = ISSUER.to_owned()).await
}

/// Registers someone: `(email, fresh access token)`.
async fn person(app: &TestApp) -> (String, String) {
    let email = unique_email();
    let token = app.register(&email).await["access_token"].as_str().unwrap().to_owned();
    (email, token)
}

/// Enrols a passkey of `device` for the holder of `token`: the 201 body.
async fn enrol(app: &TestApp, token: &str, device: &mut Device, name: Option<&str>) -> Value {
    let res = app.send_with(Method::POST, "/v1/users/me/passkeys/registration", token, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ceremony: Value = res.json().await.unwrap();
    let credential = device.create(&ceremony["options"]).await;
    let body = json!({ "challenge_id": ceremony["challenge_id"], "credential": credential, "name": name });
    let res = app.send_with(Method::POST, "/v1/users/me/passkeys", token, Some(&body)).await;
    let status = res.status();
    let added: Value = res.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{added}");
    added
}

/// A passkey sign-in ceremony: `(challenge_id, options)`.
async fn sign_in_options(app: &TestApp, body: &Value) -> (String, Value) {
    let res = app.post_json("/v1/auth/passkey/options", body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ceremony: Value = res.json().await.unwrap();
    (ceremony["challenge_id"].as_str().unwrap().to_owned(), ceremony["options"].clone())
}

async fn sign_in(app: &TestApp, challenge_id: &str, credential: &Value) -> reqwest::Response {
    app.post_json("/v1/auth/passkey", &json!({ "challenge_id": challenge_id, "credential": credential })).await
}

/// The stored counter of the person's only passkey.
async fn stored_counter(app: &TestApp, token: &str) -> u64 {
    let user: tessera::domain::UserId = claims_of(token)["sub"].as_str().unwrap().parse().unwrap();
    let stored = app.tessera.store().passkeys_of(user).await.unwrap();
    let credential: Value = serde_json::from_str(&stored[0].credential).unwrap();
    credential["cred"]["counter"].as_u64().unwrap()
}

#[tokio::test]
async fn a_person_enrols_a_passkey_lists_it_and_signs_in_with_it_alone() {
    let app = passkey_app().await;
    let (email, token) = person(&app).await;
    let mut device = Device::new(ISSUER);

    let registration: Value = app.send_with(Method::POST, "/v1/users/me/passkeys/registration", &token, None).await.json().await.unwrap();
    let options = &registration["options"];
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    let added = enrol(&app, &token, &mut device, Some("Laptop")).await;
    assert_eq!(added["name"], "Laptop");
    assert!(added["created_at"].is_string() && added["last_used_at"].is_null(), "{added}");

    let list: Value = app.get_with("/v1/users/me/passkeys", &token).await.json().await.unwrap();
    assert_eq!(list["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(list["passkeys"][0]["id"], added["id"]);
    let me: Value = app.get_with("/v1/users/me", &token).await.json().await.unwrap();
    assert_eq!(me["two_factor"], true);

    let (challenge_id, options) = sign_in_options(&app, &json!({})).await;
    assert_eq!(options["allowCredentials"].as_array().map_or(0, Vec::len), 0, "any passkey of this site");
    assert_eq!(options["userVerification"], "required");
    let res = sign_in(&app, &challenge_id, &device.get(&options).await).await;

    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["user"]["email"], email.as_str());
    let claims = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["fresh"], true);
    assert_eq!(claims["amr"], json!(["hwk", "user", "mfa"]));
    let list: Value = app.get_with("/v1/users/me/passkeys", &token).await.json().await.unwrap();
    assert!(list["passkeys"][0]["last_used_at"].is_string(), "{list}");
    let kinds = audit(&app).await;
    assert!(kinds.iter().any(|(k, d)| k == "passkey.enrolled" && d == "Laptop"), "{kinds:?}");
    assert!(kinds.iter().any(|(k, d)| k == "login.succeeded" && d == "by passkey"), "{kinds:?}");
}

/// `(kind, detail)` of every audit event.
async fn audit(app: &TestApp) -> Vec<(String, String)> {
    let admin = app.admin_token().await;
    let trail: Value = app.get_with("/v1/audit?limit=200", &admin).await.json().await.unwrap();
    trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap_or_default().to_owned(), e["detail"].as_str().unwrap_or_default().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_password_sign_in_of_a_person_with_a_passkey_finishes_with_the_passkey() {
    let app = passkey_app().await;
    let (email, token) = person(&app).await;
    let mut device = Device::new(ISSUER);
    let added = enrol(&app, &token, &mut device, None).await;
    assert_eq!(added["name"], "Passkey 1");

    let res = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    let refused = problem(res, StatusCode::FORBIDDEN, "mfa_required").await;
    assert_eq!(refused["methods"], json!(["passkey"]));
    let mfa_token = refused["mfa_token"].as_str().unwrap();
    let (challenge_id, options) = sign_in_options(&app, &json!({ "mfa_token": mfa_token })).await;
    assert_eq!(options["allowCredentials"].as_array().unwrap().len(), 1, "the person's passkeys");
    let credential = device.get(&options).await;
    let body = json!({ "mfa_token": mfa_token, "challenge_id": challenge_id, "credential": credential });
    let res = app.post_json("/v1/auth/login/mfa", &body).await;

    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let claims = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "hwk", "user", "mfa"]));
    assert_eq!(claims["fresh"], true);
    let again = app.post_json("/v1/auth/login/mfa", &body).await;
    problem(again, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
}

#[tokio::test]
async fn a_passkey_challenge_works_once_and_for_five_minutes() {
    let app = passkey_app().await;
    let (_, token) = person(&app).await;
    let mut device = Device::new(ISSUER);
    enrol(&app, &token, &mut device, None).await;

    let (challenge_id, options) = sign_in_options(&app, &json!({})).await;
    let credential = device.get(&options).await;
    assert_eq!(sign_in(&app, &challenge_id, &credential).await.status(), StatusCode::OK);
    problem(sign_in(&app, &challenge_id, &credential).await, StatusCode::BAD_REQUEST, "invalid_challenge").await;

    let (challenge_id, options) = sign_in_options(&app, &json!({})).await;
    let credential = device.get(&options).await;
    app.advance(Duration::from_secs(5 * 60 + 1));
    problem(sign_in(&app, &challenge_id, &credential).await, StatusCode::BAD_REQUEST, "invalid_challenge").await;

    // Starting an enrolment needs a sign-in within the fresh window (10 minutes here).
    app.advance(Duration::from_secs(5 * 60));
    let res = app.send_with(Method::POST, "/v1/users/me/passkeys/registration", &token, None).await;
    problem(res, StatusCode::FORBIDDEN, "fresh_token_required").await;
}

#[tokio::test]
async fn an_unknown_passkey_or_one_of_another_site_is_refused() {
    let app = passkey_app().await;
    let (_, token) = person(&app).await;
    let mut device = Device::new(ISSUER);
    enrol(&app, &token, &mut device, None).await;

    // A passkey this server never registered (another device's, for the same site).
    let mut stranger = Device::new(ISSUER);
    let other = passkey_app().await;
    let (_, other_token) = person(&other).await;
    enrol(&other, &other_token, &mut stranger, None).await;
    let (challenge_id, options) = sign_in_options(&app, &json!({})).await;
    let res = sign_in(&app, &challenge_id, &stranger.get(&options).await).await;
    problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    // The right passkey, on another origin.
    let (challenge_id, options) = sign_in_options(&app, &json!({})).await;
    let mut elsewhere = Device { origin: Url::parse("http://localhost:9999").unwrap(), passkey: device.passkey.clone() };
    let res = sign_in(&app, &challenge_id, &elsewhere.get(&options).await).await;
    problem(res, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert!(audit(&app).await.iter().any(|(k, d)| k == "login.failed" && d.ends_with("by passkey")));
}

#[tokio::test]
async fn another_persons_passkey_does_not_finish_a_password_sign_in_and_counts_as_a_wrong_code() {
    let app = passkey_app().await;
    let (email, token) = person(&app).await;
    let mut mine = Device::new(ISSUER);
    enrol(&app, &token, &mut mine, None).await;
    let (_, their_token) = person(&app).await;
    let mut theirs = Device::new(ISSUER);
    enrol(&app, &their_token, &mut theirs, None).await;

    let res = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    let mfa_token = problem(res, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"].as_str().unwrap().to_owned();
    let (challenge_id, options) = sign_in_options(&app, &json!({ "mfa_token": mfa_token })).await;
    let mut allow_all = options.clone();
    allow_all["allowCredentials"] = json!([]);
    let credential = theirs.get(&allow_all).await;
    let body = json!({ "mfa_token": mfa_token, "challenge_id": challenge_id, "credential": credential });
    problem(app.post_json("/v1/auth/login/mfa", &body).await, StatusCode::UNAUTHORIZED, "invalid_code").await;
    assert!(audit(&app).await.iter().any(|(k, d)| k == "mfa.failed" && d.starts_with("wrong passkey")));

    // The pending sign-in still works with the right passkey and a new challenge.
    let (challenge_id, options) = sign_in_options(&app, &json!({ "mfa_token": mfa_token })).await;
    let body = json!({ "mfa_token": mfa_token, "challenge_id": challenge_id, "credential": mine.get(&options).await });
    assert_eq!(app.post_json("/v1/auth/login/mfa", &body).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_sign_in_stores_the_passkeys_new_counter() {
    let app = passkey_app().await;
    let (_, token) = person(&app).await;
    let mut device = Device::new(ISSUER);
    enrol(&app, &token, &mut device, None).await;
    let before = stored_counter(&app, &token).await;

    for _ in 0..2 {
        let (challenge_id, options) = sign_in_options(&app, &json!({})).await;
        assert_eq!(sign_in(&app, &challenge_id, &device.get(&options).await).await.status(), StatusCode::OK);
    }

    assert_eq!(stored_counter(&app, &token).await, before + 2);
}

#[tokio::test]
async fn removing_a_passkey_needs_a_fresh_token_and_the_last_one_takes_the_recovery_codes() {
    let app = passkey_app().await;
    let (email, token) = person(&app).await;
    let mut device = Device::new(ISSUER);
    let added = enrol(&app, &token, &mut device, None).await;
    let codes = app.send_with(Method::POST, "/v1/users/me/recovery-codes", &token, None).await;
    assert_eq!(codes.status(), StatusCode::OK, "a passkey is a second factor recovery codes stand in for");
    let path = format!("/v1/users/me/passkeys/{}", added["id"].as_str().unwrap());

    app.advance(Duration::from_secs(11 * 60));
    problem(app.send_with(Method::DELETE, &path, &token, None).await, StatusCode::FORBIDDEN, "fresh_token_required").await;
    let (challenge_id, options) = sign_in_options(&app, &json!({})).await;
    let fresh: Value = sign_in(&app, &challenge_id, &device.get(&options).await).await.json().await.unwrap();
    let fresh = fresh["access_token"].as_str().unwrap();

    assert_eq!(app.send_with(Method::DELETE, &path, fresh, None).await.status(), StatusCode::NO_CONTENT);
    problem(app.send_with(Method::DELETE, &path, fresh, None).await, StatusCode::NOT_FOUND, "not_found").await;
    let list: Value = app.get_with("/v1/users/me/passkeys", fresh).await.json().await.unwrap();
    assert_eq!(list["passkeys"], json!([]));
    let user: tessera::domain::UserId = claims_of(fresh)["sub"].as_str().unwrap().parse().unwrap();
    assert_eq!(app.tessera.second_factors(user).await.unwrap().recovery_codes, 0, "no second factor left to stand in for");
    app.login(&email).await;
    assert!(audit(&app).await.iter().any(|(k, _)| k == "passkey.removed"));
}

/// Every passkey endpoint answers 404 and `methods` never names `passkey`.
async fn assert_passkeys_are_off(app: &TestApp) {
    let (email, token) = person(app).await;
    for (method, path) in [
        (Method::POST, "/v1/users/me/passkeys/registration"),
        (Method::POST, "/v1/users/me/passkeys"),
        (Method::GET, "/v1/users/me/passkeys"),
        (Method::DELETE, "/v1/users/me/passkeys/x"),
        (Method::POST, "/v1/auth/passkey/options"),
        (Method::POST, "/v1/auth/passkey"),
    ] {
        let body = json!({ "challenge_id": "x", "credential": {} });
        let res = app.send_with(method.clone(), path, &token, Some(&body)).await;
        problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let secret: Value = app.send_with(Method::POST, "/v1/users/me/totp", &token, None).await.json().await.unwrap();
    let secret = totp_rs::Secret::try_from_base32(secret["secret"].as_str().unwrap()).unwrap();
    let now = u64::try_from(tessera::clock::Clock::now(&app.clock).unix_timestamp()).unwrap();
    let code = tessera::domain::factors::TotpSecret::from_bytes(secret.as_bytes().to_vec()).code_at(now).unwrap();
    let res = app.send_with(Method::POST, "/v1/users/me/totp/confirm", &token, Some(&json!({ "code": code }))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(problem(res, StatusCode::FORBIDDEN, "mfa_required").await["methods"], json!(["totp", "recovery_code"]));
    let login_page = app.get("/login").await.text().await.unwrap();
    assert!(!login_page.contains("id=\"passkey\"") && !login_page.contains("webauthn"), "{login_page}");
}

#[tokio::test]
async fn turning_passkeys_off_removes_their_endpoints_and_the_method() {
    let app = spawn_app_with(|c| {
        c.issuer = ISSUER.to_owned();
        c.passkeys = false;
    })
    .await;
    assert_passkeys_are_off(&app).await;
}

#[tokio::test]
async fn an_issuer_on_an_ip_address_has_no_passkeys() {
    let app = spawn_app_with(|c| c.issuer = "http://127.0.0.1:8443".to_owned()).await;
    assert_passkeys_are_off(&app).await;
}

#[tokio::test]
async fn the_sign_in_page_offers_passkeys_with_the_autofill_token() {
    let app = passkey_app().await;
    let page = app.get("/login").await.text().await.unwrap();
    assert!(page.contains("id=\"passkey\""), "{page}");
    assert!(page.contains("autocomplete=\"username webauthn\""), "{page}");
    assert!(page.contains("/assets/passkeys-"), "{page}");
}

#[tokio::test]
async fn the_pages_enrol_a_passkey_and_sign_in_with_it_through_their_own_endpoints_with_csrf() {
    use crate::pages::{Browser, SESSION};
    let app = passkey_app().await;
    let email = unique_email();
    app.register(&email).await;
    let mut device = Device::new(ISSUER);
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in(&email, PASSWORD).await.status, StatusCode::SEE_OTHER);
    let account = browser.get("/account").await;
    assert!(account.body.contains("id=\"add-passkey\"") && account.body.contains("/assets/passkeys-"), "{}", account.body);

    for action in ["/account/passkeys/options", "/account/passkeys", "/account/passkeys/remove", "/login/passkey/options", "/login/passkey"]
    {
        assert_eq!(browser.send(Method::POST, action, Some(&[("id", "x")])).await.status, StatusCode::FORBIDDEN, "{action}");
    }
    let options = browser.submit("/account", "/account/passkeys/options", &[]).await;
    assert_eq!(options.status, StatusCode::OK, "{}", options.body);
    let ceremony: Value = serde_json::from_str(&options.body).unwrap();
    let credential = device.create(&ceremony["options"]).await.to_string();
    let fields = [("challenge_id", ceremony["challenge_id"].as_str().unwrap()), ("credential", credential.as_str()), ("name", "Phone")];
    let added = browser.submit("/account", "/account/passkeys", &fields).await;
    assert_eq!(added.location.as_deref(), Some("/account?passkey=added#passkeys-title"), "{}", added.body);
    let account = browser.get("/account?passkey=added").await;
    assert!(account.body.contains("Phone") && account.body.contains("The passkey was added"), "{}", account.body);

    // Another browser signs in with the passkey alone and goes where it was going.
    let mut other = Browser::new(&app);
    let options = other.submit("/login", "/login/passkey/options", &[]).await;
    let ceremony: Value = serde_json::from_str(&options.body).unwrap();
    let credential = device.get(&ceremony["options"]).await.to_string();
    let fields = [
        ("challenge_id", ceremony["challenge_id"].as_str().unwrap()),
        ("credential", credential.as_str()),
        ("return_to", "/account"),
        ("mfa_token", ""),
    ];
    let signed_in = other.submit("/login", "/login/passkey", &fields).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/account"));
    assert!(signed_in.set_cookie(SESSION).is_some());
    let replayed = other.submit("/login?return_to=%2Faccount", "/login/passkey", &fields).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert!(replayed.alert().unwrap_or_default().contains("passkey was not accepted"), "{}", replayed.body);

    // A password sign-in now offers the passkey as its second step.
    let mut third = Browser::new(&app);
    let second = third.sign_in(&email, PASSWORD).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(second.body.contains("id=\"passkey\"") && second.body.contains("Use your passkey"), "{}", second.body);
}
