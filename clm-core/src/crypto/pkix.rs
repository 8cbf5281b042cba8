//! Shared ASN.1/PKIX plumbing for the crypto module: object identifiers, the
//! lenient parsing profile, signed-structure splitting, signature
//! verification, SubjectPublicKeyInfo inspection and time conversion.

use chrono::{DateTime, TimeZone, Utc};
use der::asn1::{Any, AnyRef, BitString, BitStringRef, GeneralizedTime, ObjectIdentifier, UtcTime};
use der::{Decode, Encode, Sequence};
use spki::{
    AlgorithmIdentifierOwned, AlgorithmIdentifierRef, SubjectPublicKeyInfoOwned,
    SubjectPublicKeyInfoRef,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::{Error, Result};

/// Object identifiers used across the module, by short name. Each comes from
/// `const_oid::db` (the RFC modules that define it); the three the database
/// lacks are written out with their source.
pub(crate) mod oid {
    use const_oid::ObjectIdentifier as Oid;
    use const_oid::db::{rfc2985, rfc4519, rfc5280, rfc5912, rfc6962, rfc8410};

    pub const RSA_ENCRYPTION: Oid = rfc5912::RSA_ENCRYPTION;
    pub const SHA1_WITH_RSA: Oid = rfc5912::SHA_1_WITH_RSA_ENCRYPTION;
    pub const MD5_WITH_RSA: Oid = rfc5912::MD_5_WITH_RSA_ENCRYPTION;
    pub const RSASSA_PSS: Oid = rfc5912::ID_RSASSA_PSS;
    pub const SHA256_WITH_RSA: Oid = rfc5912::SHA_256_WITH_RSA_ENCRYPTION;
    pub const SHA384_WITH_RSA: Oid = rfc5912::SHA_384_WITH_RSA_ENCRYPTION;
    pub const SHA512_WITH_RSA: Oid = rfc5912::SHA_512_WITH_RSA_ENCRYPTION;
    pub const EC_PUBLIC_KEY: Oid = rfc5912::ID_EC_PUBLIC_KEY;
    /// RFC 3279 §2.2.3 (ecdsa-with-SHA1); not in `const_oid::db`.
    pub const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
    pub const ECDSA_WITH_SHA256: Oid = rfc5912::ECDSA_WITH_SHA_256;
    pub const ECDSA_WITH_SHA384: Oid = rfc5912::ECDSA_WITH_SHA_384;
    pub const ECDSA_WITH_SHA512: Oid = rfc5912::ECDSA_WITH_SHA_512;
    pub const SECP256R1: Oid = rfc5912::SECP_256_R_1;
    pub const SECP384R1: Oid = rfc5912::SECP_384_R_1;
    pub const SECP521R1: Oid = rfc5912::SECP_521_R_1;
    /// SEC 2 §A.2.1 (secp256k1); not in `const_oid::db`.
    pub const SECP256K1: Oid = Oid::new_unwrap("1.3.132.0.10");
    pub const ED25519: Oid = rfc8410::ID_ED_25519;
    pub const ED448: Oid = rfc8410::ID_ED_448;

    // Name attributes.
    pub const CN: Oid = rfc4519::CN;
    pub const SURNAME: Oid = rfc4519::SURNAME;
    pub const SERIAL_NUMBER: Oid = rfc4519::SERIAL_NUMBER;
    pub const C: Oid = rfc4519::C;
    pub const L: Oid = rfc4519::L;
    pub const ST: Oid = rfc4519::ST;
    pub const STREET: Oid = rfc4519::STREET;
    pub const O: Oid = rfc4519::O;
    pub const OU: Oid = rfc4519::OU;
    pub const TITLE: Oid = rfc4519::TITLE;
    pub const POSTAL_CODE: Oid = rfc4519::POSTAL_CODE;
    pub const GIVEN_NAME: Oid = rfc4519::GIVEN_NAME;
    /// X.520 organizationIdentifier (ETSI EN 319 412-1); not in `const_oid::db`.
    pub const ORGANIZATION_IDENTIFIER: Oid = Oid::new_unwrap("2.5.4.97");
    pub const DC: Oid = rfc4519::DC;
    pub const UID: Oid = rfc4519::UID;
    pub const EMAIL_ADDRESS: Oid = rfc2985::PKCS_9_AT_EMAIL_ADDRESS;

    // Certificate extensions.
    pub const SUBJECT_DIRECTORY_ATTRIBUTES: Oid = rfc5280::ID_CE_SUBJECT_DIRECTORY_ATTRIBUTES;
    pub const SUBJECT_KEY_ID: Oid = rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER;
    pub const KEY_USAGE: Oid = rfc5280::ID_CE_KEY_USAGE;
    pub const SUBJECT_ALT_NAME: Oid = rfc5280::ID_CE_SUBJECT_ALT_NAME;
    pub const ISSUER_ALT_NAME: Oid = rfc5280::ID_CE_ISSUER_ALT_NAME;
    pub const BASIC_CONSTRAINTS: Oid = rfc5280::ID_CE_BASIC_CONSTRAINTS;
    pub const CRL_NUMBER: Oid = rfc5280::ID_CE_CRL_NUMBER;
    pub const NAME_CONSTRAINTS: Oid = rfc5280::ID_CE_NAME_CONSTRAINTS;
    pub const CRL_DISTRIBUTION_POINTS: Oid = rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS;
    pub const CERTIFICATE_POLICIES: Oid = rfc5280::ID_CE_CERTIFICATE_POLICIES;
    pub const POLICY_MAPPINGS: Oid = rfc5280::ID_CE_POLICY_MAPPINGS;
    pub const AUTHORITY_KEY_ID: Oid = rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER;
    pub const POLICY_CONSTRAINTS: Oid = rfc5280::ID_CE_POLICY_CONSTRAINTS;
    pub const EXT_KEY_USAGE: Oid = rfc5280::ID_CE_EXT_KEY_USAGE;
    pub const FRESHEST_CRL: Oid = rfc5280::ID_CE_FRESHEST_CRL;
    pub const INHIBIT_ANY_POLICY: Oid = rfc5280::ID_CE_INHIBIT_ANY_POLICY;
    pub const AUTHORITY_INFO_ACCESS: Oid = rfc5280::ID_PE_AUTHORITY_INFO_ACCESS;
    pub const SUBJECT_INFO_ACCESS: Oid = rfc5280::ID_PE_SUBJECT_INFO_ACCESS;
    pub const CT_PRECERT_SCTS: Oid = rfc6962::CT_PRECERT_SCTS;

    // Extended key usages and access methods.
    pub const KP_SERVER_AUTH: Oid = rfc5280::ID_KP_SERVER_AUTH;
    pub const KP_CLIENT_AUTH: Oid = rfc5280::ID_KP_CLIENT_AUTH;
    pub const KP_CODE_SIGNING: Oid = rfc5280::ID_KP_CODE_SIGNING;
    pub const KP_EMAIL_PROTECTION: Oid = rfc5280::ID_KP_EMAIL_PROTECTION;
    pub const KP_TIME_STAMPING: Oid = rfc5280::ID_KP_TIME_STAMPING;
    pub const KP_OCSP_SIGNING: Oid = rfc5280::ID_KP_OCSP_SIGNING;
    pub const KP_ANY: Oid = rfc5280::ANY_EXTENDED_KEY_USAGE;
    pub const AD_OCSP: Oid = rfc5280::ID_AD_OCSP;
    pub const AD_CA_ISSUERS: Oid = rfc5280::ID_AD_CA_ISSUERS;

    // PKCS#9 attribute carrying requested extensions in a CSR.
    pub const EXTENSION_REQUEST: Oid = rfc2985::PKCS_9_AT_EXTENSION_REQUEST;

    #[cfg(test)]
    mod tests {
        use super::*;

        /// The names point at the numbers the module documented before they
        /// came from the database; a wrong pick of database constant fails here.
        #[test]
        fn short_names_keep_their_numbers() {
            for (oid, dotted) in [
                (RSA_ENCRYPTION, "1.2.840.113549.1.1.1"),
                (SHA1_WITH_RSA, "1.2.840.113549.1.1.5"),
                (MD5_WITH_RSA, "1.2.840.113549.1.1.4"),
                (RSASSA_PSS, "1.2.840.113549.1.1.10"),
                (SHA256_WITH_RSA, "1.2.840.113549.1.1.11"),
                (SHA384_WITH_RSA, "1.2.840.113549.1.1.12"),
                (SHA512_WITH_RSA, "1.2.840.113549.1.1.13"),
                (EC_PUBLIC_KEY, "1.2.840.10045.2.1"),
                (ECDSA_WITH_SHA256, "1.2.840.10045.4.3.2"),
                (ECDSA_WITH_SHA384, "1.2.840.10045.4.3.3"),
                (ECDSA_WITH_SHA512, "1.2.840.10045.4.3.4"),
                (SECP256R1, "1.2.840.10045.3.1.7"),
                (SECP384R1, "1.3.132.0.34"),
                (SECP521R1, "1.3.132.0.35"),
                (ED25519, "1.3.101.112"),
                (ED448, "1.3.101.113"),
                (CN, "2.5.4.3"),
                (SURNAME, "2.5.4.4"),
                (SERIAL_NUMBER, "2.5.4.5"),
                (C, "2.5.4.6"),
                (L, "2.5.4.7"),
                (ST, "2.5.4.8"),
                (STREET, "2.5.4.9"),
                (O, "2.5.4.10"),
                (OU, "2.5.4.11"),
                (TITLE, "2.5.4.12"),
                (POSTAL_CODE, "2.5.4.17"),
                (GIVEN_NAME, "2.5.4.42"),
                (DC, "0.9.2342.19200300.100.1.25"),
                (UID, "0.9.2342.19200300.100.1.1"),
                (EMAIL_ADDRESS, "1.2.840.113549.1.9.1"),
                (SUBJECT_DIRECTORY_ATTRIBUTES, "2.5.29.9"),
                (SUBJECT_KEY_ID, "2.5.29.14"),
                (KEY_USAGE, "2.5.29.15"),
                (SUBJECT_ALT_NAME, "2.5.29.17"),
                (ISSUER_ALT_NAME, "2.5.29.18"),
                (BASIC_CONSTRAINTS, "2.5.29.19"),
                (CRL_NUMBER, "2.5.29.20"),
                (NAME_CONSTRAINTS, "2.5.29.30"),
                (CRL_DISTRIBUTION_POINTS, "2.5.29.31"),
                (CERTIFICATE_POLICIES, "2.5.29.32"),
                (POLICY_MAPPINGS, "2.5.29.33"),
                (AUTHORITY_KEY_ID, "2.5.29.35"),
                (POLICY_CONSTRAINTS, "2.5.29.36"),
                (EXT_KEY_USAGE, "2.5.29.37"),
                (FRESHEST_CRL, "2.5.29.46"),
                (INHIBIT_ANY_POLICY, "2.5.29.54"),
                (AUTHORITY_INFO_ACCESS, "1.3.6.1.5.5.7.1.1"),
                (SUBJECT_INFO_ACCESS, "1.3.6.1.5.5.7.1.11"),
                (CT_PRECERT_SCTS, "1.3.6.1.4.1.11129.2.4.2"),
                (KP_SERVER_AUTH, "1.3.6.1.5.5.7.3.1"),
                (KP_CLIENT_AUTH, "1.3.6.1.5.5.7.3.2"),
                (KP_CODE_SIGNING, "1.3.6.1.5.5.7.3.3"),
                (KP_EMAIL_PROTECTION, "1.3.6.1.5.5.7.3.4"),
                (KP_TIME_STAMPING, "1.3.6.1.5.5.7.3.8"),
                (KP_OCSP_SIGNING, "1.3.6.1.5.5.7.3.9"),
                (KP_ANY, "2.5.29.37.0"),
                (AD_OCSP, "1.3.6.1.5.5.7.48.1"),
                (AD_CA_ISSUERS, "1.3.6.1.5.5.7.48.2"),
                (EXTENSION_REQUEST, "1.2.840.113549.1.9.14"),
            ] {
                assert_eq!(oid.to_string(), dotted);
            }
        }
    }
}

/// Parsing profile that accepts what RFC 5280 tells certificate *users* to
/// tolerate: serials that are negative, zero or longer than 20 bytes. The
/// import path reports those as flags instead of refusing the certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Lenient;

impl x509_cert::certificate::Profile for Lenient {
    fn check_serial_number(
        _serial: &x509_cert::serial_number::SerialNumber<Self>,
    ) -> der::Result<()> {
        Ok(())
    }
}

pub(crate) type LenientCertificate = x509_cert::certificate::CertificateInner<Lenient>;

/// A certificate as an import reads it: [`LenientCertificate`]'s fields but
/// with the validity left as raw time values. x509-cert's `Time` (the der
/// crate's `UtcTime` and `GeneralizedTime`) stops at 1970, while RFC 5280's
/// UTCTime covers 1950-2049 and real certificates carry earlier
/// GeneralizedTimes too; [`read_time`] reads them all.
#[derive(Sequence)]
pub(crate) struct ImportedCertificate {
    pub tbs_certificate: ImportedTbsCertificate,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: BitString,
}

/// RFC 5280 §4.1 TBSCertificate, read as x509-cert reads it apart from the
/// validity (see [`ImportedCertificate`]).
#[derive(Sequence)]
pub(crate) struct ImportedTbsCertificate {
    /// The version INTEGER as written (2 is v3); openssl reads others too.
    #[asn1(context_specific = "0", default = "Default::default")]
    pub version: u32,
    pub serial_number: SerialNumber<Lenient>,
    pub signature: AlgorithmIdentifierOwned,
    pub issuer: Name,
    pub validity: RawValidity,
    pub subject: Name,
    pub subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub issuer_unique_id: Option<BitString>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    pub subject_unique_id: Option<BitString>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub extensions: Option<Vec<Extension>>,
}

/// Validity with each time as the TLV it was read as (checked by [`read_time`]).
#[derive(Sequence)]
pub(crate) struct RawValidity {
    pub not_before: Any,
    pub not_after: Any,
}

/// A certificate time as read by [`read_time`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadTime {
    pub at: DateTime<Utc>,
    /// False when RFC 5280 §4.1.2.5 would have encoded it otherwise: not in
    /// DER's `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ` form, or a GeneralizedTime
    /// for a date before 2050.
    pub as_rfc5280: bool,
}

/// Reads a UTCTime (RFC 5280: YY >= 50 is 19YY) or GeneralizedTime. Besides
/// DER's forms it takes what OpenSSL takes: seconds left out, fractional
/// seconds (GeneralizedTime) and a `+hhmm`/`-hhmm` offset instead of `Z`.
/// Anything else, or an impossible date, is an error on `field`.
pub(crate) fn read_time(value: &Any, field: &str) -> Result<ReadTime> {
    let bad = |why: &str| Error::invalid(field, why.to_string());
    let text = std::str::from_utf8(value.value())
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| bad("time is not ASCII"))?;
    let (year, rest, generalized) = match der::Tagged::tag(value) {
        der::Tag::UtcTime => {
            let yy = two_digits(text, 0).ok_or_else(|| bad("UTCTime has no year"))?;
            let year = if yy >= 50 { 1900 + yy } else { 2000 + yy };
            (year, &text[2..], false)
        }
        der::Tag::GeneralizedTime => {
            let high = two_digits(text, 0).ok_or_else(|| bad("GeneralizedTime has no year"))?;
            let low = two_digits(text, 2).ok_or_else(|| bad("GeneralizedTime has no year"))?;
            (high * 100 + low, &text[4..], true)
        }
        other => {
            return Err(bad(&format!(
                "is a {other}, not a UTCTime or GeneralizedTime"
            )));
        }
    };
    let digits = |at: usize| two_digits(rest, at);
    let (month, day, hour, minute) = match (digits(0), digits(2), digits(4), digits(6)) {
        (Some(mo), Some(d), Some(h), Some(mi)) => (mo, d, h, mi),
        _ => return Err(bad("time is shorter than YYMMDDHHMM")),
    };
    let mut at = 8;
    let second = match digits(at) {
        Some(s) => {
            at += 2;
            Some(s)
        }
        None => None,
    };
    let mut nanos: u32 = 0;
    let mut fraction = false;
    if generalized && second.is_some() && rest[at..].starts_with(['.', ',']) {
        let end = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(rest.len(), |n| at + 1 + n);
        let decimals = &rest[at + 1..end];
        if decimals.is_empty() {
            return Err(bad("time has a decimal point without digits"));
        }
        let padded: String = decimals
            .chars()
            .chain(std::iter::repeat('0'))
            .take(9)
            .collect();
        nanos = padded
            .parse()
            .map_err(|_| bad("time has bad fractional seconds"))?;
        fraction = true;
        at = end;
    }
    let offset_minutes: i64 = match &rest[at..] {
        "Z" => 0,
        zone if zone.len() == 5 && zone.starts_with(['+', '-']) => {
            let (Some(h), Some(m)) = (two_digits(zone, 1), two_digits(zone, 3)) else {
                return Err(bad("time has a malformed UTC offset"));
            };
            if h > 23 || m > 59 {
                return Err(bad("time has a malformed UTC offset"));
            }
            let minutes = i64::from(h * 60 + m);
            if zone.starts_with('-') {
                -minutes
            } else {
                minutes
            }
        }
        _ => return Err(bad("time does not end in Z or a +hhmm/-hhmm offset")),
    };
    let local = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(year).map_err(|_| bad("year is out of range"))?,
        month,
        day,
    )
    .and_then(|date| date.and_hms_nano_opt(hour, minute, second.unwrap_or(0), nanos))
    .filter(|_| second.is_none_or(|s| s < 60))
    .ok_or_else(|| bad("is not a valid date and time"))?;
    let at_utc = Utc
        .from_utc_datetime(&local)
        .checked_sub_signed(chrono::Duration::minutes(offset_minutes))
        .ok_or_else(|| bad("time is out of range"))?;
    let der_form = second.is_some() && !fraction && offset_minutes == 0 && rest[at..] == *"Z";
    Ok(ReadTime {
        at: at_utc,
        as_rfc5280: der_form && (!generalized || year >= 2050),
    })
}

/// The two decimal digits of `text` at `at`, when both are digits.
fn two_digits(text: &str, at: usize) -> Option<u32> {
    let pair = text.get(at..at.checked_add(2)?)?;
    if pair.bytes().all(|b| b.is_ascii_digit()) {
        pair.parse().ok()
    } else {
        None
    }
}

/// Any signed PKIX structure (certificate, CSR, CRL): the exact bytes that
/// were signed, the algorithm and the signature.
#[derive(Sequence)]
pub(crate) struct Signed<'a> {
    pub to_be_signed: AnyRef<'a>,
    pub algorithm: AlgorithmIdentifierRef<'a>,
    pub signature: BitStringRef<'a>,
}

impl<'a> Signed<'a> {
    /// Splits a DER signed structure; `what` names it in errors.
    pub fn parse(der: &'a [u8], what: &str) -> Result<Self> {
        Signed::from_der(der).map_err(|err| Error::invalid(what, format!("malformed DER: {err}")))
    }

    /// The to-be-signed bytes exactly as they appear in the input (DER
    /// decoding is strict, so re-encoding the header is byte-identical).
    pub fn message(&self) -> Result<Vec<u8>> {
        self.to_be_signed
            .to_der()
            .map_err(|err| Error::crypto(format!("cannot re-encode signed data: {err}")))
    }
}

/// Maps an encoding error while *building* a structure (our own bug or an
/// out-of-range input) to a crypto error naming what was being built.
pub(crate) fn encoding(what: &str) -> impl Fn(der::Error) -> Error + '_ {
    move |err| Error::crypto(format!("cannot encode {what}: {err}"))
}

/// Human name of a signature algorithm, as OpenSSL prints it.
pub(crate) fn signature_algorithm_name(algorithm: &ObjectIdentifier) -> String {
    let name = match *algorithm {
        oid::SHA256_WITH_RSA => "sha256WithRSAEncryption",
        oid::SHA384_WITH_RSA => "sha384WithRSAEncryption",
        oid::SHA512_WITH_RSA => "sha512WithRSAEncryption",
        oid::SHA1_WITH_RSA => "sha1WithRSAEncryption",
        oid::MD5_WITH_RSA => "md5WithRSAEncryption",
        oid::RSASSA_PSS => "rsassaPss",
        oid::ECDSA_WITH_SHA1 => "ecdsa-with-SHA1",
        oid::ECDSA_WITH_SHA256 => "ecdsa-with-SHA256",
        oid::ECDSA_WITH_SHA384 => "ecdsa-with-SHA384",
        oid::ECDSA_WITH_SHA512 => "ecdsa-with-SHA512",
        oid::ED25519 => "Ed25519",
        oid::ED448 => "Ed448",
        _ => return algorithm.to_string(),
    };
    name.to_string()
}

/// What a SubjectPublicKeyInfo holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublicKeyInfo {
    /// "RSA", "ECDSA", "Ed25519", "Ed448" or the algorithm OID.
    pub family: String,
    /// RSA modulus bits, curve size, or 0 when unknown.
    pub bits: u32,
    /// Named curve of an EC key.
    pub curve: Option<ObjectIdentifier>,
}

pub(crate) fn public_key_info(spki: &SubjectPublicKeyInfoRef<'_>) -> PublicKeyInfo {
    let algorithm = spki.algorithm.oid;
    match algorithm {
        oid::RSA_ENCRYPTION => {
            let bits = spki
                .subject_public_key
                .as_bytes()
                .and_then(|key| pkcs1::RsaPublicKeyRef::from_der(key).ok())
                .map(|key| unsigned_bit_length(key.modulus.as_bytes()))
                .unwrap_or(0);
            PublicKeyInfo {
                family: "RSA".into(),
                bits,
                curve: None,
            }
        }
        oid::EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .and_then(|parameters| parameters.decode_as::<ObjectIdentifier>().ok());
            let bits = match curve {
                Some(oid::SECP256R1) | Some(oid::SECP256K1) => 256,
                Some(oid::SECP384R1) => 384,
                Some(oid::SECP521R1) => 521,
                _ => 0,
            };
            PublicKeyInfo {
                family: "ECDSA".into(),
                bits,
                curve,
            }
        }
        oid::ED25519 => PublicKeyInfo {
            family: "Ed25519".into(),
            bits: 256,
            curve: None,
        },
        oid::ED448 => PublicKeyInfo {
            family: "Ed448".into(),
            bits: 448,
            curve: None,
        },
        other => PublicKeyInfo {
            family: other.to_string(),
            bits: 0,
            curve: None,
        },
    }
}

/// Lowercase hex SHA-256 of a SubjectPublicKeyInfo in one canonical DER
/// form (RSA with NULL parameters, EC with its curve, others without), so
/// re-encoding the parameters cannot change a key's hash. Compromised keys
/// are blocklisted by it.
pub fn spki_sha256(spki_der: &[u8]) -> Result<String> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|err| {
        Error::invalid(
            "public_key",
            format!("malformed SubjectPublicKeyInfo: {err}"),
        )
    })?;
    let parameters = match spki.algorithm.oid {
        oid::RSA_ENCRYPTION => Some(AnyRef::NULL),
        oid::EC_PUBLIC_KEY => spki.algorithm.parameters,
        _ => None,
    };
    let canonical = SubjectPublicKeyInfoRef {
        algorithm: AlgorithmIdentifierRef {
            oid: spki.algorithm.oid,
            parameters,
        },
        subject_public_key: spki.subject_public_key,
    };
    let der = canonical
        .to_der()
        .map_err(|err| Error::crypto(format!("cannot encode a public key: {err}")))?;
    Ok(crate::crypto::token::sha256_hex(&der))
}

/// Bit length of a big-endian unsigned integer.
pub(crate) fn unsigned_bit_length(bytes: &[u8]) -> u32 {
    let significant: &[u8] = match bytes.iter().position(|&b| b != 0) {
        Some(start) => &bytes[start..],
        None => return 0,
    };
    let leading = significant.first().map_or(0, |b| b.leading_zeros());
    (significant.len() as u32) * 8 - leading
}

/// Verifies `signature` over `message` with the key in `spki_der`, for the
/// algorithm named by `algorithm`. SHA-1 and MD5 signatures are refused.
pub(crate) fn verify_signature(
    spki_der: &[u8],
    algorithm: &AlgorithmIdentifierRef<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    use ring::signature as rs;

    let spki = SubjectPublicKeyInfoRef::from_der(spki_der).map_err(|err| {
        Error::invalid(
            "public_key",
            format!("malformed SubjectPublicKeyInfo: {err}"),
        )
    })?;
    let key_bytes = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| Error::invalid("public_key", "public key BIT STRING has unused bits"))?;
    let info = public_key_info(&spki);
    let name = signature_algorithm_name(&algorithm.oid);
    if info.family == "RSA" && info.bits < 2048 {
        return Err(Error::crypto(format!(
            "RSA keys under 2048 bits are not accepted (this one has {} bits)",
            info.bits
        )));
    }

    let verifier: &dyn rs::VerificationAlgorithm = match (algorithm.oid, spki.algorithm.oid) {
        (oid::SHA256_WITH_RSA, oid::RSA_ENCRYPTION) => &rs::RSA_PKCS1_2048_8192_SHA256,
        (oid::SHA384_WITH_RSA, oid::RSA_ENCRYPTION) => &rs::RSA_PKCS1_2048_8192_SHA384,
        (oid::SHA512_WITH_RSA, oid::RSA_ENCRYPTION) => &rs::RSA_PKCS1_2048_8192_SHA512,
        (oid::ECDSA_WITH_SHA256, oid::EC_PUBLIC_KEY) => match info.curve {
            Some(oid::SECP256R1) => &rs::ECDSA_P256_SHA256_ASN1,
            Some(oid::SECP384R1) => &rs::ECDSA_P384_SHA256_ASN1,
            _ => return Err(unsupported_curve(&info)),
        },
        (oid::ECDSA_WITH_SHA384, oid::EC_PUBLIC_KEY) => match info.curve {
            Some(oid::SECP256R1) => &rs::ECDSA_P256_SHA384_ASN1,
            Some(oid::SECP384R1) => &rs::ECDSA_P384_SHA384_ASN1,
            _ => return Err(unsupported_curve(&info)),
        },
        (oid::ED25519, oid::ED25519) => &rs::ED25519,
        (oid::SHA1_WITH_RSA | oid::MD5_WITH_RSA | oid::ECDSA_WITH_SHA1, _) => {
            return Err(Error::crypto(format!(
                "signature algorithm {name} is not accepted: its hash is broken"
            )));
        }
        (
            oid::SHA256_WITH_RSA
            | oid::SHA384_WITH_RSA
            | oid::SHA512_WITH_RSA
            | oid::ECDSA_WITH_SHA256
            | oid::ECDSA_WITH_SHA384
            | oid::ED25519,
            _,
        ) => {
            return Err(Error::crypto(format!(
                "signature algorithm {name} does not match the {} public key",
                info.family
            )));
        }
        _ => {
            return Err(Error::crypto(format!(
                "unsupported signature algorithm {name}"
            )));
        }
    };
    rs::UnparsedPublicKey::new(verifier, key_bytes)
        .verify(message, signature)
        .map_err(|_| Error::crypto(format!("{name} signature does not verify")))
}

fn unsupported_curve(info: &PublicKeyInfo) -> Error {
    let curve = info
        .curve
        .map_or_else(|| "an unnamed curve".to_string(), |c| c.to_string());
    Error::crypto(format!(
        "unsupported elliptic curve {curve} (supported: P-256, P-384)"
    ))
}

/// RFC 5280 time: UTCTime through 2049, GeneralizedTime from 2050, whole
/// seconds (sub-second precision is dropped, never rounded up).
pub(crate) fn to_time(value: DateTime<Utc>, field: &str) -> Result<Time> {
    let seconds = u64::try_from(value.timestamp())
        .map_err(|_| Error::invalid(field, "must not be before 1970-01-01"))?;
    let duration = std::time::Duration::from_secs(seconds);
    let date = der::DateTime::from_unix_duration(duration)
        .map_err(|err| Error::invalid(field, format!("cannot be encoded: {err}")))?;
    if date.year() <= 2049 {
        UtcTime::from_date_time(date)
            .map(Time::UtcTime)
            .map_err(|err| Error::invalid(field, format!("cannot be encoded: {err}")))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(date)))
    }
}

/// Lowercase hex.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(unsigned_bit_length(&[]), 0);
        assert_eq!(unsigned_bit_length(&[0, 0]), 0);
        assert_eq!(unsigned_bit_length(&[1]), 1);
        assert_eq!(unsigned_bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(unsigned_bit_length(&[0x7f, 0xff]), 15);
    }

    #[test]
    fn times_pick_the_rfc5280_encoding() {
        let early = Utc
            .with_ymd_and_hms(2049, 12, 31, 23, 59, 59)
            .single()
            .unwrap();
        let late = Utc.with_ymd_and_hms(2050, 1, 1, 0, 0, 0).single().unwrap();
        assert!(matches!(to_time(early, "t").unwrap(), Time::UtcTime(_)));
        assert!(matches!(to_time(late, "t").unwrap(), Time::GeneralTime(_)));
        for at in [early, late] {
            let der = to_time(at, "t").unwrap().to_der().unwrap();
            let read = read_time(&Any::from_der(&der).unwrap(), "t").unwrap();
            assert_eq!(
                read,
                ReadTime {
                    at,
                    as_rfc5280: true
                }
            );
        }
        let before_epoch = Utc.with_ymd_and_hms(1960, 1, 1, 0, 0, 0).single().unwrap();
        assert!(to_time(before_epoch, "not_before").is_err());
    }

    fn time(tag: der::Tag, text: &str) -> Result<ReadTime> {
        read_time(&Any::new(tag, text.as_bytes()).unwrap(), "t")
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
    }

    /// RFC 5280 §4.1.2.5: UTCTime covers 1950-2049; the der crate's types
    /// stop at 1970, which refused real certificates.
    #[test]
    fn times_of_the_whole_rfc5280_range_are_read() {
        use der::Tag::{GeneralizedTime as G, UtcTime as U};
        let exact = |tag, text, at| {
            assert_eq!(
                time(tag, text).unwrap(),
                ReadTime {
                    at,
                    as_rfc5280: true
                },
                "{text}"
            );
        };
        exact(U, "500101000000Z", utc(1950, 1, 1, 0, 0, 0));
        exact(U, "691231235959Z", utc(1969, 12, 31, 23, 59, 59));
        exact(U, "700101000000Z", utc(1970, 1, 1, 0, 0, 0));
        exact(U, "491231235959Z", utc(2049, 12, 31, 23, 59, 59));
        exact(G, "20500101000000Z", utc(2050, 1, 1, 0, 0, 0));
        exact(G, "99991231235959Z", utc(9999, 12, 31, 23, 59, 59));
        // Read, but not as RFC 5280 encodes them.
        let odd = |tag, text, at| {
            assert_eq!(
                time(tag, text).unwrap(),
                ReadTime {
                    at,
                    as_rfc5280: false
                },
                "{text}"
            );
        };
        odd(G, "19500101000000Z", utc(1950, 1, 1, 0, 0, 0));
        odd(G, "18991231235959Z", utc(1899, 12, 31, 23, 59, 59));
        odd(U, "2501010000Z", utc(2025, 1, 1, 0, 0, 0));
        odd(U, "250101000000+0130", utc(2024, 12, 31, 22, 30, 0));
        odd(U, "250101000000-0100", utc(2025, 1, 1, 1, 0, 0));
        let fraction = time(G, "20500101000000.25Z").unwrap();
        assert_eq!(fraction.at.timestamp_subsec_millis(), 250);
        assert!(!fraction.as_rfc5280);
        for (tag, bad) in [
            (U, ""),
            (U, "25010100Z"),
            (U, "250230000000Z"),
            (U, "251301000000Z"),
            (U, "250101240000Z"),
            (U, "250101000060Z"),
            (U, "250101000000"),
            (U, "250101000000z"),
            (U, "250101000000+2400"),
            (U, "250101000000.5Z"),
            (U, "2501010000001Z"),
            (G, "20500101000000.Z"),
            (G, "2050010100000Z"),
            (G, "205001010000\u{e9}Z"),
            (der::Tag::Utf8String, "250101000000Z"),
        ] {
            assert!(time(tag, bad).is_err(), "{bad:?}");
        }
    }
}
