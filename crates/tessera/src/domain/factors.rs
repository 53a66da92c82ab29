//! Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of drift) and
//! recovery codes. Passkeys are WebAuthn's (see `service/passkeys.rs`).

use aws_lc_rs::{digest, rand};
use std::fmt;
use totp_rs::{Builder, Secret, Totp};

/// Seconds in one TOTP step.
pub const TOTP_STEP: u64 = 30;
/// How many recovery codes a person gets at a time.
pub const RECOVERY_CODES: usize = 10;

/// A TOTP secret: 160 random bits (RFC 4226 §4's recommendation).
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A new random secret.
    pub fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let mut bytes = vec![0u8; 20];
        rand::fill(&mut bytes)?;
        Ok(TotpSecret(bytes))
    }

    /// A secret as stored (after unsealing).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret(bytes)
    }

    /// The raw bytes, to seal and store.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base32 without padding, as authenticator apps take it.
    pub fn base32(&self) -> String {
        Secret::new(self.0.clone().into_boxed_slice()).to_base32()
    }

    fn totp(&self) -> Option<Totp> {
        Builder::new().with_secret(Secret::new(self.0.clone().into_boxed_slice())).with_step_duration(TOTP_STEP).with_skew(1).build().ok()
    }

    /// The step whose code `code` is, within one step of `unix_time`: `None` for a wrong
    /// code. Spaces in the code are ignored.
    pub fn check(&self, code: &str, unix_time: u64) -> Option<u64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.totp()?.check(&code, unix_time)
    }

    /// The code of the step holding `unix_time` (tests and the enrolment page's example).
    pub fn code_at(&self, unix_time: u64) -> Option<String> {
        Some(self.totp()?.generate(unix_time).to_string())
    }

    /// The `otpauth://` URI authenticator apps read (Key Uri Format): the label is
    /// `issuer:account`, and the parameters name the algorithm, digits and period.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20");
        let issuer = issuer.replace(':', "");
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={TOTP_STEP}",
            enc(&issuer),
            enc(account),
            self.base32(),
            enc(&issuer)
        )
    }
}

/// The characters of recovery codes: lower-case letters and digits without `i`, `l`, `o`, `1`.
const CODE_ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz023456789";

/// Ten new recovery codes, each `xxxx-xxxx-xxxx` (60 random bits).
pub fn generate_recovery_codes() -> Result<Vec<String>, aws_lc_rs::error::Unspecified> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 12];
            rand::fill(&mut bytes)?;
            let letters: Vec<char> = bytes.iter().map(|b| char::from(CODE_ALPHABET[usize::from(b % 32)])).collect();
            Ok(letters.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-"))
        })
        .collect()
}

/// The SHA-256 of a recovery code as typed, after dropping dashes and spaces and folding
/// case; `None` when it cannot be one.
pub fn recovery_code_hash(code: &str) -> Option<[u8; 32]> {
    let normalized: String = code.chars().filter(|c| *c != '-' && !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    if normalized.len() != 12 || !normalized.bytes().all(|b| CODE_ALPHABET.contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, normalized.as_bytes()).as_ref());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_totp_code_is_accepted_within_one_step_and_refused_beyond() {
        let secret = TotpSecret::generate().unwrap();
        let now = 1_700_000_000;
        let code = secret.code_at(now).unwrap();

        assert_eq!(secret.check(&code, now), Some(now / TOTP_STEP));
        assert_eq!(secret.check(&code, now + TOTP_STEP), Some(now / TOTP_STEP));
        assert_eq!(secret.check(&code, now - TOTP_STEP), Some(now / TOTP_STEP));
        assert_eq!(secret.check(&code, now + 2 * TOTP_STEP + TOTP_STEP), None);
        assert_eq!(secret.check("12345", now), None);
        assert_eq!(secret.check("abcdef", now), None);
    }

    #[test]
    fn the_rfc_6238_test_vector_gives_its_code() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());

        // RFC 6238 Appendix B, SHA-1, T = 59: 94287082 (8 digits); the last 6 are ours.
        assert_eq!(secret.code_at(59).unwrap(), "287082");
    }

    #[test]
    fn the_otpauth_uri_names_the_issuer_account_and_secret() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());

        let uri = secret.otpauth_uri("Acme Sign-in", "ann@example.com");

        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Sign-in:ann%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Sign-in&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_ten_distinct_codes_whose_hash_ignores_case_and_dashes() {
        let codes = generate_recovery_codes().unwrap();

        assert_eq!(codes.len(), 10);
        assert_eq!(codes.iter().collect::<std::collections::BTreeSet<_>>().len(), 10);
        let code = &codes[0];
        assert_eq!(code.len(), 14);
        let typed = code.replace('-', " ").to_uppercase();
        assert_eq!(recovery_code_hash(&typed), recovery_code_hash(code));
        assert!(recovery_code_hash(code).is_some());
        assert_eq!(recovery_code_hash("not-a-code"), None);
    }
}
