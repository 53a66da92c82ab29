//! `/v1/auth/*`: register, login, refresh, logout, verify.

use super::error::ApiError;
use super::extract::{Bearer, Client, Json};
use super::views::TokenView;
use crate::service::{Error, LoginId, Registration};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
pub struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    username: Option<String>,
}

pub async fn register(
    State(app): State<AppState>,
    Client(meta): Client,
    Json(body): Json<RegisterBody>,
) -> Result<impl IntoResponse, ApiError> {
    let reg = Registration { email: body.email, password: body.password, username: body.username, admin: false };
    let (user, tokens) = app.register(reg, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(TokenView::new(Some(&user), tokens))))
}

#[derive(Debug, Deserialize)]
pub struct LoginBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
    password: String,
}

pub async fn login(
    State(app): State<AppState>,
    Client(meta): Client,
    Json(body): Json<LoginBody>,
) -> Result<impl IntoResponse, ApiError> {
    let id = match (body.email, body.username) {
        (Some(email), _) => LoginId::Email(email),
        (None, Some(username)) => LoginId::Username(username),
        (None, None) => return Err(Error::Validation("email or username is required".into()).into()),
    };
    let (user, tokens) = app.login(id, body.password, &meta).await?;
    Ok(axum::Json(TokenView::new(Some(&user), tokens)))
}

#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(State(app): State<AppState>, Json(body): Json<RefreshBody>) -> Result<impl IntoResponse, ApiError> {
    let tokens = app.refresh(&body.refresh_token).await?;
    Ok(axum::Json(TokenView::new(None, tokens)))
}

#[derive(Debug, Deserialize)]
pub struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The body is optional, so it is read as bytes and parsed only when present.
pub async fn logout(State(app): State<AppState>, Bearer(claims): Bearer, body: Bytes) -> Result<StatusCode, ApiError> {
    let body: LogoutBody = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutBody { refresh_token: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|_| ApiError::request(StatusCode::BAD_REQUEST, "malformed_request", "the body is not valid JSON"))?
    };
    app.logout(&claims, body.refresh_token.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn logout_all(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<StatusCode, ApiError> {
    app.logout_all(&claims).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn verify(Bearer(claims): Bearer) -> impl IntoResponse {
    axum::Json(json!({ "active": true, "claims": &*claims }))
}
