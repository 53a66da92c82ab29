//! Second factors: TOTP and recovery codes under `/v1/users/me`, the second step of a
//! password sign-in (`/v1/auth/login/mfa`), and the admins' reset.

use super::error::{AccountGone, ApiError, Conflict, CredentialsRefused, PasskeysOff, TooManyAttempts};
use super::extract::{Bearer, Json, Path};
use super::views::TokenView;
use crate::service::ClientMeta;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new TOTP secret, pending until a code confirms it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolmentView {
    /// The secret, base32 (RFC 4648, no padding), to type into an authenticator app.
    secret: String,
    /// The `otpauth://totp/...` URI (what the QR code on `/account` holds).
    otpauth_uri: String,
}

/// Start TOTP enrolment
///
/// Needs a `fresh` token. Replaces a pending enrolment; 409 when TOTP is on already.
#[utoipa::path(post, path = "/v1/users/me/totp", tag = "users", security(("bearer" = [])),
    responses((status = 201, description = "A pending secret", body = TotpEnrolmentView), AccountGone, Conflict))]
pub async fn enrol_totp(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
) -> Result<(StatusCode, axum::Json<TotpEnrolmentView>), ApiError> {
    let enrolment = app.enrol_totp(&claims, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(TotpEnrolmentView { secret: enrolment.secret, otpauth_uri: enrolment.otpauth_uri })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeBody {
    /// The 6-digit code the authenticator app shows now.
    code: String,
}

/// Ten recovery codes, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodesView {
    /// Each works once in place of a TOTP code or a passkey.
    recovery_codes: Vec<String>,
}

/// Confirm TOTP enrolment
///
/// The first code turns TOTP on and answers ten recovery codes (the old ones void). A wrong
/// code is 401 `invalid_code`.
#[utoipa::path(post, path = "/v1/users/me/totp/confirm", tag = "users", security(("bearer" = [])), request_body = CodeBody,
    responses((status = 200, description = "TOTP is on", body = RecoveryCodesView), AccountGone, CredentialsRefused, Conflict))]
pub async fn confirm_totp(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Json(body): Json<CodeBody>,
) -> Result<axum::Json<RecoveryCodesView>, ApiError> {
    let recovery_codes = app.confirm_totp(&claims, &body.code, &meta).await?;
    Ok(axum::Json(RecoveryCodesView { recovery_codes }))
}

/// Remove TOTP
///
/// Needs a `fresh` token. The recovery codes go too unless a passkey remains.
#[utoipa::path(delete, path = "/v1/users/me/totp", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "TOTP is off"), AccountGone))]
pub async fn remove_totp(State(app): State<AppState>, Bearer(claims): Bearer, meta: ClientMeta) -> Result<StatusCode, ApiError> {
    app.remove_totp(&claims, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New recovery codes
///
/// Needs a `fresh` token and a second factor (else 409); the old codes stop working.
#[utoipa::path(post, path = "/v1/users/me/recovery-codes", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "Ten new codes", body = RecoveryCodesView), AccountGone, Conflict))]
pub async fn regenerate_recovery_codes(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
) -> Result<axum::Json<RecoveryCodesView>, ApiError> {
    let recovery_codes = app.regenerate_recovery_codes(&claims, &meta).await?;
    Ok(axum::Json(RecoveryCodesView { recovery_codes }))
}

/// The second step of a password sign-in: the `mfa_token` of the `mfa_required` answer and
/// a `code` (TOTP or recovery code), or a passkey's `challenge_id` and `credential`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginMfaBody {
    mfa_token: String,
    /// A TOTP code or a recovery code.
    code: Option<String>,
    /// From `POST /v1/auth/passkey/options` with this `mfa_token`.
    challenge_id: Option<String>,
    /// The `PublicKeyCredential` of `navigator.credentials.get`, as JSON.
    #[schema(value_type = Option<Object>)]
    credential: Option<serde_json::Value>,
}

/// Finish a password sign-in with a second factor
///
/// The tokens are `fresh`. A wrong code is 401 `invalid_code` and counts as a failed
/// sign-in of the account; the fifth ends the `mfa_token` (401 `invalid_mfa_token`).
#[utoipa::path(post, path = "/v1/auth/login/mfa", tag = "auth", request_body = LoginMfaBody,
    responses((status = 200, description = "Signed in", body = TokenView), CredentialsRefused, TooManyAttempts, PasskeysOff))]
pub async fn login_mfa(
    State(app): State<AppState>,
    meta: ClientMeta,
    Json(body): Json<LoginMfaBody>,
) -> Result<axum::Json<TokenView>, ApiError> {
    let (user, tokens) = match (body.code, body.challenge_id, body.credential) {
        (Some(code), None, None) => app.login_mfa(&body.mfa_token, &code, &meta).await?,
        (None, Some(challenge_id), Some(credential)) => app.login_mfa_passkey(&body.mfa_token, &challenge_id, credential, &meta).await?,
        _ => {
            let detail = "send either `code`, or a passkey's `challenge_id` and `credential`";
            return Err(ApiError::request(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail));
        }
    };
    Ok(axum::Json(TokenView::new(Some(&user), tokens)))
}

/// Remove a person's second factors (admin)
///
/// Their TOTP, recovery codes and passkeys: for a person who lost their devices.
#[utoipa::path(delete, path = "/v1/users/{id}/mfa", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "A user id")),
    responses((status = 204, description = "Every second factor removed")))]
pub async fn admin_reset_mfa(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.admin_reset_mfa(&claims, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
