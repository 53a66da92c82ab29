//! The admin console in Chromium: an admin signs in, finds a person made through the API,
//! disables them, makes a client and signs in to it with a code flow, rotates the keys, and
//! reads all of it in the audit trail; a person without the admin role reaches no console
//! page and no console action. axe-core on every console page; the docs' screenshots.

use crate::browser::{Browser, PHONE, browser};
use crate::helpers::{PASSWORD, unique_email};
use crate::server::server;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// RFC 7636's example verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A person registered through the API: `(id, email)`.
async fn person() -> (String, String) {
    let email = unique_email();
    let res = reqwest::Client::new()
        .post(server().url("/v1/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    (body["user"]["id"].as_str().unwrap().to_owned(), email)
}

async fn login_status(email: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(server().url("/v1/auth/login"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Waits until the page's `h1` reads `text`.
async fn wait_for_heading(browser: &Browser, text: &str) {
    for _ in 0..100 {
        // The old page may go between finding its `h1` and reading it: then look again.
        if let Ok(h1) = browser.try_find("h1").await
            && h1.try_text().await.is_ok_and(|read| read == text)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no page titled {text:?} at {}", browser.current_url().await);
}

/// Waits until the browser is at a URL starting with `prefix`; returns it.
async fn wait_for_url(browser: &Browser, prefix: &str) -> String {
    for _ in 0..100 {
        let url = browser.current_url().await;
        if url.starts_with(prefix) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never reached {prefix}; at {}", browser.current_url().await);
}

/// Every page owes this to its users.
async fn check_page(browser: &Browser, screenshot: Option<&str>) {
    browser.assert_accessible().await;
    browser.assert_same_origin_only().await;
    browser.assert_clean_console(None).await;
    if let Some(name) = screenshot {
        browser.screenshot_as(name).await;
    }
}

async fn jwks() -> Value {
    reqwest::get(server().url("/.well-known/jwks.json")).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn an_admin_finds_and_disables_a_person_makes_a_client_rotates_the_keys_and_reads_the_trail() {
    let admin_email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    let admin_id = server().create_admin(&admin_email).await;
    let (person_id, person_email) = person().await;
    let browser = browser().await;

    // Signing in: the console sends a browser without a session to /login and back.
    browser.goto(&server().url("/admin")).await;
    wait_for_url(&browser, &server().url("/login?return_to=%2Fadmin")).await;
    browser.find("#identifier").await.send_keys(&admin_email).await;
    browser.find("#password").await.send_keys(PASSWORD).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_heading(&browser, "Overview").await;
    assert_eq!(browser.title().await, "Console · Tessera");
    check_page(&browser, Some("admin-overview")).await;

    // Users: found by email, disabled.
    browser.find("a[href='/admin/users']").await.click().await;
    wait_for_heading(&browser, "Users").await;
    browser.find("#q").await.send_keys(&person_email).await;
    browser.find("form[role=search] button[type=submit]").await.click().await;
    // The list before the search may show the person too: wait for the search's own page.
    wait_for_url(&browser, &server().url("/admin/users?q=")).await;
    let link = browser.wait_for(&format!("a[href='/admin/users/{person_id}']"), WAIT).await;
    assert_eq!(browser.find_all("tbody tr").await.len(), 1, "the one person with this email");
    link.click().await;
    wait_for_heading(&browser, &person_email).await;
    check_page(&browser, None).await;
    browser.find(&format!("form[action='/admin/users/{person_id}/disable'] button")).await.click().await;
    let notice = browser.wait_for("[role=status]", WAIT).await;
    assert!(notice.text().await.contains("disabled"), "{}", notice.text().await);
    let (status, problem) = login_status(&person_email).await;
    assert_eq!((status, problem["code"].as_str()), (403, Some("account_disabled")));
    check_page(&browser, Some("admin-person")).await;
    browser.find(&format!("form[action='/admin/users/{person_id}/delete'] button")).await.click().await;
    wait_for_heading(&browser, &format!("Delete the account {person_email}?")).await;
    check_page(&browser, None).await;

    // The list on a phone: the table becomes one card per person.
    browser.goto(&server().url("/admin/users")).await;
    check_page(&browser, Some("admin-users")).await;
    browser.set_window_size(PHONE.0, PHONE.1).await;
    browser.goto(&server().url("/admin/users")).await;
    wait_for_heading(&browser, "Users").await;
    let overflow = browser.execute("return document.documentElement.scrollWidth > window.innerWidth;", json!([])).await;
    assert_eq!(overflow, json!(false), "nothing is wider than the phone");
    check_page(&browser, Some("admin-users-phone")).await;
    browser.set_window_size(crate::browser::WINDOW.0, crate::browser::WINDOW.1).await;

    // A client with a redirect URI, and a code flow with it in this browser.
    let redirect = server().url("/healthz");
    browser.goto(&server().url("/admin/clients/new")).await;
    wait_for_heading(&browser, "New client").await;
    check_page(&browser, None).await;
    browser.find("#name").await.send_keys("Console test app").await;
    browser.find("#scopes").await.send_keys("openid email").await;
    browser.find("#redirect_uris").await.send_keys(&redirect).await;
    browser.find("#first_party").await.click().await;
    browser.find("form[action='/admin/clients'] button[type=submit]").await.click().await;
    wait_for_heading(&browser, "Client created").await;
    let client_id = browser.find("#client-id").await.text().await;
    let secret = browser.find("#client-secret").await.property("value").await.as_str().unwrap().to_owned();
    assert!(secret.starts_with("tcs_"), "{secret}");
    browser.find("button[data-copy]").await.click().await;
    check_page(&browser, Some("admin-client-secret")).await;
    browser.goto(&server().url("/admin/clients")).await;
    wait_for_heading(&browser, "Clients").await;
    assert!(browser.find("main").await.text().await.contains("authorization_code"), "the grants are shown");
    check_page(&browser, Some("admin-clients")).await;
    browser.goto(&server().url(&format!("/admin/clients/{client_id}"))).await;
    wait_for_heading(&browser, "Console test app").await;
    check_page(&browser, None).await;

    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("scope", "openid email"),
        ("state", "console-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    browser.goto(&server().url(&format!("/oauth2/authorize?{query}"))).await;
    let back = wait_for_url(&browser, &format!("{redirect}?")).await;
    let params: std::collections::HashMap<String, String> = serde_urlencoded::from_str(back.split_once('?').unwrap().1).unwrap();
    assert_eq!(params.get("state").map(String::as_str), Some("console-state"));
    // The browser asked the redirect target, which is no page, for its favicon: not the console's.
    browser.console().await;
    let tokens = reqwest::Client::new()
        .post(server().url("/oauth2/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "authorization_code"), ("code", &params["code"]), ("code_verifier", VERIFIER), ("redirect_uri", &redirect)])
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), reqwest::StatusCode::OK);
    let tokens: Value = tokens.json().await.unwrap();
    assert!(tokens["id_token"].is_string() && tokens["access_token"].is_string(), "{tokens}");

    // Keys: a rotation changes the JWKS.
    let before = jwks().await;
    browser.goto(&server().url("/admin/keys")).await;
    wait_for_heading(&browser, "Signing keys").await;
    let active = browser.find_all("tbody tr").await.len();
    assert!(active >= 2, "the next and the active key");
    browser.find_all("form[action='/admin/keys/rotate'] button[type=submit]").await[0].click().await;
    let notice = browser.wait_for("[role=status]", WAIT).await;
    assert!(notice.text().await.contains("rotated"), "{}", notice.text().await);
    assert_ne!(jwks().await, before, "the JWKS changed");
    check_page(&browser, Some("admin-keys")).await;

    // The audit trail of all of it, by the admin.
    browser.goto(&server().url(&format!("/admin/audit?actor={admin_id}"))).await;
    wait_for_heading(&browser, "Audit trail").await;
    let trail = browser.find("tbody").await.text().await;
    for kind in ["user.disabled", "client.created", "key.rotated", "login.page.succeeded"] {
        assert!(trail.contains(kind), "{kind} in the trail:\n{trail}");
    }
    check_page(&browser, Some("admin-audit")).await;
    browser.find(&format!("tbody a[href='/admin/users/{person_id}']")).await.click().await;
    wait_for_heading(&browser, &person_email).await;
}

#[tokio::test]
async fn a_person_without_the_admin_role_reaches_no_console_page_and_no_console_action() {
    let (person_id, email) = person().await;
    let browser = browser().await;
    browser.goto(&server().url("/login")).await;
    browser.find("#identifier").await.send_keys(&email).await;
    browser.find("#password").await.send_keys(PASSWORD).await;
    browser.find("button[type=submit]").await.click().await;
    wait_for_heading(&browser, "Your account").await;

    for path in [
        "/admin",
        "/admin/users",
        &format!("/admin/users/{person_id}"),
        "/admin/clients",
        "/admin/clients/new",
        "/admin/keys",
        "/admin/audit",
    ] {
        browser.goto(&server().url(path)).await;
        wait_for_heading(&browser, "You cannot do this").await;
        assert_eq!(browser.find("main code").await.text().await, "forbidden", "{path}");
        assert!(browser.try_find("nav.console-nav").await.is_err(), "no console navigation on {path}");
    }
    browser.assert_accessible().await;
    browser.screenshot_as("admin-forbidden").await;

    // An action posted with a valid CSRF token from the account page: the 403 page, nothing done.
    browser.goto(&server().url("/account")).await;
    wait_for_heading(&browser, "Your account").await;
    let script = "const form = document.createElement('form'); form.method = 'post'; \
                  form.action = arguments[0]; \
                  form.appendChild(document.querySelector('input[name=csrf_token]').cloneNode()); \
                  document.body.appendChild(form); form.submit();";
    browser.execute(script, json!([format!("/admin/users/{person_id}/grant-admin")])).await;
    wait_for_heading(&browser, "You cannot do this").await;
    let (status, body) = login_status(&email).await;
    assert_eq!(status, 200);
    let claims = crate::helpers::claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["roles"], json!([]), "not made an admin");
}
