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
    /// The resources (RFC 8707) its tokens may name in `aud`; empty: the configured audience.
    pub audiences: Audiences,
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
