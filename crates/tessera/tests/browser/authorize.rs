//! The authorization code flow in the browser, as a person meets it through a third-party
//! application: the application sends the browser to `/oauth2/authorize`, the person signs in
//! on `/login` and allows the application on `/consent`, and the browser arrives back at the
//! application's redirect URI with a code, which the test then exchanges at `/oauth2/token`
//! as the application would. The application is a tiny loopback listener that answers every
//! request with a page of its own; the test reads the code from the browser's URL.

use crate::apache::{free_port, start_apache, upstream};
use crate::browser::{Browser, browser};
use crate::helpers::{PASSWORD, claims_of};
use crate::server::server;
use crate::signin::{WAIT, account, heading, sign_in_with, wait_for_heading};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A registered third-party application (not first-party: it gets the consent page).
pub(crate) struct App {
    id: String,
    secret: String,
    redirect_uri: String,
}

/// The application's web server: answers every request on a loopback port with a small page
/// (the browser must land somewhere real, with no error in its console). Returns the
/// redirect URI on it.
pub(crate) async fn application_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "<!doctype html><html lang=\"en\"><head><title>Notes</title></head><body><h1>Back at Notes</h1></body></html>";
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/cb")
}

/// Registers a third-party application named `name` with `redirect_uri`, through the admin API.
async fn register_application(name: &str, redirect_uri: &str) -> App {
    let admin = crate::helpers::unique_email();
    server().create_admin(&admin).await;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(server().url("/v1/auth/login"))
        .json(&json!({ "email": admin, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = http
        .post(server().url("/v1/clients"))
        .bearer_auth(login["access_token"].as_str().unwrap())
        .json(&json!({ "name": name, "scopes": ["notes:read"], "redirect_uris": [redirect_uri] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    App {
        id: created["client_id"].as_str().unwrap().to_owned(),
        secret: created["client_secret"].as_str().unwrap().to_owned(),
        redirect_uri: redirect_uri.to_owned(),
    }
}

pub(crate) async fn application() -> App {
    register_application("Notes", &application_server().await).await
}

/// The authorization request the application sends the browser to.
pub(crate) fn authorize_url(app: &App, state: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", app.id.as_str()),
        ("redirect_uri", app.redirect_uri.as_str()),
        ("scope", "openid email notes:read"),
        ("state", state),
        ("nonce", "n-browser"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        pairs.push((name, value));
    }
    server().url(&format!("/oauth2/authorize?{}", serde_urlencoded::to_string(pairs).unwrap()))
}

/// Waits until the browser is back at the application; returns the query it arrived with.
pub(crate) async fn back_at_application(browser: &Browser, app: &App) -> HashMap<String, String> {
    let start = Instant::now();
    loop {
        let url = browser.current_url().await;
        if url.starts_with(&app.redirect_uri) {
            assert_eq!(heading(browser).await, "Back at Notes");
            return url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
        }
        assert!(start.elapsed() < WAIT, "the browser did not come back to the application; it is at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The application's side of the code: `/oauth2/token` with its secret and the PKCE verifier.
async fn exchange(app: &App, code: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server().url("/oauth2/token"))
        .basic_auth(&app.id, Some(&app.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", app.redirect_uri.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// Exchanges a code that must work; returns the token answer.
pub(crate) async fn tokens(app: &App, params: &HashMap<String, String>) -> Value {
    assert_eq!(params.get("iss"), Some(&server().address), "{params:?}");
    let code = params.get("code").unwrap_or_else(|| panic!("a code in {params:?}"));
    let res = exchange(app, code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(claims_of(body["access_token"].as_str().unwrap())["client_id"], app.id.as_str());
    let id = claims_of(body["id_token"].as_str().expect("an id_token"));
    assert_eq!((id["aud"].as_str(), id["nonce"].as_str()), (Some(app.id.as_str()), Some("n-browser")));
    body
}

/// Whether the application's refresh token still works (its token session is live).
async fn refresh_works(app: &App, refresh_token: &str) -> bool {
    let res = reqwest::Client::new()
        .post(server().url("/oauth2/introspect"))
        .basic_auth(&app.id, Some(&app.secret))
        .form(&[("token", refresh_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["active"].as_bool().unwrap()
}

#[tokio::test]
async fn an_application_signs_a_person_in_with_consent_then_sso_prompt_login_and_sign_out() {
    let email = account().await;
    let app = application().await;
    let browser = browser().await;

    // No session: the sign-in page, then the consent page, then back with a code.
    browser.goto(&authorize_url(&app, "first", &[])).await;
    wait_for_heading(&browser, "Sign in").await;
    assert!(browser.current_url().await.contains("/login?return_to="));
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Allow Notes?").await;
    assert!(browser.current_url().await.contains("/consent?"));
    let consent = browser.find("main").await.text().await;
    assert!(consent.contains("See your email address") && consent.contains("Use the permission “notes:read”"), "{consent}");
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(None).await;
    browser.screenshot_as("consent").await;
    browser.find("button[name=decision][value=allow]").await.click().await;
    let params = back_at_application(&browser, &app).await;
    assert_eq!(params["state"], "first");
    let first = tokens(&app, &params).await;
    let first_id = claims_of(first["id_token"].as_str().unwrap());
    assert_eq!(first_id["amr"], json!(["pwd"]));
    assert_eq!(exchange(&app, &params["code"]).await.status(), StatusCode::BAD_REQUEST, "a code works once");

    // Single sign-on: the same browser gets a code at once, no sign-in and no consent page.
    let before = browser.execute("return history.length;", json!([])).await;
    browser.goto(&authorize_url(&app, "second", &[])).await;
    let params = back_at_application(&browser, &app).await;
    assert_eq!(params["state"], "second");
    let after = browser.execute("return history.length;", json!([])).await;
    assert_eq!(after.as_i64(), before.as_i64().map(|n| n + 1), "one navigation, straight back to the application");
    let second = tokens(&app, &params).await;
    let second_id = claims_of(second["id_token"].as_str().unwrap());
    assert_eq!((&second_id["sid"], &second_id["auth_time"]), (&first_id["sid"], &first_id["auth_time"]), "the same sign-in");

    // prompt=login: the sign-in page again, then straight back (consent is remembered).
    browser.goto(&authorize_url(&app, "third", &[("prompt", "login")])).await;
    wait_for_heading(&browser, "Sign in").await;
    sign_in_with(&browser, &email, PASSWORD).await;
    let params = back_at_application(&browser, &app).await;
    assert_eq!(params["state"], "third");
    let third = tokens(&app, &params).await;
    let third_id = claims_of(third["id_token"].as_str().unwrap());
    assert_ne!(third_id["sid"], first_id["sid"], "a new browser session");
    assert!(!refresh_works(&app, first["refresh_token"].as_str().unwrap()).await, "the old browser session ended with its tokens");

    // Signing out ends the browser session and the application's session through it.
    assert!(refresh_works(&app, third["refresh_token"].as_str().unwrap()).await);
    browser.goto(&server().url("/logout")).await;
    wait_for_heading(&browser, "Sign out?").await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_heading(&browser, "You are signed out").await;
    assert!(!refresh_works(&app, third["refresh_token"].as_str().unwrap()).await);
    browser.goto(&authorize_url(&app, "fourth", &[])).await;
    wait_for_heading(&browser, "Sign in").await;
}

#[tokio::test]
async fn denying_consent_sends_access_denied_to_the_application() {
    let email = account().await;
    let app = application().await;
    let browser = browser().await;
    browser.goto(&authorize_url(&app, "deny-me", &[])).await;
    wait_for_heading(&browser, "Sign in").await;
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Allow Notes?").await;

    browser.find("button[name=decision][value=deny]").await.click().await;

    let params = back_at_application(&browser, &app).await;
    assert_eq!(params.get("error").map(String::as_str), Some("access_denied"), "{params:?}");
    assert_eq!(params["state"], "deny-me");
    assert_eq!(params["iss"], server().address);
    assert!(!params.contains_key("code"));
    // Nothing was remembered: the next request asks again.
    browser.goto(&authorize_url(&app, "again", &[])).await;
    wait_for_heading(&browser, "Allow Notes?").await;
}

#[tokio::test]
async fn withdrawing_an_applications_access_on_the_account_page_ends_its_sessions_and_asks_again() {
    let email = account().await;
    let app = application().await;
    let browser = browser().await;
    browser.goto(&authorize_url(&app, "allow", &[("scope", "openid email offline_access")])).await;
    wait_for_heading(&browser, "Sign in").await;
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Allow Notes?").await;
    browser.find("button[name=decision][value=allow]").await.click().await;
    let given = tokens(&app, &back_at_application(&browser, &app).await).await;
    let refresh = given["refresh_token"].as_str().unwrap();
    assert!(refresh_works(&app, refresh).await);

    browser.goto(&server().url("/account")).await;
    wait_for_heading(&browser, "Your account").await;
    let listed = browser.find("#allowed-title ~ .session-list .session").await.text().await;
    assert!(listed.contains("Notes") && listed.contains("See your email address") && listed.contains("Allowed "), "{listed}");
    browser.assert_accessible().await;
    browser.screenshot_as("account-allowed-apps").await;
    browser.find("#allowed-title ~ .session-list button[type=submit]").await.click().await;

    let status = browser.wait_for("[role=status]", WAIT).await;
    assert!(status.text().await.contains("access was withdrawn"), "{}", status.text().await);
    assert!(browser.find_all("#allowed-title ~ .session-list .session").await.is_empty());
    browser.assert_accessible().await;
    browser.assert_clean_console(None).await;
    assert!(!refresh_works(&app, refresh).await, "its session ended, offline_access or not");
    browser.goto(&authorize_url(&app, "ask-again", &[])).await;
    wait_for_heading(&browser, "Allow Notes?").await;
}

#[tokio::test]
async fn apache_with_mod_auth_openidc_signs_a_person_in_through_the_sign_in_and_consent_pages() {
    let email = account().await;
    let port = free_port();
    let apache_url = format!("http://127.0.0.1:{port}");
    let app = register_application("Apache", &format!("{apache_url}/protected/redirect_uri")).await;
    let apache = start_apache(port, &server().address, &app.id, &app.secret, upstream().await).await;
    let browser = browser().await;

    browser.goto(&format!("{apache_url}/protected/hello")).await;
    wait_for_heading(&browser, "Sign in").await;
    assert!(browser.current_url().await.starts_with(&server().url("/login?return_to=")));
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Allow Apache?").await;
    browser.find("button[name=decision][value=allow]").await.click().await;

    // Apache redeemed the code, checked the id_token, and let the browser through to the
    // service, which sees the person's claims.
    let start = Instant::now();
    while browser.current_url().await != format!("{apache_url}/protected/hello") {
        assert!(start.elapsed() < WAIT, "not back at Apache: {}\n{}", browser.current_url().await, apache.error_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let body = browser.execute("return document.body.innerText;", json!([])).await;
    let claims: Value = serde_json::from_str(body.as_str().unwrap()).unwrap_or_else(|e| panic!("{e}: {body}\n{}", apache.error_log()));
    assert_eq!(claims["oidc_claim_email"], email.as_str(), "{claims}");
    assert_eq!(claims["oidc_claim_iss"], server().address.as_str(), "{claims}");
    assert_eq!(claims["oidc_claim_aud"], app.id.as_str(), "{claims}");
    let log = apache.error_log();
    assert!(!log.contains(":error]"), "mod_auth_openidc complained:\n{log}");

    // Apache's session is its own now, and Tessera's sign-in still serves another request.
    browser.goto(&format!("{apache_url}/protected/again")).await;
    let body = browser.execute("return document.body.innerText;", json!([])).await;
    assert!(body.as_str().unwrap().contains(&email), "{body}");
    drop(apache);
}
