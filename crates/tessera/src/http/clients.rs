//! `/v1/clients`: the admin API for service clients.

use super::error::{ApiError, Conflict};
use super::extract::{Bearer, Json, Path};
use crate::domain::Client;
use crate::service::{ClientSpec, ClientUpdate};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

/// A client as admins see it; never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    /// The resources its tokens may name in `aud` (RFC 8707), the default first.
    pub audiences: Vec<String>,
    /// Where the authorization endpoint may send people back with a code.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send people afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    /// A single-page or native app: no secret; authenticates by `client_id` alone.
    pub public: bool,
    /// People are not asked for consent.
    pub first_party: bool,
    /// The grants it may use: `client_credentials` (confidential clients),
    /// `authorization_code` and `refresh_token` (clients with redirect URIs).
    pub grant_types: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl ClientView {
    /// The view of `c`, whose effective audiences are `audiences`.
    pub fn new(c: &Client, audiences: &[String]) -> Self {
        ClientView {
            client_id: c.id.to_string(),
            name: c.name.to_string(),
            scopes: c.scopes.to_vec(),
            roles: c.roles.to_vec(),
            audiences: audiences.to_vec(),
            redirect_uris: c.redirect_uris.to_vec(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.to_vec(),
            public: c.public,
            first_party: c.first_party,
            grant_types: c.grant_types().into_iter().map(str::to_owned).collect(),
            created_at: c.created_at,
        }
    }
}

/// A client just created, with its secret, which is shown only here (and by `tessera clients
/// create`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NewClientView {
    #[serde(flatten)]
    pub client: ClientView,
    /// The secret, shown only here; a public client has none (and this field is absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub client_secret: Option<String>,
}

/// `GET /v1/clients`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
}

/// A client's new secret; the old one stops working.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientSecret {
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// Scopes the client may be granted.
    #[serde(default)]
    scopes: Vec<String>,
    /// Roles its tokens carry, e.g. `admin`.
    #[serde(default)]
    roles: Vec<String>,
    /// Resources (RFC 8707) its tokens may name in `aud`, the default first (default: the
    /// configured audience).
    #[serde(default)]
    audiences: Vec<String>,
    /// Where the authorization endpoint may send people back: absolute, no fragment, `https`,
    /// or `http` on a loopback host, or (public clients) a private-use scheme such as
    /// `com.example.app:/cb` (RFC 8252); else `422 invalid_redirect_uri`.
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send people afterwards (same rules).
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// A single-page or native app: it gets no secret and authenticates by `client_id` alone.
    #[serde(default)]
    public: bool,
    /// People are not asked for consent.
    #[serde(default)]
    first_party: bool,
}

/// The fields `PATCH /v1/clients/{client_id}` may change; absent ones stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    /// New scopes; a change revokes the client's tokens and people's sessions with it.
    scopes: Option<Vec<String>>,
    /// Replaces the redirect URIs (rules as on creation).
    redirect_uris: Option<Vec<String>>,
    /// Replaces the post-logout redirect URIs.
    post_logout_redirect_uris: Option<Vec<String>>,
    first_party: Option<bool>,
}

/// Create a service client (admin)
#[utoipa::path(post, path = "/v1/clients", operation_id = "create_client", tag = "admin", security(("bearer" = [])),
    request_body = CreateBody,
    responses((status = 201, description = "Created; the secret is shown only here (a public client has none)", body = NewClientView)))]
pub async fn create(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, axum::Json<NewClientView>), ApiError> {
    let spec = ClientSpec {
        name: body.name,
        scopes: body.scopes,
        roles: body.roles,
        audiences: body.audiences,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        public: body.public,
        first_party: body.first_party,
    };
    let created = app.create_client(&claims, spec).await?;
    let client = ClientView::new(&created.client, app.client_audiences(&created.client));
    let client_secret = created.secret.as_ref().map(|s| s.expose().to_owned());
    Ok((StatusCode::CREATED, axum::Json(NewClientView { client, client_secret })))
}

/// Every service client (admin)
#[utoipa::path(get, path = "/v1/clients", operation_id = "list_clients", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "The clients, without secrets", body = ClientList)))]
pub async fn list(State(app): State<AppState>, Bearer(claims): Bearer) -> Result<axum::Json<ClientList>, ApiError> {
    let clients = app.list_clients(&claims).await?.iter().map(|c| ClientView::new(c, app.client_audiences(c))).collect();
    Ok(axum::Json(ClientList { clients }))
}

/// One service client (admin)
#[utoipa::path(get, path = "/v1/clients/{client_id}", operation_id = "get_client", tag = "admin", security(("bearer" = [])),
    params(("client_id" = String, Path)),
    responses((status = 200, description = "The client, without its secret", body = ClientView)))]
pub async fn get(State(app): State<AppState>, Bearer(claims): Bearer, Path(id): Path<String>) -> Result<axum::Json<ClientView>, ApiError> {
    let client = app.get_client(&claims, &id).await?;
    Ok(axum::Json(ClientView::new(&client, app.client_audiences(&client))))
}

/// Change a client (admin)
///
/// Changes only the fields given. A change of `scopes` revokes the client's tokens and ends
/// people's sessions with it. Whether a client is public cannot change.
#[utoipa::path(
    patch,
    path = "/v1/clients/{client_id}",
    operation_id = "update_client",
    tag = "admin",
    security(("bearer" = [])),
    params(("client_id" = String, Path)),
    request_body = PatchBody,
    responses((status = 200, description = "The client as it is now", body = ClientView))
)]
pub async fn patch(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Path(id): Path<String>,
    Json(body): Json<PatchBody>,
) -> Result<axum::Json<ClientView>, ApiError> {
    let update = ClientUpdate {
        name: body.name,
        scopes: body.scopes,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        first_party: body.first_party,
    };
    let client = app.update_client(&claims, &id, update).await?;
    Ok(axum::Json(ClientView::new(&client, app.client_audiences(&client))))
}

/// Delete a service client (admin)
#[utoipa::path(delete, path = "/v1/clients/{client_id}", operation_id = "delete_client", tag = "admin", security(("bearer" = [])),
    params(("client_id" = String, Path)),
    responses((status = 204, description = "Deleted; its tokens stop working")))]
pub async fn delete(State(app): State<AppState>, Bearer(claims): Bearer, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    app.delete_client(&claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace a client's secret (admin)
///
/// A public client has no secret: `409 public_client`.
#[utoipa::path(post, path = "/v1/clients/{client_id}/secret", operation_id = "rotate_client_secret", tag = "admin",
    security(("bearer" = [])), params(("client_id" = String, Path)),
    responses((status = 200, description = "The new secret; the old one stops working", body = ClientSecret), Conflict))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    Path(id): Path<String>,
) -> Result<axum::Json<ClientSecret>, ApiError> {
    let (id, secret) = app.rotate_client_secret(&claims, &id).await?;
    Ok(axum::Json(ClientSecret { client_id: id.to_string(), client_secret: secret.expose().to_owned() }))
}
