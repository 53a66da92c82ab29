//! The admin console over HTTP: who reaches it (admins signed in through the browser; others
//! get the 403 page on every page and every action, a browser without a session is sent to
//! sign in), CSRF, the fresh rule on destructive actions, each action's effect as the API
//! sees it, the search and the paging of people, and the filtered audit trail.

use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with, unique_email};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tessera::domain::{Email, PasswordHash, Roles, User, UserId, Username};
use tessera::service::Registration;

/// A browser without JavaScript: a cookie jar and no automatic redirects.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    jar: BTreeMap<String, String>,
}

/// An answer, read.
struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let at = self.body.find(marker).expect("the page has a form with a CSRF token") + marker.len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }

    /// The `href` of the link marked `rel="next"`, unescaped.
    fn next_link(&self) -> Option<String> {
        let end = self.body.find("\" rel=\"next\"")?;
        let start = self.body[..end].rfind("href=\"")? + "href=\"".len();
        Some(self.body[start..end].replace("&#38;", "&").replace("&amp;", "&"))
    }

    /// The people a users page lists, by the links of its rows.
    fn listed_users(&self) -> Vec<String> {
        let tbody = self.body.split("<tbody>").nth(1).map(|b| b.split("</tbody>").next().unwrap_or_default()).unwrap_or_default();
        tbody
            .split("<th scope=\"row\" data-label=\"Email\"><a class=\"wrap\" href=\"/admin/users/")
            .skip(1)
            .map(|s| s[36 + 2..].split('<').next().unwrap().to_owned())
            .collect()
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { app, client, jar: BTreeMap::new() }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut req = self.client.request(method, self.app.url(path)).header("accept", "text/html");
        if !self.jar.is_empty() {
            let line = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            req = req.header(COOKIE, line);
        }
        if let Some(form) = form {
            req = req.form(form);
        }
        let res = req.send().await.unwrap();
        for line in res.headers().get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()) {
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
        Page { status, location, body: res.text().await.unwrap() }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// Posts `fields` to `action` with the CSRF token of the form at `form_page`.
    async fn submit(&mut self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(form_page).await.csrf();
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.send(Method::POST, action, Some(&all)).await
    }

    async fn sign_in(&mut self, email: &str) -> Page {
        let page = self
            .submit("/login?return_to=%2Fadmin", "/login", &[("identifier", email), ("password", PASSWORD), ("return_to", "/admin")])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "signing in {email}: {}", page.body);
        page
    }
}

/// A new admin (as `tessera users create --admin` makes one) and their email.
async fn new_admin(app: &TestApp) -> (String, String) {
    let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
    let user = app
        .tessera
        .create_user(Registration { email: email.clone(), password: PASSWORD.into(), username: None, admin: true })
        .await
        .unwrap();
    (user.id.to_string(), email)
}

/// A browser signed in as a new admin, with the admin's id.
async fn admin_browser(app: &TestApp) -> (Browser<'_>, String) {
    let (id, email) = new_admin(app).await;
    let mut browser = Browser::new(app);
    browser.sign_in(&email).await;
    (browser, id)
}

/// A person registered through the API: `(id, email)`.
async fn person(app: &TestApp) -> (String, String) {
    let email = unique_email();
    let body = app.register(&email).await;
    (body["user"]["id"].as_str().unwrap().to_owned(), email)
}

async fn audit_events(app: &TestApp, token: &str) -> Vec<Value> {
    let trail: Value = app.get_with("/v1/audit?limit=200", token).await.json().await.unwrap();
    trail["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_person_without_the_admin_role_gets_the_403_page_on_every_console_page_and_action() {
    let app = spawn_app().await;
    let (victim, _) = person(&app).await;
    let (_, email) = person(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email).await;
    let client_id = {
        let token = app.admin_token().await;
        let res = app.send_with(Method::POST, "/v1/clients", &token, Some(&json!({ "name": "svc", "scopes": [] }))).await;
        res.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_owned()
    };

    for path in [
        "/admin".to_owned(),
        "/admin/users".to_owned(),
        format!("/admin/users/{victim}"),
        format!("/admin/users/{victim}/delete"),
        "/admin/clients".to_owned(),
        "/admin/clients/new".to_owned(),
        format!("/admin/clients/{client_id}"),
        "/admin/keys".to_owned(),
        "/admin/audit".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("<code>forbidden</code>") && page.body.contains("admin role"), "the 403 page at {path}");
    }
    let token = browser.get("/account").await.csrf();
    for action in [
        format!("/admin/users/{victim}/disable"),
        format!("/admin/users/{victim}/enable"),
        format!("/admin/users/{victim}/grant-admin"),
        format!("/admin/users/{victim}/remove-admin"),
        format!("/admin/users/{victim}/end-sessions"),
        format!("/admin/users/{victim}/delete"),
        "/admin/clients".to_owned(),
        format!("/admin/clients/{client_id}"),
        format!("/admin/clients/{client_id}/secret"),
        format!("/admin/clients/{client_id}/delete"),
        "/admin/keys/rotate".to_owned(),
    ] {
        let page = browser.send(Method::POST, &action, Some(&[("csrf_token", &token), ("name", "x"), ("confirm_email", "x")])).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{action}");
    }
    let admin = app.admin_token().await;
    let user: Value = app.get_with(&format!("/v1/users/{victim}"), &admin).await.json().await.unwrap();
    assert_eq!((user["disabled"].as_bool(), user["roles"].as_array().map(Vec::len)), (Some(false), Some(0)), "nothing was done");
    assert!(audit_events(&app, &admin).await.iter().all(|e| e["kind"] != "key.rotated" && e["kind"] != "client.deleted"));
}

#[tokio::test]
async fn a_browser_without_a_session_is_sent_to_sign_in_and_comes_back() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);

    let page = browser.get("/admin/users?q=ann").await;

    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/login?return_to=%2Fadmin%2Fusers%3Fq%3Dann"));
    let (_, email) = new_admin(&app).await;
    let login = browser.get("/login?return_to=%2Fadmin%2Fusers%3Fq%3Dann").await;
    let signed_in = browser
        .send(
            Method::POST,
            "/login",
            Some(&[("csrf_token", &login.csrf()), ("identifier", &email), ("password", PASSWORD), ("return_to", "/admin/users?q=ann")]),
        )
        .await;
    assert_eq!(signed_in.location.as_deref(), Some("/admin/users?q=ann"));
    assert_eq!(browser.get("/admin/users?q=ann").await.status, StatusCode::OK);
    let post = Browser::new(&app).send(Method::POST, "/admin/keys/rotate", Some(&[("csrf_token", "x")])).await;
    assert!(
        matches!(post.status, StatusCode::SEE_OTHER | StatusCode::FORBIDDEN),
        "an action without a session does nothing: {}",
        post.status
    );
}

#[tokio::test]
async fn a_console_action_without_its_csrf_token_does_nothing() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;
    let (victim, email) = person(&app).await;

    let page = browser.send(Method::POST, &format!("/admin/users/{victim}/disable"), Some(&[])).await;
    let forged = browser.send(Method::POST, &format!("/admin/users/{victim}/disable"), Some(&[("csrf_token", "forged")])).await;

    assert_eq!((page.status, forged.status), (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN));
    assert!(page.body.contains("csrf_failed"), "{}", page.body);
    app.login(&email).await;
}

#[tokio::test]
async fn disabling_on_the_console_refuses_the_persons_login_and_is_audited_with_the_admin_as_actor() {
    let app = spawn_app().await;
    let (mut browser, admin_id) = admin_browser(&app).await;
    let (victim, email) = person(&app).await;
    let page = format!("/admin/users/{victim}");

    let done = browser.submit(&page, &format!("{page}/disable"), &[]).await;

    assert_eq!(done.location.as_deref(), Some(format!("{page}?done=disabled").as_str()));
    let res = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    crate::helpers::problem(res, StatusCode::FORBIDDEN, "account_disabled").await;
    let events = audit_events(&app, &app.admin_token().await).await;
    let disabled = events.iter().find(|e| e["kind"] == "user.disabled").expect("the event");
    assert_eq!((disabled["actor"].as_str(), disabled["subject"].as_str()), (Some(admin_id.as_str()), Some(victim.as_str())));
    let shown = browser.get(&page).await;
    assert!(shown.body.contains("Disabled") && shown.body.contains(">Enable</button>"), "the page shows it");

    browser.submit(&page, &format!("{page}/enable"), &[]).await;
    app.login(&email).await;
}

#[tokio::test]
async fn granting_and_removing_admin_on_the_console_changes_the_roles_and_revokes_the_tokens() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;
    let (victim, email) = person(&app).await;
    let page = format!("/admin/users/{victim}");
    let before = app.login(&email).await["access_token"].as_str().unwrap().to_owned();

    browser.submit(&page, &format!("{page}/grant-admin"), &[]).await;

    assert_eq!(app.get_with("/v1/users/me", &before).await.status(), StatusCode::UNAUTHORIZED, "the old token is revoked");
    let token = app.login(&email).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_with("/v1/keys", &token).await.status(), StatusCode::OK, "an admin now");
    browser.submit(&page, &format!("{page}/remove-admin"), &[]).await;
    let token = app.login(&email).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get_with("/v1/keys", &token).await.status(), StatusCode::FORBIDDEN, "no longer");
}

#[tokio::test]
async fn ending_sessions_on_the_console_revokes_every_token_of_the_person() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;
    let (victim, email) = person(&app).await;
    let tokens = app.login(&email).await;
    let page = format!("/admin/users/{victim}");
    assert!(browser.get(&page).await.body.contains("API sign-in"), "the token session is listed");

    let done = browser.submit(&page, &format!("{page}/end-sessions"), &[]).await;

    assert_eq!(done.location.as_deref(), Some(format!("{page}?done=ended").as_str()));
    assert_eq!(app.get_with("/v1/users/me", tokens["access_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);
    let refresh = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": tokens["refresh_token"] })).await;
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);
    assert!(!browser.get(&page).await.body.contains("value=\"token\""), "no session is left");
    app.login(&email).await;
}

#[tokio::test]
async fn ending_one_session_on_the_console_leaves_the_others() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;
    let (victim, email) = person(&app).await;
    let first = app.login(&email).await;
    let second = app.login(&email).await;
    let sid = crate::helpers::claims_of(first["access_token"].as_str().unwrap())["sid"].as_str().unwrap().to_owned();
    let page = format!("/admin/users/{victim}");

    browser.submit(&page, &format!("{page}/sessions/end"), &[("kind", "token"), ("id", &sid)]).await;

    assert_eq!(app.get_with("/v1/users/me", first["access_token"].as_str().unwrap()).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.get_with("/v1/users/me", second["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    let again = browser.submit(&page, &format!("{page}/sessions/end"), &[("kind", "token"), ("id", &sid)]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_an_account_needs_its_email_typed_on_the_page_that_names_it() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;
    let (victim, email) = person(&app).await;
    let confirm = format!("/admin/users/{victim}/delete");
    assert!(browser.get(&confirm).await.body.contains(&format!("Delete the account {email}?")));

    let wrong = browser.submit(&confirm, &confirm, &[("confirm_email", "someone@else.example")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.login(&email).await;

    let done = browser.submit(&confirm, &confirm, &[("confirm_email", &email.to_uppercase())]).await;
    assert_eq!(done.location.as_deref(), Some("/admin/users?done=deleted"));
    let res = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(browser.get(&format!("/admin/users/{victim}")).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_destructive_action_after_the_fresh_window_sends_the_admin_to_sign_in_again_and_back() {
    let app = spawn_app().await;
    let (_, admin_email) = new_admin(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin_email).await;
    let (victim, email) = person(&app).await;
    let page = format!("/admin/users/{victim}");
    let token = browser.get(&page).await.csrf();
    app.advance(app.config.fresh_max_age.as_std() + Duration::from_secs(1));

    let stale = browser.send(Method::POST, &format!("{page}/disable"), Some(&[("csrf_token", &token)])).await;

    let back = format!("/login?return_to=%2Fadmin%2Fusers%2F{victim}");
    assert_eq!((stale.status, stale.location.as_deref()), (StatusCode::SEE_OTHER, Some(back.as_str())));
    app.login(&email).await;
    assert_eq!(browser.get(&page).await.status, StatusCode::OK, "reading needs no recent sign-in");
    let token = browser.get(&page).await.csrf();
    let enable = browser.send(Method::POST, &format!("{page}/enable"), Some(&[("csrf_token", &token)])).await;
    assert_eq!(enable.status, StatusCode::SEE_OTHER, "nor does enabling");
    assert!(enable.location.unwrap().ends_with("done=enabled"));

    browser.sign_in(&admin_email).await;
    let done = browser.submit(&page, &format!("{page}/disable"), &[]).await;
    assert_eq!(done.location.as_deref(), Some(format!("{page}?done=disabled").as_str()));
}

#[tokio::test]
async fn a_client_made_on_the_console_is_the_apis_client_and_each_action_reaches_it() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;
    let admin = app.admin_token().await;

    let created = browser
        .submit(
            "/admin/clients/new",
            "/admin/clients",
            &[
                ("name", "Orders"),
                ("scopes", "openid orders:read"),
                ("redirect_uris", "https://orders.example/cb\nhttps://orders.example/cb2"),
                ("post_logout_redirect_uris", "https://orders.example/bye"),
                ("first_party", "on"),
            ],
        )
        .await;

    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let value = |field: &str| {
        let marker = format!("id=\"{field}\"");
        let at = created.body.find(&marker).unwrap_or_else(|| panic!("{field} shown"));
        let rest = &created.body[at..];
        let text = if field == "client-id" { rest.split('>').nth(1).unwrap() } else { rest.split("value=\"").nth(1).unwrap() };
        text.split(['<', '"']).next().unwrap().to_owned()
    };
    let (client_id, secret) = (value("client-id"), value("client-secret"));
    assert!(created.body.contains("data-copy=\"client-secret\""), "a copy button");
    let client: Value = app.get_with(&format!("/v1/clients/{client_id}"), &admin).await.json().await.unwrap();
    assert_eq!(client["redirect_uris"], json!(["https://orders.example/cb", "https://orders.example/cb2"]));
    assert_eq!(client["post_logout_redirect_uris"], json!(["https://orders.example/bye"]));
    assert_eq!((client["first_party"].as_bool(), client["public"].as_bool()), (Some(true), Some(false)));
    assert_eq!(client["grant_types"], json!(["authorization_code", "refresh_token", "client_credentials"]));
    let grant = |secret: String| {
        let app = &app;
        let client_id = client_id.clone();
        async move {
            app.request(Method::POST, "/oauth2/token")
                .basic_auth(client_id, Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(grant(secret.clone()).await, StatusCode::OK);
    let listed = browser.get("/admin/clients").await;
    assert!(listed.body.contains("Orders") && listed.body.contains("<code>authorization_code</code>"), "the list shows its grants");

    let page = format!("/admin/clients/{client_id}");
    let saved = browser
        .submit(
            &page,
            &page,
            &[
                ("name", "Orders v2"),
                ("scopes", "openid orders:read"),
                ("redirect_uris", "https://orders.example/cb"),
                ("post_logout_redirect_uris", ""),
            ],
        )
        .await;
    assert_eq!(saved.location.as_deref(), Some(format!("{page}?done=updated").as_str()));
    let client: Value = app.get_with(&format!("/v1/clients/{client_id}"), &admin).await.json().await.unwrap();
    assert_eq!((client["name"].as_str(), client["first_party"].as_bool()), (Some("Orders v2"), Some(false)));
    assert_eq!(client["redirect_uris"], json!(["https://orders.example/cb"]));

    let rotated = browser.submit(&page, &format!("{page}/secret"), &[]).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let marker = "id=\"client-secret\" type=\"text\" value=\"";
    let at = rotated.body.find(marker).unwrap() + marker.len();
    let new_secret = rotated.body[at..].split('"').next().unwrap().to_owned();
    assert_eq!(grant(secret).await, StatusCode::UNAUTHORIZED, "the old secret stops working");
    assert_eq!(grant(new_secret.clone()).await, StatusCode::OK);

    let confirm = format!("{page}/delete");
    assert!(browser.get(&confirm).await.body.contains("Delete the client Orders v2?"));
    let deleted = browser.submit(&confirm, &confirm, &[]).await;
    assert_eq!(deleted.location.as_deref(), Some("/admin/clients?done=client-deleted"));
    assert_eq!(app.get_with(&format!("/v1/clients/{client_id}"), &admin).await.status(), StatusCode::NOT_FOUND);
    let kinds: Vec<String> = audit_events(&app, &admin).await.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect();
    for kind in ["client.created", "client.updated", "client.secret_rotated", "client.deleted"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn a_client_form_with_a_bad_redirect_uri_is_shown_again_with_the_error() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;

    let page = browser.submit("/admin/clients/new", "/admin/clients", &[("name", "Bad"), ("redirect_uris", "not a uri")]).await;

    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("role=\"alert\"") && page.body.contains("value=\"Bad\""), "{}", page.body);
    let clients: Value = app.get_with("/v1/clients", &app.admin_token().await).await.json().await.unwrap();
    assert_eq!(clients["clients"], json!([]));
}

#[tokio::test]
async fn rotating_the_keys_on_the_console_changes_the_active_key_and_the_jwks() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;
    let admin = app.admin_token().await;
    let active = |keys: &Value| keys["keys"].as_array().unwrap().iter().find(|k| k["status"] == "active").unwrap()["kid"].clone();
    let before: Value = app.get_with("/v1/keys", &admin).await.json().await.unwrap();
    let jwks_before: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert!(browser.get("/admin/keys").await.body.contains(active(&before).as_str().unwrap()), "the ring is shown");

    let done = browser.submit("/admin/keys", "/admin/keys/rotate", &[]).await;

    assert_eq!(done.location.as_deref(), Some("/admin/keys?done=rotated"));
    let after: Value = app.get_with("/v1/keys", &admin).await.json().await.unwrap();
    assert_ne!(active(&before), active(&after));
    let jwks_after: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_ne!(jwks_before, jwks_after);

    let changed = browser.submit("/admin/keys", "/admin/keys/rotate", &[("alg", "RS256")]).await;
    assert_eq!(changed.location.as_deref(), Some("/admin/keys?done=scheduled"));
    let keys: Value = app.get_with("/v1/keys", &admin).await.json().await.unwrap();
    assert!(keys["keys"].as_array().unwrap().iter().any(|k| k["status"] == "next" && k["alg"] == "RS256"), "{keys}");
}

/// Stores `n` people straight into the database (no password hashing): `seed-NNN@people.example`,
/// username `seedname-NNN`.
async fn seed_people(app: &TestApp, n: usize) {
    let now = app.tessera.clock_now();
    for i in 0..n {
        let user = User {
            id: UserId::new_time_ordered(),
            email: Email::parse(&format!("seed-{i:03}@people.example")).unwrap(),
            username: Some(Username::parse(&format!("seedname-{i:03}")).unwrap()),
            password_hash: PasswordHash::new(
                "$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNlZWQ$c2VlZHNlZWRzZWVkc2VlZHNlZWRzZWVkc2VlZHNlZWQ".into(),
            ),
            roles: Roles::default(),
            disabled: false,
            two_factor: false,
            email_verified: false,
            tokens_not_before: 0,
            created_at: now,
            updated_at: now,
        };
        app.tessera.store().insert_user(&user).await.unwrap();
    }
}

/// Every page of a search, following the next links.
async fn every_page(browser: &mut Browser<'_>, first: &str) -> Vec<Vec<String>> {
    let mut pages = vec![];
    let mut next = Some(first.to_owned());
    while let Some(path) = next {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        pages.push(page.listed_users());
        next = page.next_link();
        assert!(pages.len() < 20, "paging ends");
    }
    pages
}

#[tokio::test]
async fn people_are_found_by_the_start_of_their_email_or_username_and_paged_by_key() {
    let app = spawn_app().await;
    seed_people(&app, 300).await;
    let (mut browser, _) = admin_browser(&app).await;

    let all = every_page(&mut browser, "/admin/users").await;
    let emails: Vec<String> = all.iter().flatten().cloned().collect();
    assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 50, 50, 50, 50, 1], "301 people, 50 a page");
    let mut sorted = emails.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(emails, sorted, "in email order, each once");

    let by_email = every_page(&mut browser, "/admin/users?q=SEED-1").await;
    assert_eq!(by_email.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50], "seed-100 to seed-199");
    assert!(by_email.iter().flatten().all(|e| e.starts_with("seed-1")), "{by_email:?}");
    let exact = every_page(&mut browser, "/admin/users?q=seed-042%40people.example").await;
    assert_eq!(exact, vec![vec!["seed-042@people.example".to_owned()]]);
    let by_username = every_page(&mut browser, "/admin/users?q=seedname-29").await;
    assert_eq!(by_username.concat(), (290..300).map(|i| format!("seed-{i}@people.example")).collect::<Vec<_>>());
    let none = browser.get("/admin/users?q=nobody").await;
    assert!(none.listed_users().is_empty() && none.body.contains("starts with “nobody”"));
    assert_eq!(browser.get("/admin/users?cursor=%25%25").await.status, StatusCode::BAD_REQUEST, "a bad cursor");
}

#[tokio::test]
async fn the_audit_page_filters_by_kind_actor_subject_and_time_and_pages_by_cursor() {
    let app = spawn_app_with(|c| c.login_max_failures = 100).await;
    let (mut browser, admin_id) = admin_browser(&app).await;
    let (victim, email) = person(&app).await;
    for _ in 0..60 {
        let res = app.post_json("/v1/auth/login", &json!({ "email": email, "password": "wrong password, again" })).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let page = format!("/admin/users/{victim}");
    browser.submit(&page, &format!("{page}/disable"), &[]).await;

    let failed = every_page(&mut browser, &format!("/admin/audit?kind=login.failed&subject={victim}")).await;
    let disabled = browser.get(&format!("/admin/audit?kind=user.disabled&actor={admin_id}")).await;
    let later = browser.get("/admin/audit?kind=user.disabled&since=2999-01-01T00%3A00").await;

    assert_eq!(failed.len(), 2, "60 events, 50 a page");
    assert!(disabled.body.contains(&format!("href=\"/admin/users/{victim}\"")), "the subject links to the person");
    assert!(disabled.body.contains(&format!("href=\"/admin/users/{admin_id}\"")), "the actor links to the admin");
    assert!(later.body.contains("No events match."));
    let bad = browser.get("/admin/audit?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("role=\"alert\""), "a time that is not one is said so");
}

#[tokio::test]
async fn the_overview_counts_people_sessions_clients_and_the_last_days_sign_ins() {
    let app = spawn_app().await;
    let (mut browser, _) = admin_browser(&app).await;
    let (_, email) = person(&app).await;
    app.login(&email).await;
    let res = app.post_json("/v1/auth/login", &json!({ "email": email, "password": "wrong password, again" })).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let page = browser.get("/admin").await;

    assert_eq!(page.status, StatusCode::OK);
    let figure = |label: &str| {
        let at = page.body.find(&format!("</span> <span class=\"stat-label\">{label}</span>")).unwrap_or_else(|| panic!("{label}"));
        page.body[..at].rsplit('>').next().unwrap().to_owned()
    };
    assert_eq!(figure("people"), "2");
    // The person's register and login sessions, and the admin's browser.
    assert_eq!(figure("live sessions"), "3");
    assert_eq!(figure("clients"), "0");
    // The admin's page sign-in and the person's API login.
    assert_eq!(figure("sign-ins"), "2");
    assert_eq!(figure("failed sign-ins"), "1");
    assert!(page.body.contains("Answering"), "the database answers");
    assert!(page.body.contains("Mails are written to the log"), "a test app has no mail server: {}", page.body);
    assert!(page.body.contains("Nothing waiting") || page.body.contains("Oldest unsent mail waiting"), "the outbox's health");
    let person_id = app.tessera.store().user_by_email(&tessera::domain::Email::parse(&email).unwrap()).await.unwrap().unwrap().id;
    let person_page = browser.get(&format!("/admin/users/{person_id}")).await;
    assert!(person_page.body.contains("Not verified"), "the person's address was never verified");
}

#[tokio::test]
async fn resetting_second_factors_on_the_console_removes_totp_and_is_audited_with_the_admin_as_actor() {
    let app = spawn_app().await;
    let (admin_id, admin_email) = new_admin(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&admin_email).await;
    let email = unique_email();
    let body = app.register(&email).await;
    let (victim, token) = (body["user"]["id"].as_str().unwrap().to_owned(), body["access_token"].as_str().unwrap().to_owned());
    let enrolment: Value = app.send_with(Method::POST, "/v1/users/me/totp", &token, None).await.json().await.unwrap();
    let secret = totp_rs::Secret::try_from_base32(enrolment["secret"].as_str().unwrap()).unwrap();
    let now = u64::try_from(tessera::clock::Clock::now(&app.clock).unix_timestamp()).unwrap();
    let code = tessera::domain::factors::TotpSecret::from_bytes(secret.as_bytes().to_vec()).code_at(now).unwrap();
    let confirmed = app.send_with(Method::POST, "/v1/users/me/totp/confirm", &token, Some(&json!({ "code": code }))).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let page = format!("/admin/users/{victim}");
    let shown = browser.get(&page).await;
    assert!(shown.body.contains("<dt>Two-step sign-in</dt><dd>On</dd>"), "{}", shown.body);
    assert!(shown.body.contains(">Reset second factors</button>"));
    let csrf = shown.csrf();
    app.advance(app.config.fresh_max_age.as_std() + Duration::from_secs(1));
    let stale = browser.send(Method::POST, &format!("{page}/reset-mfa"), Some(&[("csrf_token", &csrf)])).await;
    assert_eq!(stale.location, Some(format!("/login?return_to=%2Fadmin%2Fusers%2F{victim}")), "the fresh rule");
    let refused = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    crate::helpers::problem(refused, StatusCode::FORBIDDEN, "mfa_required").await;
    let forged = browser.send(Method::POST, &format!("{page}/reset-mfa"), Some(&[])).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token, no reset");
    browser.sign_in(&admin_email).await;

    let done = browser.submit(&page, &format!("{page}/reset-mfa"), &[]).await;

    assert_eq!(done.location.as_deref(), Some(format!("{page}?done=mfa-reset").as_str()));
    app.login(&email).await;
    let events = audit_events(&app, &app.admin_token().await).await;
    let reset = events.iter().find(|e| e["kind"] == "mfa.reset").expect("mfa.reset in the audit trail");
    assert_eq!((reset["actor"].as_str(), reset["subject"].as_str()), (Some(admin_id.as_str()), Some(victim.as_str())));
    let shown = browser.get(&page).await;
    assert!(shown.body.contains("<dt>Two-step sign-in</dt><dd><span class=\"muted\">Off</span></dd>"));
    assert!(!shown.body.contains(">Reset second factors</button>"));
}
