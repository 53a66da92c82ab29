//! What every request leaves behind: a request id (the caller's `X-Request-Id` when it is a
//! sane one, else a new one), echoed back and carried by every log line of the request, a
//! count and a latency sample by route and status, and one log line when it ends.

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;
use tracing::Instrument;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's id is used only when it is short printable ASCII, so it cannot forge log lines.
fn caller_id(req: &Request) -> Option<String> {
    let value = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let sane = (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| value.to_owned())
}

pub async fn observe(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let id = caller_id(&req).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let started = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status();

    let metrics = app.metrics();
    metrics
        .requests
        .get_or_create(&vec![("route", route.clone()), ("method", method.to_string()), ("status", status.as_u16().to_string())])
        .inc();
    metrics.latency.get_or_create(&vec![("route", route)]).observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), elapsed_ms = ms, "request failed");
        } else if status.is_client_error() {
            tracing::info!(status = status.as_u16(), elapsed_ms = ms, "request refused");
        } else {
            tracing::debug!(status = status.as_u16(), elapsed_ms = ms, "request served");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}
