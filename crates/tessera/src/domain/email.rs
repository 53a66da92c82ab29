use std::fmt;

/// An email address as a person typed it, trimmed. Two addresses are the same account when
/// their [`Email::normalized`] forms are equal (case-insensitive comparison).
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

/// Why an email address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(&'static str);

impl Email {
    /// The longest address SMTP can carry (RFC 5321 §4.5.3.1.3).
    pub const MAX_LEN: usize = 254;

    /// Trims and checks an address: one `@`, a non-empty local part and a dotted domain,
    /// no whitespace or control characters.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim();
        if email.is_empty() {
            return Err(EmailError("email must not be empty"));
        }
        if email.len() > Self::MAX_LEN {
            return Err(EmailError("email is longer than 254 bytes"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailError("email must not contain spaces or control characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(EmailError("email must contain @"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(EmailError("the part before @ must be 1 to 64 bytes"));
        }
        let labels_ok =
            domain.contains('.') && domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if domain.contains('@') || !labels_ok {
            return Err(EmailError("the part after @ must be a domain such as example.com"));
        }
        Ok(Email(email.to_owned()))
    }

    /// The address as stored and shown.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness and look-up.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Addresses are personal data: logs get the domain only.
        let domain = self.0.split_once('@').map_or("", |(_, d)| d);
        write!(f, "Email(…@{domain})")
    }
}

impl fmt::Display for Email {
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
        fn any_input_parses_or_is_refused_without_panicking(raw in ".{0,300}") {
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(email.as_str(), raw.trim());
                prop_assert!(email.as_str().len() <= Email::MAX_LEN);
                prop_assert_eq!(email.normalized(), email.as_str().to_lowercase());
            }
        }

        #[test]
        fn well_formed_addresses_are_accepted(local in "[a-zA-Z0-9._+-]{1,40}", domain in "[a-z0-9]{1,20}(\\.[a-z]{2,6}){1,2}") {
            let raw = format!("{local}@{domain}");
            prop_assert!(Email::parse(&raw).is_ok(), "{}", raw);
        }
    }

    #[test]
    fn an_address_is_trimmed_and_keeps_its_case() {
        let email = Email::parse("  Alice@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "Alice@Example.COM");
        assert_eq!(email.normalized(), "alice@example.com");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for bad in [
            "",
            "   ",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "alice@@example.com",
            "alice@exa mple.com",
            "alice@.com",
            "alice@example..com",
            "a\0@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn an_overlong_address_is_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn debug_output_hides_the_local_part() {
        let email = Email::parse("alice@example.com").unwrap();
        assert!(!format!("{email:?}").contains("alice"));
    }
}
