//! SCRAM-SHA-256 verifiers computed on our side, as `psql`'s `\password` does: the server is
//! sent `SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>`, never the password itself, so
//! not even a server that logs every statement can leak it.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default `scram_iterations`.
pub(crate) const SCRAM_ITERATIONS: u32 = 4096;
const SALT_BYTES: usize = 16;

/// The verifier for `password` with a fresh random salt.
pub(crate) fn verifier(password: &str) -> String {
    let salt: [u8; SALT_BYTES] = rand::random();
    verifier_with_salt(password, &salt, SCRAM_ITERATIONS)
}

pub(crate) fn verifier_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

/// Whether `password` is the one `verifier` (`SCRAM-SHA-256$iterations:salt$StoredKey:ServerKey`)
/// was made from: the verifier is recomputed with its own salt and iterations.
pub(crate) fn matches(password: &str, verifier: &str) -> bool {
    let parsed = (|| {
        let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
        let (parameters, keys) = rest.split_once('$')?;
        let (iterations, salt) = parameters.split_once(':')?;
        Some((iterations.parse::<u32>().ok()?, STANDARD.decode(salt).ok()?, keys))
    })();
    match parsed {
        Some((iterations, salt, keys)) => {
            verifier_with_salt(password, &salt, iterations).ends_with(&format!("${keys}"))
        }
        None => false,
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_have_postgresqls_format_and_differ_per_salt() {
        let a = verifier("correct horse");
        let b = verifier("correct horse");
        assert!(a.starts_with("SCRAM-SHA-256$4096:"), "{a}");
        assert_eq!(a.split(['$', ':']).count(), 5, "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(!a.contains("correct horse"));
    }

    #[test]
    fn a_verifier_matches_its_password_only() {
        let v = verifier("correct horse battery");
        assert!(matches("correct horse battery", &v));
        assert!(!matches("correct horse", &v));
        assert!(!matches("correct horse battery", "md5abcdef"));
        assert!(!matches("x", "SCRAM-SHA-256$notanumber:AAAA$x:y"));
    }
}
