//! PKCE (RFC 7636), S256 only: `plain` would hand the verifier to whoever
//! reads the authorization request, so it is refused.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An S256 challenge is the unpadded base64url of a SHA-256: 43 characters.
const CHALLENGE_LEN: usize = 43;

fn is_base64url(raw: &str) -> bool {
    raw.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `challenge` can be an S256 code challenge.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == CHALLENGE_LEN && is_base64url(challenge)
}

/// Whether `verifier` is well-formed (43–128 unreserved characters, RFC
/// 7636 §4.1) and hashes to `challenge`; the comparison is constant-time.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let equal: bool = computed.as_bytes().ct_eq(challenge.as_bytes()).into();
    well_formed && equal
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_matches() {
        assert!(valid_challenge(CHALLENGE));
        assert!(verifier_matches(VERIFIER, CHALLENGE));
    }

    #[test]
    fn wrong_short_or_plain_verifiers_fail() {
        assert!(!verifier_matches(&VERIFIER.replace('d', "e"), CHALLENGE));
        assert!(!verifier_matches("short", CHALLENGE));
        // `plain`: the verifier equal to the challenge is not S256.
        assert!(!verifier_matches(CHALLENGE, CHALLENGE));
        assert!(!verifier_matches(&"a".repeat(129), CHALLENGE));
    }

    #[test]
    fn challenges_have_the_s256_shape() {
        assert!(!valid_challenge(""));
        assert!(!valid_challenge(&CHALLENGE[1..]));
        assert!(!valid_challenge(&CHALLENGE.replace('-', "+")));
    }
}
