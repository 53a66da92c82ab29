use super::{ClientId, RedirectUris, Roles, Scopes, TokenHash};
use std::fmt;
use time::OffsetDateTime;

/// A client: a machine identity that gets tokens with client credentials, an application
/// that signs people in through Tessera (it has redirect URIs), or both.
#[derive(Debug, Clone)]
pub struct Client {
    /// The public id (`svc_…`).
    pub id: ClientId,
    /// What an admin called it.
    pub name: ClientName,
    /// SHA-256 of the secret; the secret itself is shown once and never stored. `None` for a
    /// public client, which has no secret and never authenticates with one.
    pub secret_hash: Option<TokenHash>,
    /// Scopes it may be granted.
    pub scopes: Scopes,
    /// Roles carried into its tokens.
    pub roles: Roles,
    /// The resources (RFC 8707) its tokens may name in `aud`; empty: the configured audience.
    pub audiences: Audiences,
    /// Where the authorization endpoint may send people back with a code; a client with any
    /// may use the `authorization_code` and `refresh_token` grants.
    pub redirect_uris: RedirectUris,
    /// Where RP-initiated logout may send people afterwards.
    pub post_logout_redirect_uris: RedirectUris,
    /// A single-page or native app: no secret, authenticates by `client_id` alone, may not
    /// use `client_credentials`. Fixed at creation.
    pub public: bool,
    /// Trusted by the operator: people are not asked for consent.
    pub first_party: bool,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed (secret rotation, an update).
    pub updated_at: OffsetDateTime,
}

/// The OAuth 2.0 grant types (RFC 7591 names).
pub mod grant {
    /// Service clients' own tokens.
    pub const CLIENT_CREDENTIALS: &str = "client_credentials";
    /// Codes from the authorization endpoint.
    pub const AUTHORIZATION_CODE: &str = "authorization_code";
    /// Refresh tokens.
    pub const REFRESH_TOKEN: &str = "refresh_token";
}

impl Client {
    /// The grants this client may use: `client_credentials` when it is confidential,
    /// `authorization_code` and `refresh_token` when it has redirect URIs.
    pub fn grant_types(&self) -> Vec<&'static str> {
        let mut grants = Vec::with_capacity(3);
        if !self.redirect_uris.is_empty() {
            grants.extend([grant::AUTHORIZATION_CODE, grant::REFRESH_TOKEN]);
        }
        if !self.public {
            grants.push(grant::CLIENT_CREDENTIALS);
        }
        grants
    }

    /// Whether this client may use `grant_type`.
    pub fn may_use(&self, grant_type: &str) -> bool {
        self.grant_types().contains(&grant_type)
    }
}

/// A client's display name: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientName(String);

/// Why a client name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name must be 1 to 100 characters without control characters")]
pub struct ClientNameError;

impl ClientName {
    /// Trims and checks the name.
    pub fn parse(raw: &str) -> Result<Self, ClientNameError> {
        let name = raw.trim();
        if (1..=100).contains(&name.chars().count()) && !name.chars().any(char::is_control) {
            Ok(ClientName(name.to_owned()))
        } else {
            Err(ClientNameError)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The audiences a client's tokens may carry, in the order given (the first is the default).
/// Each is compared exactly, so none may hold whitespace or control characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audiences(Vec<String>);

/// Why a list of audiences was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("each audience must be 1 to 200 characters without spaces or control characters, at most 20 of them")]
pub struct AudiencesError;

impl Audiences {
    /// Most audiences one client may have.
    const MAX: usize = 20;

    /// Checks each audience; repeats are dropped, the order is kept.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, AudiencesError> {
        let mut list: Vec<String> = Vec::with_capacity(raw.len());
        for a in raw.iter().map(AsRef::as_ref) {
            let ok = (1..=200).contains(&a.chars().count()) && !a.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(AudiencesError);
            }
            if !list.iter().any(|known| known == a) {
                list.push(a.to_owned());
            }
        }
        if list.len() > Self::MAX {
            return Err(AudiencesError);
        }
        Ok(Audiences(list))
    }

    /// The audiences, the default first.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether the client names none (and so has the configured audience).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(public: bool, redirect_uris: &[&str]) -> Client {
        Client {
            id: ClientId::new("svc_x"),
            name: ClientName::parse("x").unwrap(),
            secret_hash: (!public).then(|| TokenHash::from_slice(&[7; 32]).unwrap()),
            scopes: Scopes::default(),
            roles: Roles::default(),
            audiences: Audiences::default(),
            redirect_uris: RedirectUris::parse(redirect_uris, public).unwrap(),
            post_logout_redirect_uris: RedirectUris::default(),
            public,
            first_party: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn grant_types_follow_from_redirect_uris_and_publicness() {
        assert_eq!(client(false, &[]).grant_types(), ["client_credentials"]);
        assert_eq!(client(false, &["https://app.example/cb"]).grant_types(), ["authorization_code", "refresh_token", "client_credentials"]);
        assert_eq!(client(true, &["com.example.app:/cb"]).grant_types(), ["authorization_code", "refresh_token"]);
        assert!(client(true, &[]).grant_types().is_empty());
        assert!(!client(true, &["com.example.app:/cb"]).may_use("client_credentials"));
        assert!(client(true, &["com.example.app:/cb"]).may_use("authorization_code"));
    }

    #[test]
    fn audiences_keep_their_order_and_drop_repeats() {
        let a = Audiences::parse(&["https://billing.example", "notes", "https://billing.example"]).unwrap();
        assert_eq!(a.as_slice(), ["https://billing.example".to_owned(), "notes".to_owned()]);
        assert!(Audiences::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn audiences_with_spaces_or_out_of_bounds_are_refused() {
        let long = "a".repeat(201);
        for bad in ["", "two words", "tab\there", long.as_str()] {
            assert_eq!(Audiences::parse(&[bad]), Err(AudiencesError), "{bad:?}");
        }
        let many: Vec<String> = (0..21).map(|i| format!("api-{i}")).collect();
        assert_eq!(Audiences::parse(&many), Err(AudiencesError));
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ClientName::parse("  billing  ").unwrap().as_str(), "billing");
        assert!(ClientName::parse("").is_err());
        assert!(ClientName::parse(&"n".repeat(101)).is_err());
        assert!(ClientName::parse("bad\nname").is_err());
    }
}
