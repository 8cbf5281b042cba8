//! Password-based encryption for exports: PBES2 (RFC 8018: PBKDF2 with
//! HMAC-SHA256, AES-256-CBC) for encrypted PKCS #8 and modern PKCS #12, and,
//! only when a host asks for it, PKCS #12's legacy schemes (RFC 7292
//! appendices B and C: 3DES or 40-bit RC2, keyed by the PKCS #12 KDF over
//! SHA-1), plus that KDF for the PKCS #12 MAC.
//!
//! The algorithm identifiers are `pkcs5`'s types; the derivation and the
//! ciphers run here because pkcs5 0.8 leaves its derived key unwiped.
//!
//! The password rules live here too ([`check_export_password`],
//! [`check_iterations`]), the one home of what an export password must be.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeEncrypt, InnerIvInit, KeyIvInit};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Any, Encode, Sequence};
use sha2::digest::block_api::BlockSizeUser;
use sha2::digest::{Digest, FixedOutputReset};
use spki::AlgorithmIdentifierOwned;
use zeroize::{Zeroize, Zeroizing};

use super::secret::{SecretString, random_bytes};
use crate::{Error, Result};

/// PBKDF2 iterations (and PKCS #12 MAC iterations) unless the caller sets
/// them: OWASP's figure for PBKDF2-HMAC-SHA256 (Password Storage Cheat
/// Sheet, 2023). An exported key leaves clm, so its password meets offline
/// guessing at whatever speed the holder of the file can buy.
pub const DEFAULT_ITERATIONS: u32 = 600_000;
/// The fewest iterations a caller may ask for: Java's `keytool` default for
/// PKCS #12 (JDK 17+), five times OpenSSL 3's 2,048, for consumers that
/// import slowly.
pub const MIN_ITERATIONS: u32 = 10_000;
/// The most iterations a caller may ask for (bounds the CPU one export costs).
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// An export password's minimum length in characters (NIST SP 800-63B's
/// minimum for chosen secrets). Empty passwords are refused, always: an
/// "encrypted" file under an empty password is a plaintext key that looks
/// protected, and the plain key has its own explicit export.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// An export password's maximum length in characters.
pub const MAX_PASSWORD_CHARS: usize = 1024;

const PASSWORD: &str = "password";

/// Checks an export password: [`MIN_PASSWORD_CHARS`] to
/// [`MAX_PASSWORD_CHARS`] characters, no control characters (they do not
/// survive `openssl -passin` or a terminal). The error never quotes it.
pub fn check_export_password(password: &SecretString) -> Result<()> {
    let text = password.expose();
    let chars = text.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(
            PASSWORD,
            format!(
                "must be at least {MIN_PASSWORD_CHARS} characters (it is all that protects the \
                 exported private key); an empty password is never accepted"
            ),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(Error::invalid(
            PASSWORD,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(
            PASSWORD,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// The iteration count to use: [`DEFAULT_ITERATIONS`] when none is given,
/// otherwise one within [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`].
pub fn check_iterations(iterations: Option<u32>) -> Result<u32> {
    match iterations {
        None => Ok(DEFAULT_ITERATIONS),
        Some(n) if (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&n) => Ok(n),
        Some(n) => Err(Error::invalid(
            "iterations",
            format!("{n} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"),
        )),
    }
}

/// `pbeWithSHAAnd3-KeyTripleDES-CBC` (RFC 7292 appendix C).
pub(crate) const PBE_SHA1_3DES: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
/// `pbeWithSHAAnd40BitRC2-CBC` (RFC 7292 appendix C).
pub(crate) const PBE_SHA1_RC2_40: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6");

/// A password-based encryption scheme and its work factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pbe {
    /// PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC.
    Pbes2Aes256 { iterations: u32 },
    /// Legacy PKCS #12: 3DES-CBC keyed by the PKCS #12 KDF over SHA-1.
    Sha1TripleDes { iterations: u32 },
    /// Legacy PKCS #12: 40-bit RC2-CBC keyed by the PKCS #12 KDF over SHA-1.
    Sha1Rc2_40 { iterations: u32 },
}

/// `pkcs-12PbeParams` (RFC 7292 appendix C).
#[derive(Sequence)]
struct Pkcs12PbeParams {
    salt: OctetString,
    iterations: u32,
}

/// What an encryption made: the algorithm (with salt, IV and count) and
/// the ciphertext.
pub(crate) struct Encrypted {
    pub algorithm: AlgorithmIdentifierOwned,
    pub ciphertext: Vec<u8>,
}

fn der_failure(what: &str, err: impl std::fmt::Display) -> Error {
    Error::crypto(format!("encoding {what}: {err}"))
}

impl Pbe {
    /// Encrypts `plaintext` under `password` with a fresh salt (and IV).
    pub(crate) fn encrypt(self, password: &SecretString, plaintext: &[u8]) -> Result<Encrypted> {
        match self {
            Pbe::Pbes2Aes256 { iterations } => pbes2_encrypt(password, iterations, plaintext),
            Pbe::Sha1TripleDes { iterations } => {
                let salt = random_bytes(8);
                let pass = bmp_password(password);
                let key = pkcs12_kdf::<sha1::Sha1>(&pass, &salt, KdfPurpose::Key, iterations, 24);
                let iv = pkcs12_kdf::<sha1::Sha1>(&pass, &salt, KdfPurpose::Iv, iterations, 8);
                let ciphertext = cbc::Encryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                    .map_err(|err| Error::crypto(format!("3DES key: {err}")))?
                    .encrypt_padded_vec::<Pkcs7>(plaintext);
                Ok(Encrypted {
                    algorithm: pkcs12_pbe_algorithm(PBE_SHA1_3DES, salt, iterations)?,
                    ciphertext,
                })
            }
            Pbe::Sha1Rc2_40 { iterations } => {
                let salt = random_bytes(8);
                let pass = bmp_password(password);
                let key = pkcs12_kdf::<sha1::Sha1>(&pass, &salt, KdfPurpose::Key, iterations, 5);
                let iv = pkcs12_kdf::<sha1::Sha1>(&pass, &salt, KdfPurpose::Iv, iterations, 8);
                let cipher = rc2::Rc2::new_with_eff_key_len(&key, 40);
                let ciphertext = cbc::Encryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, &iv)
                    .map_err(|err| Error::crypto(format!("RC2 IV: {err}")))?
                    .encrypt_padded_vec::<Pkcs7>(plaintext);
                Ok(Encrypted {
                    algorithm: pkcs12_pbe_algorithm(PBE_SHA1_RC2_40, salt, iterations)?,
                    ciphertext,
                })
            }
        }
    }
}

fn pbes2_encrypt(password: &SecretString, iterations: u32, plaintext: &[u8]) -> Result<Encrypted> {
    let salt = random_bytes(16);
    let mut iv = [0u8; 16];
    super::secret::fill_random(&mut iv);
    let mut key = Zeroizing::new([0u8; 32]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.expose().as_bytes(),
        &salt,
        iterations,
        key.as_mut_slice(),
    );
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new_from_slices(key.as_slice(), &iv)
        .map_err(|err| Error::crypto(format!("AES key: {err}")))?
        .encrypt_padded_vec::<Pkcs7>(plaintext);
    let parameters =
        pkcs5::pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(iterations, &salt, iv)
            .map_err(|err| der_failure("PBES2 parameters", err))?;
    Ok(Encrypted {
        algorithm: AlgorithmIdentifierOwned {
            oid: pkcs5::pbes2::PBES2_OID,
            parameters: Some(
                Any::encode_from(&parameters).map_err(|err| der_failure("PBES2", err))?,
            ),
        },
        ciphertext,
    })
}

fn pkcs12_pbe_algorithm(
    oid: ObjectIdentifier,
    salt: Vec<u8>,
    iterations: u32,
) -> Result<AlgorithmIdentifierOwned> {
    let params = Pkcs12PbeParams {
        salt: OctetString::new(salt).map_err(|err| der_failure("salt", err))?,
        iterations,
    };
    Ok(AlgorithmIdentifierOwned {
        oid,
        parameters: Some(Any::encode_from(&params).map_err(|err| der_failure("PBE", err))?),
    })
}

/// The password as the PKCS #12 KDF takes it (RFC 7292 appendix B.1): UTF-16
/// big-endian with a two-byte zero terminator. Characters outside the BMP
/// become surrogate pairs, as OpenSSL writes them.
pub(crate) fn bmp_password(password: &SecretString) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.expose().encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// What the PKCS #12 KDF derives (its diversifier ID).
#[derive(Debug, Clone, Copy)]
pub(crate) enum KdfPurpose {
    /// ID 1: an encryption key.
    Key = 1,
    /// ID 2: an IV.
    Iv = 2,
    /// ID 3: a MAC key.
    Mac = 3,
}

/// The PKCS #12 KDF (RFC 7292 appendix B.2) over hash `D`: `out_len` bytes
/// from the BMP password, `salt` and `iterations`. Every intermediate that
/// holds password material is wiped.
pub(crate) fn pkcs12_kdf<D: Digest + FixedOutputReset + BlockSizeUser>(
    password_bmp: &[u8],
    salt: &[u8],
    purpose: KdfPurpose,
    iterations: u32,
    out_len: usize,
) -> Zeroizing<Vec<u8>> {
    let v = <D as BlockSizeUser>::block_size();
    let u = <D as Digest>::output_size();
    let diversifier = vec![purpose as u8; v];
    // I = S || P, each repeated to a whole number of v-byte blocks.
    let fill = |source: &[u8]| -> Vec<u8> {
        let len = source.len().div_ceil(v).saturating_mul(v);
        source.iter().copied().cycle().take(len).collect()
    };
    let mut input = Zeroizing::new(fill(salt));
    input.extend_from_slice(&Zeroizing::new(fill(password_bmp)));
    let mut out = Zeroizing::new(Vec::with_capacity(out_len.saturating_add(u)));
    let mut hasher = D::new();
    while out.len() < out_len {
        Digest::update(&mut hasher, &diversifier);
        Digest::update(&mut hasher, input.as_slice());
        // One buffer for every round (no allocation per iteration), wiped below.
        let mut a = hasher.finalize_reset();
        for _ in 1..iterations {
            Digest::update(&mut hasher, a.as_slice());
            FixedOutputReset::finalize_into_reset(&mut hasher, &mut a);
        }
        out.extend_from_slice(&a);
        if out.len() >= out_len {
            a.as_mut_slice().zeroize();
            break;
        }
        // I_j = (I_j + B + 1) mod 2^v for each block, B = A repeated to v bytes.
        let b: Zeroizing<Vec<u8>> = Zeroizing::new(a.iter().copied().cycle().take(v).collect());
        a.as_mut_slice().zeroize();
        for block in input.chunks_mut(v) {
            let mut carry = 1u16;
            for (byte, add) in block.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*byte) + u16::from(*add) + carry;
                *byte = (sum & 0xff) as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(out_len);
    out
}

/// `EncryptedPrivateKeyInfo` (RFC 5958 §3), also PKCS #12's
/// `pkcs8ShroudedKeyBag`. Ours rather than pkcs8's, whose algorithm field
/// cannot carry PKCS #12's legacy PBE identifiers.
#[derive(Sequence)]
pub(crate) struct EncryptedPrivateKeyInfo {
    pub encryption_algorithm: AlgorithmIdentifierOwned,
    pub encrypted_data: OctetString,
}

/// Encrypts a PKCS #8 `PrivateKeyInfo` (DER) under `password`, giving an
/// `EncryptedPrivateKeyInfo` DER.
pub(crate) fn encrypt_private_key_info(
    pkcs8_der: &[u8],
    password: &SecretString,
    scheme: Pbe,
) -> Result<Vec<u8>> {
    let encrypted = scheme.encrypt(password, pkcs8_der)?;
    EncryptedPrivateKeyInfo {
        encryption_algorithm: encrypted.algorithm,
        encrypted_data: OctetString::new(encrypted.ciphertext)
            .map_err(|err| der_failure("encrypted key", err))?,
    }
    .to_der()
    .map_err(|err| der_failure("EncryptedPrivateKeyInfo", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs12_kdf_matches_a_known_vector() {
        // From the `pkcs12` crate's tests (checked there against OpenSSL):
        // password "ge@äheim", salt 0x0102030405060708, 100 rounds, SHA-256.
        let pass = bmp_password(&SecretString::from("ge@äheim"));
        let key =
            pkcs12_kdf::<sha2::Sha256>(&pass, &[1, 2, 3, 4, 5, 6, 7, 8], KdfPurpose::Key, 100, 32);
        assert_eq!(
            hex::encode(key.as_slice()),
            "fae4d4957a3cc781e1180b9d4fb79c1e0c8579b746a3177e5b0768a3118bf863"
        );
    }

    #[test]
    fn password_rules() {
        for bad in ["", "short", "1234567", "tab\tinside ok"] {
            let err = check_export_password(&SecretString::from(bad)).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput);
            assert!(!bad.is_empty() && !err.to_string().contains(bad) || bad.is_empty());
        }
        check_export_password(&SecretString::from("correct horse")).unwrap();
        check_export_password(&SecretString::from("ünïcödé-ok")).unwrap();
        assert!(check_export_password(&SecretString::new("x".repeat(1025))).is_err());
        assert_eq!(check_iterations(None).unwrap(), DEFAULT_ITERATIONS);
        assert_eq!(check_iterations(Some(10_000)).unwrap(), 10_000);
        assert!(check_iterations(Some(9_999)).is_err());
        assert!(check_iterations(Some(10_000_001)).is_err());
    }
}
