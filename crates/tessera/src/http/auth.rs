//! `/v1/auth/*`: register, login, refresh, logout, verify.

use super::error::{ApiError, Conflict, CredentialsRefused, LoginRefused, RegistrationClosed};
use super::extract::{Bearer, Json, OptionalJson, Query, parse_bearer};
use super::views::{TokenView, UserView, Verification};
use crate::service::{ClientMeta, Error, LoginId, Registration, Requirements};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterBody {
    /// Stored trimmed, compared case-insensitively.
    #[schema(format = Email)]
    email: String,
    /// Not guessable, e.g. not the email (else 422 `weak_password`).
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    /// 3 to 32 of `a-z 0-9 _ . -` after folding to lower case.
    #[serde(default)]
    username: Option<String>,
}

/// A registration's answer: the account and its tokens, or, while
/// `TESSERA_REQUIRE_VERIFIED_EMAIL=true`, the account alone (sign in once the address is verified).
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
pub enum Registered {
    /// Registered and logged in.
    SignedIn(TokenView),
    /// Registered; the address must be verified before signing in.
    Unverified(RegisteredAccount),
}

/// The account alone.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct RegisteredAccount {
    user: UserView,
}

/// Register an account and log it in
///
/// The access token is `fresh`. A link to verify the address is mailed. While
/// `TESSERA_REQUIRE_VERIFIED_EMAIL=true`, the answer is `{user}` without tokens. While
/// `TESSERA_REGISTRATION=closed`: 403 `registration_closed`.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 201, description = "Registered (and logged in, unless the address must be verified first)", body = Registered), Conflict, RegistrationClosed))]
pub async fn register(
    State(app): State<AppState>,
    meta: ClientMeta,
    Json(body): Json<RegisterBody>,
) -> Result<impl IntoResponse, ApiError> {
    let reg = Registration { email: body.email, password: body.password, username: body.username, admin: false };
    if app.registration_needs_verification() {
        let user = app.register_account(reg, &meta).await?;
        return Ok((StatusCode::CREATED, axum::Json(Registered::Unverified(RegisteredAccount { user: UserView::from(&user) }))));
    }
    let (user, tokens) = app.register(reg, &meta).await?;
    Ok((StatusCode::CREATED, axum::Json(Registered::SignedIn(TokenView::new(Some(&user), tokens)))))
}

/// `email` or `username` names the account; `email` wins when both are given.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
    password: String,
}

/// Log in with a password
///
/// The access token is `fresh`. While an account is locked by failed logins, even the right
/// password gets 429. For a person with a second factor the right password answers 403
/// `mfa_required` with `mfa_token` and `methods`; `POST /v1/auth/login/mfa` finishes it.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "Logged in", body = TokenView), LoginRefused))]
pub async fn login(State(app): State<AppState>, meta: ClientMeta, Json(body): Json<LoginBody>) -> Result<impl IntoResponse, ApiError> {
    let id = match (body.email, body.username) {
        (Some(email), _) => LoginId::Email(email),
        (None, Some(username)) => LoginId::Username(username),
        (None, None) => return Err(Error::Validation("email or username is required".into()).into()),
    };
    let (user, tokens) = app.login(id, body.password, &meta).await?;
    Ok(axum::Json(TokenView::new(Some(&user), tokens)))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Exchange a refresh token for new tokens
///
/// The old refresh token stops working; presenting it again revokes its session. The new
/// access token is not `fresh`.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, description = "A new access token and a new refresh token", body = TokenView), CredentialsRefused))]
pub async fn refresh(State(app): State<AppState>, meta: ClientMeta, Json(body): Json<RefreshBody>) -> Result<impl IntoResponse, ApiError> {
    let tokens = app.refresh(&body.refresh_token, &meta).await?;
    Ok(axum::Json(TokenView::new(None, tokens)))
}

/// Optional: also ends the session of this refresh token, when it is the caller's.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LogoutBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Log out
///
/// Revokes this access token and its session. The body is optional and read as JSON whatever
/// its content type.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    request_body(content = LogoutBody, content_type = "application/json"),
    responses((status = 204, description = "Logged out")))]
pub async fn logout(
    State(app): State<AppState>,
    Bearer(claims): Bearer,
    meta: ClientMeta,
    OptionalJson(body): OptionalJson<LogoutBody>,
) -> Result<StatusCode, ApiError> {
    let refresh_token = body.and_then(|b| b.refresh_token);
    app.logout(&claims, refresh_token.as_deref(), &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Log out everywhere
///
/// Revokes every session and every access token of the user.
#[utoipa::path(post, path = "/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Every session ended")))]
pub async fn logout_all(State(app): State<AppState>, Bearer(claims): Bearer, meta: ClientMeta) -> Result<StatusCode, ApiError> {
    app.logout_all(&claims, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a gateway may demand of the token, beyond its being valid.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// Space-separated scopes the token must all carry (else 403 `insufficient_scope`).
    #[serde(default)]
    scope: Option<String>,
    /// A role the token must carry (else 403 `forbidden`).
    #[serde(default)]
    role: Option<String>,
    /// An audience the token's `aud` must contain (else 401 `invalid_token`).
    #[serde(default)]
    aud: Option<String>,
}

/// Check a bearer token
///
/// Also the forward-authentication check for gateways (nginx `auth_request`, Caddy
/// `forward_auth`, Traefik `ForwardAuth`): they forward the request's `Authorization` header
/// and pass the `X-Auth-*` headers of a 200 on to the service behind them. Without `aud`, a
/// token for any audience Tessera issues to is accepted. Any body is ignored.
#[utoipa::path(method(get, post), path = "/v1/auth/verify", tag = "auth", security(("bearer" = [])), params(VerifyQuery),
    responses(
        (status = 200, description = "The token is valid, not revoked, and meets the query's demands", body = Verification,
            headers(
                ("X-Auth-Subject" = String, description = "`sub`: the user id, or the client id"),
                ("X-Auth-Client-Id" = String, description = "`client_id`"),
                ("X-Auth-Scope" = String, description = "The granted scopes, space-separated (may be empty)"),
                ("X-Auth-Roles" = String, description = "The roles, comma-separated (may be empty)"),
                ("X-Auth-Session" = String, description = "`sid`, for people only"),
            )),
    ))]
pub async fn verify(State(app): State<AppState>, headers: HeaderMap, Query(q): Query<VerifyQuery>) -> Result<Response, ApiError> {
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(parse_bearer);
    let required = Requirements::new(q.scope.as_deref(), q.role.as_deref(), q.aud.as_deref());
    let claims = app.verify_for_gateway(token, &required)?;
    let mut identity = vec![
        ("x-auth-subject", claims.sub.clone()),
        ("x-auth-client-id", claims.client_id.clone()),
        ("x-auth-scope", claims.scope.clone()),
        ("x-auth-roles", claims.roles.join(",")),
    ];
    if let Some(sid) = &claims.sid {
        identity.push(("x-auth-session", sid.clone()));
    }
    let mut response = axum::Json(Verification { active: true, claims: &claims }).into_response();
    for (name, value) in identity {
        let value = HeaderValue::from_str(&value).map_err(Error::internal)?;
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}
