//! `/admin`: the console for people with role `admin`, signed in through `/login`.
//!
//! Every page and every action takes [`Admin`]: a browser without a session is sent to sign
//! in and brought back; a signed-in person without the admin role gets the 403 page, for a
//! page and for an action alike. Each action then calls the same service method as the API
//! handler that does the same thing, with the admin as caller (see
//! [`crate::service::ConsoleAdmin`]), so the rules, the revocations and the audit trail are
//! the API's. Destructive actions first check the fresh rule ([`Admin::stale`]): a sign-in
//! older than `TESSERA_FRESH_MAX_AGE` is sent to sign in again and back to the page it came
//! from.
//!
//! The pages: [`overview`], [`users`], [`clients`], [`keys`], [`audit`]. They extend
//! `templates/admin/layout.html` (the console's navigation, its stylesheet and script).

pub mod audit;
pub mod clients;
pub mod keys;
pub mod overview;
pub mod users;

use super::session::{self, see_other};
use super::{HtmlError, Layout, Pages};
use crate::domain::{ClientId, UserId};
use crate::service::{ConsoleAdmin, Error};
use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use time::OffsetDateTime;
use time::macros::format_description;

/// The console's routes (inside the page router, so they get the CSRF cookie layer).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview::page))
        .route("/admin/users", get(users::list))
        .route("/admin/users/{id}", get(users::person))
        .route("/admin/users/{id}/disable", post(users::disable))
        .route("/admin/users/{id}/enable", post(users::enable))
        .route("/admin/users/{id}/grant-admin", post(users::grant_admin))
        .route("/admin/users/{id}/remove-admin", post(users::remove_admin))
        .route("/admin/users/{id}/end-sessions", post(users::end_sessions))
        .route("/admin/users/{id}/sessions/end", post(users::end_session))
        .route("/admin/users/{id}/reset-mfa", post(users::reset_mfa))
        .route("/admin/users/{id}/delete", get(users::confirm_delete).post(users::delete))
        .route("/admin/clients", get(clients::list).post(clients::create))
        .route("/admin/clients/new", get(clients::new_form))
        .route("/admin/clients/{id}", get(clients::page).post(clients::update))
        .route("/admin/clients/{id}/secret", post(clients::rotate_secret))
        .route("/admin/clients/{id}/delete", get(clients::confirm_delete).post(clients::delete))
        .route("/admin/keys", get(keys::page))
        .route("/admin/keys/rotate", post(keys::rotate))
        .route("/admin/audit", get(audit::page))
}

/// The signed-in admin a console request comes from.
#[derive(Debug)]
pub struct Admin(pub ConsoleAdmin);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let pages = Arc::<Pages>::from_ref(state);
        let Some((browser, user)) = session::current(state, &pages, &parts.headers).await.map_err(IntoResponse::into_response)? else {
            // A page comes back to itself; an action (a POST cannot be replayed) to the overview.
            let back = if parts.method == Method::GET { parts.uri.path_and_query().map_or("/admin", |p| p.as_str()) } else { "/admin" };
            return Err(to_sign_in(back));
        };
        match state.console_admin(browser, user) {
            Ok(admin) => Ok(Admin(admin)),
            Err(Error::Forbidden(_)) => {
                Err(HtmlError::forbidden("The console is for administrators. Your account does not have the admin role.").into_response())
            }
            Err(e) => Err(HtmlError::from(e).into_response()),
        }
    }
}

impl Admin {
    /// `None` when the admin signed in recently enough for a destructive action; otherwise the
    /// answer that sends them to sign in again and back to `back` (the page the action is on).
    pub fn stale(&self, app: &AppState, back: &str) -> Option<Response> {
        app.console_require_fresh(&self.0).err().map(|_| to_sign_in(back))
    }

    /// The caller for the service's administration calls.
    pub fn claims(&self) -> &tessera_verify::Claims {
        self.0.claims()
    }
}

/// `303` to the sign-in page, which comes back to `back` afterwards.
pub fn to_sign_in(back: &str) -> Response {
    let query = serde_urlencoded::to_string([("return_to", back)]).unwrap_or_default();
    see_other(&format!("/login?{query}"))
}

/// What the console's layout shows around every page.
#[derive(Debug)]
pub struct Nav {
    /// Which section is current: `overview`, `users`, `clients`, `keys` or `audit`.
    pub section: &'static str,
    /// The signed-in admin's email.
    pub admin_email: String,
    /// The console's stylesheet.
    pub stylesheet: String,
    /// The console's script.
    pub script: String,
}

impl Nav {
    /// The navigation with `section` current.
    pub fn new(pages: &Pages, admin: &Admin, section: &'static str) -> Nav {
        Nav {
            section,
            admin_email: admin.0.user.email.as_str().to_owned(),
            stylesheet: pages.layout.admin_stylesheet.clone(),
            script: pages.layout.admin_script.clone(),
        }
    }

    /// `aria-current="page"` for the current section's link.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section { "page" } else { "false" }
    }
}

/// The layout and the navigation, which every console page holds.
pub fn chrome<'a>(pages: &'a Pages, admin: &Admin, section: &'static str) -> (&'a Layout, Nav) {
    (&pages.layout, Nav::new(pages, admin, section))
}

/// "2026-11-30 17:05:09 UTC".
pub fn when(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC).format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).unwrap_or_default()
}

/// The console page an audit event's actor leads to: a person's page for a user id, a
/// client's page for a client id.
pub fn actor_link(id: &str) -> Option<String> {
    if id.parse::<UserId>().is_ok() {
        return Some(format!("/admin/users/{id}"));
    }
    match ClientId::parse(id) {
        Some(client) if client.as_str() != ClientId::FIRST_PARTY => Some(format!("/admin/clients/{}", client.as_str())),
        _ => None,
    }
}

/// The console page an audit event's subject leads to: a person's page for a user id, a
/// client's page for the subject of a `client.*` event (other subjects, such as the key id of
/// `key.rotated`, have no page).
pub fn subject_link(kind: &str, id: &str) -> Option<String> {
    if id.parse::<UserId>().is_ok() {
        return Some(format!("/admin/users/{id}"));
    }
    if kind.starts_with("client.") { actor_link(id) } else { None }
}

/// A notice shown after an action, by the `done` query value the action redirected with.
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "disabled" => "The account is disabled and every token it held is revoked.",
        "enabled" => "The account is enabled. Its owner can sign in again.",
        "granted" => "The account has the admin role now. Its tokens were revoked, so it signs in again with the role.",
        "removed" => "The admin role is removed. The account's tokens were revoked.",
        "ended" => "Every session of the account is ended and its tokens are revoked.",
        "session" => "The session is ended.",
        "mfa-reset" => {
            "Every second factor of the account is removed. Its owner signs in with their password alone and can set up two-step sign-in again."
        }
        "deleted" => "The account is deleted.",
        "updated" => "The client is saved.",
        "client-deleted" => "The client is deleted. Its tokens stop working.",
        "rotated" => "The keys are rotated. New tokens are signed with the new active key.",
        "scheduled" => "A key of the new algorithm is published as the next key. It starts signing once verifiers' caches hold it.",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_actors_and_subjects_link_to_the_person_or_the_client() {
        let id = UserId::new_time_ordered().to_string();
        assert_eq!(actor_link(&id), Some(format!("/admin/users/{id}")));
        assert_eq!(subject_link("user.disabled", &id), Some(format!("/admin/users/{id}")));
        assert_eq!(actor_link("svc_abc"), Some("/admin/clients/svc_abc".to_owned()));
        assert_eq!(subject_link("client.created", "svc_abc"), Some("/admin/clients/svc_abc".to_owned()));
        assert_eq!(subject_link("key.rotated", "0JKwr64ktZGZFY0quC"), None, "a key id is no client");
        assert_eq!(actor_link("tessera"), None);
        assert_eq!(actor_link("../etc"), None);
        assert!(notice(Some("disabled")).is_some());
        assert_eq!(notice(Some("<script>")), None);
    }
}
