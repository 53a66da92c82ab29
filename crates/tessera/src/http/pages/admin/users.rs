//! `/admin/users`: people found by the start of their email or username, a person's page,
//! and the actions on it. Each action is the API's service call (`PATCH /v1/users/{id}`'s
//! [`AppState::admin_update_user`], `DELETE /v1/users/{id}`'s `admin_delete_user`) or the
//! console's own (ending sessions), with the signed-in admin as actor.

use super::{Admin, Nav, chrome, notice, to_sign_in, when};
use crate::http::pages::account::SessionRow;
use crate::http::pages::session::see_other;
use crate::http::pages::{CsrfToken, HtmlError, Layout, PageQuery, Pages, VerifiedForm, html, html_response};
use crate::service::{AdminUserPatch, ClientMeta, SessionKind};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// People per page.
const PAGE_SIZE: u32 = 50;

/// One row of the people list.
#[derive(Debug)]
pub struct UserRow {
    id: String,
    email: String,
    username: String,
    roles: String,
    disabled: bool,
    created: String,
}

/// The people list.
#[derive(Debug, Template)]
#[template(path = "admin/users.html")]
pub struct UsersPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    q: String,
    users: Vec<UserRow>,
    next: Option<String>,
    first: Option<String>,
    notice: Option<&'static str>,
}

/// The query of `GET /admin/users`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// `GET /admin/users`.
pub async fn list(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    PageQuery(query): PageQuery<ListQuery>,
) -> Result<Response, HtmlError> {
    let q = query.q.unwrap_or_default().trim().chars().take(320).collect::<String>();
    let page = app.search_users(admin.claims(), Some(&q), query.cursor.as_deref(), PAGE_SIZE).await?;
    let next = page.next_cursor.map(|cursor| {
        let mut params = vec![("cursor", cursor)];
        if !q.is_empty() {
            params.insert(0, ("q", q.clone()));
        }
        format!("/admin/users?{}", serde_urlencoded::to_string(params).unwrap_or_default())
    });
    let first = query.cursor.is_some().then(|| {
        if q.is_empty() {
            "/admin/users".to_owned()
        } else {
            format!("/admin/users?{}", serde_urlencoded::to_string([("q", &q)]).unwrap_or_default())
        }
    });
    let users = page
        .users
        .into_iter()
        .map(|u| UserRow {
            id: u.id.to_string(),
            email: u.email.as_str().to_owned(),
            username: u.username.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default(),
            roles: u.roles.to_vec().join(", "),
            disabled: u.disabled,
            created: when(u.created_at),
        })
        .collect();
    let (layout, nav) = chrome(&pages, &admin, "users");
    Ok(html(&UsersPage { layout, nav, q, users, next, first, notice: notice(query.done.as_deref()) }))
}

/// One audit event on a person's page.
#[derive(Debug)]
pub struct EventRow {
    at: String,
    kind: String,
    actor: String,
    actor_link: Option<String>,
    detail: String,
}

/// A person's page.
#[derive(Debug, Template)]
#[template(path = "admin/person.html")]
pub struct PersonPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    csrf: CsrfToken,
    id: String,
    email: String,
    username: String,
    roles: String,
    admin: bool,
    disabled: bool,
    /// Whether signing in asks for a second factor (the user's `two_factor`).
    two_factor: bool,
    /// Whether the person showed they read mail sent to the address.
    email_verified: bool,
    yourself: bool,
    created: String,
    updated: String,
    browser_sessions: Vec<SessionRow>,
    token_sessions: Vec<SessionRow>,
    events: Vec<EventRow>,
    notice: Option<&'static str>,
}

/// The query of a person's page: which action just happened.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /admin/users/{id}`.
pub async fn person(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<DoneQuery>,
) -> Result<Response, HtmlError> {
    let detail = app.person_detail(admin.claims(), &id).await?;
    let user = detail.user;
    let browser_sessions = detail
        .browser_sessions
        .iter()
        .map(|s| SessionRow {
            kind: "browser",
            id: s.id.to_string(),
            title: crate::http::pages::account::describe_agent(s.user_agent.as_deref()).unwrap_or_else(|| "Unknown browser".to_owned()),
            detail: crate::http::pages::account::where_and_when(s.ip, "Signed in", s.auth_time),
            current: s.id == admin.0.session.id,
        })
        .collect();
    let token_sessions = detail
        .token_sessions
        .iter()
        .map(|s| SessionRow {
            kind: "token",
            id: s.id.to_string(),
            title: match &s.client_id {
                Some(client) => format!("Application “{client}”"),
                None => "API sign-in".to_owned(),
            },
            detail: crate::http::pages::account::where_and_when(s.ip, "Started", s.created_at),
            current: false,
        })
        .collect();
    let events = detail
        .events
        .into_iter()
        .map(|e| {
            let actor = e.actor.unwrap_or_default();
            EventRow { at: when(e.at), kind: e.kind, actor_link: super::actor_link(&actor), actor, detail: e.detail.unwrap_or_default() }
        })
        .collect();
    let (layout, nav) = chrome(&pages, &admin, "users");
    let page = PersonPage {
        layout,
        nav,
        csrf,
        id: user.id.to_string(),
        email: user.email.as_str().to_owned(),
        username: user.username.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default(),
        roles: user.roles.to_vec().join(", "),
        admin: user.roles.is_admin(),
        disabled: user.disabled,
        two_factor: user.two_factor,
        email_verified: user.email_verified,
        yourself: user.id == admin.0.user.id,
        created: when(user.created_at),
        updated: when(user.updated_at),
        browser_sessions,
        token_sessions,
        events,
        notice: notice(query.done.as_deref()),
    };
    Ok(html(&page))
}

/// The form of a button that needs nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct ButtonForm {}

/// The person's page, after `done`.
fn back_to(id: &str, done: &str) -> Response {
    see_other(&format!("/admin/users/{id}?done={done}"))
}

/// A user id from the path: only a well-formed one is put back into a URL.
fn checked_id(id: &str) -> Result<String, HtmlError> {
    id.parse::<crate::domain::UserId>().map(|u| u.to_string()).map_err(|_| HtmlError::not_found())
}

/// Applies `patch` to the person `id` through the API's call.
async fn patch(app: &AppState, admin: &Admin, meta: &ClientMeta, id: &str, patch: AdminUserPatch) -> Result<(), HtmlError> {
    app.admin_update_user(admin.claims(), id, patch, meta).await?;
    Ok(())
}

/// `POST /admin/users/{id}/disable` (recent sign-in required).
pub async fn disable(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    if let Some(again) = admin.stale(&app, &format!("/admin/users/{id}")) {
        return Ok(again);
    }
    patch(&app, &admin, &meta, &id, AdminUserPatch { disabled: Some(true), roles: None }).await?;
    Ok(back_to(&id, "disabled"))
}

/// `POST /admin/users/{id}/enable`.
pub async fn enable(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    patch(&app, &admin, &meta, &id, AdminUserPatch { disabled: Some(false), roles: None }).await?;
    Ok(back_to(&id, "enabled"))
}

/// Grants or removes the admin role, keeping the person's other roles.
async fn set_admin(app: &AppState, admin: &Admin, meta: &ClientMeta, id: &str, grant: bool) -> Result<Response, HtmlError> {
    if let Some(again) = admin.stale(app, &format!("/admin/users/{id}")) {
        return Ok(again);
    }
    let user = app.person_detail(admin.claims(), id).await?.user;
    let mut roles: Vec<String> = user.roles.to_vec().into_iter().filter(|r| r != crate::domain::Role::ADMIN).collect();
    if grant {
        roles.push(crate::domain::Role::ADMIN.to_owned());
    }
    patch(app, admin, meta, id, AdminUserPatch { disabled: None, roles: Some(roles) }).await?;
    if !grant && user.id == admin.0.user.id {
        // Without the role, and with the session ended, the console is no place to return to.
        return Ok(see_other("/login"));
    }
    Ok(back_to(id, if grant { "granted" } else { "removed" }))
}

/// `POST /admin/users/{id}/grant-admin` (recent sign-in required).
pub async fn grant_admin(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    set_admin(&app, &admin, &meta, &id, true).await
}

/// `POST /admin/users/{id}/remove-admin` (recent sign-in required).
pub async fn remove_admin(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    set_admin(&app, &admin, &meta, &id, false).await
}

/// `POST /admin/users/{id}/end-sessions`: every session and token of the person (recent
/// sign-in required).
pub async fn end_sessions(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    if let Some(again) = admin.stale(&app, &format!("/admin/users/{id}")) {
        return Ok(again);
    }
    app.admin_end_sessions(admin.claims(), &id, &meta).await?;
    Ok(back_to(&id, "ended"))
}

/// `POST /admin/users/{id}/reset-mfa`: removes every second factor of the person, the API's
/// `DELETE /v1/users/{id}/mfa` (recent sign-in required).
pub async fn reset_mfa(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    if let Some(again) = admin.stale(&app, &format!("/admin/users/{id}")) {
        return Ok(again);
    }
    app.admin_reset_mfa(admin.claims(), &id, &meta).await?;
    Ok(back_to(&id, "mfa-reset"))
}

/// The form of a session's "End" button.
#[derive(Debug, Deserialize)]
pub struct EndForm {
    kind: String,
    id: String,
}

/// `POST /admin/users/{id}/sessions/end`: one session (recent sign-in required).
pub async fn end_session(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(form): VerifiedForm<EndForm>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    if let Some(again) = admin.stale(&app, &format!("/admin/users/{id}")) {
        return Ok(again);
    }
    let kind = match form.kind.as_str() {
        "browser" => SessionKind::Browser,
        "token" => SessionKind::Token,
        _ => return Err(HtmlError::bad_request("invalid_form", "The form was incomplete. Go back and try again.")),
    };
    app.admin_end_session(admin.claims(), &id, kind, &form.id, &meta).await?;
    Ok(back_to(&id, "session"))
}

/// The confirmation before deleting an account: it names the account, and the admin types
/// its email.
#[derive(Debug, Template)]
#[template(path = "admin/delete_user.html")]
pub struct DeletePage<'a> {
    layout: &'a Layout,
    nav: Nav,
    csrf: CsrfToken,
    id: String,
    email: String,
    error: Option<String>,
}

/// `GET /admin/users/{id}/delete` (recent sign-in required, so the form is not wasted).
pub async fn confirm_delete(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    if let Some(again) = admin.stale(&app, &format!("/admin/users/{id}/delete")) {
        return Ok(again);
    }
    let user = app.person_detail(admin.claims(), &id).await?.user;
    let (layout, nav) = chrome(&pages, &admin, "users");
    Ok(html(&DeletePage { layout, nav, csrf, id, email: user.email.as_str().to_owned(), error: None }))
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm_email: String,
}

/// `POST /admin/users/{id}/delete`: deletes the account when the typed email is its email
/// (recent sign-in required).
pub async fn delete(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    csrf: CsrfToken,
    Path(id): Path<String>,
    VerifiedForm(form): VerifiedForm<DeleteForm>,
) -> Result<Response, HtmlError> {
    let id = checked_id(&id)?;
    if let Some(again) = admin.stale(&app, &format!("/admin/users/{id}/delete")) {
        return Ok(again);
    }
    let user = app.person_detail(admin.claims(), &id).await?.user;
    if form.confirm_email.trim().to_lowercase() != user.email.normalized() {
        let (layout, nav) = chrome(&pages, &admin, "users");
        let page = DeletePage {
            layout,
            nav,
            csrf,
            id,
            email: user.email.as_str().to_owned(),
            error: Some("The email you typed is not this account's email. Nothing was deleted.".to_owned()),
        };
        return Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    app.admin_delete_user(admin.claims(), &id, &meta).await?;
    if user.id == admin.0.user.id {
        return Ok(to_sign_in("/admin"));
    }
    Ok(see_other("/admin/users?done=deleted"))
}
