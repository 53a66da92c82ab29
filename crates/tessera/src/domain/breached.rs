//! Passwords known from public breaches, refused as new passwords whatever their estimated
//! strength: an attacker tries these first. See `data/README.md` for the list and its form
//! (sorted 64-bit prefixes of SHA-256, so the binary carries no password itself).

use aws_lc_rs::digest;

static PREFIXES: &[u8] = include_bytes!("../../data/breached-passwords.bin");

/// Whether `password` (compared in lower case) is on the shipped list of breached passwords.
pub fn is_breached(password: &str) -> bool {
    let hash = digest::digest(&digest::SHA256, password.to_lowercase().as_bytes());
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&hash.as_ref()[..8]);
    let entries = PREFIXES.len() / 8;
    let at = |i: usize| &PREFIXES[i * 8..i * 8 + 8];
    let (mut lo, mut hi) = (0, entries);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match at(mid).cmp(&prefix[..]) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_whole_entries() {
        assert_eq!(PREFIXES.len() % 8, 0);
        assert!(PREFIXES.len() / 8 > 8_000);
        assert!(PREFIXES.chunks(8).zip(PREFIXES.chunks(8).skip(1)).all(|(a, b)| a < b));
    }

    #[test]
    fn breached_passwords_are_found_in_any_case_and_others_are_not() {
        for known in ["password", "iloveyou", "1q2w3e4r5t", "qwertyuiop", "Sunshine1", "PASSWORD1"] {
            assert!(is_breached(known), "{known}");
        }
        for unknown in ["correct horse battery staple", "", "x", "Tr0ub4dor&3-but-longer-and-unusual"] {
            assert!(!is_breached(unknown), "{unknown}");
        }
    }
}
