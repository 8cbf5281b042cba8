//! OCSP (RFC 6960) messages and the nonce of RFC 8954: reading requests,
//! signing basic responses, and the delegated responder certificate.
//!
//! The ASN.1 is written here with `der`'s derives: RustCrypto's `x509-ocsp`
//! (0.2) is built on der 0.7 / x509-cert 0.2 and no release matches the
//! der 0.8 / x509-cert 0.3 this workspace uses.

use chrono::{DateTime, Utc};
use der::asn1::{Any, BitString, GeneralizedTime, Int, Null, ObjectIdentifier, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence, Tagged};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use super::certificate::{ParsedCertificate, random_serial};
use super::keys::{KeyPair, RawSignature};
use super::name::DistinguishedName;
use super::pkix::{LenientCertificate, encoding, oid, to_time};
use crate::model::RevocationReason;
use crate::{Error, Result};

/// id-pkix-ocsp-basic (RFC 6960 §4.2.1).
const OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1, RFC 8954).
const OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
const OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// id-sha1 (RFC 3279).
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-sha256 (RFC 5754).
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// Largest request read: real ones are well under 1 KB; this bounds work on
/// hostile input.
pub const MAX_OCSP_REQUEST_LEN: usize = 64 * 1024;
/// Most certificates asked about in one request.
pub const MAX_OCSP_REQUEST_CERTS: usize = 64;
/// Longest nonce accepted (RFC 8954 §2.1); a longer one is a malformed request.
pub const MAX_OCSP_NONCE_LEN: usize = 32;
/// Longest serial answered (what a CRL entry accepts); a longer one is a
/// malformed request.
pub const MAX_SERIAL_LEN: usize = 64;

/// OCSPResponseStatus (RFC 6960 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enumerated)]
#[repr(u32)]
pub enum OcspResponseStatus {
    /// Response has valid confirmations.
    Successful = 0,
    /// Illegal confirmation request.
    MalformedRequest = 1,
    /// Internal error in issuer.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// Must sign the request.
    SigRequired = 5,
    /// Request unauthorized (here: an issuer clm does not answer for).
    Unauthorized = 6,
}

impl OcspResponseStatus {
    /// The RFC's name (`malformedRequest`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OcspResponseStatus::Successful => "successful",
            OcspResponseStatus::MalformedRequest => "malformedRequest",
            OcspResponseStatus::InternalError => "internalError",
            OcspResponseStatus::TryLater => "tryLater",
            OcspResponseStatus::SigRequired => "sigRequired",
            OcspResponseStatus::Unauthorized => "unauthorized",
        }
    }
}

/// CertID (RFC 6960 §4.1.1).
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct CertIdAsn1 {
    hash_algorithm: AlgorithmIdentifierOwned,
    issuer_name_hash: OctetString,
    issuer_key_hash: OctetString,
    serial_number: Int,
}

#[derive(Sequence)]
struct RequestAsn1 {
    req_cert: CertIdAsn1,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    single_request_extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct TbsRequestAsn1 {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    version: Option<u8>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    requestor_name: Option<Any>,
    request_list: Vec<RequestAsn1>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    request_extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct OcspRequestAsn1 {
    tbs_request: TbsRequestAsn1,
    /// A signed request is read like an unsigned one: the responder answers
    /// anyone, so the requestor's signature decides nothing.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    optional_signature: Option<Any>,
}

#[derive(Sequence)]
struct RevokedInfoAsn1 {
    revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    revocation_reason: Option<CrlReason>,
}

#[derive(Choice)]
enum CertStatusAsn1 {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfoAsn1),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

#[derive(Sequence)]
struct SingleResponseAsn1 {
    cert_id: CertIdAsn1,
    cert_status: CertStatusAsn1,
    this_update: GeneralizedTime,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    next_update: Option<GeneralizedTime>,
}

/// ResponseData with version v1 (DEFAULT, so absent) and the responder
/// named by key hash (`byKey [2] EXPLICIT`).
#[derive(Sequence)]
struct ResponseDataAsn1 {
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    responder_key_hash: OctetString,
    produced_at: GeneralizedTime,
    responses: Vec<SingleResponseAsn1>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    response_extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct BasicOcspResponseAsn1 {
    tbs_response_data: ResponseDataAsn1,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    certs: Option<Vec<Any>>,
}

#[derive(Sequence)]
struct ResponseBytesAsn1 {
    response_type: ObjectIdentifier,
    response: OctetString,
}

#[derive(Sequence)]
struct OcspResponseAsn1 {
    response_status: OcspResponseStatus,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    response_bytes: Option<ResponseBytesAsn1>,
}

/// The hash a CertID names its issuer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OcspHash {
    /// SHA-1 (what RFC 5019 clients and OpenSSL send by default).
    Sha1,
    /// SHA-256.
    Sha256,
}

impl OcspHash {
    fn oid(self) -> ObjectIdentifier {
        match self {
            OcspHash::Sha1 => SHA1,
            OcspHash::Sha256 => SHA256,
        }
    }
}

/// One certificate asked about: which issuer (by hashes of its name and
/// key) and which serial. Kept with its exact encoding, which the response
/// repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspCertId {
    /// The hash of the issuer fields; None for an algorithm clm does not
    /// answer for (such a certificate gets `unknown`).
    pub hash: Option<OcspHash>,
    /// Hash of the issuer's subject name (DER).
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey bits.
    pub issuer_key_hash: Vec<u8>,
    /// The serial's DER content bytes (what `certificates.serial_number`
    /// holds as hex).
    pub serial: Vec<u8>,
    raw: CertIdAsn1,
}

impl OcspCertId {
    /// The CertID of `serial` (DER content bytes) under `issuer`, as a
    /// client builds it.
    pub fn new(issuer: &ParsedCertificate, serial: &[u8], hash: OcspHash) -> Result<Self> {
        Self::with_hashes(&IssuerHashes::of(issuer)?, serial, hash)
    }

    /// [`OcspCertId::new`] from hashes computed before: the encoding clm
    /// writes (hash parameters NULL, as OpenSSL writes them).
    pub fn with_hashes(hashes: &IssuerHashes, serial: &[u8], hash: OcspHash) -> Result<Self> {
        let (name, key) = hashes.get(hash);
        let raw = CertIdAsn1 {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: hash.oid(),
                parameters: Some(Any::from(Null)),
            },
            issuer_name_hash: OctetString::new(name.to_vec()).map_err(encoding("CertID"))?,
            issuer_key_hash: OctetString::new(key.to_vec()).map_err(encoding("CertID"))?,
            serial_number: Int::new(serial)
                .map_err(|_| Error::invalid("serial", "is not the content of a DER INTEGER"))?,
        };
        Ok(Self::from_raw(raw))
    }

    /// True when both encode to the same bytes (a response must repeat the
    /// CertID as asked).
    pub fn encodes_like(&self, other: &OcspCertId) -> bool {
        self.raw == other.raw
    }

    fn from_raw(raw: CertIdAsn1) -> Self {
        let hash = match raw.hash_algorithm.oid {
            SHA1 => Some(OcspHash::Sha1),
            SHA256 => Some(OcspHash::Sha256),
            _ => None,
        };
        // Parameters must be absent or NULL (RFC 5754 §2; both seen in the wild).
        let hash = hash.filter(|_| {
            raw.hash_algorithm
                .parameters
                .as_ref()
                .is_none_or(|p| p.tag() == der::Tag::Null && p.value().is_empty())
        });
        OcspCertId {
            hash,
            issuer_name_hash: raw.issuer_name_hash.as_bytes().to_vec(),
            issuer_key_hash: raw.issuer_key_hash.as_bytes().to_vec(),
            serial: raw.serial_number.as_bytes().to_vec(),
            raw,
        }
    }

    /// Lowercase hex of the serial, or None when it is longer than any
    /// serial clm stores (such a certificate is unknown).
    pub fn serial_hex(&self) -> Option<String> {
        (!self.serial.is_empty() && self.serial.len() <= MAX_SERIAL_LEN)
            .then(|| hex::encode(&self.serial))
    }
}

/// An issuer's name and key hashes under both algorithms: what a CertID is
/// matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerHashes {
    name_sha1: [u8; 20],
    key_sha1: [u8; 20],
    name_sha256: [u8; 32],
    key_sha256: [u8; 32],
}

impl IssuerHashes {
    /// The hashes of a CA certificate's subject name and public key.
    pub fn of(issuer: &ParsedCertificate) -> Result<Self> {
        let certificate = LenientCertificate::from_der(&issuer.der)
            .map_err(|err| Error::invalid("issuer", format!("malformed certificate: {err}")))?;
        let name = certificate
            .tbs_certificate()
            .subject()
            .to_der()
            .map_err(encoding("issuer name"))?;
        let spki = SubjectPublicKeyInfoRef::from_der(&issuer.public_key_der)
            .map_err(|err| Error::invalid("issuer", format!("malformed public key: {err}")))?;
        let key = spki.subject_public_key.raw_bytes();
        Ok(IssuerHashes {
            name_sha1: Sha1::digest(&name).into(),
            key_sha1: Sha1::digest(key).into(),
            name_sha256: Sha256::digest(&name).into(),
            key_sha256: Sha256::digest(key).into(),
        })
    }

    fn get(&self, hash: OcspHash) -> (&[u8], &[u8]) {
        match hash {
            OcspHash::Sha1 => (&self.name_sha1, &self.key_sha1),
            OcspHash::Sha256 => (&self.name_sha256, &self.key_sha256),
        }
    }

    /// True when `id` names this issuer (by name and key, in its hash).
    pub fn matches(&self, id: &OcspCertId) -> bool {
        id.hash.is_some_and(|hash| {
            let (name, key) = self.get(hash);
            // Public values: a plain comparison leaks nothing.
            id.issuer_name_hash == name && id.issuer_key_hash == key
        })
    }
}

/// A request as the responder reads it.
#[derive(Debug, Clone)]
pub struct OcspRequest {
    /// The certificates asked about, in request order.
    pub certificates: Vec<OcspCertId>,
    /// The nonce extension (RFC 8954), echoed unchanged in the response.
    nonce: Option<Extension>,
}

impl OcspRequest {
    /// The nonce's bytes, when the request carries one.
    pub fn nonce(&self) -> Option<Vec<u8>> {
        let extension = self.nonce.as_ref()?;
        OctetString::from_der(extension.extn_value.as_bytes())
            .ok()
            .map(|n| n.as_bytes().to_vec())
    }

    /// True when the request carries a nonce (its answer must be fresh).
    pub fn has_nonce(&self) -> bool {
        self.nonce.is_some()
    }
}

/// Why a request was refused as malformed; said in logs, never on the wire
/// (the response carries only `malformedRequest`).
fn malformed(reason: impl Into<String>) -> Error {
    Error::invalid("request", reason)
}

/// Reads a DER OCSPRequest. Anything wrong (not DER, trailing bytes, no
/// certificate, too many, a nonce of 0 or more than 32 bytes, a version
/// other than v1) is `InvalidInput` on `request`: answer `malformedRequest`.
pub fn parse_ocsp_request(der: &[u8]) -> Result<OcspRequest> {
    if der.is_empty() {
        return Err(malformed("is empty"));
    }
    if der.len() > MAX_OCSP_REQUEST_LEN {
        return Err(malformed(format!(
            "is {} bytes; at most {MAX_OCSP_REQUEST_LEN} are read",
            der.len()
        )));
    }
    let request = OcspRequestAsn1::from_der(der)
        .map_err(|err| malformed(format!("is not a DER OCSPRequest: {err}")))?;
    let tbs = request.tbs_request;
    if tbs.version.is_some_and(|v| v != 0) {
        return Err(malformed("only version v1 exists"));
    }
    if tbs.request_list.is_empty() {
        return Err(malformed("names no certificate"));
    }
    if tbs.request_list.len() > MAX_OCSP_REQUEST_CERTS {
        return Err(malformed(format!(
            "names {} certificates; at most {MAX_OCSP_REQUEST_CERTS} are answered at once",
            tbs.request_list.len()
        )));
    }
    let mut nonce = None;
    for extension in tbs.request_extensions.into_iter().flatten() {
        if extension.extn_id != OCSP_NONCE {
            // RFC 6960 §4.4: extensions the responder does not know are ignored.
            continue;
        }
        if nonce.is_some() {
            return Err(malformed("carries two nonces"));
        }
        let value = OctetString::from_der(extension.extn_value.as_bytes())
            .map_err(|_| malformed("nonce is not an OCTET STRING (RFC 8954)"))?;
        let length = value.as_bytes().len();
        if !(1..=MAX_OCSP_NONCE_LEN).contains(&length) {
            return Err(malformed(format!(
                "nonce is {length} bytes; RFC 8954 allows 1 to {MAX_OCSP_NONCE_LEN}"
            )));
        }
        nonce = Some(extension);
    }
    if let Some(request) = tbs
        .request_list
        .iter()
        .find(|r| r.req_cert.serial_number.as_bytes().len() > MAX_SERIAL_LEN)
    {
        // Bounds what a client chooses inside a signed response.
        return Err(malformed(format!(
            "a serial is {} bytes; at most {MAX_SERIAL_LEN} are answered",
            request.req_cert.serial_number.as_bytes().len()
        )));
    }
    Ok(OcspRequest {
        certificates: tbs
            .request_list
            .into_iter()
            .map(|r| OcspCertId::from_raw(r.req_cert))
            .collect(),
        nonce,
    })
}

/// Writes a DER OCSPRequest for `certificates`, with a nonce when given:
/// what a client sends (tests, benchmarks, hosts probing their responder).
pub fn build_ocsp_request(certificates: &[OcspCertId], nonce: Option<&[u8]>) -> Result<Vec<u8>> {
    let request_extensions = match nonce {
        None => None,
        Some(bytes) => {
            let value = OctetString::new(bytes.to_vec()).map_err(encoding("nonce"))?;
            Some(vec![Extension {
                extn_id: OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(value.to_der().map_err(encoding("nonce"))?)
                    .map_err(encoding("nonce"))?,
            }])
        }
    };
    let request = OcspRequestAsn1 {
        tbs_request: TbsRequestAsn1 {
            version: None,
            requestor_name: None,
            request_list: certificates
                .iter()
                .map(|id| RequestAsn1 {
                    req_cert: id.raw.clone(),
                    single_request_extensions: None,
                })
                .collect(),
            request_extensions,
        },
        optional_signature: None,
    };
    request.to_der().map_err(encoding("OCSP request"))
}

/// A certificate's status in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspCertStatus {
    /// Not revoked (RFC 6960: "good" says no more than that).
    Good,
    /// Revoked or on hold.
    Revoked {
        /// When it was revoked.
        at: DateTime<Utc>,
        /// Why; written as revocationReason unless `unspecified`.
        reason: RevocationReason,
    },
    /// The responder knows no such certificate of this issuer.
    Unknown,
}

/// One answer of a response.
#[derive(Debug, Clone)]
pub struct OcspSingleResponse {
    /// The CertID as asked (repeated byte for byte).
    pub cert_id: OcspCertId,
    /// Its status.
    pub status: OcspCertStatus,
    /// When the status was known to be right.
    pub this_update: DateTime<Utc>,
    /// When newer information will be available.
    pub next_update: DateTime<Utc>,
}

/// Who signs a response: a delegated responder (its certificate goes into
/// the response) or the CA itself (nothing to add).
#[derive(Debug, Clone, Copy)]
pub struct OcspSigner<'a> {
    /// The key that signs.
    pub key: &'a KeyPair,
    /// The delegated responder's certificate (DER); None when the CA signs.
    pub certificate: Option<&'a [u8]>,
}

fn generalized(at: DateTime<Utc>, field: &str) -> Result<GeneralizedTime> {
    let seconds = u64::try_from(at.timestamp())
        .map_err(|_| Error::invalid(field, "must not be before 1970-01-01"))?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(seconds))
        .map_err(|err| Error::invalid(field, format!("cannot be encoded: {err}")))
}

fn crl_reason(reason: RevocationReason) -> Option<CrlReason> {
    Some(match reason {
        // Like CRL entries: unspecified is written as no reason at all.
        RevocationReason::Unspecified | RevocationReason::RemoveFromCrl => return None,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    })
}

/// Signs a successful OCSPResponse (id-pkix-ocsp-basic) with `signer`,
/// naming the responder by the hash of its key, echoing `request`'s nonce
/// when given. Returns the DER.
pub fn build_ocsp_response(
    signer: OcspSigner<'_>,
    responses: &[OcspSingleResponse],
    produced_at: DateTime<Utc>,
    request: Option<&OcspRequest>,
) -> Result<Vec<u8>> {
    let mut singles = Vec::with_capacity(responses.len());
    for single in responses {
        let cert_status = match single.status {
            OcspCertStatus::Good => CertStatusAsn1::Good(Null),
            OcspCertStatus::Unknown => CertStatusAsn1::Unknown(Null),
            OcspCertStatus::Revoked { at, reason } => CertStatusAsn1::Revoked(RevokedInfoAsn1 {
                revocation_time: generalized(at, "revoked_at")?,
                revocation_reason: crl_reason(reason),
            }),
        };
        singles.push(SingleResponseAsn1 {
            cert_id: single.cert_id.raw.clone(),
            cert_status,
            this_update: generalized(single.this_update, "this_update")?,
            next_update: Some(generalized(single.next_update, "next_update")?),
        });
    }
    let public_key = signer.key.public_key_der();
    let spki = SubjectPublicKeyInfoRef::from_der(&public_key).map_err(encoding("responder key"))?;
    let key_hash = Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec();
    let data = ResponseDataAsn1 {
        responder_key_hash: OctetString::new(key_hash).map_err(encoding("responder id"))?,
        produced_at: generalized(produced_at, "produced_at")?,
        responses: singles,
        response_extensions: request.and_then(|r| r.nonce.clone()).map(|n| vec![n]),
    };
    let message = data.to_der().map_err(encoding("OCSP response data"))?;
    let signature = signer.key.sign(&message)?;
    let certs = match signer.certificate {
        Some(der) => Some(vec![
            Any::from_der(der).map_err(encoding("responder certificate"))?,
        ]),
        None => None,
    };
    let basic = BasicOcspResponseAsn1 {
        tbs_response_data: data,
        signature_algorithm: signer.key.algorithm().signature_algorithm(),
        signature: BitString::from_bytes(&signature).map_err(encoding("OCSP signature"))?,
        certs,
    };
    let response = OcspResponseAsn1 {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytesAsn1 {
            response_type: OCSP_BASIC,
            response: OctetString::new(basic.to_der().map_err(encoding("OCSP response"))?)
                .map_err(encoding("OCSP response"))?,
        }),
    };
    response.to_der().map_err(encoding("OCSP response"))
}

/// An unsuccessful OCSPResponse: only the status, nothing signed (RFC 6960
/// §4.2.1). Cannot fail, so every error path of a responder has an answer.
pub fn ocsp_error_response(status: OcspResponseStatus) -> Vec<u8> {
    // SEQUENCE { ENUMERATED status }: five fixed bytes.
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

/// What a response says, read back without verifying its signature (a
/// host probing its responder; the tests). Only the shapes clm writes are
/// read: version v1, responder by key, no single extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspResponseSummary {
    /// The response status.
    pub status: OcspResponseStatus,
    /// Each answer: the CertID's hash (None for another algorithm), the
    /// serial's DER content bytes and the status.
    pub responses: Vec<(Option<OcspHash>, Vec<u8>, OcspCertStatus)>,
    /// thisUpdate and nextUpdate of the first answer.
    pub validity: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The echoed nonce's bytes.
    pub nonce: Option<Vec<u8>>,
    /// The certificates the response carries (DER): the delegated responder's.
    pub certificates: Vec<Vec<u8>>,
}

fn from_generalized(time: &GeneralizedTime) -> Result<DateTime<Utc>> {
    let seconds = i64::try_from(time.to_unix_duration().as_secs())
        .map_err(|_| Error::invalid("response", "time out of range"))?;
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| Error::invalid("response", "time out of range"))
}

fn reason_of(reason: Option<CrlReason>) -> RevocationReason {
    match reason {
        None | Some(CrlReason::Unspecified) => RevocationReason::Unspecified,
        Some(CrlReason::KeyCompromise) => RevocationReason::KeyCompromise,
        Some(CrlReason::CaCompromise) => RevocationReason::CaCompromise,
        Some(CrlReason::AffiliationChanged) => RevocationReason::AffiliationChanged,
        Some(CrlReason::Superseded) => RevocationReason::Superseded,
        Some(CrlReason::CessationOfOperation) => RevocationReason::CessationOfOperation,
        Some(CrlReason::CertificateHold) => RevocationReason::CertificateHold,
        Some(CrlReason::RemoveFromCRL) => RevocationReason::RemoveFromCrl,
        Some(CrlReason::PrivilegeWithdrawn) => RevocationReason::PrivilegeWithdrawn,
        Some(CrlReason::AaCompromise) => RevocationReason::AaCompromise,
    }
}

/// Reads an OCSPResponse (see [`OcspResponseSummary`]).
pub fn read_ocsp_response(der: &[u8]) -> Result<OcspResponseSummary> {
    let bad =
        |err: der::Error| Error::invalid("response", format!("not a DER OCSPResponse: {err}"));
    let response = OcspResponseAsn1::from_der(der).map_err(bad)?;
    let mut summary = OcspResponseSummary {
        status: response.response_status,
        responses: Vec::new(),
        validity: None,
        nonce: None,
        certificates: Vec::new(),
    };
    let Some(bytes) = response.response_bytes else {
        return Ok(summary);
    };
    if bytes.response_type != OCSP_BASIC {
        return Err(Error::invalid("response", "not id-pkix-ocsp-basic"));
    }
    let basic = BasicOcspResponseAsn1::from_der(bytes.response.as_bytes()).map_err(bad)?;
    let data = basic.tbs_response_data;
    for single in &data.responses {
        let id = OcspCertId::from_raw(single.cert_id.clone());
        let status = match &single.cert_status {
            CertStatusAsn1::Good(_) => OcspCertStatus::Good,
            CertStatusAsn1::Unknown(_) => OcspCertStatus::Unknown,
            CertStatusAsn1::Revoked(info) => OcspCertStatus::Revoked {
                at: from_generalized(&info.revocation_time)?,
                reason: reason_of(info.revocation_reason),
            },
        };
        if summary.validity.is_none()
            && let Some(next) = &single.next_update
        {
            summary.validity = Some((
                from_generalized(&single.this_update)?,
                from_generalized(next)?,
            ));
        }
        summary.responses.push((id.hash, id.serial, status));
    }
    summary.nonce = data
        .response_extensions
        .into_iter()
        .flatten()
        .find(|e| e.extn_id == OCSP_NONCE)
        .and_then(|e| {
            OctetString::from_der(e.extn_value.as_bytes())
                .ok()
                .map(|n| n.as_bytes().to_vec())
        });
    for certificate in basic.certs.into_iter().flatten() {
        summary
            .certificates
            .push(certificate.to_der().map_err(encoding("certificate"))?);
    }
    Ok(summary)
}

/// The status of an OCSPResponse's DER, without checking anything else.
pub fn ocsp_response_status(der: &[u8]) -> Result<OcspResponseStatus> {
    OcspResponseAsn1::from_der(der)
        .map(|r| r.response_status)
        .map_err(|err| Error::invalid("response", format!("not a DER OCSPResponse: {err}")))
}

/// clm's profile of a delegated OCSP responder certificate (RFC 6960
/// §4.2.2.2): end entity, digitalSignature, id-kp-OCSPSigning only, and
/// id-pkix-ocsp-nocheck so relying parties do not ask about the responder
/// itself (its short life stands in for revocation).
struct ResponderProfile {
    subject: Name,
    issuer: Name,
    issuer_key_id: Vec<u8>,
}

fn extension<T: Encode>(
    id: ObjectIdentifier,
    critical: bool,
    value: &T,
) -> x509_cert::builder::Result<Extension> {
    Ok(Extension {
        extn_id: id,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

impl BuilderProfile for ResponderProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let basic = BasicConstraints {
            ca: false,
            path_len_constraint: None,
        };
        let own_id = Sha1::digest(spk.subject_public_key.raw_bytes()).to_vec();
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(self.issuer_key_id.clone())?),
            ..Default::default()
        };
        Ok(vec![
            extension(oid::BASIC_CONSTRAINTS, true, &basic)?,
            extension(
                oid::KEY_USAGE,
                true,
                &KeyUsage(KeyUsages::DigitalSignature.into()),
            )?,
            extension(
                oid::EXT_KEY_USAGE,
                false,
                &ExtendedKeyUsage(vec![oid::KP_OCSP_SIGNING]),
            )?,
            extension(OCSP_NOCHECK, false, &Null)?,
            extension(
                oid::SUBJECT_KEY_ID,
                false,
                &SubjectKeyIdentifier(OctetString::new(own_id)?),
            )?,
            extension(oid::AUTHORITY_KEY_ID, false, &aki)?,
        ])
    }
}

/// Issues a delegated OCSP responder certificate for `responder_key` under
/// the CA (`ca`, `ca_key`), valid from `not_before` to `not_after` (which
/// must lie within the CA's own validity). Subject: the CA's name with CN
/// `OCSP Responder`.
pub fn build_ocsp_responder_certificate(
    ca: &ParsedCertificate,
    ca_key: &KeyPair,
    responder_key: &KeyPair,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> Result<Vec<u8>> {
    if !ca.is_ca {
        return Err(Error::invalid("issuer", "only a CA delegates OCSP signing"));
    }
    if !ca_key.matches_public_key(&ca.public_key_der) {
        return Err(Error::invalid(
            "issuer",
            "issuer key does not match the issuer certificate",
        ));
    }
    if not_after <= not_before {
        return Err(Error::invalid("not_after", "must be later than not_before"));
    }
    if not_after > ca.not_after {
        return Err(Error::invalid(
            "not_after",
            format!("must not be after the CA's end ({})", ca.not_after),
        ));
    }
    let issuer = LenientCertificate::from_der(&ca.der)
        .map_err(|err| Error::invalid("issuer", format!("issuer certificate is malformed: {err}")))?
        .tbs_certificate()
        .subject()
        .clone();
    let mut subject = DistinguishedName::from_name(&issuer);
    subject.common_name = Some("OCSP Responder".into());
    subject.email = None;
    let issuer_key_id = match ca
        .subject_key_id
        .as_deref()
        .and_then(|id| hex::decode(id).ok())
    {
        Some(id) => id,
        None => {
            let spki = SubjectPublicKeyInfoRef::from_der(&ca.public_key_der)
                .map_err(|err| Error::invalid("issuer", format!("malformed public key: {err}")))?;
            Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
        }
    };
    let profile = ResponderProfile {
        subject: subject.to_name()?,
        issuer,
        issuer_key_id,
    };
    let spki = SubjectPublicKeyInfoOwned::from_der(&responder_key.public_key_der())
        .map_err(encoding("responder public key"))?;
    let serial = SerialNumber::new(&random_serial())
        .map_err(|err| Error::crypto(format!("cannot make a serial: {err}")))?;
    let validity = Validity::new(
        to_time(not_before, "not_before")?,
        to_time(not_after, "not_after")?,
    );
    let builder = CertificateBuilder::new(profile, serial, validity, spki)
        .map_err(|err| Error::crypto(format!("cannot start the responder certificate: {err}")))?;
    let certificate = builder
        .build::<_, RawSignature>(&ca_key.x509_signer())
        .map_err(|err| Error::crypto(format!("cannot build the responder certificate: {err}")))?;
    certificate
        .to_der()
        .map_err(encoding("responder certificate"))
}

#[cfg(test)]
mod tests;
