//! `/v1/clients`: the admin API for service clients.

use super::error::ApiError;
use super::extract::{Bearer, Json};
use crate::domain::Client;
use crate::service::ClientSpec;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

/// A client as admins see it; never the secret.
#[derive(Debug, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ClientView {
    pub fn new(c: &Client, secret: Option<String>) -> Self {
        ClientView {
            client_id: c.id.to_string(),
            name: c.name.to_string(),
            scopes: c.scopes.to_vec(),
            roles: c.roles.to_vec(),
            created_at: c.created_at,
            client_secret: secret,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
}

pub async fn create(State(app): State<AppState>, Bearer(claims): Bearer, Json(body): Json<CreateBody>) -> Result<impl IntoResponse, ApiError> {
    let spec = ClientSpec { name: body.name, scopes: body.scopes, roles: body.roles };
    let created = app.create_client(&claims, spec).await?;
    let view = ClientView::new(&created.client, Some(created.secret.expose().to_owned()));
    Ok((StatusCode::CREATED, axum::Json(view)))
}

pub async fn list(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<impl IntoResponse, ApiError> {
    let clients: Vec<ClientView> = app.list_clients(&claims).await?.iter().map(|c| ClientView::new(c, None)).collect();
    Ok(axum::Json(json!({ "clients": clients })))
}

pub async fn get(State(app): State<AppState>, Bearer(claims): Bearer, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    Ok(axum::Json(ClientView::new(&app.get_client(&claims, &id).await?, None)))
}

pub async fn delete(State(app): State<AppState>, Bearer(claims): Bearer, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    app.delete_client(&claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate_secret(State(app): State<AppState>, Bearer(claims): Bearer, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let (id, secret) = app.rotate_client_secret(&claims, &id).await?;
    Ok(axum::Json(json!({ "client_id": id.to_string(), "client_secret": secret.expose() })))
}
