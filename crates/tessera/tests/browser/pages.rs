//! What every page owes its users, checked on the pages served today (the error pages); the
//! sign-in, consent and account pages add their own tests here as they are routed.

use crate::browser::{PHONE, browser};
use crate::server::server;
use reqwest::StatusCode;

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

#[tokio::test]
async fn a_page_that_does_not_exist_is_an_accessible_404_page() {
    let browser = browser().await;

    browser.goto(&server().url("/no-such-page")).await;

    assert_eq!(browser.title().await, "Page not found · Tessera");
    assert_eq!(browser.find("h1").await.text().await, "Page not found");
    assert_eq!(browser.find("main code").await.text().await, "not_found");
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(Some(404)).await;
    browser.screenshot_as("error-404").await;
}

#[tokio::test]
async fn the_error_page_reads_on_a_phone_and_in_dark_mode() {
    let browser = browser().await;
    browser.set_window_size(PHONE.0, PHONE.1).await;
    browser.prefer_dark(true).await;

    browser.goto(&server().url("/no-such-page")).await;

    let width: i64 = browser.execute("return document.documentElement.scrollWidth;", serde_json::json!([])).await.as_i64().unwrap();
    let viewport: i64 = browser.execute("return window.innerWidth;", serde_json::json!([])).await.as_i64().unwrap();
    assert!(width <= viewport, "nothing scrolls sideways on a phone: {width} > {viewport}");
    let background = browser.execute("return getComputedStyle(document.body).backgroundColor;", serde_json::json!([])).await;
    assert_eq!(background, "rgb(15, 18, 24)", "the dark palette");
    browser.assert_accessible().await;
    browser.screenshot_as("error-404-phone-dark").await;
}

#[tokio::test]
async fn pages_are_sent_with_the_contract_security_headers() {
    let client = reqwest::Client::new();

    let res = client.get(server().url("/no-such-page")).header("accept", BROWSER_ACCEPT).send().await.unwrap();

    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("cache-control"), "no-store");
}

#[tokio::test]
async fn api_paths_answer_problems_even_to_a_browser() {
    let client = reqwest::Client::new();
    for path in ["/v1/no-such-thing", "/oauth2/no-such-thing", "/.well-known/no-such-thing"] {
        let res = client.get(server().url(path)).header("accept", BROWSER_ACCEPT).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(res.headers()["content-type"], "application/problem+json", "{path}");
    }
}
