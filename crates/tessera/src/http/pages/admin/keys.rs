//! `/admin/keys`: the signing-key ring (next, active, retiring) and the two actions of
//! `POST /v1/keys/rotate`: rotate, and change the algorithm (the same service call, with the
//! signed-in admin as actor; both need a recent sign-in).

use super::{Admin, Nav, chrome, notice, when};
use crate::domain::keys::SigningAlg;
use crate::http::pages::session::see_other;
use crate::http::pages::{CsrfToken, HtmlError, Layout, PageQuery, Pages, VerifiedForm, html};
use crate::service::{ClientMeta, Error};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// One key of the ring.
#[derive(Debug)]
pub struct KeyRow {
    kid: String,
    alg: &'static str,
    status: &'static str,
    created: String,
}

/// The keys page.
#[derive(Debug, Template)]
#[template(path = "admin/keys.html")]
pub struct KeysPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    csrf: CsrfToken,
    keys: Vec<KeyRow>,
    current_alg: &'static str,
    algorithms: Vec<&'static str>,
    notice: Option<&'static str>,
}

/// The query after an action.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// The algorithms offered: the asymmetric ones, and HS256 when a secret is configured.
fn algorithms(app: &AppState) -> Vec<&'static str> {
    let mut algs = vec!["ES256", "RS256", "Ed25519", "EdDSA"];
    if app.settings().hs256_secret.is_some() {
        algs.push("HS256");
    }
    algs
}

/// `GET /admin/keys`.
pub async fn page(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    csrf: CsrfToken,
    PageQuery(query): PageQuery<DoneQuery>,
) -> Result<Response, HtmlError> {
    let mut keys = app.admin_list_keys(admin.claims())?;
    keys.sort_by_key(|k| (k.status.as_str() != "next", k.status.as_str() != "active", std::cmp::Reverse(k.created_at)));
    let current_alg = keys.iter().find(|k| k.status.as_str() == "active").map_or(app.settings().signing_alg, |k| k.alg).as_str();
    let keys = keys
        .into_iter()
        .map(|k| KeyRow { kid: k.kid, alg: k.alg.as_str(), status: k.status.as_str(), created: when(k.created_at) })
        .collect();
    let (layout, nav) = chrome(&pages, &admin, "keys");
    Ok(html(&KeysPage { layout, nav, csrf, keys, current_alg, algorithms: algorithms(&app), notice: notice(query.done.as_deref()) }))
}

/// The rotate form: with `alg`, a change of algorithm.
#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    alg: Option<String>,
}

/// `POST /admin/keys/rotate` (recent sign-in required).
pub async fn rotate(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    VerifiedForm(form): VerifiedForm<RotateForm>,
) -> Result<Response, HtmlError> {
    if let Some(again) = admin.stale(&app, "/admin/keys") {
        return Ok(again);
    }
    let alg = form
        .alg
        .filter(|a| !a.is_empty())
        .map(|a| a.parse::<SigningAlg>().map_err(|e| Error::Validation(format!("alg: {e}"))))
        .transpose()?;
    let rotated = app.admin_rotate_keys(admin.claims(), alg, &meta).await?;
    Ok(see_other(if rotated.active_from.is_some() { "/admin/keys?done=scheduled" } else { "/admin/keys?done=rotated" }))
}
