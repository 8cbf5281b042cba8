//! TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) and base32 for
//! authenticator apps.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::crypto::secret::{SecretBytes, SecretString, random_bytes};
use crate::{Error, Result};

pub const STEP_SECONDS: i64 = 30;
const DIGITS: u32 = 6;
/// 160-bit secrets, as RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

pub fn generate_secret() -> SecretBytes {
    SecretBytes::new(random_bytes(SECRET_LEN))
}

/// The time step containing `unix_seconds`.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code for one time step.
pub fn code_for_step(secret: &SecretBytes, step: i64) -> Result<String> {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose())
        .map_err(|_| Error::crypto("TOTP secret has an invalid length"))?;
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    Ok(format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS),
        width = DIGITS as usize
    ))
}

/// Checks `code` at `unix_seconds`, accepting one step of drift either way.
/// Returns the matching step so the caller can refuse its reuse.
pub fn verify(secret: &SecretBytes, code: &str, unix_seconds: i64) -> Result<Option<i64>> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let current = step_at(unix_seconds);
    for step in [current - 1, current, current + 1] {
        let expected = code_for_step(secret, step)?;
        if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into() {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32_encode(bytes: &[u8]) -> SecretString {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    SecretString::new(out)
}

/// `otpauth://` URI for enrolling in an authenticator app.
pub fn provisioning_uri(secret: &SecretBytes, issuer: &str, account: &str) -> SecretString {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    let secret_b32 = base32_encode(secret.expose());
    SecretString::new(format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        encode(issuer),
        encode(account),
        secret_b32.expose(),
        encode(issuer)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1 seed, truncated to 6 digits.
        let secret = SecretBytes::from_slice(b"12345678901234567890");
        for (time, expected) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(code_for_step(&secret, step_at(time)).unwrap(), expected);
        }
    }

    #[test]
    fn drift_of_one_step_is_accepted_two_is_not() {
        let secret = generate_secret();
        let now = 1_700_000_000;
        let previous = code_for_step(&secret, step_at(now) - 1).unwrap();
        assert_eq!(
            verify(&secret, &previous, now).unwrap(),
            Some(step_at(now) - 1)
        );
        let old = code_for_step(&secret, step_at(now) - 2).unwrap();
        assert_eq!(verify(&secret, &old, now).unwrap(), None);
        assert_eq!(verify(&secret, "12345", now).unwrap(), None);
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32_encode(b"foobar").expose(), "MZXW6YTBOI");
    }
}
