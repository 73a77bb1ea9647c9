//! PKCE S256 (RFC 7636 §4) and `state` values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// 32 random bytes, base64url: a 43-character verifier (RFC 7636 §4.1).
pub fn verifier() -> Result<Secret, getrandom::Error> {
    random_token(32).map(Secret::new)
}

/// `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2).
pub fn challenge(verifier: &Secret) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()))
}

/// An unguessable `state` (RFC 6749 §10.12).
pub fn state() -> Result<Secret, getrandom::Error> {
    random_token(24).map(Secret::new)
}

fn random_token(bytes: usize) -> Result<String, getrandom::Error> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw)?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(challenge(&v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(verifier().unwrap().expose().len(), 43);
        assert_ne!(state().unwrap(), state().unwrap());
    }
}
