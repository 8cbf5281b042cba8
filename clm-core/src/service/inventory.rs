//! The certificate inventory: import (PEM, DER, bundles, optionally with the
//! private key), reads and search within the actor's organizations, soft
//! delete and restore, chains, and the status refresh that moves certificates
//! along the clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;

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
pub const IMPORT_BATCH: usize = 2_000;

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
    /// Index into the certificates of the same import.
    InBatch(usize),
}

/// What the threads that link an import's batches share.
struct ImportShared {
    fresh: Vec<ParsedCertificate>,
    candidates: Candidates,
    /// The CAs' issuer links (the leaves' are found batch by batch).
    links: Vec<Option<IssuerLink>>,
    /// Row id of each certificate of `fresh`.
    ids: Vec<CertificateId>,
    ownership: Ownership,
}

/// What every batch of one import shares.
struct ImportJob<'a> {
    actor: &'a Actor,
    shared: &'a Arc<ImportShared>,
    /// The sealed key of a single-certificate import.
    private_key: Option<&'a crate::model::PrivateKeyRecord>,
    organization_id: Option<OrganizationId>,
}

/// A batch as stored: the rows written, and the rows another import had
/// stored first (this import's id -> the stored id).
struct WrittenBatch {
    imported: Vec<Certificate>,
    replaced: Vec<(CertificateId, CertificateId)>,
}

impl WrittenBatch {
    fn add_to(self, report: &mut ImportReport) {
        report.imported.extend(self.imported);
        report
            .already_present
            .extend(self.replaced.into_iter().map(|(_, stored)| stored));
    }
}

/// A possible issuer: a stored CA or a CA of the same import.
struct Candidate {
    link: IssuerLink,
    subject_key_id: Option<String>,
    public_key_der: Vec<u8>,
}

/// Possible issuers by subject DN: the stored CAs an import names, and the
/// import's own CAs. Only CAs are candidates, so only a CA's link can decide
/// the order in which an import's rows must be written.
struct Candidates(HashMap<String, Vec<Candidate>>);

impl Candidates {
    fn new(parsed: &[ParsedCertificate], stored: &[(CertificateId, ParsedCertificate)]) -> Self {
        let mut by_subject: HashMap<String, Vec<Candidate>> = HashMap::new();
        let stored = stored.iter().map(|(id, ca)| (IssuerLink::Stored(*id), ca));
        let in_input = parsed
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_ca)
            .map(|(index, ca)| (IssuerLink::InBatch(index), ca));
        for (link, ca) in stored.chain(in_input) {
            by_subject
                .entry(ca.subject_dn.clone())
                .or_default()
                .push(Candidate {
                    link,
                    subject_key_id: ca.subject_key_id.clone(),
                    public_key_der: ca.public_key_der.clone(),
                });
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

/// Finds the issuer of `parsed[index]`: none for a self-signed certificate,
/// else the first candidate with the issuer's name, a matching key
/// identifier (when both sides have one) and a key that verifies the signature.
fn find_issuer(
    parsed: &[ParsedCertificate],
    index: usize,
    candidates: &Candidates,
) -> Option<IssuerLink> {
    let certificate = &parsed[index];
    if certificate.subject_dn == certificate.issuer_dn
        && verify_signed_by(certificate, &certificate.public_key_der).is_ok()
    {
        return None;
    }
    candidates
        .0
        .get(certificate.issuer_dn.as_str())?
        .iter()
        .filter(|c| c.link != IssuerLink::InBatch(index))
        .filter(
            |c| match (&certificate.authority_key_id, &c.subject_key_id) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => true,
            },
        )
        .find(|c| verify_signed_by(certificate, &c.public_key_der).is_ok())
        .map(|c| c.link)
}

/// Issuer links of `parsed[i]` for each `i` in `indices`, the signature
/// checks spread over the machine's cores (a bulk import verifies thousands).
fn link_issuers(
    parsed: &[ParsedCertificate],
    indices: &[usize],
    candidates: &Candidates,
) -> Vec<Option<IssuerLink>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = indices.len().div_ceil(threads).max(64);
    std::thread::scope(|scope| {
        let workers: Vec<_> = indices
            .chunks(per_thread)
            .map(|part| {
                let worker = scope.spawn(move || {
                    part.iter()
                        .map(|&index| find_issuer(parsed, index, candidates))
                        .collect::<Vec<_>>()
                });
                (worker, part.len())
            })
            .collect();
        // A worker that panicked links nothing rather than failing the import.
        workers
            .into_iter()
            .flat_map(|(worker, len)| worker.join().unwrap_or_else(|_| vec![None; len]))
            .collect()
    })
}

/// Inputs at least this large are parsed on several threads.
const PARALLEL_PARSE_BYTES: usize = 256 * 1024;

/// [`parse_certificate_bundle`] with a large PEM bundle cut at block
/// boundaries into one piece per core, each parsed on its own thread. Any
/// error parses the whole input again in one piece, so the error (and the
/// certificate number it names) is exactly what the serial parse reports.
fn parse_bundle(data: &[u8]) -> Result<ParsedBundle> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 || data.len() < PARALLEL_PARSE_BYTES {
        return parse_certificate_bundle(data);
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
        return parse_certificate_bundle(data);
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
            Err(_) => return parse_certificate_bundle(data),
        }
    }
    if whole.certificates.is_empty() {
        return parse_certificate_bundle(data);
    }
    Ok(whole)
}

/// Depth of each certificate in the import's own issuer tree (0 = its
/// issuer is stored or unknown), so parents are inserted before children.
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
    /// Everything is parsed and checked before anything is written: bad input
    /// writes nothing. Large inputs are written in batches of
    /// [`IMPORT_BATCH`], each one secure transaction with one audit row; if a
    /// later batch fails the earlier ones stand, and importing the same input
    /// again completes the rest without duplicates.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn import_certificates(
        &self,
        actor: &Actor,
        request: ImportRequest,
    ) -> Result<ImportReport> {
        self.authorize(
            actor,
            Access::new("certificates", "import").in_org(request.organization_id),
        )
        .await?;
        if request.data.is_empty() {
            return Err(Error::invalid("data", "is empty"));
        }
        self.check_ownership(request.organization_id, request.owner_user_id)
            .await?;
        let ImportRequest {
            data,
            private_key_pem,
            organization_id,
            owner_user_id,
        } = request;
        let ParsedBundle {
            certificates: parsed,
            skipped,
            ..
        } = self.run_cpu(move || parse_bundle(&data)).await?;
        let key = match private_key_pem {
            None => None,
            Some(pem) => Some(matching_key(&parsed, &pem)?),
        };
        if let Some(key) = &key {
            self.refuse_compromised_key(&key.public_key_der()).await?;
        }

        // Drop repeats within the input, then what is already stored.
        let mut seen = HashSet::with_capacity(parsed.len());
        let parsed: Vec<ParsedCertificate> = parsed
            .into_iter()
            .filter(|p| seen.insert(p.fingerprint_sha256.clone()))
            .collect();
        let fingerprints: Vec<String> = parsed
            .iter()
            .map(|p| p.fingerprint_sha256.clone())
            .collect();
        let stored: HashMap<String, CertificateId> = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::find_by_fingerprints(&mut conn.conn(), organization_id, &fingerprints)
                .await?
                .into_iter()
                .collect()
        };
        let mut report = ImportReport {
            skipped,
            ..ImportReport::default()
        };
        let mut fresh = Vec::with_capacity(parsed.len());
        for certificate in parsed {
            match stored.get(&certificate.fingerprint_sha256) {
                Some(id) => report.already_present.push(*id),
                None => fresh.push(certificate),
            }
        }
        if let (Some(key), Some(id)) = (&key, report.already_present.first()) {
            self.attach_private_key(actor, *id, key).await?;
        }
        if fresh.is_empty() {
            return Ok(report);
        }

        flag_compromised_keys(self, &mut fresh).await?;
        let issuers = self.stored_issuers(&fresh, organization_id).await?;
        let candidates = Candidates::new(&fresh, &issuers);
        // Only CAs issue, so the CAs' links alone decide the write order
        // (parents first): they are linked now and written first. The leaves
        // are linked (signatures checked) and turned into rows batch by
        // batch, while other batches write.
        let ca_indices: Vec<usize> = (0..fresh.len()).filter(|&i| fresh[i].is_ca).collect();
        let (fresh, candidates, ca_links) = self
            .run_cpu(move || {
                let ca_links = link_issuers(&fresh, &ca_indices, &candidates);
                let mut links = vec![None; fresh.len()];
                for (&index, link) in ca_indices.iter().zip(ca_links) {
                    links[index] = link;
                }
                Ok((fresh, candidates, links))
            })
            .await?;
        let shared = Arc::new(ImportShared {
            ids: fresh.iter().map(|_| CertificateId::new()).collect(),
            fresh,
            candidates,
            links: ca_links,
            ownership: Ownership {
                owner_user_id,
                organization_id,
                ..Ownership::default()
            },
        });
        let (fresh, ids) = (&shared.fresh, &shared.ids);
        let depth = depths(&shared.links);
        let mut order: Vec<usize> = (0..fresh.len()).collect();
        order.sort_by_key(|&i| (!fresh[i].is_ca, depth[i]));
        for &i in &order {
            if !fresh[i].flags.is_empty() {
                report.flagged.push((ids[i], fresh[i].flags.clone()));
            }
        }
        let private_key = match (&key, ids.as_slice()) {
            (Some(key), [single]) => Some(self.seal_private_key(*single, key)?),
            _ => None,
        };
        // An import larger than one batch keeps CAs and leaves in separate
        // batches, so only the (few) CA batches have to be written one after
        // another; a smaller one is a single batch with one audit row.
        let cas_in_order = order.partition_point(|&i| fresh[i].is_ca);
        let (ca_order, leaf_order) = order.split_at(cas_in_order);
        let (batches, ordered): (Vec<Vec<usize>>, usize) = if order.len() <= IMPORT_BATCH {
            (vec![order.clone()], 1)
        } else {
            (
                ca_order
                    .chunks(IMPORT_BATCH)
                    .chain(leaf_order.chunks(IMPORT_BATCH))
                    .map(<[usize]>::to_vec)
                    .collect(),
                ca_order.len().div_ceil(IMPORT_BATCH),
            )
        };
        let job = ImportJob {
            actor,
            shared: &shared,
            private_key: private_key.as_ref(),
            organization_id,
        };
        // A batch holding a CA is stored before any later one starts (later
        // rows may name its CAs as issuer). The rest hold leaves only and
        // depend on nothing but those.
        let mut batches = batches.into_iter();
        // Rows a concurrent import stored first: their id here -> the stored id.
        let mut replaced: HashMap<CertificateId, CertificateId> = HashMap::new();
        for batch in batches.by_ref().take(ordered) {
            let rows = self.link_batch(&job, batch).await?;
            let written = self.write_linked_batch(&job, rows, &replaced).await?;
            replaced.extend(written.replaced.iter().copied());
            written.add_to(&mut report);
        }
        let earlier = replaced.clone();
        let job = &job;
        // The leaf batches flow through two stages: linking (signature
        // checks on every core) runs one batch ahead of writing, which keeps
        // two batches in flight. Every batch runs to its end (none is
        // dropped between its secure and its core commit); the first
        // failure is reported.
        let (linked_tx, linked_rx) = futures::channel::mpsc::channel::<Result<Vec<Certificate>>>(1);
        let link_ahead = async move {
            let mut linked_tx = linked_tx;
            for batch in batches {
                let linked = self.link_batch(job, batch).await;
                if futures::SinkExt::send(&mut linked_tx, linked)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        };
        let write = linked_rx
            .map(|linked| async {
                match linked {
                    Ok(rows) => self.write_linked_batch(job, rows, &earlier).await,
                    Err(err) => Err(err),
                }
            })
            .buffered(2)
            .collect::<Vec<Result<WrittenBatch>>>();
        let ((), outcomes) = futures::join!(link_ahead, write);
        let mut failure = None;
        for outcome in outcomes {
            match outcome {
                Ok(written) => {
                    replaced.extend(written.replaced.iter().copied());
                    written.add_to(&mut report);
                }
                Err(err) => {
                    failure.get_or_insert(err);
                }
            }
        }
        if let Some(err) = failure {
            return Err(err);
        }
        if !replaced.is_empty() {
            report.flagged.retain(|(id, _)| !replaced.contains_key(id));
        }
        // Freeing the parsed input (tens of thousands of small allocations
        // for a bulk import) is left to a blocking thread: the caller has
        // its answer meanwhile.
        drop(tokio::task::spawn_blocking(move || drop(shared)));
        Ok(report)
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

    /// The rows of a batch (`indices` into the parsed input), each with its
    /// issuer: a CA's from the links found before, a leaf's found now.
    /// Runs on a blocking thread under a CPU permit.
    async fn link_batch(
        &self,
        job: &ImportJob<'_>,
        indices: Vec<usize>,
    ) -> Result<Vec<Certificate>> {
        let shared = job.shared.clone();
        self.run_cpu(move || {
            let shared = &*shared;
            let leaves: Vec<usize> = indices
                .iter()
                .copied()
                .filter(|&i| !shared.fresh[i].is_ca)
                .collect();
            let mut leaf_links =
                link_issuers(&shared.fresh, &leaves, &shared.candidates).into_iter();
            Ok(indices
                .iter()
                .map(|&i| {
                    let parsed = &shared.fresh[i];
                    let link = if parsed.is_ca {
                        shared.links[i]
                    } else {
                        leaf_links.next().flatten()
                    };
                    let issuer = match link {
                        Some(IssuerLink::Stored(id)) => Some(id),
                        Some(IssuerLink::InBatch(index)) => shared.ids.get(index).copied(),
                        None => None,
                    };
                    certificate_row_with_id(
                        shared.ids[i],
                        parsed,
                        imported_kind(parsed),
                        CertificateSource::Imported,
                        issuer,
                        &shared.ownership,
                    )
                })
                .collect())
        })
        .await
    }

    /// Writes a linked batch, its issuers first mapped through `replaced`.
    /// If the batch hits the fingerprint constraint (another import stored
    /// some of these certificates meanwhile), those rows are dropped,
    /// reported as already present, and the rest is written once more.
    async fn write_linked_batch(
        &self,
        job: &ImportJob<'_>,
        mut rows: Vec<Certificate>,
        replaced: &HashMap<CertificateId, CertificateId>,
    ) -> Result<WrittenBatch> {
        for row in &mut rows {
            if let Some(parent) = row.issuer_certificate_id.and_then(|p| replaced.get(&p)) {
                row.issuer_certificate_id = Some(*parent);
            }
        }
        match self
            .write_import_batch(job.actor, &rows, job.private_key, job.organization_id)
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
            certificates::find_by_fingerprints(&mut conn.conn(), job.organization_id, &fingerprints)
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
            self.write_import_batch(job.actor, &written.imported, None, job.organization_id)
                .await?;
        }
        Ok(written)
    }

    /// Stored CA certificates named as issuer by any of `certificates` that
    /// an import into `organization_id` may link to (shared CAs and the
    /// organization's own), parsed.
    async fn stored_issuers(
        &self,
        certificates: &[ParsedCertificate],
        organization_id: Option<OrganizationId>,
    ) -> Result<Vec<(CertificateId, ParsedCertificate)>> {
        let subjects: Vec<String> = certificates
            .iter()
            .map(|c| c.issuer_dn.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let rows = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::find_cas_by_subjects(&mut conn.conn(), organization_id, &subjects).await?
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
