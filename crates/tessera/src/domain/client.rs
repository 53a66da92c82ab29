use super::{ClientId, Roles, Scopes, TokenHash};
use std::fmt;
use time::OffsetDateTime;

/// A service client: a machine identity that gets tokens with client credentials.
#[derive(Debug, Clone)]
pub struct Client {
    /// The public id (`svc_…`).
    pub id: ClientId,
    /// What an admin called it.
    pub name: ClientName,
    /// SHA-256 of the secret; the secret itself is shown once and never stored.
    pub secret_hash: TokenHash,
    /// Scopes it may be granted.
    pub scopes: Scopes,
    /// Roles carried into its tokens.
    pub roles: Roles,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it last changed (secret rotation).
    pub updated_at: OffsetDateTime,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ClientName::parse("  billing  ").unwrap().as_str(), "billing");
        assert!(ClientName::parse("").is_err());
        assert!(ClientName::parse(&"n".repeat(101)).is_err());
        assert!(ClientName::parse("bad\nname").is_err());
    }
}
