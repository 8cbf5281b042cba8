//! The certificate inventory: import (PEM, DER, bundles, optionally with the
//! private key), reads and search within the actor's organizations, soft
//! delete and restore, chains, and the status refresh that moves certificates
//! along the clock.

use std::collections::{BTreeMap, HashMap, HashSet};

use std::io::Read as _;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::crypto::certificate::read_bundle;
use crate::crypto::{
    KeyPair, ParsedBundle, ParsedCertificate, SecretString, SkippedBlock, parse_certificate_bundle,
    parse_certificates, serial_from_text, spki_sha256, verify_signed_by,
};
use crate::model::{
    Certificate, CertificateId, CertificateKind, CertificateSource, CertificateStatus,
    OrganizationId, PolicyId, UserId,
};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, append, append_many};
use crate::service::certificates::{
    DEFAULT_EXPIRY_THRESHOLD_DAYS, HalfWritten, Ownership, certificate_row_with_id,
    write_metadata_rows,
};
use crate::store::audit::AuditLogKind;
use crate::store::certificates::{self, CertificateFilter, Certificates, PolicyScope};
use crate::store::{self, Page, PageRequest, certificate_metadata, now, policies, private_keys};
use crate::{Clm, Error, Result};

/// Certificates written per secure transaction (and per audit row) on import.
pub const IMPORT_BATCH: usize = 1_000;

/// Longest issuer chain followed by [`Clm::certificate_chain`].
const MAX_CHAIN: usize = 16;

/// Certificates to bring into the inventory.
#[derive(Clone, Default)]
pub struct ImportRequest {
    /// One PEM certificate, a PEM bundle of many, or one DER certificate.
    pub data: Vec<u8>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of the one certificate
    /// in `data`; it must match that certificate's public key.
    pub private_key_pem: Option<SecretString>,
    /// The tenant the certificates join; None: shared (global administrators
    /// only). Needs `certificates:import` there.
    pub organization_id: Option<OrganizationId>,
    /// The user responsible for the certificates (gets their expiry notices).
    pub owner_user_id: Option<UserId>,
}

impl std::fmt::Debug for ImportRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRequest")
            .field("data_len", &self.data.len())
            .field(
                "private_key_pem",
                &self.private_key_pem.as_ref().map(|_| "[redacted]"),
            )
            .field("organization_id", &self.organization_id)
            .field("owner_user_id", &self.owner_user_id)
            .finish()
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct ImportReport {
    /// The certificates written by this import.
    pub imported: Vec<Certificate>,
    /// Certificates of the input that clm already held in the import's
    /// organization (or among the shared rows, for an import without one),
    /// matched by SHA-256 fingerprint, by id. Nothing is written for them, except a private key
    /// given for a stored certificate that had none.
    pub already_present: Vec<CertificateId>,
    /// Imported certificates with oddities (`serial_zero`,
    /// `unknown_critical_extension:OID`, ...; see [`ParsedCertificate::flags`]).
    pub flagged: Vec<(CertificateId, Vec<String>)>,
    /// PEM blocks of the input that hold no certificate and were left out,
    /// such as a bundle's private key (an encrypted legacy one included).
    pub skipped: Vec<SkippedBlock>,
}

/// Inventory search; every set field must match.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CertificateSearch {
    /// Case-insensitive substring of the common name.
    pub common_name: Option<String>,
    /// A subject alternative name value, matched exactly.
    pub san: Option<String>,
    /// The serial: as stored (`serial_number`, hex of its bytes: `fbce996c13`, colons
    /// allowed) or as a signed hex integer (`serial_number_signed`: `-0x4316693ed`).
    pub serial_number: Option<String>,
    /// Only certificates signed by this CA.
    pub issuer_certificate_id: Option<CertificateId>,
    /// Only certificates in one of these statuses.
    pub status: Option<Vec<CertificateStatus>>,
    /// `not_after <= expires_before`.
    pub expires_before: Option<DateTime<Utc>>,
    /// `not_after > expires_after`.
    pub expires_after: Option<DateTime<Utc>>,
    /// Only certificates of this owner.
    pub owner_user_id: Option<UserId>,
    /// Only certificates of this organization.
    pub organization_id: Option<OrganizationId>,
    /// Only CA certificates (true) or only others (false).
    pub is_ca: Option<bool>,
    /// Fill `certificate_pem` (otherwise '').
    pub with_pem: bool,
}

/// Transitions made by [`Clm::refresh_certificate_statuses`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct StatusRefreshReport {
    /// Certificates moved to `expired` (`not_after` passed).
    pub expired: u64,
    /// Certificates moved to `expiring` (within the renewal threshold).
    pub expiring: u64,
    /// Certificates moved from `pending` to `active` (`not_before` reached).
    pub activated: u64,
}

/// Where an imported certificate's issuer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IssuerLink {
    Stored(CertificateId),
    /// Index into the certificates being linked together (a chunk of the
    /// input and the certificates held back from earlier chunks).
    InBatch(usize),
}

/// What linking found for one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Linked {
    /// Self-signed, its own signature verified: it has no issuer.
    Root,
    Issuer(IssuerLink),
    /// No known certificate issued it (yet).
    Unknown,
}

impl Linked {
    fn link(self) -> Option<IssuerLink> {
        match self {
            Linked::Issuer(link) => Some(link),
            Linked::Root | Linked::Unknown => None,
        }
    }
}

/// A certificate read from an import's input, with the row id it gets.
struct Incoming {
    id: CertificateId,
    parsed: ParsedCertificate,
}

/// Certificates whose issuer has not been seen yet that a streamed import
/// holds back, waiting for the issuer to appear later in the input. Beyond
/// this many, the held certificates are written without an issuer link.
pub const IMPORT_PENDING_LIMIT: usize = 2_000;

/// Cached issuer names an import stops remembering as "not stored" beyond.
const ISSUER_CACHE_LIMIT: usize = 10_000;

/// Bytes asked of an import's source per read.
const READ_SIZE: usize = 256 * 1024;

/// Longest PEM block (or DER certificate) an import accepts.
const MAX_BLOCK_BYTES: usize = 16 * 1024 * 1024;

/// Counts reported to [`ImportOptions::progress`] after each written chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ImportProgress {
    /// PEM blocks read from the input so far.
    pub blocks_read: u64,
    /// Certificates read from the input so far (repeats within it included).
    pub certificates_read: u64,
    /// Certificates written so far.
    pub imported: u64,
    /// Certificates found already stored so far.
    pub already_present: u64,
    /// Certificates held back until their issuer appears (or the input ends).
    pub pending: u64,
}

/// What a streamed import did: counts rather than rows, so its size does
/// not grow with the input's.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ImportSummary {
    /// Certificates written by this import.
    pub imported: u64,
    /// Certificates of the input clm already held in the import's scope
    /// (by SHA-256 fingerprint); nothing was written for them. A repeat of a
    /// certificate in a later chunk of the same input counts here too.
    pub already_present: u64,
    /// Imported certificates with oddities, as in [`ImportReport::flagged`].
    pub flagged: Vec<(CertificateId, Vec<String>)>,
    /// PEM blocks that hold no certificate and were left out.
    pub skipped: Vec<SkippedBlock>,
    /// PEM blocks read (0 for one DER certificate).
    pub blocks: u64,
    /// Certificates read, repeats included.
    pub certificates_read: u64,
}

/// Where a streamed import puts its certificates, and whom it tells.
#[derive(Clone, Copy, Default)]
pub struct ImportOptions<'a> {
    /// The tenant the certificates join; None: shared (global administrators
    /// only). Needs `certificates:import` there.
    pub organization_id: Option<OrganizationId>,
    /// The user responsible for the certificates.
    pub owner_user_id: Option<UserId>,
    /// Called after each written chunk.
    pub progress: Option<&'a (dyn Fn(ImportProgress) + Send + Sync)>,
}

impl std::fmt::Debug for ImportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("organization_id", &self.organization_id)
            .field("owner_user_id", &self.owner_user_id)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// A batch as stored: the rows written, and the rows another import had
/// stored first (this import's id -> the stored id).
struct WrittenBatch {
    imported: Vec<Certificate>,
    replaced: Vec<(CertificateId, CertificateId)>,
}

/// A possible issuer: a stored CA or a CA linked in the same round.
#[derive(Clone)]
struct Candidate {
    link: IssuerLink,
    subject_key_id: Option<String>,
    public_key_der: Vec<u8>,
}

impl Candidate {
    fn of(link: IssuerLink, ca: &ParsedCertificate) -> Self {
        Candidate {
            link,
            subject_key_id: ca.subject_key_id.clone(),
            public_key_der: ca.public_key_der.clone(),
        }
    }
}

/// Possible issuers by subject DN: the stored CAs the certificates being
/// linked name, and their own CAs. Only CAs are candidates, so only a CA's
/// link can decide the order in which rows must be written.
struct Candidates(HashMap<String, Vec<Candidate>>);

impl Candidates {
    fn new(stored: &HashMap<String, Vec<Candidate>>, linking: &[Incoming]) -> Self {
        let mut by_subject: HashMap<String, Vec<Candidate>> = HashMap::new();
        for certificate in linking {
            if let Some(known) = stored.get(&certificate.parsed.issuer_dn) {
                by_subject
                    .entry(certificate.parsed.issuer_dn.clone())
                    .or_insert_with(|| known.clone());
            }
        }
        for (index, ca) in linking.iter().enumerate().filter(|(_, c)| c.parsed.is_ca) {
            by_subject
                .entry(ca.parsed.subject_dn.clone())
                .or_default()
                .push(Candidate::of(IssuerLink::InBatch(index), &ca.parsed));
        }
        Candidates(by_subject)
    }
}

/// The kind an imported certificate is recorded as, from what it says it is.
fn imported_kind(parsed: &ParsedCertificate) -> CertificateKind {
    if parsed.is_ca {
        return if parsed.subject_dn == parsed.issuer_dn {
            CertificateKind::RootCa
        } else {
            CertificateKind::IntermediateCa
        };
    }
    let has = |purpose: &str| parsed.extended_key_usage.iter().any(|p| p == purpose);
    match (has("serverAuth"), has("clientAuth")) {
        (true, true) => CertificateKind::TlsServerClient,
        (true, false) => CertificateKind::TlsServer,
        (false, true) => CertificateKind::TlsClient,
        _ if has("codeSigning") => CertificateKind::CodeSigning,
        _ if has("emailProtection") => CertificateKind::Email,
        _ => CertificateKind::Imported,
    }
}

/// Finds the issuer of `linking[index]`: none for a self-signed
/// certificate, else the first candidate with the issuer's name, a matching
/// key identifier (when both sides have one) and a key that verifies the
/// signature.
fn find_issuer(linking: &[Incoming], index: usize, candidates: &Candidates) -> Linked {
    let certificate = &linking[index].parsed;
    if certificate.subject_dn == certificate.issuer_dn
        && verify_signed_by(certificate, &certificate.public_key_der).is_ok()
    {
        return Linked::Root;
    }
    candidates
        .0
        .get(certificate.issuer_dn.as_str())
        .and_then(|named| {
            named
                .iter()
                .filter(|c| c.link != IssuerLink::InBatch(index))
                .filter(
                    |c| match (&certificate.authority_key_id, &c.subject_key_id) {
                        (Some(aki), Some(ski)) => aki == ski,
                        _ => true,
                    },
                )
                .find(|c| verify_signed_by(certificate, &c.public_key_der).is_ok())
        })
        .map_or(Linked::Unknown, |c| Linked::Issuer(c.link))
}

/// The issuer of every certificate of `linking`, the signature checks
/// spread over the machine's cores (a bulk import verifies thousands).
fn link_issuers(linking: &[Incoming], candidates: &Candidates) -> Vec<Linked> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = linking.len().div_ceil(threads).max(64);
    let indices: Vec<usize> = (0..linking.len()).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = indices
            .chunks(per_thread)
            .map(|part| {
                let worker = scope.spawn(move || {
                    part.iter()
                        .map(|&index| find_issuer(linking, index, candidates))
                        .collect::<Vec<_>>()
                });
                (worker, part.len())
            })
            .collect();
        // A worker that panicked links nothing rather than failing the import.
        workers
            .into_iter()
            .flat_map(|(worker, len)| worker.join().unwrap_or_else(|_| vec![Linked::Unknown; len]))
            .collect()
    })
}

/// Inputs at least this large are parsed on several threads.
const PARALLEL_PARSE_BYTES: usize = 256 * 1024;

/// [`read_bundle`] with a large PEM piece cut at block boundaries into one
/// part per core, each parsed on its own thread. Any error parses the
/// piece again in one part, so the error is exactly the serial parse's.
fn parse_bundle(data: &[u8]) -> Result<ParsedBundle> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 || data.len() < PARALLEL_PARSE_BYTES {
        return read_bundle(data);
    }
    let next_begin = |from: usize| {
        data.get(from..)
            .and_then(|rest| rest.windows(BEGIN.len()).position(|w| w == BEGIN))
            .map(|at| from.saturating_add(at))
    };
    let mut cuts = vec![0];
    for t in 1..threads {
        match next_begin(
            data.len()
                .saturating_mul(t)
                .checked_div(threads)
                .unwrap_or(0),
        ) {
            Some(at) if cuts.last().is_some_and(|&last| at > last) => cuts.push(at),
            _ => {}
        }
    }
    cuts.push(data.len());
    if cuts.len() < 3 {
        return read_bundle(data);
    }
    let pieces: Vec<Result<ParsedBundle>> = std::thread::scope(|scope| {
        let workers: Vec<_> = cuts
            .windows(2)
            .map(|w| {
                let piece = &data[w[0]..w[1]];
                scope.spawn(move || read_bundle(piece))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(Error::Internal("certificate parser failed".into())))
            })
            .collect()
    });
    let mut whole = ParsedBundle::default();
    for piece in pieces {
        match piece {
            Ok(mut piece) => {
                // A piece numbers its blocks from 1; the report numbers the input's.
                for skipped in &mut piece.skipped {
                    skipped.block = skipped.block.saturating_add(whole.blocks);
                }
                whole.certificates.append(&mut piece.certificates);
                whole.skipped.append(&mut piece.skipped);
                whole.blocks = whole.blocks.saturating_add(piece.blocks);
            }
            Err(_) => return read_bundle(data),
        }
    }
    Ok(whole)
}

/// Depth of each certificate in the issuer tree of the certificates linked
/// together (0 = its issuer is stored or unknown), so parents are inserted
/// before children.
fn depths(links: &[Option<IssuerLink>]) -> Vec<usize> {
    (0..links.len())
        .map(|start| {
            let mut depth: usize = 0;
            let mut at = start;
            while let Some(IssuerLink::InBatch(parent)) = links[at] {
                depth = depth.saturating_add(1);
                at = parent;
                if depth > links.len() {
                    break; // a cycle (cross-signed pair); order does not matter then
                }
            }
            depth
        })
        .collect()
}

/// Byte offset just past the END line of each complete PEM block of
/// `buffer`, at most `max`.
fn block_ends(buffer: &[u8], max: usize) -> Vec<usize> {
    const END: &[u8] = b"-----END ";
    let mut ends = Vec::new();
    let mut from = 0;
    while ends.len() < max {
        let Some(at) = find_bytes(&buffer[from..], END) else {
            break;
        };
        let label_at = from.saturating_add(at).saturating_add(END.len());
        let Some(close) = find_bytes(&buffer[label_at..], b"-----") else {
            break;
        };
        from = label_at.saturating_add(close).saturating_add(5);
        ends.push(from);
    }
    ends
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A run of whole PEM blocks cut from an import's input.
struct Piece {
    bytes: Vec<u8>,
    /// Byte offset of the piece in the input.
    offset: u64,
    /// PEM blocks of the input before this piece.
    blocks_before: usize,
    /// Certificates of the input before this piece.
    certificates_before: u64,
}

/// An import's input, read a bounded piece at a time and cut after whole
/// PEM blocks, so no more than a chunk of it is ever held.
struct BlockReader<R> {
    source: R,
    buffer: Vec<u8>,
    at_end: bool,
    /// Bytes of the input before `buffer`.
    offset: u64,
    blocks: usize,
    certificates: u64,
}

impl<R: std::io::Read> BlockReader<R> {
    fn new(source: R) -> Self {
        BlockReader {
            source,
            buffer: Vec::new(),
            at_end: false,
            offset: 0,
            blocks: 0,
            certificates: 0,
        }
    }

    /// The next piece of up to `max_blocks` whole PEM blocks (the rest of
    /// the input at its end), or None once all of it has been handed out.
    fn next_piece(&mut self, max_blocks: usize) -> Result<Option<Piece>> {
        // Block ends found so far; each pass scans only past the last one.
        let mut ends: Vec<usize> = Vec::new();
        loop {
            let from = ends.last().copied().unwrap_or(0);
            let more = block_ends(&self.buffer[from..], max_blocks.saturating_sub(ends.len()));
            ends.extend(more.into_iter().map(|end| end.saturating_add(from)));
            let cut = match ends.last() {
                Some(&last) if ends.len() >= max_blocks => Some(last),
                _ if self.at_end => Some(self.buffer.len()),
                _ => None,
            };
            if let Some(cut) = cut {
                if cut == 0 {
                    return Ok(None);
                }
                let rest = self.buffer.split_off(cut);
                let bytes = std::mem::replace(&mut self.buffer, rest);
                let piece = Piece {
                    bytes,
                    offset: self.offset,
                    blocks_before: self.blocks,
                    certificates_before: self.certificates,
                };
                self.offset = self.offset.saturating_add(cut as u64);
                return Ok(Some(piece));
            }
            let since_last_block = self
                .buffer
                .len()
                .saturating_sub(ends.last().copied().unwrap_or(0));
            if since_last_block > MAX_BLOCK_BYTES {
                return Err(Error::invalid(
                    "data",
                    format!(
                        "no PEM END line within {} MiB after byte {} of the input",
                        MAX_BLOCK_BYTES / (1024 * 1024),
                        self.offset
                            .saturating_add(ends.last().copied().unwrap_or(0) as u64)
                    ),
                ));
            }
            let read = (&mut self.source)
                .take(READ_SIZE as u64)
                .read_to_end(&mut self.buffer)
                .map_err(|err| {
                    Error::invalid(
                        "data",
                        format!(
                            "reading the input failed after byte {}: {err}",
                            self.offset.saturating_add(self.buffer.len() as u64)
                        ),
                    )
                })?;
            if read == 0 {
                self.at_end = true;
            }
        }
    }

    /// Parses `piece` (PEM blocks, or the whole input as one DER
    /// certificate), numbering skipped blocks and errors in the input's
    /// terms, and counts what it held.
    fn parse(&mut self, piece: &Piece) -> Result<ParsedBundle> {
        if !crate::crypto::pem::looks_like_pem(&piece.bytes) {
            if piece.offset > 0 {
                // Text after the last block.
                return Ok(ParsedBundle::default());
            }
            let certificate = crate::crypto::parse_certificate_der(&piece.bytes)?;
            self.certificates = 1;
            return Ok(ParsedBundle {
                certificates: vec![certificate],
                ..ParsedBundle::default()
            });
        }
        let mut bundle = parse_bundle(&piece.bytes).map_err(|err| locate_error(piece, err))?;
        for skipped in &mut bundle.skipped {
            skipped.block = skipped.block.saturating_add(piece.blocks_before);
        }
        self.blocks = self.blocks.saturating_add(bundle.blocks);
        self.certificates = self
            .certificates
            .saturating_add(bundle.certificates.len() as u64);
        Ok(bundle)
    }
}

/// The error of a piece that failed to parse, naming the failing block's
/// position in the whole input (block number, certificate number, byte).
fn locate_error(piece: &Piece, err: Error) -> Error {
    let mut start = 0;
    let mut blocks = piece.blocks_before;
    let mut certificates = piece.certificates_before;
    for end in block_ends(&piece.bytes, usize::MAX)
        .into_iter()
        .chain([piece.bytes.len()])
    {
        if end <= start {
            continue;
        }
        let part = &piece.bytes[start..end];
        if !crate::crypto::pem::looks_like_pem(part) {
            start = end;
            continue;
        }
        match read_bundle(part) {
            Ok(parsed) => {
                blocks = blocks.saturating_add(parsed.blocks);
                certificates = certificates.saturating_add(parsed.certificates.len() as u64);
            }
            Err(Error::InvalidInput { field, reason, .. }) => {
                let at = piece
                    .offset
                    .saturating_add(start as u64)
                    .saturating_add(find_bytes(part, b"-----BEGIN ").unwrap_or(0) as u64);
                return Error::invalid(
                    field,
                    format!(
                        "PEM block {} of the input (certificate {}, at byte {at}): {reason}",
                        blocks.saturating_add(1),
                        certificates.saturating_add(1)
                    ),
                );
            }
            Err(other) => return other,
        }
        start = end;
    }
    err
}

/// What one chunk of an import brings to be written.
struct PreparedChunk {
    /// Rows in write order (issuers first), at most [`IMPORT_BATCH`] each.
    batches: Vec<Vec<Certificate>>,
    flagged: Vec<(CertificateId, Vec<String>)>,
    already_present: Vec<CertificateId>,
    skipped: Vec<SkippedBlock>,
    blocks_read: u64,
    certificates_read: u64,
    pending: u64,
}

/// The reading side of a streamed import: the input, the issuers met so far
/// and the certificates held back until their issuer appears.
struct ChunkReader<R> {
    reader: Option<BlockReader<R>>,
    /// Possible issuers by subject DN: stored CAs (parsed once per import)
    /// and the CAs this import writes; an empty list is a name with none.
    issuers: HashMap<String, Vec<Candidate>>,
    pending: Vec<Incoming>,
    ownership: Ownership,
    finished: bool,
}

/// The writing side of a streamed import.
struct ChunkWriter<'a> {
    actor: &'a Actor,
    organization_id: Option<OrganizationId>,
    /// The key of a single-certificate import.
    key: Option<&'a KeyPair>,
    /// Rows a concurrent import stored first: this import's id -> the stored id.
    replaced: HashMap<CertificateId, CertificateId>,
    summary: ImportSummary,
    /// The rows themselves, for [`Clm::import_certificates`].
    report: Option<ImportReport>,
    progress: Option<&'a (dyn Fn(ImportProgress) + Send + Sync)>,
}

/// What linking decided for the certificates of one round.
struct LinkedRound {
    /// Rows to write now, issuers first.
    rows: Vec<Certificate>,
    flagged: Vec<(CertificateId, Vec<String>)>,
    /// Certificates whose issuer (or whose issuer's issuer) is unknown yet.
    held: Vec<Incoming>,
    /// The CAs among `rows`, as issuers for later rounds.
    new_issuers: Vec<(String, Candidate)>,
}

/// Links `linking` (certificates held back before, then a chunk's new
/// ones), holds back those whose issuer has not appeared, unless
/// `release_all` (the input ended) or more than [`IMPORT_PENDING_LIMIT`]
/// would be held, and turns the rest into rows.
fn link_round(
    linking: Vec<Incoming>,
    candidates: &Candidates,
    release_all: bool,
    ownership: &Ownership,
) -> LinkedRound {
    let linked = link_issuers(&linking, candidates);
    let links: Vec<Option<IssuerLink>> = linked.iter().map(|l| l.link()).collect();
    let depth = depths(&links);
    let mut order: Vec<usize> = (0..linking.len()).collect();
    order.sort_by_key(|&i| (!linking[i].parsed.is_ca, depth[i]));
    let mut held = vec![false; linking.len()];
    if !release_all {
        // Parents come first in `order`, so a parent's decision is known.
        for &i in &order {
            held[i] = match linked[i] {
                Linked::Unknown => true,
                Linked::Issuer(IssuerLink::InBatch(parent)) => held[parent],
                Linked::Root | Linked::Issuer(IssuerLink::Stored(_)) => false,
            };
        }
        if held.iter().filter(|h| **h).count() > IMPORT_PENDING_LIMIT {
            held.fill(false);
        }
    }
    let mut round = LinkedRound {
        rows: Vec::with_capacity(linking.len()),
        flagged: Vec::new(),
        held: Vec::new(),
        new_issuers: Vec::new(),
    };
    for &i in order.iter().filter(|&&i| !held[i]) {
        let Incoming { id, parsed } = &linking[i];
        let issuer = match links[i] {
            Some(IssuerLink::Stored(stored)) => Some(stored),
            Some(IssuerLink::InBatch(parent)) => linking.get(parent).map(|p| p.id),
            None => None,
        };
        if !parsed.flags.is_empty() {
            round.flagged.push((*id, parsed.flags.clone()));
        }
        if parsed.is_ca {
            round.new_issuers.push((
                parsed.subject_dn.clone(),
                Candidate::of(IssuerLink::Stored(*id), parsed),
            ));
        }
        round.rows.push(certificate_row_with_id(
            *id,
            parsed,
            imported_kind(parsed),
            CertificateSource::Imported,
            issuer,
            ownership,
        ));
    }
    round.held = linking
        .into_iter()
        .zip(held)
        .filter_map(|(certificate, held)| held.then_some(certificate))
        .collect();
    round
}

/// A parse error met after some chunks were written, saying what stands.
fn stopped_at(err: Error, summary: &ImportSummary) -> Error {
    match err {
        Error::InvalidInput {
            field,
            reason,
            source,
        } => {
            let reason = if summary.imported == 0 {
                format!("{reason}; nothing was written")
            } else {
                format!(
                    "{reason}; {} certificates read before it were written and stay \
                     (import the corrected input again to complete the rest)",
                    summary.imported
                )
            };
            Error::InvalidInput {
                field,
                reason,
                source,
            }
        }
        other => other,
    }
}

fn certificate_search_filter(search: &CertificateSearch) -> Result<CertificateFilter> {
    Ok(CertificateFilter {
        common_name: search.common_name.clone(),
        san: search.san.clone(),
        serial_number: search
            .serial_number
            .as_deref()
            .map(|serial| serial_from_text(serial, "serial_number"))
            .transpose()?,
        issuer_certificate_id: search.issuer_certificate_id,
        status: search.status.clone(),
        expires_before: search.expires_before,
        expires_after: search.expires_after,
        owner_user_id: search.owner_user_id,
        organization_ids: search.organization_id.map(|org| vec![org]),
        is_ca: search.is_ca,
        with_pem: search.with_pem,
    })
}

impl Clm {
    /// Imports certificates, deduplicated by SHA-256 fingerprint and linked
    /// to their issuer when it is known (stored, or in the same input).
    /// Both stay within the import's organization: a certificate another
    /// organization holds is neither reported nor reused (each organization,
    /// and the shared scope, holds its own row), and issuers are the
    /// organization's own CAs and shared ones.
    ///
    /// The input is read as a stream (see
    /// [`Clm::import_certificates_from_reader`]): chunks of [`IMPORT_BATCH`]
    /// PEM blocks are parsed, checked and written one after another, each
    /// batch one secure transaction with one audit row. Bad input in the
    /// first chunk writes nothing; a bad block later stops the import there,
    /// the chunks before it stand, and the error names the block and the
    /// count written. Importing the same input again completes the rest
    /// without duplicates. The report lists every row written, so its size
    /// follows the input's; the reader and file forms report counts only.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn import_certificates(
        &self,
        actor: &Actor,
        request: ImportRequest,
    ) -> Result<ImportReport> {
        let ImportRequest {
            data,
            private_key_pem,
            organization_id,
            owner_user_id,
        } = request;
        self.authorize(
            actor,
            Access::new("certificates", "import").in_org(organization_id),
        )
        .await?;
        if data.is_empty() {
            return Err(Error::invalid("data", "is empty"));
        }
        self.check_ownership(organization_id, owner_user_id).await?;
        let (data, key) = match private_key_pem {
            None => (data, None),
            Some(pem) => {
                let (data, parsed) = self
                    .run_cpu(move || {
                        let parsed = parse_certificate_bundle(&data)?;
                        Ok((data, parsed))
                    })
                    .await?;
                let key = matching_key(&parsed.certificates, &pem)?;
                self.refuse_compromised_key(&key.public_key_der()).await?;
                (data, Some(key))
            }
        };
        let options = ImportOptions {
            organization_id,
            owner_user_id,
            progress: None,
        };
        let (_, report) = self
            .import_stream(
                actor,
                std::io::Cursor::new(data),
                options,
                key.as_ref(),
                Some(ImportReport::default()),
            )
            .await?;
        report.ok_or_else(|| Error::Internal("an import lost its report".into()))
    }

    /// Imports the certificates a reader yields (one PEM certificate, a PEM
    /// bundle of any size, or one DER certificate), in bounded memory: the
    /// input is read, parsed, checked and written a chunk of
    /// [`IMPORT_BATCH`] PEM blocks at a time (parsing the next chunk while
    /// the last one is written), and [`ImportOptions::progress`] hears after
    /// each written chunk. Deduplication, issuer links, signature checks and
    /// flags are those of [`Clm::import_certificates`].
    ///
    /// A certificate whose issuer comes later in the input is held back
    /// (not written) until its issuer appears, so it is linked as if the
    /// input were in order; at most [`IMPORT_PENDING_LIMIT`] are held: past
    /// that, or at the end of the input, they are written, those whose
    /// issuer never appeared without a link (as any certificate of an
    /// unknown issuer).
    ///
    /// A bad block (damaged PEM, a certificate that does not parse) stops
    /// the import: the error names the block (its number, the certificate's
    /// number and its byte offset) and how many certificates the chunks
    /// before it wrote; those stand, and importing the corrected input
    /// again completes the rest.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn import_certificates_from_reader<R>(
        &self,
        actor: &Actor,
        source: R,
        options: ImportOptions<'_>,
    ) -> Result<ImportSummary>
    where
        R: std::io::Read + Send + 'static,
    {
        self.authorize(
            actor,
            Access::new("certificates", "import").in_org(options.organization_id),
        )
        .await?;
        self.check_ownership(options.organization_id, options.owner_user_id)
            .await?;
        let (summary, _) = self
            .import_stream(actor, source, options, None, None)
            .await?;
        Ok(summary)
    }

    /// [`Clm::import_certificates_from_reader`] on a file, read by this
    /// process (so the path is the host's; needs `certificates:import`
    /// before the file is opened).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn import_certificates_from_file(
        &self,
        actor: &Actor,
        path: impl AsRef<std::path::Path>,
        options: ImportOptions<'_>,
    ) -> Result<ImportSummary> {
        self.authorize(
            actor,
            Access::new("certificates", "import").in_org(options.organization_id),
        )
        .await?;
        self.check_ownership(options.organization_id, options.owner_user_id)
            .await?;
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|err| {
            Error::invalid("path", format!("cannot open {}: {err}", path.display()))
        })?;
        let (summary, _) = self.import_stream(actor, file, options, None, None).await?;
        Ok(summary)
    }

    /// The streamed import behind every import entry: reads, links and
    /// writes chunk by chunk, the next chunk read and linked while the last
    /// one is written. `report` (when given) collects the rows written.
    async fn import_stream<R>(
        &self,
        actor: &Actor,
        source: R,
        options: ImportOptions<'_>,
        key: Option<&KeyPair>,
        report: Option<ImportReport>,
    ) -> Result<(ImportSummary, Option<ImportReport>)>
    where
        R: std::io::Read + Send + 'static,
    {
        let mut reader = ChunkReader {
            reader: Some(BlockReader::new(source)),
            issuers: HashMap::new(),
            pending: Vec::new(),
            ownership: Ownership {
                owner_user_id: options.owner_user_id,
                organization_id: options.organization_id,
                ..Ownership::default()
            },
            finished: false,
        };
        let mut writer = ChunkWriter {
            actor,
            organization_id: options.organization_id,
            key,
            replaced: HashMap::new(),
            summary: ImportSummary::default(),
            report,
            progress: options.progress,
        };
        let mut next = self.read_chunk(&mut reader).await;
        loop {
            let chunk = match next {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(err) => return Err(stopped_at(err, &writer.summary)),
            };
            let (written, following) = futures::join!(
                self.write_chunk(&mut writer, chunk),
                self.read_chunk(&mut reader)
            );
            written?;
            next = following;
            // Between chunks none of the import's own reads is running, so
            // a log grown past its bound can be truncated (`Pool::bound_wal`).
            let databases = self.databases();
            databases.secure.bound_wal().await;
            databases.core.bound_wal().await;
        }
        if writer.summary.certificates_read == 0 {
            return Err(Error::invalid(
                "certificate",
                "PEM holds no CERTIFICATE block",
            ));
        }
        Ok((writer.summary, writer.report))
    }

    /// Reads, parses, deduplicates and links the next chunk; None once the
    /// input has ended and nothing is held back.
    async fn read_chunk<R>(&self, state: &mut ChunkReader<R>) -> Result<Option<PreparedChunk>>
    where
        R: std::io::Read + Send + 'static,
    {
        if state.finished && state.pending.is_empty() {
            return Ok(None);
        }
        let mut bundle = ParsedBundle::default();
        if !state.finished {
            let mut reader = state
                .reader
                .take()
                .ok_or_else(|| Error::Internal("an import lost its input".into()))?;
            let (reader, parsed) = self
                .run_cpu(move || {
                    let parsed = match reader.next_piece(IMPORT_BATCH)? {
                        Some(piece) => Some(reader.parse(&piece)?),
                        None => None,
                    };
                    Ok((reader, parsed))
                })
                .await?;
            state.reader = Some(reader);
            match parsed {
                Some(parsed) => bundle = parsed,
                None => state.finished = true,
            }
        }
        let (blocks_read, certificates_read) = state
            .reader
            .as_ref()
            .map_or((0, 0), |reader| (reader.blocks as u64, reader.certificates));
        let organization_id = state.ownership.organization_id;

        // Drop repeats within the chunk and of the certificates held back,
        // then what is already stored.
        let mut seen: HashSet<String> = state
            .pending
            .iter()
            .map(|p| p.parsed.fingerprint_sha256.clone())
            .collect();
        let parsed: Vec<ParsedCertificate> = bundle
            .certificates
            .into_iter()
            .filter(|p| seen.insert(p.fingerprint_sha256.clone()))
            .collect();
        let stored: HashMap<String, CertificateId> = if parsed.is_empty() {
            HashMap::new()
        } else {
            let fingerprints: Vec<String> = parsed
                .iter()
                .map(|p| p.fingerprint_sha256.clone())
                .collect();
            let mut conn = self.databases().secure.acquire().await?;
            certificates::find_by_fingerprints(&mut conn.conn(), organization_id, &fingerprints)
                .await?
                .into_iter()
                .collect()
        };
        let mut already_present = Vec::new();
        let mut fresh = Vec::with_capacity(parsed.len());
        for certificate in parsed {
            match stored.get(&certificate.fingerprint_sha256) {
                Some(id) => already_present.push(*id),
                None => fresh.push(certificate),
            }
        }
        if !fresh.is_empty() {
            flag_compromised_keys(self, &mut fresh).await?;
        }
        let mut linking = std::mem::take(&mut state.pending);
        linking.extend(fresh.into_iter().map(|parsed| Incoming {
            id: CertificateId::new(),
            parsed,
        }));
        self.load_issuers(&mut state.issuers, &linking, organization_id)
            .await?;
        let candidates = Candidates::new(&state.issuers, &linking);
        let (release_all, ownership) = (state.finished, state.ownership.clone());
        let round = self
            .run_cpu(move || Ok(link_round(linking, &candidates, release_all, &ownership)))
            .await?;
        for (subject, issuer) in round.new_issuers {
            state.issuers.entry(subject).or_default().push(issuer);
        }
        state.pending = round.held;
        let mut batches = Vec::new();
        let mut rows = round.rows.into_iter().peekable();
        while rows.peek().is_some() {
            batches.push(rows.by_ref().take(IMPORT_BATCH).collect());
        }
        Ok(Some(PreparedChunk {
            batches,
            flagged: round.flagged,
            already_present,
            skipped: bundle.skipped,
            blocks_read,
            certificates_read,
            pending: state.pending.len() as u64,
        }))
    }

    /// Adds to `issuers` the stored CAs named as issuer by `linking` that
    /// it does not know yet (each parsed once per import).
    async fn load_issuers(
        &self,
        issuers: &mut HashMap<String, Vec<Candidate>>,
        linking: &[Incoming],
        organization_id: Option<OrganizationId>,
    ) -> Result<()> {
        let missing: Vec<String> = linking
            .iter()
            .map(|c| &c.parsed.issuer_dn)
            .filter(|dn| !issuers.contains_key(dn.as_str()))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if issuers.len() > ISSUER_CACHE_LIMIT {
            // Names with no stored CA are asked again when met again; the
            // CAs this import wrote stay.
            issuers.retain(|_, known| !known.is_empty());
        }
        for (id, ca) in self.stored_issuers(&missing, organization_id).await? {
            issuers
                .entry(ca.subject_dn.clone())
                .or_default()
                .push(Candidate::of(IssuerLink::Stored(id), &ca));
        }
        for subject in missing {
            issuers.entry(subject).or_default();
        }
        Ok(())
    }

    /// Writes a chunk's batches in order, then reports progress.
    async fn write_chunk(&self, writer: &mut ChunkWriter<'_>, chunk: PreparedChunk) -> Result<()> {
        let PreparedChunk {
            batches,
            mut flagged,
            already_present,
            skipped,
            blocks_read,
            certificates_read,
            pending,
        } = chunk;
        if let (Some(key), Some(id)) = (writer.key, already_present.first()) {
            self.attach_private_key(writer.actor, *id, key).await?;
        }
        let summary = &mut writer.summary;
        summary.blocks = blocks_read;
        summary.certificates_read = certificates_read;
        summary.already_present = summary
            .already_present
            .saturating_add(already_present.len() as u64);
        if let Some(report) = &mut writer.report {
            report.already_present.extend(&already_present);
            report.skipped.extend(skipped.iter().cloned());
        }
        summary.skipped.extend(skipped);
        for rows in batches {
            let private_key = match (writer.key, rows.as_slice()) {
                (Some(key), [single]) => Some(self.seal_private_key(single.id, key)?),
                _ => None,
            };
            let written = self
                .write_linked_batch(
                    writer.actor,
                    rows,
                    private_key.as_ref(),
                    writer.organization_id,
                    &writer.replaced,
                )
                .await?;
            let summary = &mut writer.summary;
            summary.imported = summary
                .imported
                .saturating_add(written.imported.len() as u64);
            summary.already_present = summary
                .already_present
                .saturating_add(written.replaced.len() as u64);
            if !written.replaced.is_empty() {
                let mine: HashSet<CertificateId> =
                    written.replaced.iter().map(|(mine, _)| *mine).collect();
                flagged.retain(|(id, _)| !mine.contains(id));
            }
            if let Some(report) = &mut writer.report {
                report
                    .already_present
                    .extend(written.replaced.iter().map(|(_, stored)| *stored));
                report.imported.extend(written.imported);
            }
            writer.replaced.extend(written.replaced);
        }
        if let Some(report) = &mut writer.report {
            report.flagged.extend(flagged.iter().cloned());
        }
        writer.summary.flagged.extend(flagged);
        if let Some(progress) = writer.progress {
            progress(ImportProgress {
                blocks_read,
                certificates_read,
                imported: writer.summary.imported,
                already_present: writer.summary.already_present,
                pending,
            });
        }
        Ok(())
    }
    /// The owner and organization must exist: core's metadata refers to them,
    /// and a failure there would leave certificates without metadata.
    async fn check_ownership(
        &self,
        organization_id: Option<OrganizationId>,
        owner_user_id: Option<UserId>,
    ) -> Result<()> {
        let mut conn = self.databases().core.acquire().await?;
        if let Some(org) = organization_id {
            store::get::<crate::store::organizations::Organizations>(&mut conn.conn(), org, false)
                .await
                .map_err(|err| missing(err, "organization_id", format!("no organization {org}")))?;
        }
        if let Some(user) = owner_user_id {
            store::get::<crate::store::users::Users>(&mut conn.conn(), user, false)
                .await
                .map_err(|err| missing(err, "owner_user_id", format!("no user {user}")))?;
        }
        Ok(())
    }

    /// One import batch: certificates, the key (single imports) and one audit
    /// row in a secure transaction, metadata and its audit row in core.
    async fn write_import_batch(
        &self,
        actor: &Actor,
        rows: &[Certificate],
        private_key: Option<&crate::model::PrivateKeyRecord>,
        organization_id: Option<OrganizationId>,
    ) -> Result<()> {
        let mut entry = AuditEntry::new("certificates.imported", "import")
            .org(organization_id)
            .details(json!({
                "count": rows.len(),
                "certificate_ids": rows.iter().map(|r| r.id).collect::<Vec<_>>(),
                "fingerprints": rows.iter().map(|r| r.fingerprint_sha256.as_str()).collect::<Vec<_>>(),
                "with_private_key": private_key.is_some(),
            }));
        if let [single] = rows {
            entry = entry.resource("certificate", single.id);
        }
        let mut entries = vec![(actor, entry)];
        let key = match (private_key, rows) {
            (Some(key), [single]) => {
                entries.push((
                    actor,
                    AuditEntry::new("private_key.imported", "import")
                        .resource("certificate", single.id)
                        .org(organization_id)
                        .details(json!({"certificate_id": single.certificate_id, "key_algorithm": key.key_algorithm})),
                ));
                Some(key)
            }
            _ => None,
        };
        let secure = |mut tx: crate::db::Tx| async move {
            certificates::insert_many(&mut tx.conn(), rows).await?;
            if let Some(key) = key {
                let mut key = [key.clone()];
                self.keep_off_retired_keys(&mut tx.conn(), &mut key).await?;
                private_keys::insert(&mut tx.conn(), &key[0]).await?;
            }
            append_many(&mut tx.conn(), AuditLogKind::Secure, entries).await?;
            Ok(tx)
        };
        let core = |mut tx: crate::db::Tx| async move {
            write_metadata_rows(&mut tx.conn(), actor, rows).await?;
            Ok(tx)
        };
        self.commit_secure_then_core(secure, core, &mut None)
            .await
            .map_err(|failure| match failure {
                HalfWritten::Nothing(err) => err,
                HalfWritten::SecureOnly(err) => Error::database(format!(
                    "certificates were imported but their metadata was not ({err}); run reconcile to repair"
                )),
            })
    }

    /// Writes a linked batch, its issuers first mapped through `replaced`.
    /// If the batch hits the fingerprint constraint (another import stored
    /// some of these certificates meanwhile), those rows are dropped,
    /// reported as already present, and the rest is written once more.
    async fn write_linked_batch(
        &self,
        actor: &Actor,
        mut rows: Vec<Certificate>,
        private_key: Option<&crate::model::PrivateKeyRecord>,
        organization_id: Option<OrganizationId>,
        replaced: &HashMap<CertificateId, CertificateId>,
    ) -> Result<WrittenBatch> {
        for row in &mut rows {
            if let Some(parent) = row.issuer_certificate_id.and_then(|p| replaced.get(&p)) {
                row.issuer_certificate_id = Some(*parent);
            }
        }
        match self
            .write_import_batch(actor, &rows, private_key, organization_id)
            .await
        {
            Err(Error::AlreadyExists { .. }) => {}
            other => {
                other?;
                return Ok(WrittenBatch {
                    imported: rows,
                    replaced: Vec::new(),
                });
            }
        }
        let fingerprints: Vec<String> = rows.iter().map(|r| r.fingerprint_sha256.clone()).collect();
        let stored: HashMap<String, CertificateId> = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::find_by_fingerprints(&mut conn.conn(), organization_id, &fingerprints)
                .await?
                .into_iter()
                .collect()
        };
        let mut written = WrittenBatch {
            imported: Vec::with_capacity(rows.len()),
            replaced: Vec::new(),
        };
        let mut replaced_here: HashMap<CertificateId, CertificateId> = HashMap::new();
        for mut row in rows {
            if let Some(id) = stored.get(&row.fingerprint_sha256) {
                replaced_here.insert(row.id, *id);
                written.replaced.push((row.id, *id));
                continue;
            }
            if let Some(parent) = row
                .issuer_certificate_id
                .and_then(|p| replaced_here.get(&p))
            {
                row.issuer_certificate_id = Some(*parent);
            }
            written.imported.push(row);
        }
        if !written.imported.is_empty() {
            self.write_import_batch(actor, &written.imported, None, organization_id)
                .await?;
        }
        Ok(written)
    }

    /// Stored CA certificates with one of `subjects` that an import into
    /// `organization_id` may link to (shared CAs and the organization's
    /// own), parsed.
    async fn stored_issuers(
        &self,
        subjects: &[String],
        organization_id: Option<OrganizationId>,
    ) -> Result<Vec<(CertificateId, ParsedCertificate)>> {
        let rows = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::find_cas_by_subjects(&mut conn.conn(), organization_id, subjects).await?
        };
        let mut issuers = Vec::with_capacity(rows.len());
        for row in rows {
            // A stored row that no longer parses cannot verify anything; skip it.
            if let Some(parsed) = parse_certificates(row.certificate_pem.as_bytes())
                .ok()
                .and_then(|mut all| all.pop())
            {
                issuers.push((row.id, parsed));
            }
        }
        Ok(issuers)
    }

    /// Stores `key` for an already stored certificate that has none. A key
    /// already stored is left as it is.
    async fn attach_private_key(
        &self,
        actor: &Actor,
        id: CertificateId,
        key: &KeyPair,
    ) -> Result<()> {
        let row = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<Certificates>(&mut conn.conn(), id, true).await?
        };
        self.authorize_visible(
            actor,
            Access::new("certificates", "import").in_org(row.organization_id),
            "certificate",
            id,
        )
        .await?;
        let mut record = [self.seal_private_key(id, key)?];
        let mut tx = self.databases().secure.begin().await?;
        match private_keys::get_by_certificate(&mut tx.conn(), id).await {
            Ok(_) => return Ok(()),
            Err(Error::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
        self.keep_off_retired_keys(&mut tx.conn(), &mut record)
            .await?;
        let [record] = record;
        private_keys::insert(&mut tx.conn(), &record).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("private_key.imported", "import")
                .resource("certificate", id)
                .org(row.organization_id)
                .details(json!({"certificate_id": row.certificate_id, "key_algorithm": record.key_algorithm})),
        )
        .await?;
        tx.commit().await?;
        self.issuers().forget(id);
        Ok(())
    }

    /// One certificate by id (with its PEM). Outside the actor's
    /// organizations it does not exist.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_certificate(&self, actor: &Actor, id: CertificateId) -> Result<Certificate> {
        let row = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<Certificates>(&mut conn.conn(), id, false).await?
        };
        self.authorize_visible(
            actor,
            Access::new("certificates", "read").in_org(row.organization_id),
            "certificate",
            id,
        )
        .await?;
        Ok(row)
    }

    /// One certificate by its business key (`cert_...`).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_certificate_by_certificate_id(
        &self,
        actor: &Actor,
        certificate_id: &str,
    ) -> Result<Certificate> {
        let row = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::get_by_certificate_id(&mut conn.conn(), certificate_id).await?
        };
        self.authorize_visible(
            actor,
            Access::new("certificates", "read").in_org(row.organization_id),
            "certificate",
            certificate_id,
        )
        .await?;
        Ok(row)
    }

    /// The certificate's PEM.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_certificate_pem(&self, actor: &Actor, id: CertificateId) -> Result<String> {
        Ok(self.get_certificate(actor, id).await?.certificate_pem)
    }

    /// Searches the inventory in expiry order, within the actor's
    /// organizations (plus shared certificates).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn search_certificates(
        &self,
        actor: &Actor,
        search: &CertificateSearch,
        page: &PageRequest,
    ) -> Result<Page<Certificate>> {
        self.authorize(actor, Access::new("certificates", "read"))
            .await?;
        let filter = certificate_search_filter(search)?;
        let visible = actor.organizations_where("certificates", "read");
        let mut conn = self.databases().acquire_secure_read().await?;
        certificates::search_visible(&mut conn.conn(), &filter, visible.as_ref(), page).await
    }

    /// The certificate and its issuers up to the root (leaf first), as far as
    /// clm knows them and the actor may see them.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn certificate_chain(
        &self,
        actor: &Actor,
        id: CertificateId,
    ) -> Result<Vec<Certificate>> {
        let leaf = self.get_certificate(actor, id).await?;
        let issuers = self.issuers_within_reach(actor, &leaf).await?;
        let mut chain = vec![leaf];
        chain.extend(issuers);
        Ok(chain)
    }

    /// The issuers of `leaf` that clm holds and `actor` reaches, nearest
    /// first: the one chain walk (`certificate_chain`, the exports). Stops
    /// at a root, an unknown or deleted issuer, one out of the actor's
    /// reach, a loop, or `MAX_CHAIN` certificates with the leaf.
    pub(crate) async fn issuers_within_reach(
        &self,
        actor: &Actor,
        leaf: &Certificate,
    ) -> Result<Vec<Certificate>> {
        let mut issuers: Vec<Certificate> = Vec::new();
        let mut conn = self.databases().secure.acquire().await?;
        let mut next = leaf.issuer_certificate_id;
        while let Some(id) = next {
            if issuers.len().saturating_add(1) >= MAX_CHAIN
                || id == leaf.id
                || issuers.iter().any(|c| c.id == id)
            {
                break;
            }
            let issuer = match store::get::<Certificates>(&mut conn.conn(), id, false).await {
                Ok(row) => row,
                Err(Error::NotFound { .. }) => break,
                Err(other) => return Err(other),
            };
            if !actor.reaches(issuer.organization_id) {
                break;
            }
            next = issuer.issuer_certificate_id;
            issuers.push(issuer);
        }
        Ok(issuers)
    }

    /// Soft-deletes a certificate (and its metadata). Revocations stand: a
    /// deleted certificate stays on its issuer's CRL.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn delete_certificate(&self, actor: &Actor, id: CertificateId) -> Result<()> {
        let row = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<Certificates>(&mut conn.conn(), id, false).await?
        };
        self.authorize_visible(
            actor,
            Access::new("certificates", "delete").in_org(row.organization_id),
            "certificate",
            id,
        )
        .await?;
        let mut tx = self.databases().secure.begin().await?;
        store::soft_delete::<Certificates>(&mut tx.conn(), id).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("certificate.deleted", "delete")
                .resource("certificate", id)
                .org(row.organization_id)
                .details(json!({"certificate_id": row.certificate_id})),
        )
        .await?;
        tx.commit().await?;
        self.issuers().forget(id);
        self.mirror_deletion(actor, &row, true).await
    }

    /// Brings a soft-deleted certificate (and its metadata) back.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn restore_certificate(
        &self,
        actor: &Actor,
        id: CertificateId,
    ) -> Result<Certificate> {
        let row = {
            let mut conn = self.databases().secure.acquire().await?;
            store::get::<Certificates>(&mut conn.conn(), id, true).await?
        };
        self.authorize_visible(
            actor,
            Access::new("certificates", "delete").in_org(row.organization_id),
            "certificate",
            id,
        )
        .await?;
        let mut tx = self.databases().secure.begin().await?;
        store::restore::<Certificates>(&mut tx.conn(), id).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("certificate.restored", "restore")
                .resource("certificate", id)
                .org(row.organization_id)
                .details(json!({"certificate_id": row.certificate_id})),
        )
        .await?;
        let restored = store::get::<Certificates>(&mut tx.conn(), id, false).await?;
        tx.commit().await?;
        self.mirror_deletion(actor, &row, false).await?;
        Ok(restored)
    }

    /// Follows a certificate's deletion or restore in core's metadata.
    async fn mirror_deletion(&self, actor: &Actor, row: &Certificate, deleted: bool) -> Result<()> {
        let outcome: Result<()> = async {
            let mut tx = self.databases().core.begin().await?;
            if deleted {
                certificate_metadata::soft_delete_by_certificate(&mut tx.conn(), row.id, now())
                    .await?;
            } else {
                certificate_metadata::restore_by_certificate(&mut tx.conn(), row.id).await?;
            }
            let (event, action) = if deleted {
                ("certificate_metadata.deleted", "delete")
            } else {
                ("certificate_metadata.restored", "restore")
            };
            append(
                &mut tx.conn(),
                AuditLogKind::Core,
                actor,
                AuditEntry::new(event, action)
                    .resource("certificate", row.id)
                    .org(row.organization_id)
                    .details(json!({"certificate_id": row.certificate_id})),
            )
            .await?;
            tx.commit().await
        }
        .await;
        outcome.map_err(|err| {
            Error::database(format!(
                "certificate {} changed but its metadata did not follow ({err}); repeat the call",
                row.certificate_id
            ))
        })
    }

    /// Moves statuses forward for time `at`: pending -> active once valid,
    /// active -> expiring within the renewal threshold of the certificate's
    /// (active) policy, else 30 days, and pending/active/expiring -> expired
    /// once `not_after <= at`. Revoked and suspended certificates stay as
    /// they are. A few set-based UPDATEs, one audit row.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn refresh_certificate_statuses(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<StatusRefreshReport> {
        self.authorize(actor, Access::new("system", "lifecycle"))
            .await?;
        let at = crate::service::checked_instant("at", at)?;
        let thresholds = {
            let mut conn = self.databases().core.acquire().await?;
            policies::active_renewal_thresholds(&mut conn.conn()).await?
        };
        let default_days = DEFAULT_EXPIRY_THRESHOLD_DAYS;
        let mut by_days: BTreeMap<i64, Vec<PolicyId>> = BTreeMap::new();
        for (policy, days) in thresholds {
            if i64::from(days) != default_days {
                by_days.entry(i64::from(days)).or_default().push(policy);
            }
        }
        let special: Vec<PolicyId> = by_days.values().flatten().copied().collect();
        let days = |n: i64| chrono::Duration::days(n);

        let mut tx = self.databases().secure.begin().await?;
        let mut report = StatusRefreshReport {
            expired: certificates::mark_expired(&mut tx.conn(), at).await?,
            activated: certificates::mark_active(&mut tx.conn(), at).await?,
            expiring: 0,
        };
        for (threshold, ids) in &by_days {
            for chunk in ids.chunks(store::support::MAX_BIND_PARAMS - 1) {
                let expiring = certificates::mark_expiring(
                    &mut tx.conn(),
                    crate::service::shifted("at", at, days(*threshold))?,
                    PolicyScope::In(chunk),
                )
                .await?;
                report.expiring = report.expiring.saturating_add(expiring);
            }
        }
        let expiring = certificates::mark_expiring(
            &mut tx.conn(),
            crate::service::shifted("at", at, days(default_days))?,
            PolicyScope::NotIn(&special),
        )
        .await?;
        report.expiring = report.expiring.saturating_add(expiring);
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("certificates.status_refreshed", "refresh").details(json!({
                "at": at,
                "expired": report.expired,
                "expiring": report.expiring,
                "activated": report.activated,
            })),
        )
        .await?;
        tx.commit().await?;
        Ok(report)
    }
}

/// NotFound of a referenced row as InvalidInput on the field naming it.
/// A certificate without its key whose public key is blocklisted is kept
/// as inventory (it exists, and hosts want to see it), flagged
/// `key_compromised` in `import_flags` and the report; with its key it was
/// refused before this. One index probe per key, in chunks of 500.
async fn flag_compromised_keys(clm: &Clm, fresh: &mut [ParsedCertificate]) -> Result<()> {
    let hashes: Vec<String> = fresh
        .iter()
        .map(|p| spki_sha256(&p.public_key_der).unwrap_or_default())
        .collect();
    let compromised: HashSet<String> = clm
        .compromised_keys(&hashes)
        .await?
        .into_iter()
        .map(|(hash, _)| hash)
        .collect();
    if compromised.is_empty() {
        return Ok(());
    }
    for (parsed, hash) in fresh.iter_mut().zip(&hashes) {
        if compromised.contains(hash) {
            parsed.flags.push("key_compromised".into());
        }
    }
    Ok(())
}

fn missing(err: Error, field: &str, reason: String) -> Error {
    match err {
        Error::NotFound { .. } => Error::invalid(field, reason),
        other => other,
    }
}

/// The private key given with an import: exactly one certificate, and the
/// key must be that certificate's.
fn matching_key(parsed: &[ParsedCertificate], pem: &SecretString) -> Result<KeyPair> {
    let [certificate] = parsed else {
        return Err(Error::invalid(
            "private_key_pem",
            format!(
                "a private key can only be imported with exactly one certificate; the input holds {}",
                parsed.len()
            ),
        ));
    };
    let key = KeyPair::from_pem(pem.expose())?;
    if !key.matches_public_key(&certificate.public_key_der) {
        return Err(Error::invalid(
            "private_key_pem",
            format!(
                "does not match the certificate's public key (certificate {}, SHA-256 {})",
                certificate.subject_dn, certificate.fingerprint_sha256
            ),
        ));
    }
    Ok(key)
}
