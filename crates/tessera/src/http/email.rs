//! Email endpoints: verification of the caller's address and password recovery.

use super::error::{ApiError, TooManyAttempts};
use super::extract::{Bearer, Json};
use super::views::UserView;
use crate::service::ClientMeta;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

/// Send a new verification link
///
/// Sends a link to the caller's address (nothing when it is verified already). At most 3
/// verification mails per address per hour, the registration's included: past that 429
/// `rate_limited` with `Retry-After`. Without a mail server in profile `prod`: 503
/// `email_unavailable`.
#[utoipa::path(post, path = "/v1/users/me/email/verification", tag = "users", security(("bearer" = [])),
    responses((status = 202, description = "A link is on its way"), TooManyAttempts, EmailUnavailable))]
pub async fn resend_verification(State(app): State<AppState>, Bearer(claims): Bearer, meta: ClientMeta) -> Result<StatusCode, ApiError> {
    app.resend_verification(&claims, &meta).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The token of a link sent by mail.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyEmailBody {
    /// The `token` parameter of the link.
    token: String,
}

/// Verify an email address
///
/// Spends the token of a verification link (`{issuer}/verify-email?token=…`). An unknown,
/// used or expired token: 400 `invalid_link`.
#[utoipa::path(post, path = "/v1/auth/email/verify", tag = "auth", request_body = VerifyEmailBody,
    responses((status = 200, description = "The account, with `email_verified: true`", body = UserView), InvalidLink))]
pub async fn verify_email(
    State(app): State<AppState>,
    meta: ClientMeta,
    Json(body): Json<VerifyEmailBody>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = app.verify_email(&body.token, &meta).await?;
    Ok(axum::Json(UserView::from(&user)))
}

/// Whose password is forgotten.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ForgotBody {
    #[schema(format = Email)]
    email: String,
}

/// Ask for a password-reset link
///
/// Always 202, in the same time whether or not an account has this address; when one has, a
/// reset link (`{issuer}/password/reset?token=…`) is sent to it, at most 3 per address per
/// hour (later requests send nothing). Limited per client address (429). Without a mail
/// server in profile `prod`: 503 `email_unavailable`.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "auth", request_body = ForgotBody,
    responses((status = 202, description = "Accepted"), EmailUnavailable))]
pub async fn forgot_password(State(app): State<AppState>, meta: ClientMeta, Json(body): Json<ForgotBody>) -> Result<StatusCode, ApiError> {
    app.tessera().forgot_password(&body.email, &meta)?;
    Ok(StatusCode::ACCEPTED)
}

/// A reset link's token and the new password.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetBody {
    /// The `token` parameter of the link.
    token: String,
    /// Not guessable, e.g. not the email (else 422 `weak_password`).
    #[schema(min_length = 8, max_length = 256)]
    new_password: String,
}

/// Set a new password with a reset link
///
/// Spends the link, sets the password, marks the address verified and ends every session of
/// the person. An unknown, used or expired token: 400 `invalid_link`; a weak password: 422
/// `weak_password` (the link still works).
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "auth", request_body = ResetBody,
    responses((status = 204, description = "The password is set; every session ended"), InvalidLink))]
pub async fn reset_password(State(app): State<AppState>, meta: ClientMeta, Json(body): Json<ResetBody>) -> Result<StatusCode, ApiError> {
    app.reset_password(&body.token, body.new_password, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

super::error::error_sets! {
    /// 400: a link token that is unknown, used or expired (`invalid_link`).
    InvalidLink: [("400", "ProblemAnswer")];
    /// 503: no mail server (`email_unavailable`).
    EmailUnavailable: [("503", "ProblemAnswer")];
}
