//! Certificate revocation lists (RFC 5280 §5), version 2.

use chrono::{DateTime, Utc};
use der::asn1::{BitString, OctetString, Uint};
use der::{Decode, Encode};
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::ToExtension;
use x509_cert::ext::pkix::crl::CrlReason;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::serial_number::SerialNumber;

use super::certificate::ParsedCertificate;
use super::keys::KeyPair;
use super::pkix::{Lenient, LenientCertificate, encoding, to_time};
use crate::model::RevocationReason;
use crate::{Error, Result};

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// DER content bytes of the certificate's serial
    /// ([`ParsedCertificate::serial_bytes`]).
    pub serial: Vec<u8>,
    /// When the certificate was revoked (the entry's revocationDate).
    pub revoked_at: DateTime<Utc>,
    /// Written as the entry's reasonCode extension, except for `unspecified`.
    pub reason: RevocationReason,
}

fn crl_reason(reason: RevocationReason) -> Option<CrlReason> {
    match reason {
        // RFC 5280 §5.3.1: the reasonCode extension SHOULD be absent rather
        // than carry unspecified (0).
        RevocationReason::Unspecified => None,
        RevocationReason::KeyCompromise => Some(CrlReason::KeyCompromise),
        RevocationReason::CaCompromise => Some(CrlReason::CaCompromise),
        RevocationReason::AffiliationChanged => Some(CrlReason::AffiliationChanged),
        RevocationReason::Superseded => Some(CrlReason::Superseded),
        RevocationReason::CessationOfOperation => Some(CrlReason::CessationOfOperation),
        RevocationReason::CertificateHold => Some(CrlReason::CertificateHold),
        RevocationReason::RemoveFromCrl => Some(CrlReason::RemoveFromCRL),
        RevocationReason::PrivilegeWithdrawn => Some(CrlReason::PrivilegeWithdrawn),
        RevocationReason::AaCompromise => Some(CrlReason::AaCompromise),
    }
}

/// A serial from its DER content bytes, kept exactly (negative and long
/// serials of imported certificates included) as long as it is a canonical
/// INTEGER.
fn entry_serial(serial: &[u8], index: usize) -> Result<SerialNumber<Lenient>> {
    let field = || format!("entries[{index}].serial");
    if serial.is_empty() || serial.len() > 64 {
        return Err(Error::invalid(field(), "must be 1 to 64 bytes"));
    }
    let mut der = Vec::with_capacity(serial.len() + 2);
    der.push(0x02);
    der.push(serial.len() as u8); // <= 64, so the short length form.
    der.extend_from_slice(serial);
    SerialNumber::<Lenient>::from_der(&der).map_err(|_| {
        Error::invalid(
            field(),
            "is not a canonical INTEGER (redundant leading byte?)",
        )
    })
}

/// Builds and signs a v2 CRL for `issuer_certificate` with `issuer_key`.
///
/// Extensions: cRLNumber and authorityKeyIdentifier (the issuer's
/// subjectKeyIdentifier). Each entry carries a reasonCode unless the reason
/// is `unspecified`, per RFC 5280's guidance. `remove_from_crl` belongs to
/// delta CRLs only and is refused here.
///
/// Assembled here rather than by x509-cert 0.3's `CrlBuilder`, which copies
/// the issuer certificate's own authorityKeyIdentifier (the key of the
/// issuer's issuer) into the CRL instead of the issuer's
/// subjectKeyIdentifier, so an intermediate's CRL would name the root's key;
/// and which takes the issuer only under the strict RFC 5280 profile, so an
/// imported CA with a long serial could not sign.
pub fn build_crl(
    issuer_certificate: &ParsedCertificate,
    issuer_key: &KeyPair,
    crl_number: u64,
    this_update: DateTime<Utc>,
    next_update: DateTime<Utc>,
    entries: &[CrlEntry],
) -> Result<Vec<u8>> {
    if !issuer_certificate.is_ca {
        return Err(Error::invalid(
            "issuer",
            "only a CA certificate can sign a CRL",
        ));
    }
    if !issuer_certificate.key_usage.is_empty()
        && !issuer_certificate.key_usage.iter().any(|u| u == "cRLSign")
    {
        return Err(Error::invalid(
            "issuer",
            "issuer certificate's keyUsage lacks cRLSign",
        ));
    }
    if !issuer_key.matches_public_key(&issuer_certificate.public_key_der) {
        return Err(Error::invalid(
            "issuer",
            "issuer key does not match the issuer certificate",
        ));
    }
    if next_update <= this_update {
        return Err(Error::invalid(
            "next_update",
            "must be later than this_update",
        ));
    }
    let issuer = LenientCertificate::from_der(&issuer_certificate.der)
        .map_err(|err| Error::invalid("issuer", format!("issuer certificate is malformed: {err}")))?
        .tbs_certificate()
        .subject()
        .clone();

    let mut revoked = Vec::with_capacity(entries.len());
    let mut seen: std::collections::HashSet<&[u8]> =
        std::collections::HashSet::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        if !seen.insert(entry.serial.as_slice()) {
            return Err(Error::invalid(
                format!("entries[{index}].serial"),
                format!("{} is listed twice", hex::encode(&entry.serial)),
            ));
        }
        if entry.reason == RevocationReason::RemoveFromCrl {
            return Err(Error::invalid(
                format!("entries[{index}].reason"),
                "remove_from_crl is only meaningful in delta CRLs; leave the entry out instead",
            ));
        }
        let extensions = match crl_reason(entry.reason) {
            Some(reason) => Some(vec![
                reason
                    .to_extension(&issuer, &[])
                    .map_err(encoding("reasonCode"))?,
            ]),
            None => None,
        };
        revoked.push(RevokedCert::<Lenient> {
            serial_number: entry_serial(&entry.serial, index)?,
            revocation_date: to_time(entry.revoked_at, &format!("entries[{index}].revoked_at"))?,
            crl_entry_extensions: extensions,
        });
    }

    let key_id = match issuer_certificate
        .subject_key_id
        .as_deref()
        .and_then(|id| hex::decode(id).ok())
    {
        Some(id) => id,
        None => {
            use sha1::{Digest, Sha1};
            let spki = spki::SubjectPublicKeyInfoRef::from_der(&issuer_certificate.public_key_der)
                .map_err(|err| Error::invalid("issuer", format!("malformed public key: {err}")))?;
            Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
        }
    };
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(key_id).map_err(encoding("authorityKeyIdentifier"))?),
        ..Default::default()
    };
    let number = CrlNumber(Uint::new(&crl_number.to_be_bytes()).map_err(encoding("cRLNumber"))?);
    let crl_extensions = vec![
        aki.to_extension(&issuer, &[])
            .map_err(encoding("authorityKeyIdentifier"))?,
        number
            .to_extension(&issuer, &[])
            .map_err(encoding("cRLNumber"))?,
    ];

    let signature_algorithm = issuer_key.algorithm().signature_algorithm();
    let tbs = TbsCertList::<Lenient> {
        version: Version::V2,
        signature: signature_algorithm.clone(),
        issuer,
        this_update: to_time(this_update, "this_update")?,
        next_update: Some(to_time(next_update, "next_update")?),
        // RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked.
        revoked_certificates: if revoked.is_empty() {
            None
        } else {
            Some(revoked)
        },
        crl_extensions: Some(crl_extensions),
    };
    let message = tbs.to_der().map_err(encoding("CRL"))?;
    let signature = issuer_key.sign(&message)?;
    let crl = CertificateList::<Lenient> {
        tbs_cert_list: tbs,
        signature_algorithm,
        signature: BitString::from_bytes(&signature).map_err(encoding("CRL signature"))?,
    };
    crl.to_der().map_err(encoding("CRL"))
}
