//! The rules of `/oauth2/*` (RFC 6749, RFC 7662, RFC 7009): which grant a caller may use, how
//! a confidential client proves itself, and what the public first-party client may do. The
//! HTTP layer parses the forms and the `Authorization` header into a [`ClientAuth`] and maps
//! the outcomes to RFC 6749 §5.2 errors.

use super::error::Result;
use super::introspection::{Introspection, Revoker};
use super::oidc::GrantError;
use super::sessions::{ClientMeta, IssuedTokens};
use super::{GrantRefused, Tessera};
use crate::domain::{Client, ClientId};

/// How a caller of `/oauth2/*` presented itself as a client, not yet checked.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client credentials.
    None,
    /// HTTP Basic (RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        id: String,
        /// The client secret.
        secret: String,
    },
    /// `client_id`, and `client_secret` when sent, in the form body.
    Body {
        /// The client id.
        id: String,
        /// The client secret, absent for the public first-party client.
        secret: Option<String>,
    },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::None => f.write_str("None"),
            ClientAuth::Basic { id, .. } => f.debug_struct("Basic").field("id", id).finish_non_exhaustive(),
            ClientAuth::Body { id, secret } => {
                f.debug_struct("Body").field("id", id).field("secret", &secret.as_ref().map(|_| "[redacted]")).finish()
            }
        }
    }
}

impl ClientAuth {
    /// The public first-party client: `client_id=tessera` without a secret, or no client at all.
    fn is_first_party(&self) -> bool {
        match self {
            ClientAuth::None => true,
            ClientAuth::Body { id, secret: None } => id == ClientId::FIRST_PARTY,
            ClientAuth::Basic { .. } | ClientAuth::Body { .. } => false,
        }
    }
}

/// The parameters of a token request (RFC 6749 §4.4 and §6), as sent.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    /// `grant_type`.
    pub grant_type: &'a str,
    /// `scope`, for `client_credentials`.
    pub scope: Option<&'a str>,
    /// `resource` (RFC 8707), for `client_credentials`.
    pub resource: Option<&'a str>,
    /// `refresh_token`, for the `refresh_token` grant.
    pub refresh_token: Option<&'a str>,
    /// `code`, for the `authorization_code` grant.
    pub code: Option<&'a str>,
    /// `code_verifier` (RFC 7636), for the `authorization_code` grant.
    pub code_verifier: Option<&'a str>,
    /// `redirect_uri`, for the `authorization_code` grant when the authorization request had one.
    pub redirect_uri: Option<&'a str>,
}

/// What the token endpoint issues: tokens, and an id_token when `openid` was granted.
#[derive(Debug)]
pub struct TokenGrant {
    /// The access token, and a refresh token for people.
    pub tokens: IssuedTokens,
    /// The id_token (OpenID Connect Core §3.1.3.3).
    pub id_token: Option<String>,
}

impl From<IssuedTokens> for TokenGrant {
    fn from(tokens: IssuedTokens) -> Self {
        TokenGrant { tokens, id_token: None }
    }
}

/// Why an OAuth request was refused, by its RFC 6749 §5.2 (or RFC 8707) error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthRefusal {
    /// `invalid_request`: a required parameter is missing.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// `invalid_grant`: the code or refresh token is unknown, used, expired or not this
    /// client's, or the verifier or redirect URI does not match.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// `invalid_client`: client authentication failed; `basic` when it was tried with HTTP
    /// Basic (the answer then carries a Basic challenge).
    #[error("client authentication failed")]
    InvalidClient {
        /// The client used HTTP Basic.
        basic: bool,
    },
    /// `unauthorized_client`: this client may not do this.
    #[error("{0}")]
    UnauthorizedClient(&'static str),
    /// `invalid_scope`.
    #[error("{0}")]
    InvalidScope(&'static str),
    /// `invalid_target` (RFC 8707).
    #[error("{0}")]
    InvalidTarget(&'static str),
    /// `unsupported_grant_type`, with the grant as sent (at most 40 characters).
    #[error("grant_type `{0}` is not supported")]
    UnsupportedGrantType(String),
}

impl From<GrantError> for OAuthRefusal {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::InvalidGrant(why) => OAuthRefusal::InvalidGrant(why),
            GrantError::UnauthorizedClient(why) => OAuthRefusal::UnauthorizedClient(why),
        }
    }
}

impl From<GrantRefused> for OAuthRefusal {
    fn from(refused: GrantRefused) -> Self {
        match refused {
            GrantRefused::Scope => OAuthRefusal::InvalidScope("a requested scope is not granted to this client"),
            GrantRefused::Target => OAuthRefusal::InvalidTarget("the requested resource is not one of this client's audiences"),
        }
    }
}

/// A use case's outcome: refused in OAuth terms, or failed as any use case can.
pub type OAuthResult<T> = Result<std::result::Result<T, OAuthRefusal>>;

impl Tessera {
    /// The token endpoint: `client_credentials` for an authenticated confidential client;
    /// `authorization_code` for an application (a public one by its id alone); `refresh_token`
    /// for the public first-party client (people's tokens carry no scopes) or an application
    /// whose token session it is.
    pub async fn token(&self, client: &ClientAuth, request: TokenRequest<'_>, meta: &ClientMeta) -> OAuthResult<TokenGrant> {
        match request.grant_type {
            "client_credentials" => {
                // A public client names itself without a secret; it may not use this grant.
                if let ClientAuth::Body { id, secret: None } = client
                    && self.authenticate_public_client(id).await?.is_ok()
                {
                    return Ok(Err(OAuthRefusal::UnauthorizedClient("a public client may not use the client_credentials grant")));
                }
                let client = match self.confidential_client(client).await? {
                    Ok(client) => client,
                    Err(refused) => return Ok(Err(refused)),
                };
                Ok(self.client_credentials(&client, request.scope, request.resource)?.map(TokenGrant::from).map_err(OAuthRefusal::from))
            }
            "authorization_code" => {
                let client = match self.application_client(client).await? {
                    Ok(client) => client,
                    Err(refused) => return Ok(Err(refused)),
                };
                let Some(code) = request.code else { return Ok(Err(OAuthRefusal::InvalidRequest("`code` is required"))) };
                let Some(verifier) = request.code_verifier else {
                    return Ok(Err(OAuthRefusal::InvalidRequest("`code_verifier` is required")));
                };
                Ok(self
                    .exchange_code(&client, code, verifier, request.redirect_uri, meta)
                    .await?
                    .map(|(tokens, id_token)| TokenGrant { tokens, id_token })
                    .map_err(OAuthRefusal::from))
            }
            "refresh_token" => {
                let application = if client.is_first_party() {
                    None
                } else {
                    match self.application_client(client).await? {
                        Ok(client) => Some(client),
                        Err(refused) => return Ok(Err(refused)),
                    }
                };
                if application.is_none() && request.scope.is_some() {
                    return Ok(Err(OAuthRefusal::InvalidScope("people's tokens carry no scopes")));
                }
                if let Some(c) = &application
                    && !c.may_use(crate::domain::client::grant::REFRESH_TOKEN)
                {
                    return Ok(Err(OAuthRefusal::UnauthorizedClient("this client has no redirect URIs")));
                }
                let Some(presented) = request.refresh_token else {
                    return Ok(Err(OAuthRefusal::InvalidRequest("`refresh_token` is required")));
                };
                self.refresh_for(presented, application.as_ref().map(|c| &c.id), meta).await.map(|t| Ok(t.into()))
            }
            other => Ok(Err(OAuthRefusal::UnsupportedGrantType(other.chars().take(40).collect()))),
        }
    }

    /// Introspection (RFC 7662) for an authenticated confidential client, which may introspect
    /// any token.
    pub async fn introspect_for(&self, client: &ClientAuth, token: Option<&str>) -> OAuthResult<Introspection> {
        if let Err(refused) = self.confidential_client(client).await? {
            return Ok(Err(refused));
        }
        let Some(token) = token else { return Ok(Err(OAuthRefusal::InvalidRequest("`token` is required"))) };
        self.introspect(token).await.map(Ok)
    }

    /// Revocation (RFC 7009): a confidential client revokes the tokens issued to it (an admin
    /// client any token), a public client (the first-party one among them) by `client_id`
    /// alone the tokens issued to it. An unknown token is not an error.
    pub async fn revoke_for(&self, client: &ClientAuth, token: Option<&str>, meta: &ClientMeta) -> OAuthResult<()> {
        let revoker = match client {
            ClientAuth::Body { id, secret: None } if id == ClientId::FIRST_PARTY => Revoker::Public(ClientId::new(ClientId::FIRST_PARTY)),
            ClientAuth::Body { id, secret: None } => match self.authenticate_public_client(id).await? {
                Ok(client) => Revoker::Public(client.id),
                Err(_) => return Ok(Err(OAuthRefusal::InvalidClient { basic: false })),
            },
            client => match self.confidential_client(client).await? {
                Ok(client) => Revoker::Client(Box::new(client)),
                Err(refused) => return Ok(Err(refused)),
            },
        };
        let Some(token) = token else { return Ok(Err(OAuthRefusal::InvalidRequest("`token` is required"))) };
        Ok(self
            .revoke_token(&revoker, token, meta)
            .await?
            .map_err(|_| OAuthRefusal::UnauthorizedClient("the token was not issued to this client")))
    }

    /// An application at the token endpoint: a public one by `client_id` alone, a
    /// confidential one by its secret.
    async fn application_client(&self, client: &ClientAuth) -> OAuthResult<Client> {
        if let ClientAuth::Body { id, secret: None } = client {
            return Ok(self.authenticate_public_client(id).await?.map_err(|_| OAuthRefusal::InvalidClient { basic: false }));
        }
        self.confidential_client(client).await
    }

    /// Authenticates a confidential client by its secret, sent by HTTP Basic or in the body.
    async fn confidential_client(&self, client: &ClientAuth) -> OAuthResult<Client> {
        let (id, secret, basic) = match client {
            ClientAuth::Basic { id, secret } => (id, secret, true),
            ClientAuth::Body { id, secret: Some(secret) } => (id, secret, false),
            ClientAuth::Body { secret: None, .. } | ClientAuth::None => return Ok(Err(OAuthRefusal::InvalidClient { basic: false })),
        };
        Ok(self.authenticate_client(id, secret).await?.map_err(|_| OAuthRefusal::InvalidClient { basic }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(id: &str, secret: Option<&str>) -> ClientAuth {
        ClientAuth::Body { id: id.into(), secret: secret.map(Into::into) }
    }

    #[test]
    fn only_tessera_without_a_secret_or_no_client_at_all_is_the_first_party_client() {
        assert!(ClientAuth::None.is_first_party());
        assert!(body("tessera", None).is_first_party());
        assert!(!body("tessera", Some("s")).is_first_party(), "a secret makes it a confidential client");
        assert!(!body("svc_1", None).is_first_party());
        assert!(!ClientAuth::Basic { id: "tessera".into(), secret: String::new() }.is_first_party());
    }

    #[test]
    fn a_grant_refusal_keeps_its_rfc_code_and_message() {
        assert_eq!(OAuthRefusal::from(GrantRefused::Scope), OAuthRefusal::InvalidScope("a requested scope is not granted to this client"));
        assert_eq!(OAuthRefusal::from(GrantRefused::Target).to_string(), GrantRefused::Target.to_string());
    }

    #[test]
    fn client_secrets_are_not_in_debug_output() {
        let basic = ClientAuth::Basic { id: "svc_1".into(), secret: "tcs_very_secret".into() };
        let sent = body("svc_1", Some("tcs_very_secret"));
        for auth in [basic, sent] {
            let shown = format!("{auth:?}");
            assert!(shown.contains("svc_1") && !shown.contains("very_secret"), "{shown}");
        }
    }
}
