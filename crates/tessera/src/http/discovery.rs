//! RFC 8414 authorization-server metadata, also served as OpenID discovery.
//!
//! Served at the root `/.well-known/…` paths and, for an issuer with a path such as
//! `https://h/auth`, also where clients look for that issuer: `/auth/.well-known/openid-configuration`
//! (OpenID Connect Discovery appends to the issuer) and `/.well-known/oauth-authorization-server/auth`
//! (RFC 8414 §3 inserts the well-known part before the issuer's path).

use crate::domain::keys::SigningAlg;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

/// RFC 8414 authorization-server metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationServerMetadata<'a> {
    pub issuer: &'a str,
    /// Absent with `HS256`: no OpenID Connect then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    /// OpenID Connect userinfo.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub userinfo_endpoint: Option<String>,
    /// RP-initiated logout.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub end_session_endpoint: Option<String>,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: &'static [&'static str],
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    pub introspection_endpoint_auth_methods_supported: &'static [&'static str],
    pub revocation_endpoint_auth_methods_supported: &'static [&'static str],
    /// Scopes the server itself defines (OpenID Connect's); clients' own scopes are not published.
    pub scopes_supported: &'static [&'static str],
    /// `code` only (never `token`: no implicit flow); empty with `HS256`.
    pub response_types_supported: &'static [&'static str],
    pub response_modes_supported: &'static [&'static str],
    pub code_challenge_methods_supported: &'static [&'static str],
    pub authorization_response_iss_parameter_supported: bool,
    pub claims_supported: &'static [&'static str],
    pub subject_types_supported: &'static [&'static str],
    /// The algorithms of every published key: the active, the next and retiring ones.
    pub id_token_signing_alg_values_supported: Vec<SigningAlg>,
}

/// Authorization-server metadata (RFC 8414)
///
/// Also served as `/.well-known/openid-configuration`.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses(
        (status = 200, description = "The metadata", body = AuthorizationServerMetadata,
            headers(("Cache-Control" = String, description = "`public, max-age=300`"))),
    ))]
pub async fn metadata(State(app): State<AppState>) -> Response {
    let issuer = &app.settings().issuer;
    // The issuer is kept exactly as configured (`iss` must equal it); URLs under it must not
    // get a double slash when it ends in one.
    let base = issuer.trim_end_matches('/');
    // Every algorithm of every published key (next and retiring ones too): middleware that
    // takes its allowed algorithms from here must accept tokens of a key being phased in or out.
    let mut algs: Vec<SigningAlg> = app.list_keys().unwrap_or_default().iter().map(|k| k.alg).collect();
    algs.sort_unstable_by_key(|alg| alg.as_str());
    algs.dedup();
    let oidc = app.oidc_enabled();
    let body = AuthorizationServerMetadata {
        issuer,
        authorization_endpoint: oidc.then(|| format!("{base}/oauth2/authorize")),
        token_endpoint: format!("{base}/oauth2/token"),
        userinfo_endpoint: oidc.then(|| format!("{base}/oauth2/userinfo")),
        end_session_endpoint: oidc.then(|| format!("{base}/oauth2/logout")),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        introspection_endpoint: format!("{base}/oauth2/introspect"),
        revocation_endpoint: format!("{base}/oauth2/revoke"),
        grant_types_supported: if oidc {
            &["authorization_code", "refresh_token", "client_credentials"]
        } else {
            &["client_credentials", "refresh_token"]
        },
        token_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post", "none"],
        introspection_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post"],
        revocation_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post", "none"],
        scopes_supported: if oidc { &["openid", "profile", "email", "offline_access"] } else { &[] },
        response_types_supported: if oidc { &["code"] } else { &[] },
        response_modes_supported: &["query"],
        code_challenge_methods_supported: &["S256"],
        authorization_response_iss_parameter_supported: oidc,
        claims_supported: &[
            "iss",
            "sub",
            "aud",
            "azp",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "amr",
            "at_hash",
            "email",
            "email_verified",
            "preferred_username",
            "updated_at",
        ],
        subject_types_supported: &["public"],
        id_token_signing_alg_values_supported: algs,
    };
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// The discovery routes an issuer with a path needs besides the root ones (none for an issuer
/// without a path). A path the router could misread (captures, wildcards, odd characters) is
/// not routed and says so in the log, rather than failing start-up.
pub(super) fn issuer_path_routes(issuer: &str) -> Router<AppState> {
    let mut router = Router::new();
    let Some(path) = issuer_path(issuer) else { return router };
    let plain = path
        .split('/')
        .skip(1)
        .all(|segment| !segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric() || "-._~%!$&'()+,;=@".contains(c)));
    if !plain {
        tracing::warn!(path, "the issuer's path is not served as a discovery location; use a proxy to map it");
        return router;
    }
    for served in [format!("{path}/.well-known/openid-configuration"), format!("{path}/.well-known/oauth-authorization-server")] {
        router = router.route(&served, get(metadata));
    }
    for well_known in ["oauth-authorization-server", "openid-configuration"] {
        router = router.route(&format!("/.well-known/{well_known}{path}"), get(metadata));
    }
    router
}

/// The path of `issuer` without a trailing slash (`/auth` for `https://h/auth/`), if it has one.
fn issuer_path(issuer: &str) -> Option<&str> {
    let rest = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    let path = rest.find('/').map(|i| &rest[i..])?.trim_end_matches('/');
    (!path.is_empty()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::issuer_path;

    #[test]
    fn the_issuer_path_is_found_with_or_without_a_trailing_slash() {
        assert_eq!(issuer_path("https://h/auth"), Some("/auth"));
        assert_eq!(issuer_path("https://h/auth/"), Some("/auth"));
        assert_eq!(issuer_path("https://h:8443/a/b"), Some("/a/b"));
        assert_eq!(issuer_path("http://h:8080/"), None);
        assert_eq!(issuer_path("http://h:8080"), None);
    }
}
