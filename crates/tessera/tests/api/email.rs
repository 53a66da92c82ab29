//! Email over a real SMTP connection to a sink on loopback: verification and password reset
//! round trips, link single use and expiry, the forgot endpoint's timing, an outage of the
//! mail server, several instances sending each mail once, and no mail server at all.

use crate::helpers::{PASSWORD, TestApp, problem, spawn_app_with, spawn_beside, unique_email};
use crate::smtp_sink::{Received, SmtpSink};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tessera::config::{Config, SmtpSecurity, SmtpUrl};

const WAIT: Duration = Duration::from_secs(10);

fn use_sink(config: &mut Config, sink: &SmtpSink) {
    config.smtp_url =
        Some(SmtpUrl { security: SmtpSecurity::Plain, host: "127.0.0.1".into(), port: sink.port, username: None, password: None });
}

pub(crate) async fn app_with_sink(configure: impl FnOnce(&mut Config)) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(|c| {
        use_sink(c, &sink);
        configure(c);
    })
    .await;
    (app, sink)
}

/// The one mail to `to` whose subject contains `about`, waiting for it.
pub(crate) async fn mail_about(sink: &SmtpSink, to: &str, about: &str) -> Received {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(m) = sink.messages_to(to).into_iter().find(|m| m.header("Subject").is_some_and(|s| s.contains(about))) {
            return m;
        }
        assert!(Instant::now() < deadline, "no mail about {about:?} to {to}; got {:?}", sink.messages_to(to));
        sink.wait_for(to, sink.messages_to(to).len() + 1, Duration::from_millis(200)).await;
    }
}

pub(crate) fn token_of(link: &str) -> String {
    link.split_once("token=").map(|(_, t)| t.to_owned()).expect("link has a token")
}

async fn me(app: &TestApp, token: &str) -> Value {
    app.get_with("/v1/users/me", token).await.json().await.unwrap()
}

#[tokio::test]
async fn registration_mails_a_link_that_verifies_the_address_once() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let email = unique_email();
    let registered = app.register(&email).await;
    let access = registered["access_token"].as_str().unwrap();
    assert_eq!(registered["user"]["email_verified"], false);

    let mail = mail_about(&sink, &email, "Confirm your email address").await;
    let link = mail.link("http://tessera.test/verify-email?token=").expect("the plain part has the link");
    let html = mail.part("text/html").expect("an HTML part");
    assert!(html.contains(&link.replace('&', "&amp;")), "the HTML part has the same link: {html}");
    assert!(!html.contains("<img") && !html.contains("<script"), "no images, no scripts: {html}");
    assert_eq!(mail.header("Auto-Submitted").as_deref(), Some("auto-generated"));
    assert!(
        mail.header("Message-ID").is_some_and(|id| id.starts_with('<') && id.ends_with("@tessera.test>")),
        "{:?}",
        mail.header("Message-ID")
    );
    assert!(mail.header("Date").is_some());
    assert!(
        mail.header("From").is_some_and(|f| f.contains("Tessera") && f.contains("<no-reply@tessera.test>")),
        "{:?}",
        mail.header("From")
    );
    assert!(mail.header("Content-Type").is_some_and(|c| c.starts_with("multipart/alternative")));
    assert_eq!(mail.to, vec![email.clone()]);
    let token = token_of(&link);
    assert!(token.len() >= 4 + 43, "256 bits or more: {token}");

    let verified = app.post_json("/v1/auth/email/verify", &json!({ "token": token })).await;
    assert_eq!(verified.status(), StatusCode::OK);
    let user: Value = verified.json().await.unwrap();
    assert_eq!(user["email_verified"], true);
    assert_eq!(me(&app, access).await["email_verified"], true);

    let again = app.post_json("/v1/auth/email/verify", &json!({ "token": token })).await;
    problem(again, StatusCode::BAD_REQUEST, "invalid_link").await;
    let forged = app.post_json("/v1/auth/email/verify", &json!({ "token": "tml_not-a-token" })).await;
    problem(forged, StatusCode::BAD_REQUEST, "invalid_link").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tessera_mail_queued_total{kind=\"verify\"} 1"), "{metrics}");
    assert!(metrics.contains("tessera_mail_sent_total 1"), "{metrics}");
    assert!(metrics.contains("tessera_mail_oldest_unsent_age_seconds 0"), "{metrics}");
}

#[tokio::test]
async fn a_verification_link_stops_working_after_its_lifetime() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let email = unique_email();
    app.register(&email).await;
    let link = mail_about(&sink, &email, "Confirm").await.link("http://tessera.test/verify-email?token=").unwrap();

    app.advance(Duration::from_secs(24 * 3600 + 1));

    let late = app.post_json("/v1/auth/email/verify", &json!({ "token": token_of(&link) })).await;
    problem(late, StatusCode::BAD_REQUEST, "invalid_link").await;
}

#[tokio::test]
async fn verification_mails_are_limited_to_three_an_hour_per_address_registration_included() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let email = unique_email();
    let access = app.register(&email).await["access_token"].as_str().unwrap().to_owned();

    for _ in 0..2 {
        let resent = app.send_with(Method::POST, "/v1/users/me/email/verification", &access, None).await;
        assert_eq!(resent.status(), StatusCode::ACCEPTED);
    }
    let refused = app.send_with(Method::POST, "/v1/users/me/email/verification", &access, None).await;
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&wait), "Retry-After {wait}");
    problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(sink.wait_for(&email, 3, WAIT).await.len(), 3);

    app.advance(Duration::from_secs(3601));
    let access = app.login(&email).await["access_token"].as_str().unwrap().to_owned();
    let later = app.send_with(Method::POST, "/v1/users/me/email/verification", &access, None).await;
    assert_eq!(later.status(), StatusCode::ACCEPTED);
    assert_eq!(sink.wait_for(&email, 4, WAIT).await.len(), 4);
}

#[tokio::test]
async fn a_password_reset_sets_the_password_ends_every_session_and_verifies_the_address() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let email = unique_email();
    let registered = app.register(&email).await;
    let access = registered["access_token"].as_str().unwrap().to_owned();
    let refresh = registered["refresh_token"].as_str().unwrap().to_owned();

    let asked = app.post_json("/v1/auth/password/forgot", &json!({ "email": email.to_uppercase() })).await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let mail = mail_about(&sink, &email, "Reset your Tessera password").await;
    let link = mail.link("http://tessera.test/password/reset?token=").expect("a reset link");
    let token = token_of(&link);

    let weak = app.post_json("/v1/auth/password/reset", &json!({ "token": token, "new_password": "password123" })).await;
    problem(weak, StatusCode::UNPROCESSABLE_ENTITY, "weak_password").await;
    let new_password = "a brand new passphrase for tessera";
    let reset = app.post_json("/v1/auth/password/reset", &json!({ "token": token, "new_password": new_password })).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);

    let refreshed = app.post_json("/v1/auth/refresh", &json!({ "refresh_token": refresh })).await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED, "the old session is over");
    assert_eq!(app.get_with("/v1/users/me", &access).await.status(), StatusCode::UNAUTHORIZED);
    let old = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let login = app.post_json("/v1/auth/login", &json!({ "email": email, "password": new_password })).await;
    assert_eq!(login.status(), StatusCode::OK);
    let login: Value = login.json().await.unwrap();
    assert_eq!(login["user"]["email_verified"], true, "reading the reset mail proves the address");
    mail_about(&sink, &email, "password was reset").await;

    let again = app.post_json("/v1/auth/password/reset", &json!({ "token": token, "new_password": "yet another fine passphrase" })).await;
    problem(again, StatusCode::BAD_REQUEST, "invalid_link").await;
    let trail: Value = app.get_with("/v1/audit?limit=100", &app.admin_token().await).await.json().await.unwrap();
    let kinds: Vec<&str> = trail["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str()).collect();
    for kind in ["email.verification_sent", "password.reset_requested", "password.reset"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test]
async fn a_reset_link_stops_working_after_the_reset_lifetime() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let email = unique_email();
    app.register(&email).await;
    app.post_json("/v1/auth/password/forgot", &json!({ "email": email })).await;
    let link = mail_about(&sink, &email, "Reset").await.link("http://tessera.test/password/reset?token=").unwrap();

    app.advance(Duration::from_secs(31 * 60));

    let late =
        app.post_json("/v1/auth/password/reset", &json!({ "token": token_of(&link), "new_password": "a brand new passphrase" })).await;
    problem(late, StatusCode::BAD_REQUEST, "invalid_link").await;
}

#[tokio::test]
async fn past_three_reset_mails_an_hour_forgot_still_answers_202_and_sends_nothing() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let email = unique_email();
    app.register(&email).await;
    mail_about(&sink, &email, "Confirm").await;

    for _ in 0..5 {
        let asked = app.post_json("/v1/auth/password/forgot", &json!({ "email": email })).await;
        assert_eq!(asked.status(), StatusCode::ACCEPTED);
    }

    assert_eq!(sink.wait_for(&email, 4, WAIT).await.len(), 4, "a verification mail and three reset mails");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let resets = sink.messages_to(&email).iter().filter(|m| m.header("Subject").is_some_and(|s| s.contains("Reset"))).count();
    assert_eq!(resets, 3);
}

#[tokio::test]
async fn forgot_is_limited_per_client_address() {
    let (app, _sink) = app_with_sink(|c| c.rate_limit_per_ip = 3).await;
    for _ in 0..3 {
        assert_eq!(app.post_json("/v1/auth/password/forgot", &json!({ "email": unique_email() })).await.status(), StatusCode::ACCEPTED);
    }
    let limited = app.post_json("/v1/auth/password/forgot", &json!({ "email": unique_email() })).await;
    assert!(limited.headers().contains_key("retry-after"));
    problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn forgot_takes_the_same_time_for_known_and_unknown_addresses() {
    let (app, _sink) = app_with_sink(|_| {}).await;
    let known = unique_email();
    app.register(&known).await;
    let mut times = (Vec::new(), Vec::new());
    for round in 0..31 {
        // Alternate which goes first, so neither is always timed right after the other.
        let mut pair = [(known.clone(), &mut times.0), (unique_email(), &mut times.1)];
        if round % 2 == 1 {
            pair.reverse();
        }
        for (email, into) in pair {
            // What the previous request set going after its answer (the look-up, the mail)
            // is done before the next one is timed.
            tokio::time::sleep(Duration::from_millis(30)).await;
            let started = Instant::now();
            let res = app.post_json("/v1/auth/password/forgot", &json!({ "email": email })).await;
            let took = started.elapsed();
            assert_eq!(res.status(), StatusCode::ACCEPTED);
            if round > 0 {
                into.push(took);
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let (known, unknown) = (median(&mut times.0), median(&mut times.1));
    let ratio = known / unknown;
    println!("forgot: median {:.3} ms known, {:.3} ms unknown, ratio {ratio:.2}", known * 1e3, unknown * 1e3);
    assert!((0.67..=1.5).contains(&ratio), "known {known:.6}s vs unknown {unknown:.6}s: ratio {ratio:.2}");
}

#[tokio::test]
async fn a_mail_queued_while_the_mail_server_is_down_arrives_when_it_is_back() {
    let (app, mut sink) = app_with_sink(|_| {}).await;
    sink.stop().await;
    let email = unique_email();
    app.register(&email).await;

    // The worker tries at once, fails, and schedules a retry within 30 s of the app's clock.
    let deadline = Instant::now() + WAIT;
    while !app.get("/metrics").await.text().await.unwrap().contains("tessera_mail_retried_total 1") {
        assert!(Instant::now() < deadline, "no failed attempt was counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tessera_mail_sent_total 0"), "{metrics}");
    app.advance(Duration::from_secs(5));
    assert!(app.get("/metrics").await.text().await.unwrap().contains("tessera_mail_oldest_unsent_age_seconds 5"));
    sink.restart().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sink.messages_to(&email).is_empty(), "not before the retry is due");

    app.advance(Duration::from_secs(30));

    let arrived = sink.wait_for(&email, 1, WAIT).await;
    assert_eq!(arrived.len(), 1, "the mail arrives once the server is back");
    assert!(arrived[0].link("http://tessera.test/verify-email?token=").is_some());
}

#[tokio::test]
async fn several_instances_send_each_mail_exactly_once() {
    let (a, sink) = app_with_sink(|_| {}).await;
    let b = spawn_beside(&a, |_| {}).await;
    let c = spawn_beside(&a, |_| {}).await;
    let mut emails = Vec::new();
    for i in 0..15 {
        let email = unique_email();
        [&a, &b, &c][i % 3].register(&email).await;
        emails.push(email);
    }

    let deadline = Instant::now() + WAIT;
    while sink.messages().len() < emails.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let received = sink.messages();
    for email in &emails {
        assert_eq!(received.iter().filter(|m| m.to.contains(email)).count(), 1, "{email}");
    }
    assert_eq!(received.len(), emails.len());
}

#[tokio::test]
async fn an_email_change_sends_a_link_to_the_new_address_and_a_notice_to_the_old() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let (old, new) = (unique_email(), unique_email());
    let access = app.register(&old).await["access_token"].as_str().unwrap().to_owned();
    let link = mail_about(&sink, &old, "Confirm").await.link("http://tessera.test/verify-email?token=").unwrap();
    app.post_json("/v1/auth/email/verify", &json!({ "token": token_of(&link) })).await;

    let changed = app.send_with(Method::PATCH, "/v1/users/me", &access, Some(&json!({ "email": new }))).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["email_verified"], false);

    let notice = mail_about(&sink, &old, "email address of your Tessera account was changed").await;
    assert!(notice.part("text/plain").unwrap().contains(&new));
    let link = mail_about(&sink, &new, "Confirm").await.link("http://tessera.test/verify-email?token=").unwrap();
    let verified: Value = app.post_json("/v1/auth/email/verify", &json!({ "token": token_of(&link) })).await.json().await.unwrap();
    assert_eq!(verified["email"], new);
    assert_eq!(verified["email_verified"], true);
}

#[tokio::test]
async fn a_link_sent_to_a_former_address_verifies_nothing() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let (old, new) = (unique_email(), unique_email());
    let access = app.register(&old).await["access_token"].as_str().unwrap().to_owned();
    let link = mail_about(&sink, &old, "Confirm").await.link("http://tessera.test/verify-email?token=").unwrap();
    app.send_with(Method::PATCH, "/v1/users/me", &access, Some(&json!({ "email": new }))).await;

    let stale = app.post_json("/v1/auth/email/verify", &json!({ "token": token_of(&link) })).await;

    problem(stale, StatusCode::BAD_REQUEST, "invalid_link").await;
    assert_eq!(me(&app, &access).await["email_verified"], false);
}

#[tokio::test]
async fn a_password_change_sends_a_notice() {
    let (app, sink) = app_with_sink(|_| {}).await;
    let email = unique_email();
    let access = app.register(&email).await["access_token"].as_str().unwrap().to_owned();
    let body = json!({ "current_password": PASSWORD, "new_password": "another quite long passphrase" });

    assert_eq!(app.send_with(Method::PUT, "/v1/users/me/password", &access, Some(&body)).await.status(), StatusCode::NO_CONTENT);

    let notice = mail_about(&sink, &email, "password was changed").await;
    assert!(notice.link("http://tessera.test/password/forgot").is_some(), "the notice says where to reset");
}

#[tokio::test]
async fn with_verified_email_required_nobody_signs_in_before_verifying() {
    let (app, sink) = app_with_sink(|c| c.require_verified_email = true).await;
    let email = unique_email();
    let res = app.post_json("/v1/auth/register", &json!({ "email": email, "password": PASSWORD })).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["user"]["email_verified"], false);

    let refused = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    problem(refused, StatusCode::FORBIDDEN, "email_not_verified").await;
    let wrong = app.post_json("/v1/auth/login", &json!({ "email": email, "password": "not the password at all" })).await;
    problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;

    let link = mail_about(&sink, &email, "Confirm").await.link("http://tessera.test/verify-email?token=").unwrap();
    app.post_json("/v1/auth/email/verify", &json!({ "token": token_of(&link) })).await;
    assert_eq!(app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_verified_email_required_an_unverified_session_cannot_refresh() {
    let (open, _sink) = app_with_sink(|_| {}).await;
    let strict = spawn_beside(&open, |c| c.require_verified_email = true).await;
    let refresh = open.register(&unique_email()).await["refresh_token"].as_str().unwrap().to_owned();

    let refused = strict.post_json("/v1/auth/refresh", &json!({ "refresh_token": refresh })).await;

    problem(refused, StatusCode::FORBIDDEN, "email_not_verified").await;
}

/// A `tessera serve` process without a mail server, and what it logged.
async fn serve_without_smtp(profile: &str, exercise: impl AsyncFnOnce(&str)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("TESSERA_DATABASE_URL", format!("sqlite://{}", dir.path().join("t.db").display()))
        .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
        .env("TESSERA_PROFILE", profile)
        .env("TESSERA_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if profile == "prod" {
        cmd.env("TESSERA_ISSUER", "https://id.example.test").env("TESSERA_MASTER_KEY", "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=");
    }
    let mut child = cmd.spawn().unwrap();
    let readers: Vec<_> =
        [child.stdout.take().map(|o| Box::new(o) as Box<dyn std::io::Read + Send>), child.stderr.take().map(|e| Box::new(e) as _)]
            .into_iter()
            .flatten()
            .map(|mut r| {
                std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = r.read_to_string(&mut text);
                    text
                })
            })
            .collect();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "serve did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    exercise(&base).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    readers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn in_prod_without_a_mail_server_the_mail_endpoints_answer_503_and_no_link_is_logged() {
    let logs = serve_without_smtp("prod", async |base: &str| {
        let client = reqwest::Client::new();
        let email = unique_email();
        let registered =
            client.post(format!("{base}/v1/auth/register")).json(&json!({ "email": email, "password": PASSWORD })).send().await.unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED);
        let body: Value = registered.json().await.unwrap();
        assert_eq!(body["user"]["email_verified"], false);
        let access = body["access_token"].as_str().unwrap();
        let forgot = client.post(format!("{base}/v1/auth/password/forgot")).json(&json!({ "email": email })).send().await.unwrap();
        problem(forgot, StatusCode::SERVICE_UNAVAILABLE, "email_unavailable").await;
        let resend = client.post(format!("{base}/v1/users/me/email/verification")).bearer_auth(access).send().await.unwrap();
        problem(resend, StatusCode::SERVICE_UNAVAILABLE, "email_unavailable").await;
        let change = json!({ "current_password": PASSWORD, "new_password": "another quite long passphrase" });
        let changed = client.put(format!("{base}/v1/users/me/password")).bearer_auth(access).json(&change).send().await.unwrap();
        assert_eq!(changed.status(), StatusCode::NO_CONTENT, "the rest works without sending");
    })
    .await;

    assert!(logs.contains("listening") || logs.contains("serving") || !logs.is_empty(), "the server logged: {logs}");
    assert!(!logs.contains("token="), "a link was logged in prod: {logs}");
}

#[tokio::test]
async fn in_dev_without_a_mail_server_each_mail_is_logged_with_its_link() {
    let email = unique_email();
    let logs = serve_without_smtp("dev", async |base: &str| {
        let client = reqwest::Client::new();
        let registered =
            client.post(format!("{base}/v1/auth/register")).json(&json!({ "email": email, "password": PASSWORD })).send().await.unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED);
    })
    .await;

    let line = logs.lines().find(|l| l.contains("/verify-email?token=")).unwrap_or_else(|| panic!("no link logged: {logs}"));
    assert!(line.contains(&email) && line.contains("Confirm your email address"), "{line}");
}
