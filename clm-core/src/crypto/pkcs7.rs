//! PKCS #7 "certs-only" bundles (RFC 5652 SignedData with no signers, RFC
//! 8551 §3.2.2's degenerate case): how Windows and many appliances take a
//! chain (`.p7b`, `application/pkcs7-mime`).

use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::EncapsulatedContentInfo;
use const_oid::db::rfc5911::{ID_DATA, ID_SIGNED_DATA};
use der::asn1::SetOfVec;
use der::{Any, Decode, Encode, Sequence};
use x509_cert::Certificate;

use crate::{Error, Result};

fn encoding(what: &str, err: impl std::fmt::Display) -> Error {
    Error::crypto(format!("encoding PKCS #7 {what}: {err}"))
}

/// `SignedData` (RFC 5652 §5.1) as a certs-only bundle writes it. Not the
/// `cms` crate's type: its certificate set sorts by the certificates'
/// fields, while DER sorts a SET OF by the elements' encodings (X.690
/// §11.6), which readers such as pyca/cryptography check. Held as `Any`,
/// the set sorts by tag, length, then content bytes: the encodings' order.
#[derive(Sequence)]
struct CertsOnlySignedData {
    version: CmsVersion,
    digest_algorithms: SetOfVec<Any>,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true")]
    certificates: SetOfVec<Any>,
    signer_infos: SetOfVec<Any>,
}

/// A degenerate SignedData (DER) carrying `certificates` (DER each): version
/// 1, no digest algorithms, empty `id-data` content, no signers. A SET is
/// unordered, so DER sorts the certificates; readers build the chain from
/// the names.
pub fn certs_only(certificates: &[Vec<u8>]) -> Result<Vec<u8>> {
    let mut elements = Vec::with_capacity(certificates.len());
    for der in certificates {
        Certificate::from_der(der).map_err(|err| encoding("certificate", err))?;
        elements.push(Any::from_der(der).map_err(|err| encoding("certificate", err))?);
    }
    let signed = CertsOnlySignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::new(),
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: SetOfVec::try_from(elements)
            .map_err(|err| encoding("certificate set", err))?,
        signer_infos: SetOfVec::new(),
    };
    ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(|err| encoding("SignedData", err))?,
    }
    .to_der()
    .map_err(|err| encoding("ContentInfo", err))
}
