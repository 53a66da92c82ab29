//! `GET /v1/audit`: the audit trail, for admins.

use super::error::ApiError;
use super::extract::{Bearer, Query};
use super::views::AuditTrail;
use crate::state::AppState;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1 to 1000 (default 100; values outside are clamped).
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4_294_967_295_i64)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<String>,
}

/// The audit trail, newest first (admin)
#[utoipa::path(get, path = "/v1/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, description = "A page of events", body = AuditTrail)))]
pub async fn trail(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<AuditTrail>, ApiError> {
    Ok(axum::Json(app.audit_trail(&claims, q.limit, q.cursor.as_deref()).await?.into()))
}
