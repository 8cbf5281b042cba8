//! Envelope encryption with AES-256-GCM (NIST SP 800-38D).
//!
//! Ciphertext layout: `0x01 | key_version (u32, big endian) | AES-GCM output`
//! (the GCM output ends with the 16-byte tag). The 5-byte header is part of
//! the associated data, so a header edited to point at another key version
//! fails authentication instead of decrypting under the wrong key. Callers
//! bind each ciphertext to its row with [`aad`], so a ciphertext copied to
//! another row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::secret::{SecretBytes, random_bytes};
use crate::{Error, Result};

/// The only ciphertext format so far.
const FORMAT_V1: u8 = 0x01;
const HEADER_LEN: usize = 5;
/// 96-bit nonces, the size GCM is specified for.
pub const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// AES-256 key length.
pub const DATA_KEY_LEN: usize = 32;

/// A sealed value: the nonce and the versioned ciphertext, stored side by
/// side (e.g. `encrypted_private_key` and `encryption_nonce` columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The AES-GCM nonce, [`NONCE_LEN`] random bytes, new for every seal.
    pub nonce: Vec<u8>,
    /// The 5-byte header (format, data key version) then the AES-GCM output,
    /// tag included.
    pub ciphertext: Vec<u8>,
}

/// A fresh random 256-bit data-encryption key.
pub fn generate_data_key() -> SecretBytes {
    SecretBytes::new(random_bytes(DATA_KEY_LEN))
}

/// Canonical associated data from several parts (organization id, table,
/// row id, column, ...). Each part is length-prefixed (u32 big endian), so
/// `["ab", "c"]` and `["a", "bc"]` never collide.
pub fn aad(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        // A part over 4 GiB cannot occur for ids and names; saturating keeps
        // this total and the encoding stays injective for all real inputs.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(part.as_bytes());
    }
    out
}

fn cipher(key: &SecretBytes) -> Result<Aes256Gcm> {
    if key.len() != DATA_KEY_LEN {
        return Err(Error::crypto(format!(
            "AES-256-GCM key must be {DATA_KEY_LEN} bytes, got {}",
            key.len()
        )));
    }
    Aes256Gcm::new_from_slice(key.expose())
        .map_err(|_| Error::crypto("AES-256-GCM key has the wrong length"))
}

fn header(key_version: u32) -> [u8; HEADER_LEN] {
    let v = key_version.to_be_bytes();
    [FORMAT_V1, v[0], v[1], v[2], v[3]]
}

fn header_aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
    // The header has a fixed length, so header || aad is unambiguous.
    let mut full = Vec::with_capacity(header.len() + aad.len());
    full.extend_from_slice(header);
    full.extend_from_slice(aad);
    full
}

/// Encrypts `plaintext` under `key` (32 bytes) with a fresh random nonce.
pub fn seal(key: &SecretBytes, key_version: u32, plaintext: &[u8], aad: &[u8]) -> Result<Sealed> {
    let cipher = cipher(key)?;
    let nonce_bytes = random_bytes(NONCE_LEN);
    let nonce = Nonce::try_from(nonce_bytes.as_slice())
        .map_err(|_| Error::crypto("AES-GCM nonce has the wrong length"))?;
    let header = header(key_version);
    let body = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &header_aad(&header, aad),
            },
        )
        .map_err(|_| Error::crypto("AES-256-GCM encryption failed"))?;
    let mut ciphertext = Vec::with_capacity(HEADER_LEN + body.len());
    ciphertext.extend_from_slice(&header);
    ciphertext.extend_from_slice(&body);
    Ok(Sealed {
        nonce: nonce_bytes,
        ciphertext,
    })
}

/// Reads the key version from a ciphertext's header, so a caller can fetch
/// the right key during a rotation. Does not authenticate anything.
pub fn sealed_key_version(ciphertext: &[u8]) -> Result<u32> {
    match ciphertext {
        [FORMAT_V1, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [format, ..] => Err(Error::crypto(format!(
            "unknown ciphertext format byte 0x{format:02x} (expected 0x{FORMAT_V1:02x})"
        ))),
        [] => Err(Error::crypto("ciphertext is empty")),
    }
}

/// Decrypts a [`Sealed`] value. See [`open_parts`].
pub fn open(
    key: &SecretBytes,
    expected_key_version: u32,
    sealed: &Sealed,
    aad: &[u8],
) -> Result<SecretBytes> {
    open_parts(
        key,
        expected_key_version,
        &sealed.nonce,
        &sealed.ciphertext,
        aad,
    )
}

/// Decrypts `ciphertext` sealed under `key` with `nonce` and `aad`.
///
/// An unknown format byte, or a key version other than
/// `expected_key_version`, is an explicit error: never a fallback to another
/// key. A wrong key or associated data fails authentication.
pub fn open_parts(
    key: &SecretBytes,
    expected_key_version: u32,
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
) -> Result<SecretBytes> {
    let found_version = sealed_key_version(ciphertext)?;
    if found_version != expected_key_version {
        return Err(Error::crypto(format!(
            "ciphertext was sealed under key version {found_version}, not the expected version {expected_key_version}"
        )));
    }
    if ciphertext.len() < HEADER_LEN + TAG_LEN {
        return Err(Error::crypto(format!(
            "ciphertext is truncated: {} bytes, at least {} expected",
            ciphertext.len(),
            HEADER_LEN + TAG_LEN
        )));
    }
    let nonce = Nonce::try_from(nonce).map_err(|_| {
        Error::crypto(format!(
            "nonce must be {NONCE_LEN} bytes, got {}",
            nonce.len()
        ))
    })?;
    let cipher = cipher(key)?;
    let (header, body) = ciphertext.split_at(HEADER_LEN);
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: body,
                aad: &header_aad(header, aad),
            },
        )
        .map(SecretBytes::new)
        .map_err(|_| {
            Error::crypto("sealed data does not open: wrong key or data moved to another row")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (SecretBytes, Sealed, Vec<u8>) {
        let key = generate_data_key();
        let row_aad = aad(&["org-1", "certificates", "row-42", "private_key"]);
        let sealed = seal(&key, 7, b"-----BEGIN PRIVATE KEY-----", &row_aad).unwrap();
        (key, sealed, row_aad)
    }

    #[test]
    fn round_trip() {
        let (key, sealed, row_aad) = sample();
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert_eq!(&sealed.ciphertext[..5], &[1, 0, 0, 0, 7]);
        assert_eq!(sealed_key_version(&sealed.ciphertext).unwrap(), 7);
        let opened = open(&key, 7, &sealed, &row_aad).unwrap();
        assert_eq!(opened.expose(), b"-----BEGIN PRIVATE KEY-----");
        // Fresh nonce every time.
        let again = seal(&key, 7, b"-----BEGIN PRIVATE KEY-----", &row_aad).unwrap();
        assert_ne!(again.nonce, sealed.nonce);
        assert_ne!(again.ciphertext, sealed.ciphertext);
        // Empty plaintext is fine.
        let empty = seal(&key, 1, b"", b"").unwrap();
        assert!(open(&key, 1, &empty, b"").unwrap().is_empty());
    }

    #[test]
    fn wrong_key_or_aad_does_not_open() {
        let (key, sealed, row_aad) = sample();
        let other = generate_data_key();
        let err = open(&other, 7, &sealed, &row_aad).unwrap_err();
        assert!(
            err.to_string()
                .contains("wrong key or data moved to another row"),
            "{err}"
        );
        let moved = aad(&["org-1", "certificates", "row-43", "private_key"]);
        assert!(open(&key, 7, &sealed, &moved).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.ciphertext.len() - 1;
        flipped.ciphertext[last] ^= 1;
        assert!(open(&key, 7, &flipped, &row_aad).is_err());
        let mut nonce = sealed.clone();
        nonce.nonce[0] ^= 1;
        assert!(open(&key, 7, &nonce, &row_aad).is_err());
    }

    #[test]
    fn header_is_checked_and_authenticated() {
        let (key, sealed, row_aad) = sample();
        // Asking for another version is an explicit error naming both.
        let err = open(&key, 8, &sealed, &row_aad).unwrap_err();
        assert!(err.to_string().contains("key version 7"), "{err}");
        assert!(err.to_string().contains("expected version 8"), "{err}");
        // Editing the version in the header fails authentication.
        let mut tampered = sealed.clone();
        tampered.ciphertext[4] = 8;
        let err = open(&key, 8, &tampered, &row_aad).unwrap_err();
        assert!(err.to_string().contains("does not open"), "{err}");
        // Unknown format byte.
        let mut format = sealed.clone();
        format.ciphertext[0] = 2;
        let err = open(&key, 7, &format, &row_aad).unwrap_err();
        assert!(err.to_string().contains("format byte 0x02"), "{err}");
        // Truncations never panic.
        for len in 0..sealed.ciphertext.len() {
            let cut = Sealed {
                nonce: sealed.nonce.clone(),
                ciphertext: sealed.ciphertext[..len].to_vec(),
            };
            assert!(open(&key, 7, &cut, &row_aad).is_err());
        }
        let short_nonce = Sealed {
            nonce: vec![0; 8],
            ciphertext: sealed.ciphertext.clone(),
        };
        assert!(open(&key, 7, &short_nonce, &row_aad).is_err());
        let short_key = SecretBytes::new(vec![0; 16]);
        assert!(seal(&short_key, 1, b"x", b"").is_err());
    }

    #[test]
    fn aad_is_unambiguous() {
        assert_ne!(aad(&["ab", "c"]), aad(&["a", "bc"]));
        assert_ne!(aad(&["a", ""]), aad(&["a"]));
        assert_eq!(aad(&["ab"]), vec![0, 0, 0, 2, b'a', b'b']);
    }
}
