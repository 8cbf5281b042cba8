//! Certificate revocation lists (RFC 5280 §5), version 2: complete and
//! delta CRLs, optionally scoped to one partition of an issuer's
//! certificates, assembled entry by entry.

use std::fmt;
use std::io::{self, BufWriter, Cursor, Read, Seek, SeekFrom, Write};

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
pub struct CrlBuilder {
    issuer: Name,
    public_key_der: Vec<u8>,
    key_id: Vec<u8>,
    scope: CrlScope,
    entries: Spool,
    entry: Vec<u8>,
    count: u64,
    previous: Vec<u8>,
}

impl fmt::Debug for CrlBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrlBuilder")
            .field("scope", &self.scope)
            .field("count", &self.count)
            .field("entries_bytes", &self.entries.len)
            .finish_non_exhaustive()
    }
}

/// Entry bytes held in memory before a CRL's entries move to a temporary
/// file: below it (a few tens of thousands of entries) no file is made.
pub(crate) const SPOOL_MEMORY_LIMIT: usize = 1 << 20;
/// The block a spooled file is read in, for hashing and for reading out.
const READ_BLOCK: usize = 64 * 1024;

trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

enum SpoolState {
    Memory(Vec<u8>),
    File(BufWriter<std::fs::File>),
}

/// Where a CRL's encoded entries wait for the signature: in memory while
/// small, then in an anonymous temporary file (deleted by the system when
/// closed), so a CRL's size costs disk, not memory.
struct Spool {
    state: SpoolState,
    len: u64,
}

fn spool_error(err: io::Error) -> Error {
    Error::Internal(format!(
        "cannot spool CRL entries to a temporary file: {err}"
    ))
}

impl Spool {
    fn new() -> Self {
        Spool {
            state: SpoolState::Memory(Vec::new()),
            len: 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if let SpoolState::Memory(memory) = &mut self.state
            && memory.len() + bytes.len() > SPOOL_MEMORY_LIMIT
        {
            let mut file =
                BufWriter::with_capacity(READ_BLOCK, tempfile::tempfile().map_err(spool_error)?);
            file.write_all(memory).map_err(spool_error)?;
            self.state = SpoolState::File(file);
        }
        match &mut self.state {
            SpoolState::Memory(memory) => memory.extend_from_slice(bytes),
            SpoolState::File(file) => file.write_all(bytes).map_err(spool_error)?,
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Ends writing: the spooled bytes, to read from the start.
    fn into_reader(self) -> Result<Box<dyn ReadSeek>> {
        Ok(match self.state {
            SpoolState::Memory(memory) => Box::new(Cursor::new(memory)),
            SpoolState::File(file) => {
                let mut file = file
                    .into_inner()
                    .map_err(|err| spool_error(err.into_error()))?;
                file.seek(SeekFrom::Start(0)).map_err(spool_error)?;
                Box::new(file)
            }
        })
    }
}

/// A signed CRL, read out in order through [`Read`] (or whole with
/// [`SignedCrl::into_der`]): its head and tail in memory, its entries where
/// the builder spooled them, so a large CRL is never whole in memory.
pub struct SignedCrl {
    head: Vec<u8>,
    entries: Box<dyn ReadSeek>,
    entries_len: u64,
    tail: Vec<u8>,
    position: u64,
}

impl fmt::Debug for SignedCrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedCrl")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

impl SignedCrl {
    /// The CRL's DER length in bytes.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.entries_len + self.tail.len() as u64
    }

    /// Never true: a CRL has at least its header and signature.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next bytes of the CRL, at most `max` of them; None at the end.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<u8>>> {
        let mut chunk = Vec::new();
        self.by_ref()
            .take(max as u64)
            .read_to_end(&mut chunk)
            .map_err(spool_error)?;
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    /// The whole CRL as DER (for CRLs known to be small).
    pub fn into_der(mut self) -> Result<Vec<u8>> {
        let mut der = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        self.read_to_end(&mut der).map_err(spool_error)?;
        Ok(der)
    }
}

impl Read for SignedCrl {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let head = self.head.len() as u64;
        let entries_end = head + self.entries_len;
        let read = if self.position < head {
            let from = &self.head[self.position as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else if self.position < entries_end {
            let left = usize::try_from(entries_end - self.position).unwrap_or(usize::MAX);
            let limit = left.min(buf.len());
            let n = self.entries.read(&mut buf[..limit])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the spooled CRL entries ended early",
                ));
            }
            n
        } else {
            let offset = usize::try_from(self.position - entries_end).unwrap_or(usize::MAX);
            let from = self.tail.get(offset..).unwrap_or(&[]);
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        };
        self.position += read as u64;
        Ok(read)
    }
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
            entries: Spool::new(),
            entry: Vec::new(),
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
        self.entry.clear();
        RevokedCert::<Lenient> {
            serial_number: entry_serial(&entry.serial, index)?,
            revocation_date: to_time(entry.revoked_at, &format!("entries[{index}].revoked_at"))?,
            crl_entry_extensions: extensions,
        }
        .encode_to_vec(&mut self.entry)
        .map_err(encoding("CRL entry"))?;
        self.entries.write(&self.entry)?;
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

    /// Signs the CRL with `issuer_key` (the key given to [`CrlBuilder::new`]).
    /// The entries are read once to hash them and once more as the CRL is
    /// read out; the signature is over the streamed TBS
    /// ([`KeyPair::sign_streamed`]).
    pub fn finish(
        self,
        issuer_key: &KeyPair,
        crl_number: u64,
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
    ) -> Result<SignedCrl> {
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

        let mut fields = der(&Version::V2, "version")?;
        fields.extend(der(&signature_algorithm, "signature")?);
        fields.extend(der(&self.issuer, "issuer")?);
        fields.extend(der(&to_time(this_update, "this_update")?, "thisUpdate")?);
        fields.extend(der(&to_time(next_update, "next_update")?, "nextUpdate")?);
        let extensions = der(&self.extensions(crl_number)?, "crlExtensions")?;
        let mut tail = header(0xa0, extensions.len());
        tail.extend(extensions);

        let entries_len = self.entries.len;
        let entries_size = usize::try_from(entries_len)
            .map_err(|_| Error::invalid("entries", "too many for one CRL"))?;
        // RFC 5280 §5.1.2.6: revokedCertificates is absent, not empty, when
        // nothing is revoked.
        if self.count > 0 {
            fields.extend(header(0x30, entries_size));
        }
        let tbs_len = fields.len() + entries_size + tail.len();
        let mut tbs_head = header(0x30, tbs_len);
        tbs_head.extend(fields);

        let mut entries = self.entries.into_reader()?;
        let signature = issuer_key.sign_streamed(&mut |hash| {
            hash(&tbs_head);
            let mut block = vec![0u8; READ_BLOCK];
            loop {
                let n = entries.read(&mut block).map_err(spool_error)?;
                if n == 0 {
                    break;
                }
                hash(&block[..n]);
            }
            hash(&tail);
            Ok(())
        })?;
        entries.seek(SeekFrom::Start(0)).map_err(spool_error)?;

        tail.extend(der(&signature_algorithm, "signatureAlgorithm")?);
        tail.extend(der(
            &BitString::from_bytes(&signature).map_err(encoding("CRL signature"))?,
            "CRL signature",
        )?);
        // The outer SEQUENCE: the whole TBS, then the algorithm and signature.
        let mut head = header(0x30, tbs_head.len() + entries_size + tail.len());
        head.extend(tbs_head);
        Ok(SignedCrl {
            head,
            entries,
            entries_len,
            tail,
            position: 0,
        })
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
    builder
        .finish(issuer_key, crl_number, this_update, next_update)?
        .into_der()
}
