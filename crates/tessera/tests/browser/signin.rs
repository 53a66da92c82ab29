//! Signing in, registering, the account page and signing out, through the real pages in
//! Chromium, as a person does it: typing into the form and pressing its button.

use crate::browser::{Browser, PHONE, browser};
use crate::helpers::{PASSWORD, unique_email};
use crate::server::server;
use serde_json::json;
use std::time::Duration;

pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// An account made through the API (the server runs in another runtime).
pub(crate) async fn account() -> String {
    let email = unique_email();
    let res = reqwest::Client::new()
        .post(server().url("/v1/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    email
}

/// Fills the sign-in form on the current page and sends it.
pub(crate) async fn sign_in_with(browser: &Browser, identifier: &str, password: &str) {
    browser.find("#identifier").await.send_keys(identifier).await;
    browser.find("#password").await.send_keys(password).await;
    browser.find("button[type=submit]").await.click().await;
}

pub(crate) async fn heading(browser: &Browser) -> String {
    browser.wait_for("h1", WAIT).await.text().await
}

/// Waits until the page's `h1` reads `text` (the page after a form was sent).
pub(crate) async fn wait_for_heading(browser: &Browser, text: &str) {
    for _ in 0..100 {
        // The old page may go between finding its `h1` and reading it: then look again.
        let read = match browser.try_find("h1").await {
            Ok(h1) => h1.try_text().await.ok(),
            Err(_) => None,
        };
        if read.as_deref() == Some(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no page titled {text:?}; at {} with {:?}", browser.current_url().await, heading(browser).await);
}

#[tokio::test]
async fn a_person_signs_in_through_the_form_and_lands_on_their_account() {
    let email = account().await;
    let browser = browser().await;
    browser.goto(&server().url("/login")).await;
    assert_eq!(browser.title().await, "Sign in · Tessera");
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.screenshot_as("login").await;

    sign_in_with(&browser, &email, PASSWORD).await;

    wait_for_heading(&browser, "Your account").await;
    assert!(browser.current_url().await.ends_with("/account"));
    assert!(browser.find("main").await.text().await.contains(&email));
    assert_eq!(browser.find(".badge").await.text().await, "This browser");
    let cookies = browser.cookies().await;
    let session = cookies.iter().find(|c| c["name"] == "tessera-session").expect("the session cookie");
    assert_eq!((session["httpOnly"].as_bool(), session["sameSite"].as_str()), (Some(true), Some("Lax")));
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(None).await;
    browser.screenshot_as("account").await;
}

#[tokio::test]
async fn a_failed_sign_in_shows_its_alert_and_keeps_the_identifier() {
    let email = account().await;
    let browser = browser().await;
    browser.goto(&server().url("/login")).await;

    sign_in_with(&browser, &email, "not the right password").await;

    let alert = browser.wait_for("[role=alert]", WAIT).await;
    assert!(alert.text().await.contains("do not match an account"));
    assert_eq!(browser.find("#identifier").await.property("value").await, email.as_str());
    assert_eq!(browser.find("#password").await.property("value").await, "", "a password is never sent back");
    assert!(browser.cookies().await.iter().all(|c| c["name"] != "tessera-session"));
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(Some(401)).await;
    browser.screenshot_as("login-failed").await;
}

#[tokio::test]
async fn a_form_with_a_tampered_csrf_token_gets_the_403_page() {
    let email = account().await;
    let browser = browser().await;
    browser.goto(&server().url("/login")).await;
    browser.execute("document.querySelector('input[name=csrf_token]').value = 'forged';", json!([])).await;

    sign_in_with(&browser, &email, PASSWORD).await;

    wait_for_heading(&browser, "You cannot do this").await;
    assert_eq!(browser.find("main code").await.text().await, "csrf_failed");
    assert!(browser.cookies().await.iter().all(|c| c["name"] != "tessera-session"), "nobody signed in");
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(Some(403)).await;
    browser.screenshot_as("csrf-failed").await;
}

#[tokio::test]
async fn a_person_signs_out_after_confirming_and_the_account_page_is_closed_to_them() {
    let email = account().await;
    let browser = browser().await;
    browser.goto(&server().url("/login")).await;
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Your account").await;

    browser.find("a[href='/logout']").await.click().await;
    wait_for_heading(&browser, "Sign out?").await;
    browser.assert_accessible().await;
    browser.screenshot_as("logout").await;
    browser.find("button[type=submit]").await.click().await;

    wait_for_heading(&browser, "You are signed out").await;
    assert!(browser.cookies().await.iter().all(|c| c["name"] != "tessera-session"), "the cookie is gone");
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(None).await;
    browser.screenshot_as("signed-out").await;
    browser.goto(&server().url("/account")).await;
    assert_eq!(heading(&browser).await, "Sign in");
    assert!(browser.current_url().await.ends_with("/login?return_to=%2Faccount"));
}

#[tokio::test]
async fn a_person_registers_and_is_signed_in() {
    let browser = browser().await;
    browser.goto(&server().url("/login")).await;
    browser.find("a[href='/register']").await.click().await;
    wait_for_heading(&browser, "Create an account").await;
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.screenshot_as("register").await;
    let email = unique_email();

    browser.find("#email").await.send_keys(&email).await;
    browser.find("#password").await.send_keys("password").await;
    browser.find("button[type=submit]").await.click().await;
    let error = browser.wait_for("#password-error", WAIT).await;
    assert!(error.text().await.contains("breached"), "{}", error.text().await);
    browser.assert_accessible().await;
    browser.assert_clean_console(Some(422)).await;
    browser.screenshot_as("register-weak-password").await;
    browser.find("#password").await.send_keys(PASSWORD).await;
    browser.find("button[type=submit]").await.click().await;

    wait_for_heading(&browser, "Your account").await;
    assert!(browser.find("main").await.text().await.contains(&email));
}

#[tokio::test]
async fn the_account_page_reads_on_a_phone_in_dark_mode_and_signs_another_browser_out() {
    let email = account().await;
    let api = reqwest::Client::new()
        .post(server().url("/v1/auth/login"))
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1",
        )
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), reqwest::StatusCode::OK);
    let browser = browser().await;
    browser.set_window_size(PHONE.0, PHONE.1).await;
    browser.prefer_dark(true).await;
    browser.goto(&server().url("/login")).await;
    browser.screenshot_as("login-phone-dark").await;
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Your account").await;

    let width: i64 = browser.execute("return document.documentElement.scrollWidth;", json!([])).await.as_i64().unwrap();
    let viewport: i64 = browser.execute("return window.innerWidth;", json!([])).await.as_i64().unwrap();
    assert!(width <= viewport, "nothing scrolls sideways on a phone: {width} > {viewport}");
    browser.assert_accessible().await;
    browser.screenshot_as("account-phone-dark").await;
    let before = browser.find_all("#apps-title ~ .session-list .session").await.len();
    browser.find("#apps-title ~ .session-list .session:first-child button[type=submit]").await.click().await;

    let status = browser.wait_for("[role=status]", WAIT).await;
    assert_eq!(status.text().await, "The session was signed out.");
    assert_eq!(browser.find_all("#apps-title ~ .session-list .session").await.len(), before - 1);
    browser.assert_accessible().await;
    browser.assert_clean_console(None).await;
}
