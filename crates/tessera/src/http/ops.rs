//! Operations: identity, liveness and readiness.

use super::error::ApiError;
use super::extract::parse_bearer;
use crate::metrics::classic_text;
use crate::service::{Error, TokenError};
use crate::state::AppState;
use aws_lc_rs::digest::{SHA256, digest};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::IntoResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

/// `GET /`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceInfo {
    #[schema(pattern = "^tessera$")]
    pub name: &'static str,
    pub version: &'static str,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` (alive) or `ready` (the database answers).
    #[schema(pattern = "^(ok|ready)$")]
    pub status: &'static str,
}

/// Name and version of the service
#[utoipa::path(get, path = "/", tag = "operations",
    responses((status = 200, description = "`{\"name\": \"tessera\", \"version\"}`", body = ServiceInfo)))]
pub async fn root() -> axum::Json<ServiceInfo> {
    axum::Json(ServiceInfo { name: "tessera", version: env!("CARGO_PKG_VERSION") })
}

/// Liveness
///
/// The process is alive; says nothing about the database.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Status)))]
pub async fn healthz() -> axum::Json<Status> {
    axum::Json(Status { status: "ok" })
}

/// Readiness
///
/// Ready to serve: the database answers within 2 seconds.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "`{\"status\": \"ready\"}`", body = Status)))]
pub async fn readyz(State(app): State<AppState>) -> Result<axum::Json<Status>, ApiError> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), app.store().ping()).await {
        Ok(Ok(())) => Ok(axum::Json(Status { status: "ready" })),
        _ => Err(Error::Unavailable.into()),
    }
}

/// The OpenMetrics text format, served by default.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format, for scrapers whose `Accept` asks only for it.
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Metrics
///
/// OpenMetrics text 1.0.0 by default; the classic Prometheus text format 0.0.4 when `Accept`
/// asks only for `text/plain`. With `TESSERA_METRICS_TOKEN` set, only with that bearer token.
#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "The metrics", content(
            (String = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
            (String = "text/plain; version=0.0.4; charset=utf-8"),
        )),
    ))]
pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, ApiError> {
    if let Some(expected) = &app.http().metrics_token {
        let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(parse_bearer);
        match presented {
            None => return Err(Error::Bearer(TokenError::Missing).into()),
            Some(token) if !is_metrics_token(token, expected) => {
                return Err(Error::Bearer(TokenError::Invalid("not the metrics token")).into());
            }
            Some(_) => {}
        }
    }
    let body = app.render_metrics().await;
    let (content_type, body) = if wants_only_classic(&headers) { (CLASSIC, classic_text(&body)) } else { (OPENMETRICS, body) };
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::VARY, HeaderValue::from_static("accept"))], body))
}

/// Compares digests, in constant time: neither the token's bytes nor its length leak.
fn is_metrics_token(presented: &str, expected: &SecretString) -> bool {
    let presented = digest(&SHA256, presented.as_bytes());
    let expected = digest(&SHA256, expected.expose_secret().as_bytes());
    presented.as_ref().ct_eq(expected.as_ref()).into()
}

/// True when every media range of `Accept` that is not refused (`q=0`) is `text/plain` or
/// `text/*`: such a client cannot read OpenMetrics. No `Accept`, `*/*`, or any range that
/// covers OpenMetrics (as Prometheus sends) gets OpenMetrics.
fn wants_only_classic(headers: &HeaderMap) -> bool {
    let mut ranges = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let essence = parts.next().filter(|e| !e.is_empty())?.to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.split_once('=')
                    .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case("q") && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (!refused).then_some(essence)
        })
        .peekable();
    ranges.peek().is_some() && ranges.all(|essence| essence == "text/plain" || essence == "text/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn only_an_accept_limited_to_plain_text_gets_the_classic_format() {
        for classic in
            [&["text/plain"][..], &["text/plain; version=0.0.4"], &["Text/Plain;q=0.5, text/*"], &["text/plain", "text/plain;q=1"]]
        {
            assert!(wants_only_classic(&accept(classic)), "{classic:?}");
        }
        for openmetrics in [
            &[][..],
            &["*/*"],
            &[""],
            &[
                "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            ],
            &["text/plain", "application/openmetrics-text"],
            &["application/json"],
        ] {
            assert!(!wants_only_classic(&accept(openmetrics)), "{openmetrics:?}");
        }
        assert!(wants_only_classic(&accept(&["application/openmetrics-text;q=0, text/plain"])));
    }

    #[test]
    fn the_metrics_token_must_match_exactly() {
        let expected = SecretString::from("s3cret-token");
        assert!(is_metrics_token("s3cret-token", &expected));
        for wrong in ["s3cret-toke", "s3cret-token2", "S3cret-token", ""] {
            assert!(!is_metrics_token(wrong, &expected), "{wrong}");
        }
    }
}
