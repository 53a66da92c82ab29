//! `GET /admin`: counts of people, sessions and clients, the last day's sign-ins and
//! failures (from the audit trail), the database's health and the revocation feed's head.

use super::{Admin, Nav, chrome};
use crate::http::pages::{HtmlError, Layout, Pages, html};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use std::sync::Arc;

/// The overview.
#[derive(Debug, Template)]
#[template(path = "admin/overview.html")]
pub struct OverviewPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    users: i64,
    sessions: i64,
    browser_sessions: i64,
    token_sessions: i64,
    clients: i64,
    sign_ins: i64,
    failed_sign_ins: i64,
    database_ok: bool,
    pool_open: u32,
    pool_idle: u32,
    feed_head: i64,
    mail_delivery: &'static str,
    mail_oldest_unsent_age: i64,
}

/// `GET /admin`.
pub async fn page(State(pages): State<Arc<Pages>>, State(app): State<AppState>, admin: Admin) -> Result<Response, HtmlError> {
    let overview = app.console_overview(admin.claims()).await?;
    let (layout, nav) = chrome(&pages, &admin, "overview");
    let c = &overview.counts;
    Ok(html(&OverviewPage {
        layout,
        nav,
        users: c.users,
        sessions: c.browser_sessions + c.token_sessions,
        browser_sessions: c.browser_sessions,
        token_sessions: c.token_sessions,
        clients: c.clients,
        sign_ins: overview.sign_ins,
        failed_sign_ins: overview.failed_sign_ins,
        database_ok: overview.database_ok,
        pool_open: overview.pool.0,
        pool_idle: overview.pool.1,
        feed_head: overview.feed_head,
        mail_delivery: overview.mail_delivery,
        mail_oldest_unsent_age: overview.mail_oldest_unsent_age,
    }))
}
