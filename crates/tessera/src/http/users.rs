//! `/v1/users/*`: the caller's own account and sessions, other accounts, administration.

use super::error::ApiError;
use super::extract::{Bearer, Json};
use super::views::{PublicUserView, SessionView, UserView};
use crate::service::{AdminUserPatch, ProfilePatch};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

pub async fn me(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<axum::Json<UserView>, ApiError> {
    Ok(axum::Json(UserView::from(&app.me(&claims).await?)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchMeBody {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

pub async fn patch_me(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Json(body): Json<PatchMeBody>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = app.update_me(&claims, ProfilePatch { username: body.username, email: body.email }).await?;
    Ok(axum::Json(UserView::from(&user)))
}

#[derive(Debug, Deserialize)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Json(body): Json<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    app.change_password(&claims, body.current_password, body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_me(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<StatusCode, ApiError> {
    app.delete_me(&claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn sessions(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<impl IntoResponse, ApiError> {
    let sessions: Vec<SessionView> =
        app.sessions(&claims).await?.iter().map(|(s, current)| SessionView::new(s, *current)).collect();
    Ok(axum::Json(json!({ "sessions": sessions })))
}

pub async fn end_session(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.end_session(&claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get_user(
    State(app): State<AppState>,
    caller: Option<Bearer>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (user, full) = app.user_view(caller.as_ref().map(|b| &*b.0), &id).await?;
    Ok(if full {
        axum::Json(UserView::from(&user)).into_response()
    } else {
        axum::Json(PublicUserView::from(&user)).into_response()
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    cursor: Option<String>,
}

pub async fn list_users(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::request(StatusCode::BAD_REQUEST, "malformed_request", e.body_text()))?;
    let page = app.list_users(&claims, q.limit, q.cursor.as_deref()).await?;
    let users: Vec<UserView> = page.users.iter().map(UserView::from).collect();
    Ok(axum::Json(json!({ "users": users, "next_cursor": page.next_cursor })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminPatchBody {
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

pub async fn admin_patch_user(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Path(id): Path<String>,
    Json(body): Json<AdminPatchBody>,
) -> Result<axum::Json<UserView>, ApiError> {
    let user = app.admin_update_user(&claims, &id, AdminUserPatch { disabled: body.disabled, roles: body.roles }).await?;
    Ok(axum::Json(UserView::from(&user)))
}

pub async fn admin_delete_user(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.admin_delete_user(&claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
