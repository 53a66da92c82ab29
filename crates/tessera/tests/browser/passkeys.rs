//! Passkeys in Chromium, with its virtual authenticator (WebDriver's WebAuthn extension: a
//! CTAP2 platform authenticator with resident keys and user verification): a person registers,
//! adds a passkey on `/account` with `#add-passkey`, signs out, signs in with `#passkey` alone,
//! and signs in to an application through the authorization code flow with the passkey, which
//! the id_token's `amr` reports.
//!
//! Browsers allow WebAuthn only on a domain name, so this runs against the second server,
//! whose issuer is `http://localhost:PORT`.

use crate::authorize::application_server;
use crate::browser::{Browser, browser};
use crate::helpers::{PASSWORD, claims_of, unique_email};
use crate::server::{Server, localhost_server};
use crate::signin::{WAIT, heading, sign_in_with, wait_for_heading};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A virtual platform authenticator of the shared browser (removed at the end of the test).
struct Authenticator(String);

impl Authenticator {
    async fn add(browser: &Browser) -> Authenticator {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let id = browser.command(Method::POST, "/webauthn/authenticator", Some(options)).await.expect("a virtual authenticator");
        Authenticator(id.as_str().expect("its id").to_owned())
    }

    /// The passkeys it holds.
    async fn credentials(&self, browser: &Browser) -> Vec<Value> {
        let path = format!("/webauthn/authenticator/{}/credentials", self.0);
        browser.command(Method::GET, &path, None).await.expect("its credentials").as_array().cloned().unwrap_or_default()
    }

    async fn remove(self, browser: &Browser) {
        let _ = browser.command(Method::DELETE, &format!("/webauthn/authenticator/{}", self.0), None).await;
    }
}

/// A third-party application on `server`: `(client_id, client_secret, redirect_uri)`.
async fn application(server: &Server) -> (String, String, String) {
    let redirect_uri = application_server().await;
    let admin = unique_email();
    server.create_admin(&admin).await;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(server.url("/v1/auth/login"))
        .json(&json!({ "email": admin, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = http
        .post(server.url("/v1/clients"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .json(&json!({ "name": "Notes", "scopes": ["notes:read"], "redirect_uris": [redirect_uri] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    (created["client_id"].as_str().unwrap().to_owned(), created["client_secret"].as_str().unwrap().to_owned(), redirect_uri)
}

/// Waits until the browser is at `prefix`; returns the query it arrived with.
async fn arrived_at(browser: &Browser, prefix: &str) -> HashMap<String, String> {
    let start = Instant::now();
    loop {
        let url = browser.current_url().await;
        if url.starts_with(prefix) {
            return url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
        }
        assert!(start.elapsed() < WAIT, "the browser did not reach {prefix}; it is at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_person_adds_a_passkey_on_the_account_page_then_signs_in_with_it_alone_and_through_an_application() {
    let server = localhost_server();
    let (client_id, client_secret, redirect_uri) = application(server).await;
    let browser = browser().await;
    let authenticator = Authenticator::add(&browser).await;

    // Registering through the page.
    let email = unique_email();
    browser.goto(&server.url("/register")).await;
    browser.find("#email").await.send_keys(&email).await;
    browser.find("#password").await.send_keys(PASSWORD).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_heading(&browser, "Your account").await;

    // Adding a passkey.
    assert_eq!(browser.find("#passkeys-title").await.text().await, "Passkeys");
    browser.assert_accessible().await;
    browser.find("#passkey-name").await.send_keys("This laptop").await;
    browser.find("#add-passkey").await.click().await;
    arrived_at(&browser, &server.url("/account?passkey=added")).await;
    wait_for_heading(&browser, "Your account").await;
    let listed = browser.find("section[aria-labelledby='passkeys-title'] .session-title").await.text().await;
    assert_eq!(listed, "This laptop");
    assert_eq!(authenticator.credentials(&browser).await.len(), 1);
    assert!(authenticator.credentials(&browser).await[0]["isResidentCredential"] == true, "a discoverable credential");
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(None).await;
    browser.screenshot_as("account-passkeys").await;

    // Signing out, then in with the passkey alone.
    sign_out(&browser, server).await;
    // The identifier field's autofill (conditional mediation): Chromium's virtual
    // authenticator picks the one passkey at once, so opening the page signs in.
    browser.goto(&server.url("/login")).await;
    arrived_at(&browser, &server.url("/account")).await;
    wait_for_heading(&browser, "Your account").await;
    sign_out(&browser, server).await;
    // The button: with the autofill hidden from the page's script, as in a browser without it.
    browser.cdp("Page.enable", json!({})).await;
    let hide = "Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: undefined });";
    let hidden = browser.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": hide })).await;
    // The script applies from the next document on; one page in between makes sure of it.
    browser.goto(&server.url("/password/forgot")).await;
    assert_eq!(browser.execute("return typeof PublicKeyCredential.isConditionalMediationAvailable", json!([])).await, "undefined");
    browser.goto(&server.url("/login")).await;
    wait_for_heading(&browser, "Sign in").await;
    assert_eq!(browser.find("#identifier").await.attribute("autocomplete").await.as_deref(), Some("username webauthn"));
    browser.assert_accessible().await;
    browser.find("#passkey").await.click().await;
    // The script submits its form once the browser answered: the page changes later.
    arrived_at(&browser, &server.url("/account")).await;
    wait_for_heading(&browser, "Your account").await;
    browser.assert_clean_console(None).await;

    // The authorization code flow, signing in again (prompt=login) with the passkey.
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("scope", "openid email notes:read"),
        ("state", "passkey"),
        ("nonce", "n-passkey"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("prompt", "login"),
    ])
    .unwrap();
    browser.goto(&server.url(&format!("/oauth2/authorize?{query}"))).await;
    wait_for_heading(&browser, "Sign in").await;
    browser.find("#passkey").await.click().await;
    arrived_at(&browser, &server.url("/consent")).await;
    wait_for_heading(&browser, "Allow Notes?").await;
    browser.find("button[name=decision][value=allow]").await.click().await;
    let params = arrived_at(&browser, &redirect_uri).await;
    assert_eq!(heading(&browser).await, "Back at Notes");
    assert_eq!(params.get("state").map(String::as_str), Some("passkey"));
    let res = reqwest::Client::new()
        .post(server.url("/oauth2/token"))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("code_verifier", VERIFIER),
            ("redirect_uri", redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let id_token = claims_of(body["id_token"].as_str().unwrap());
    let amr: Vec<&str> = id_token["amr"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    assert!(amr.contains(&"hwk") && amr.contains(&"user") && amr.contains(&"mfa"), "{amr:?}");
    assert!(!amr.contains(&"pwd"), "{amr:?}");
    assert_eq!(id_token["email"], email.as_str());

    // A password sign-in of this person now asks for the passkey as its second step.
    sign_out(&browser, server).await;
    browser.goto(&server.url("/login")).await;
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Confirm it is you").await;
    browser.assert_accessible().await;
    browser.find("#passkey").await.click().await;
    // The script submits its form once the browser answered: the page changes later.
    arrived_at(&browser, &server.url("/account")).await;
    wait_for_heading(&browser, "Your account").await;
    browser.cdp("Page.removeScriptToEvaluateOnNewDocument", json!({ "identifier": hidden["identifier"] })).await;
    authenticator.remove(&browser).await;
}

async fn sign_out(browser: &Browser, server: &Server) {
    browser.goto(&server.url("/logout")).await;
    wait_for_heading(browser, "Sign out?").await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_heading(browser, "You are signed out").await;
}
