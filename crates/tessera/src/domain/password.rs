use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// A password as received: secret, never logged. Login accepts any [`PasswordInput`]; only
/// a new password must also pass [`NewPassword::parse`].
#[derive(Clone)]
pub struct PasswordInput(SecretString);

impl PasswordInput {
    /// Longer inputs are refused before hashing, so nobody can make us hash megabytes.
    pub const MAX_LEN: usize = 1024;

    /// Wraps a received password; `None` when it is too long to be anyone's password.
    pub fn new(raw: String) -> Option<Self> {
        (raw.len() <= Self::MAX_LEN).then(|| PasswordInput(SecretString::from(raw)))
    }

    /// The password bytes, for the hasher only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PasswordInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordInput([redacted])")
    }
}

/// A password that passed the policy: 8 to 256 characters and not guessable.
#[derive(Clone, Debug)]
pub struct NewPassword(PasswordInput);

/// Why a new password was refused; the message helps the person pick a better one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeakPassword(pub String);

impl NewPassword {
    /// zxcvbn score at or above which a password is accepted ("safely unguessable").
    const MIN_SCORE: u8 = 3;

    /// Checks length and strength; `context` holds what a guesser would try first
    /// (the email, its local part, the username).
    pub fn parse(raw: String, context: &[&str]) -> Result<Self, WeakPassword> {
        let chars = raw.chars().count();
        if chars < 8 {
            return Err(WeakPassword("password must be at least 8 characters".into()));
        }
        if chars > 256 {
            return Err(WeakPassword("password must be at most 256 characters".into()));
        }
        let lowered = raw.to_lowercase();
        if context.iter().any(|c| !c.is_empty() && lowered == c.to_lowercase()) {
            return Err(WeakPassword("password must not be your email or username".into()));
        }
        if super::breached::is_breached(&raw) {
            return Err(WeakPassword("password appears in lists of breached passwords; choose another".into()));
        }
        let entropy = zxcvbn::zxcvbn(&raw, context);
        if u8::from(entropy.score()) < Self::MIN_SCORE {
            let hint =
                entropy.feedback().and_then(|f| f.warning().map(|w| w.to_string())).unwrap_or_else(|| "it is too easy to guess".to_owned());
            return Err(WeakPassword(format!("password is too easy to guess: {hint}. Add more words or characters")));
        }
        // Length was checked against chars; PasswordInput's byte bound is larger than 256 * 4.
        Ok(NewPassword(PasswordInput(SecretString::from(raw))))
    }

    /// The password bytes, for the hasher only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// An argon2id PHC string. Not secret like a password, but never shown or logged either.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by the hasher or read from storage.
    pub fn new(phc: String) -> Self {
        PasswordHash(phc)
    }

    /// The PHC string, for storage and verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([redacted])")
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn passwords_from_breaches_are_refused_even_when_they_look_strong() {
        // Each of these is on the shipped breach list and yet scores as "safely unguessable".
        for breached in ["0icotpd785", "1fptjtl919", "3qdlqb49js", "2pacshakur"] {
            assert!(u8::from(zxcvbn::zxcvbn(breached, &[]).score()) >= NewPassword::MIN_SCORE, "{breached} looks weak anyway");
            let refused = NewPassword::parse(breached.to_owned(), &[]).unwrap_err();
            assert!(refused.0.contains("breached"), "{breached}: {refused}");
        }
    }

    use super::*;

    fn parse(p: &str) -> Result<NewPassword, WeakPassword> {
        NewPassword::parse(p.to_owned(), &["alice@example.com", "alice"])
    }

    #[test]
    fn guessable_passwords_are_refused() {
        for weak in ["password123", "qwertyuiop", "alice@example.com", "ALICE@example.com", "aaaaaaaaaaaa", "short"] {
            assert!(parse(weak).is_err(), "{weak:?} should be refused");
        }
    }

    #[test]
    fn long_random_passphrases_are_accepted() {
        for strong in ["correct horse battery staple", "vK9#qL2!mZ7@", "Tessera-Ocean-Lantern-42"] {
            assert!(parse(strong).is_ok(), "{strong:?} should be accepted");
        }
    }

    #[test]
    fn length_is_bounded_in_characters() {
        assert!(parse(&"Zq9!xW".repeat(43)).is_err()); // 258 characters
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let p = parse("correct horse battery staple").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
