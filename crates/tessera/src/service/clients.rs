//! Clients: machine identities that get tokens with OAuth 2.0 client credentials, and
//! applications that sign people in through the authorization endpoint (those have redirect
//! URIs; a public one, a single-page or native app, has no secret at all).
//!
//! Secrets are generated here (256 random bits behind a `tcs_` prefix), shown once, and
//! stored only as SHA-256. A slow password hash would buy nothing for a secret that cannot be
//! guessed, and would cap token throughput at the argon2 rate (about 120 checks per second
//! on two cores) as it does in servers that hash client secrets like passwords.

use super::accounts::require_admin;
use super::error::{Error, Result};
use super::tokens::Grant;
use super::{ClientMeta, Tessera};
use crate::domain::{Audiences, Client, ClientId, ClientName, PlainToken, RedirectUris, Roles, Scopes, TokenHash, TokenKind};
use crate::store::ClientPatch;
use tessera_verify::{Audience, Claims};

/// A new client and its secret, which is never shown again.
#[derive(Debug)]
pub struct NewClient {
    /// The client as stored.
    pub client: Client,
    /// The secret, for the one answer that shows it; `None` for a public client.
    pub secret: Option<PlainToken>,
}

/// What an admin asks for when creating a client.
#[derive(Debug, Default)]
pub struct ClientSpec {
    /// Display name.
    pub name: String,
    /// Scopes the client may be granted.
    pub scopes: Vec<String>,
    /// Roles for its tokens.
    pub roles: Vec<String>,
    /// Resources its tokens may name in `aud`, the default first; none: the configured audience.
    pub audiences: Vec<String>,
    /// Where the authorization endpoint may send people back.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send people afterwards.
    pub post_logout_redirect_uris: Vec<String>,
    /// A single-page or native app: no secret.
    pub public: bool,
    /// People are not asked for consent.
    pub first_party: bool,
}

/// What an admin may change on a client (`PATCH /v1/clients/{client_id}`); `None` leaves a
/// field as it is. Whether a client is public, its roles and audiences are fixed.
#[derive(Debug, Default)]
pub struct ClientUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New scopes; a change revokes the client's tokens.
    pub scopes: Option<Vec<String>>,
    /// New redirect URIs, replacing the old ones.
    pub redirect_uris: Option<Vec<String>>,
    /// New post-logout redirect URIs, replacing the old ones.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Whether people are asked for consent.
    pub first_party: Option<bool>,
}

/// Why a client-credentials request was refused, in RFC 6749 / RFC 8707 terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefused {
    /// A requested scope is not granted to the client (`invalid_scope`).
    #[error("a requested scope is not granted to this client")]
    Scope,
    /// The requested resource is not one of the client's audiences (`invalid_target`).
    #[error("the requested resource is not one of this client's audiences")]
    Target,
}

/// Why a client's credentials were refused (RFC 6749 `invalid_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("client authentication failed")]
pub struct InvalidClient;

impl Tessera {
    /// Creates a client (admin API).
    pub async fn create_client(&self, caller: &Claims, spec: ClientSpec, meta: &ClientMeta) -> Result<NewClient> {
        require_admin(caller)?;
        let created = self.register_client(spec).await?;
        self.audit(meta, "client.created", Some(&caller.sub), Some(created.client.id.as_str()), None).await;
        Ok(created)
    }

    /// Creates a client without a caller (the command line).
    pub async fn register_client(&self, spec: ClientSpec) -> Result<NewClient> {
        let name = ClientName::parse(&spec.name).map_err(|e| Error::Validation(format!("name: {e}")))?;
        let scopes = Scopes::parse(&spec.scopes).map_err(|e| Error::Validation(format!("scopes: {e}")))?;
        let roles = Roles::parse(&spec.roles).map_err(|e| Error::Validation(format!("roles: {e}")))?;
        let audiences = Audiences::parse(&spec.audiences).map_err(|e| Error::Validation(format!("audiences: {e}")))?;
        let redirect_uris = parse_uris("redirect_uris", &spec.redirect_uris, spec.public)?;
        let post_logout_redirect_uris = parse_uris("post_logout_redirect_uris", &spec.post_logout_redirect_uris, spec.public)?;
        let secret = if spec.public { None } else { Some(PlainToken::generate(TokenKind::ClientSecret).map_err(Error::internal)?) };
        let now = self.now();
        let client = Client {
            id: ClientId::generate().map_err(Error::internal)?,
            name,
            secret_hash: secret.as_ref().map(PlainToken::hash),
            scopes,
            roles,
            audiences,
            redirect_uris,
            post_logout_redirect_uris,
            public: spec.public,
            first_party: spec.first_party,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_client(&client).await?;
        tracing::info!(client = %client.id, "client created");
        Ok(NewClient { client, secret })
    }

    /// Every client (admin API).
    pub async fn list_clients(&self, caller: &Claims) -> Result<Vec<Client>> {
        require_admin(caller)?;
        Ok(self.store.list_clients().await?)
    }

    /// One client (admin API).
    pub async fn get_client(&self, caller: &Claims, id: &str) -> Result<Client> {
        require_admin(caller)?;
        let id = ClientId::parse(id).ok_or(Error::NotFound("client"))?;
        self.store.client(&id).await?.ok_or(Error::NotFound("client"))
    }

    /// Deletes a client; every token it holds stops working.
    pub async fn delete_client(&self, caller: &Claims, id: &str, meta: &ClientMeta) -> Result<()> {
        require_admin(caller)?;
        let id = ClientId::parse(id).ok_or(Error::NotFound("client"))?;
        let cutoff = self.subject_cutoff(id.as_str(), self.next_whole_second());
        // People's sessions with this application end first: a session is never issued to a
        // client that no longer exists (the token endpoint authenticates it first).
        self.store.end_client_sessions(&id, self.now(), self.session_feed_exp()).await?;
        let deleted = self.store.delete_client(&id, &[cutoff], self.now()).await?;
        self.clients.evict(id.as_str());
        if !deleted {
            return Err(Error::NotFound("client"));
        }
        tracing::info!(client = %id, "client deleted");
        self.audit(meta, "client.deleted", Some(&caller.sub), Some(id.as_str()), None).await;
        self.sync_revocations().await
    }

    /// Replaces a client's secret; the old one stops working at once, and so do the tokens
    /// issued under it (whoever held the old secret may hold its tokens too).
    pub async fn rotate_client_secret(&self, caller: &Claims, id: &str, meta: &ClientMeta) -> Result<(ClientId, PlainToken)> {
        require_admin(caller)?;
        let id = ClientId::parse(id).ok_or(Error::NotFound("client"))?;
        // Whether a client is public never changes, so this read cannot go stale; the store
        // refuses to give a public client a secret anyway.
        let client = self.store.client(&id).await?.ok_or(Error::NotFound("client"))?;
        if client.public {
            return Err(Error::PublicClient);
        }
        let secret = PlainToken::generate(TokenKind::ClientSecret).map_err(Error::internal)?;
        let rotated = self.store.set_client_secret(&id, &secret.hash(), self.now()).await?;
        self.clients.evict(id.as_str());
        if !rotated {
            return Err(Error::NotFound("client"));
        }
        self.revoke(&[self.subject_cutoff(id.as_str(), self.next_whole_second())]).await?;
        tracing::info!(client = %id, "client secret rotated");
        self.audit(meta, "client.secret_rotated", Some(&caller.sub), Some(id.as_str()), None).await;
        Ok((id, secret))
    }

    /// Checks a client's id and secret. Unknown ids, wrong secrets and public clients (which
    /// have no secret, so no secret can authenticate them) look the same.
    pub async fn authenticate_client(&self, id: &str, secret: &str) -> Result<Result<Client, InvalidClient>> {
        let presented = PlainToken::from_presented(secret).hash();
        let client = self.recent_client(id).await?;
        // Compare even when the client is unknown or public, in constant time, so all cost the same.
        let unknown = TokenHash::from_slice(&[0; 32]);
        let stored = client.as_ref().and_then(|c| c.secret_hash).or(unknown);
        let matches = client.as_ref().is_some_and(|c| !c.public) && stored.is_some_and(|h| h == presented);
        Ok(match client {
            Some(client) if matches => {
                self.wait_for_subject_cutoff(client.id.as_str()).await;
                Ok(client)
            }
            _ => Err(InvalidClient),
        })
    }

    /// Authenticates a public client by its `client_id` alone (RFC 6749 §2.1: it cannot keep
    /// a secret; PKCE binds its codes instead). Unknown ids and confidential clients (which
    /// must send their secret) are both `InvalidClient`.
    pub async fn authenticate_public_client(&self, id: &str) -> Result<Result<Client, InvalidClient>> {
        Ok(match self.recent_client(id).await? {
            Some(client) if client.public => Ok(client),
            _ => Err(InvalidClient),
        })
    }

    /// A client by id, from the cache of recently read clients or the store.
    pub(super) async fn recent_client(&self, id: &str) -> Result<Option<Client>> {
        let Some(id) = ClientId::parse(id) else { return Ok(None) };
        if let Some(cached) = self.clients.get(id.as_str()) {
            return Ok(Some(cached));
        }
        let read = self.store.client(&id).await?;
        if let Some(c) = &read {
            self.clients.put(c);
        }
        Ok(read)
    }

    /// Changes a client (admin API): only the fields given. A change of scopes revokes every
    /// token the client holds and every session people have with it, as a change of a
    /// person's roles does: a token carries its scopes, so a removed scope must stop working
    /// everywhere, not only in the next token.
    pub async fn update_client(&self, caller: &Claims, id: &str, update: ClientUpdate, meta: &ClientMeta) -> Result<Client> {
        require_admin(caller)?;
        let id = ClientId::parse(id).ok_or(Error::NotFound("client"))?;
        let before = self.store.client(&id).await?.ok_or(Error::NotFound("client"))?;
        let patch = ClientPatch {
            name: update.name.as_deref().map(ClientName::parse).transpose().map_err(|e| Error::Validation(format!("name: {e}")))?,
            scopes: update.scopes.as_deref().map(Scopes::parse).transpose().map_err(|e| Error::Validation(format!("scopes: {e}")))?,
            redirect_uris: update.redirect_uris.as_deref().map(|u| parse_uris("redirect_uris", u, before.public)).transpose()?,
            post_logout_redirect_uris: update
                .post_logout_redirect_uris
                .as_deref()
                .map(|u| parse_uris("post_logout_redirect_uris", u, before.public))
                .transpose()?,
            first_party: update.first_party,
        };
        let mut client = self.store.update_client(&id, &patch, self.now()).await?.ok_or(Error::NotFound("client"))?;
        self.clients.evict(id.as_str());
        let scopes_changed = patch.scopes.is_some() && client.scopes != before.scopes;
        if scopes_changed {
            self.store.end_client_sessions(&id, self.now(), self.session_feed_exp()).await?;
            self.revoke(&[self.subject_cutoff(id.as_str(), self.next_whole_second())]).await?;
            client = self.store.client(&id).await?.ok_or(Error::NotFound("client"))?;
        }
        tracing::info!(client = %id, scopes_changed, "client updated");
        let detail = scopes_changed.then(|| format!("scopes {} -> {}", before.scopes, client.scopes));
        self.audit(meta, "client.updated", Some(&caller.sub), Some(id.as_str()), detail).await;
        Ok(client)
    }

    /// The resources `client`'s tokens may name in `aud`, the default first: its own
    /// audiences, or the configured audience when it has none.
    pub fn client_audiences<'a>(&'a self, client: &'a Client) -> &'a [String] {
        if client.audiences.is_empty() { &self.settings.audiences } else { client.audiences.as_slice() }
    }

    /// The client credentials grant: a token for the client itself with `requested` scopes
    /// (all of its scopes when `None`), for the `resource` it names (RFC 8707), which must be
    /// one of its audiences; without one, for its first audience (or the configured audience
    /// when it has none of its own).
    pub fn client_credentials(
        &self,
        client: &Client,
        requested: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Result<super::IssuedTokens, GrantRefused>> {
        let scopes = match requested {
            None => client.scopes.clone(),
            Some(raw) => match Scopes::parse_space_separated(raw) {
                Ok(s) if s.is_subset(&client.scopes) => s,
                _ => return Ok(Err(GrantRefused::Scope)),
            },
        };
        let aud = match (resource, client.audiences.as_slice().first()) {
            (Some(r), _) if self.client_audiences(client).iter().any(|a| a == r) => Audience::One(r.to_owned()),
            (Some(_), _) => return Ok(Err(GrantRefused::Target)),
            (None, Some(first)) => Audience::One(first.clone()),
            (None, None) => self.settings.audience.clone(),
        };
        let grant = Grant {
            grant: "client_credentials",
            sub: client.id.to_string(),
            client_id: client.id.to_string(),
            scope: scopes.to_string(),
            roles: client.roles.to_vec(),
            sid: None,
            fresh: None,
            amr: None,
        };
        let (access_token, claims) = self.issue_access_token_for(grant, aud)?;
        Ok(Ok(super::IssuedTokens { access_token, expires_in: claims.exp - claims.iat, claims, refresh_token: None }))
    }

    /// Tokens issued in the second of a cut-off (a secret rotation) would carry an `iat` the
    /// cut-off refuses; a client authenticating in that second waits it out (at most one).
    async fn wait_for_subject_cutoff(&self, sub: &str) {
        let Some(not_before) = self.revocations.subject_not_before(sub) else { return };
        let now = self.clock.now();
        let cutoff = time::OffsetDateTime::from_unix_timestamp(not_before).unwrap_or(now);
        if cutoff > now {
            tokio::time::sleep((cutoff - now).min(time::Duration::seconds(1)).try_into().unwrap_or_default()).await;
        }
    }

    pub(crate) fn subject_cutoff(&self, sub: &str, not_before: i64) -> crate::store::Revocation {
        crate::store::Revocation::Subject {
            sub: sub.to_owned(),
            not_before,
            exp: not_before + self.settings.access_ttl + super::LEEWAY_SECS,
        }
    }
}

/// Checks a list of redirect URIs for a client that is `public` (or not); `field` names the
/// list in the error.
fn parse_uris(field: &str, raw: &[String], public: bool) -> Result<RedirectUris> {
    RedirectUris::parse(raw, public).map_err(|e| Error::InvalidRedirectUri(format!("{field}: {e}")))
}

impl Tessera {
    /// Every scope some client may be granted, for the discovery metadata.
    pub async fn known_scopes(&self) -> Result<Vec<String>> {
        let mut scopes: Vec<String> = self.store.list_clients().await?.iter().flat_map(|c| c.scopes.to_vec()).collect();
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }
}
