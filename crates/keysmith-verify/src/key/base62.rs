//! The base62 alphabet shared by key ids, secrets and checksums.

/// Digits, then upper case, then lower case: the order base62 encoders agree on.
pub(crate) const ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Width of an encoded CRC32: 62^6 > 2^32, so six digits always suffice.
pub(crate) const CHECKSUM_LEN: usize = 6;

/// Encodes a CRC32 as exactly six base62 digits, most significant first.
pub(crate) fn encode_checksum(mut value: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out
}

/// Fills `out` with uniformly random base62 characters from the OS CSPRNG.
///
/// Rejection sampling: bytes at or above 248 (= 4 × 62) are dropped so every
/// character is equally likely and no entropy is lost to modulo bias.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), getrandom::Error> {
    let mut filled = 0;
    let mut pool = [0u8; 64];
    while filled < out.len() {
        getrandom::fill(&mut pool)?;
        for byte in pool {
            if filled == out.len() {
                break;
            }
            if byte < 248 {
                out[filled] = ALPHABET[(byte % 62) as usize];
                filled += 1;
            }
        }
    }
    Ok(())
}

/// A random base62 string of `len` characters (ids that are public, not secret).
pub(crate) fn random_id(len: usize) -> String {
    let mut buf = vec![0u8; len];
    fill_random(&mut buf).expect("the OS random number generator failed");
    String::from_utf8(buf).expect("base62 is ASCII")
}

pub(crate) fn is_base62(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_encoding_is_fixed_width_and_distinct() {
        assert_eq!(&encode_checksum(0), b"000000");
        assert_eq!(&encode_checksum(61), b"00000z");
        assert_eq!(&encode_checksum(62), b"000010");
        assert_eq!(encode_checksum(u32::MAX).len(), CHECKSUM_LEN);
        assert_ne!(encode_checksum(u32::MAX), encode_checksum(u32::MAX - 1));
    }

    #[test]
    fn random_ids_use_the_alphabet_and_differ() {
        let a = random_id(32);
        let b = random_id(32);
        assert_eq!(a.len(), 32);
        assert!(is_base62(a.as_bytes()));
        assert_ne!(a, b);
    }
}
