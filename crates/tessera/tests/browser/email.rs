//! Password recovery in the browser: "Forgot password?" on the sign-in page, the mail, the
//! reset page its link opens, and signing in with the new password.

use crate::browser::{Browser, browser};
use crate::helpers::{PASSWORD, unique_email};
use crate::server::server;
use serde_json::json;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

async fn wait_for_text(browser: &Browser, css: &str, text: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        // The page may move on between finding the element and reading it: then look again.
        if let Ok(element) = browser.try_find(css).await
            && element.try_text().await.is_ok_and(|read| read.contains(text))
        {
            return;
        }
        assert!(Instant::now() < deadline, "no {css} reading {text:?} at {}", browser.current_url().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_person_who_forgot_the_password_resets_it_from_the_mailed_link_and_signs_in() {
    let email = unique_email();
    let registered = reqwest::Client::new()
        .post(server().url("/v1/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), reqwest::StatusCode::CREATED);
    let browser = browser().await;

    browser.goto(&server().url("/login")).await;
    browser.find("a[href='/password/forgot']").await.click().await;
    wait_for_text(&browser, "h1", "Forgot your password?").await;
    assert_eq!(browser.find("#email").await.attribute("autocomplete").await.as_deref(), Some("email"));
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.screenshot_as("password-forgot").await;
    browser.find("#email").await.send_keys(&email).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_text(&browser, "[role=status]", "on its way").await;

    let deadline = Instant::now() + WAIT;
    let link = loop {
        let reset = server().mail.messages_to(&email).into_iter().find_map(|m| m.link(&server().url("/password/reset?token=")));
        if let Some(link) = reset {
            break link;
        }
        assert!(Instant::now() < deadline, "no reset mail to {email}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    browser.goto(&link).await;
    wait_for_text(&browser, "h1", "Choose a new password").await;
    assert_eq!(browser.find("#new_password").await.attribute("autocomplete").await.as_deref(), Some("new-password"));
    browser.assert_accessible().await;
    browser.screenshot_as("password-reset").await;
    let new_password = "a fresh passphrase from the mail";
    browser.find("#new_password").await.send_keys(new_password).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_text(&browser, "[role=status]", "Your password is set").await;
    browser.assert_accessible().await;

    browser.goto(&server().url("/login")).await;
    browser.find("#identifier").await.send_keys(&email).await;
    browser.find("#password").await.send_keys(new_password).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_text(&browser, "h1", "Your account").await;
    wait_for_text(&browser, "#email-title", "Email").await;
    browser.assert_accessible().await;
}

#[tokio::test]
async fn opening_a_verification_link_asks_before_it_confirms_the_address() {
    let email = unique_email();
    let registered = reqwest::Client::new()
        .post(server().url("/v1/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), reqwest::StatusCode::CREATED);
    let deadline = Instant::now() + WAIT;
    let link = loop {
        let found = server().mail.messages_to(&email).into_iter().find_map(|m| m.link(&server().url("/verify-email?token=")));
        if let Some(link) = found {
            break link;
        }
        assert!(Instant::now() < deadline, "no verification mail to {email}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let browser = browser().await;

    browser.goto(&link).await;
    wait_for_text(&browser, "h1", "Confirm your email address").await;
    browser.assert_accessible().await;
    browser.goto(&link).await;
    browser.find("button[type=submit]").await.click().await;

    wait_for_text(&browser, "[role=status]", "is confirmed").await;
    browser.assert_accessible().await;
    browser.goto(&link).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_text(&browser, "[role=alert]", "does not work any more").await;
    browser.assert_accessible().await;
}
