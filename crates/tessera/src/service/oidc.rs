//! OpenID Connect: the authorization endpoint's rules (RFC 6749 §4.1 with PKCE, OAuth 2.1 and
//! RFC 9700), consent, the code exchange, id_tokens, userinfo and RP-initiated logout.
//!
//! An authorization request is checked in two steps. [`Tessera::authorization_request`]
//! validates it: a bad client or redirect URI can only be shown to the person (never sent to
//! a URI nobody registered), every other fault goes back to the client as a redirect error.
//! [`Tessera::authorize`] then decides from the browser session and the time what happens:
//! sign in, consent, or a code.
//!
//! Sign-in that the request asked for (`prompt=login`, `max_age`) must not loop: the request
//! the sign-in page returns to carries `login_after`, the moment (milliseconds) the request
//! sent the person to sign in, and a browser session that began at or after it satisfies
//! the request's demand for a new sign-in. The marker is Tessera's, not the client's: it is
//! `MILLIS.TAG`, TAG an HMAC-SHA256 of the moment, the client id and the PKCE challenge under
//! a key every instance shares (`service/shared_keys.rs`). A marker that
//! does not check out counts as none, so nobody can write `login_after=0` into a request to
//! skip the new sign-in that `prompt=login` or `max_age` demands.

use super::Tessera;
use super::error::{Error, Result};
use super::sessions::{ClientMeta, IssuedTokens};
use super::tokens::Grant;
use crate::domain::keys::SigningAlg;
use crate::domain::oidc::{EMAIL, OFFLINE_ACCESS, OPENID, PROFILE, is_oidc_scope};
use crate::domain::{
    AuthorizationCode, BrowserSession, BrowserSessionId, Client, ClientId, CodeChallenge, Consent, PlainToken, Scopes, Session, SessionId,
    TokenHash, User, UserId,
};
use crate::store::SessionScope;
use crate::store::flow::CodeSpending;
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tessera_verify::Claims;
use time::Duration;

/// How long an authorization code works.
pub const CODE_TTL: Duration = Duration::seconds(60);

/// The HKDF purpose of the key of `login_after` markers, under the shared root
/// (`service/shared_keys.rs`).
pub(crate) const MARKER_PURPOSE: &str = "tessera login_after marker v1";

/// The key that signs `login_after` markers (see the module docs).
pub(crate) struct MarkerKey(hmac::Key);

impl std::fmt::Debug for MarkerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MarkerKey([redacted])")
    }
}

impl MarkerKey {
    /// The key for `bytes` (derived for [`MARKER_PURPOSE`] from the shared root).
    pub(crate) fn new(bytes: &[u8; 32]) -> MarkerKey {
        MarkerKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    fn message(client: &ClientId, challenge: &CodeChallenge, millis: i128) -> String {
        format!("{}\n{}\n{millis}", client.as_str(), challenge.as_str())
    }

    /// The marker for a request of `client` with `challenge` sent to sign in at `millis`.
    fn sign(&self, client: &ClientId, challenge: &CodeChallenge, millis: i128) -> String {
        let tag = hmac::sign(&self.0, Self::message(client, challenge, millis).as_bytes());
        format!("{millis}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The moment a marker names, when it is one this key made for this client and challenge.
    fn open(&self, client: &ClientId, challenge: &CodeChallenge, marker: &str) -> Option<i128> {
        let (millis, tag) = marker.split_once('.')?;
        let millis: i128 = millis.parse().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.0, Self::message(client, challenge, millis).as_bytes(), &tag).ok()?;
        Some(millis)
    }
}

/// The parameters of an authorization request as sent (query or form), each at most once.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// Tessera's own signed marker (see the module docs): the request sent the person to sign
    /// in at this moment, in milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_after: Option<String>,
}

impl AuthorizeParams {
    /// The request as a query string, to come back to it (after sign-in or consent).
    pub fn to_query(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

/// What `prompt` asked for (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Show no page at all.
    pub none: bool,
    /// Sign in again.
    pub login: bool,
    /// Ask for consent again.
    pub consent: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The application.
    pub client: Client,
    /// Where the answer goes.
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (the token request must then repeat it).
    redirect_uri_named: bool,
    /// The scopes asked for.
    pub scope: Scopes,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: CodeChallenge,
    prompt: Prompt,
    max_age: Option<i64>,
    /// The identifier to fill in on the sign-in page.
    pub login_hint: Option<String>,
    /// The moment of a valid `login_after` marker, in milliseconds.
    login_after: Option<i128>,
    /// The parameters as sent, to come back to the request.
    pub params: AuthorizeParams,
}

/// Why an authorization request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRefusal {
    /// Shown to the person as an error page (400): the client or the redirect URI is not
    /// trusted, so nothing is sent anywhere.
    Page {
        /// The stable code.
        code: &'static str,
        /// A sentence for people.
        message: String,
    },
    /// Sent back to the client's redirect URI (RFC 6749 §4.1.2.1).
    Redirect(String),
}

/// What answers a valid authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// The person must sign in, then come back to `return_to` (a path on this server).
    SignIn {
        /// Where the sign-in page returns to.
        return_to: String,
        /// Fills the identifier.
        login_hint: Option<String>,
    },
    /// The person must allow the application first: the consent page for this request.
    Consent,
    /// A redirect to the client: a code, or an error.
    Redirect(String),
}

/// What the consent page shows.
#[derive(Debug, Clone)]
pub struct ConsentPrompt {
    /// The application's name.
    pub client_name: String,
    /// The scopes, in words.
    pub scopes: Vec<String>,
}

/// An application a person has allowed (a consent), as the account page lists it.
#[derive(Debug, Clone)]
pub struct AllowedApp {
    /// The application.
    pub client_id: ClientId,
    /// Its name (its id when it no longer exists).
    pub client_name: String,
    /// What it may do, in words.
    pub scopes: Vec<String>,
    /// When the person (last) allowed it.
    pub granted_at: time::OffsetDateTime,
}

/// A refused token request at the token endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// The code or refresh token is unknown, used, expired, or not this client's; or the
    /// verifier or redirect URI does not match.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// The client may not use this grant.
    #[error("{0}")]
    UnauthorizedClient(&'static str),
}

/// What userinfo returns (OpenID Connect Core §5.3).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    /// The user id.
    pub sub: String,
    /// With scope `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// With scope `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// With scope `profile`, when the person has a username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// With scope `profile`: NumericDate of the last change to the profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    // `sub` comes with `info`.
    iss: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    sid: String,
    amr: &'a [String],
    at_hash: String,
    /// `sub` and the claims the scopes allow (`sub` only here: a JSON object with a member
    /// twice is one that strict parsers refuse).
    #[serde(flatten)]
    info: UserInfo,
}

/// The claims of an id_token presented back to us (`id_token_hint`).
#[derive(Debug, Deserialize)]
struct HintClaims {
    iss: String,
    sub: String,
    aud: serde_json::Value,
    sid: Option<String>,
}

/// What an `id_token_hint` named, once its signature checked out.
#[derive(Debug, Clone)]
pub struct LogoutHint {
    /// The person.
    pub sub: String,
    /// The application it was issued to.
    pub client_id: String,
    /// The browser session.
    pub sid: Option<String>,
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the hash of the access token,
/// base64url. The hash is the one of the id_token's `alg`: SHA-256 for ES256, RS256 and HS256, SHA-512
/// for Ed25519 (OpenID Connect Core 1.0 errata 2 §3.1.3.6; what relying-party libraries check).
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    let hash = match alg {
        SigningAlg::ES256 | SigningAlg::RS256 | SigningAlg::HS256 => &digest::SHA256,
        SigningAlg::Ed25519 | SigningAlg::EdDSA => &digest::SHA512,
    };
    let digest = digest::digest(hash, access_token.as_bytes());
    let half = digest.as_ref().len() / 2;
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..half])
}

/// Adds query parameters to a redirect URI that may already have a query.
fn with_query(base: &str, pairs: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            {
                let mut query = url.query_pairs_mut();
                for (k, v) in pairs {
                    if let Some(v) = v {
                        query.append_pair(k, v);
                    }
                }
            }
            url.to_string()
        }
        // A registered redirect URI always parses; keep the request safe anyway.
        Err(_) => base.to_owned(),
    }
}

fn page(code: &'static str, message: impl Into<String>) -> AuthorizeRefusal {
    AuthorizeRefusal::Page { code, message: message.into() }
}

impl Tessera {
    /// Whether OpenID Connect is offered: not with a shared secret (`HS256`), where an
    /// application could not check an id_token without being able to forge one.
    pub fn oidc_enabled(&self) -> bool {
        self.keys.get().map(|k| k.signer.alg() != SigningAlg::HS256).unwrap_or(false)
    }

    /// Validates an authorization request (see the module docs).
    pub async fn authorization_request(&self, params: AuthorizeParams) -> Result<Result<AuthorizationRequest, AuthorizeRefusal>> {
        if !self.oidc_enabled() {
            return Ok(Err(page(
                "oidc_unavailable",
                "Sign-in for applications is not available: this server signs tokens with a shared secret (HS256), \
                 so applications could not check who signed in. The operator must choose ES256, RS256 or EdDSA.",
            )));
        }
        // From the cache of recently read clients, as at the token endpoint: a change on this
        // instance evicts it, other instances see it within a second.
        let client = match params.client_id.as_deref() {
            Some(id) => self.recent_client(id).await?,
            None => return Ok(Err(page("invalid_request", "The application did not say who it is (client_id is missing)."))),
        };
        let Some(client) = client.filter(|c| !c.redirect_uris.is_empty()) else {
            return Ok(Err(page("invalid_client", "The application that sent you here is not known to this server.")));
        };
        let redirect_uri = match params.redirect_uri.as_deref() {
            Some(presented) => match client.redirect_uris.find(presented) {
                Some(_) => presented.to_owned(),
                None => {
                    return Ok(Err(page(
                        "invalid_redirect_uri",
                        "The application asked to send you to an address it has not registered, so nothing was sent.",
                    )));
                }
            },
            None => match client.redirect_uris.as_slice() {
                [only] => only.as_str().to_owned(),
                _ => {
                    return Ok(Err(page(
                        "invalid_request",
                        "The application did not say where to send you back (redirect_uri is missing).",
                    )));
                }
            },
        };
        let issuer = self.settings.issuer.clone();
        let state = params.state.clone();
        let fail = |error: &str, description: &str| {
            AuthorizeRefusal::Redirect(with_query(
                &redirect_uri,
                &[("error", Some(error)), ("error_description", Some(description)), ("state", state.as_deref()), ("iss", Some(&issuer))],
            ))
        };
        match params.response_type.as_deref() {
            Some("code") => {}
            None => return Ok(Err(fail("invalid_request", "response_type is required"))),
            Some(_) => return Ok(Err(fail("unsupported_response_type", "only response_type=code is supported"))),
        }
        match params.code_challenge_method.as_deref() {
            Some("S256") => {}
            None => return Ok(Err(fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method=S256"))),
            Some(_) => return Ok(Err(fail("invalid_request", "code_challenge_method must be S256"))),
        }
        let Some(code_challenge) = params.code_challenge.as_deref().and_then(|c| CodeChallenge::parse(c).ok()) else {
            return Ok(Err(fail("invalid_request", "code_challenge must be BASE64URL(SHA256(code_verifier)), 43 characters")));
        };
        let Ok(scope) = Scopes::parse_space_separated(params.scope.as_deref().unwrap_or_default()) else {
            return Ok(Err(fail("invalid_scope", "the scope is malformed")));
        };
        if !scope.to_vec().iter().all(|s| is_oidc_scope(s) || client.scopes.to_vec().contains(s)) {
            return Ok(Err(fail("invalid_scope", "a requested scope is not available to this application")));
        }
        let mut prompt = Prompt::default();
        for value in params.prompt.as_deref().unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                "select_account" => {}
                _ => return Ok(Err(fail("invalid_request", "prompt takes none, login, consent or select_account"))),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Ok(Err(fail("invalid_request", "prompt=none cannot be combined with another value")));
        }
        let max_age = match params.max_age.as_deref() {
            None => None,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => return Ok(Err(fail("invalid_request", "max_age must be a number of seconds"))),
            },
        };
        let login_after = params.login_after.as_deref().and_then(|m| self.markers.open(&client.id, &code_challenge, m));
        Ok(Ok(AuthorizationRequest {
            redirect_uri_named: params.redirect_uri.is_some(),
            redirect_uri,
            scope,
            state: params.state.clone(),
            nonce: params.nonce.clone(),
            code_challenge,
            prompt,
            max_age,
            login_hint: params.login_hint.clone(),
            login_after,
            client,
            params,
        }))
    }

    /// An error redirect for `request` (RFC 6749 §4.1.2.1, with `iss` of RFC 9207).
    pub fn authorize_error(&self, request: &AuthorizationRequest, error: &str, description: &str) -> String {
        with_query(
            &request.redirect_uri,
            &[
                ("error", Some(error)),
                ("error_description", Some(description)),
                ("state", request.state.as_deref()),
                ("iss", Some(&self.settings.issuer)),
            ],
        )
    }

    /// Decides what answers a valid request, given the browser's session cookie (if any).
    ///
    /// One read finds the cookie's live session, whether its account may sign in and the
    /// person's consent to the client (see `store/flow.rs`); the session is touched as
    /// [`Tessera::browser_session_from_cookie`] does (at most once per minute).
    pub async fn authorize(&self, request: &AuthorizationRequest, cookie: Option<&str>) -> Result<AuthorizeOutcome> {
        let now = self.now();
        let sign_in = |why: &str| {
            if request.prompt.none {
                return AuthorizeOutcome::Redirect(self.authorize_error(request, "login_required", why));
            }
            let mut params = request.params.clone();
            let millis = now.unix_timestamp_nanos() / 1_000_000;
            params.login_after = Some(self.markers.sign(&request.client.id, &request.code_challenge, millis));
            AuthorizeOutcome::SignIn {
                return_to: format!("/oauth2/authorize?{}", params.to_query()),
                login_hint: request.login_hint.clone(),
            }
        };
        let found = match cookie.filter(|secret| !secret.is_empty()) {
            Some(secret) => self.store.browser_for_client(&PlainToken::from_presented(secret).hash(), now, &request.client.id).await?,
            None => None,
        };
        let Some(mut found) = found.filter(|f| f.session.is_live(now)) else { return Ok(sign_in("the person is not signed in")) };
        self.touch_browser_session(&mut found.session, now).await?;
        let session = &found.session;
        let auth_ms = session.auth_time.unix_timestamp_nanos() / 1_000_000;
        let signed_in_since = request.login_after.is_some_and(|after| after <= auth_ms);
        let too_old = request.max_age.is_some_and(|max| (now - session.auth_time).whole_seconds() > max);
        if (request.prompt.login || too_old) && !signed_in_since {
            return Ok(sign_in("a new sign-in is required"));
        }
        if !found.account_enabled {
            return Ok(sign_in("the account cannot sign in"));
        }
        if needs_consent(request, found.consent.as_ref()) {
            if request.prompt.none {
                return Ok(AuthorizeOutcome::Redirect(self.authorize_error(
                    request,
                    "consent_required",
                    "the person has not allowed this application",
                )));
            }
            return Ok(AuthorizeOutcome::Consent);
        }
        let code = self.issue_code(request, session)?;
        Ok(AuthorizeOutcome::Redirect(with_query(
            &request.redirect_uri,
            &[("code", Some(code.expose())), ("state", request.state.as_deref()), ("iss", Some(&self.settings.issuer))],
        )))
    }

    /// What the consent page shows for `request`.
    pub fn consent_prompt(&self, request: &AuthorizationRequest) -> ConsentPrompt {
        let scopes = scopes_in_words(&request.scope);
        ConsentPrompt { client_name: request.client.name.as_str().to_owned(), scopes }
    }

    /// Records that the person of `session` allows `request`'s client its scopes (added to
    /// what they allowed before).
    pub async fn grant_consent(&self, request: &AuthorizationRequest, session: &BrowserSession, meta: &ClientMeta) -> Result<()> {
        let before = self.store.consent(session.user_id, &request.client.id).await?;
        let mut scopes = request.scope.to_vec();
        if let Some(before) = before {
            scopes.extend(before.scopes.to_vec());
        }
        let scopes = Scopes::parse(&scopes).map_err(Error::internal)?;
        let consent =
            Consent { user_id: session.user_id, client_id: request.client.id.clone(), scopes: scopes.clone(), granted_at: self.now() };
        self.store.upsert_consent(&consent).await?;
        let user = session.user_id.to_string();
        self.audit(meta, "consent.granted", Some(&user), Some(request.client.id.as_str()), Some(format!("scopes {scopes}"))).await;
        Ok(())
    }

    /// The applications `user` has allowed (their consents), newest first.
    pub async fn allowed_apps(&self, user: UserId) -> Result<Vec<AllowedApp>> {
        let consents = self.store.consents_of(user).await?;
        let mut apps = Vec::with_capacity(consents.len());
        for consent in consents {
            let name = self.store.client(&consent.client_id).await?.map(|c| c.name.as_str().to_owned());
            apps.push(AllowedApp {
                client_name: name.unwrap_or_else(|| consent.client_id.as_str().to_owned()),
                scopes: scopes_in_words(&consent.scopes),
                client_id: consent.client_id,
                granted_at: consent.granted_at,
            });
        }
        Ok(apps)
    }

    /// Withdraws what `user` allowed `client` (from the account page): the consent is
    /// deleted, so the application must ask again, and every token session the application
    /// holds for the person ends at once, offline ones included (it no longer has their
    /// permission to act for them). Records `consent.withdrawn`. `NotFound` when there was
    /// no such consent. Returns how many token sessions ended.
    pub async fn withdraw_consent(&self, user: UserId, client: &str, meta: &ClientMeta) -> Result<usize> {
        let Some(client) = ClientId::parse(client) else { return Err(Error::NotFound("consent")) };
        if !self.store.delete_consent(user, &client).await? {
            return Err(Error::NotFound("consent"));
        }
        let held: Vec<SessionId> = self
            .store
            .live_sessions(user, self.now())
            .await?
            .into_iter()
            .filter(|s| s.client_id.as_ref() == Some(&client))
            .map(|s| s.id)
            .collect();
        let mut ended = 0;
        for id in held {
            ended += self.end_sessions(SessionScope::One(user, id)).await?.len();
        }
        let who = user.to_string();
        self.audit(meta, "consent.withdrawn", Some(&who), Some(client.as_str()), Some(format!("{ended} token sessions ended"))).await;
        Ok(ended)
    }

    /// A code for `request`, sealed with what it is issued for (`service/codes.rs`): nothing
    /// is written until it is exchanged.
    fn issue_code(&self, request: &AuthorizationRequest, session: &BrowserSession) -> Result<PlainToken> {
        let now = self.now();
        let code = AuthorizationCode {
            client_id: request.client.id.clone(),
            user_id: session.user_id,
            browser_session_id: session.id,
            redirect_uri: request.redirect_uri_named.then(|| request.redirect_uri.clone()),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            scope: request.scope.clone(),
            auth_time: session.auth_time,
            amr: session.amr.clone(),
            created_at: now,
            expires_at: now + CODE_TTL,
        };
        self.codes.seal(&code).map_err(Error::internal)
    }

    /// The `authorization_code` grant for an authenticated `client` (RFC 6749 §4.1.3, RFC
    /// 7636 §4.6). A code presented a second time fails and ends the token session it issued.
    pub async fn exchange_code(
        &self,
        client: &Client,
        code: &str,
        verifier: &str,
        redirect_uri: Option<&str>,
        meta: &ClientMeta,
    ) -> Result<Result<(IssuedTokens, Option<String>), GrantError>> {
        if !client.may_use(crate::domain::client::grant::AUTHORIZATION_CODE) {
            return Ok(Err(GrantError::UnauthorizedClient("this client has no redirect URIs")));
        }
        let hash = PlainToken::from_presented(code).hash();
        let Some(code) = self.codes.open(code) else {
            return Ok(Err(GrantError::InvalidGrant("the authorization code is unknown or expired")));
        };
        let now = self.now();
        if code.expires_at <= now {
            // Spent all the same: a late replay of a code that was exchanged must still be one.
            return self.refuse_code(&hash, &code, client, meta, "the authorization code is unknown or expired").await;
        }
        let Some(user) = self.store.user_by_id(code.user_id).await? else {
            return self.refuse_code(&hash, &code, client, meta, "the account can no longer sign in").await;
        };
        if let Err(why) = code_binding(client, &code, &user, verifier, redirect_uri) {
            // A code works once, also for a request it does not match.
            return self.refuse_code(&hash, &code, client, meta, why).await;
        }
        let session = Session {
            client_id: Some(client.id.clone()),
            scope: code.scope.clone(),
            browser_session_id: Some(code.browser_session_id),
            offline: code.scope.to_vec().iter().any(|s| s == OFFLINE_ACCESS),
            amr: code.amr.clone(),
            ..super::sessions::new_session(&user, meta, now)
        };
        let (plain, record) = self.new_refresh_token(&session, now)?;
        let session = Session { expires_at: record.expires_at, ..session };
        if !self.store.exchange_code(&hash, &code, &session, &record, &user, !client.first_party).await? {
            // Spent before or by a racing request (a replay), or the account changed, the
            // person signed out or withdrew their consent since the code was issued.
            return self.refuse_code(&hash, &code, client, meta, "the sign-in behind the code has ended").await;
        }
        let tokens = self.issue_for_app("authorization_code", &user, &session, Some(plain))?;
        let id_token = if code.scope.to_vec().iter().any(|s| s == OPENID) {
            Some(self.id_token(client, &user, &code, &tokens.access_token)?)
        } else {
            None
        };
        Ok(Ok((tokens, id_token)))
    }

    /// Refuses a code that cannot be exchanged (`why`), spending it if it was not: when it
    /// had been spent already, this is a replay, and the token session it started ends.
    async fn refuse_code<T>(
        &self,
        hash: &TokenHash,
        code: &AuthorizationCode,
        client: &Client,
        meta: &ClientMeta,
        why: &'static str,
    ) -> Result<Result<T, GrantError>> {
        match self.store.spend_code(hash, code, self.now()).await? {
            CodeSpending::Spent => Ok(Err(GrantError::InvalidGrant(why))),
            CodeSpending::Replayed { client_id, user_id, token_session } => {
                tracing::warn!(client = %client_id, "authorization code replayed; the tokens it issued are revoked");
                if let Some(sid) = token_session {
                    self.end_sessions(SessionScope::One(user_id, sid)).await?;
                }
                let detail = token_session.map(|sid| format!("session {sid} ended"));
                self.audit(meta, "code.replayed", Some(client.id.as_str()), Some(&user_id.to_string()), detail).await;
                Ok(Err(GrantError::InvalidGrant("the authorization code was already used")))
            }
        }
    }

    /// An access token of an application's token session.
    pub(crate) fn issue_for_app(
        &self,
        grant: &'static str,
        user: &User,
        session: &Session,
        refresh: Option<PlainToken>,
    ) -> Result<IssuedTokens> {
        let client_id = session.client_id.as_ref().map_or(ClientId::FIRST_PARTY, ClientId::as_str);
        let (access_token, claims) = self.issue_access_token(Grant {
            grant,
            sub: user.id.to_string(),
            client_id: client_id.to_owned(),
            scope: session.scope.to_string(),
            roles: user.roles.to_vec(),
            sid: Some(session.id.to_string()),
            fresh: None,
            amr: Some(session.amr.clone()).filter(|amr| !amr.is_empty()),
        })?;
        Ok(IssuedTokens { access_token, expires_in: claims.exp - claims.iat, claims, refresh_token: refresh })
    }

    fn id_token(&self, client: &Client, user: &User, code: &AuthorizationCode, access_token: &str) -> Result<String> {
        let iat = self.now().unix_timestamp();
        let keys = self.keys.get()?;
        let claims = IdTokenClaims {
            iss: &self.settings.issuer,
            aud: client.id.as_str(),
            azp: client.id.as_str(),
            exp: iat + self.settings.access_ttl,
            iat,
            auth_time: code.auth_time.unix_timestamp(),
            nonce: code.nonce.as_deref(),
            sid: code.browser_session_id.to_string(),
            amr: &code.amr,
            at_hash: at_hash(access_token, keys.signer.alg()),
            info: user_info(user, &code.scope),
        };
        keys.signer.sign_id_token(&claims).map_err(Error::internal)
    }

    /// Userinfo for an access token granted `openid` (OpenID Connect Core §5.3).
    pub async fn userinfo(&self, claims: &Claims) -> Result<UserInfo> {
        let scope = Scopes::parse_space_separated(&claims.scope).unwrap_or_default();
        if !scope.to_vec().iter().any(|s| s == OPENID) {
            return Err(Error::InsufficientScope);
        }
        let id = self.person(claims)?;
        let user = self.store.user_by_id(id).await?.ok_or(Error::Bearer(super::TokenError::Revoked))?;
        Ok(user_info(&user, &scope))
    }

    /// Checks an `id_token_hint` (RP-Initiated Logout 1.0 §2): signed by one of our keys and
    /// issued by us; an expired one is still a fine hint.
    pub fn logout_hint(&self, id_token: &str) -> Option<LogoutHint> {
        let keys = self.keys.get().ok()?;
        let claims: HintClaims = keys.verifiers.verify_signature(id_token, "JWT").ok()?;
        if claims.iss != self.settings.issuer {
            return None;
        }
        let client_id = match claims.aud {
            serde_json::Value::String(s) => s,
            serde_json::Value::Array(list) => list.first()?.as_str()?.to_owned(),
            _ => return None,
        };
        Some(LogoutHint { sub: claims.sub, client_id, sid: claims.sid })
    }

    /// Where RP-initiated logout may send the browser: `uri` when it is registered for the
    /// client, with `state`.
    pub async fn post_logout_redirect(&self, client_id: Option<&str>, uri: Option<&str>, state: Option<&str>) -> Result<Option<String>> {
        let (Some(client_id), Some(uri)) = (client_id.and_then(ClientId::parse), uri) else { return Ok(None) };
        let Some(client) = self.store.client(&client_id).await? else { return Ok(None) };
        if !client.post_logout_redirect_uris.as_slice().iter().any(|u| u.as_str() == uri) {
            return Ok(None);
        }
        Ok(Some(with_query(uri, &[("state", state)])))
    }

    /// A browser session by its public id (`sid` of id_tokens).
    pub async fn browser_session_by_id(&self, id: &str) -> Result<Option<BrowserSession>> {
        let Ok(id) = id.parse::<BrowserSessionId>() else { return Ok(None) };
        Ok(self.store.browser_session(id, self.now()).await?)
    }
}

/// Checks an unspent code and its person against the token request (client, redirect URI,
/// PKCE verifier); the person must still be able to sign in.
fn code_binding(
    client: &Client,
    code: &AuthorizationCode,
    owner: &User,
    verifier: &str,
    redirect_uri: Option<&str>,
) -> std::result::Result<(), &'static str> {
    if code.client_id != client.id {
        return Err("the authorization code was issued to another client");
    }
    if code.redirect_uri.as_deref() != redirect_uri && code.redirect_uri.is_some() {
        return Err("redirect_uri does not match the authorization request");
    }
    if !code.code_challenge.verify(verifier).unwrap_or(false) {
        return Err("code_verifier does not match the code_challenge");
    }
    if owner.disabled {
        return Err("the account can no longer sign in");
    }
    Ok(())
}

/// Whether `request` must show the consent page, given what the person allowed the client.
fn needs_consent(request: &AuthorizationRequest, given: Option<&Consent>) -> bool {
    if request.client.first_party {
        return false;
    }
    request.prompt.consent || !given.is_some_and(|c| request.scope.is_subset(&c.scopes))
}

/// What each scope lets an application do, in words (the consent page, the account page).
fn scopes_in_words(scope: &Scopes) -> Vec<String> {
    scope
        .to_vec()
        .iter()
        .map(|s| match s.as_str() {
            OPENID => "Know who you are (your account id)".to_owned(),
            PROFILE => "See your username".to_owned(),
            EMAIL => "See your email address".to_owned(),
            OFFLINE_ACCESS => "Stay signed in after you sign out here".to_owned(),
            other => format!("Use the permission “{other}”"),
        })
        .collect()
}

fn user_info(user: &User, scope: &Scopes) -> UserInfo {
    let has = |s: &str| scope.to_vec().iter().any(|x| x == s);
    let (email, profile) = (has(EMAIL), has(PROFILE));
    UserInfo {
        sub: user.id.to_string(),
        email: email.then(|| user.email.as_str().to_owned()),
        email_verified: email.then_some(user.email_verified),
        preferred_username: if profile { user.username.as_ref().map(|u| u.as_str().to_owned()) } else { None },
        updated_at: profile.then(|| user.updated_at.unix_timestamp()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_sha256_base64url() {
        // OpenID Connect Core §A.3: the example access token and its at_hash (RS256, SHA-256).
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", SigningAlg::RS256), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", SigningAlg::ES256), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn at_hash_of_an_ed25519_id_token_is_the_left_half_of_the_sha512() {
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let full = digest::digest(&digest::SHA512, token.as_bytes());
        for alg in [SigningAlg::Ed25519, SigningAlg::EdDSA] {
            assert_eq!(at_hash(token, alg), URL_SAFE_NO_PAD.encode(&full.as_ref()[..32]));
            assert_eq!(at_hash(token, alg).len(), 43);
        }
    }

    #[test]
    fn an_id_token_names_its_subject_once() {
        let info = UserInfo { sub: "u1".into(), email: None, email_verified: None, preferred_username: None, updated_at: None };
        let claims = IdTokenClaims {
            iss: "https://id",
            aud: "c",
            azp: "c",
            exp: 2,
            iat: 1,
            auth_time: 1,
            nonce: None,
            sid: "s".into(),
            amr: &[],
            at_hash: "h".into(),
            info,
        };
        let json = serde_json::to_string(&claims).unwrap();
        assert_eq!(json.matches("\"sub\"").count(), 1, "{json}");
    }

    #[test]
    fn redirect_parameters_are_added_to_an_existing_query() {
        let url = with_query("https://app.example/cb?x=1", &[("code", Some("a b")), ("state", None), ("iss", Some("https://id"))]);
        assert_eq!(url, "https://app.example/cb?x=1&code=a+b&iss=https%3A%2F%2Fid");
    }
}
