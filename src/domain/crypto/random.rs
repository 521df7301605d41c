//! Random base62 strings from the OS CSPRNG: row ids, nonces, one-time tokens
//! and recovery codes. Key material is not made here: the verification crate
//! owns the key format.

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `len` uniformly random base62 characters (62^16 ≈ 2^95 for a 16-character id).
///
/// Bytes at or above 248 (= 4 × 62) are skipped so every character is
/// equally likely: no modulo bias.
pub fn base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        let unbiased = bytes.into_iter().filter(|b| *b < 248);
        out.extend(
            unbiased
                .map(|b| char::from(ALPHABET[usize::from(b % 62)]))
                .take(len - out.len()),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_have_the_length_asked_and_only_base62() {
        for len in [0, 1, 16, 33, 100] {
            let s = base62(len);
            assert_eq!(s.len(), len);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s}");
        }
    }

    #[test]
    fn strings_differ() {
        assert_ne!(base62(16), base62(16));
    }
}
