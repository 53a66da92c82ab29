//! The account page: the signed-in person's profile and their sessions, each of which they
//! can sign out of. Later sections (password, email, second factors) go in their own
//! `<section>` of the same page.

use super::login::ReturnTo;
use super::session::{self, see_other};
use super::{CsrfToken, HtmlError, Layout, PageQuery, Pages, VerifiedForm, html};
use crate::domain::{BrowserSessionId, SessionId};
use crate::service::ClientMeta;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;
use time::OffsetDateTime;
use time::macros::format_description;

/// One row of the sessions list.
#[derive(Debug)]
pub struct SessionRow {
    /// `browser` or `token`: which kind the form ends.
    pub kind: &'static str,
    /// The session id.
    pub id: String,
    /// What signed in: "Chrome on Linux", or the application's client id.
    pub title: String,
    /// A line under it: where and when.
    pub detail: String,
    /// The browser this page is shown in.
    pub current: bool,
}

/// The account page.
#[derive(Debug, Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    /// The layout.
    pub layout: &'a Layout,
    /// The forms' token.
    pub csrf: CsrfToken,
    /// The account's email.
    pub email: String,
    /// Whether the person verified it.
    pub email_verified: bool,
    /// The account's username, if it has one.
    pub username: Option<String>,
    /// Browser sign-ins, the current one first.
    pub browser_sessions: Vec<SessionRow>,
    /// Sessions of tokens: applications and API sign-ins.
    pub token_sessions: Vec<SessionRow>,
    /// A confirmation to show (`role="status"`).
    pub notice: Option<&'static str>,
    /// Applications the person has allowed (`_account_apps.html`).
    pub allowed_apps: Vec<AllowedAppRow>,
    /// Two-step sign-in (`_account_factors.html`).
    pub factors: super::account_factors::FactorsSection,
    /// Passkeys (`_account_passkeys.html`); `None` when passkeys are off.
    pub passkeys: Option<super::passkeys::PasskeysSection>,
}

/// One application the person has allowed, with its "Withdraw" form.
#[derive(Debug)]
pub struct AllowedAppRow {
    /// The client id the form sends.
    pub client_id: String,
    /// The application's name.
    pub name: String,
    /// What it may do, in words.
    pub scopes: Vec<String>,
    /// "Allowed 30 Nov 2026, 17:05 UTC".
    pub detail: String,
}

/// The query of `GET /account`.
#[derive(Debug, Default, Deserialize)]
pub struct AccountQuery {
    /// Set after a session was signed out.
    #[serde(default)]
    ended: Option<String>,
    /// Set after an application's access was withdrawn.
    #[serde(default)]
    withdrawn: Option<String>,
    /// Set after a verification link was mailed.
    #[serde(default)]
    mailed: Option<String>,
    /// Set after a change of two-step sign-in.
    #[serde(default)]
    two_step: Option<String>,
    /// Set after a passkey was added or removed.
    #[serde(default)]
    passkey: Option<String>,
}

/// Where a browser without a session is sent.
fn to_sign_in() -> Response {
    see_other(&format!("/login?return_to={}", ReturnTo::DEFAULT.replace('/', "%2F")))
}

/// `GET /account`.
pub async fn page(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    csrf: CsrfToken,
    PageQuery(query): PageQuery<AccountQuery>,
) -> Result<Response, HtmlError> {
    let Some((current, user)) = session::current(&app, &pages, &headers).await? else {
        return Ok(to_sign_in());
    };
    let mut browser_sessions: Vec<SessionRow> = app
        .browser_sessions_of(user.id)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            kind: "browser",
            id: s.id.to_string(),
            title: describe_agent(s.user_agent.as_deref()).unwrap_or_else(|| "Unknown browser".to_owned()),
            detail: where_and_when(s.ip, "Signed in", s.created_at),
            current: s.id == current.id,
        })
        .collect();
    browser_sessions.sort_by_key(|row| !row.current);
    let token_sessions = app
        .token_sessions_of(user.id)
        .await?
        .into_iter()
        .map(|s| {
            let title = match (&s.client_id, describe_agent(s.user_agent.as_deref())) {
                (Some(client), _) => format!("Application “{client}”"),
                (None, Some(agent)) => format!("API sign-in from {agent}"),
                (None, None) => "API sign-in".to_owned(),
            };
            let mut detail = where_and_when(s.ip, "Started", s.created_at);
            if s.offline {
                detail.push_str(" · stays signed in after you sign out here");
            }
            SessionRow { kind: "token", id: s.id.to_string(), title, detail, current: false }
        })
        .collect();
    let allowed_apps = app
        .allowed_apps(user.id)
        .await?
        .into_iter()
        .map(|a| AllowedAppRow {
            client_id: a.client_id.as_str().to_owned(),
            name: a.client_name,
            scopes: a.scopes,
            detail: where_and_when(None, "Allowed", a.granted_at),
        })
        .collect();
    let factors = super::account_factors::FactorsSection::of(&app, user.id).await?;
    let passkeys = super::passkeys::PasskeysSection::of(&app, user.id).await?;
    let notice = if let Some(notice) = super::account_factors::notice(query.two_step.as_deref()) {
        Some(notice)
    } else if let Some(notice) = super::passkeys::notice(query.passkey.as_deref()) {
        Some(notice)
    } else if query.withdrawn.is_some() {
        Some("The application's access was withdrawn and its sessions ended.")
    } else if query.mailed.is_some() {
        Some("A new link is on its way to your address.")
    } else {
        query.ended.is_some().then_some("The session was signed out.")
    };
    let page = AccountPage {
        layout: &pages.layout,
        csrf,
        email: user.email.as_str().to_owned(),
        email_verified: user.email_verified,
        username: user.username.as_ref().map(|u| u.as_str().to_owned()),
        browser_sessions,
        token_sessions,
        notice,
        allowed_apps,
        factors,
        passkeys,
    };
    Ok(html(&page))
}

/// The form of each session's "Sign out" button.
#[derive(Debug, Deserialize)]
pub struct EndForm {
    kind: String,
    id: String,
}

/// `POST /account/sessions/end`: signs one of the person's sessions out. Ending the current
/// browser session signs this browser out.
pub async fn end_session(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(form): VerifiedForm<EndForm>,
) -> Result<Response, HtmlError> {
    let Some((current, user)) = session::current(&app, &pages, &headers).await? else {
        return Ok(to_sign_in());
    };
    let gone = || HtmlError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "That session has already ended.");
    match form.kind.as_str() {
        "browser" => {
            let id: BrowserSessionId = form.id.parse().map_err(|_| gone())?;
            app.end_browser_session(user.id, id, &meta).await.map_err(|_| gone())?;
            if id == current.id {
                let mut response = see_other("/login");
                session::signed_out(&pages, &mut response)?;
                return Ok(response);
            }
        }
        "token" => {
            let id: SessionId = form.id.parse().map_err(|_| gone())?;
            match app.end_token_session_of(user.id, id, &meta).await {
                Ok(()) => {}
                Err(crate::service::Error::NotFound(_)) => return Err(gone()),
                Err(e) => return Err(e.into()),
            }
        }
        _ => return Err(HtmlError::bad_request("invalid_form", "The form was incomplete. Go back and try again.")),
    }
    Ok(see_other("/account?ended=1"))
}

/// The form of each allowed application's "Withdraw" button.
#[derive(Debug, Deserialize)]
pub struct WithdrawForm {
    client_id: String,
}

/// `POST /account/apps/withdraw`: withdraws what the person allowed an application, and
/// ends the sessions it holds for them.
pub async fn withdraw_app(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(form): VerifiedForm<WithdrawForm>,
) -> Result<Response, HtmlError> {
    let Some((_, user)) = session::current(&app, &pages, &headers).await? else {
        return Ok(to_sign_in());
    };
    match app.withdraw_consent(user.id, &form.client_id, &meta).await {
        Ok(_) => Ok(see_other("/account?withdrawn=1")),
        Err(crate::service::Error::NotFound(_)) => {
            Err(HtmlError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "That application no longer has your permission."))
        }
        Err(e) => Err(e.into()),
    }
}

/// "Signed in 30 Nov 2026, 17:05 UTC from 192.0.2.1".
pub(crate) fn where_and_when(ip: Option<std::net::IpAddr>, verb: &str, at: OffsetDateTime) -> String {
    let when = at
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!("[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"))
        .unwrap_or_default();
    match ip {
        Some(ip) => format!("{verb} {when} from {ip}"),
        None => format!("{verb} {when}"),
    }
}

/// A short name for a `User-Agent`: "Firefox on Windows", or the start of it when it names
/// no browser or system Tessera knows; `None` without one.
pub(crate) fn describe_agent(agent: Option<&str>) -> Option<String> {
    let ua = agent.map(str::trim).filter(|ua| !ua.is_empty())?;
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(mark, _)| ua.contains(mark))
    .map(|(_, name)| *name);
    Some(match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => ua.chars().take(40).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_read_as_a_browser_on_a_system() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(describe_agent(Some(chrome)).as_deref(), Some("Chrome on Linux"));
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0";
        assert_eq!(describe_agent(Some(edge)).as_deref(), Some("Edge on Windows"));
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_agent(Some(safari)).as_deref(), Some("Safari on iOS"));
        assert_eq!(describe_agent(Some("curl/8.5.0")).as_deref(), Some("curl/8.5.0"));
        assert_eq!(describe_agent(Some(" ")), None);
        assert_eq!(describe_agent(None), None);
    }
}
