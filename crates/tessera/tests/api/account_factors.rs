//! The "Two-step sign-in" section of `/account` over HTTP: turning TOTP on (secret, link and
//! QR code, then a code), the recovery codes shown once, new codes and turning TOTP off under
//! the fresh rule, and CSRF on every form. TOTP codes are computed here from the secret the
//! page shows, at the server's (manual) clock.

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app, unique_email};
use crate::pages::{Browser, Page, hidden};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tessera::clock::Clock;
use tessera::domain::factors::TotpSecret;

/// The code of `secret` (base32) at the server's clock.
fn code_now(app: &TestApp, secret: &str) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).expect("the secret is base32");
    let now = u64::try_from(app.clock.now().unix_timestamp()).unwrap();
    TotpSecret::from_bytes(bytes.as_bytes().to_vec()).code_at(now).unwrap()
}

/// The secret the setup page shows, without its grouping spaces.
fn shown_secret(page: &Page) -> String {
    let marker = "id=\"totp-secret\">";
    let at = page.body.find(marker).expect("the setup page shows the secret") + marker.len();
    page.body[at..].split('<').next().unwrap().replace(' ', "")
}

/// The recovery codes a page lists.
fn shown_codes(page: &Page) -> Vec<String> {
    let list = page.body.split("<ul class=\"recovery-codes\"").nth(1).expect("a list of recovery codes").split("</ul>").next().unwrap();
    list.split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap().to_owned()).collect()
}

/// Registers someone and signs a browser in as them: the browser and their email.
async fn signed_in(app: &TestApp) -> (Browser<'_>, String) {
    let (browser, email, _) = signed_in_with_id(app).await;
    (browser, email)
}

/// [`signed_in`], with the person's id.
async fn signed_in_with_id(app: &TestApp) -> (Browser<'_>, String, String) {
    let email = unique_email();
    let id = app.register(&email).await["user"]["id"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(app);
    let page = browser.sign_in(&email, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    (browser, email, id)
}

/// Signs a browser that has a session in again, as the fresh rule sends it to.
async fn sign_in_again(browser: &mut Browser<'_>, email: &str) -> Page {
    let fields = [("identifier", email), ("password", PASSWORD), ("return_to", "/account")];
    browser.submit("/login?return_to=%2Faccount", "/login", &fields).await
}

/// Turns TOTP on from `/account`: the secret and the recovery codes the pages showed.
async fn enrol(app: &TestApp, browser: &mut Browser<'_>) -> (String, Vec<String>) {
    let started = browser.submit("/account", "/account/totp", &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    assert_eq!(started.location.as_deref(), Some("/account/totp"));
    let setup = browser.get("/account/totp").await;
    let secret = shown_secret(&setup);
    let done = browser
        .send(Method::POST, "/account/totp/confirm", Some(&[("csrf_token", &setup.csrf()), ("code", &code_now(app, &secret))]))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let codes = shown_codes(&done);
    // The code just used is spent: later sign-ins need the next step's.
    app.advance(Duration::from_secs(30));
    (secret, codes)
}

#[tokio::test]
async fn a_person_turns_totp_on_from_the_account_page_with_the_secret_the_link_and_the_qr_code() {
    let app = spawn_app().await;
    let (mut browser, email) = signed_in(&app).await;
    let account = browser.get("/account").await;
    assert!(account.body.contains("Two-step sign-in"), "{}", account.body);
    assert!(account.body.contains("action=\"/account/totp\""));

    let started = browser.submit("/account", "/account/totp", &[]).await;
    assert_eq!(started.location.as_deref(), Some("/account/totp"));
    let setup = browser.get("/account/totp").await;

    assert_eq!(setup.status, StatusCode::OK);
    let secret = shown_secret(&setup);
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");
    assert!(setup.body.contains("href=\"otpauth://totp/"), "{}", setup.body);
    assert!(setup.body.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"qr\""));
    assert!(!setup.body.contains("style=\""), "the CSP forbids inline style");
    assert!(setup.body.contains("autocomplete=\"one-time-code\"") && setup.body.contains("<label for=\"code\">"));

    let wrong = browser.send(Method::POST, "/account/totp/confirm", Some(&[("csrf_token", &setup.csrf()), ("code", "000000")])).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.alert().is_some(), "{}", wrong.body);
    assert_eq!(shown_secret(&wrong), secret, "the same pending secret is shown again");
    let login = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::OK, "TOTP is not on before a right code");

    let done = browser
        .send(Method::POST, "/account/totp/confirm", Some(&[("csrf_token", &setup.csrf()), ("code", &code_now(&app, &secret))]))
        .await;
    assert_eq!(done.status, StatusCode::OK);
    let codes = shown_codes(&done);
    assert_eq!(codes.len(), 10);
    let account = browser.get("/account").await;
    assert!(account.body.contains("Generate new recovery codes") && account.body.contains(">Turn off</button>"));
    assert!(!account.body.contains(&codes[0]), "the codes are shown once");
    assert_eq!(browser.get("/account/totp").await.status, StatusCode::SEE_OTHER, "nothing pending any more");

    let step = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    let mfa_token = problem(step, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"].as_str().unwrap().to_owned();
    let finished = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mfa_token, "code": codes[3] })).await;
    assert_eq!(finished.status(), StatusCode::OK, "a recovery code from the page signs in");
}

#[tokio::test]
async fn starting_totp_after_the_fresh_window_sends_the_person_to_sign_in_again_and_back() {
    let app = spawn_app().await;
    let (mut browser, email) = signed_in(&app).await;
    app.advance(Duration::from_secs(11 * 60));

    let started = browser.submit("/account", "/account/totp", &[]).await;

    assert_eq!(started.status, StatusCode::SEE_OTHER);
    assert_eq!(started.location.as_deref(), Some("/login?return_to=%2Faccount"));
    assert_eq!(browser.get("/account/totp").await.location.as_deref(), Some("/account#two-step-title"), "nothing was started");
    sign_in_again(&mut browser, &email).await;
    let again = browser.submit("/account", "/account/totp", &[]).await;
    assert_eq!(again.location.as_deref(), Some("/account/totp"));
}

#[tokio::test]
async fn new_recovery_codes_on_the_account_page_void_the_old_ones() {
    let app = spawn_app().await;
    let (mut browser, email) = signed_in(&app).await;
    let (_, old) = enrol(&app, &mut browser).await;

    let page = browser.submit("/account", "/account/recovery-codes", &[]).await;

    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let new = shown_codes(&page);
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    let step = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    let mfa_token = problem(step, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"].as_str().unwrap().to_owned();
    let refused = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mfa_token, "code": old[0] })).await;
    problem(refused, StatusCode::UNAUTHORIZED, "invalid_code").await;
    let accepted = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mfa_token, "code": new[0] })).await;
    assert_eq!(accepted.status(), StatusCode::OK);
}

#[tokio::test]
async fn turning_totp_off_needs_a_recent_sign_in_with_the_second_factor() {
    let app = spawn_app().await;
    let (mut browser, email) = signed_in(&app).await;
    let (secret, _) = enrol(&app, &mut browser).await;
    app.advance(Duration::from_secs(11 * 60));

    let stale = browser.submit("/account", "/account/totp/remove", &[]).await;
    assert_eq!(stale.location.as_deref(), Some("/login?return_to=%2Faccount"));
    let regenerate = browser.submit("/account", "/account/recovery-codes", &[]).await;
    assert_eq!(regenerate.location.as_deref(), Some("/login?return_to=%2Faccount"), "new codes need a recent sign-in too");
    let step = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    problem(step, StatusCode::FORBIDDEN, "mfa_required").await;

    let password = sign_in_again(&mut browser, &email).await;
    assert_eq!(password.status, StatusCode::OK, "the password alone is not a sign-in");
    let mfa_token = hidden(&password.body, "mfa_token").unwrap();
    let code = code_now(&app, &secret);
    let fields = [("csrf_token", password.csrf()), ("mfa_token", mfa_token), ("code", code), ("return_to", "/account".to_owned())];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.send(Method::POST, "/login/mfa", Some(&fields)).await.status, StatusCode::SEE_OTHER);
    let off = browser.submit("/account", "/account/totp/remove", &[]).await;

    assert_eq!(off.location.as_deref(), Some("/account?two_step=off"));
    let account = browser.get("/account?two_step=off").await;
    assert!(account.body.contains("role=\"status\">Two-step sign-in is off."), "{}", account.body);
    assert!(account.body.contains("Set up an authenticator app"));
    let login = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::OK, "the password alone signs in again");
}

#[tokio::test]
async fn every_two_step_form_refuses_a_missing_csrf_token() {
    let app = spawn_app().await;
    let (mut browser, _) = signed_in(&app).await;
    for action in ["/account/totp", "/account/totp/confirm", "/account/recovery-codes", "/account/totp/remove"] {
        let page = browser.send(Method::POST, action, Some(&[("code", "123456")])).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(browser.get("/account/totp").await.status, StatusCode::SEE_OTHER, "no enrolment was started");
}

#[tokio::test]
async fn the_account_pages_enrolment_is_audited_with_the_person_as_actor() {
    let app = spawn_app().await;
    let (mut browser, _, id) = signed_in_with_id(&app).await;
    enrol(&app, &mut browser).await;
    let admin = app.admin_token().await;
    let trail: Value = app.get_with("/v1/audit?limit=200", &admin).await.json().await.unwrap();
    let events = trail["events"].as_array().unwrap();
    for kind in ["totp.enrolment_started", "totp.enrolled", "recovery_codes.generated"] {
        let event = events.iter().find(|e| e["kind"] == kind).unwrap_or_else(|| panic!("{kind} in the audit trail"));
        assert_eq!(event["actor"], id.as_str(), "{kind}");
        assert_eq!(event["subject"], id.as_str(), "{kind}");
    }
}
