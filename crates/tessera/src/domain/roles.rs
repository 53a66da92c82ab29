use std::collections::BTreeSet;
use std::fmt;

/// A role name such as `admin`: 1 to 64 of `a-z 0-9 _ : . -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Role(String);

/// Why a role or scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(String);

impl Role {
    /// The role that may use the administration API.
    pub const ADMIN: &'static str = "admin";

    /// Checks the alphabet and length.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let ok = (1..=64).contains(&raw.len())
            && raw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | ':' | '.' | '-'));
        if ok {
            Ok(Role(raw.to_owned()))
        } else {
            Err(NameError(format!("role must be 1 to 64 of a-z 0-9 _ : . - (got {:?})", truncate(raw))))
        }
    }

    /// The admin role.
    pub fn admin() -> Self {
        Role(Self::ADMIN.to_owned())
    }

    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of roles, kept sorted and free of duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    /// Parses every name; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, NameError> {
        names.iter().map(|n| Role::parse(n.as_ref())).collect::<Result<_, _>>().map(Roles)
    }

    /// Whether the set holds the admin role.
    pub fn is_admin(&self) -> bool {
        self.0.iter().any(|r| r.0 == Role::ADMIN)
    }

    /// Adds a role.
    pub fn insert(&mut self, role: Role) {
        self.0.insert(role);
    }

    /// The names, sorted.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|r| r.0.clone()).collect()
    }
}

/// An OAuth 2.0 scope token (RFC 6749 §3.3: printable ASCII except space, `"` and `\`), at most 128 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(String);

impl Scope {
    /// Checks the RFC 6749 alphabet.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let ok =
            (1..=128).contains(&raw.len()) && raw.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(Scope(raw.to_owned()))
        } else {
            Err(NameError(format!("scope must be printable ASCII without spaces, quotes or backslashes (got {:?})", truncate(raw))))
        }
    }

    /// The scope token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scopes; on the wire a space-separated string (RFC 6749 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Parses a list of scope tokens.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, NameError> {
        names.iter().map(|n| Scope::parse(n.as_ref())).collect::<Result<_, _>>().map(Scopes)
    }

    /// Parses the space-separated form; runs of spaces are tolerated.
    pub fn parse_space_separated(raw: &str) -> Result<Self, NameError> {
        raw.split(' ').filter(|s| !s.is_empty()).map(Scope::parse).collect::<Result<_, _>>().map(Scopes)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether no scope is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens, sorted.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(&scope.0)?;
            first = false;
        }
        Ok(())
    }
}

fn truncate(raw: &str) -> String {
    raw.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn space_separated_scopes_round_trip(tokens in proptest::collection::vec("[!#-\\[\\]-~]{1,20}", 0..8)) {
            let raw = tokens.join(" ");
            let scopes = Scopes::parse_space_separated(&raw).unwrap();
            let again = Scopes::parse_space_separated(&scopes.to_string()).unwrap();
            prop_assert_eq!(again, scopes);
        }

        #[test]
        fn any_scope_input_parses_or_is_refused_without_panicking(raw in ".{0,200}") {
            if let Ok(scopes) = Scopes::parse_space_separated(&raw) {
                prop_assert!(!scopes.to_string().contains("  "));
            }
        }
    }

    #[test]
    fn scopes_follow_the_rfc_6749_alphabet() {
        assert!(Scope::parse("notes:read").is_ok());
        assert!(Scope::parse("a/b+c").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "é", "a\u{7f}"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn space_separated_scopes_round_trip_sorted() {
        let scopes = Scopes::parse_space_separated("b  a c").unwrap();
        assert_eq!(scopes.to_string(), "a b c");
        assert!(Scopes::parse_space_separated("a").unwrap().is_subset(&scopes));
        assert!(!Scopes::parse_space_separated("a d").unwrap().is_subset(&scopes));
    }

    #[test]
    fn roles_are_lower_case_names() {
        assert!(Roles::parse(&["admin", "notes:writer"]).unwrap().is_admin());
        assert!(Role::parse("Admin").is_err());
        assert!(Role::parse("x y").is_err());
    }
}
