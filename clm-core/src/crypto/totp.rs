//! TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) for authenticator
//! apps. The codes and base32 come from `totp-rs`; the provisioning URI is
//! written here because its exact text is part of clm's interface (totp-rs
//! orders the parameters differently, leaves out the defaults and refuses a
//! `:` in an account name).

use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::crypto::secret::{SecretBytes, SecretString, random_bytes};
use crate::{Error, Result};

/// Length of one TOTP time step, in seconds.
pub const STEP_SECONDS: i64 = 30;
const STEP: u64 = STEP_SECONDS as u64;
const DIGITS: u8 = 6;
/// Steps of drift accepted either way (RFC 6238 §5.2 recommends one).
const SKEW: u16 = 1;
/// 160-bit secrets, as RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// A new random [`SECRET_LEN`]-byte TOTP secret.
pub fn generate_secret() -> SecretBytes {
    SecretBytes::new(random_bytes(SECRET_LEN))
}

/// The time step containing `unix_seconds`.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The generator for `secret` (its copy is wiped on drop: totp-rs's
/// `zeroize` feature). Refuses secrets under 128 bits (RFC 4226 §4).
fn totp(secret: &SecretBytes) -> Result<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_skew(SKEW)
        .with_step_duration(STEP)
        .with_secret(secret.expose())
        .build()
        .map_err(|err| Error::crypto(format!("TOTP secret cannot be used: {err}")))
}

/// The code for one time step.
pub fn code_for_step(secret: &SecretBytes, step: i64) -> Result<String> {
    let time = u64::try_from(step)
        .ok()
        .and_then(|step| step.checked_mul(STEP))
        .ok_or_else(|| Error::crypto("TOTP time step is out of range"))?;
    Ok(totp(secret)?.generate(time).to_string())
}

/// Checks `code` at `unix_seconds`, accepting one step of drift either way.
/// Returns the matching step so the caller can refuse its reuse.
pub fn verify(secret: &SecretBytes, code: &str, unix_seconds: i64) -> Result<Option<i64>> {
    let totp = totp(secret)?;
    // Before 1970 no step exists, so no code can match.
    let Ok(time) = u64::try_from(unix_seconds) else {
        return Ok(None);
    };
    Ok(totp
        .check(code.trim(), time)
        .and_then(|step| i64::try_from(step).ok()))
}

/// RFC 4648 base32 without padding, as authenticator apps expect.
pub fn base32_encode(bytes: &[u8]) -> SecretString {
    SecretString::new(Secret::from(bytes).to_base32())
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
        // RFC 6238 appendix B, every SHA-1 row; the table has 8 digits and
        // our 6-digit codes are its last six.
        let secret = SecretBytes::from_slice(b"12345678901234567890");
        for (time, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(
                code_for_step(&secret, step_at(time)).unwrap(),
                expected[2..],
                "time {time}"
            );
            assert_eq!(
                verify(&secret, &expected[2..], time).unwrap(),
                Some(step_at(time))
            );
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
        let next = code_for_step(&secret, step_at(now) + 1).unwrap();
        assert_eq!(verify(&secret, &next, now).unwrap(), Some(step_at(now) + 1));
        assert_eq!(
            verify(&secret, &format!(" {next}\n"), now).unwrap(),
            Some(step_at(now) + 1)
        );
        let old = code_for_step(&secret, step_at(now) - 2).unwrap();
        assert_eq!(verify(&secret, &old, now).unwrap(), None);
        assert_eq!(verify(&secret, "12345", now).unwrap(), None);
        assert_eq!(verify(&secret, "+12345", now).unwrap(), None);
        assert_eq!(verify(&secret, "1234567", now).unwrap(), None);
        assert_eq!(verify(&secret, &previous, -1).unwrap(), None);
    }

    #[test]
    fn short_secrets_and_negative_steps_are_errors() {
        let short = SecretBytes::from_slice(&[7u8; 10]);
        let err = code_for_step(&short, 1).unwrap_err();
        assert!(err.to_string().contains("128 bits"), "{err}");
        assert!(verify(&short, "123456", 1_700_000_000).is_err());
        let secret = generate_secret();
        assert!(code_for_step(&secret, -1).is_err());
        assert!(code_for_step(&secret, i64::MAX).is_err());
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32_encode(b"foobar").expose(), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f").expose(), "MY");
        assert_eq!(
            base32_encode(b"12345678901234567890").expose(),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
    }

    #[test]
    fn provisioning_uri_is_unchanged() {
        let secret = SecretBytes::from_slice(b"12345678901234567890");
        assert_eq!(
            provisioning_uri(&secret, "clm", "alice@example.com").expose(),
            "otpauth://totp/clm:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=clm&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            provisioning_uri(&secret, "My CA", "a b:c/é").expose(),
            "otpauth://totp/My%20CA:a%20b%3Ac%2F%C3%A9?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=My%20CA&algorithm=SHA1&digits=6&period=30"
        );
    }
}
