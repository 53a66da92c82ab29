//! The master key: seals private keys at rest with AES-256-GCM, and is the root of the other
//! secrets every instance must share (each derived with HKDF under its own purpose).

use super::KeyError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, MAX_TAG_LEN, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use aws_lc_rs::rand;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use secrecy::zeroize::Zeroizing;
use std::fmt;

/// The key that seals private keys at rest: 32 bytes, AES-256-GCM.
pub struct MasterKey {
    key: LessSafeKey,
    /// HKDF-Extract of the key bytes, for [`MasterKey::derive`].
    prk: hkdf::Prk,
    /// Thirty-two zero bytes: a placeholder, not a secret (`prod` refuses it).
    all_zero: bool,
}

/// The HKDF salt of every key derived from the master key.
const DERIVE_SALT: &[u8] = b"tessera master key derivation v1";

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// Parses base64 (standard or url-safe, padding optional) of exactly 32 bytes.
    pub fn parse_base64(s: &str) -> Result<Self, KeyError> {
        let unpadded = s.trim().trim_end_matches('=');
        // Zeroizing: the raw key must not linger in freed heap memory once aws-lc has its copy.
        let bytes = Zeroizing::new(
            STANDARD_NO_PAD
                .decode(unpadded)
                .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
                .map_err(|_| KeyError::InvalidMasterKey("the master key is not base64"))?,
        );
        if bytes.len() != 32 {
            return Err(KeyError::InvalidMasterKey("the master key must be 32 bytes (base64 of 32 random bytes)"));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes.as_slice()).map_err(|_| KeyError::InvalidMasterKey("unusable master key"))?;
        let all_zero = bytes.iter().all(|b| *b == 0);
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, DERIVE_SALT).extract(bytes.as_slice());
        Ok(MasterKey { key: LessSafeKey::new(key), prk, all_zero })
    }

    /// A 32-byte key for `purpose` (HKDF-SHA256 expand): the same on every instance configured
    /// with this master key, and unrelated to the sealing key and to other purposes.
    pub fn derive(&self, purpose: &str) -> Result<[u8; 32], KeyError> {
        let mut out = [0u8; 32];
        let info = [purpose.as_bytes()];
        self.prk.expand(&info, hkdf::HKDF_SHA256).and_then(|okm| okm.fill(&mut out)).map_err(|_| KeyError::Generate)?;
        Ok(out)
    }

    /// Whether the key is thirty-two zero bytes, which anyone would try first.
    pub fn is_all_zero(&self) -> bool {
        self.all_zero
    }

    /// Encrypts with a random nonce: `nonce || ciphertext || tag`; `aad` binds it to its row.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| KeyError::Encrypt)?;
        // Sized up front and encrypted in place: a reallocation would free a plaintext copy unzeroized.
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + MAX_TAG_LEN);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut sealed[NONCE_LEN..])
            .map_err(|_| KeyError::Encrypt)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    /// Decrypts what [`MasterKey::seal`] made with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        if sealed.len() < NONCE_LEN {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Decrypt)?;
        let mut in_out = ciphertext.to_vec();
        // Truncate rather than copy, so no second, unzeroized copy of the plaintext is left behind.
        let len = self.key.open_in_place(nonce, Aad::from(aad), &mut in_out).map_err(|_| KeyError::Decrypt)?.len();
        in_out.truncate(len);
        Ok(in_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn the_master_key_seals_and_opens_only_with_the_same_key_and_aad() {
        let key = MasterKey::parse_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let other = MasterKey::parse_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let sealed = key.seal(b"private key", b"kid-1").unwrap();
        assert_ne!(sealed, key.seal(b"private key", b"kid-1").unwrap(), "nonces must differ");
        assert_eq!(key.open(&sealed, b"kid-1").unwrap(), b"private key");
        assert!(matches!(key.open(&sealed, b"kid-2"), Err(KeyError::Decrypt)));
        assert!(matches!(other.open(&sealed, b"kid-1"), Err(KeyError::Decrypt)));
        for i in [0, NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert!(matches!(key.open(&tampered, b"kid-1"), Err(KeyError::Decrypt)), "byte {i}");
        }
        assert!(matches!(key.open(&sealed[..NONCE_LEN + 3], b"kid-1"), Err(KeyError::Decrypt)));
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64() {
        assert!(MasterKey::parse_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(MasterKey::parse_base64(&STANDARD.encode([1u8; 33])).is_err());
        assert!(MasterKey::parse_base64("not base64 at all!").is_err());
        assert!(MasterKey::parse_base64(&URL_SAFE_NO_PAD.encode([0xfbu8; 32])).is_ok());
        assert!(MasterKey::parse_base64(&STANDARD_NO_PAD.encode([0xfbu8; 32])).is_ok());
        let secret = STANDARD.encode([0x5au8; 31]);
        let message = MasterKey::parse_base64(&secret).unwrap_err().to_string();
        assert!(!message.contains(&secret[..8]), "{message}");
    }

    #[test]
    fn derived_keys_depend_on_the_master_key_and_the_purpose_only() {
        let key = MasterKey::parse_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let same = MasterKey::parse_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        let other = MasterKey::parse_base64(&STANDARD.encode([7u8; 32])).unwrap();
        let csrf = key.derive("csrf").unwrap();
        assert_eq!(csrf, same.derive("csrf").unwrap(), "another instance with the same master key");
        assert_ne!(csrf, key.derive("other").unwrap());
        assert_ne!(csrf, other.derive("csrf").unwrap());
        assert_ne!(&csrf[..], b"0123456789abcdef0123456789abcdef", "not the master key itself");
    }

    #[test]
    fn the_master_key_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<MasterKey>();
    }

    #[test]
    fn debug_output_carries_no_key_material() {
        let master = MasterKey::parse_base64("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
        assert_eq!(format!("{master:?}"), "MasterKey([redacted])");
    }
}
