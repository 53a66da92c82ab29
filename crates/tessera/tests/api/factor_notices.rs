//! Notice mails about second factors, over SMTP to a sink on loopback: TOTP turned on and
//! off, new recovery codes, an admin's or operator's reset, passkeys added and removed, and a
//! recovery code used to sign in. Each notice is queued in the transaction of its change, so
//! a change that fails queues nothing, and one that cannot queue its notice is undone.

use crate::helpers::{PASSWORD, TestApp, fresh_database_url, problem, spawn_app_with, test_config, unique_email};
use crate::smtp_sink::{Received, SmtpSink};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tessera::clock::Clock;
use tessera::config::{Profile, SmtpSecurity, SmtpUrl};
use tessera::domain::factors::TotpSecret;
use tessera::domain::{Email, PasswordHash, Roles, User, UserId};
use tessera::store::factors::StoredPasskey;
use tessera::store::{DynStore, MailKind, OutgoingMail, StoreError};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(10);

async fn app_with_sink() -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let port = sink.port;
    let app = spawn_app_with(|c| {
        c.smtp_url = Some(SmtpUrl { security: SmtpSecurity::Plain, host: "127.0.0.1".into(), port, username: None, password: None });
    })
    .await;
    (app, sink)
}

/// The mails to `to` whose subject contains `about`.
fn mails_about(sink: &SmtpSink, to: &str, about: &str) -> Vec<Received> {
    sink.messages_to(to).into_iter().filter(|m| m.header("Subject").is_some_and(|s| s.contains(about))).collect()
}

/// The one mail to `to` whose subject contains `about`, waiting for it.
async fn mail_about(sink: &SmtpSink, to: &str, about: &str) -> Received {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(m) = mails_about(sink, to, about).into_iter().next() {
            return m;
        }
        assert!(Instant::now() < deadline, "no mail about {about:?} to {to}; got {:?}", sink.messages_to(to));
        sink.wait_for(to, sink.messages_to(to).len() + 1, Duration::from_millis(200)).await;
    }
}

/// The plain-text part of a notice, checked for what every notice about second factors says.
fn notice_text(mail: &Received, to: &str) -> String {
    assert_eq!(mail.to, vec![to.to_owned()]);
    assert_eq!(mail.header("Auto-Submitted").as_deref(), Some("auto-generated"));
    let text = mail.part("text/plain").expect("a plain-text part");
    assert!(text.contains("Tessera"), "the product: {text}");
    assert!(text.contains("When: ") && text.contains(" UTC"), "when: {text}");
    assert!(text.contains("http://tessera.test/account"), "the account page: {text}");
    assert!(text.contains("If it was not you") && text.contains("http://tessera.test/password/forgot"), "what to do: {text}");
    let html = mail.part("text/html").expect("an HTML part");
    assert!(html.contains(r#"<a href="http://tessera.test/account">"#), "the account page: {html}");
    assert!(!html.contains("<img") && !html.contains("<script"), "{html}");
    text
}

/// The code of `secret` (base32) at the server's clock.
fn code_now(app: &TestApp, secret: &str) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret).expect("the secret is base32");
    let now = u64::try_from(app.clock.now().unix_timestamp()).unwrap();
    TotpSecret::from_bytes(bytes.as_bytes().to_vec()).code_at(now).unwrap()
}

/// Registers someone and starts TOTP enrolment: `(email, fresh access token, secret)`.
async fn person_enrolling(app: &TestApp) -> (String, String, String) {
    let email = unique_email();
    let token = app.register(&email).await["access_token"].as_str().unwrap().to_owned();
    let enrolment: Value = app.send_with(Method::POST, "/v1/users/me/totp", &token, None).await.json().await.unwrap();
    (email, token, enrolment["secret"].as_str().unwrap().to_owned())
}

/// Registers someone and turns TOTP on: `(email, fresh access token, secret, recovery codes)`.
async fn person_with_totp(app: &TestApp) -> (String, String, String, Vec<String>) {
    let (email, token, secret) = person_enrolling(app).await;
    let res = app.send_with(Method::POST, "/v1/users/me/totp/confirm", &token, Some(&json!({ "code": code_now(app, &secret) }))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let codes = body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    app.advance(Duration::from_secs(30));
    (email, token, secret, codes)
}

async fn user_id(app: &TestApp, token: &str) -> String {
    let me: Value = app.get_with("/v1/users/me", token).await.json().await.unwrap();
    me["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn turning_totp_on_mails_a_notice_to_the_accounts_address() {
    let (app, sink) = app_with_sink().await;

    let (email, _, _, _) = person_with_totp(&app).await;

    let mail = mail_about(&sink, &email, "A second factor was added to your Tessera account").await;
    let text = notice_text(&mail, &email);
    assert!(text.contains("An authenticator app (TOTP) was added as a second factor"), "{text}");
    assert!(text.contains(&email), "{text}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tessera_mail_queued_total{kind=\"factor_added\"} 1"), "{metrics}");
}

#[tokio::test]
async fn a_wrong_confirmation_code_turns_nothing_on_and_mails_nothing() {
    let (app, sink) = app_with_sink().await;
    let (email, token, secret) = person_enrolling(&app).await;

    let wrong = app.send_with(Method::POST, "/v1/users/me/totp/confirm", &token, Some(&json!({ "code": "000000" }))).await;
    problem(wrong, StatusCode::UNAUTHORIZED, "invalid_code").await;
    // The right code afterwards: its notice is the only one, and mails leave in the order queued.
    let right = app.send_with(Method::POST, "/v1/users/me/totp/confirm", &token, Some(&json!({ "code": code_now(&app, &secret) }))).await;
    assert_eq!(right.status(), StatusCode::OK);

    mail_about(&sink, &email, "A second factor was added").await;
    assert_eq!(mails_about(&sink, &email, "second factor").len(), 1, "{:?}", sink.messages_to(&email));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tessera_mail_queued_total{kind=\"factor_added\"} 1"), "{metrics}");
}

#[tokio::test]
async fn turning_totp_off_mails_a_notice_but_dropping_an_unconfirmed_enrolment_does_not() {
    let (app, sink) = app_with_sink().await;
    let (pending_email, pending_token, _) = person_enrolling(&app).await;
    let dropped = app.send_with(Method::DELETE, "/v1/users/me/totp", &pending_token, None).await;
    assert_eq!(dropped.status(), StatusCode::NO_CONTENT);
    let (email, token, _, _) = person_with_totp(&app).await;

    let res = app.send_with(Method::DELETE, "/v1/users/me/totp", &token, None).await;

    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let mail = mail_about(&sink, &email, "A second factor was removed from your Tessera account").await;
    let text = notice_text(&mail, &email);
    assert!(text.contains("An authenticator app (TOTP) was removed"), "{text}");
    assert!(mails_about(&sink, &pending_email, "second factor").is_empty(), "{:?}", sink.messages_to(&pending_email));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tessera_mail_queued_total{kind=\"factor_removed\"} 1"), "{metrics}");
}

#[tokio::test]
async fn new_recovery_codes_mail_a_notice_that_the_old_ones_are_void() {
    let (app, sink) = app_with_sink().await;
    let (email, token, _, _) = person_with_totp(&app).await;

    let res = app.send_with(Method::POST, "/v1/users/me/recovery-codes", &token, None).await;

    assert_eq!(res.status(), StatusCode::OK);
    let mail = mail_about(&sink, &email, "New recovery codes for your Tessera account").await;
    let text = notice_text(&mail, &email);
    assert!(text.contains("The old ones no longer work"), "{text}");
}

#[tokio::test]
async fn an_admins_reset_mails_a_notice_and_a_reset_with_nothing_to_remove_mails_none() {
    let (app, sink) = app_with_sink().await;
    let (email, token, _, _) = person_with_totp(&app).await;
    let id = user_id(&app, &token).await;
    let admin = app.admin_token().await;

    let res = app.send_with(Method::DELETE, &format!("/v1/users/{id}/mfa"), &admin, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let again = app.send_with(Method::DELETE, &format!("/v1/users/{id}/mfa"), &admin, None).await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);

    let mail = mail_about(&sink, &email, "The second factors of your Tessera account were removed").await;
    let text = notice_text(&mail, &email);
    assert!(text.contains("An administrator removed every second factor"), "{text}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tessera_mail_queued_total{kind=\"factors_reset\"} 1"), "one notice, not two: {metrics}");
}

#[tokio::test]
async fn an_operators_reset_from_the_command_line_mails_the_same_notice() {
    let (app, sink) = app_with_sink().await;
    let (email, _, _, _) = person_with_totp(&app).await;

    let user = app.tessera.reset_mfa_by_email(&email.to_uppercase()).await.unwrap();

    assert!(!user.two_factor);
    let mail = mail_about(&sink, &email, "The second factors of your Tessera account were removed").await;
    notice_text(&mail, &email);
}

#[tokio::test]
async fn a_recovery_code_used_to_sign_in_mails_how_many_are_left() {
    let (app, sink) = app_with_sink().await;
    let (email, _, _, codes) = person_with_totp(&app).await;
    let refused = app.post_json("/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await;
    let mfa_token = problem(refused, StatusCode::FORBIDDEN, "mfa_required").await["mfa_token"].as_str().unwrap().to_owned();

    let wrong = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mfa_token, "code": "aaaaa-bbbbb" })).await;
    problem(wrong, StatusCode::UNAUTHORIZED, "invalid_code").await;
    let res = app.post_json("/v1/auth/login/mfa", &json!({ "mfa_token": mfa_token, "code": codes[0] })).await;

    assert_eq!(res.status(), StatusCode::OK);
    let mail = mail_about(&sink, &email, "A recovery code was used to sign in to your Tessera account").await;
    let text = notice_text(&mail, &email);
    assert!(text.contains("9 unused recovery codes are left"), "{text}");
    assert_eq!(mails_about(&sink, &email, "recovery code was used").len(), 1, "the wrong code sent nothing");
}

fn passkey(user: UserId, name: &str) -> StoredPasskey {
    let id = uuid::Uuid::new_v4().simple().to_string();
    StoredPasskey {
        credential_id: id.as_bytes().to_vec(),
        id,
        user_id: user,
        name: name.to_owned(),
        credential: "{}".to_owned(),
        created_at: OffsetDateTime::now_utc(),
        last_used_at: None,
    }
}

#[tokio::test]
async fn adding_and_removing_a_passkey_mail_notices_that_name_it() {
    let (app, sink) = app_with_sink().await;
    let email = unique_email();
    app.register(&email).await;
    let user = app.tessera.store().user_by_email(&Email::parse(&email).unwrap()).await.unwrap().unwrap();
    let key = passkey(user.id, "Phone <b>");

    app.tessera.insert_passkey_noticed(&user, &key).await.unwrap();
    let added = mail_about(&sink, &email, "A second factor was added").await;
    let text = notice_text(&added, &email);
    assert!(text.contains("The passkey \u{201c}Phone <b>\u{201d} was added"), "{text}");
    assert!(added.part("text/html").unwrap().contains("Phone &#60;b&#62;") || added.part("text/html").unwrap().contains("Phone &lt;b&gt;"));

    assert!(!app.tessera.delete_passkey_noticed(&user, "no-such-passkey").await.unwrap());
    assert!(app.tessera.delete_passkey_noticed(&user, &key.id).await.unwrap());
    let removed = mail_about(&sink, &email, "A second factor was removed").await;
    let text = notice_text(&removed, &email);
    assert!(text.contains("The passkey \u{201c}Phone <b>\u{201d} was removed"), "{text}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tessera_mail_queued_total{kind=\"factor_removed\"} 1"), "the unknown passkey sent nothing: {metrics}");
}

#[tokio::test]
async fn in_prod_without_a_mail_server_second_factors_change_without_notices() {
    let app = spawn_app_with(|c| c.profile = Profile::Prod).await;

    let (_, token, _, _) = person_with_totp(&app).await;
    let res = app.send_with(Method::POST, "/v1/users/me/recovery-codes", &token, None).await;

    assert_eq!(res.status(), StatusCode::OK);
    // Nothing sends from the outbox in this profile: whatever were queued would stay there.
    assert_eq!(app.tessera.store().oldest_unsent_mail().await.unwrap(), None, "nothing was queued");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("tessera_mail_sent_total 0") && !metrics.contains("tessera_mail_queued_total{"), "{metrics}");
}

// The store: the notice is written in the transaction of the change.

async fn store() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&fresh_database_url(dir.path()).await);
    (tessera::startup::open_store(&config).await.unwrap(), dir)
}

async fn stored_user(store: &DynStore) -> User {
    let now = OffsetDateTime::now_utc();
    let user = User {
        id: UserId::new_time_ordered(),
        email: Email::parse(&unique_email()).unwrap(),
        email_verified: true,
        username: None,
        password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        roles: Roles::parse::<&str>(&[]).unwrap(),
        disabled: false,
        tokens_not_before: 0,
        created_at: now,
        updated_at: now,
        two_factor: false,
    };
    store.insert_user(&user).await.unwrap();
    user
}

fn notice(to: &Email, kind: MailKind) -> OutgoingMail {
    OutgoingMail {
        id: uuid::Uuid::new_v4(),
        kind,
        recipient: to.clone(),
        subject: format!("{} notice", kind.as_str()),
        text: "text".into(),
        html: "<p>html</p>".into(),
        link: None,
        created_at: OffsetDateTime::now_utc() - time::Duration::seconds(1),
    }
}

/// The ids of the mails due now (claiming them).
async fn queued(store: &DynStore) -> Vec<uuid::Uuid> {
    let now = OffsetDateTime::now_utc();
    let mut ids: Vec<uuid::Uuid> =
        store.claim_mails(now, now + time::Duration::minutes(2), 100).await.unwrap().iter().map(|m| m.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn storing_and_deleting_a_passkey_queue_their_notices_only_when_they_happen() {
    let (store, _dir) = store().await;
    let user = stored_user(&store).await;
    let key = passkey(user.id, "Laptop");
    let added = notice(&user.email, MailKind::FactorAdded);

    store.insert_passkey(&key, Some(&added)).await.unwrap();
    assert_eq!(queued(&store).await, vec![added.id]);

    let twice = store.insert_passkey(&key, Some(&notice(&user.email, MailKind::FactorAdded))).await;
    assert!(matches!(twice, Err(StoreError::Conflict(_))), "{twice:?}");
    assert!(!store.delete_passkey(user.id, "unknown", Some(&notice(&user.email, MailKind::FactorRemoved))).await.unwrap());
    assert_eq!(queued(&store).await, Vec::<uuid::Uuid>::new(), "a change that did not happen queues nothing");

    let removed = notice(&user.email, MailKind::FactorRemoved);
    assert!(store.delete_passkey(user.id, &key.id, Some(&removed)).await.unwrap());
    assert_eq!(queued(&store).await, vec![removed.id]);
    assert!(store.passkeys_of(user.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_factor_change_whose_notice_cannot_be_queued_is_undone() {
    let (store, _dir) = store().await;
    let user = stored_user(&store).await;
    let first = notice(&user.email, MailKind::FactorAdded);
    store.insert_passkey(&passkey(user.id, "First"), Some(&first)).await.unwrap();

    // A notice with the id of a queued mail cannot be written: the passkey goes with it.
    let result = store.insert_passkey(&passkey(user.id, "Second"), Some(&first)).await;

    assert!(result.is_err(), "{result:?}");
    let names: Vec<String> = store.passkeys_of(user.id).await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["First"]);
    let reset = store.delete_factors(user.id, Some(&first)).await;
    assert!(reset.is_err(), "{reset:?}");
    assert_eq!(store.passkeys_of(user.id).await.unwrap().len(), 1, "the reset was undone");
    assert!(store.user_by_id(user.id).await.unwrap().unwrap().two_factor);
}

#[tokio::test]
async fn totp_and_recovery_code_changes_queue_their_notices_with_them() {
    let (store, _dir) = store().await;
    let user = stored_user(&store).await;
    let now = OffsetDateTime::now_utc();
    let codes = [[7u8; 32], [8u8; 32]];
    store.put_pending_totp(user.id, b"secret", false, now).await.unwrap();

    let pending_dropped = notice(&user.email, MailKind::FactorRemoved);
    assert!(store.delete_totp(user.id, Some(&pending_dropped)).await.unwrap());
    assert!(queued(&store).await.is_empty(), "an unconfirmed secret is no second factor");

    store.put_pending_totp(user.id, b"secret", false, now).await.unwrap();
    let added = notice(&user.email, MailKind::FactorAdded);
    assert!(!store.confirm_totp(UserId::new_time_ordered(), 5, &codes, now, Some(&added)).await.unwrap());
    assert!(queued(&store).await.is_empty());
    assert!(store.confirm_totp(user.id, 5, &codes, now, Some(&added)).await.unwrap());
    assert_eq!(queued(&store).await, vec![added.id]);

    let used = notice(&user.email, MailKind::RecoveryCodeUsed);
    assert!(!store.use_recovery_code(user.id, &[9u8; 32], now, Some(&used)).await.unwrap());
    assert!(queued(&store).await.is_empty());
    assert!(store.use_recovery_code(user.id, &[7u8; 32], now, Some(&used)).await.unwrap());
    assert_eq!(queued(&store).await, vec![used.id]);

    let replaced = notice(&user.email, MailKind::RecoveryCodes);
    store.replace_recovery_codes(user.id, &codes, now, Some(&replaced)).await.unwrap();
    assert_eq!(queued(&store).await, vec![replaced.id]);

    let removed = notice(&user.email, MailKind::FactorRemoved);
    assert!(store.delete_totp(user.id, Some(&removed)).await.unwrap());
    assert_eq!(queued(&store).await, vec![removed.id]);
    let reset = notice(&user.email, MailKind::FactorsReset);
    assert!(!store.delete_factors(user.id, Some(&reset)).await.unwrap(), "removing TOTP took the recovery codes");
    assert!(queued(&store).await.is_empty(), "a reset with nothing to remove queues nothing");
}
