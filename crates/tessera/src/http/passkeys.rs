//! Passkeys: enrolment, list and removal under `/v1/users/me/passkeys`, and sign-in with a
//! passkey (`/v1/auth/passkey/options`, `/v1/auth/passkey`). With passkeys off every one of
//! these answers 404 `not_found`, as an unknown route does.

use super::error::{AccountGone, ApiError, Conflict, CredentialsRefused, PasskeysOff, TooManyAttempts};
use super::extract::{Bearer, Json, OptionalJson, Path};
use super::views::TokenView;
use crate::service::{Ceremony, ClientMeta, PasskeyInfo};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A WebAuthn ceremony begun: send `options` to `navigator.credentials.create` (or `.get`)
/// as the `publicKey` member, then the credential back with `challenge_id` (5 minutes, once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CeremonyView {
    /// Names this ceremony.
    challenge_id: String,
    /// `PublicKeyCredentialCreationOptionsJSON` or `PublicKeyCredentialRequestOptionsJSON`
    /// (binary values base64url).
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

impl From<Ceremony> for CeremonyView {
    fn from(c: Ceremony) -> Self {
        CeremonyView { challenge_id: c.challenge_id, options: c.options }
    }
}

/// One of the caller's passkeys.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyView {
    #[schema(format = "uuid")]
    id: String,
    /// The name its owner gave it.
    name: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// When it last signed its owner in.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required)]
    last_used_at: Option<OffsetDateTime>,
}

impl From<PasskeyInfo> for PasskeyView {
    fn from(p: PasskeyInfo) -> Self {
        PasskeyView { id: p.id, name: p.name, created_at: p.created_at, last_used_at: p.last_used_at }
    }
}

/// The caller's passkeys, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyList {
    passkeys: Vec<PasskeyView>,
}

/// Start enrolling a passkey
///
/// Needs a `fresh` token. The options ask for a discoverable credential with user
/// verification, and exclude the caller's passkeys.
#[utoipa::path(post, path = "/v1/users/me/passkeys/registration", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "A registration ceremony", body = CeremonyView), AccountGone))]
pub async fn start_registration(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<axum::Json<CeremonyView>, ApiError> {
    Ok(axum::Json(app.start_passkey_registration(&claims).await?.into()))
}

/// The credential a registration ceremony made.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegistrationBody {
    /// From the registration ceremony's answer.
    challenge_id: String,
    /// The `PublicKeyCredential` of `navigator.credentials.create`, as JSON (`toJSON()`).
    #[schema(value_type = Object)]
    credential: serde_json::Value,
    /// A name to tell it apart (at most 64 characters); `Passkey N` when left out.
    name: Option<String>,
}

/// Add a passkey
///
/// Finishes the registration ceremony. A challenge that is unknown, used or expired is 400
/// `invalid_challenge`; a credential that does not check out is 422.
#[utoipa::path(post, path = "/v1/users/me/passkeys", tag = "users", security(("bearer" = [])), request_body = RegistrationBody,
    responses((status = 201, description = "The passkey", body = PasskeyView), Conflict, PasskeysOff))]
pub async fn finish_registration(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Json(body): Json<RegistrationBody>,
) -> Result<(StatusCode, axum::Json<PasskeyView>), ApiError> {
    let passkey = app.finish_passkey_registration(&claims, &body.challenge_id, body.credential, body.name.as_deref(), &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(passkey.into())))
}

/// List the caller's passkeys
#[utoipa::path(get, path = "/v1/users/me/passkeys", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The passkeys", body = PasskeyList), PasskeysOff))]
pub async fn list(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<axum::Json<PasskeyList>, ApiError> {
    let passkeys = app.passkeys(&claims).await?.into_iter().map(PasskeyView::from).collect();
    Ok(axum::Json(PasskeyList { passkeys }))
}

/// Remove a passkey
///
/// Needs a `fresh` token. With the last second factor, the recovery codes go too.
#[utoipa::path(delete, path = "/v1/users/me/passkeys/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "A passkey id")),
    responses((status = 204, description = "Removed"), PasskeysOff))]
pub async fn remove(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.remove_passkey(&claims, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a passkey sign-in starts from: nothing (a passkey alone), or the `mfa_token` of a
/// password sign-in waiting for its second factor.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OptionsBody {
    /// With it, the options name that person's passkeys.
    mfa_token: Option<String>,
}

/// Start a passkey sign-in
///
/// Without `mfa_token`, `allowCredentials` is empty: the authenticator offers its
/// passkeys for this site.
#[utoipa::path(post, path = "/v1/auth/passkey/options", tag = "auth", request_body = OptionsBody,
    responses((status = 200, description = "An authentication ceremony", body = CeremonyView), CredentialsRefused, Conflict, PasskeysOff))]
pub async fn options(
    State(app): State<AppState>,
    OptionalJson(body): OptionalJson<OptionsBody>,
) -> Result<axum::Json<CeremonyView>, ApiError> {
    let body = body.unwrap_or_default();
    Ok(axum::Json(app.passkey_options(body.mfa_token.as_deref()).await?.into()))
}

/// The assertion of an authentication ceremony.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AssertionBody {
    /// From `/v1/auth/passkey/options`.
    challenge_id: String,
    /// The `PublicKeyCredential` of `navigator.credentials.get`, as JSON (`toJSON()`).
    #[schema(value_type = Object)]
    credential: serde_json::Value,
}

/// Sign in with a passkey
///
/// The tokens are `fresh`; their `amr` is `["hwk", "user", "mfa"]`. An unknown passkey or an
/// assertion that does not check out is 401 `invalid_credentials`.
#[utoipa::path(post, path = "/v1/auth/passkey", tag = "auth", request_body = AssertionBody,
    responses((status = 200, description = "Signed in", body = TokenView), CredentialsRefused, TooManyAttempts, PasskeysOff))]
pub async fn sign_in(
    State(app): State<AppState>,
    meta: ClientMeta,
    Json(body): Json<AssertionBody>,
) -> Result<axum::Json<TokenView>, ApiError> {
    let (user, tokens) = app.passkey_login(&body.challenge_id, body.credential, &meta).await?;
    Ok(axum::Json(TokenView::new(Some(&user), tokens)))
}
