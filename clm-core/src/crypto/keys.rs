//! Key pairs: generation, import (PKCS#8, PKCS#1, SEC1), export (PKCS#8)
//! and signing.
//!
//! Every key signs through `ring` (4-6 times faster than the pure-Rust
//! implementations for P-256 and RSA; numbers in docs/ARCHITECTURE.md); the
//! `rsa` crate generates RSA keys, which `ring` cannot, and with `p256`/`p384`
//! signs messages too large to hold whole ([`KeyPair::sign_streamed`]: a
//! CRL of a million entries). Each [`KeyPair`] keeps its prepared signer, so
//! a cached CA key signs without re-parsing anything.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use der::asn1::{AnyRef, BitString, BitStringRef, OctetStringRef};
use der::{Decode, Encode};
use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair as _};
use spki::{AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use zeroize::Zeroizing;

use super::pem::{PemBlock, PemLabel, der_to_pem, looks_like_pem, pem_blocks};
use super::pkix::{encoding, oid, unsigned_bit_length};
use super::secret::{SecretBytes, SecretString, random_bytes};
use crate::{Error, Result};

const FIELD: &str = "private_key";

/// Key algorithms clm generates and accepts for private keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// ECDSA on NIST P-256 (secp256r1).
    EcdsaP256,
    /// ECDSA on NIST P-384 (secp384r1).
    EcdsaP384,
    /// EdDSA on Curve25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// Every supported algorithm, as error messages and the API description list them.
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ];

    /// The canonical name, e.g. `"ECDSA-P256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "RSA-2048",
            KeyAlgorithm::Rsa3072 => "RSA-3072",
            KeyAlgorithm::Rsa4096 => "RSA-4096",
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
            KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }

    /// "RSA", "ECDSA" or "Ed25519": the names policies use.
    pub fn family(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => "RSA",
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => "ECDSA",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }

    /// RSA modulus size or curve size in bits.
    pub fn bits(self) -> u32 {
        match self {
            KeyAlgorithm::Rsa2048 => 2048,
            KeyAlgorithm::Rsa3072 => 3072,
            KeyAlgorithm::Rsa4096 => 4096,
            KeyAlgorithm::EcdsaP256 => 256,
            KeyAlgorithm::EcdsaP384 => 384,
            KeyAlgorithm::Ed25519 => 256,
        }
    }

    /// The signature algorithm this key signs with, as OpenSSL names it.
    pub fn signature_algorithm_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                "sha256WithRSAEncryption"
            }
            KeyAlgorithm::EcdsaP256 => "ecdsa-with-SHA256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-with-SHA384",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }

    /// AlgorithmIdentifier of the signatures this key makes.
    pub(crate) fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                AlgorithmIdentifierOwned {
                    oid: oid::SHA256_WITH_RSA,
                    // RFC 4055: the parameters of the PKCS#1 v1.5 algorithms are NULL.
                    parameters: Some(der::Any::null()),
                }
            }
            KeyAlgorithm::EcdsaP256 => AlgorithmIdentifierOwned {
                oid: oid::ECDSA_WITH_SHA256,
                parameters: None,
            },
            KeyAlgorithm::EcdsaP384 => AlgorithmIdentifierOwned {
                oid: oid::ECDSA_WITH_SHA384,
                parameters: None,
            },
            KeyAlgorithm::Ed25519 => AlgorithmIdentifierOwned {
                oid: oid::ED25519,
                parameters: None,
            },
        }
    }

    fn rsa_for_bits(bits: u32) -> Result<Self> {
        match bits {
            2048 => Ok(KeyAlgorithm::Rsa2048),
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            other => Err(Error::invalid(
                FIELD,
                format!("RSA key of {other} bits is not supported; use 2048, 3072 or 4096 bits"),
            )),
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    /// Accepts the canonical names case-insensitively, plus common spellings
    /// such as `rsa2048`, `p256`, `ec-p256`, `secp384r1`, `prime256v1`.
    fn from_str(text: &str) -> Result<Self> {
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        match compact.as_str() {
            "rsa2048" => Ok(KeyAlgorithm::Rsa2048),
            "rsa3072" => Ok(KeyAlgorithm::Rsa3072),
            "rsa4096" => Ok(KeyAlgorithm::Rsa4096),
            "ecdsap256" | "p256" | "ecp256" | "secp256r1" | "prime256v1" | "nistp256" => {
                Ok(KeyAlgorithm::EcdsaP256)
            }
            "ecdsap384" | "p384" | "ecp384" | "secp384r1" | "nistp384" => {
                Ok(KeyAlgorithm::EcdsaP384)
            }
            "ed25519" => Ok(KeyAlgorithm::Ed25519),
            _ => Err(Error::invalid(
                "key_algorithm",
                format!(
                    "{text:?} is not one of {}",
                    KeyAlgorithm::ALL.map(KeyAlgorithm::as_str).join(", ")
                ),
            )),
        }
    }
}

impl serde::Serialize for KeyAlgorithm {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for KeyAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A name: the canonical ones are listed; common spellings (`rsa2048`,
/// `p256`, `secp384r1`, ...) are accepted too, case-insensitively.
impl schemars::JsonSchema for KeyAlgorithm {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "KeyAlgorithm".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
        schemars::json_schema!({
            "type": "string",
            "examples": names,
            "description": "A key algorithm: one of the examples, or a common spelling of one (rsa2048, p256, secp384r1, ed25519), case-insensitive.",
        })
    }
}

/// What a key is, in the terms policies check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// "RSA", "ECDSA" or "Ed25519", as policies' `allowed_algorithms` name them.
    pub family: &'static str,
    /// RSA modulus or curve size in bits, as policies' `min_key_size` counts.
    pub bits: u32,
    /// The exact algorithm.
    pub algorithm: KeyAlgorithm,
}

enum Signer {
    Rsa(rs::RsaKeyPair),
    /// Prepared on first use: a freshly generated leaf key usually never
    /// signs, and preparing costs about as much as generating.
    Ecdsa(OnceLock<rs::EcdsaKeyPair>),
    Ed25519(rs::Ed25519KeyPair),
}

/// Hands a message over in pieces, in order, to the function it is given
/// ([`KeyPair::sign_streamed`]).
pub type MessageFeed<'a> = dyn FnMut(&mut dyn FnMut(&[u8])) -> Result<()> + 'a;

/// A private key with its public key and a prepared signer.
///
/// `Debug` prints the algorithm only. The PKCS#8 copy is wiped on drop.
pub struct KeyPair {
    algorithm: KeyAlgorithm,
    pkcs8: SecretBytes,
    public_key_der: Vec<u8>,
    signer: Signer,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Generates a fresh key. RSA generation is slow (tens of milliseconds
    /// for 2048 bits, seconds for 4096): run it off the async executor.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<KeyPair> {
        match algorithm {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let mut rng = rand::rngs::SysRng;
                let key = rsa::PrivateKey::new(&mut rng, algorithm.bits() as usize)
                    .map_err(|err| Error::crypto(format!("RSA key generation failed: {err}")))?;
                let pkcs1 = key
                    .to_pkcs1_der()
                    .map_err(|err| Error::crypto(format!("cannot encode the RSA key: {err}")))?;
                KeyPair::from_pkcs1(pkcs1.as_bytes())
            }
            KeyAlgorithm::EcdsaP256 | KeyAlgorithm::EcdsaP384 => {
                let rng = SystemRandom::new();
                let document =
                    rs::EcdsaKeyPair::generate_pkcs8(ecdsa_signing_algorithm(algorithm), &rng)
                        .map_err(|_| Error::crypto("ECDSA key generation failed"))?;
                // ring's PKCS#8 carries the public point; read it rather than
                // re-deriving it (the signer is prepared lazily).
                let generated = || Error::crypto("ECDSA key generation returned an unreadable key");
                let info = pkcs8::PrivateKeyInfoRef::from_der(document.as_ref())
                    .map_err(|_| generated())?;
                let ec = sec1::EcPrivateKey::from_der(info.private_key.as_bytes())
                    .map_err(|_| generated())?;
                let point = ec.public_key.ok_or_else(generated)?;
                let public_key_der = ec_spki(algorithm, point)?;
                Ok(KeyPair {
                    algorithm,
                    pkcs8: SecretBytes::from_slice(document.as_ref()),
                    public_key_der,
                    signer: Signer::Ecdsa(OnceLock::new()),
                })
            }
            KeyAlgorithm::Ed25519 => {
                let seed = Zeroizing::new(random_bytes(32));
                KeyPair::from_ed25519_seed(&seed, None)
            }
        }
    }

    /// Imports a PEM private key: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY`
    /// (PKCS#1) or `EC PRIVATE KEY` (SEC1). Other blocks (e.g. `EC
    /// PARAMETERS`, certificates) are skipped; exactly one key must be present.
    pub fn from_pem(pem: &str) -> Result<KeyPair> {
        let blocks = pem_blocks(pem.as_bytes(), FIELD)?;
        if blocks.is_empty() {
            return Err(Error::invalid(
                FIELD,
                "no PEM block found (expected -----BEGIN PRIVATE KEY-----)",
            ));
        }
        let keys: Vec<&PemBlock> = blocks
            .iter()
            .filter(|b| b.label.ends_with("PRIVATE KEY"))
            .collect();
        let block = match keys.as_slice() {
            [one] => *one,
            [] => {
                let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
                return Err(Error::invalid(
                    FIELD,
                    format!("no private key in PEM (found {})", labels.join(", ")),
                ));
            }
            many => {
                return Err(Error::invalid(
                    FIELD,
                    format!(
                        "PEM holds {} private keys; expected exactly one",
                        many.len()
                    ),
                ));
            }
        };
        if !block.headers.is_empty() {
            return Err(block.headers_error(FIELD));
        }
        match block.label.as_str() {
            "PRIVATE KEY" => KeyPair::from_pkcs8(&block.der),
            "RSA PRIVATE KEY" => KeyPair::from_pkcs1(&block.der),
            "EC PRIVATE KEY" => KeyPair::from_sec1(&block.der, None),
            "ENCRYPTED PRIVATE KEY" => Err(Error::invalid(
                FIELD,
                "encrypted PKCS#8 keys are not supported; decrypt the key first",
            )),
            other => Err(Error::invalid(
                FIELD,
                format!("unsupported PEM key type {other:?}"),
            )),
        }
    }

    /// Imports a DER private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC). PEM
    /// text passed here is accepted too.
    pub fn from_der(der: &[u8]) -> Result<KeyPair> {
        if looks_like_pem(der) {
            let text = std::str::from_utf8(der)
                .map_err(|_| Error::invalid(FIELD, "PEM text is not valid UTF-8"))?;
            return KeyPair::from_pem(text);
        }
        if pkcs8::PrivateKeyInfoRef::from_der(der).is_ok() {
            return KeyPair::from_pkcs8(der);
        }
        if pkcs1::RsaPrivateKeyRef::from_der(der).is_ok() {
            return KeyPair::from_pkcs1(der);
        }
        if sec1::EcPrivateKey::from_der(der).is_ok() {
            return KeyPair::from_sec1(der, None);
        }
        Err(Error::invalid(
            FIELD,
            "not a PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key in DER",
        ))
    }

    fn from_pkcs8(der: &[u8]) -> Result<KeyPair> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der)
            .map_err(|err| Error::invalid(FIELD, format!("malformed PKCS#8 private key: {err}")))?;
        let inner = info.private_key.as_bytes();
        match info.algorithm.oid {
            oid::RSA_ENCRYPTION => KeyPair::from_pkcs1(inner),
            oid::EC_PUBLIC_KEY => {
                let curve = info
                    .algorithm
                    .parameters
                    .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                    .ok_or_else(|| Error::invalid(FIELD, "EC private key names no curve"))?;
                KeyPair::from_sec1(inner, Some(curve))
            }
            oid::ED25519 => {
                let seed = <&OctetStringRef>::from_der(inner).map_err(|err| {
                    Error::invalid(FIELD, format!("malformed Ed25519 private key: {err}"))
                })?;
                let public = info.public_key.and_then(|bits| bits.as_bytes());
                KeyPair::from_ed25519_seed(seed.as_bytes(), public)
            }
            oid::ED448 => Err(Error::invalid(FIELD, "Ed448 keys are not supported")),
            other => Err(Error::invalid(
                FIELD,
                format!(
                    "unsupported private key algorithm {other} (supported: RSA, ECDSA P-256/P-384, Ed25519)"
                ),
            )),
        }
    }

    fn from_pkcs1(der: &[u8]) -> Result<KeyPair> {
        let key = pkcs1::RsaPrivateKeyRef::from_der(der)
            .map_err(|err| Error::invalid(FIELD, format!("malformed RSA private key: {err}")))?;
        let algorithm = KeyAlgorithm::rsa_for_bits(unsigned_bit_length(key.modulus.as_bytes()))?;
        let public = key
            .public_key()
            .to_der()
            .map_err(encoding("RSA public key"))?;
        let public_key_der = spki_der(oid::RSA_ENCRYPTION, Some(AnyRef::NULL), &public)?;
        let pkcs8 = pkcs8_der(oid::RSA_ENCRYPTION, Some(AnyRef::NULL), der)?;
        // ring checks the key's consistency (n = p*q, CRT values) and refuses
        // public exponents below 65537, which no modern key uses.
        let pair = rs::RsaKeyPair::from_der(der).map_err(|reason| {
            Error::invalid(
                FIELD,
                format!("RSA private key is refused ({reason}); the key must be consistent and use a public exponent of at least 65537"),
            )
        })?;
        // ring does not check the CRT exponents (dP, dQ) against d; a key
        // with a wrong one imports and then fails every signature. ring
        // verifies each signature it makes, so one test signature tells.
        let mut signature = vec![0u8; pair.public().modulus_len()];
        pair.sign(
            &rs::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            b"clm: RSA private key check",
            &mut signature,
        )
        .map_err(|_| {
            Error::invalid(
                FIELD,
                "RSA private key is refused: its CRT exponents (dP, dQ) do not belong to the key",
            )
        })?;
        Ok(KeyPair {
            algorithm,
            pkcs8,
            public_key_der,
            signer: Signer::Rsa(pair),
        })
    }

    /// SEC1 ECPrivateKey; `curve` comes from the PKCS#8 wrapper when there is one.
    fn from_sec1(der: &[u8], curve: Option<der::asn1::ObjectIdentifier>) -> Result<KeyPair> {
        let key = sec1::EcPrivateKey::from_der(der)
            .map_err(|err| Error::invalid(FIELD, format!("malformed EC private key: {err}")))?;
        let inner_curve = key.parameters.map(|sec1::EcParameters::NamedCurve(c)| c);
        let curve = match (curve, inner_curve) {
            (Some(outer), Some(inner)) if outer != inner => {
                return Err(Error::invalid(
                    FIELD,
                    "EC private key names two different curves",
                ));
            }
            (Some(c), _) | (None, Some(c)) => c,
            (None, None) => return Err(Error::invalid(FIELD, "EC private key names no curve")),
        };
        let algorithm = match curve {
            oid::SECP256R1 => KeyAlgorithm::EcdsaP256,
            oid::SECP384R1 => KeyAlgorithm::EcdsaP384,
            other => {
                return Err(Error::invalid(
                    FIELD,
                    format!("unsupported elliptic curve {other} (supported: P-256, P-384)"),
                ));
            }
        };
        let size = (algorithm.bits() / 8) as usize;
        // SEC1 says the scalar has exactly the field size, but some encoders
        // strip leading zeros: pad them back.
        let raw = key.private_key;
        if raw.is_empty() || raw.len() > size {
            return Err(Error::invalid(
                FIELD,
                "EC private key scalar has the wrong length",
            ));
        }
        let mut scalar = Zeroizing::new(vec![0u8; size]);
        scalar[size - raw.len()..].copy_from_slice(raw);

        let public: Vec<u8> = match key.public_key {
            Some(point) if point.len() == 2 * size + 1 && point.first() == Some(&0x04) => {
                point.to_vec()
            }
            // Absent or compressed: derive the uncompressed point ring needs.
            _ => derive_ec_public(algorithm, &scalar)?,
        };
        let rng = SystemRandom::new();
        let pair = rs::EcdsaKeyPair::from_private_key_and_public_key(
            ecdsa_signing_algorithm(algorithm),
            &scalar,
            &public,
            &rng,
        )
        .map_err(|err| Error::invalid(FIELD, format!("EC private key is invalid: {err}")))?;

        let ec_private = sec1::EcPrivateKey {
            private_key: &scalar,
            // The curve lives in the PKCS#8 AlgorithmIdentifier (RFC 5915 §3).
            parameters: None,
            public_key: Some(&public),
        };
        let inner = Zeroizing::new(ec_private.to_der().map_err(encoding("EC private key"))?);
        let curve_any = AnyRef::from(&curve);
        let pkcs8 = pkcs8_der(oid::EC_PUBLIC_KEY, Some(curve_any), &inner)?;
        let public_key_der = ec_spki(algorithm, &public)?;
        Ok(KeyPair {
            algorithm,
            pkcs8,
            public_key_der,
            signer: Signer::Ecdsa(OnceLock::from(pair)),
        })
    }

    fn from_ed25519_seed(seed: &[u8], expected_public: Option<&[u8]>) -> Result<KeyPair> {
        if seed.len() != 32 {
            return Err(Error::invalid(
                FIELD,
                "Ed25519 private key must be 32 bytes",
            ));
        }
        let pair = rs::Ed25519KeyPair::from_seed_unchecked(seed).map_err(|err| {
            Error::invalid(FIELD, format!("Ed25519 private key is invalid: {err}"))
        })?;
        let public = pair.public_key().as_ref().to_vec();
        if expected_public.is_some_and(|expected| expected != public.as_slice()) {
            return Err(Error::invalid(
                FIELD,
                "Ed25519 public key does not match the private key",
            ));
        }
        // PKCS#8 v1 (RFC 8410) without the optional public key: what OpenSSL writes.
        let inner = Zeroizing::new(
            OctetStringRef::new(seed)
                .and_then(|octets| octets.to_der())
                .map_err(encoding("Ed25519 private key"))?,
        );
        let pkcs8 = pkcs8_der(oid::ED25519, None, &inner)?;
        let public_key_der = spki_der(oid::ED25519, None, &public)?;
        Ok(KeyPair {
            algorithm: KeyAlgorithm::Ed25519,
            pkcs8,
            public_key_der,
            signer: Signer::Ed25519(pair),
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The key's family and size, for policy checks.
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            family: self.algorithm.family(),
            bits: self.algorithm.bits(),
            algorithm: self.algorithm,
        }
    }

    /// The private key as PKCS#8 (unencrypted PrivateKeyInfo) DER.
    pub fn to_pkcs8_der(&self) -> SecretBytes {
        self.pkcs8.clone()
    }

    /// The private key as a `-----BEGIN PRIVATE KEY-----` PEM.
    pub fn to_pkcs8_pem(&self) -> SecretString {
        SecretString::new(der_to_pem(PemLabel::PrivateKey, self.pkcs8.expose()))
    }

    /// SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.public_key_der.clone()
    }

    /// True when `spki_der` holds this key's public key (same algorithm,
    /// curve and key bits; RSA's NULL-vs-absent parameters are ignored).
    pub fn matches_public_key(&self, spki_der: &[u8]) -> bool {
        let (Ok(ours), Ok(theirs)) = (
            SubjectPublicKeyInfoRef::from_der(&self.public_key_der),
            SubjectPublicKeyInfoRef::from_der(spki_der),
        ) else {
            return false;
        };
        if ours.algorithm.oid != theirs.algorithm.oid
            || ours.subject_public_key != theirs.subject_public_key
        {
            return false;
        }
        if ours.algorithm.oid == oid::EC_PUBLIC_KEY {
            return ours.algorithm.parameters == theirs.algorithm.parameters;
        }
        true
    }

    /// Signs `message` with this key's algorithm: RSA PKCS#1 v1.5 SHA-256,
    /// ECDSA P-256/SHA-256 or P-384/SHA-384 (DER signatures), or Ed25519.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        match &self.signer {
            Signer::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &rs::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| Error::crypto("RSA signing failed"))?;
                Ok(signature)
            }
            Signer::Ecdsa(cell) => {
                let rng = SystemRandom::new();
                let pair = match cell.get() {
                    Some(pair) => pair,
                    None => {
                        let pair = rs::EcdsaKeyPair::from_pkcs8(
                            ecdsa_signing_algorithm(self.algorithm),
                            self.pkcs8.expose(),
                            &rng,
                        )
                        .map_err(|err| {
                            Error::crypto(format!("ECDSA key cannot be prepared: {err}"))
                        })?;
                        // A racing thread may have won; either value is the same key.
                        cell.get_or_init(|| pair)
                    }
                };
                pair.sign(&rng, message)
                    .map(|signature| signature.as_ref().to_vec())
                    .map_err(|_| Error::crypto("ECDSA signing failed"))
            }
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// Signs a message too large to hold in memory, with the same algorithm
    /// and result as [`KeyPair::sign`]: `feed` hands the message over in
    /// pieces, in order, to the function it is given. RSA and ECDSA hash the
    /// pieces as they come and sign the digest (RustCrypto's `rsa`, `p256`,
    /// `p384`: ring signs only whole messages). Ed25519 has no prehashed
    /// form in X.509 (PureEdDSA reads the message twice), so for it the
    /// pieces are gathered and signed whole.
    pub fn sign_streamed(&self, feed: &mut MessageFeed<'_>) -> Result<Vec<u8>> {
        use signature::hazmat::PrehashSigner;
        let unreadable = || Error::crypto("the signing key cannot be prepared");
        match self.algorithm {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                use pkcs8::DecodePrivateKey;
                let digest = streamed_digest::<sha2::Sha256>(feed)?;
                let key = rsa::PrivateKey::from_pkcs8_der(self.pkcs8.expose())
                    .map_err(|_| unreadable())?;
                // The RNG only blinds the private-key operation.
                key.sign_with_rng(
                    &mut rand::rngs::SysRng,
                    rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                    &digest,
                )
                .map_err(|_| Error::crypto("RSA signing failed"))
            }
            KeyAlgorithm::EcdsaP256 => {
                use pkcs8::DecodePrivateKey;
                let digest = streamed_digest::<sha2::Sha256>(feed)?;
                let key = p256::ecdsa::SigningKey::from_pkcs8_der(self.pkcs8.expose())
                    .map_err(|_| unreadable())?;
                let signature: p256::ecdsa::DerSignature = key
                    .sign_prehash(&digest)
                    .map_err(|_| Error::crypto("ECDSA signing failed"))?;
                Ok(signature.as_bytes().to_vec())
            }
            KeyAlgorithm::EcdsaP384 => {
                use pkcs8::DecodePrivateKey;
                let digest = streamed_digest::<sha2::Sha384>(feed)?;
                let key = p384::ecdsa::SigningKey::from_pkcs8_der(self.pkcs8.expose())
                    .map_err(|_| unreadable())?;
                let signature: p384::ecdsa::DerSignature = key
                    .sign_prehash(&digest)
                    .map_err(|_| Error::crypto("ECDSA signing failed"))?;
                Ok(signature.as_bytes().to_vec())
            }
            KeyAlgorithm::Ed25519 => {
                let mut message = Vec::new();
                feed(&mut |piece| message.extend_from_slice(piece))?;
                self.sign(&message)
            }
        }
    }

    /// Signs with this key and checks nothing else: the x509-cert builder
    /// adaptor.
    pub(crate) fn x509_signer(&self) -> X509Signer<'_> {
        X509Signer(self)
    }
}

/// The digest of a message handed over in pieces.
fn streamed_digest<D: sha2::Digest>(feed: &mut MessageFeed<'_>) -> Result<Vec<u8>> {
    let mut hasher = D::new();
    feed(&mut |piece| hasher.update(piece))?;
    Ok(hasher.finalize().to_vec())
}

fn ecdsa_signing_algorithm(algorithm: KeyAlgorithm) -> &'static rs::EcdsaSigningAlgorithm {
    match algorithm {
        KeyAlgorithm::EcdsaP384 => &rs::ECDSA_P384_SHA384_ASN1_SIGNING,
        _ => &rs::ECDSA_P256_SHA256_ASN1_SIGNING,
    }
}

fn derive_ec_public(algorithm: KeyAlgorithm, scalar: &[u8]) -> Result<Vec<u8>> {
    let invalid = |_| Error::invalid(FIELD, "EC private key scalar is out of range");
    match algorithm {
        KeyAlgorithm::EcdsaP384 => Ok(p384::SecretKey::from_slice(scalar)
            .map_err(invalid)?
            .public_key()
            .to_sec1_bytes()
            .into_vec()),
        _ => Ok(p256::SecretKey::from_slice(scalar)
            .map_err(invalid)?
            .public_key()
            .to_sec1_bytes()
            .into_vec()),
    }
}

fn ec_spki(algorithm: KeyAlgorithm, point: &[u8]) -> Result<Vec<u8>> {
    let curve = match algorithm {
        KeyAlgorithm::EcdsaP384 => oid::SECP384R1,
        _ => oid::SECP256R1,
    };
    spki_der(oid::EC_PUBLIC_KEY, Some(AnyRef::from(&curve)), point)
}

fn spki_der(
    algorithm: der::asn1::ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    key: &[u8],
) -> Result<Vec<u8>> {
    let spki = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: algorithm,
            parameters,
        },
        subject_public_key: BitStringRef::from_bytes(key).map_err(encoding("public key"))?,
    };
    spki.to_der().map_err(encoding("SubjectPublicKeyInfo"))
}

fn pkcs8_der(
    algorithm: der::asn1::ObjectIdentifier,
    parameters: Option<AnyRef<'_>>,
    key: &[u8],
) -> Result<SecretBytes> {
    let info = pkcs8::PrivateKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: algorithm,
            parameters,
        },
        private_key: OctetStringRef::new(key).map_err(encoding("PKCS#8 private key"))?,
        public_key: None,
    };
    info.to_der()
        .map(SecretBytes::new)
        .map_err(encoding("PKCS#8 private key"))
}

/// Adaptor that lets x509-cert's builders sign through a [`KeyPair`].
pub(crate) struct X509Signer<'a>(&'a KeyPair);

/// A public key already encoded as SubjectPublicKeyInfo.
#[derive(Clone)]
pub(crate) struct SpkiDer(Vec<u8>);

impl spki::EncodePublicKey for SpkiDer {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.as_slice())?)
    }
}

/// A signature already in its wire form (DER for ECDSA).
pub(crate) struct RawSignature(Vec<u8>);

impl spki::SignatureBitStringEncoding for RawSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Keypair for X509Signer<'_> {
    type VerifyingKey = SpkiDer;

    fn verifying_key(&self) -> SpkiDer {
        SpkiDer(self.0.public_key_der.clone())
    }
}

impl spki::DynSignatureAlgorithmIdentifier for X509Signer<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.0.algorithm.signature_algorithm())
    }
}

impl signature::Signer<RawSignature> for X509Signer<'_> {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<RawSignature, signature::Error> {
        self.0
            .sign(message)
            .map(RawSignature)
            .map_err(|_| signature::Error::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pkix::verify_signature;

    fn verify(pair: &KeyPair, message: &[u8], signature: &[u8]) -> Result<()> {
        let algorithm = pair.algorithm.signature_algorithm();
        let algorithm = AlgorithmIdentifierRef {
            oid: algorithm.oid,
            parameters: algorithm.parameters.as_ref().map(AnyRef::from),
        };
        verify_signature(&pair.public_key_der(), &algorithm, message, signature)
    }

    fn openssl(args: &[&str], input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl runs");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn names_parse() {
        for algorithm in KeyAlgorithm::ALL {
            assert_eq!(
                algorithm.as_str().parse::<KeyAlgorithm>().unwrap(),
                algorithm
            );
            assert_eq!(
                algorithm
                    .as_str()
                    .to_lowercase()
                    .parse::<KeyAlgorithm>()
                    .unwrap(),
                algorithm
            );
        }
        assert_eq!(
            "p256".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::EcdsaP256
        );
        assert_eq!(
            "EC-P384".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::EcdsaP384
        );
        assert_eq!(
            "rsa2048".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::Rsa2048
        );
        let err = "RSA-1024".parse::<KeyAlgorithm>().unwrap_err();
        assert!(err.to_string().contains("RSA-2048"), "{err}");
        assert_eq!(
            serde_json::to_string(&KeyAlgorithm::Ed25519).unwrap(),
            "\"Ed25519\""
        );
        assert_eq!(
            serde_json::from_str::<KeyAlgorithm>("\"ecdsa-p256\"").unwrap(),
            KeyAlgorithm::EcdsaP256
        );
        assert_eq!(KeyAlgorithm::EcdsaP384.family(), "ECDSA");
        assert_eq!(KeyAlgorithm::Rsa3072.bits(), 3072);
    }

    /// Generate, sign, verify, export to PKCS#8 and back, and check the
    /// export with OpenSSL and the traditional formats OpenSSL writes.
    fn round_trip(algorithm: KeyAlgorithm) {
        let pair = KeyPair::generate(algorithm).unwrap();
        assert_eq!(pair.info().algorithm, algorithm);
        assert_eq!(
            format!("{pair:?}"),
            format!("KeyPair {{ algorithm: {algorithm:?}, .. }}")
        );
        let signature = pair.sign(b"message").unwrap();
        verify(&pair, b"message", &signature).unwrap();
        assert!(verify(&pair, b"messagf", &signature).is_err());

        let pem = pair.to_pkcs8_pem();
        assert_eq!(format!("{pem:?}"), "[redacted]");
        let again = KeyPair::from_pem(pem.expose()).unwrap();
        assert_eq!(again.algorithm(), algorithm);
        assert_eq!(again.public_key_der(), pair.public_key_der());
        assert!(again.matches_public_key(&pair.public_key_der()));
        verify(&pair, b"other", &again.sign(b"other").unwrap()).unwrap();
        let from_der = KeyPair::from_der(pair.to_pkcs8_der().expose()).unwrap();
        assert_eq!(from_der.public_key_der(), pair.public_key_der());

        // OpenSSL reads our PKCS#8 and derives the same public key.
        let openssl_spki = openssl(
            &["pkey", "-pubout", "-outform", "DER"],
            pem.expose().as_bytes(),
        );
        assert_eq!(openssl_spki, pair.public_key_der());

        // Traditional formats (PKCS#1 for RSA, SEC1 for EC) written by OpenSSL.
        if algorithm.family() != "Ed25519" {
            let traditional = openssl(&["pkey", "-traditional"], pem.expose().as_bytes());
            let text = String::from_utf8(traditional.clone()).unwrap();
            let label = if algorithm.family() == "RSA" {
                "RSA PRIVATE KEY"
            } else {
                "EC PRIVATE KEY"
            };
            assert!(text.contains(label), "{text}");
            let imported = KeyPair::from_pem(&text).unwrap();
            assert_eq!(imported.public_key_der(), pair.public_key_der());
            assert_eq!(
                imported.to_pkcs8_der().expose(),
                pair.to_pkcs8_der().expose()
            );
            let der = openssl(
                &["pkey", "-traditional", "-outform", "DER"],
                pem.expose().as_bytes(),
            );
            let imported = KeyPair::from_der(&der).unwrap();
            assert_eq!(imported.public_key_der(), pair.public_key_der());
        }

        let other = KeyPair::generate(algorithm).unwrap();
        assert!(!other.matches_public_key(&pair.public_key_der()));
        assert!(!pair.matches_public_key(b"garbage"));
    }

    #[test]
    fn rsa_keys_with_a_wrong_crt_exponent_are_refused() {
        // Found by the private_key fuzz target: ring accepted such a key,
        // which then failed every signature ("RSA signing failed").
        let key = KeyPair::generate(KeyAlgorithm::Rsa2048).unwrap();
        let pkcs8 = key.to_pkcs8_der();
        let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8.expose()).unwrap();
        let good = pkcs1::RsaPrivateKeyRef::from_der(info.private_key.as_bytes()).unwrap();
        let mut exponent1 = good.exponent1.as_bytes().to_vec();
        *exponent1.last_mut().unwrap() ^= 0x02;
        let bad = pkcs1::RsaPrivateKeyRef {
            exponent1: pkcs1::UintRef::new(&exponent1).unwrap(),
            ..good
        }
        .to_der()
        .unwrap();
        let err = KeyPair::from_der(&bad).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{err}");
        assert!(err.to_string().contains("CRT exponents"), "{err}");
        // The untouched key still imports.
        KeyPair::from_der(info.private_key.as_bytes()).unwrap();
    }

    #[test]
    fn rsa_2048_round_trip() {
        round_trip(KeyAlgorithm::Rsa2048);
    }

    #[test]
    fn p256_round_trip() {
        round_trip(KeyAlgorithm::EcdsaP256);
    }

    #[test]
    fn p384_round_trip() {
        round_trip(KeyAlgorithm::EcdsaP384);
    }

    #[test]
    fn ed25519_round_trip() {
        round_trip(KeyAlgorithm::Ed25519);
    }

    #[test]
    #[ignore = "RSA-3072/4096 generation takes seconds; run with --ignored"]
    fn rsa_large_round_trip() {
        round_trip(KeyAlgorithm::Rsa3072);
        round_trip(KeyAlgorithm::Rsa4096);
    }

    #[test]
    fn keys_made_by_openssl_import() {
        // OpenSSL writes SEC1 with the curve inside and `EC PARAMETERS` first.
        let pem =
            String::from_utf8(openssl(&["ecparam", "-name", "secp384r1", "-genkey"], b"")).unwrap();
        assert!(pem.contains("EC PARAMETERS"));
        let pair = KeyPair::from_pem(&pem).unwrap();
        assert_eq!(pair.algorithm(), KeyAlgorithm::EcdsaP384);

        // SEC1 without the public key: derived from the scalar.
        let pem = String::from_utf8(openssl(&["ec", "-no_public"], pem.as_bytes())).unwrap();
        let without_public = KeyPair::from_pem(&pem).unwrap();
        assert_eq!(without_public.public_key_der(), pair.public_key_der());

        let ed = openssl(&["genpkey", "-algorithm", "ed25519"], b"");
        let pair = KeyPair::from_pem(std::str::from_utf8(&ed).unwrap()).unwrap();
        assert_eq!(pair.algorithm(), KeyAlgorithm::Ed25519);
        // Our PKCS#8 export is byte-identical to OpenSSL's.
        assert_eq!(pair.to_pkcs8_pem().expose().as_bytes(), ed.as_slice());

        // RSA with public exponent 3 is refused with a reason.
        let rsa3 = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-pkeyopt",
                "rsa_keygen_pubexp:3",
            ],
            b"",
        );
        let err = KeyPair::from_pem(std::str::from_utf8(&rsa3).unwrap()).unwrap_err();
        assert!(err.to_string().contains("65537"), "{err}");
        // So is a size we do not issue.
        let rsa1024 = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:1024",
            ],
            b"",
        );
        let err = KeyPair::from_pem(std::str::from_utf8(&rsa1024).unwrap()).unwrap_err();
        assert!(err.to_string().contains("1024 bits"), "{err}");
        // And the PKCS#1 DER openssl writes imports.
        let rsa = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            b"",
        );
        let pkcs1 = openssl(&["rsa", "-traditional", "-outform", "DER"], &rsa);
        let pair = KeyPair::from_der(&pkcs1).unwrap();
        assert_eq!(pair.algorithm(), KeyAlgorithm::Rsa2048);
        verify(&pair, b"m", &pair.sign(b"m").unwrap()).unwrap();
    }

    #[test]
    fn garbage_is_refused_clearly() {
        let cases: [&[u8]; 6] = [
            b"",
            b"hello",
            &[0x30, 0x03, 0x02, 0x01, 0x00],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ];
        for case in cases {
            let err = KeyPair::from_der(case).unwrap_err();
            assert!(err.to_string().starts_with("invalid private_key:"), "{err}");
        }
        let err = KeyPair::from_pem("not a key").unwrap_err();
        assert!(err.to_string().contains("no PEM block"), "{err}");
        let pair = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let der = pair.to_pkcs8_der();
        for len in 0..der.len() {
            assert!(KeyPair::from_der(&der.expose()[..len]).is_err());
        }
        let mut trailing = der.expose().to_vec();
        trailing.push(0);
        assert!(KeyPair::from_der(&trailing).is_err());
        let two = format!(
            "{}{}",
            pair.to_pkcs8_pem().expose(),
            pair.to_pkcs8_pem().expose()
        );
        assert!(
            KeyPair::from_pem(&two)
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
        let encrypted =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(
            KeyPair::from_pem(encrypted)
                .unwrap_err()
                .to_string()
                .contains("decrypt")
        );
    }

    #[test]
    fn key_pairs_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<KeyPair>();
    }
}
