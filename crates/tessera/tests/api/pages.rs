//! Tessera's own pages over HTTP: signing in on `/login` (the session cookie as the contract
//! fixes it, the API's lockout and per-address limit, the same answer for unknown accounts
//! and wrong passwords, CSRF), `/register`, `/account` and `/logout`.

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app, spawn_app_with, unique_email};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use tessera::clock::Clock;
use tessera::domain::{PlainToken, Scopes, Session, SessionId, TokenKind, UserId};
use tessera::store::RefreshToken;

/// A browser without JavaScript: a cookie jar and no automatic redirects.
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    jar: BTreeMap<String, String>,
    /// `X-Forwarded-For`, for the apps that trust loopback as a proxy.
    from: Option<&'static str>,
}

/// An answer, read.
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    pub(crate) set_cookies: Vec<String>,
    pub(crate) body: String,
}

impl Page {
    /// The hidden CSRF token of the page's first form.
    pub(crate) fn csrf(&self) -> String {
        hidden(&self.body, "csrf_token").expect("the page has a form with a CSRF token")
    }

    /// The `Set-Cookie` line for the cookie called `name`.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies.iter().find(|c| c.starts_with(&format!("{name}="))).map(String::as_str)
    }

    /// The text of the first element with `role="alert"`.
    pub(crate) fn alert(&self) -> Option<String> {
        let at = self.body.find("role=\"alert\">")? + "role=\"alert\">".len();
        Some(self.body[at..].split('<').next()?.trim().to_owned())
    }
}

/// The value of the first hidden field called `name` after the start of `html`.
pub(crate) fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker)? + marker.len();
    Some(html[at..].split('"').next()?.to_owned())
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { app, client, jar: BTreeMap::new(), from: None }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    pub(crate) async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut req = self.client.request(method, self.app.url(path)).header("accept", "text/html");
        if !self.jar.is_empty() {
            let line = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            req = req.header(COOKIE, line);
        }
        if let Some(ip) = self.from {
            req = req.header("x-forwarded-for", ip);
        }
        if let Some(form) = form {
            req = req.form(form);
        }
        let res = req.send().await.unwrap();
        let set_cookies: Vec<String> = res.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        for line in &set_cookies {
            let (name, rest) = line.split_once('=').unwrap();
            let value = rest.split(';').next().unwrap();
            if line.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = res.status();
        let location = res.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_owned());
        Page { status, location, set_cookies, body: res.text().await.unwrap() }
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// Posts `fields` with the CSRF token of the form at `form_page`.
    pub(crate) async fn submit(&mut self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(form_page).await.csrf();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.send(Method::POST, action, Some(&all)).await
    }

    pub(crate) async fn sign_in(&mut self, identifier: &str, password: &str) -> Page {
        self.submit("/login", "/login", &[("identifier", identifier), ("password", password), ("return_to", "/account")]).await
    }
}

pub(crate) const SESSION: &str = "tessera-session";

#[tokio::test]
async fn signing_in_on_the_page_sets_the_session_cookie_and_lands_on_the_account_page() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let mut browser = Browser::new(&app);

    let page = browser.sign_in(&email, PASSWORD).await;

    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/account"));
    let cookie = page.set_cookie(SESSION).expect("a session cookie");
    for attribute in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Max-Age=7776000"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not on an http issuer: {cookie}");
    assert!(page.set_cookie("tessera-csrf").is_some(), "a new CSRF cookie with the sign-in");
    let account = browser.get("/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.body.contains(&email), "the account page shows the email");
    assert!(account.body.contains("This browser"), "the current session is marked");
}

#[tokio::test]
async fn on_an_https_issuer_the_session_cookie_is_secure_and_host_prefixed() {
    let app = spawn_app_with(|c| {
        c.issuer = "https://auth.example.com".into();
        c.audience = vec![c.issuer.clone()];
    })
    .await;
    let email = unique_email();
    app.register(&email).await;
    let mut browser = Browser::new(&app);

    let page = browser.sign_in(&email, PASSWORD).await;

    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let cookie = page.set_cookie("__Host-tessera-session").expect("a __Host- session cookie");
    assert!(cookie.contains("; Secure") && cookie.contains("; HttpOnly") && cookie.contains("; Path=/"), "{cookie}");
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert_eq!(browser.get("/account").await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_account_and_a_wrong_password_answer_alike() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let mut browser = Browser::new(&app);

    let wrong = browser.sign_in(&email, "not the password at all").await;
    let unknown = browser.sign_in(&unique_email(), "not the password at all").await;

    assert_eq!((wrong.status, unknown.status), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(wrong.alert(), unknown.alert());
    assert!(wrong.alert().unwrap().contains("do not match an account"), "{:?}", wrong.alert());
    assert!(wrong.set_cookie(SESSION).is_none() && browser.cookie(SESSION).is_none());
    assert!(wrong.body.contains(&format!("value=\"{email}\"")), "the identifier is kept");
    assert_eq!(hidden(&wrong.body, "return_to").as_deref(), Some("/account"));
    let trail = app.get_with("/v1/audit?limit=50", &app.admin_token().await).await.json::<serde_json::Value>().await.unwrap();
    let failed = trail["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "login.page.failed").count();
    assert_eq!(failed, 2, "both failures are in the audit trail as page sign-ins");
}

#[tokio::test]
async fn failed_sign_ins_on_the_page_and_through_the_api_count_toward_one_lockout() {
    let app = spawn_app_with(|c| {
        c.login_max_failures = 10;
        c.rate_limit_per_ip = 0;
    })
    .await;
    let (page_first, api_first) = (unique_email(), unique_email());
    app.register(&page_first).await;
    app.register(&api_first).await;
    let mut browser = Browser::new(&app);

    for _ in 0..10 {
        assert_eq!(browser.sign_in(&page_first, "wrong password here").await.status, StatusCode::UNAUTHORIZED);
    }
    let api = app.post_json("/v1/auth/login", &json!({ "email": page_first, "password": PASSWORD })).await;
    assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS, "ten failures on the page lock the API login");

    for _ in 0..10 {
        let res = app.post_json("/v1/auth/login", &json!({ "email": api_first, "password": "wrong password here" })).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let page = browser.sign_in(&api_first, PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "ten failures through the API lock the page");
    assert!(page.alert().unwrap().contains("Too many failed attempts"), "{:?}", page.alert());
    assert!(page.set_cookie(SESSION).is_none());
}

#[tokio::test]
async fn the_sign_in_form_is_behind_the_per_address_limit() {
    let app = spawn_app_with(|c| c.rate_limit_per_ip = 3).await;
    let mut browser = Browser::new(&app);
    let token = browser.get("/login").await.csrf();
    let form = [("csrf_token", token.as_str()), ("identifier", "someone"), ("password", "a guess of a password")];

    let mut statuses = vec![];
    for _ in 0..4 {
        statuses.push(browser.send(Method::POST, "/login", Some(&form)).await.status);
    }

    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(browser.get("/login").await.status, StatusCode::OK, "showing the form is not limited");
}

#[tokio::test]
async fn a_disabled_account_is_told_so_only_with_the_right_password() {
    let app = spawn_app().await;
    let email = unique_email();
    let id = app.register(&email).await["user"]["id"].as_str().unwrap().to_owned();
    let admin = app.admin_token().await;
    let res = app.send_with(Method::PATCH, &format!("/v1/users/{id}"), &admin, Some(&json!({ "disabled": true }))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let mut browser = Browser::new(&app);

    let page = browser.sign_in(&email, PASSWORD).await;

    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.alert().unwrap().contains("disabled"), "{:?}", page.alert());
    assert_eq!(browser.sign_in(&email, "not the password at all").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_gets_the_403_page_and_signs_nobody_in() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let mut browser = Browser::new(&app);
    browser.get("/login").await;

    let page = browser.send(Method::POST, "/login", Some(&[("identifier", &email), ("password", PASSWORD)])).await;

    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("csrf_failed"), "{}", page.body);
    assert!(browser.cookie(SESSION).is_none());
}

#[tokio::test]
async fn each_sign_in_starts_a_new_session_and_ends_the_one_the_browser_held() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, PASSWORD).await;
    let first = browser.cookie(SESSION).unwrap().to_owned();
    let first_csrf = browser.cookie("tessera-csrf").unwrap().to_owned();

    browser.submit("/login?return_to=%2Faccount", "/login", &[("identifier", &email), ("password", PASSWORD)]).await;

    let second = browser.cookie(SESSION).unwrap().to_owned();
    assert_ne!(first, second);
    assert_ne!(first_csrf, browser.cookie("tessera-csrf").unwrap());
    let mut stale = Browser::new(&app);
    stale.jar.insert(SESSION.into(), first);
    assert_eq!(stale.get("/account").await.location.as_deref(), Some("/login?return_to=%2Faccount"), "the old session ended");
    let account = browser.get("/account").await;
    assert_eq!(account.body.matches("name=\"kind\" value=\"browser\"").count(), 1, "one browser session is listed");
}

#[tokio::test]
async fn a_planted_session_cookie_is_not_adopted_by_a_sign_in() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let mut browser = Browser::new(&app);
    browser.jar.insert(SESSION.into(), "tbs_chosen-by-an-attacker".into());

    browser.sign_in(&email, PASSWORD).await;

    assert_ne!(browser.cookie(SESSION), Some("tbs_chosen-by-an-attacker"));
    assert_eq!(browser.get("/account").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_pages_that_need_a_session_send_a_stranger_to_sign_in_and_a_signed_in_person_skips_it() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let mut browser = Browser::new(&app);

    assert_eq!(browser.get("/account").await.location.as_deref(), Some("/login?return_to=%2Faccount"));
    assert_eq!(browser.get("/login").await.status, StatusCode::OK);
    browser.sign_in(&email, PASSWORD).await;

    assert_eq!(browser.get("/login").await.location.as_deref(), Some("/account"));
    let again = browser.get("/login?return_to=%2Foauth2%2Fauthorize%3Fclient_id%3Dx&login_hint=someone").await;
    assert_eq!(again.status, StatusCode::OK, "a return_to asks for the sign-in again");
    assert_eq!(hidden(&again.body, "return_to").as_deref(), Some("/oauth2/authorize?client_id=x"));
    assert!(again.body.contains("value=\"someone\""), "login_hint fills the identifier");
}

#[tokio::test]
async fn signing_in_returns_to_a_local_return_to_and_never_to_another_site() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;

    for (return_to, expected) in [("/oauth2/authorize?client_id=x", "/oauth2/authorize?client_id=x"), ("//evil.example/", "/account")] {
        let mut browser = Browser::new(&app);
        let page = browser.submit("/login", "/login", &[("identifier", &email), ("password", PASSWORD), ("return_to", return_to)]).await;
        assert_eq!(page.location.as_deref(), Some(expected), "{return_to}");
    }
}

/// Adds a token session tied to `browser_session` straight into the store, as the
/// authorization code grant does; returns its refresh token.
async fn tied_token_session(app: &TestApp, user: UserId, browser_session: &str, offline: bool) -> String {
    let store = tessera::startup::open_store(&app.config).await.unwrap();
    let account = store.user_by_id(user).await.unwrap().unwrap();
    let now = app.clock.now();
    let session = Session {
        id: SessionId::new_random(),
        user_id: user,
        created_at: now,
        last_used_at: now,
        expires_at: now + time::Duration::days(1),
        revoked_at: None,
        user_agent: None,
        ip: None,
        client_id: None,
        scope: Scopes::default(),
        browser_session_id: Some(browser_session.parse().unwrap()),
        offline,
        amr: vec!["pwd".to_owned()],
    };
    let plain = PlainToken::generate(TokenKind::Refresh).unwrap();
    let token =
        RefreshToken { hash: plain.hash(), session_id: session.id, created_at: now, expires_at: session.expires_at, rotated_at: None };
    assert!(store.insert_session(&session, &token, &account).await.unwrap());
    plain.expose().to_owned()
}

#[tokio::test]
async fn signing_out_ends_the_session_and_the_tokens_issued_through_it_except_offline_ones() {
    let app = spawn_app().await;
    let email = unique_email();
    let user: UserId = app.register(&email).await["user"]["id"].as_str().unwrap().parse().unwrap();
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, PASSWORD).await;
    let cookie = browser.cookie(SESSION).unwrap().to_owned();
    let account = browser.get("/account").await;
    let sid = hidden(&account.body[account.body.find("value=\"browser\"").unwrap()..], "id").unwrap();
    let tied = tied_token_session(&app, user, &sid, false).await;
    let offline = tied_token_session(&app, user, &sid, true).await;

    let confirm = browser.get("/logout").await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("<button type=\"submit\">Sign out</button>"), "a GET only asks");
    assert_eq!(browser.get("/account").await.status, StatusCode::OK, "still signed in after the GET");
    let page = browser.submit("/logout", "/logout", &[]).await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You are signed out"));
    assert!(page.set_cookie(SESSION).unwrap().contains("Max-Age=0"), "the cookie is cleared");
    let mut replay = Browser::new(&app);
    replay.jar.insert(SESSION.into(), cookie);
    assert_eq!(replay.get("/account").await.status, StatusCode::SEE_OTHER, "the old cookie no longer works");
    let refused = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": tied })).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "the tied token session ended");
    let kept = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": offline })).await;
    assert_eq!(kept.status(), StatusCode::OK, "the offline one outlives the sign-out");
    let trail = app.get_with("/v1/audit?limit=50", &app.admin_token().await).await.json::<serde_json::Value>().await.unwrap();
    let kinds: Vec<&str> = trail["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"logout.page") && kinds.contains(&"login.page.succeeded"), "{kinds:?}");
}

#[tokio::test]
async fn the_account_page_lists_browser_and_api_sessions_and_signs_one_out() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&email).await;
    let api = app.login(&email).await;
    let access = api["access_token"].as_str().unwrap().to_owned();
    let mut elsewhere = Browser::new(&app);
    elsewhere.sign_in(&email, PASSWORD).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, PASSWORD).await;

    let account = browser.get("/account").await;
    assert_eq!(account.body.matches("value=\"browser\"").count(), 2, "both browsers");
    assert_eq!(account.body.matches("This browser").count(), 1, "one is this one");
    assert!(account.body.contains("API sign-in"), "the API sessions are listed");
    let token_sessions = account.body.matches("value=\"token\"").count();
    assert_eq!(token_sessions, 2, "the registration's and the login's");

    // The other browser's row is the second: the current one is listed first.
    let rows: Vec<&str> = account.body.split("name=\"kind\" value=\"browser\"").skip(1).collect();
    let other = hidden(rows[1], "id").unwrap();
    let token = account.csrf();
    let ended =
        browser.send(Method::POST, "/account/sessions/end", Some(&[("csrf_token", &token), ("kind", "browser"), ("id", &other)])).await;
    assert_eq!(ended.location.as_deref(), Some("/account?ended=1"));
    assert_eq!(elsewhere.get("/account").await.status, StatusCode::SEE_OTHER, "the other browser is signed out");

    let me = app.get_with("/v1/users/me/sessions", &access).await.json::<serde_json::Value>().await.unwrap();
    let api_sid = me["sessions"].as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["id"].as_str().unwrap().to_owned();
    let ended =
        browser.send(Method::POST, "/account/sessions/end", Some(&[("csrf_token", &token), ("kind", "token"), ("id", &api_sid)])).await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert_eq!(app.get_with("/v1/users/me", &access).await.status(), StatusCode::UNAUTHORIZED, "its access token is revoked");
    let after = browser.get("/account?ended=1").await;
    assert!(after.body.contains("role=\"status\""));
    assert_eq!(after.body.matches("value=\"browser\"").count(), 1);

    let again =
        browser.send(Method::POST, "/account/sessions/end", Some(&[("csrf_token", &token), ("kind", "browser"), ("id", &other)])).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "someone else's or an ended session is not found");
}

#[tokio::test]
async fn registering_on_the_page_signs_the_person_in_and_shows_errors_by_field() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let email = unique_email();

    let weak = browser.submit("/register", "/register", &[("email", &email), ("username", ""), ("password", "password")]).await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(weak.body.contains("id=\"password-error\" role=\"alert\""), "{}", weak.body);
    assert!(weak.body.contains(&format!("value=\"{email}\"")), "the email is kept");
    let bad_name = browser.submit("/register", "/register", &[("email", &email), ("username", "x"), ("password", PASSWORD)]).await;
    assert!(bad_name.body.contains("id=\"username-error\" role=\"alert\""));

    let page = browser.submit("/register", "/register", &[("email", &email), ("username", ""), ("password", PASSWORD)]).await;

    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/account"));
    assert!(browser.get("/account").await.body.contains(&email));
    let taken = Browser::new(&app).submit("/register", "/register", &[("email", &email), ("password", PASSWORD)]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.body.contains("id=\"email-error\" role=\"alert\""));
    let login = browser.get("/login?return_to=%2Fx").await.body;
    assert!(login.contains("href=\"/register?return_to=%2Fx\""), "{login}");
}

#[tokio::test]
async fn closed_registration_offers_no_page_and_the_api_refuses() {
    let app = spawn_app_with(|c| c.registration_open = false).await;
    let mut browser = Browser::new(&app);

    let res = app.post_json("/v1/auth/register", &json!({ "email": unique_email(), "password": PASSWORD })).await;
    problem(res, StatusCode::FORBIDDEN, "registration_closed").await;
    assert_eq!(browser.get("/register").await.status, StatusCode::NOT_FOUND);
    let login = browser.get("/login").await;
    assert!(!login.body.contains("/register"), "no link to it");
    let token = login.csrf();
    let posted =
        browser.send(Method::POST, "/register", Some(&[("csrf_token", &token), ("email", &unique_email()), ("password", PASSWORD)])).await;
    assert_eq!(posted.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn with_verified_email_required_the_pages_sign_in_nobody_whose_address_is_unverified() {
    let app = spawn_app_with(|c| c.require_verified_email = true).await;
    let mut browser = Browser::new(&app);
    let email = unique_email();

    let registered = browser.submit("/register", "/register", &[("email", &email), ("password", PASSWORD)]).await;
    assert_eq!(registered.status, StatusCode::FORBIDDEN, "{}", registered.body);
    assert!(registered.body.contains("Open the link we mailed"), "{}", registered.body);
    assert!(browser.cookie("tessera-session").is_none(), "registering signed the browser in");
    let signed_in = browser.submit("/login", "/login", &[("identifier", &email), ("password", PASSWORD)]).await;

    assert_eq!(signed_in.status, StatusCode::FORBIDDEN);
    assert!(signed_in.alert().is_some_and(|a| a.contains("Confirm your email address")), "{}", signed_in.body);
    assert!(browser.cookie("tessera-session").is_none());
}
