//! `/v1/users/*`: the caller's own account and sessions, other accounts, administration.

use super::error::{AccountGone, ApiError, Conflict, TooManyAttempts};
use super::extract::{Bearer, Json, Path, Query};
use super::views::{PublicUserView, SessionList, SessionView, UserOrPublicUserView, UserPage, UserView};
use crate::service::{AdminUserPatch, ClientMeta, ProfilePatch};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The caller's account
#[utoipa::path(get, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The full view", body = UserView), AccountGone))]
pub async fn me(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<axum::Json<UserView>, ApiError> {
    Ok(axum::Json(UserView::from(&app.me(&claims).await?)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchMeBody {
    /// 3 to 32 of `a-z 0-9 _ . -` after folding to lower case.
    #[serde(default)]
    username: Option<String>,
    /// Needs a `fresh` token.
    #[serde(default)]
    #[schema(format = Email)]
    email: Option<String>,
}

/// Change the caller's username or email
///
/// Changing the email needs a `fresh` token.
#[utoipa::path(patch, path = "/v1/users/me", tag = "users", security(("bearer" = [])), request_body = PatchMeBody,
    responses((status = 200, description = "The account as changed", body = UserView), AccountGone, Conflict))]
pub async fn patch_me(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Json(body): Json<PatchMeBody>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = app.update_me(&claims, ProfilePatch { username: body.username, email: body.email }, &meta).await?;
    Ok(axum::Json(UserView::from(&user)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordBody {
    current_password: String,
    /// Not guessable, e.g. not the email (else 422 `weak_password`).
    #[schema(min_length = 8, max_length = 256)]
    new_password: String,
}

/// Change the caller's password
///
/// Needs a `fresh` token; ends the user's other sessions. A wrong `current_password` is 403
/// `invalid_credentials`.
#[utoipa::path(put, path = "/v1/users/me/password", tag = "users", security(("bearer" = [])), request_body = PasswordBody,
    responses((status = 204, description = "Changed"), AccountGone, TooManyAttempts))]
pub async fn change_password(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Json(body): Json<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    app.change_password(&claims, body.current_password, body.new_password, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete the caller's account
///
/// Needs a `fresh` token; the account and all its tokens are gone.
#[utoipa::path(delete, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), AccountGone))]
pub async fn delete_me(State(app): State<AppState>, Bearer(claims): Bearer, meta: ClientMeta) -> Result<StatusCode, ApiError> {
    app.delete_me(&claims, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's live sessions, newest first
#[utoipa::path(get, path = "/v1/users/me/sessions", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The sessions", body = SessionList)))]
pub async fn sessions(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<axum::Json<SessionList>, ApiError> {
    let sessions = app.sessions(&claims).await?.iter().map(|(s, current)| SessionView::new(s, *current)).collect();
    Ok(axum::Json(SessionList { sessions }))
}

/// End one of the caller's sessions
#[utoipa::path(delete, path = "/v1/users/me/sessions/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "A session id, as `/v1/users/me/sessions` lists it")),
    responses((status = 204, description = "Ended; its tokens are revoked")))]
pub async fn end_session(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.end_session(&claims, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An account
///
/// The full view for the owner or an admin; the public view for anyone else, with or
/// without a token. A token that is presented must be valid.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users", security((), ("bearer" = [])),
    params(("id" = String, Path, description = "A user id")),
    responses((status = 200, description = "The full or the public view", body = UserOrPublicUserView)))]
pub async fn get_user(
    State(app): State<AppState>,
    caller: Option<Bearer>,
    Path(id): Path<String>,
) -> Result<axum::Json<UserOrPublicUserView>, ApiError> {
    let (user, full) = app.user_view(caller.as_ref().map(|b| &*b.0), &id).await?;
    Ok(axum::Json(if full {
        UserOrPublicUserView::Full(UserView::from(&user))
    } else {
        UserOrPublicUserView::Public(PublicUserView::from(&user))
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 200 (default 50; values outside are clamped).
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4_294_967_295_i64)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// Every account, in id order (admin)
#[utoipa::path(get, path = "/v1/users", tag = "admin", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, description = "A page of accounts", body = UserPage)))]
pub async fn list_users(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<UserPage>, ApiError> {
    Ok(axum::Json(app.list_users(&claims, q.limit, q.cursor.as_deref()).await?.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminPatchBody {
    /// Disabling revokes every token of the account.
    #[serde(default)]
    disabled: Option<bool>,
    /// Replaces the roles, e.g. `["admin"]`.
    #[serde(default)]
    roles: Option<Vec<String>>,
}

/// Disable, enable or re-role an account (admin)
///
/// Disabling revokes every token of the account.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "A user id")), request_body = AdminPatchBody,
    responses((status = 200, description = "The account as changed", body = UserView)))]
pub async fn admin_patch_user(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Path(id): Path<String>,
    Json(body): Json<AdminPatchBody>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = app.admin_update_user(&claims, &id, AdminUserPatch { disabled: body.disabled, roles: body.roles }, &meta).await?;
    Ok(axum::Json(UserView::from(&user)))
}

/// Delete an account (admin)
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "A user id")),
    responses((status = 204, description = "Deleted; its tokens are revoked")))]
pub async fn admin_delete_user(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.admin_delete_user(&claims, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}
