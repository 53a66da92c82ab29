//! `/admin/audit`: the audit trail filtered by kind, actor, subject and time, newest first,
//! paged by cursor; each actor and subject links to the person's or the client's page.

use super::{Admin, Nav, actor_link, chrome, subject_link, when};
use crate::http::pages::{HtmlError, Layout, PageQuery, Pages, html};
use crate::state::AppState;
use crate::store::AuditFilter;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Events per page.
const PAGE_SIZE: u32 = 50;

/// One event.
#[derive(Debug)]
pub struct EventRow {
    at: String,
    kind: String,
    actor: String,
    actor_link: Option<String>,
    subject: String,
    subject_link: Option<String>,
    ip: String,
    detail: String,
}

/// The audit page.
#[derive(Debug, Template)]
#[template(path = "admin/audit.html")]
pub struct AuditPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    filter: AuditQuery,
    events: Vec<EventRow>,
    next: Option<String>,
    first: Option<String>,
    error: Option<String>,
}

/// The filter, as the form sends it (and the pager links carry it).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct AuditQuery {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    subject: String,
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` input), UTC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    since: String,
    /// `YYYY-MM-DDTHH:MM`, UTC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    until: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// A `datetime-local` value (with or without seconds) as a UTC time.
fn parse_time(s: &str) -> Option<OffsetDateTime> {
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(s, minutes).or_else(|_| PrimitiveDateTime::parse(s, seconds)).ok().map(PrimitiveDateTime::assume_utc)
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `GET /admin/audit`.
pub async fn page(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    PageQuery(query): PageQuery<AuditQuery>,
) -> Result<Response, HtmlError> {
    let mut error = None;
    let mut time = |field: &str, label: &str| match some(field) {
        None => None,
        Some(s) => {
            let parsed = parse_time(&s);
            if parsed.is_none() {
                error = Some(format!("The {label} time is not a date and time like 2026-11-30T17:05. It was left out of the filter."));
            }
            parsed
        }
    };
    let filter = AuditFilter {
        kind: some(&query.kind),
        actor: some(&query.actor),
        subject: some(&query.subject),
        since: time(&query.since, "from"),
        until: time(&query.until, "to"),
    };
    let page = app.filtered_audit(admin.claims(), &filter, PAGE_SIZE, query.cursor.as_deref()).await?;
    let link = |cursor: Option<String>| {
        let q = AuditQuery { cursor, ..query.clone() };
        let encoded = serde_urlencoded::to_string(&q).unwrap_or_default();
        if encoded.is_empty() { "/admin/audit".to_owned() } else { format!("/admin/audit?{encoded}") }
    };
    let next = page.next_cursor.map(|c| link(Some(c)));
    let first = query.cursor.is_some().then(|| link(None));
    let events = page
        .events
        .into_iter()
        .map(|e| {
            let actor = e.actor.unwrap_or_default();
            let subject = e.subject.unwrap_or_default();
            EventRow {
                at: when(e.at),
                actor_link: actor_link(&actor),
                actor,
                subject_link: subject_link(&e.kind, &subject),
                subject,
                kind: e.kind,
                ip: e.ip.unwrap_or_default(),
                detail: e.detail.unwrap_or_default(),
            }
        })
        .collect();
    let (layout, nav) = chrome(&pages, &admin, "audit");
    Ok(html(&AuditPage { layout, nav, filter: query, events, next, first, error }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_times_are_read_as_utc_with_or_without_seconds() {
        assert_eq!(parse_time("2026-11-30T17:05").map(|t| t.unix_timestamp()), Some(1_796_058_300));
        assert_eq!(parse_time("2026-11-30T17:05:30").map(|t| t.unix_timestamp()), Some(1_796_058_330));
        assert_eq!(parse_time("yesterday"), None);
    }
}
