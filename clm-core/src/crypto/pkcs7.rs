//! PKCS #7 "certs-only" bundles (RFC 5652 SignedData with no signers, RFC
//! 8551 §3.2.2's degenerate case): how Windows and many appliances take a
//! chain (`.p7b`, `application/pkcs7-mime`).

use cms::cert::CertificateChoices;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{CertificateSet, EncapsulatedContentInfo, SignedData, SignerInfos};
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode};
use x509_cert::Certificate;

use crate::{Error, Result};

fn encoding(what: &str, err: impl std::fmt::Display) -> Error {
    Error::crypto(format!("encoding PKCS #7 {what}: {err}"))
}

/// A degenerate SignedData (DER) carrying `certificates` (DER each): version
/// 1, no digest algorithms, empty `id-data` content, no signers. A SET is
/// unordered, so DER sorts the certificates; readers build the chain from
/// the names.
pub fn certs_only(certificates: &[Vec<u8>]) -> Result<Vec<u8>> {
    let mut set = SetOfVec::new();
    for der in certificates {
        let certificate = Certificate::from_der(der).map_err(|err| encoding("certificate", err))?;
        set.insert(CertificateChoices::Certificate(certificate))
            .map_err(|err| encoding("certificate set", err))?;
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(set)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::new()),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(|err| encoding("SignedData", err))?,
    }
    .to_der()
    .map_err(|err| encoding("ContentInfo", err))
}
