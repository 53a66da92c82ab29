//! Response bodies: how domain values look on the wire.
//!
//! The `ToSchema` derives put these types into the OpenAPI document (`openapi.rs`). Some
//! answers are built with `json!` in their handlers; the `*Doc` types below describe those
//! shapes for the document only, and schemathesis (`.ci/schemathesis.sh`) checks them against
//! what the server sends.

use crate::domain::{Session, User};
use crate::service::IssuedTokens;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A user as the owner or an admin sees it. Never a password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    #[schema(format = "uuid")]
    pub id: String,
    pub email: String,
    #[schema(required)]
    pub username: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            email: u.email.as_str().to_owned(),
            username: u.username.as_ref().map(|n| n.as_str().to_owned()),
            roles: u.roles.to_vec(),
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
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
#[schema(as = UserOrPublicUserView)]
pub enum SomeUserViewDoc {
    Full(UserView),
    Public(PublicUserView),
}

/// `GET /v1/users`: a page of accounts in id order.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UserPage)]
pub struct UserPageDoc {
    pub users: Vec<UserView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    #[schema(required)]
    pub next_cursor: Option<String>,
}

/// `GET /v1/users/me/sessions`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SessionList)]
pub struct SessionListDoc {
    pub sessions: Vec<SessionView>,
}

/// `aud`: one audience as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = Audience)]
pub enum AudienceDoc {
    One(String),
    Many(Vec<String>),
}

/// The claims of an access token (`tessera_verify::Claims`, RFC 9068).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Claims)]
pub struct ClaimsDoc {
    pub iss: String,
    /// A user id for people, the `client_id` for service clients.
    pub sub: String,
    pub aud: AudienceDoc,
    /// NumericDate.
    pub exp: i64,
    /// NumericDate.
    pub iat: i64,
    /// NumericDate.
    pub nbf: i64,
    pub jti: String,
    /// Space-separated scopes; may be empty.
    pub scope: String,
    pub client_id: String,
    pub roles: Vec<String>,
    /// Session id (people only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sid: Option<String>,
    /// Whether the token came straight from a password check (people only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fresh: Option<bool>,
}

/// `/v1/auth/verify`: the token is valid and not revoked (otherwise the answer is 401).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Verification)]
pub struct VerifyDoc {
    /// Always `true`.
    pub active: bool,
    pub claims: ClaimsDoc,
}

/// A JWS algorithm Tessera signs with.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SigningAlg)]
pub enum SigningAlgDoc {
    ES256,
    RS256,
    Ed25519,
    EdDSA,
    HS256,
}

/// Where a signing key stands in its life.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = KeyStatus)]
pub enum KeyStatusDoc {
    Next,
    Active,
    Retiring,
}

/// A signing key as `/v1/keys` lists it (`service::KeyInfo`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Key)]
pub struct KeyDoc {
    pub kid: String,
    pub alg: SigningAlgDoc,
    pub status: KeyStatusDoc,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `GET /v1/keys`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = KeyList)]
pub struct KeyListDoc {
    pub keys: Vec<KeyDoc>,
}

/// `POST /v1/keys/rotate`: the key that signs from now on (`active`), or the key of a new
/// algorithm published ahead of its use (`next`), which signs from `active_from`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RotatedKey)]
pub struct RotatedKeyDoc {
    pub kid: String,
    pub alg: SigningAlgDoc,
    pub status: KeyStatusDoc,
    /// RFC 3339; only while an algorithm change waits for its key to be published long enough.
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[schema(nullable = false)]
    pub active_from: Option<OffsetDateTime>,
}

/// A public key (RFC 7517): EC P-256 (`crv`, `x`, `y`), RSA (`n`, `e`) or OKP Ed25519 (`crv`, `x`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Jwk)]
pub struct JwkDoc {
    pub kty: String,
    pub kid: String,
    pub alg: SigningAlgDoc,
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

/// `GET /.well-known/jwks.json`: empty with HS256.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Jwks)]
pub struct JwksDoc {
    pub keys: Vec<JwkDoc>,
}

/// A revoked access token (its `exp`, NumericDate), listed until 60 s after `exp` so that
/// verifiers with a clock leeway of up to 60 s still see it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RevokedToken)]
pub struct RevokedTokenDoc {
    pub jti: String,
    pub exp: i64,
}

/// An ended session: every token carrying this `sid` is revoked until `exp` (NumericDate).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RevokedSession)]
pub struct RevokedSessionDoc {
    pub sid: String,
    pub exp: i64,
}

/// Every token of `sub` with `iat` before `not_before` (NumericDate) is revoked; `exp` is when
/// the last token the cut-off can refuse expires (keep the cut-off at least until then).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RevokedSubject)]
pub struct RevokedSubjectDoc {
    pub sub: String,
    pub not_before: i64,
    pub exp: i64,
}

/// `GET /v1/revocations`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = RevocationFeed)]
pub struct RevocationFeedDoc {
    /// Opaque; pass as `since` to get only what came after.
    pub cursor: String,
    pub tokens: Vec<RevokedTokenDoc>,
    pub sessions: Vec<RevokedSessionDoc>,
    pub subjects: Vec<RevokedSubjectDoc>,
}

/// One entry of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventDoc {
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

/// `GET /v1/audit`: newest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditPage)]
pub struct AuditPageDoc {
    pub events: Vec<AuditEventDoc>,
    /// Pass as `cursor` for older events; `null` on the last page.
    #[schema(required)]
    pub next_cursor: Option<String>,
}

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Service)]
pub struct ServiceDoc {
    #[schema(pattern = "^tessera$")]
    pub name: String,
    pub version: String,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Status)]
pub struct StatusDoc {
    /// `ok` (alive) or `ready` (the database answers).
    #[schema(pattern = "^(ok|ready)$")]
    pub status: String,
}

/// RFC 8414 authorization-server metadata.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuthorizationServerMetadata)]
pub struct MetadataDoc {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Scopes the server itself defines (none yet); clients' own scopes are not published.
    pub scopes_supported: Vec<String>,
    /// Empty until there is an authorization endpoint.
    pub response_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    /// The algorithms of every published key: the active, the next and retiring ones.
    pub id_token_signing_alg_values_supported: Vec<SigningAlgDoc>,
}
