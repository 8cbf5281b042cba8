//! Password hashing (argon2id, OWASP parameters) and the minimum password policy.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};

use crate::crypto::secret::SecretString;
use crate::{Error, Result};

/// OWASP's argon2id floor: 19 MiB, 2 iterations, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const LANES: u32 = 1;

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest password accepted, in characters (bounds the hashing work).
pub const MAX_PASSWORD_LEN: usize = 256;

fn hasher() -> Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|err| Error::Internal(format!("argon2 parameters: {err}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string. CPU-heavy: call off the executor.
pub fn hash_password(password: &SecretString) -> Result<String> {
    let hash = hasher()?
        .hash_password(password.expose().as_bytes())
        .map_err(|err| Error::Internal(format!("password hashing failed: {err}")))?;
    Ok(hash.to_string())
}

/// Verifies a password against a PHC string. Returns whether it matched and
/// whether the stored hash uses weaker parameters than today's (rehash).
pub fn verify_password(password: &SecretString, phc: &str) -> Result<(bool, bool)> {
    let parsed = PasswordHash::new(phc)
        .map_err(|_| Error::Internal("stored password hash is not a PHC string".into()))?;
    let matched = hasher()?
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok();
    let outdated = match Params::try_from(&parsed) {
        Ok(params) => {
            parsed.algorithm.as_str() != "argon2id"
                || params.m_cost() < MEMORY_KIB
                || params.t_cost() < ITERATIONS
        }
        Err(_) => true,
    };
    Ok((matched, outdated))
}

/// The minimum password policy: 12..=256 characters, not only one repeated
/// character, and not containing the username or the email's local part.
pub fn check_password_policy(password: &SecretString, username: &str, email: &str) -> Result<()> {
    let text = password.expose();
    let length = text.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(Error::invalid(
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        ));
    }
    let mut chars = text.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(Error::invalid(
            "password",
            "must not be one repeated character",
        ));
    }
    let lowered = text.to_lowercase();
    let local_part = email.split('@').next().unwrap_or_default().to_lowercase();
    for identity in [username.to_lowercase(), local_part] {
        if identity.len() >= 3 && lowered.contains(&identity) {
            return Err(Error::invalid(
                "password",
                "must not contain the username or email",
            ));
        }
    }
    Ok(())
}
