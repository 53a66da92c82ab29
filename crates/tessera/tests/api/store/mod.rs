//! The store conformance suite: the `Store` contract, checked directly on this binary's
//! engine (SQLite in `api`, PostgreSQL in `api_postgres`).

use crate::helpers::{fresh_database_url, test_config};
use tessera::domain::keys::{KeyStatus, Kid, SigningAlg};
use tessera::domain::{
    Audiences, AuthorizationCode, BrowserSession, BrowserSessionId, Client, ClientId, ClientName, CodeChallenge, Consent, Email,
    PasswordHash, PlainToken, RedirectUris, Roles, Scopes, Session, SessionId, TokenHash, TokenKind, User, UserId, Username,
};
use tessera::store::flow::CodeSpending;
use tessera::store::{
    AuditEvent, BrowserSessionScope, CODE_KEPT_AFTER_EXPIRY, ClientPatch, Conflict, DynStore, KeyRotation, MAX_VERIFIER_LEEWAY,
    RefreshToken, Revocation, SessionScope, StoreError, StoredKey,
};
use time::{Duration, OffsetDateTime};

mod accounts;
mod browser;
mod codes;
mod housekeeping;
mod keys;
mod sessions;

async fn store() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&fresh_database_url(dir.path()).await);
    (tessera::startup::open_store(&config).await.unwrap(), dir)
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_millisecond(t.millisecond()).unwrap()
}

fn user(email: &str, username: Option<&str>) -> User {
    User {
        id: UserId::new_time_ordered(),
        email: Email::parse(email).unwrap(),
        email_verified: false,
        username: username.map(|u| Username::parse(u).unwrap()),
        password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        roles: Roles::parse(&["admin"]).unwrap(),
        disabled: false,
        tokens_not_before: 0,
        created_at: now(),
        updated_at: now(),
        two_factor: false,
    }
}

async fn session_for(store: &DynStore, user: &User) -> (Session, RefreshToken) {
    let at = now();
    let session = Session {
        id: SessionId::new_random(),
        user_id: user.id,
        created_at: at,
        last_used_at: at,
        expires_at: at + Duration::days(1),
        revoked_at: None,
        user_agent: Some("ua".into()),
        ip: Some("127.0.0.1".parse().unwrap()),
        client_id: None,
        scope: Scopes::default(),
        browser_session_id: None,
        offline: false,
        amr: vec!["pwd".to_owned()],
    };
    let token = refresh(session.id, at);
    assert!(store.insert_session(&session, &token, user).await.unwrap());
    (session, token)
}

fn refresh(session_id: SessionId, at: OffsetDateTime) -> RefreshToken {
    RefreshToken {
        hash: PlainToken::generate(TokenKind::Refresh).unwrap().hash(),
        session_id,
        created_at: at,
        expires_at: at + Duration::days(1),
        rotated_at: None,
    }
}

fn client(name: &str, created_at: OffsetDateTime) -> Client {
    Client {
        id: ClientId::generate().unwrap(),
        name: ClientName::parse(name).unwrap(),
        secret_hash: Some(PlainToken::generate(TokenKind::ClientSecret).unwrap().hash()),
        scopes: Scopes::parse(&["read", "write"]).unwrap(),
        roles: Roles::parse(&["service"]).unwrap(),
        audiences: Audiences::parse(&["https://api.example", "billing"]).unwrap(),
        redirect_uris: RedirectUris::parse(&["https://app.example/cb", "http://127.0.0.1/cb"], false).unwrap(),
        post_logout_redirect_uris: RedirectUris::parse(&["https://app.example/bye"], false).unwrap(),
        public: false,
        first_party: true,
        created_at,
        updated_at: created_at,
    }
}

fn stored_key(kid: &str, alg: SigningAlg, status: KeyStatus, created_at: OffsetDateTime) -> StoredKey {
    StoredKey {
        kid: Kid::new(kid),
        alg,
        status,
        private_key: Some(kid.as_bytes().to_vec()),
        encrypted: false,
        public_jwk: Some(format!(r#"{{"kid":"{kid}"}}"#)),
        created_at,
        retired_at: None,
    }
}

/// `(kid, status, retired_at)` of every stored key, by kid.
async fn key_states(store: &DynStore) -> Vec<(String, KeyStatus, Option<OffsetDateTime>)> {
    let mut keys: Vec<_> = store.keys().await.unwrap().into_iter().map(|k| (k.kid.to_string(), k.status, k.retired_at)).collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    keys
}

/// Every feed entry still stored after `cursor`, whatever its `exp`.
async fn stored_feed(store: &DynStore, cursor: i64) -> Vec<Revocation> {
    let long_ago = OffsetDateTime::UNIX_EPOCH + Duration::seconds(MAX_VERIFIER_LEEWAY);
    store.revocations_after(cursor, long_ago, 1000).await.unwrap().into_iter().map(|(_, e)| e).collect()
}

fn event(kind: &str, at: OffsetDateTime) -> AuditEvent {
    AuditEvent {
        at,
        kind: kind.into(),
        actor: Some("usr_1".into()),
        subject: None,
        ip: Some("192.0.2.7".into()),
        detail: Some(format!("detail of {kind}")),
    }
}

fn browser_session(user: &User, at: OffsetDateTime) -> BrowserSession {
    BrowserSession {
        id: BrowserSessionId::new_random(),
        secret_hash: PlainToken::generate(TokenKind::BrowserSession).unwrap().hash(),
        user_id: user.id,
        auth_time: at,
        amr: vec!["pwd".into()],
        created_at: at,
        last_seen_at: at,
        expires_at: at + Duration::days(1),
        ip: Some("192.0.2.9".parse().unwrap()),
        user_agent: Some("Firefox".into()),
    }
}

/// A token session issued to `client` through `browser`, offline or not.
async fn app_session(
    store: &DynStore,
    user: &User,
    client: &ClientId,
    browser: Option<BrowserSessionId>,
    offline: bool,
) -> Option<Session> {
    let at = now();
    let session = Session {
        id: SessionId::new_random(),
        user_id: user.id,
        created_at: at,
        last_used_at: at,
        expires_at: at + Duration::days(1),
        revoked_at: None,
        user_agent: None,
        ip: None,
        client_id: Some(client.clone()),
        scope: Scopes::parse(&["openid", "read"]).unwrap(),
        browser_session_id: browser,
        offline,
        amr: vec!["pwd".to_owned()],
    };
    store.insert_session(&session, &refresh(session.id, at), user).await.unwrap().then_some(session)
}

/// What a code was issued for, with the hash of a code (the store never sees a code).
fn code(client: &ClientId, user: &User, browser: BrowserSessionId, at: OffsetDateTime) -> (TokenHash, AuthorizationCode) {
    let hash = PlainToken::generate(TokenKind::EmailLink).unwrap().hash();
    let code = AuthorizationCode {
        client_id: client.clone(),
        user_id: user.id,
        browser_session_id: browser,
        redirect_uri: Some("https://app.example/cb".into()),
        code_challenge: CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        scope: Scopes::parse(&["openid", "email"]).unwrap(),
        auth_time: at - Duration::minutes(5),
        amr: vec!["pwd".into()],
        created_at: at,
        expires_at: at + Duration::seconds(60),
    };
    (hash, code)
}

/// The token session an application's code would start, with its first refresh token.
fn code_session(issued: &AuthorizationCode, id: SessionId, at: OffsetDateTime) -> (Session, RefreshToken) {
    let session = Session {
        id,
        user_id: issued.user_id,
        created_at: at,
        last_used_at: at,
        expires_at: at + Duration::days(1),
        revoked_at: None,
        user_agent: None,
        ip: Some("192.0.2.9".parse().unwrap()),
        client_id: Some(issued.client_id.clone()),
        scope: issued.scope.clone(),
        browser_session_id: Some(issued.browser_session_id),
        offline: false,
        amr: issued.amr.clone(),
    };
    let token = refresh(id, at);
    (session, token)
}
