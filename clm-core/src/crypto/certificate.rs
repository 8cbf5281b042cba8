//! X.509 certificates: lenient, flagging import and RFC 5280 issuance.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use super::keys::{KeyPair, RawSignature};
use super::name::{DistinguishedName, UNIVERSAL_STRING_STAND_IN, common_name_of, format_name};
use super::pem::{PemLabel, der_to_pem, looks_like_pem, pem_blocks};
use super::pkix::{
    ImportedCertificate, LenientCertificate, Signed, encoding, hex_lower, oid, public_key_info,
    read_time, signature_algorithm_name, to_time, verify_signature,
};
use super::secret::random_bytes;
use crate::model::{CertificateKind, SubjectAlternativeName};
use crate::{Error, Result};

const FIELD: &str = "certificate";

/// Largest certificate accepted on import. Real certificates are a few KB;
/// this only bounds work on hostile input.
pub const MAX_CERTIFICATE_LEN: usize = 1024 * 1024;

/// Everything clm records about a certificate, read from its DER.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedCertificate {
    /// The certificate exactly as read (DER), what the fingerprint is taken of.
    pub der: Vec<u8>,
    /// The DER as one PEM `CERTIFICATE` block.
    pub pem: String,
    /// RFC 4514, most specific first: `CN=server.example.com,O=Example`.
    pub subject_dn: String,
    /// The subject's first CN, when it is a string; None when there is none.
    pub common_name: Option<String>,
    /// RFC 4514, as `subject_dn`.
    pub issuer_dn: String,
    /// Lowercase hex of the serial's DER content bytes: lossless even for
    /// negative, zero or over-long serials (see `flags`).
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity: the expiry.
    pub not_after: DateTime<Utc>,
    /// From subjectAltName; kinds clm cannot hold are flagged, not listed.
    pub subject_alternative_names: Vec<SubjectAlternativeName>,
    /// "RSA", "ECDSA", "Ed25519", "Ed448" or the key algorithm's OID.
    pub key_algorithm: String,
    /// RSA modulus bits or curve size; 0 when unknown.
    pub key_size: u32,
    /// e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, `Ed25519`.
    pub signature_algorithm: String,
    /// basicConstraints cA; false when the extension is absent.
    pub is_ca: bool,
    /// basicConstraints pathLenConstraint; None means no limit.
    pub path_len: Option<u8>,
    /// Lowercase hex SHA-256 of the DER.
    pub fingerprint_sha256: String,
    /// Lowercase hex of subjectKeyIdentifier, when present.
    pub subject_key_id: Option<String>,
    /// Lowercase hex of authorityKeyIdentifier's keyIdentifier, when present.
    pub authority_key_id: Option<String>,
    /// SubjectPublicKeyInfo DER.
    pub public_key_der: Vec<u8>,
    /// keyUsage bits by RFC 5280 name (`digitalSignature`, `keyCertSign`, ...).
    pub key_usage: Vec<String>,
    /// extendedKeyUsage purposes (`serverAuth`, `clientAuth`, ... or OIDs).
    pub extended_key_usage: Vec<String>,
    /// Oddities that did not stop the import: `serial_negative`,
    /// `serial_zero`, `serial_too_long`, `unknown_critical_extension:OID`,
    /// `malformed_extension:OID`, `duplicate_extension:OID`,
    /// `unsupported_san:KIND`, `san_not_ascii` (an email, DNS or URI SAN
    /// in UTF-8 beyond IA5String's ASCII), `version_1`, `version_2`,
    /// `version_unknown:N` (version INTEGER N, past v3), `not_der` (read, but
    /// not in DER: a DEFAULT value written out, a SET OF out of order, ...),
    /// `signature_algorithm_mismatch`, `validity_inverted` (notAfter before
    /// notBefore), `validity_empty` (notAfter equal to notBefore),
    /// `validity_misencoded` (a time RFC 5280 encodes otherwise: not DER's
    /// form, or a GeneralizedTime before 2050).
    pub flags: Vec<String>,
}

impl ParsedCertificate {
    /// The serial's DER content bytes (what [`CrlEntry`](super::CrlEntry) takes).
    pub fn serial_bytes(&self) -> Vec<u8> {
        hex::decode(&self.serial_hex).unwrap_or_default()
    }

    /// True when the named flag (or flag prefix such as
    /// `unknown_critical_extension`) is set.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags
            .iter()
            .any(|f| f == flag || f.split(':').next() == Some(flag))
    }
}

/// Parses one DER certificate. Never panics; malformed input (trailing
/// bytes, non-minimal DER, impossible lengths) is `InvalidInput` on
/// `certificate`.
pub fn parse_certificate_der(der: &[u8]) -> Result<ParsedCertificate> {
    if der.is_empty() {
        return Err(Error::invalid(FIELD, "is empty"));
    }
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err(Error::invalid(
            FIELD,
            format!(
                "is {} bytes; at most {MAX_CERTIFICATE_LEN} are accepted",
                der.len()
            ),
        ));
    }
    // The der crate has no UniversalString; names that use it are read
    // from a copy where it is retagged (see `UNIVERSAL_STRING_STAND_IN`).
    let retagged = retag_universal_strings(der);
    let certificate = ImportedCertificate::from_der(retagged.as_deref().unwrap_or(der))
        .map_err(|err| Error::invalid(FIELD, format!("malformed DER: {err}")))?;
    let tbs = &certificate.tbs_certificate;
    let mut flags = Vec::new();
    // What the der crate reads but DER forbids (a DEFAULT value written
    // out, a SET OF out of order, ...) does not survive re-encoding; the
    // fingerprint stays the one of the bytes as given.
    let read = retagged.as_deref().unwrap_or(der);
    if certificate.to_der().map_or(true, |again| again != read) {
        flags.push("not_der".to_string());
    }

    // The INTEGER as written: 0 is v1, 1 is v2, 2 is v3; openssl reads others too.
    match tbs.version {
        0 => flags.push("version_1".to_string()),
        1 => flags.push("version_2".to_string()),
        2 => {}
        other => flags.push(format!("version_unknown:{other}")),
    }

    let serial = tbs.serial_number.as_bytes();
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        flags.push("serial_negative".into());
    } else if serial.iter().all(|&b| b == 0) {
        flags.push("serial_zero".into());
    }
    if serial.len() > 20 {
        flags.push("serial_too_long".into());
    }

    let not_before = read_time(&tbs.validity.not_before, "certificate.not_before")?;
    let not_after = read_time(&tbs.validity.not_after, "certificate.not_after")?;
    if !(not_before.as_rfc5280 && not_after.as_rfc5280) {
        flags.push("validity_misencoded".into());
    }
    let (not_before, not_after) = (not_before.at, not_after.at);
    if not_after < not_before {
        flags.push("validity_inverted".into());
    } else if not_after == not_before {
        flags.push("validity_empty".into());
    }

    if tbs.signature != certificate.signature_algorithm {
        flags.push("signature_algorithm_mismatch".into());
    }

    let public_key_der = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|err| Error::invalid(FIELD, format!("cannot re-encode the public key: {err}")))?;
    let spki = SubjectPublicKeyInfoRef::from_der(&public_key_der)
        .map_err(|err| Error::invalid(FIELD, format!("malformed public key: {err}")))?;
    let key = public_key_info(&spki);

    let mut parsed = ParsedCertificate {
        der: der.to_vec(),
        pem: der_to_pem(PemLabel::Certificate, der),
        subject_dn: format_name(&tbs.subject),
        common_name: common_name_of(&tbs.subject),
        issuer_dn: format_name(&tbs.issuer),
        serial_hex: hex_lower(serial),
        not_before,
        not_after,
        subject_alternative_names: Vec::new(),
        key_algorithm: key.family,
        key_size: key.bits,
        signature_algorithm: signature_algorithm_name(&certificate.signature_algorithm.oid),
        is_ca: false,
        path_len: None,
        fingerprint_sha256: hex_lower(&Sha256::digest(der)),
        subject_key_id: None,
        authority_key_id: None,
        public_key_der,
        key_usage: Vec::new(),
        extended_key_usage: Vec::new(),
        flags,
    };
    read_extensions(tbs.extensions.as_deref().unwrap_or(&[]), &mut parsed);
    Ok(parsed)
}

/// One definite-length DER header at `at`: (tag byte, header length,
/// content length). None for anything else (long tags, indefinite or
/// impossible lengths), which then stays for the real parser to refuse.
fn tlv_at(der: &[u8], at: usize) -> Option<(u8, usize, usize)> {
    let tag = *der.get(at)?;
    let first = *der.get(at.checked_add(1)?)?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (header, length) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = der.get(at.checked_add(2)?..at.checked_add(2 + count)?)?;
        let length = bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (2 + count, length)
    };
    let end = at.checked_add(header)?.checked_add(length)?;
    (end <= der.len()).then_some((tag, header, length))
}

/// The children (offsets) of the constructed element at `at`.
fn children_of(der: &[u8], at: usize) -> Option<Vec<usize>> {
    let (_, header, length) = tlv_at(der, at)?;
    let (mut next, end) = (at + header, at + header + length);
    let mut children = Vec::new();
    while next < end {
        let (_, h, l) = tlv_at(der, next)?;
        children.push(next);
        next = next.checked_add(h)?.checked_add(l)?;
    }
    (next == end).then_some(children)
}

/// A copy of the certificate whose issuer and subject UniversalStrings
/// (universal tag 28, UTF-32) carry [`UNIVERSAL_STRING_STAND_IN`] instead;
/// None when there are none (or the DER is not walkable, for the parser to
/// refuse). The tag byte is one byte either way, so no length changes.
fn retag_universal_strings(der: &[u8]) -> Option<Vec<u8>> {
    const UNIVERSAL_STRING: u8 = 0x1c;
    let certificate = children_of(der, 0)?;
    let tbs = children_of(der, *certificate.first()?)?;
    let skip_version = usize::from(der.get(*tbs.first()?) == Some(&0xa0));
    let mut retagged: Option<Vec<u8>> = None;
    // issuer and subject: TBSCertificate fields 2 and 4 after the version.
    for field in [2, 4] {
        let name = *tbs.get(skip_version + field)?;
        for rdn in children_of(der, name)? {
            for attribute in children_of(der, rdn)? {
                let value = *children_of(der, attribute)?.get(1)?;
                if der[value] == UNIVERSAL_STRING {
                    retagged.get_or_insert_with(|| der.to_vec())[value] = UNIVERSAL_STRING_STAND_IN;
                }
            }
        }
    }
    retagged
}

/// Extensions we understand (or knowingly ignore) on import.
const KNOWN_EXTENSIONS: [der::asn1::ObjectIdentifier; 19] = [
    oid::BASIC_CONSTRAINTS,
    oid::KEY_USAGE,
    oid::EXT_KEY_USAGE,
    oid::SUBJECT_ALT_NAME,
    oid::ISSUER_ALT_NAME,
    oid::SUBJECT_KEY_ID,
    oid::AUTHORITY_KEY_ID,
    oid::NAME_CONSTRAINTS,
    oid::CERTIFICATE_POLICIES,
    oid::POLICY_MAPPINGS,
    oid::POLICY_CONSTRAINTS,
    oid::INHIBIT_ANY_POLICY,
    oid::CRL_DISTRIBUTION_POINTS,
    oid::FRESHEST_CRL,
    oid::AUTHORITY_INFO_ACCESS,
    oid::SUBJECT_INFO_ACCESS,
    oid::SUBJECT_DIRECTORY_ATTRIBUTES,
    oid::CT_PRECERT_SCTS,
    oid::CRL_NUMBER,
];

fn read_extensions(extensions: &[Extension], parsed: &mut ParsedCertificate) {
    let mut seen = Vec::with_capacity(extensions.len());
    for extension in extensions {
        let id = extension.extn_id;
        if seen.contains(&id) {
            parsed.flags.push(format!("duplicate_extension:{id}"));
            continue;
        }
        seen.push(id);
        let value = extension.extn_value.as_bytes();
        let ok = match id {
            oid::BASIC_CONSTRAINTS => BasicConstraints::from_der(value).map(|bc| {
                parsed.is_ca = bc.ca;
                parsed.path_len = bc.path_len_constraint;
            }),
            oid::KEY_USAGE => KeyUsage::from_der(value).map(|ku| {
                parsed.key_usage = key_usage_names(&ku);
            }),
            oid::EXT_KEY_USAGE => ExtendedKeyUsage::from_der(value).map(|eku| {
                parsed.extended_key_usage = eku.0.iter().map(eku_name).collect();
            }),
            oid::SUBJECT_ALT_NAME => Vec::<der::Any>::from_der(value).map(|names| {
                for name in &names {
                    match imported_san(name) {
                        Ok((san, ascii)) => {
                            if !ascii && !parsed.has_flag("san_not_ascii") {
                                parsed.flags.push("san_not_ascii".into());
                            }
                            parsed.subject_alternative_names.push(san);
                        }
                        Err(kind) => parsed.flags.push(format!("unsupported_san:{kind}")),
                    }
                }
            }),
            oid::SUBJECT_KEY_ID => SubjectKeyIdentifier::from_der(value).map(|ski| {
                parsed.subject_key_id = Some(hex_lower(ski.0.as_bytes()));
            }),
            oid::AUTHORITY_KEY_ID => AuthorityKeyIdentifier::from_der(value).map(|aki| {
                parsed.authority_key_id = aki.key_identifier.map(|id| hex_lower(id.as_bytes()));
            }),
            other => {
                if extension.critical && !KNOWN_EXTENSIONS.contains(&other) {
                    parsed
                        .flags
                        .push(format!("unknown_critical_extension:{other}"));
                }
                Ok(())
            }
        };
        if ok.is_err() {
            parsed.flags.push(format!("malformed_extension:{id}"));
        }
    }
}

fn key_usage_names(usage: &KeyUsage) -> Vec<String> {
    const NAMES: [(KeyUsages, &str); 9] = [
        (KeyUsages::DigitalSignature, "digitalSignature"),
        (KeyUsages::NonRepudiation, "nonRepudiation"),
        (KeyUsages::KeyEncipherment, "keyEncipherment"),
        (KeyUsages::DataEncipherment, "dataEncipherment"),
        (KeyUsages::KeyAgreement, "keyAgreement"),
        (KeyUsages::KeyCertSign, "keyCertSign"),
        (KeyUsages::CRLSign, "cRLSign"),
        (KeyUsages::EncipherOnly, "encipherOnly"),
        (KeyUsages::DecipherOnly, "decipherOnly"),
    ];
    NAMES
        .iter()
        .filter(|(bit, _)| usage.0.contains(*bit))
        .map(|(_, name)| name.to_string())
        .collect()
}

fn eku_name(purpose: &der::asn1::ObjectIdentifier) -> String {
    match *purpose {
        oid::KP_SERVER_AUTH => "serverAuth".into(),
        oid::KP_CLIENT_AUTH => "clientAuth".into(),
        oid::KP_CODE_SIGNING => "codeSigning".into(),
        oid::KP_EMAIL_PROTECTION => "emailProtection".into(),
        oid::KP_TIME_STAMPING => "timeStamping".into(),
        oid::KP_OCSP_SIGNING => "OCSPSigning".into(),
        oid::KP_ANY => "anyExtendedKeyUsage".into(),
        other => other.to_string(),
    }
}

/// Reads one GeneralName of an imported certificate's subjectAltName from
/// its TLV, as leniently as openssl and pyca/cryptography do: a name of
/// the IA5String kinds (email, DNS, URI) that holds UTF-8 beyond ASCII is
/// kept (with `false`: flagged `san_not_ascii`) where x509-cert's strict
/// IA5String refused the whole extension. Err names a kind clm cannot hold.
fn imported_san(
    name: &der::Any,
) -> std::result::Result<(SubjectAlternativeName, bool), &'static str> {
    let der::Tag::ContextSpecific {
        constructed,
        number,
    } = der::Tagged::tag(name)
    else {
        return Err("notAGeneralName");
    };
    let bytes = name.value();
    let text = || {
        std::str::from_utf8(bytes)
            .map(|t| (t.to_string(), t.is_ascii()))
            .map_err(|_| "invalidText")
    };
    match (number.value(), constructed) {
        (1, false) => text().map(|(t, ascii)| (SubjectAlternativeName::Email(t), ascii)),
        (2, false) => text().map(|(t, ascii)| (SubjectAlternativeName::Dns(t), ascii)),
        (6, false) => text().map(|(t, ascii)| (SubjectAlternativeName::Uri(t), ascii)),
        (7, false) => match bytes.len() {
            4 | 16 => {
                let ip = if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
                    IpAddr::from(v4)
                } else {
                    let mut v6 = [0u8; 16];
                    v6.copy_from_slice(bytes);
                    IpAddr::from(v6)
                };
                Ok((SubjectAlternativeName::Ip(ip), true))
            }
            _ => Err("malformedIpAddress"),
        },
        (0, true) => Err("otherName"),
        (3, true) => Err("x400Address"),
        (4, true) => Err("directoryName"),
        (5, true) => Err("ediPartyName"),
        (8, false) => Err("registeredID"),
        _ => Err("malformedGeneralName"),
    }
}

/// Maps a GeneralName to the model's SAN, or names the unsupported kind.
pub(crate) fn general_name_to_san(
    name: &GeneralName,
) -> std::result::Result<SubjectAlternativeName, &'static str> {
    match name {
        GeneralName::DnsName(dns) => Ok(SubjectAlternativeName::Dns(dns.to_string())),
        GeneralName::Rfc822Name(email) => Ok(SubjectAlternativeName::Email(email.to_string())),
        GeneralName::UniformResourceIdentifier(uri) => {
            Ok(SubjectAlternativeName::Uri(uri.to_string()))
        }
        GeneralName::IpAddress(octets) => match octets.as_bytes() {
            bytes if bytes.len() == 4 => {
                let mut v4 = [0u8; 4];
                v4.copy_from_slice(bytes);
                Ok(SubjectAlternativeName::Ip(IpAddr::from(v4)))
            }
            bytes if bytes.len() == 16 => {
                let mut v6 = [0u8; 16];
                v6.copy_from_slice(bytes);
                Ok(SubjectAlternativeName::Ip(IpAddr::from(v6)))
            }
            _ => Err("malformedIpAddress"),
        },
        GeneralName::OtherName(_) => Err("otherName"),
        GeneralName::DirectoryName(_) => Err("directoryName"),
        GeneralName::EdiPartyName(_) => Err("ediPartyName"),
        GeneralName::RegisteredId(_) => Err("registeredID"),
    }
}

/// Parses one PEM certificate, a PEM bundle (non-certificate blocks such as
/// private keys are skipped), or one DER certificate.
pub fn parse_certificates(input: &[u8]) -> Result<Vec<ParsedCertificate>> {
    parse_certificate_bundle(input).map(|bundle| bundle.certificates)
}

/// A PEM block of an import's input that holds no certificate and was left
/// out (a private key, parameters, a CRL, ...). Nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SkippedBlock {
    /// Position of the block among the input's PEM blocks, from 1.
    pub block: usize,
    /// Its label (`RSA PRIVATE KEY`, `EC PARAMETERS`, ...).
    pub label: String,
    /// Why it was left out.
    pub reason: String,
}

/// What [`parse_certificate_bundle`] read.
#[derive(Debug, Clone, Default)]
pub struct ParsedBundle {
    /// The certificates, in input order.
    pub certificates: Vec<ParsedCertificate>,
    /// The PEM blocks that are not certificates.
    pub skipped: Vec<SkippedBlock>,
    /// PEM blocks in the input (0 for DER).
    pub blocks: usize,
}

/// [`parse_certificates`], also reporting the PEM blocks it left out. An
/// encrypted legacy key (RFC 1421 `Proc-Type`/`DEK-Info` headers) is one of
/// them: it does not stop the certificates around it.
pub fn parse_certificate_bundle(input: &[u8]) -> Result<ParsedBundle> {
    let bundle = read_bundle(input)?;
    if bundle.certificates.is_empty() {
        return Err(Error::invalid(FIELD, "PEM holds no CERTIFICATE block"));
    }
    Ok(bundle)
}

/// [`parse_certificate_bundle`] without its one rule on the whole input
/// (at least one certificate), for pieces of a bundle parsed apart.
pub(crate) fn read_bundle(input: &[u8]) -> Result<ParsedBundle> {
    if !looks_like_pem(input) {
        return Ok(ParsedBundle {
            certificates: vec![parse_certificate_der(input)?],
            ..ParsedBundle::default()
        });
    }
    let blocks = pem_blocks(input, FIELD)?;
    let is_certificate = |label: &str| {
        matches!(
            label,
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE"
        )
    };
    let count = blocks.iter().filter(|b| is_certificate(&b.label)).count();
    let mut bundle = ParsedBundle {
        certificates: Vec::with_capacity(count),
        skipped: Vec::new(),
        blocks: blocks.len(),
    };
    for (position, block) in blocks.iter().enumerate() {
        if !is_certificate(&block.label) {
            bundle.skipped.push(SkippedBlock {
                block: position.saturating_add(1),
                label: block.label.clone(),
                reason: skip_reason(block).into(),
            });
            continue;
        }
        let number = bundle.certificates.len().saturating_add(1);
        let numbered = |err: Error| match err {
            Error::InvalidInput { field, reason, .. } if count > 1 => {
                Error::invalid(field, format!("certificate #{number} of {count}: {reason}"))
            }
            other => other,
        };
        if !block.headers.is_empty() {
            return Err(numbered(block.headers_error(FIELD)));
        }
        let der = if block.label == "TRUSTED CERTIFICATE" {
            // OpenSSL's trusted form: the certificate, then its trust
            // settings (X509_AUX); the certificate is the first element.
            first_element(&block.der).map_err(numbered)?
        } else {
            &block.der
        };
        bundle
            .certificates
            .push(parse_certificate_der(der).map_err(numbered)?);
    }
    Ok(bundle)
}

/// Why a PEM block that is not a certificate is left out.
fn skip_reason(block: &super::pem::PemBlock) -> &'static str {
    if block.is_encrypted() {
        "an encrypted legacy private key (Proc-Type/DEK-Info headers): not opened; \
         a certificate's key is imported decrypted, as private_key_pem"
    } else if block.label.ends_with("PRIVATE KEY") {
        "a private key: keys are not taken from a bundle; \
         a certificate's key is imported as private_key_pem"
    } else {
        "not a certificate"
    }
}

/// The bytes of the first DER element of `der` (tag, length and value).
fn first_element(der: &[u8]) -> Result<&[u8]> {
    let mut reader = der::SliceReader::new(der)
        .map_err(|err| Error::invalid(FIELD, format!("malformed DER: {err}")))?;
    let any = der::Reader::tlv_bytes(&mut reader)
        .map_err(|err| Error::invalid(FIELD, format!("malformed DER: {err}")))?;
    Ok(any)
}

/// A serial as stored (lowercase hex of its DER content bytes) as the signed
/// integer it encodes, in hex: `0x4d`, `0x0`, or `-0x4316693ed` for the bytes
/// `fbce996c13` (a negative serial, flagged `serial_negative`); what openssl
/// and pyca/cryptography show. Text that is not hex is returned unchanged.
pub fn signed_serial(serial_hex: &str) -> String {
    let Ok(bytes) = hex::decode(serial_hex) else {
        return serial_hex.to_string();
    };
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let magnitude = if negative {
        // Two's complement: invert, add one.
        let mut inverted: Vec<u8> = bytes.iter().map(|b| !b).collect();
        for byte in inverted.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
        inverted
    } else {
        bytes
    };
    let digits = hex::encode(magnitude);
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    format!("{}0x{digits}", if negative { "-" } else { "" })
}

/// The stored form (lowercase hex of the DER content bytes) of a serial a
/// caller typed: that form itself (`fbce996c13`, also with colons as
/// `fb:ce:99:6c:13`), or a signed hexadecimal integer as [`signed_serial`]
/// writes it (`-0x4316693ed`, `0x4d`; `0x` may be left out after a minus).
pub fn serial_from_text(text: &str, field: &str) -> Result<String> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (integer, digits) = match unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0X"))
    {
        Some(rest) => (true, rest),
        None => (negative, unsigned),
    };
    let digits: String = digits.chars().filter(|&c| c != ':').collect();
    if digits.is_empty() || digits.len() > 2 * 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(Error::invalid(
            field,
            "is not a serial: give the hex of its bytes (fbce996c13) or a signed hex integer (-0x4316693ed)",
        ));
    }
    let digits = digits.to_ascii_lowercase();
    if !integer {
        if !digits.len().is_multiple_of(2) {
            return Err(Error::invalid(
                field,
                "serial bytes in hex need an even number of digits",
            ));
        }
        return Ok(digits);
    }
    let padded = if digits.len().is_multiple_of(2) {
        digits
    } else {
        format!("0{digits}")
    };
    let mut magnitude =
        hex::decode(&padded).map_err(|_| Error::invalid(field, "is not hexadecimal"))?;
    let first_significant = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    magnitude.drain(..first_significant);
    if magnitude.is_empty() {
        return Ok("00".into());
    }
    let mut bytes = if negative {
        // Two's complement of the magnitude, one byte wider, then the
        // redundant leading 0xff bytes dropped (DER's minimal form).
        let mut wide = vec![0u8];
        wide.extend_from_slice(&magnitude);
        for byte in wide.iter_mut() {
            *byte = !*byte;
        }
        for byte in wide.iter_mut().rev() {
            let (sum, carry) = byte.overflowing_add(1);
            *byte = sum;
            if !carry {
                break;
            }
        }
        wide
    } else {
        let mut wide = vec![0u8];
        wide.extend_from_slice(&magnitude);
        wide
    };
    let redundant = if negative { 0xff } else { 0x00 };
    while bytes.len() > 1 && bytes[0] == redundant && (bytes[1] & 0x80 != 0) == negative {
        bytes.remove(0);
    }
    Ok(hex::encode(bytes))
}

/// Checks that `child` was signed by the key in `issuer_spki_der`
/// (the issuer's [`ParsedCertificate::public_key_der`]).
pub fn verify_signed_by(child: &ParsedCertificate, issuer_spki_der: &[u8]) -> Result<()> {
    let signed = Signed::parse(&child.der, FIELD)?;
    let signature = signed
        .signature
        .as_bytes()
        .ok_or_else(|| Error::crypto("certificate signature BIT STRING has unused bits"))?;
    verify_signature(
        issuer_spki_der,
        &signed.algorithm,
        &signed.message()?,
        signature,
    )
}

/// A fresh serial: 16 random bytes with the top bits forced to `01`, so it
/// is positive, always 16 bytes long (no leading zero byte) and carries
/// 126 random bits, well over CA/B Forum's 64. Issuance does not look for
/// a repeat before signing: one is not expected among 2^60 certificates of
/// one issuer, and `uq_certificates_issuer_serial` refuses it if it happens.
pub fn random_serial() -> Vec<u8> {
    let mut serial = random_bytes(16);
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x3f) | 0x40;
    }
    serial
}

/// What to issue. The subject key and the issuer come separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateTemplate {
    /// The subject name to write.
    pub subject: DistinguishedName,
    /// Written as subjectAltName when not empty.
    pub subject_alternative_names: Vec<SubjectAlternativeName>,
    /// Decides basicConstraints, keyUsage and extendedKeyUsage.
    pub kind: CertificateKind,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity; must be after `not_before`.
    pub not_after: DateTime<Utc>,
    /// DER content bytes of a positive INTEGER: 1..=20 bytes, top bit of the
    /// first byte clear, no redundant leading zero. [`random_serial`] makes one.
    pub serial: Vec<u8>,
    /// pathLenConstraint; CA kinds only.
    pub path_len: Option<u8>,
    /// URLs written as cRLDistributionPoints (none: no extension).
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs written in authorityInfoAccess.
    pub ocsp_urls: Vec<String>,
    /// caIssuers URLs (where the issuer's certificate is published) written
    /// in authorityInfoAccess.
    pub ca_issuers_urls: Vec<String>,
    /// Written as a critical NameConstraints extension; CA kinds only.
    pub name_constraints: Option<super::NameConstraints>,
    /// Where the issuer's delta CRLs are published, written as freshestCRL
    /// (RFC 5280 §4.2.1.15; none: no extension).
    pub freshest_crl_urls: Vec<String>,
}

impl CertificateTemplate {
    /// A template with a random serial and no SANs, path length or URLs.
    pub fn new(
        subject: DistinguishedName,
        kind: CertificateKind,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Self {
        CertificateTemplate {
            subject,
            subject_alternative_names: Vec::new(),
            kind,
            not_before,
            not_after,
            serial: random_serial(),
            path_len: None,
            crl_distribution_points: Vec::new(),
            ocsp_urls: Vec::new(),
            ca_issuers_urls: Vec::new(),
            name_constraints: None,
            freshest_crl_urls: Vec::new(),
        }
    }
}

/// Who signs: the subject's own key (a root, or a self-signed end entity),
/// or a CA certificate with its key.
#[derive(Debug, Clone, Copy)]
pub enum Issuer<'a> {
    /// Signed with the subject key itself: issuer and subject are the same name.
    SelfSigned(&'a KeyPair),
    /// Signed by a CA.
    Ca {
        /// The CA's certificate (CA:TRUE, keyCertSign): its subject becomes the
        /// issuer name.
        certificate: &'a ParsedCertificate,
        /// The CA's private key; issuing fails unless it matches the certificate.
        key: &'a KeyPair,
    },
}

fn is_ca_kind(kind: CertificateKind) -> bool {
    matches!(
        kind,
        CertificateKind::RootCa | CertificateKind::IntermediateCa
    )
}

/// Checks a serial is the canonical DER content of a positive INTEGER that
/// RFC 5280 allows (1..=20 octets).
pub(crate) fn validate_serial(serial: &[u8], field: &str) -> Result<()> {
    match serial {
        [] => Err(Error::invalid(field, "is empty")),
        _ if serial.len() > 20 => Err(Error::invalid(
            field,
            format!("is {} bytes; RFC 5280 allows at most 20", serial.len()),
        )),
        [first, ..] if first & 0x80 != 0 => Err(Error::invalid(
            field,
            "is negative (top bit of the first byte set); prefix a 0x00 byte",
        )),
        [0, second, ..] if second & 0x80 == 0 => {
            Err(Error::invalid(field, "has a redundant leading zero byte"))
        }
        _ if serial.iter().all(|&b| b == 0) => {
            Err(Error::invalid(field, "is zero; serials must be positive"))
        }
        _ => Ok(()),
    }
}

fn validate_template(template: &CertificateTemplate) -> Result<()> {
    if template.kind == CertificateKind::Imported {
        return Err(Error::invalid(
            "kind",
            "imported certificates are not issued",
        ));
    }
    validate_serial(&template.serial, "serial")?;
    if template.not_after <= template.not_before {
        return Err(Error::invalid("not_after", "must be later than not_before"));
    }
    template.subject.validate()?;
    if is_ca_kind(template.kind) {
        if template.subject.is_empty() {
            return Err(Error::invalid(
                "subject",
                "a CA certificate needs a non-empty subject",
            ));
        }
    } else {
        if template.path_len.is_some() {
            return Err(Error::invalid(
                "path_len",
                "only CA certificates take a path length",
            ));
        }
        if template.name_constraints.is_some() {
            return Err(Error::invalid(
                "name_constraints",
                "only CA certificates take name constraints",
            ));
        }
        if template.subject.is_empty() && template.subject_alternative_names.is_empty() {
            return Err(Error::invalid(
                "subject",
                "is empty; give a subject or at least one subject alternative name",
            ));
        }
    }
    for (index, san) in template.subject_alternative_names.iter().enumerate() {
        san.validate().map_err(|reason| {
            Error::invalid(format!("subject_alternative_names[{index}]"), reason)
        })?;
    }
    for (field, urls) in [
        ("crl_distribution_points", &template.crl_distribution_points),
        ("ocsp_urls", &template.ocsp_urls),
        ("ca_issuers_urls", &template.ca_issuers_urls),
        ("freshest_crl_urls", &template.freshest_crl_urls),
    ] {
        for (index, url) in urls.iter().enumerate() {
            SubjectAlternativeName::Uri(url.clone())
                .validate()
                .map_err(|reason| Error::invalid(format!("{field}[{index}]"), reason))?;
        }
    }
    Ok(())
}

/// Issues a certificate: validates the template and the issuer, builds an
/// RFC 5280 v3 certificate for `subject_public_key_der` (SubjectPublicKeyInfo
/// DER) and signs it with the issuer's key. Returns the DER.
pub fn build_certificate(
    template: &CertificateTemplate,
    subject_public_key_der: &[u8],
    issuer: Issuer<'_>,
) -> Result<Vec<u8>> {
    validate_template(template)?;
    let subject_spki =
        SubjectPublicKeyInfoOwned::from_der(subject_public_key_der).map_err(|err| {
            Error::invalid(
                "subject_public_key",
                format!("malformed SubjectPublicKeyInfo: {err}"),
            )
        })?;
    let subject = template.subject.to_name()?;

    let (issuer_name, issuer_key_id, signing_key) = match issuer {
        Issuer::SelfSigned(key) => {
            if template.kind == CertificateKind::IntermediateCa {
                return Err(Error::invalid(
                    "kind",
                    "an intermediate CA must be issued by another CA",
                ));
            }
            if !key.matches_public_key(subject_public_key_der) {
                return Err(Error::invalid(
                    "subject_public_key",
                    "a self-signed certificate must carry the signing key's public key",
                ));
            }
            (subject.clone(), None, key)
        }
        Issuer::Ca { certificate, key } => {
            check_issuer(template, certificate, key)?;
            let issuer_cert = LenientCertificate::from_der(&certificate.der).map_err(|err| {
                Error::invalid("issuer", format!("issuer certificate is malformed: {err}"))
            })?;
            let key_id = certificate
                .subject_key_id
                .as_deref()
                .and_then(|hex_id| hex::decode(hex_id).ok());
            (issuer_cert.tbs_certificate().subject().clone(), key_id, key)
        }
    };

    let serial = SerialNumber::new(&template.serial)
        .map_err(|err| Error::invalid("serial", err.to_string()))?;
    let validity = Validity::new(
        to_time(template.not_before, "not_before")?,
        to_time(template.not_after, "not_after")?,
    );
    let name_constraints = template
        .name_constraints
        .as_ref()
        .map(super::NameConstraints::to_extension)
        .transpose()?;
    let profile = ClmProfile {
        template,
        subject,
        issuer: issuer_name,
        issuer_key_id,
        name_constraints,
    };
    let builder = CertificateBuilder::new(profile, serial, validity, subject_spki)
        .map_err(|err| Error::crypto(format!("cannot start the certificate: {err}")))?;
    let certificate = builder
        .build::<_, RawSignature>(&signing_key.x509_signer())
        .map_err(|err| Error::crypto(format!("cannot build the certificate: {err}")))?;
    certificate.to_der().map_err(encoding("certificate"))
}

fn check_issuer(
    template: &CertificateTemplate,
    certificate: &ParsedCertificate,
    key: &KeyPair,
) -> Result<()> {
    if template.kind == CertificateKind::RootCa {
        return Err(Error::invalid("kind", "a root CA must be self-signed"));
    }
    if !certificate.is_ca {
        return Err(Error::invalid(
            "issuer",
            format!(
                "{} is not a CA certificate (basicConstraints CA:FALSE or absent)",
                certificate.subject_dn
            ),
        ));
    }
    if !certificate.key_usage.is_empty()
        && !certificate.key_usage.iter().any(|u| u == "keyCertSign")
    {
        return Err(Error::invalid(
            "issuer",
            "issuer certificate's keyUsage lacks keyCertSign",
        ));
    }
    if !key.matches_public_key(&certificate.public_key_der) {
        return Err(Error::invalid(
            "issuer",
            "issuer key does not match the issuer certificate",
        ));
    }
    if template.kind == CertificateKind::IntermediateCa {
        match (certificate.path_len, template.path_len) {
            (Some(0), _) => {
                return Err(Error::invalid(
                    "issuer",
                    "issuer's pathLenConstraint of 0 forbids issuing CA certificates",
                ));
            }
            (Some(limit), Some(requested)) if requested >= limit => {
                return Err(Error::invalid(
                    "path_len",
                    format!("must be less than the issuer's pathLenConstraint of {limit}"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// clm's own issuance profile (x509-cert's CA/B Forum profile leaves out
/// SANs and panics on other certificate types).
struct ClmProfile<'a> {
    template: &'a CertificateTemplate,
    subject: Name,
    issuer: Name,
    /// The issuer certificate's subjectKeyIdentifier, when it has one.
    issuer_key_id: Option<Vec<u8>>,
    /// The template's NameConstraints, encoded.
    name_constraints: Option<Extension>,
}

/// RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits.
fn key_identifier(spki: &SubjectPublicKeyInfoRef<'_>) -> Vec<u8> {
    Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

fn extension<T: Encode>(
    id: der::asn1::ObjectIdentifier,
    critical: bool,
    value: &T,
) -> x509_cert::builder::Result<Extension> {
    Ok(Extension {
        extn_id: id,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn uri(text: &str) -> der::Result<GeneralName> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(
        text,
    )?))
}

impl BuilderProfile for ClmProfile<'_> {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let template = self.template;
        let is_ca = is_ca_kind(template.kind);
        let rsa = spk.algorithm.oid == oid::RSA_ENCRYPTION;
        let mut extensions = Vec::with_capacity(8);

        let basic = BasicConstraints {
            ca: is_ca,
            path_len_constraint: if is_ca { template.path_len } else { None },
        };
        extensions.push(extension(oid::BASIC_CONSTRAINTS, true, &basic)?);

        // keyEncipherment only means something for RSA keys (RSA key transport).
        let usage = match template.kind {
            CertificateKind::RootCa | CertificateKind::IntermediateCa => {
                KeyUsages::KeyCertSign | KeyUsages::CRLSign | KeyUsages::DigitalSignature
            }
            CertificateKind::TlsServer
            | CertificateKind::TlsServerClient
            | CertificateKind::Email
                if rsa =>
            {
                KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment
            }
            _ => KeyUsages::DigitalSignature.into(),
        };
        extensions.push(extension(oid::KEY_USAGE, true, &KeyUsage(usage))?);

        let purposes = match template.kind {
            CertificateKind::TlsServer => vec![oid::KP_SERVER_AUTH],
            CertificateKind::TlsClient => vec![oid::KP_CLIENT_AUTH],
            CertificateKind::TlsServerClient => vec![oid::KP_SERVER_AUTH, oid::KP_CLIENT_AUTH],
            CertificateKind::CodeSigning => vec![oid::KP_CODE_SIGNING],
            CertificateKind::Email => vec![oid::KP_EMAIL_PROTECTION],
            _ => Vec::new(),
        };
        if !purposes.is_empty() {
            extensions.push(extension(
                oid::EXT_KEY_USAGE,
                false,
                &ExtendedKeyUsage(purposes),
            )?);
        }

        if !template.subject_alternative_names.is_empty() {
            let names = template
                .subject_alternative_names
                .iter()
                .map(|san| match san {
                    SubjectAlternativeName::Dns(name) => {
                        Ok(GeneralName::DnsName(Ia5String::new(name)?))
                    }
                    SubjectAlternativeName::Email(address) => {
                        Ok(GeneralName::Rfc822Name(Ia5String::new(address)?))
                    }
                    SubjectAlternativeName::Uri(text) => uri(text),
                    SubjectAlternativeName::Ip(ip) => Ok(GeneralName::from(*ip)),
                })
                .collect::<der::Result<Vec<_>>>()?;
            // RFC 5280 §4.2.1.6: critical when the subject is empty.
            extensions.push(extension(
                oid::SUBJECT_ALT_NAME,
                self.subject.is_empty(),
                &SubjectAltName(names),
            )?);
        }

        let own_id = key_identifier(&spk);
        extensions.push(extension(
            oid::SUBJECT_KEY_ID,
            false,
            &SubjectKeyIdentifier(OctetString::new(own_id.clone())?),
        )?);

        let authority_id = match &self.issuer_key_id {
            Some(id) => id.clone(),
            None if matches!(template.kind, CertificateKind::RootCa) || spk == issuer_spk => own_id,
            None => key_identifier(&issuer_spk),
        };
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(authority_id)?),
            ..Default::default()
        };
        extensions.push(extension(oid::AUTHORITY_KEY_ID, false, &aki)?);

        extensions.extend(self.name_constraints.clone());

        // cRLDistributionPoints and freshestCRL share one syntax.
        for (id, urls) in [
            (
                oid::CRL_DISTRIBUTION_POINTS,
                &template.crl_distribution_points,
            ),
            (oid::FRESHEST_CRL, &template.freshest_crl_urls),
        ] {
            if urls.is_empty() {
                continue;
            }
            let names = urls
                .iter()
                .map(|u| uri(u))
                .collect::<der::Result<Vec<_>>>()?;
            let points = CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(names)),
                reasons: None,
                crl_issuer: None,
            }]);
            extensions.push(extension(id, false, &points)?);
        }

        let mut access = Vec::new();
        for (method, urls) in [
            (oid::AD_OCSP, &template.ocsp_urls),
            (oid::AD_CA_ISSUERS, &template.ca_issuers_urls),
        ] {
            for url in urls {
                access.push(AccessDescription {
                    access_method: method,
                    access_location: uri(url)?,
                });
            }
        }
        if !access.is_empty() {
            extensions.push(extension(
                oid::AUTHORITY_INFO_ACCESS,
                false,
                &AuthorityInfoAccessSyntax(access),
            )?);
        }
        Ok(extensions)
    }
}

#[cfg(test)]
mod serial_tests {
    use super::*;

    /// DER's minimal two's-complement content bytes of `value`.
    fn der_bytes(value: i64) -> Vec<u8> {
        let mut bytes = value.to_be_bytes().to_vec();
        while bytes.len() > 1
            && ((bytes[0] == 0x00 && bytes[1] & 0x80 == 0)
                || (bytes[0] == 0xff && bytes[1] & 0x80 != 0))
        {
            bytes.remove(0);
        }
        bytes
    }

    fn signed_text(value: i64) -> String {
        let sign = if value < 0 { "-" } else { "" };
        format!("{sign}0x{:x}", value.unsigned_abs())
    }

    #[test]
    fn signed_serials_round_trip() {
        let mut values: Vec<i64> = (-600..=600).collect();
        for shift in 0..63 {
            for delta in [-1i64, 0, 1] {
                values.push((1i64 << shift) + delta);
                values.push(-(1i64 << shift) + delta);
            }
        }
        values.extend([i64::MIN + 1, i64::MAX, -0x4316693ed]);
        for value in values {
            let stored = hex::encode(der_bytes(value));
            assert_eq!(signed_serial(&stored), signed_text(value), "{value}");
            assert_eq!(
                serial_from_text(&signed_text(value), "s").unwrap(),
                stored,
                "{value}"
            );
            assert_eq!(serial_from_text(&stored, "s").unwrap(), stored);
        }
    }

    #[test]
    fn serial_texts() {
        assert_eq!(signed_serial("fbce996c13"), "-0x4316693ed");
        assert_eq!(signed_serial("00"), "0x0");
        assert_eq!(signed_serial(""), "0x0");
        assert_eq!(signed_serial("00ff"), "0xff");
        assert_eq!(signed_serial("80"), "-0x80");
        assert_eq!(signed_serial("ff7f"), "-0x81");
        // Over-long serials (more than 20 bytes) and non-minimal bytes too.
        let long = "0102030405060708090a0b0c0d0e0f101112131415";
        assert_eq!(
            signed_serial(long),
            "0x102030405060708090a0b0c0d0e0f101112131415"
        );
        assert_eq!(serial_from_text(&signed_serial(long), "s").unwrap(), long);
        assert_eq!(signed_serial("not hex"), "not hex");
        assert_eq!(
            serial_from_text("FB:CE:99:6C:13", "s").unwrap(),
            "fbce996c13"
        );
        assert_eq!(serial_from_text(" -4316693ed ", "s").unwrap(), "fbce996c13");
        assert_eq!(serial_from_text("-0x0", "s").unwrap(), "00");
        assert_eq!(serial_from_text("0x000080", "s").unwrap(), "0080");
        for bad in [
            "",
            "-",
            "0x",
            "abc",
            "g0",
            "-0x1g",
            "0x-1",
            &"a".repeat(130),
        ] {
            let err = serial_from_text(bad, "serial_number").unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{bad}");
        }
    }
}
