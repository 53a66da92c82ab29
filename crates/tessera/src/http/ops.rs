//! Operations: identity, liveness and readiness.

use super::error::{ApiError, ProblemAnswer, RetryLaterAnswer};
use super::views::{ServiceDoc, StatusDoc};
use crate::service::Error;
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

/// Name and version of the service
#[utoipa::path(
    get,
    path = "/",
    tag = "operations",
    responses(
        (status = 200, description = "`{\"name\": \"tessera\", \"version\"}`", body = ServiceDoc),
        (status = 500, response = ProblemAnswer),
    )
)]
pub async fn root() -> impl IntoResponse {
    axum::Json(json!({ "name": "tessera", "version": env!("CARGO_PKG_VERSION") }))
}

/// Liveness
///
/// The process is alive; says nothing about the database.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "`{\"status\": \"ok\"}`", body = StatusDoc),
        (status = 500, response = ProblemAnswer),
    )
)]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

/// Readiness
///
/// Ready to serve: the database answers within 2 seconds.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = StatusDoc),
        (status = 500, response = ProblemAnswer),
        (status = 503, response = RetryLaterAnswer),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), app.store().ping()).await {
        Ok(Ok(())) => Ok(axum::Json(json!({ "status": "ready" }))),
        _ => Err(Error::Unavailable.into()),
    }
}

/// Metrics
///
/// Prometheus text exposition format 0.0.4.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "The metrics", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 500, response = ProblemAnswer),
    )
)]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let body = app.render_metrics().await;
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
