//! Response bodies: how domain values look on the wire.
//!
//! Handlers return these types, and their `ToSchema` derives put the same types into the
//! OpenAPI document (`openapi.rs`), so the document describes what is sent; schemathesis
//! (`.ci/schemathesis.sh`) checks the two against each other. The bodies of one area only
//! (clients, discovery, OAuth, operations) sit beside their handlers; the claims and the
//! revocation feed are `tessera_verify`'s types, which verifiers read them with.

use crate::domain::keys::{KeyStatus, SigningAlg};
use crate::domain::{Session, User};
use crate::service::{AuditPage, IssuedTokens, KeyInfo, RotatedKey};
use crate::store::AuditEvent;
use serde::Serialize;
use std::borrow::Cow;
use tessera_verify::Claims;
use time::OffsetDateTime;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A user as the owner or an admin sees it. Never a password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[schema(format = "uuid")]
    pub id: String,
    pub email: String,
    /// Whether the person opened a verification (or reset) link sent to `email`.
    pub email_verified: bool,
    #[schema(required)]
    pub username: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Whether signing in needs a second factor (TOTP or a passkey).
    pub two_factor: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            email: u.email.as_str().to_owned(),
            email_verified: u.email_verified,
            username: u.username.as_ref().map(|n| n.as_str().to_owned()),
            roles: u.roles.to_vec(),
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
            two_factor: u.two_factor,
        }
    }
}

/// A user as anyone else sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicUserView {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(required)]
    pub username: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for PublicUserView {
    fn from(u: &User) -> Self {
        PublicUserView { id: u.id.to_string(), username: u.username.as_ref().map(|n| n.as_str().to_owned()), created_at: u.created_at }
    }
}

/// The token fields of register, login and refresh answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// The account, on register and login (not on refresh).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub user: Option<UserView>,
    /// A JWT (RFC 9068).
    pub access_token: String,
    /// The new refresh token; the one presented stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    #[schema(value_type = String, pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

impl TokenView {
    /// The answer for `tokens`, with the user when the request was a login.
    pub fn new(user: Option<&User>, tokens: IssuedTokens) -> Self {
        TokenView {
            user: user.map(UserView::from),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.map(|t| t.expose().to_owned()),
            token_type: "Bearer",
            expires_in: tokens.expires_in,
        }
    }
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    #[schema(format = "uuid")]
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
    #[schema(required)]
    pub user_agent: Option<String>,
    #[schema(required)]
    pub ip: Option<String>,
    /// Whether the token of this request came from this session.
    pub current: bool,
}

impl SessionView {
    /// The view of `s`.
    pub fn new(s: &Session, current: bool) -> Self {
        SessionView {
            id: s.id.to_string(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            user_agent: s.user_agent.clone(),
            ip: s.ip.map(|ip| ip.to_string()),
            current,
        }
    }
}

/// `GET /v1/users/{id}`: the full view for the owner or an admin, the public view otherwise.
/// Exactly one matches, because the document closes response objects to their own fields.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserOrPublicUserView {
    Full(UserView),
    Public(PublicUserView),
}

/// `GET /v1/users`: a page of accounts in id order.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub users: Vec<UserView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    #[schema(required)]
    pub next_cursor: Option<String>,
}

impl From<crate::service::UserPage> for UserPage {
    fn from(page: crate::service::UserPage) -> Self {
        UserPage { users: page.users.iter().map(UserView::from).collect(), next_cursor: page.next_cursor }
    }
}

/// `GET /v1/users/me/sessions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

/// `/v1/auth/verify`: the token is valid and not revoked (otherwise the answer is 401).
#[derive(Debug, Serialize, ToSchema)]
pub struct Verification<'a> {
    /// Always `true`.
    pub active: bool,
    pub claims: &'a Claims,
}

/// `GET /v1/keys` (and `tessera keys list`).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// `POST /v1/keys/rotate` (and `tessera keys rotate`): the key that signs from now on
/// (`active`), or the key of a new algorithm published ahead of its use (`next`), which signs
/// from `active_from`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKeyView {
    pub kid: String,
    pub alg: SigningAlg,
    pub status: KeyStatus,
    /// Only while an algorithm change waits for its key to be published long enough.
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[schema(nullable = false)]
    pub active_from: Option<OffsetDateTime>,
}

impl From<RotatedKey> for RotatedKeyView {
    fn from(rotated: RotatedKey) -> Self {
        RotatedKeyView { kid: rotated.key.kid, alg: rotated.key.alg, status: rotated.key.status, active_from: rotated.active_from }
    }
}

/// A JWS algorithm Tessera signs with, by its JOSE name.
impl ToSchema for SigningAlg {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SigningAlg")
    }
}

impl PartialSchema for SigningAlg {
    fn schema() -> RefOr<Schema> {
        let all = [SigningAlg::ES256, SigningAlg::RS256, SigningAlg::Ed25519, SigningAlg::EdDSA, SigningAlg::HS256];
        let described = ObjectBuilder::new().description(Some("A JWS algorithm Tessera signs with."));
        described.schema_type(Type::String).enum_values(Some(all.map(SigningAlg::as_str))).into()
    }
}

/// Where a signing key stands in its life, in lower case.
impl ToSchema for KeyStatus {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("KeyStatus")
    }
}

impl PartialSchema for KeyStatus {
    fn schema() -> RefOr<Schema> {
        let all = [KeyStatus::Next, KeyStatus::Active, KeyStatus::Retiring];
        let described = ObjectBuilder::new().description(Some("Where a signing key stands in its life."));
        described.schema_type(Type::String).enum_values(Some(all.map(KeyStatus::as_str))).into()
    }
}

/// A public key (RFC 7517): EC P-256 (`crv`, `x`, `y`), RSA (`n`, `e`) or OKP Ed25519 (`crv`, `x`).
///
/// Documentation only: the JWKS is served as stored when each key was made, prebuilt once per
/// key ring (`service::keys`), not built per request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Jwk)]
pub struct JwkDoc {
    pub kty: String,
    pub kid: String,
    pub alg: SigningAlg,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub e: Option<String>,
}

/// `GET /.well-known/jwks.json`: empty with HS256. Documentation only, as [`JwkDoc`].
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Jwks)]
pub struct JwksDoc {
    pub keys: Vec<JwkDoc>,
}

/// One entry of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened, e.g. `login.failed`.
    pub kind: String,
    #[schema(required)]
    pub actor: Option<String>,
    #[schema(required)]
    pub subject: Option<String>,
    #[schema(required)]
    pub ip: Option<String>,
    #[schema(required)]
    pub detail: Option<String>,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        AuditEventView { at: e.at, kind: e.kind, actor: e.actor, subject: e.subject, ip: e.ip, detail: e.detail }
    }
}

/// `GET /v1/audit` (and `tessera audit`): newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditTrail {
    pub events: Vec<AuditEventView>,
    /// Pass as `cursor` for older events; `null` on the last page.
    #[schema(required)]
    pub next_cursor: Option<String>,
}

impl From<AuditPage> for AuditTrail {
    fn from(page: AuditPage) -> Self {
        AuditTrail { events: page.events.into_iter().map(AuditEventView::from).collect(), next_cursor: page.next_cursor }
    }
}
