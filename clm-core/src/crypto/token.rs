//! Bearer secrets: session tokens and API keys. Only SHA-256 hashes are stored;
//! API keys carry a checksum so malformed keys are refused before any lookup.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::crypto::secret::{SecretString, random_bytes};
use crate::{Error, Result};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` random base62 characters (each ~5.95 bits).
pub fn random_base62(n: usize) -> String {
    // Rejection sampling keeps the distribution uniform.
    let mut out = String::with_capacity(n);
    while out.len() < n {
        for byte in random_bytes(n * 2) {
            if byte < 248 && out.len() < n {
                out.push(char::from(BASE62[usize::from(byte % 62)]));
            }
        }
    }
    out
}

/// Lowercase hex SHA-256 of `data` (how tokens, fingerprints and key ids
/// are stored).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Constant-time equality of two hex digests.
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A session token: 256 random bits, `clms_` + 43 base62 characters.
pub fn new_session_token() -> SecretString {
    SecretString::new(format!("clms_{}", random_base62(43)))
}

/// The first part of every API key: `clm_<key id>_<secret + checksum>`.
pub const API_KEY_PREFIX: &str = "clm";
const API_KEY_ID_LEN: usize = 12;
/// 22 base62 characters: about 131 random bits.
const API_KEY_SECRET_LEN: usize = 22;
const API_KEY_CHECKSUM_LEN: usize = 6;

/// A new API key `clm_<key id>_<secret><checksum>` and its key id.
pub fn new_api_key() -> (String, SecretString) {
    let key_id = random_base62(API_KEY_ID_LEN);
    let secret = random_base62(API_KEY_SECRET_LEN);
    let checksum = api_key_checksum(&key_id, &secret);
    let key = SecretString::new(format!("{API_KEY_PREFIX}_{key_id}_{secret}{checksum}"));
    (key_id, key)
}

fn api_key_checksum(key_id: &str, secret: &str) -> String {
    let digest = Sha256::digest(format!("{API_KEY_PREFIX}_{key_id}_{secret}").as_bytes());
    digest
        .iter()
        .take(API_KEY_CHECKSUM_LEN)
        .map(|b| char::from(BASE62[usize::from(*b % 62)]))
        .collect()
}

/// Checks the shape and checksum of a presented API key and returns its key
/// id. Nothing touches the database before this passes.
pub fn parse_api_key(key: &str) -> Result<String> {
    let malformed = || Error::Authentication("malformed API key".into());
    let rest = key.strip_prefix("clm_").ok_or_else(malformed)?;
    let (key_id, tail) = rest.split_once('_').ok_or_else(malformed)?;
    let all_base62 = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    if key_id.len() != API_KEY_ID_LEN
        || tail.len() != API_KEY_SECRET_LEN + API_KEY_CHECKSUM_LEN
        || !all_base62(key_id)
        || !all_base62(tail)
    {
        return Err(malformed());
    }
    let (secret, checksum) = tail.split_at(API_KEY_SECRET_LEN);
    if !digests_equal(&api_key_checksum(key_id, secret), checksum) {
        return Err(malformed());
    }
    Ok(key_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_key_round_trip_and_checksum() {
        let (key_id, key) = new_api_key();
        assert_eq!(parse_api_key(key.expose()).unwrap(), key_id);
        // Any single-character change breaks the checksum or the shape.
        let mut tampered = key.expose().to_string();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'a' { 'b' } else { 'a' });
        assert!(parse_api_key(&tampered).is_err());
        assert!(parse_api_key("clm_short_x").is_err());
        assert!(parse_api_key("").is_err());
    }

    #[test]
    fn session_tokens_are_long_and_distinct() {
        let a = new_session_token();
        let b = new_session_token();
        assert_eq!(a.expose().len(), 48);
        assert_ne!(a.expose(), b.expose());
    }
}
