//! `GET /v1/audit`: the audit trail, for admins.

use super::error::{ApiError, ProblemAnswer};
use super::extract::{Bearer, Query};
use super::views::AuditPageDoc;
use crate::state::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
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
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "admin",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of events", body = AuditPageDoc),
        (status = 400, response = ProblemAnswer),
    )
)]
pub async fn trail(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Query(q): Query<AuditQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let page = app.audit_trail(&claims, q.limit, q.cursor.as_deref()).await?;
    Ok(axum::Json(json!({ "events": page.events.iter().map(event_json).collect::<Vec<_>>(), "next_cursor": page.next_cursor })))
}

/// An event on the wire: `{at, kind, actor, subject, ip, detail}`, `at` in RFC 3339.
pub fn event_json(e: &crate::store::AuditEvent) -> serde_json::Value {
    let at = e.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    json!({ "at": at, "kind": e.kind, "actor": e.actor, "subject": e.subject, "ip": e.ip, "detail": e.detail })
}
