//! Two-step sign-in in Chromium: a person turns TOTP on from `/account` (reading the secret
//! off the page and computing codes as their authenticator app would), saves the recovery
//! codes, signs out, signs in on `/login` with their password and a code, and signs in to an
//! application through the authorization code flow with the second factor, which the
//! id_token's `amr` reports.
//!
//! The shared server's clock is the system's (no test of this binary moves it), so codes are
//! computed from the system time. A code's step is accepted once per person, and the server
//! accepts one step of drift, so each sign-in uses a later step than the one before.

use crate::authorize::{application, authorize_url, back_at_application, tokens};
use crate::browser::browser;
use crate::helpers::{PASSWORD, claims_of};
use crate::server::server;
use crate::signin::{account, sign_in_with, wait_for_heading};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tessera::domain::factors::TotpSecret;

/// Seconds since the epoch, now.
fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The code of `secret` (base32, as the page shows it) at `at`.
fn code_at(secret: &str, at: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).expect("the page shows base32");
    TotpSecret::from_bytes(bytes.as_bytes().to_vec()).code_at(at).unwrap()
}

/// Waits until the 30-second step after the one `at` is in has begun.
async fn next_step_after(at: u64) {
    let next = (at / 30 + 1) * 30;
    let now = now();
    if now <= next {
        tokio::time::sleep(Duration::from_secs(next - now + 1)).await;
    }
}

#[tokio::test]
async fn a_person_turns_totp_on_on_the_account_page_then_signs_in_with_it_on_login_and_through_an_application() {
    let email = account().await;
    let app = application().await;
    let browser = browser().await;
    browser.goto(&server().url("/login")).await;
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Your account").await;
    let section = browser.find("#two-step-title").await.text().await;
    assert_eq!(section, "Two-step sign-in");
    browser.assert_accessible().await;

    // Turning TOTP on: the secret, the link and the QR code, then the first code.
    browser.find("form[action='/account/totp'] button[type=submit]").await.click().await;
    wait_for_heading(&browser, "Set up an authenticator app").await;
    let secret = browser.find("#totp-secret").await.text().await.replace(' ', "");
    let link = browser.find("a[href^='otpauth://totp/']").await.attribute("href").await.unwrap_or_default();
    assert!(link.contains(&format!("secret={secret}")), "{link}");
    let qr = browser.find("svg.qr").await;
    assert_eq!(qr.attribute("role").await.as_deref(), Some("img"));
    assert_eq!(browser.find("#code").await.attribute("autocomplete").await.as_deref(), Some("one-time-code"));
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(None).await;
    browser.screenshot_as("account-totp-setup").await;
    let enrolled_at = now();
    browser.find("#code").await.send_keys(&code_at(&secret, enrolled_at)).await;
    browser.find("form[action='/account/totp/confirm'] button[type=submit]").await.click().await;
    wait_for_heading(&browser, "Save your recovery codes").await;
    assert_eq!(browser.find_all(".recovery-codes li").await.len(), 10);
    browser.assert_accessible().await;
    browser.assert_clean_console(None).await;
    browser.goto(&server().url("/account")).await;
    wait_for_heading(&browser, "Your account").await;
    assert!(browser.find("form[action='/account/totp/remove']").await.text().await.contains("Turn off"));
    browser.assert_accessible().await;
    browser.screenshot_as("account-two-step-on").await;

    // Signing out, then in on /login: the password, then the next step's code.
    browser.goto(&server().url("/logout")).await;
    wait_for_heading(&browser, "Sign out?").await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_heading(&browser, "You are signed out").await;
    browser.goto(&server().url("/login")).await;
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Confirm it is you").await;
    assert_eq!(browser.find("#code").await.attribute("autocomplete").await.as_deref(), Some("one-time-code"));
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.screenshot_as("login-second-step").await;
    browser.find("#code").await.send_keys(&code_at(&secret, enrolled_at + 30)).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_heading(&browser, "Your account").await;

    // The authorization code flow, signing in again (prompt=login) with a later code.
    next_step_after(enrolled_at).await;
    browser.goto(&authorize_url(&app, "two-step", &[("prompt", "login")])).await;
    wait_for_heading(&browser, "Sign in").await;
    sign_in_with(&browser, &email, PASSWORD).await;
    wait_for_heading(&browser, "Confirm it is you").await;
    browser.find("#code").await.send_keys(&code_at(&secret, enrolled_at + 60)).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_heading(&browser, "Allow Notes?").await;
    browser.find("button[name=decision][value=allow]").await.click().await;
    let params = back_at_application(&browser, &app).await;
    assert_eq!(params["state"], "two-step");
    let body = tokens(&app, &params).await;
    let id_token = claims_of(body["id_token"].as_str().unwrap());
    let amr: Vec<&str> = id_token["amr"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    assert!(amr.contains(&"otp") && amr.contains(&"mfa") && amr.contains(&"pwd"), "{amr:?}");
}
