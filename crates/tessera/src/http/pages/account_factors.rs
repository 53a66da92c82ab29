//! The "Two-step sign-in" section of `/account` (`templates/_account_factors.html`) and its
//! pages: turning TOTP on (the secret, its `otpauth://` URI and a QR code drawn here as SVG,
//! then a code to confirm it), the recovery codes shown once, new recovery codes, and
//! turning TOTP off.
//!
//! Each action is the API's service call with the browser session's person as caller
//! ([`AppState::browser_caller`]), so the API's rules hold: starting an enrolment, new
//! recovery codes and turning TOTP off need a sign-in within `TESSERA_FRESH_MAX_AGE`; an
//! older one is sent to sign in again and back to `/account`, as the console does.

use super::admin::to_sign_in;
use super::session::{self, see_other};
use super::{CsrfToken, HtmlError, Layout, Pages, VerifiedForm, html, html_response};
use crate::domain::{User, UserId};
use crate::service::{ClientMeta, Error};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;
use tessera_verify::Claims;

/// Where this section sends a browser: back to it on `/account`.
const SECTION: &str = "/account#two-step-title";

/// What the section of `/account` shows.
#[derive(Debug, Default)]
pub struct FactorsSection {
    /// TOTP is on.
    pub totp: bool,
    /// An enrolment was started and not confirmed.
    pub pending: bool,
    /// Unused recovery codes.
    pub recovery_codes: i64,
}

impl FactorsSection {
    /// The section for `user`.
    pub async fn of(app: &AppState, user: UserId) -> Result<FactorsSection, HtmlError> {
        let factors = app.second_factors(user).await?;
        let pending = !factors.totp && app.has_pending_totp(user).await?;
        Ok(FactorsSection { totp: factors.totp, pending, recovery_codes: factors.recovery_codes })
    }
}

/// The notice `/account` shows after one of this section's actions (`?two_step=...`).
pub fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "off" => "Two-step sign-in is off. Signing in needs only your password now.",
        _ => return None,
    })
}

/// The page that shows a pending TOTP secret and asks for its first code.
#[derive(Debug, Template)]
#[template(path = "account_totp.html")]
pub struct TotpSetupPage<'a> {
    layout: &'a Layout,
    csrf: CsrfToken,
    /// The base32 secret in groups of four.
    secret: String,
    otpauth_uri: String,
    /// The QR code of `otpauth_uri`: SVG markup made of numbers only.
    qr_svg: String,
    error: Option<String>,
    code_error: Option<String>,
}

/// The page that shows new recovery codes, this once.
#[derive(Debug, Template)]
#[template(path = "account_recovery_codes.html")]
pub struct RecoveryCodesPage<'a> {
    layout: &'a Layout,
    /// Whether TOTP was just turned on (else the codes were renewed).
    enrolled: bool,
    codes: Vec<String>,
}

/// The signed-in person and their caller, or the answer that sends the browser to sign in.
async fn caller(app: &AppState, pages: &Pages, headers: &HeaderMap) -> Result<Result<(User, Claims), Response>, HtmlError> {
    let Some((browser, user)) = session::current(app, pages, headers).await? else {
        return Ok(Err(to_sign_in("/account")));
    };
    let claims = app.browser_caller(&browser, &user);
    Ok(Ok((user, claims)))
}

/// The form of a button that needs nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct ButtonForm {}

/// `POST /account/totp`: starts an enrolment (recent sign-in required) and shows it.
pub async fn start(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let (_, claims) = match caller(&app, &pages, &headers).await? {
        Ok(caller) => caller,
        Err(again) => return Ok(again),
    };
    match app.enrol_totp(&claims, &meta).await {
        Ok(_) => Ok(see_other("/account/totp")),
        Err(Error::FreshTokenRequired) => Ok(to_sign_in("/account")),
        Err(Error::Conflict(_)) => Ok(see_other(SECTION)),
        Err(e) => Err(e.into()),
    }
}

/// `GET /account/totp`: the pending enrolment, or back to `/account` when there is none.
pub async fn setup(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    csrf: CsrfToken,
) -> Result<Response, HtmlError> {
    let (_, claims) = match caller(&app, &pages, &headers).await? {
        Ok(caller) => caller,
        Err(again) => return Ok(again),
    };
    setup_page(&app, &pages, &claims, csrf, StatusCode::OK, None, None).await
}

/// The setup page of the caller's pending enrolment with `status` and errors.
async fn setup_page(
    app: &AppState,
    pages: &Pages,
    claims: &Claims,
    csrf: CsrfToken,
    status: StatusCode,
    error: Option<String>,
    code_error: Option<String>,
) -> Result<Response, HtmlError> {
    let Some(enrolment) = app.pending_totp(claims).await? else {
        return Ok(see_other(SECTION));
    };
    let qr_svg = qr_svg(&enrolment.otpauth_uri).ok_or_else(|| {
        tracing::error!("the otpauth URI does not fit a QR code");
        HtmlError::internal()
    })?;
    let page = TotpSetupPage {
        layout: &pages.layout,
        csrf,
        secret: grouped(&enrolment.secret),
        otpauth_uri: enrolment.otpauth_uri,
        qr_svg,
        error,
        code_error,
    };
    Ok(html_response(status, &page))
}

/// The confirmation form.
#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
}

/// `POST /account/totp/confirm`: turns TOTP on with its first code and shows the recovery
/// codes; a wrong code shows the setup page again with the error.
pub async fn confirm(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<ConfirmForm>,
) -> Result<Response, HtmlError> {
    let (_, claims) = match caller(&app, &pages, &headers).await? {
        Ok(caller) => caller,
        Err(again) => return Ok(again),
    };
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() {
        let missing = Some("Enter the 6-digit code your authenticator app shows.".to_owned());
        return setup_page(&app, &pages, &claims, csrf, StatusCode::UNPROCESSABLE_ENTITY, None, missing).await;
    }
    match app.confirm_totp(&claims, &code, &meta).await {
        Ok(codes) => Ok(html(&RecoveryCodesPage { layout: &pages.layout, enrolled: true, codes })),
        Err(Error::InvalidCode) => {
            let wrong = Some("That code is wrong or has expired. Enter the code your authenticator app shows now.".to_owned());
            setup_page(&app, &pages, &claims, csrf, StatusCode::UNAUTHORIZED, None, wrong).await
        }
        Err(Error::Conflict(_)) => Ok(see_other(SECTION)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /account/recovery-codes`: ten new recovery codes, the old ones void (recent sign-in
/// required).
pub async fn regenerate(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let (_, claims) = match caller(&app, &pages, &headers).await? {
        Ok(caller) => caller,
        Err(again) => return Ok(again),
    };
    match app.regenerate_recovery_codes(&claims, &meta).await {
        Ok(codes) => Ok(html(&RecoveryCodesPage { layout: &pages.layout, enrolled: false, codes })),
        Err(Error::FreshTokenRequired) => Ok(to_sign_in("/account")),
        Err(Error::Conflict(_)) => Ok(see_other(SECTION)),
        Err(e) => Err(e.into()),
    }
}

/// `POST /account/totp/remove`: turns TOTP off (recent sign-in required).
pub async fn remove(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let (_, claims) = match caller(&app, &pages, &headers).await? {
        Ok(caller) => caller,
        Err(again) => return Ok(again),
    };
    match app.remove_totp(&claims, &meta).await {
        Ok(()) | Err(Error::NotFound(_)) => Ok(see_other("/account?two_step=off")),
        Err(Error::FreshTokenRequired) => Ok(to_sign_in("/account")),
        Err(e) => Err(e.into()),
    }
}

/// A base32 secret in groups of four characters, easier to type.
fn grouped(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// Modules of white around the code, as the QR specification asks.
const QUIET_ZONE: usize = 4;

/// The QR code of `text` as SVG markup: one path of the dark modules on a white square, in
/// a view box of modules (scaled by the `width`/`height` attributes, no style attribute:
/// the pages' CSP forbids inline style). Only numbers go into it, so it is safe to embed.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let size = width + 2 * QUIET_ZONE;
    let mut path = String::new();
    for (i, color) in code.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = (i % width + QUIET_ZONE, i / width + QUIET_ZONE);
            write!(path, "M{x} {y}h1v1h-1z").ok()?;
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"qr\" viewBox=\"0 0 {size} {size}\" width=\"232\" height=\"232\" \
         shape-rendering=\"crispEdges\" role=\"img\" aria-labelledby=\"qr-title\"><title id=\"qr-title\">QR code of the setup \
         link for your authenticator app</title><rect width=\"{size}\" height=\"{size}\" fill=\"#ffffff\"/><path d=\"{path}\" \
         fill=\"#000000\"/></svg>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_svg_of_numbers_with_a_quiet_zone_and_no_style() {
        let svg = qr_svg("otpauth://totp/Tessera:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Tessera").unwrap_or_default();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
        assert!(!svg.contains("style"), "the CSP forbids inline style");
        assert!(!svg.contains("otpauth"), "the URI is drawn, not embedded");
        // Version 4 or more for a URI this long (33+ modules), plus 4 on each side.
        let size: usize = svg.split("viewBox=\"0 0 ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
        assert!(size >= 33 + 8 && (size - 8 - 17).is_multiple_of(4), "{size} modules is no QR code size with its quiet zone");
        // The finder pattern's top-left module is dark.
        assert!(svg.contains("M4 4h1v1h-1z"));
    }

    #[test]
    fn a_secret_reads_in_groups_of_four() {
        assert_eq!(grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
        assert_eq!(grouped("ABCDEF"), "ABCD EF");
    }
}
