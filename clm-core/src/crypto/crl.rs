//! Certificate revocation lists (RFC 5280 §5), version 2: complete and
//! delta CRLs, optionally scoped to one partition of an issuer's
//! certificates, assembled entry by entry.

use chrono::{DateTime, Utc};
use const_oid::db::rfc5280::ID_CE_ISSUING_DISTRIBUTION_POINT;
use der::asn1::{BitString, Ia5String, OctetString, Uint};
use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::certificate::Version;
use x509_cert::crl::RevokedCert;
use x509_cert::ext::pkix::crl::dp::{DistributionPoint, IssuingDistributionPoint};
use x509_cert::ext::pkix::crl::{BaseCrlNumber, CrlReason, FreshestCrl};
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
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

/// What a CRL covers beyond its issuer: the extensions a delta or a
/// partition's CRL carries besides cRLNumber and authorityKeyIdentifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrlScope {
    /// A delta CRL: the cRLNumber of the complete CRL it updates, written
    /// as the critical Delta CRL Indicator (RFC 5280 §5.2.4).
    pub delta_of: Option<u64>,
    /// The URL of a partition's CRL, written as a critical Issuing
    /// Distribution Point (§5.2.5); none for a CRL of the whole issuer.
    pub distribution_point: Option<String>,
    /// Where the delta CRLs of this scope are published: a Freshest CRL
    /// extension (§5.2.6), in complete CRLs only.
    pub freshest_crl: Option<String>,
}

/// The partition (0 to `partitions - 1`) a serial (DER content bytes)
/// belongs to: the first eight bytes of its SHA-256, modulo the count.
/// Stable, and even for sequential serials of imported certificates.
pub fn crl_partition(serial: &[u8], partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    let digest = Sha256::digest(serial);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(partitions)) as u32
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
fn entry_serial(serial: &[u8], index: u64) -> Result<SerialNumber<Lenient>> {
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

/// A DER tag and definite length.
fn header(tag: u8, length: usize) -> Vec<u8> {
    let mut out = vec![tag];
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out
}

fn der<T: Encode>(value: &T, what: &'static str) -> Result<Vec<u8>> {
    value.to_der().map_err(encoding(what))
}

fn uri(url: &str, field: &str) -> Result<GeneralName> {
    Ia5String::new(url)
        .map(GeneralName::UniformResourceIdentifier)
        .map_err(|_| Error::invalid(field.to_string(), "must be an ASCII URL"))
}

/// Builds one signed v2 CRL from entries pushed one at a time: each entry is
/// encoded as it arrives and only its DER is kept, so a CRL of a million
/// entries costs the memory of its own encoding (about 40 bytes an entry),
/// not of a million records.
///
/// Extensions: cRLNumber and authorityKeyIdentifier (the issuer's
/// subjectKeyIdentifier), plus what the [`CrlScope`] asks for. Each entry
/// carries a reasonCode unless the reason is `unspecified`, per RFC 5280's
/// guidance; `remove_from_crl` belongs to delta CRLs only.
///
/// Assembled here rather than by x509-cert 0.3's `CrlBuilder`, which copies
/// the issuer certificate's own authorityKeyIdentifier (the key of the
/// issuer's issuer) into the CRL instead of the issuer's
/// subjectKeyIdentifier, and takes the issuer only under the strict RFC 5280
/// profile (an imported CA with a long serial could not sign); and whose
/// `IssuingDistributionPoint` carries the wrong OID (subjectInfoAccess's),
/// so that extension is written by OID here.
#[derive(Debug)]
pub struct CrlBuilder {
    issuer: Name,
    public_key_der: Vec<u8>,
    key_id: Vec<u8>,
    scope: CrlScope,
    entries: Vec<u8>,
    count: u64,
    previous: Vec<u8>,
}

impl CrlBuilder {
    /// A builder for a CRL of `issuer_certificate`, signed later with
    /// `issuer_key` (checked now: a CA certificate allowed to sign CRLs,
    /// and its own key).
    pub fn new(
        issuer_certificate: &ParsedCertificate,
        issuer_key: &KeyPair,
        scope: CrlScope,
    ) -> Result<Self> {
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
        if scope.delta_of.is_some() && scope.freshest_crl.is_some() {
            return Err(Error::invalid(
                "freshest_crl",
                "a delta CRL does not point to delta CRLs",
            ));
        }
        let issuer = LenientCertificate::from_der(&issuer_certificate.der)
            .map_err(|err| {
                Error::invalid("issuer", format!("issuer certificate is malformed: {err}"))
            })?
            .tbs_certificate()
            .subject()
            .clone();
        let key_id = match issuer_certificate
            .subject_key_id
            .as_deref()
            .and_then(|id| hex::decode(id).ok())
        {
            Some(id) => id,
            None => {
                use sha1::Sha1;
                let spki =
                    spki::SubjectPublicKeyInfoRef::from_der(&issuer_certificate.public_key_der)
                        .map_err(|err| {
                            Error::invalid("issuer", format!("malformed public key: {err}"))
                        })?;
                Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
            }
        };
        Ok(CrlBuilder {
            issuer,
            public_key_der: issuer_certificate.public_key_der.clone(),
            key_id,
            scope,
            entries: Vec::new(),
            count: 0,
            previous: Vec::new(),
        })
    }

    /// Entries pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True before the first entry.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The serial of the entry pushed last.
    pub fn last_serial(&self) -> Option<&[u8]> {
        (self.count > 0).then_some(self.previous.as_slice())
    }

    /// Encodes one entry. Entries come grouped by serial (the store streams
    /// them in serial order): a serial equal to the previous one is refused.
    pub fn push(&mut self, entry: &CrlEntry) -> Result<()> {
        let index = self.count;
        if self.last_serial() == Some(entry.serial.as_slice()) {
            return Err(Error::invalid(
                format!("entries[{index}].serial"),
                format!("{} is listed twice", hex::encode(&entry.serial)),
            ));
        }
        if entry.reason == RevocationReason::RemoveFromCrl && self.scope.delta_of.is_none() {
            return Err(Error::invalid(
                format!("entries[{index}].reason"),
                "remove_from_crl is only meaningful in delta CRLs; leave the entry out instead",
            ));
        }
        let extensions = match crl_reason(entry.reason) {
            Some(reason) => Some(vec![
                reason
                    .to_extension(&self.issuer, &[])
                    .map_err(encoding("reasonCode"))?,
            ]),
            None => None,
        };
        RevokedCert::<Lenient> {
            serial_number: entry_serial(&entry.serial, index)?,
            revocation_date: to_time(entry.revoked_at, &format!("entries[{index}].revoked_at"))?,
            crl_entry_extensions: extensions,
        }
        .encode_to_vec(&mut self.entries)
        .map_err(encoding("CRL entry"))?;
        self.previous.clear();
        self.previous.extend_from_slice(&entry.serial);
        self.count += 1;
        Ok(())
    }

    fn extensions(&self, crl_number: u64) -> Result<Vec<Extension>> {
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(
                OctetString::new(self.key_id.clone())
                    .map_err(encoding("authorityKeyIdentifier"))?,
            ),
            ..Default::default()
        };
        let number =
            CrlNumber(Uint::new(&crl_number.to_be_bytes()).map_err(encoding("cRLNumber"))?);
        let mut extensions = vec![
            aki.to_extension(&self.issuer, &[])
                .map_err(encoding("authorityKeyIdentifier"))?,
            number
                .to_extension(&self.issuer, &[])
                .map_err(encoding("cRLNumber"))?,
        ];
        if let Some(base) = self.scope.delta_of {
            if base >= crl_number {
                return Err(Error::invalid(
                    "delta_of",
                    "a delta CRL's number must be above its base CRL's",
                ));
            }
            extensions.push(
                BaseCrlNumber(
                    Uint::new(&base.to_be_bytes()).map_err(encoding("deltaCRLIndicator"))?,
                )
                .to_extension(&self.issuer, &[])
                .map_err(encoding("deltaCRLIndicator"))?,
            );
        }
        if let Some(url) = &self.scope.distribution_point {
            let point = IssuingDistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(
                    url,
                    "distribution_point",
                )?])),
                only_contains_user_certs: false,
                only_contains_ca_certs: false,
                only_some_reasons: None,
                indirect_crl: false,
                only_contains_attribute_certs: false,
            };
            extensions.push(Extension {
                extn_id: ID_CE_ISSUING_DISTRIBUTION_POINT,
                critical: true,
                extn_value: OctetString::new(
                    point
                        .to_der()
                        .map_err(encoding("issuingDistributionPoint"))?,
                )
                .map_err(encoding("issuingDistributionPoint"))?,
            });
        }
        if let Some(url) = &self.scope.freshest_crl {
            extensions.push(
                FreshestCrl(vec![DistributionPoint {
                    distribution_point: Some(DistributionPointName::FullName(vec![uri(
                        url,
                        "freshest_crl",
                    )?])),
                    reasons: None,
                    crl_issuer: None,
                }])
                .to_extension(&self.issuer, &[])
                .map_err(encoding("freshestCRL"))?,
            );
        }
        Ok(extensions)
    }

    /// Signs the CRL with `issuer_key` (the key given to [`CrlBuilder::new`])
    /// and returns its DER. The entries' buffer becomes the CRL: the parts
    /// before and after them are written around it in place.
    pub fn finish(
        self,
        issuer_key: &KeyPair,
        crl_number: u64,
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        if !issuer_key.matches_public_key(&self.public_key_der) {
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
        let signature_algorithm: AlgorithmIdentifierOwned =
            issuer_key.algorithm().signature_algorithm();

        let mut head = der(&Version::V2, "version")?;
        head.extend(der(&signature_algorithm, "signature")?);
        head.extend(der(&self.issuer, "issuer")?);
        head.extend(der(&to_time(this_update, "this_update")?, "thisUpdate")?);
        head.extend(der(&to_time(next_update, "next_update")?, "nextUpdate")?);
        let extensions = der(&self.extensions(crl_number)?, "crlExtensions")?;
        let mut tail = header(0xa0, extensions.len());
        tail.extend(extensions);

        let mut message = self.entries;
        // RFC 5280 §5.1.2.6: revokedCertificates is absent, not empty, when
        // nothing is revoked.
        if self.count > 0 {
            let list = header(0x30, message.len());
            head.extend(list);
        }
        let content = head.len() + message.len() + tail.len();
        let mut prefix = header(0x30, content);
        prefix.extend(head);
        message.reserve(prefix.len() + tail.len() + 16 + 512);
        message.splice(0..0, prefix);
        message.extend(tail);

        let signature = issuer_key.sign(&message)?;
        let mut after = der(&signature_algorithm, "signatureAlgorithm")?;
        after.extend(der(
            &BitString::from_bytes(&signature).map_err(encoding("CRL signature"))?,
            "CRL signature",
        )?);
        let outer = header(0x30, message.len() + after.len());
        message.reserve(outer.len() + after.len());
        message.splice(0..0, outer);
        message.extend(after);
        Ok(message)
    }
}

/// Builds and signs a complete v2 CRL of the whole issuer from a list of
/// entries (in any order): [`CrlBuilder`] over the sorted list.
pub fn build_crl(
    issuer_certificate: &ParsedCertificate,
    issuer_key: &KeyPair,
    crl_number: u64,
    this_update: DateTime<Utc>,
    next_update: DateTime<Utc>,
    entries: &[CrlEntry],
) -> Result<Vec<u8>> {
    let mut builder = CrlBuilder::new(issuer_certificate, issuer_key, CrlScope::default())?;
    let mut sorted: Vec<&CrlEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.serial.cmp(&b.serial));
    for entry in sorted {
        builder.push(entry)?;
    }
    builder.finish(issuer_key, crl_number, this_update, next_update)
}
