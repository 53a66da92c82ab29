//! Second factors over HTTP: TOTP enrolment and removal, recovery codes, the second step of a
//! password sign-in on the API and on `/login`, lockout, `amr`, and the admins' reset. TOTP
//! codes are computed here from the secret, at the server's (manual) clock.

use crate::helpers::{PASSWORD, TestApp, claims_of, problem, spawn_app, spawn_app_with, unique_email};
use crate::pages::{Browser, SESSION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tessera::clock::Clock;
use tessera::domain::factors::TotpSecret;
use tessera::domain::keys::MasterKey;

/// The code of `secret` (base32) at the server's clock.
fn code_now(app: &TestApp, secret: &str) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).expect("the secret is base32");
    let now = u64::try_from(app.clock.now().unix_timestamp()).unwrap();
    TotpSecret::from_bytes(bytes.as_bytes().to_vec()).code_at(now).unwrap()
}

/// Registers someone and turns TOTP on: `(email, secret, recovery codes, fresh access token)`.
async fn person_with_totp(app: &TestApp) -> (String, String, Vec<String>, String) {
    let email = unique_email();
    let token = app.register(&email).await["access_token"].as_str().unwrap().to_owned();
    let enrolment: Value = app.send_with(Method::POST, "/v1/users/me/totp", &token, None).await.json().await.unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let res = app.send_with(Method::POST, "/v1/users/me/totp/confirm", &token, Some(&json!({ "code": code_now(app, &secret) }))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let codes = body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    // The code just used is spent: later sign-ins need the next step's.
    app.advance(Duration::from_secs(30));
    (email, secret, codes, token)
}

/// A password sign-in that stops at the second factor: the 403 problem.
async fn password_step(app: &TestApp, email: &str) -> Value {
    let res = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    problem(res, StatusCode::FORBIDDEN, "mfa_required").await
}

async fn second_step(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mfa_token, "code": code })).await
}

#[tokio::test]
async fn totp_enrolment_needs_a_fresh_token_and_answers_a_secret_and_its_otpauth_uri() {
    let app = spawn_app().await;
    let email = unique_email();
    let registered = app.register(&email).await;
    let token = registered["access_token"].as_str().unwrap();

    let res = app.send_with(Method::POST, "/v1/users/me/totp", token, None).await;

    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap();
    assert_eq!(totp_rs::Secret::try_from_base32(secret).unwrap().as_bytes().len(), 20, "160 bits");
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Tessera:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=Tessera") && uri.contains("period=30"), "{uri}");
    let me: Value = app.get_with("/v1/users/me", token).await.json().await.unwrap();
    assert_eq!(me["two_factor"], false, "pending until confirmed");

    let refreshed: Value =
        app.post_json("/v1/auth/refresh", &json!({ "refresh_token": registered["refresh_token"] })).await.json().await.unwrap();
    let stale = app.send_with(Method::POST, "/v1/users/me/totp", refreshed["access_token"].as_str().unwrap(), None).await;
    problem(stale, StatusCode::FORBIDDEN, "fresh_token_required").await;
}

#[tokio::test]
async fn the_first_right_code_turns_totp_on_and_answers_ten_recovery_codes() {
    let app = spawn_app().await;
    let email = unique_email();
    let token = app.register(&email).await["access_token"].as_str().unwrap().to_owned();
    let enrolment: Value = app.send_with(Method::POST, "/v1/users/me/totp", &token, None).await.json().await.unwrap();
    let secret = enrolment["secret"].as_str().unwrap();

    let wrong = app.send_with(Method::POST, "/v1/users/me/totp/confirm", &token, Some(&json!({ "code": "000000" }))).await;
    problem(wrong, StatusCode::UNAUTHORIZED, "invalid_code").await;
    let res = app.send_with(Method::POST, "/v1/users/me/totp/confirm", &token, Some(&json!({ "code": code_now(&app, secret) }))).await;

    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let codes = body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(codes.iter().map(|c| c.as_str().unwrap()).collect::<std::collections::BTreeSet<_>>().len(), 10);
    let me: Value = app.get_with("/v1/users/me", &token).await.json().await.unwrap();
    assert_eq!(me["two_factor"], true);
    let again = app.send_with(Method::POST, "/v1/users/me/totp", &token, None).await;
    problem(again, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test]
async fn a_password_alone_never_gives_tokens_to_a_person_with_totp() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;

    let refused = password_step(&app, &email).await;

    assert!(refused.get("access_token").is_none() && refused.get("refresh_token").is_none());
    let mfa_token = refused["mfa_token"].as_str().unwrap();
    assert!(mfa_token.starts_with("tmf_"));
    assert_eq!(refused["methods"], json!(["totp", "recovery_code"]));
    let res = second_step(&app, mfa_token, &code_now(&app, &secret)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    let claims = claims_of(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["fresh"], true);
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(tokens["user"]["two_factor"], true);

    let reused = second_step(&app, mfa_token, &code_now(&app, &secret)).await;
    problem(reused, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
}

#[tokio::test]
async fn refreshed_tokens_keep_the_amr_of_the_sign_in_and_are_not_fresh() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    let tokens: Value = second_step(&app, &mfa_token, &code_now(&app, &secret)).await.json().await.unwrap();

    let refreshed: Value =
        app.post_json("/v1/auth/refresh", &json!({ "refresh_token": tokens["refresh_token"] })).await.json().await.unwrap();

    let claims = claims_of(refreshed["access_token"].as_str().unwrap());
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims["fresh"], false);
    let plain = app.register(&unique_email()).await;
    assert_eq!(claims_of(plain["access_token"].as_str().unwrap())["amr"], json!(["pwd"]));
}

#[tokio::test]
async fn a_totp_code_is_accepted_once() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let code = code_now(&app, &secret);
    let first = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(second_step(&app, &first, &code).await.status(), StatusCode::OK);

    let second = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    problem(second_step(&app, &second, &code).await, StatusCode::UNAUTHORIZED, "invalid_code").await;

    app.advance(Duration::from_secs(30));
    assert_eq!(second_step(&app, &second, &code_now(&app, &secret)).await.status(), StatusCode::OK, "the next step's code works");
}

#[tokio::test]
async fn racing_requests_with_one_code_sign_in_once() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let code = code_now(&app, &secret);
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned());
    }

    let answers = futures_join(&app, &tokens, &code).await;

    assert_eq!(answers.iter().filter(|s| **s == StatusCode::OK).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|s| *s == StatusCode::OK || *s == StatusCode::UNAUTHORIZED), "{answers:?}");
}

async fn futures_join(app: &TestApp, tokens: &[String], code: &str) -> Vec<StatusCode> {
    let tasks: Vec<_> = tokens
        .iter()
        .map(|t| {
            let req = app.request(Method::POST, "/v1/auth/login/mfa").json(&json!({ "mfa_token": t, "code": code }));
            tokio::spawn(async move { req.send().await.unwrap().status() })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test]
async fn five_wrong_codes_end_the_mfa_token() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();

    for _ in 0..5 {
        problem(second_step(&app, &mfa_token, "000000").await, StatusCode::UNAUTHORIZED, "invalid_code").await;
    }

    let right = second_step(&app, &mfa_token, &code_now(&app, &secret)).await;
    problem(right, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
}

#[tokio::test]
async fn an_mfa_token_works_for_five_minutes() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();

    app.advance(Duration::from_secs(301));

    problem(second_step(&app, &mfa_token, &code_now(&app, &secret)).await, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
}

#[tokio::test]
async fn wrong_codes_count_toward_the_account_lockout_and_a_new_password_sign_in_does_not_reset_it() {
    let app = spawn_app_with(|c| {
        c.login_max_failures = 6;
        c.rate_limit_per_ip = 0;
    })
    .await;
    let (email, _, _, _) = person_with_totp(&app).await;

    for _ in 0..2 {
        let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
        for _ in 0..2 {
            problem(second_step(&app, &mfa_token, "000000").await, StatusCode::UNAUTHORIZED, "invalid_code").await;
        }
    }

    let locked = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS, "the right password is refused while locked");
    assert!(locked.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_locked_account_refuses_even_the_right_code() {
    let app = spawn_app_with(|c| {
        c.login_max_failures = 4;
        c.rate_limit_per_ip = 0;
    })
    .await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        problem(second_step(&app, &mfa_token, "000000").await, StatusCode::UNAUTHORIZED, "invalid_code").await;
    }

    let locked = second_step(&app, &mfa_token, &code_now(&app, &secret)).await;

    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_recovery_code_finishes_a_sign_in_once() {
    let app = spawn_app().await;
    let (email, _, codes, _) = person_with_totp(&app).await;
    let first = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();

    let res = second_step(&app, &first, &codes[3].to_uppercase()).await;

    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));
    let second = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    problem(second_step(&app, &second, &codes[3]).await, StatusCode::UNAUTHORIZED, "invalid_code").await;
    assert_eq!(second_step(&app, &second, &codes[4]).await.status(), StatusCode::OK);
    let trail = audit_kinds(&app).await;
    assert!(trail.iter().filter(|k| *k == "recovery_code.used").count() == 2, "{trail:?}");
}

#[tokio::test]
async fn new_recovery_codes_void_the_old_ones_and_need_a_fresh_token() {
    let app = spawn_app().await;
    let (email, secret, old, _) = person_with_totp(&app).await;
    let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    let tokens: Value = second_step(&app, &mfa_token, &code_now(&app, &secret)).await.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();

    let res = app.send_with(Method::POST, "/v1/users/me/recovery-codes", token, None).await;

    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let new: Vec<String> = body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(new.len(), 10);
    let next = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    problem(second_step(&app, &next, &old[0]).await, StatusCode::UNAUTHORIZED, "invalid_code").await;
    assert_eq!(second_step(&app, &next, &new[0]).await.status(), StatusCode::OK);

    let plain = app.register(&unique_email()).await;
    let none = app.send_with(Method::POST, "/v1/users/me/recovery-codes", plain["access_token"].as_str().unwrap(), None).await;
    problem(none, StatusCode::CONFLICT, "conflict").await;
}

#[tokio::test]
async fn removing_totp_needs_a_fresh_token_and_lets_the_password_alone_sign_in_again() {
    let app = spawn_app().await;
    let (email, _, codes, token) = person_with_totp(&app).await;
    app.advance(Duration::from_secs(600));
    let stale = app.send_with(Method::DELETE, "/v1/users/me/totp", &token, None).await;
    problem(stale, StatusCode::FORBIDDEN, "fresh_token_required").await;
    let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    let tokens: Value = second_step(&app, &mfa_token, &codes[0]).await.json().await.unwrap();
    let fresh = tokens["access_token"].as_str().unwrap();

    let res = app.send_with(Method::DELETE, "/v1/users/me/totp", fresh, None).await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let tokens = app.login(&email).await;
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["amr"], json!(["pwd"]));
    assert_eq!(tokens["user"]["two_factor"], false);
    let kinds = audit_kinds(&app).await;
    for kind in ["totp.enrolled", "recovery_codes.generated", "mfa.required", "mfa.succeeded", "recovery_code.used", "totp.removed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn audit_kinds(app: &TestApp) -> Vec<String> {
    let admin = app.admin_token().await;
    let trail: Value = app.get_with("/v1/audit?limit=1000", &admin).await.json().await.unwrap();
    trail["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn an_admin_removes_every_second_factor_of_a_person_who_lost_their_devices() {
    let app = spawn_app().await;
    let (email, _, _, token) = person_with_totp(&app).await;
    let id = app.get_with("/v1/users/me", &token).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let stranger = app.register(&unique_email()).await;
    let refused = app.send_with(Method::DELETE, &format!("/v1/users/{id}/mfa"), stranger["access_token"].as_str().unwrap(), None).await;
    problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let admin = app.admin_token().await;

    let res = app.send_with(Method::DELETE, &format!("/v1/users/{id}/mfa"), &admin, None).await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let tokens = app.login(&email).await;
    assert_eq!(tokens["user"]["two_factor"], false);
    let trail: Value = app.get_with("/v1/audit?limit=1000", &admin).await.json().await.unwrap();
    let reset = trail["events"].as_array().unwrap().iter().find(|e| e["kind"] == "mfa.reset").expect("an mfa.reset event");
    assert_eq!(reset["subject"], id.as_str());
    let unknown = app.send_with(Method::DELETE, "/v1/users/00000000-0000-0000-0000-000000000000/mfa", &admin, None).await;
    problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn the_totp_secret_is_sealed_with_the_master_key_at_rest() {
    let app =
        spawn_app_with(|c| c.master_key = Some(MasterKey::parse_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap().into()))
            .await;
    let (email, secret, _, token) = person_with_totp(&app).await;
    let id = app.get_with("/v1/users/me", &token).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap();

    let stored = app.tessera.store().totp(id).await.unwrap().unwrap();

    assert!(stored.sealed);
    let raw = totp_rs::Secret::try_from_base32(&secret).unwrap();
    assert!(!stored.secret.windows(raw.as_bytes().len()).any(|w| w == raw.as_bytes()), "the raw secret is not stored");
    let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(second_step(&app, &mfa_token, &code_now(&app, &secret)).await.status(), StatusCode::OK, "and it still opens");
}

#[tokio::test]
async fn the_sign_in_page_asks_a_person_with_totp_for_a_code_before_signing_the_browser_in() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let mut browser = Browser::new(&app);

    let step = browser.sign_in(&email, PASSWORD).await;

    assert_eq!(step.status, StatusCode::OK);
    assert!(step.set_cookie(SESSION).is_none(), "no session from the password alone");
    assert!(step.body.contains(r#"autocomplete="one-time-code""#), "{}", step.body);
    let mfa_token = crate::pages::hidden(&step.body, "mfa_token").unwrap();
    let csrf = step.csrf();
    let wrong = browser
        .send(
            Method::POST,
            "/login/mfa",
            Some(&[("csrf_token", &csrf), ("mfa_token", &mfa_token), ("code", "000000"), ("return_to", "/account")]),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("role=\"alert\""));
    assert!(wrong.set_cookie(SESSION).is_none());
    let code = code_now(&app, &secret);
    let done = browser
        .send(
            Method::POST,
            "/login/mfa",
            Some(&[("csrf_token", &csrf), ("mfa_token", &mfa_token), ("code", &code), ("return_to", "/account")]),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location.as_deref(), Some("/account"));
    assert!(done.set_cookie(SESSION).is_some());
    let api = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mfa_token, "code": code })).await;
    problem(api, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
}

#[tokio::test]
async fn an_mfa_token_of_the_api_does_not_sign_a_browser_in() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let mfa_token = password_step(&app, &email).await["mfa_token"].as_str().unwrap().to_owned();
    let mut browser = Browser::new(&app);
    let csrf = browser.get("/login").await.csrf();

    let page = browser
        .send(
            Method::POST,
            "/login/mfa",
            Some(&[("csrf_token", &csrf), ("mfa_token", &mfa_token), ("code", &code_now(&app, &secret)), ("return_to", "/account")]),
        )
        .await;

    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.set_cookie(SESSION).is_none());
}

/// Undoes the HTML escaping of an attribute value.
fn unescape(value: &str) -> String {
    value.replace("&#38;", "&").replace("&amp;", "&").replace("&#61;", "=").replace("&#39;", "'").replace("&#34;", "\"")
}

#[tokio::test]
async fn the_authorization_code_flow_signs_in_with_the_second_factor_and_the_id_token_says_so() {
    let app = spawn_app().await;
    let (email, secret, _, _) = person_with_totp(&app).await;
    let client = app
        .tessera
        .register_client(tessera::service::ClientSpec {
            name: "Notes".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            first_party: true,
            ..tessera::service::ClientSpec::default()
        })
        .await
        .unwrap();
    let client_id = client.client.id.to_string();
    let authorize = format!(
        "/oauth2/authorize?{}",
        serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", "https://app.example/cb"),
            ("scope", "openid"),
            ("nonce", "n-1"),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ("code_challenge_method", "S256"),
        ])
        .unwrap()
    );
    let mut browser = Browser::new(&app);
    let to_login = browser.get(&authorize).await.location.expect("sent to sign in");
    let login = browser.get(&to_login).await;
    let return_to = unescape(&crate::pages::hidden(&login.body, "return_to").unwrap());
    let csrf = login.csrf();
    let step = browser
        .send(
            Method::POST,
            "/login",
            Some(&[("csrf_token", &csrf), ("identifier", &email), ("password", PASSWORD), ("return_to", &return_to)]),
        )
        .await;
    assert!(step.set_cookie(SESSION).is_none(), "no session from the password alone");
    let mfa_token = crate::pages::hidden(&step.body, "mfa_token").unwrap();
    let code = code_now(&app, &secret);
    let done = browser
        .send(
            Method::POST,
            "/login/mfa",
            Some(&[("csrf_token", &step.csrf()), ("mfa_token", &mfa_token), ("code", &code), ("return_to", &return_to)]),
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);

    let back = browser.get(done.location.as_deref().unwrap()).await;

    let redirect = url::Url::parse(back.location.as_deref().expect("back to the application")).unwrap();
    let code = redirect.query_pairs().find(|(k, _)| k == "code").expect("a code").1.into_owned();
    let res = app
        .client
        .post(app.url("/oauth2/token"))
        .basic_auth(&client_id, client.secret.as_ref().map(|s| s.expose().to_owned()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            ("redirect_uri", "https://app.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(claims_of(tokens["id_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(claims_of(tokens["access_token"].as_str().unwrap())["amr"], json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn pruning_drops_expired_mfa_tokens_only() {
    use tessera::domain::{PlainToken, TokenKind};
    use tessera::store::factors::MfaChallenge;
    let app = spawn_app().await;
    let (email, _, _, _) = person_with_totp(&app).await;
    let user = app.tessera.store().user_by_email(&tessera::domain::Email::parse(&email).unwrap()).await.unwrap().unwrap().id;
    let store = app.tessera.store();
    let now = app.clock.now();
    let [old, live] = [now - time::Duration::minutes(1), now + time::Duration::minutes(4)].map(|expires_at| MfaChallenge {
        hash: PlainToken::generate(TokenKind::MfaToken).unwrap().hash(),
        user_id: user,
        channel: "api".into(),
        failures: 0,
        created_at: now,
        expires_at,
    });
    store.insert_mfa_challenge(&old).await.unwrap();
    store.insert_mfa_challenge(&live).await.unwrap();

    assert_eq!(store.prune_factors(now).await.unwrap(), 1);

    assert!(store.mfa_challenge(&live.hash, now).await.unwrap().is_some());
    assert!(store.take_mfa_challenge(&old.hash, now - time::Duration::minutes(2)).await.unwrap().is_none(), "the expired one is gone");
}
