//! `/oauth2/*`: the token endpoint (RFC 6749), introspection (RFC 7662) and revocation
//! (RFC 7009). Form bodies in, JSON out, RFC 6749 §5.2 errors.

use super::error::OAuthError;
use super::extract::{BasicCredentials, MalformedBasic, form_rejection};
use crate::service::{ClientAuth, ClientMeta, Introspection, IssuedTokens, OAuthRefusal, TokenGrant, TokenRequest, UserInfo};
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::HashMap;
use tessera_verify::Claims;
use utoipa::ToSchema;

/// Form parameters; a parameter sent twice is refused (RFC 6749 §3.1, §3.2).
struct Params(HashMap<String, String>);

impl Params {
    fn parse(form: Result<Form<Vec<(String, String)>>, FormRejection>) -> Result<Self, OAuthError> {
        let Form(pairs) = form.map_err(|e| {
            let (status, detail) = form_rejection(&e);
            OAuthError::new(status, "invalid_request", detail)
        })?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                return Err(OAuthError::invalid_request(format!("parameter `{k}` is repeated")));
            }
        }
        Ok(Params(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")))
    }
}

/// The client credentials presented: HTTP Basic (RFC 6749 §2.3.1) or in the body, not both.
fn credentials(basic: Result<Option<BasicCredentials>, MalformedBasic>, params: &Params) -> Result<ClientAuth, OAuthError> {
    let body_id = params.get("client_id");
    match (basic, body_id) {
        (Ok(Some(BasicCredentials { id, secret })), None) => Ok(ClientAuth::Basic { id, secret }),
        (Err(MalformedBasic), None) => Err(OAuthError::invalid_client(true)),
        (Ok(Some(_)) | Err(_), Some(_)) => Err(OAuthError::invalid_request("use one client authentication method, not two")),
        (Ok(None), Some(id)) => Ok(ClientAuth::Body { id: id.to_owned(), secret: params.get("client_secret").map(str::to_owned) }),
        (Ok(None), None) => Ok(ClientAuth::None),
    }
}

/// A refusal as RFC 6749 §5.2 answers it.
fn refused(refusal: OAuthRefusal) -> OAuthError {
    let description = refusal.to_string();
    let error = match refusal {
        OAuthRefusal::InvalidClient { basic } => return OAuthError::invalid_client(basic),
        OAuthRefusal::InvalidRequest(_) => "invalid_request",
        OAuthRefusal::InvalidGrant(_) => "invalid_grant",
        OAuthRefusal::UnauthorizedClient(_) => "unauthorized_client",
        OAuthRefusal::InvalidScope(_) => "invalid_scope",
        OAuthRefusal::InvalidTarget(_) => "invalid_target",
        OAuthRefusal::UnsupportedGrantType(_) => "unsupported_grant_type",
    };
    OAuthError::new(StatusCode::BAD_REQUEST, error, description)
}

fn token_response(body: impl Serialize) -> Response {
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

// The form bodies as the OpenAPI document describes them; the handlers read forms as pairs, to
// refuse repeated parameters (RFC 6749 §3.1).

/// The grants Tessera supports.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = GrantType)]
pub enum GrantTypeDoc {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
}

/// A token request (RFC 6749 §4.4 and §6). A client authenticates by HTTP Basic or by
/// `client_id` and `client_secret` here, not both; the `refresh_token` grant is for the public
/// first-party client `tessera` (send `client_id=tessera` or nothing).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TokenRequest)]
pub struct TokenFormDoc {
    pub grant_type: GrantTypeDoc,
    /// `client_credentials`: space-separated, a subset of the client's scopes (all of them when absent).
    #[schema(nullable = false)]
    pub scope: Option<String>,
    /// `client_credentials`: the resource (RFC 8707) the token is for, one of the client's
    /// `audiences` (else `invalid_target`); it becomes the token's `aud`. Without it, `aud` is
    /// the client's first audience.
    #[schema(nullable = false)]
    pub resource: Option<String>,
    /// Required for the `refresh_token` grant.
    #[schema(nullable = false, min_length = 1)]
    pub refresh_token: Option<String>,
    /// `authorization_code`: the code from the authorization endpoint.
    #[schema(nullable = false, min_length = 1)]
    pub code: Option<String>,
    /// `authorization_code`: the PKCE verifier (RFC 7636).
    #[schema(nullable = false, min_length = 43, max_length = 128)]
    pub code_verifier: Option<String>,
    /// `authorization_code`: the `redirect_uri` of the authorization request, when it named one.
    #[schema(nullable = false)]
    pub redirect_uri: Option<String>,
    #[serde(flatten)]
    pub client: ClientAuthDoc,
}

/// An introspection (RFC 7662) or revocation (RFC 7009) request. The caller authenticates as
/// a client by HTTP Basic or by `client_id` and `client_secret` here; revocation also takes the
/// public first-party client (`client_id=tessera`, no secret).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = TokenParameterRequest)]
pub struct TokenParamFormDoc {
    /// An access token or a refresh token.
    #[schema(min_length = 1)]
    pub token: String,
    /// A hint only; Tessera tells the kinds apart itself.
    #[schema(nullable = false)]
    pub token_type_hint: Option<String>,
    #[serde(flatten)]
    pub client: ClientAuthDoc,
}

/// A client's credentials in the form body, instead of HTTP Basic (RFC 6749 §2.3.1).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClientAuthentication)]
pub struct ClientAuthDoc {
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    #[schema(nullable = false)]
    pub client_secret: Option<String>,
}

/// A token answer (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenAnswer {
    pub access_token: String,
    #[schema(pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The `refresh_token` grant only: the new refresh token; the one presented stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    /// The granted scopes, space-separated (empty for people's own tokens).
    pub scope: String,
    /// `authorization_code` with scope `openid`: the OpenID Connect id_token.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id_token: Option<String>,
}

impl TokenAnswer {
    fn new(issued: IssuedTokens) -> Self {
        TokenAnswer {
            id_token: None,
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            refresh_token: issued.refresh_token.map(|t| t.expose().to_owned()),
            scope: issued.claims.scope,
        }
    }
}

/// An introspection answer (RFC 7662 §2.2): only `active: false` for a token that is not
/// active; the claims of an access token; the session of a refresh token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum IntrospectionAnswer<'a> {
    Inactive {
        /// Always `false`.
        active: bool,
    },
    Access {
        /// Always `true`.
        active: bool,
        #[schema(pattern = "^Bearer$")]
        token_type: &'static str,
        #[serde(flatten)]
        claims: &'a Claims,
    },
    Refresh {
        /// Always `true`.
        active: bool,
        #[schema(pattern = "^refresh_token$")]
        token_type: &'static str,
        /// The client it was issued to: an application's id, or the public first-party
        /// client `tessera` for a person's own sign-in.
        client_id: String,
        /// The user.
        sub: String,
        /// The session.
        sid: String,
        iat: i64,
        exp: i64,
    },
}

/// A revocation answer (RFC 7009 §2.2): an empty object, also for unknown tokens.
#[derive(Debug, Serialize, ToSchema)]
#[schema(max_properties = 0)]
pub struct Revoked {}

/// Get a token (RFC 6749)
///
/// `client_credentials` for service clients, `refresh_token` for people's apps.
#[utoipa::path(post, path = "/oauth2/token", tag = "oauth2", security(("client_basic" = []), ()),
    request_body(content = TokenFormDoc, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Issued", body = TokenAnswer)))]
pub async fn token(
    State(app): State<AppState>,
    meta: ClientMeta,
    basic: Result<Option<BasicCredentials>, MalformedBasic>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    let params = Params::parse(form)?;
    let grant_type = params.require("grant_type")?;
    let client = credentials(basic, &params)?;
    let request = TokenRequest {
        grant_type,
        scope: params.get("scope"),
        resource: params.get("resource"),
        refresh_token: params.get("refresh_token"),
        code: params.get("code"),
        code_verifier: params.get("code_verifier"),
        redirect_uri: params.get("redirect_uri"),
    };
    let TokenGrant { tokens, id_token } = app.token(&client, request, &meta).await?.map_err(refused)?;
    Ok(token_response(TokenAnswer { id_token, ..TokenAnswer::new(tokens) }))
}

/// Introspect a token (RFC 7662)
///
/// Any authenticated client may introspect any token.
#[utoipa::path(post, path = "/oauth2/introspect", tag = "oauth2", security(("client_basic" = []), ()),
    request_body(content = TokenParamFormDoc, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Whether the token is active, and what it carries", body = IntrospectionAnswer)))]
pub async fn introspect(
    State(app): State<AppState>,
    basic: Result<Option<BasicCredentials>, MalformedBasic>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    let params = Params::parse(form)?;
    let client = credentials(basic, &params)?;
    Ok(match app.introspect_for(&client, params.get("token")).await?.map_err(refused)? {
        Introspection::Inactive => token_response(IntrospectionAnswer::Inactive { active: false }),
        Introspection::Access(claims) => {
            token_response(IntrospectionAnswer::Access { active: true, token_type: "Bearer", claims: &claims })
        }
        Introspection::Refresh { client_id, sub, sid, iat, exp } => {
            token_response(IntrospectionAnswer::Refresh { active: true, token_type: "refresh_token", client_id, sub, sid, iat, exp })
        }
    })
}

/// Revoke a token (RFC 7009)
///
/// A client may revoke the tokens issued to it, an admin client any token; a public client
/// (the first-party one among them) sends its `client_id` alone.
#[utoipa::path(post, path = "/oauth2/revoke", tag = "oauth2", security(("client_basic" = []), ()),
    request_body(content = TokenParamFormDoc, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or nothing to revoke", body = Revoked)))]
pub async fn revoke(
    State(app): State<AppState>,
    meta: ClientMeta,
    basic: Result<Option<BasicCredentials>, MalformedBasic>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    let params = Params::parse(form)?;
    let client = credentials(basic, &params)?;
    app.revoke_for(&client, params.get("token"), &meta).await?.map_err(refused)?;
    Ok(token_response(Revoked {}))
}

/// Who is signed in (OpenID Connect Core §5.3)
///
/// For an access token granted `openid`; the claims follow its other scopes (`email`,
/// `profile`). Without `openid`: `403` with `WWW-Authenticate: Bearer error="insufficient_scope"`.
#[utoipa::path(get, path = "/oauth2/userinfo", tag = "oauth2", security(("bearer" = [])),
    responses((status = 200, description = "The person's claims", body = UserInfo)))]
pub async fn userinfo(
    State(app): State<AppState>,
    super::extract::Bearer(claims): super::extract::Bearer,
) -> Result<Response, super::error::ApiError> {
    let info = app.userinfo(&claims).await?;
    Ok(token_response(info))
}

/// Who is signed in (OpenID Connect Core §5.3), as a POST.
#[utoipa::path(post, path = "/oauth2/userinfo", tag = "oauth2", security(("bearer" = [])), operation_id = "userinfo_post",
    responses((status = 200, description = "The person's claims", body = UserInfo)))]
pub async fn userinfo_post(
    State(app): State<AppState>,
    super::extract::Bearer(claims): super::extract::Bearer,
) -> Result<Response, super::error::ApiError> {
    let info = app.userinfo(&claims).await?;
    Ok(token_response(info))
}
