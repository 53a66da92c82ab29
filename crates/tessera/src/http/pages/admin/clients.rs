//! `/admin/clients`: the clients, with the grants each may use; creating one with every field
//! `POST /v1/clients` takes (and the browser-sign-in ones), editing what `PATCH` may change,
//! rotating the secret (shown once, with a copy button) and deleting. Each action is the
//! API's service call with the signed-in admin as actor.

use super::{Admin, Nav, chrome, notice};
use crate::http::clients::ClientView;
use crate::http::pages::session::see_other;
use crate::http::pages::{CsrfToken, HtmlError, Layout, PageQuery, Pages, VerifiedForm, html, html_response};
use crate::service::{ClientMeta, ClientSpec, ClientUpdate, Error};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::sync::Arc;

/// The clients list.
#[derive(Debug, Template)]
#[template(path = "admin/clients.html")]
pub struct ClientsPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    clients: Vec<ClientView>,
    notice: Option<&'static str>,
}

/// The query of pages that may follow an action.
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /admin/clients`.
pub async fn list(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    PageQuery(query): PageQuery<DoneQuery>,
) -> Result<Response, HtmlError> {
    let clients = app.list_clients(admin.claims()).await?.iter().map(|c| ClientView::new(c, app.client_audiences(c))).collect();
    let (layout, nav) = chrome(&pages, &admin, "clients");
    Ok(html(&ClientsPage { layout, nav, clients, notice: notice(query.done.as_deref()) }))
}

/// The fields of the new-client form, as typed (shown again after an error).
#[derive(Debug, Default, Deserialize)]
pub struct ClientForm {
    #[serde(default)]
    name: String,
    /// Space-separated.
    #[serde(default)]
    scopes: String,
    /// Space-separated.
    #[serde(default)]
    roles: String,
    /// Space-separated, the default first.
    #[serde(default)]
    audiences: String,
    /// One per line.
    #[serde(default)]
    redirect_uris: String,
    /// One per line.
    #[serde(default)]
    post_logout_redirect_uris: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    public: Option<String>,
    /// A checkbox: present when ticked.
    #[serde(default)]
    first_party: Option<String>,
}

/// The new-client form.
#[derive(Debug, Template)]
#[template(path = "admin/client_new.html")]
pub struct NewClientPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    csrf: CsrfToken,
    form: ClientForm,
    error: Option<String>,
}

/// `GET /admin/clients/new`.
pub async fn new_form(State(pages): State<Arc<Pages>>, admin: Admin, csrf: CsrfToken) -> Result<Response, HtmlError> {
    let (layout, nav) = chrome(&pages, &admin, "clients");
    Ok(html(&NewClientPage { layout, nav, csrf, form: ClientForm::default(), error: None }))
}

/// A client's secret, shown once: after creation or rotation.
#[derive(Debug, Template)]
#[template(path = "admin/client_secret.html")]
pub struct SecretPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    client_id: String,
    name: String,
    secret: Option<String>,
    created: bool,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// Whether a service error is about what was typed (shown on the form) rather than a failure.
fn form_error(e: &Error) -> Option<String> {
    match e {
        Error::Validation(m) | Error::InvalidRedirectUri(m) => Some(super::super::error::sentence(m)),
        Error::PublicClient | Error::Conflict(_) => Some(super::super::error::sentence(&e.to_string())),
        _ => None,
    }
}

/// `POST /admin/clients`: creates the client and shows its secret once.
pub async fn create(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    csrf: CsrfToken,
    VerifiedForm(form): VerifiedForm<ClientForm>,
) -> Result<Response, HtmlError> {
    let spec = ClientSpec {
        name: form.name.clone(),
        scopes: words(&form.scopes),
        roles: words(&form.roles),
        audiences: words(&form.audiences),
        redirect_uris: lines(&form.redirect_uris),
        post_logout_redirect_uris: lines(&form.post_logout_redirect_uris),
        public: form.public.is_some(),
        first_party: form.first_party.is_some(),
    };
    match app.create_client(admin.claims(), spec, &meta).await {
        Ok(created) => {
            let (layout, nav) = chrome(&pages, &admin, "clients");
            Ok(html(&SecretPage {
                layout,
                nav,
                client_id: created.client.id.to_string(),
                name: created.client.name.to_string(),
                secret: created.secret.as_ref().map(|s| s.expose().to_owned()),
                created: true,
            }))
        }
        Err(e) => match form_error(&e) {
            Some(error) => {
                let (layout, nav) = chrome(&pages, &admin, "clients");
                Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, &NewClientPage { layout, nav, csrf, form, error: Some(error) }))
            }
            None => Err(e.into()),
        },
    }
}

/// A client's page: what it is, the edit form, rotation and deletion.
#[derive(Debug, Template)]
#[template(path = "admin/client.html")]
pub struct ClientPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    csrf: CsrfToken,
    client: ClientView,
    created: String,
    form: ClientForm,
    error: Option<String>,
    notice: Option<&'static str>,
}

/// The edit form as the client stands.
fn form_of(c: &ClientView) -> ClientForm {
    ClientForm {
        name: c.name.clone(),
        scopes: c.scopes.join(" "),
        roles: c.roles.join(" "),
        audiences: c.audiences.join(" "),
        redirect_uris: c.redirect_uris.join("\n"),
        post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
        public: c.public.then(String::new),
        first_party: c.first_party.then(String::new),
    }
}

/// `GET /admin/clients/{id}`.
pub async fn page(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    csrf: CsrfToken,
    Path(id): Path<String>,
    PageQuery(query): PageQuery<DoneQuery>,
) -> Result<Response, HtmlError> {
    let client = app.get_client(admin.claims(), &id).await?;
    let view = ClientView::new(&client, app.client_audiences(&client));
    let (layout, nav) = chrome(&pages, &admin, "clients");
    let form = form_of(&view);
    Ok(html(&ClientPage {
        layout,
        nav,
        csrf,
        created: super::when(view.created_at),
        client: view,
        form,
        error: None,
        notice: notice(query.done.as_deref()),
    }))
}

/// `POST /admin/clients/{id}`: saves what changed (`PATCH /v1/clients/{id}`'s call; a change
/// of scopes revokes the client's tokens, as there).
pub async fn update(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    csrf: CsrfToken,
    Path(id): Path<String>,
    VerifiedForm(form): VerifiedForm<ClientForm>,
) -> Result<Response, HtmlError> {
    let before = app.get_client(admin.claims(), &id).await?;
    let changed = |new: Vec<String>, old: Vec<String>| (new != old).then_some(new);
    let update = ClientUpdate {
        name: (form.name.trim() != before.name.to_string()).then(|| form.name.clone()),
        scopes: changed(words(&form.scopes), before.scopes.to_vec()),
        redirect_uris: changed(lines(&form.redirect_uris), before.redirect_uris.to_vec()),
        post_logout_redirect_uris: changed(lines(&form.post_logout_redirect_uris), before.post_logout_redirect_uris.to_vec()),
        first_party: (form.first_party.is_some() != before.first_party).then_some(form.first_party.is_some()),
    };
    match app.update_client(admin.claims(), &id, update, &meta).await {
        Ok(client) => Ok(see_other(&format!("/admin/clients/{}?done=updated", client.id))),
        Err(e) => match form_error(&e) {
            Some(error) => {
                let view = ClientView::new(&before, app.client_audiences(&before));
                let (layout, nav) = chrome(&pages, &admin, "clients");
                let page = ClientPage {
                    layout,
                    nav,
                    csrf,
                    created: super::when(view.created_at),
                    form: ClientForm { public: view.public.then(String::new), audiences: view.audiences.join(" "), ..form },
                    client: view,
                    error: Some(error),
                    notice: None,
                };
                Ok(html_response(StatusCode::UNPROCESSABLE_ENTITY, &page))
            }
            None => Err(e.into()),
        },
    }
}

/// The form of a button that needs nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct ButtonForm {}

/// `POST /admin/clients/{id}/secret`: a new secret, shown once; the old one stops working
/// (recent sign-in required).
pub async fn rotate_secret(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let client = app.get_client(admin.claims(), &id).await?;
    if let Some(again) = admin.stale(&app, &format!("/admin/clients/{}", client.id)) {
        return Ok(again);
    }
    let (client_id, secret) = app.rotate_client_secret(admin.claims(), client.id.as_str(), &meta).await?;
    let (layout, nav) = chrome(&pages, &admin, "clients");
    Ok(html(&SecretPage {
        layout,
        nav,
        client_id: client_id.to_string(),
        name: client.name.to_string(),
        secret: Some(secret.expose().to_owned()),
        created: false,
    }))
}

/// The confirmation before deleting a client, naming it.
#[derive(Debug, Template)]
#[template(path = "admin/delete_client.html")]
pub struct DeleteClientPage<'a> {
    layout: &'a Layout,
    nav: Nav,
    csrf: CsrfToken,
    client_id: String,
    name: String,
}

/// `GET /admin/clients/{id}/delete` (recent sign-in required).
pub async fn confirm_delete(
    State(pages): State<Arc<Pages>>,
    State(app): State<AppState>,
    admin: Admin,
    csrf: CsrfToken,
    Path(id): Path<String>,
) -> Result<Response, HtmlError> {
    let client = app.get_client(admin.claims(), &id).await?;
    if let Some(again) = admin.stale(&app, &format!("/admin/clients/{}/delete", client.id)) {
        return Ok(again);
    }
    let (layout, nav) = chrome(&pages, &admin, "clients");
    Ok(html(&DeleteClientPage { layout, nav, csrf, client_id: client.id.to_string(), name: client.name.to_string() }))
}

/// `POST /admin/clients/{id}/delete`: its tokens stop working (recent sign-in required).
pub async fn delete(
    State(app): State<AppState>,
    admin: Admin,
    meta: ClientMeta,
    Path(id): Path<String>,
    VerifiedForm(_): VerifiedForm<ButtonForm>,
) -> Result<Response, HtmlError> {
    let client = app.get_client(admin.claims(), &id).await?;
    if let Some(again) = admin.stale(&app, &format!("/admin/clients/{}/delete", client.id)) {
        return Ok(again);
    }
    app.delete_client(admin.claims(), client.id.as_str(), &meta).await?;
    Ok(see_other("/admin/clients?done=client-deleted"))
}
