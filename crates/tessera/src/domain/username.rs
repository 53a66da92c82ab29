use std::fmt;

/// A username: 3 to 32 of `a-z 0-9 _ . -` after folding to lower case, so `Alice` and
/// `ALICE` are the same name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("username must be 3 to 32 characters of a-z, 0-9, '_', '.' and '-'")]
pub struct UsernameError;

impl Username {
    /// Folds to lower case and checks length and alphabet.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let name = raw.trim().to_ascii_lowercase();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-');
        if (3..=32).contains(&name.len()) && name.chars().all(allowed) { Ok(Username(name)) } else { Err(UsernameError) }
    }

    /// The folded name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_parsed_name_is_lower_case_and_in_the_alphabet(raw in ".{0,64}") {
            if let Ok(name) = Username::parse(&raw) {
                prop_assert!((3..=32).contains(&name.as_str().len()));
                prop_assert!(name.as_str().chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c)));
            }
        }

        #[test]
        fn folding_is_idempotent(raw in "[A-Za-z0-9_.-]{3,32}") {
            let once = Username::parse(&raw).unwrap();
            prop_assert_eq!(Username::parse(once.as_str()).unwrap(), once);
        }
    }

    #[test]
    fn names_are_folded_to_lower_case() {
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "alice");
        assert_eq!(Username::parse("ALICE").unwrap(), Username::parse("alice").unwrap());
    }

    #[test]
    fn names_outside_the_alphabet_or_length_are_refused() {
        for bad in ["ab", &"a".repeat(33), "al ice", "alice!", "élise", "a/b", "", "a'--"] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["abc", "a.b-c_d", "user123", &"z".repeat(32)] {
            assert!(Username::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }
}
