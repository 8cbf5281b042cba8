//! PKCS #12 (RFC 7292) files: a certificate, its chain and its private key
//! under one password, readable by OpenSSL 3's default provider, Python's
//! `cryptography`, Java, Windows and macOS.
//!
//! Modern (the default), as OpenSSL 3 writes it: the key in a
//! `pkcs8ShroudedKeyBag` and the certificates in an `EncryptedData`, both
//! PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), and an HMAC-SHA256 MAC keyed by
//! the PKCS #12 KDF. (PBMAC1, RFC 9579, would be newer still, but OpenSSL
//! reads it only from 3.4 on.) Legacy, on request, for consumers that
//! predate PBES2 in PKCS #12 (Windows Server 2016, Java 8, old macOS): the
//! key under `pbeWithSHAAnd3-KeyTripleDES-CBC`, the certificates under
//! `pbeWithSHAAnd40BitRC2-CBC`, an HMAC-SHA1 MAC.
//!
//! The leaf's certificate bag and the key bag carry the same `friendlyName`
//! and `localKeyId` (which is how readers pair them); chain certificates
//! carry neither. `cms` provides ContentInfo and EncryptedData; the few
//! PKCS #12 structures are here.

use cms::content_info::{CmsVersion, ContentInfo};
use cms::encrypted_data::EncryptedData;
use cms::enveloped_data::EncryptedContentInfo;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_DATA, ID_ENCRYPTED_DATA};
use der::asn1::{BmpString, OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use hmac::{KeyInit, Mac};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use zeroize::Zeroizing;

use super::pbe::{self, KdfPurpose, Pbe, bmp_password, pkcs12_kdf};
use super::secret::{SecretString, random_bytes};
use crate::{Error, Result};

/// How a PKCS #12 file is encrypted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pkcs12Encryption {
    /// PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) for key and certificates,
    /// HMAC-SHA256 MAC: what OpenSSL 3 writes by default.
    #[default]
    Modern,
    /// 3DES for the key, 40-bit RC2 for the certificates, HMAC-SHA1 MAC:
    /// weak, only for consumers that cannot read the modern form
    /// (`openssl pkcs12 -legacy` reads it).
    Legacy,
}

impl Pkcs12Encryption {
    /// The name used in audit rows and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Pkcs12Encryption::Modern => "modern",
            Pkcs12Encryption::Legacy => "legacy",
        }
    }
}

/// What goes into a PKCS #12 file.
pub struct Pkcs12Contents<'a> {
    /// The private key, PKCS #8 `PrivateKeyInfo` DER.
    pub private_key_pkcs8: &'a [u8],
    /// The certificate of that key, DER.
    pub certificate: &'a [u8],
    /// Its chain (issuer first, up to the root when known), DER each.
    pub chain: &'a [Vec<u8>],
    /// `friendlyName` of the key and its certificate.
    pub friendly_name: &'a str,
    /// `localKeyId` of the key and its certificate.
    pub local_key_id: &'a [u8],
}

const PKCS8_SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
const LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// `PFX` (RFC 7292 §4).
#[derive(Sequence)]
struct Pfx {
    version: u8,
    auth_safe: ContentInfo,
    mac_data: Option<MacData>,
}

/// `MacData` (RFC 7292 §4).
#[derive(Sequence)]
struct MacData {
    mac: DigestInfo,
    mac_salt: OctetString,
    iterations: u32,
}

/// `DigestInfo` (RFC 8017 §9.2).
#[derive(Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// `SafeBag` (RFC 7292 §4.2).
#[derive(Sequence)]
struct SafeBag {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    bag_value: Any,
    bag_attributes: Option<SetOfVec<Attribute>>,
}

/// `CertBag` (RFC 7292 §4.2.3).
#[derive(Sequence)]
struct CertBag {
    cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    cert_value: OctetString,
}

fn encoding(what: &str, err: impl std::fmt::Display) -> Error {
    Error::crypto(format!("encoding PKCS #12 {what}: {err}"))
}

fn attributes(friendly_name: &str, local_key_id: &[u8]) -> Result<SetOfVec<Attribute>> {
    let name = BmpString::from_utf8(friendly_name).map_err(|err| encoding("friendlyName", err))?;
    let attribute = |oid, value: Any| -> Result<Attribute> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).map_err(|err| encoding("attribute", err))?,
        })
    };
    let id = OctetString::new(local_key_id).map_err(|err| encoding("localKeyId", err))?;
    SetOfVec::try_from(vec![
        attribute(
            FRIENDLY_NAME,
            Any::encode_from(&name).map_err(|err| encoding("friendlyName", err))?,
        )?,
        attribute(
            LOCAL_KEY_ID,
            Any::encode_from(&id).map_err(|err| encoding("localKeyId", err))?,
        )?,
    ])
    .map_err(|err| encoding("attributes", err))
}

fn cert_bag(der: &[u8], attributes: Option<SetOfVec<Attribute>>) -> Result<SafeBag> {
    let bag = CertBag {
        cert_id: X509_CERTIFICATE,
        cert_value: OctetString::new(der).map_err(|err| encoding("certificate", err))?,
    };
    Ok(SafeBag {
        bag_id: CERT_BAG,
        bag_value: Any::encode_from(&bag).map_err(|err| encoding("CertBag", err))?,
        bag_attributes: attributes,
    })
}

fn data_content(der: &[u8]) -> Result<ContentInfo> {
    let octets = OctetString::new(der).map_err(|err| encoding("data", err))?;
    Ok(ContentInfo {
        content_type: ID_DATA,
        content: Any::encode_from(&octets).map_err(|err| encoding("data", err))?,
    })
}

/// Builds a PKCS #12 file (DER). The password must have passed
/// [`pbe::check_export_password`] and `iterations` [`pbe::check_iterations`].
pub fn build_pkcs12(
    contents: &Pkcs12Contents<'_>,
    password: &SecretString,
    encryption: Pkcs12Encryption,
    iterations: u32,
) -> Result<Vec<u8>> {
    let (key_scheme, cert_scheme) = match encryption {
        Pkcs12Encryption::Modern => (
            Pbe::Pbes2Aes256 { iterations },
            Pbe::Pbes2Aes256 { iterations },
        ),
        Pkcs12Encryption::Legacy => (
            Pbe::Sha1TripleDes { iterations },
            Pbe::Sha1Rc2_40 { iterations },
        ),
    };

    // Certificates: leaf (with the attributes) then chain, encrypted.
    let mut cert_bags = vec![cert_bag(
        contents.certificate,
        Some(attributes(contents.friendly_name, contents.local_key_id)?),
    )?];
    for der in contents.chain {
        cert_bags.push(cert_bag(der, None)?);
    }
    let cert_safe = cert_bags
        .to_der()
        .map_err(|err| encoding("SafeContents", err))?;
    let encrypted = cert_scheme.encrypt(password, &cert_safe)?;
    let encrypted_data = EncryptedData {
        version: CmsVersion::V0,
        enc_content_info: EncryptedContentInfo {
            content_type: ID_DATA,
            content_enc_alg: encrypted.algorithm,
            encrypted_content: Some(
                OctetString::new(encrypted.ciphertext)
                    .map_err(|err| encoding("EncryptedData", err))?,
            ),
        },
        unprotected_attrs: None,
    };
    let cert_content = ContentInfo {
        content_type: ID_ENCRYPTED_DATA,
        content: Any::encode_from(&encrypted_data).map_err(|err| encoding("EncryptedData", err))?,
    };

    // The key, shrouded, in a plain data safe (its bag is encrypted itself).
    let shrouded = pbe::encrypt_private_key_info(contents.private_key_pkcs8, password, key_scheme)?;
    let key_bag = SafeBag {
        bag_id: PKCS8_SHROUDED_KEY_BAG,
        bag_value: Any::from_der(&shrouded).map_err(|err| encoding("key bag", err))?,
        bag_attributes: Some(attributes(contents.friendly_name, contents.local_key_id)?),
    };
    let key_safe = vec![key_bag]
        .to_der()
        .map_err(|err| encoding("SafeContents", err))?;
    let key_content = data_content(&key_safe)?;

    let auth_safe = vec![cert_content, key_content]
        .to_der()
        .map_err(|err| encoding("AuthenticatedSafe", err))?;
    let mac_data = mac(&auth_safe, password, encryption, iterations)?;
    Pfx {
        version: 3,
        auth_safe: data_content(&auth_safe)?,
        mac_data: Some(mac_data),
    }
    .to_der()
    .map_err(|err| encoding("PFX", err))
}

/// The PFX's integrity MAC over the authenticated safe's DER (RFC 7292 §5).
fn mac(
    auth_safe: &[u8],
    password: &SecretString,
    encryption: Pkcs12Encryption,
    iterations: u32,
) -> Result<MacData> {
    let salt = random_bytes(16);
    let pass = bmp_password(password);
    let (digest_oid, digest) = match encryption {
        Pkcs12Encryption::Modern => {
            let key = pkcs12_kdf::<sha2::Sha256>(&pass, &salt, KdfPurpose::Mac, iterations, 32);
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
                .map_err(|err| Error::crypto(format!("MAC key: {err}")))?;
            mac.update(auth_safe);
            (SHA256, Zeroizing::new(mac.finalize().into_bytes().to_vec()))
        }
        Pkcs12Encryption::Legacy => {
            let key = pkcs12_kdf::<sha1::Sha1>(&pass, &salt, KdfPurpose::Mac, iterations, 20);
            let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&key)
                .map_err(|err| Error::crypto(format!("MAC key: {err}")))?;
            mac.update(auth_safe);
            (SHA1, Zeroizing::new(mac.finalize().into_bytes().to_vec()))
        }
    };
    Ok(MacData {
        mac: DigestInfo {
            algorithm: AlgorithmIdentifierOwned {
                oid: digest_oid,
                // NULL parameters, as OpenSSL writes them.
                parameters: Some(Any::from(der::asn1::Null)),
            },
            digest: OctetString::new(digest.as_slice()).map_err(|err| encoding("MAC", err))?,
        },
        mac_salt: OctetString::new(salt).map_err(|err| encoding("MAC salt", err))?,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{KeyAlgorithm, KeyPair};

    /// The cost of one export at the default work factor (run with
    /// `--ignored --nocapture`; the figures go in the report, not asserts).
    #[test]
    #[ignore = "a measurement"]
    fn cost_at_the_default_work_factor() {
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pkcs8 = key.to_pkcs8_der();
        let password = SecretString::from("Correct horse battery 9");
        let certificate = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let contents = Pkcs12Contents {
            private_key_pkcs8: pkcs8.expose(),
            certificate: &certificate,
            chain: &[],
            friendly_name: "cost",
            local_key_id: &[1; 20],
        };
        for encryption in [Pkcs12Encryption::Modern, Pkcs12Encryption::Legacy] {
            let started = std::time::Instant::now();
            build_pkcs12(&contents, &password, encryption, pbe::DEFAULT_ITERATIONS).unwrap();
            println!("PKCS #12 {encryption:?}: {:?}", started.elapsed());
        }
        let started = std::time::Instant::now();
        pbe::encrypt_private_key_info(
            pkcs8.expose(),
            &password,
            Pbe::Pbes2Aes256 {
                iterations: pbe::DEFAULT_ITERATIONS,
            },
        )
        .unwrap();
        println!("encrypted PKCS #8: {:?}", started.elapsed());
    }
}
