//! Operations: identity, liveness and readiness.

use super::error::ApiError;
use crate::service::Error;
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

pub async fn root() -> impl IntoResponse {
    axum::Json(json!({ "name": "tessera", "version": env!("CARGO_PKG_VERSION") }))
}

/// The process is alive; says nothing about the database.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready to serve: the database answers.
pub async fn readyz(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), app.store().ping()).await {
        Ok(Ok(())) => Ok(axum::Json(json!({ "status": "ready" }))),
        _ => Err(Error::Unavailable.into()),
    }
}

/// Prometheus text exposition.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let body = app.render_metrics().await;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
