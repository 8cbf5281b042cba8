//! What every certificate path shares: turning a parsed certificate into its
//! rows, sealing and opening private keys, and writing a certificate across
//! both databases (secure first, then core) with a reconcile step that
//! repairs a core write that did not happen.

use serde_json::json;

use crate::crypto::envelope::Sealed;
use crate::crypto::{KeyPair, ParsedCertificate, crl_partition};
use crate::keyring::private_key_aad;
use crate::model::{
    Certificate, CertificateId, CertificateKind, CertificateMetadata, CertificateMetadataId,
    CertificateSource, CertificateStatus, OrganizationId, PolicyId, PrivateKeyId, PrivateKeyRecord,
    UserId, WorkflowId,
};
use crate::service::actor::Actor;
use crate::service::audit::{AuditEntry, append, append_many_chain_held};
use crate::service::cache::TtlCache;
use crate::store::audit::AuditLogKind;
use crate::store::{certificate_metadata, certificates, now, private_keys};
use crate::{Clm, Error, Result};

/// Who and what a certificate belongs to (kept on its row and its metadata).
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    /// The user responsible for the certificate (gets its expiry notices).
    pub owner_user_id: Option<UserId>,
    /// The tenant; None for shared certificates.
    pub organization_id: Option<OrganizationId>,
    /// The policy it was issued under.
    pub policy_id: Option<PolicyId>,
    /// That policy's version at issuance.
    pub policy_version: Option<i32>,
    /// The approval workflow its request went through.
    pub workflow_id: Option<WorkflowId>,
}

/// The status a certificate has at `at` from its validity alone.
pub fn status_by_time(
    not_before: crate::model::Timestamp,
    not_after: crate::model::Timestamp,
    at: crate::model::Timestamp,
    threshold_days: i64,
) -> CertificateStatus {
    if not_after <= at {
        CertificateStatus::Expired
    } else if not_before > at {
        CertificateStatus::Pending
    } else if not_after.signed_duration_since(at) <= chrono::Duration::days(threshold_days) {
        CertificateStatus::Expiring
    } else {
        CertificateStatus::Active
    }
}

/// Default expiry warning window when no policy says otherwise.
pub const DEFAULT_EXPIRY_THRESHOLD_DAYS: i64 = 30;

/// Builds the `certificates` row of a parsed certificate.
pub fn certificate_row(
    parsed: &ParsedCertificate,
    kind: CertificateKind,
    source: CertificateSource,
    issuer_certificate_id: Option<CertificateId>,
    ownership: &Ownership,
) -> Certificate {
    certificate_row_with_id(
        CertificateId::new(),
        parsed,
        kind,
        source,
        issuer_certificate_id,
        ownership,
    )
}

/// [`certificate_row`] for a row whose id was chosen before.
pub fn certificate_row_with_id(
    id: CertificateId,
    parsed: &ParsedCertificate,
    kind: CertificateKind,
    source: CertificateSource,
    issuer_certificate_id: Option<CertificateId>,
    ownership: &Ownership,
) -> Certificate {
    let at = now();
    Certificate {
        id,
        certificate_id: format!("cert_{}", id.as_uuid().simple()),
        common_name: parsed.common_name.clone(),
        subject_dn: parsed.subject_dn.clone(),
        issuer_dn: parsed.issuer_dn.clone(),
        serial_number: parsed.serial_hex.clone(),
        serial_number_signed: parsed.serial_hex.clone().into(),
        not_before: crate::store::truncate_micros(parsed.not_before),
        not_after: crate::store::truncate_micros(parsed.not_after),
        status: status_by_time(
            parsed.not_before,
            parsed.not_after,
            at,
            DEFAULT_EXPIRY_THRESHOLD_DAYS,
        ),
        fingerprint_sha256: parsed.fingerprint_sha256.clone(),
        key_algorithm: parsed.key_algorithm.clone(),
        key_size: i32::try_from(parsed.key_size).unwrap_or(i32::MAX),
        signature_algorithm: parsed.signature_algorithm.clone(),
        is_ca: parsed.is_ca,
        path_len: parsed.path_len.map(i32::from),
        certificate_kind: kind,
        source,
        issuer_certificate_id,
        replaces_certificate_id: None,
        subject_key_id: parsed.subject_key_id.clone(),
        authority_key_id: parsed.authority_key_id.clone(),
        subject_alternative_names: sqlx::types::Json(parsed.subject_alternative_names.clone()),
        import_flags: sqlx::types::Json(parsed.flags.clone()),
        certificate_pem: parsed.pem.clone(),
        owner_user_id: ownership.owner_user_id,
        organization_id: ownership.organization_id,
        policy_id: ownership.policy_id,
        policy_version: ownership.policy_version,
        workflow_id: ownership.workflow_id,
        crl_number: 0,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// The `certificate_metadata` row mirroring a certificate in core.
pub fn metadata_row(certificate: &Certificate) -> CertificateMetadata {
    let at = now();
    CertificateMetadata {
        id: CertificateMetadataId::new(),
        certificate_id: certificate.id,
        common_name: certificate.common_name.clone(),
        not_after: Some(certificate.not_after),
        owner_user_id: certificate.owner_user_id,
        organization_id: certificate.organization_id,
        environment: None,
        application: None,
        tags: sqlx::types::Json(serde_json::Map::new()),
        notes: None,
        last_notified_threshold: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// A certificate with everything to write for it.
#[derive(Debug)]
pub struct CertificateWrite {
    /// The row for `certificates`.
    pub certificate: Certificate,
    /// The sealed private key, when clm holds it.
    pub private_key: Option<PrivateKeyRecord>,
    /// The secure-trail entry of the write.
    pub audit: AuditEntry,
    /// Issuance only (empty for imports).
    pub issuance: IssuanceExtras,
}

impl CertificateWrite {
    /// A write with no issuance extras (an import).
    pub fn new(
        certificate: Certificate,
        private_key: Option<PrivateKeyRecord>,
        audit: AuditEntry,
    ) -> Self {
        CertificateWrite {
            certificate,
            private_key,
            audit,
            issuance: IssuanceExtras::default(),
        }
    }
}

/// The URLs a CA writes into the certificates it issues, kept as JSON in
/// `certificates.issuance_urls` on the CA's row.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct IssuanceUrls {
    /// Written as cRLDistributionPoints.
    #[serde(default)]
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs, written in authorityInfoAccess.
    #[serde(default)]
    pub ocsp_urls: Vec<String>,
    /// caIssuers URLs (where the CA's certificate is published), written in
    /// authorityInfoAccess.
    #[serde(default)]
    pub ca_issuers_urls: Vec<String>,
    /// CRL partitions of this CA (1 to [`MAX_CRL_PARTITIONS`]; none: one
    /// CRL for everything). A certificate's partition follows from its
    /// serial ([`crl_partition`]); it points to its partition's CRL.
    #[serde(default)]
    pub crl_partitions: Option<u32>,
    /// The CA publishes delta CRLs: complete CRLs and issued certificates
    /// carry a freshestCRL pointer to them.
    #[serde(default)]
    pub delta_crls: bool,
}

/// Most CRL partitions a CA may have.
pub const MAX_CRL_PARTITIONS: u32 = 1024;

/// The URL of a part below a CRL's URL: `.../ID.crl` becomes `.../ID/<part>.crl`.
fn crl_sub_url(url: &str, part: &str) -> String {
    format!("{}/{part}.crl", url.strip_suffix(".crl").unwrap_or(url))
}

impl IssuanceUrls {
    /// These URLs; or, when none is set and the host configured a public
    /// base URL, the ones derived from it for the CA `ca` (the shared URL
    /// scheme of [`crate::ClmConfig::public_base_url`]). The CRL settings
    /// stay.
    pub fn or_derived(mut self, public_base_url: Option<&str>, ca: CertificateId) -> Self {
        let Some(base) = public_base_url else {
            return self;
        };
        if self.crl_distribution_points.is_empty()
            && self.ocsp_urls.is_empty()
            && self.ca_issuers_urls.is_empty()
        {
            self.crl_distribution_points = vec![format!("{base}/crl/{ca}.crl")];
            self.ocsp_urls = vec![format!("{base}/ocsp")];
            self.ca_issuers_urls = vec![format!("{base}/ca/{ca}.crt")];
        }
        self
    }

    /// The URLs of a scope's complete CRL (`partition` None: the CA's whole
    /// CRL), each below the CA's own CRL URL.
    pub fn crl_urls(&self, partition: Option<u32>) -> Vec<String> {
        self.crl_distribution_points
            .iter()
            .map(|url| match partition {
                Some(n) => crl_sub_url(url, &n.to_string()),
                None => url.clone(),
            })
            .collect()
    }

    /// The URLs of a scope's delta CRLs (none unless the CA publishes them).
    pub fn delta_crl_urls(&self, partition: Option<u32>) -> Vec<String> {
        if !self.delta_crls {
            return Vec::new();
        }
        self.crl_urls(partition)
            .iter()
            .map(|url| crl_sub_url(url, "delta"))
            .collect()
    }

    /// The partition a certificate of this CA with `serial` (DER content
    /// bytes) is listed in; None when the CA has no partitions.
    pub fn partition_of(&self, serial: &[u8]) -> Option<u32> {
        self.crl_partitions.map(|n| crl_partition(serial, n))
    }

    /// What a certificate with `serial` carries: its CRL's URLs
    /// (cRLDistributionPoints) and its delta CRLs' (freshestCRL).
    pub fn revocation_pointers(&self, serial: &[u8]) -> (Vec<String>, Vec<String>) {
        let partition = self.partition_of(serial);
        (self.crl_urls(partition), self.delta_crl_urls(partition))
    }
}

/// What issuance writes besides the certificate, in the same secure
/// transaction: the request it fulfils (inserted after the certificate it
/// links to), the audit of the CA key's use, and a new CA's issuance URLs.
#[derive(Debug, Default)]
pub struct IssuanceExtras {
    /// The certificate request this issuance fulfils, if any.
    pub request: Option<RequestRow>,
    /// `secure_audit_log` entries for key material used (CA key signing, a reused key).
    pub key_use: Vec<AuditEntry>,
    /// Set when the issued certificate is a CA: the URLs it will write.
    pub issuance_urls: Option<IssuanceUrls>,
    /// The blocklist hash of a key that was not generated for this
    /// certificate (a CSR's, a reused one): refused in the secure
    /// transaction if a compromise revocation lists it.
    pub public_key_sha256: Option<String>,
    /// The certificate's pre-signed `good` OCSP response (see
    /// [`crate::service::ocsp`]), inserted with it.
    pub ocsp_response: Option<Box<crate::store::ocsp_responses::OcspResponseRecord>>,
}

/// The request an issuance fulfils: new, or one that waited for approval.
#[derive(Debug)]
pub enum RequestRow {
    /// A request issued at once: inserted with the certificate.
    Insert(crate::model::CertificateRequest),
    /// A request that waited for approval: updated to issued.
    Update(crate::model::CertificateRequest),
}

/// A certificate authority ready to sign: its row, parsed certificate and
/// opened key. Cached per process so issuance does not re-open the key.
#[derive(Debug)]
pub struct LoadedIssuer {
    /// The CA's certificate row.
    pub row: Certificate,
    /// The CA's certificate, parsed.
    pub certificate: ParsedCertificate,
    /// The CA's private key, opened.
    pub key: KeyPair,
    /// What this CA writes into the certificates it issues.
    pub issuance_urls: IssuanceUrls,
    /// The certificates above this CA (DER), its issuer first, as far up
    /// as clm holds them: the chain the self-check validates against.
    pub ancestors: Vec<Vec<u8>>,
    /// The name constraints of this CA and of every CA above it, each with
    /// the CA it comes from (`certificate_id`, subject): issuance keeps
    /// all of them.
    pub name_constraints: Vec<(String, crate::crypto::NameConstraints)>,
    /// The CA's rollover state (successor, retirement, predecessors).
    pub rollover: CaLineage,
}

/// Where a CA stands in its rollovers: requests naming it go to
/// `successor`; a retired CA signs no certificates; policies binding any
/// of `predecessors` bind it too.
#[derive(Debug, Clone, Default)]
pub struct CaLineage {
    /// The CA issuance switched to, once a rollover of this CA got there.
    pub successor: Option<CertificateId>,
    /// When a rollover retired this CA.
    pub retired_at: Option<crate::model::Timestamp>,
    /// The CAs this one succeeds, nearest first, through every rollover.
    pub predecessors: Vec<CertificateId>,
}

impl LoadedIssuer {
    /// The chain a certificate this CA signs is checked against: the CA,
    /// then its ancestors.
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        let mut chain = Vec::with_capacity(self.ancestors.len().saturating_add(1));
        chain.push(self.certificate.der.clone());
        chain.extend(self.ancestors.iter().cloned());
        chain
    }
}

/// Deepest CA hierarchy clm follows upwards (a loop in hostile imported
/// links stops here).
const MAX_CHAIN_DEPTH: usize = 16;

/// Issuers opened so far, by certificate id (see [`TtlCache`] for how long).
pub type IssuerCache = TtlCache<CertificateId, LoadedIssuer>;

/// The core audit row recording metadata for `rows`.
fn metadata_audit<'a>(rows: impl ExactSizeIterator<Item = &'a Certificate>) -> AuditEntry {
    let count = rows.len();
    match (count, rows.last()) {
        (1, Some(one)) => AuditEntry::new("certificate_metadata.created", "create")
            .resource("certificate", one.id)
            .org(one.organization_id)
            .details(json!({"certificate_id": one.certificate_id})),
        _ => AuditEntry::new("certificate_metadata.created", "create")
            .details(json!({"count": count})),
    }
}

/// Which half of a shared write failed.
enum BatchError {
    /// Nothing was written.
    Secure(Error),
    /// The certificates stand; their metadata is missing.
    Core(String),
}

/// How far a cross-database write got when it failed.
pub(crate) enum HalfWritten {
    /// Nothing was written.
    Nothing(Error),
    /// Secure committed; core (metadata) did not.
    SecureOnly(Error),
}

/// One caller's certificates waiting for the group commit.
pub struct WriteJob {
    actor: Actor,
    writes: Vec<CertificateWrite>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Certificate>>>,
}

/// The queue and writer lock behind `Clm::write_certificates`.
#[derive(Default)]
pub struct GroupCommit {
    queue: std::sync::Mutex<Vec<WriteJob>>,
    writer: tokio::sync::Mutex<()>,
    /// A writer task is spawned and has not drained the queue yet: jobs
    /// queued now are its, and need no other task.
    waiting: std::sync::atomic::AtomicBool,
    /// The audit chains' heads as the writer left them.
    heads: crate::service::audit::RememberedHeads,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl GroupCommit {
    fn enqueue(&self, job: WriteJob) -> Result<()> {
        self.queue
            .lock()
            .map_err(|_| Error::Internal("write queue lock poisoned".into()))?
            .push(job);
        Ok(())
    }

    fn drain(&self) -> Result<Vec<WriteJob>> {
        Ok(std::mem::take(&mut *self.queue.lock().map_err(|_| {
            Error::Internal("write queue lock poisoned".into())
        })?))
    }
}

/// Everything of the jobs' certificates that goes into the secure
/// transaction (begun by `Pool::begin_secure_half`: it holds the chain):
/// certificates, keys, requests, pre-signed OCSP answers and audit rows
/// (chained in job order) in one statement on PostgreSQL and one per table
/// on SQLite, then what is per row and rare (requests that waited for
/// approval, a new CA's URLs).
async fn write_secure_rows(
    clm: &Clm,
    conn: &mut crate::db::Conn<'_>,
    jobs: &[WriteJob],
    rows: &[Certificate],
) -> Result<()> {
    // Plain vectors, not iterator chains, live across the awaits: closures
    // held there make the future's Send bound too specific for callers.
    let writes: Vec<(&Actor, &CertificateWrite)> = jobs
        .iter()
        .flat_map(|job| job.writes.iter().map(move |write| (&job.actor, write)))
        .collect();
    // Compromised keys stay dead: checked in the transaction that writes,
    // so no separate round trip on issuance.
    let public_key_hashes: Vec<String> = writes
        .iter()
        .filter_map(|(_, w)| w.issuance.public_key_sha256.clone())
        .collect();
    let keys: Vec<PrivateKeyRecord> = writes
        .iter()
        .filter_map(|(_, w)| w.private_key.clone())
        .collect();
    let new_requests: Vec<crate::model::CertificateRequest> = writes
        .iter()
        .filter_map(|(_, w)| match &w.issuance.request {
            Some(RequestRow::Insert(request)) => Some(request.clone()),
            _ => None,
        })
        .collect();
    let ocsp_responses: Vec<crate::store::ocsp_responses::OcspResponseRecord> = writes
        .iter()
        .filter_map(|(_, w)| w.issuance.ocsp_response.as_deref().cloned())
        .collect();
    let mut entries = Vec::with_capacity(writes.len().saturating_mul(2));
    for (actor, write) in &writes {
        entries.push((*actor, write.audit.clone()));
        for key_use in &write.issuance.key_use {
            entries.push((*actor, key_use.clone()));
        }
    }
    let heads = &clm.group_commit().heads;
    #[cfg(feature = "postgres")]
    if conn.dialect() == crate::db::Dialect::Postgres {
        let guess = crate::service::audit::chain_after_remembered(
            crate::db::Dialect::Postgres,
            AuditLogKind::Secure,
            &entries,
            heads,
        )?;
        let written = crate::store::issuance::write_secure(
            conn,
            crate::store::issuance::SecureRows {
                public_key_hashes: &public_key_hashes,
                certificates: rows,
                keys: &keys,
                requests: &new_requests,
                ocsp_responses: &ocsp_responses,
                audit: guess
                    .as_ref()
                    .map(crate::service::audit::ChainGuess::as_audit_after),
            },
        )
        .await?;
        if let Some((hash, reason)) = &written.compromised {
            return Err(crate::service::revocation::compromised_key_error(
                hash, *reason,
            ));
        }
        clm.reseal_named_retired(conn, &keys, &written.keys_under_retired_data_key)
            .await?;
        crate::service::audit::settle_chain_held(
            conn,
            AuditLogKind::Secure,
            entries,
            heads,
            guess,
            written.audit_appended,
        )
        .await?;
        return write_secure_rare_rows(conn, &writes).await;
    }
    if let Some((hash, reason)) =
        crate::store::certificate_revocations::compromised_keys(conn, &public_key_hashes)
            .await?
            .first()
    {
        return Err(crate::service::revocation::compromised_key_error(
            hash, *reason,
        ));
    }
    certificates::insert_many(conn, rows).await?;
    clm.insert_private_keys(conn, &keys).await?;
    crate::store::certificate_requests::insert_many(conn, &new_requests).await?;
    append_many_chain_held(conn, AuditLogKind::Secure, entries, heads).await?;
    crate::store::ocsp_responses::insert_many(conn, &ocsp_responses).await?;
    write_secure_rare_rows(conn, &writes).await
}

/// The secure rows only some issuances have, one statement each: requests
/// that waited for approval, a new CA's URLs.
async fn write_secure_rare_rows(
    conn: &mut crate::db::Conn<'_>,
    writes: &[(&Actor, &CertificateWrite)],
) -> Result<()> {
    for (_, write) in writes {
        if let Some(RequestRow::Update(request)) = &write.issuance.request {
            if !crate::store::certificate_requests::mark_issued_if_waiting(conn, request).await? {
                return Err(Error::conflict(format!(
                    "request {} was already issued or is no longer waiting",
                    request.request_id
                )));
            }
            crate::store::certificate_requests::update(conn, request).await?;
        }
    }
    for (_, write) in writes {
        if let Some(urls) = &write.issuance.issuance_urls {
            certificates::set_issuance_urls(
                conn,
                write.certificate.id,
                &serde_json::to_value(urls)?,
            )
            .await?;
        }
    }
    Ok(())
}

/// The jobs' metadata and one core audit row per job (in a transaction
/// begun by `Pool::begin_core_half`: it holds the chain).
async fn write_core_rows(
    clm: &Clm,
    conn: &mut crate::db::Conn<'_>,
    jobs: &[WriteJob],
    rows: &[Certificate],
) -> Result<()> {
    let metadata: Vec<CertificateMetadata> = rows.iter().map(metadata_row).collect();
    let entries: Vec<(&Actor, AuditEntry)> = jobs
        .iter()
        .map(|job| {
            let certificates = job.writes.iter().map(|w| &w.certificate);
            (&job.actor, metadata_audit(certificates))
        })
        .collect();
    let heads = &clm.group_commit().heads;
    #[cfg(feature = "postgres")]
    if conn.dialect() == crate::db::Dialect::Postgres {
        let guess = crate::service::audit::chain_after_remembered(
            crate::db::Dialect::Postgres,
            AuditLogKind::Core,
            &entries,
            heads,
        )?;
        let appended = crate::store::issuance::write_core(
            conn,
            &metadata,
            guess
                .as_ref()
                .map(crate::service::audit::ChainGuess::as_audit_after),
        )
        .await?;
        crate::service::audit::settle_chain_held(
            conn,
            AuditLogKind::Core,
            entries,
            heads,
            guess,
            appended,
        )
        .await?;
        return Ok(());
    }
    certificate_metadata::insert_many(conn, &metadata).await?;
    append_many_chain_held(conn, AuditLogKind::Core, entries, heads).await?;
    Ok(())
}

/// Metadata for `rows` and its core audit row.
pub(crate) async fn write_metadata_rows(
    conn: &mut crate::db::Conn<'_>,
    actor: &Actor,
    rows: &[Certificate],
) -> Result<()> {
    let metadata: Vec<CertificateMetadata> = rows.iter().map(metadata_row).collect();
    certificate_metadata::insert_many(conn, &metadata).await?;
    append(conn, AuditLogKind::Core, actor, metadata_audit(rows.iter())).await?;
    Ok(())
}

/// What a reconcile run repaired.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct ReconcileReport {
    /// Certificates whose missing `certificate_metadata` row was written.
    pub metadata_created: u64,
    /// Requests left `pending_approval` after their workflow had ended
    /// (rejected, cancelled or expired), now settled to match it.
    pub requests_settled: u64,
}

impl Clm {
    /// Seals `key` (PKCS#8 DER) for `certificate_id` under the active data key.
    pub(crate) fn seal_private_key(
        &self,
        certificate_id: CertificateId,
        key: &KeyPair,
    ) -> Result<PrivateKeyRecord> {
        let der = key.to_pkcs8_der();
        let aad = private_key_aad(certificate_id);
        let aad_refs: Vec<&str> = aad.iter().map(String::as_str).collect();
        let (encryption_key_id, sealed) = self.keyring().seal(der.expose(), &aad_refs)?;
        let info = key.info();
        let at = now();
        Ok(PrivateKeyRecord {
            id: PrivateKeyId::new(),
            certificate_id,
            encryption_key_id,
            encrypted_key_material: crate::model::Opaque(sealed.ciphertext),
            nonce: crate::model::Opaque(sealed.nonce),
            key_algorithm: info.family.to_string(),
            key_size: i32::try_from(info.bits).unwrap_or(i32::MAX),
            public_key_sha256: crate::crypto::token::sha256_hex(&key.public_key_der()),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        })
    }

    /// Opens a sealed private key. Callers audit the use in `secure_audit_log`.
    pub(crate) fn open_private_key(&self, record: &PrivateKeyRecord) -> Result<KeyPair> {
        let aad = private_key_aad(record.certificate_id);
        let aad_refs: Vec<&str> = aad.iter().map(String::as_str).collect();
        let sealed = Sealed {
            nonce: record.nonce.0.clone(),
            ciphertext: record.encrypted_key_material.0.clone(),
        };
        let der = self
            .keyring()
            .open(record.encryption_key_id, &sealed, &aad_refs)?;
        KeyPair::from_der(der.expose())
    }

    /// The issuer `id` with its key opened, from the cache when possible. The
    /// row must be a live CA with a stored key; its status is re-checked by
    /// callers that sign (a revoked or expired CA must not issue).
    pub(crate) async fn load_issuer(
        &self,
        id: CertificateId,
    ) -> Result<std::sync::Arc<LoadedIssuer>> {
        self.issuers()
            .get_or_load(id, || self.open_issuer(id))
            .await
    }

    async fn open_issuer(&self, id: CertificateId) -> Result<LoadedIssuer> {
        let mut conn = self.databases().secure.acquire().await?;
        let row =
            crate::store::get::<certificates::Certificates>(&mut conn.conn(), id, false).await?;
        if !row.is_ca {
            return Err(Error::invalid(
                "issuer_certificate_id",
                format!("{} is not a CA certificate", row.certificate_id),
            ));
        }
        let record = private_keys::get_by_certificate(&mut conn.conn(), id)
            .await
            .map_err(|err| match err {
                Error::NotFound { .. } => Error::invalid(
                    "issuer_certificate_id",
                    format!("CA {} has no private key in clm", row.certificate_id),
                ),
                other => other,
            })?;
        self.load_data_key(record.encryption_key_id).await?;
        let key = self.open_private_key(&record)?;
        let certificate = crate::crypto::parse_certificates(row.certificate_pem.as_bytes())?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Internal(format!("CA {} has no certificate PEM", row.certificate_id))
            })?;
        let issuance_urls = match certificates::issuance_urls(&mut conn.conn(), id).await? {
            Some(json) => serde_json::from_value(json).map_err(|err| {
                Error::Internal(format!(
                    "CA {} has unreadable issuance_urls: {err}",
                    row.certificate_id
                ))
            })?,
            None => IssuanceUrls::default(),
        }
        .or_derived(self.config().public_base_url.as_deref(), id);
        // Boxed: the walk's state would otherwise sit in every future that
        // loads an issuer.
        let (ancestors, name_constraints) =
            Box::pin(self.issuer_chain(&mut conn, &row, &certificate)).await?;
        let rollover = crate::service::rollover::lineage(&mut conn.conn(), id).await?;
        Ok(LoadedIssuer {
            row,
            certificate,
            key,
            issuance_urls,
            ancestors,
            name_constraints,
            rollover,
        })
    }

    /// The certificates above `row` (DER, parent first) and the name
    /// constraints of `row` and each of them. A CA whose constraints do not
    /// parse cannot be an issuer: what it permits is unknown.
    async fn issuer_chain(
        &self,
        conn: &mut crate::db::PooledConn,
        row: &Certificate,
        certificate: &crate::crypto::ParsedCertificate,
    ) -> Result<(Vec<Vec<u8>>, Vec<(String, crate::crypto::NameConstraints)>)> {
        let label = |row: &Certificate| format!("{} ({})", row.certificate_id, row.subject_dn);
        let read = |row: &Certificate, der: &[u8]| {
            crate::crypto::NameConstraints::of_certificate(der).map_err(|err| {
                Error::Internal(format!(
                    "CA {} has unreadable name constraints: {err}",
                    row.certificate_id
                ))
            })
        };
        let mut constraints = Vec::new();
        if let Some(own) = read(row, &certificate.der)? {
            constraints.push((label(row), own));
        }
        let mut ancestors = Vec::new();
        let mut seen = vec![row.id];
        let mut next = row.issuer_certificate_id;
        while let Some(id) = next {
            if seen.contains(&id) || seen.len() > MAX_CHAIN_DEPTH {
                break;
            }
            seen.push(id);
            // A parent no longer held (deleted) ends the chain clm can check.
            let parent =
                match crate::store::get::<certificates::Certificates>(&mut conn.conn(), id, false)
                    .await
                {
                    Err(Error::NotFound { .. }) => break,
                    other => other?,
                };
            let parsed = crate::crypto::parse_certificates(parent.certificate_pem.as_bytes())?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    Error::Internal(format!(
                        "CA {} has no certificate PEM",
                        parent.certificate_id
                    ))
                })?;
            if let Some(theirs) = read(&parent, &parsed.der)? {
                constraints.push((label(&parent), theirs));
            }
            ancestors.push(parsed.der);
            next = parent.issuer_certificate_id;
        }
        Ok((ancestors, constraints))
    }

    /// Writes certificates (with keys) and their secure audit rows in one
    /// secure transaction, then their metadata and core audit rows in one core
    /// transaction. If the core commit fails, the certificates stand and
    /// [`Clm::reconcile`] creates the missing metadata later; the error says so.
    ///
    /// Concurrent callers share transactions (group commit): a writer task
    /// that takes the writer lock writes every job queued by then, so many
    /// issuances cost one durable commit per database instead of one each.
    pub(crate) async fn write_certificates(
        &self,
        actor: &Actor,
        writes: Vec<CertificateWrite>,
    ) -> Result<Vec<Certificate>> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.group_commit().enqueue(WriteJob {
            actor: actor.clone(),
            writes,
            reply,
        })?;
        // The writer is a task of its own, not this caller's future: a caller
        // that stops waiting (its future dropped) cancels no write, its own
        // included; what was queued is written and committed either way.
        let group = self.group_commit();
        if !group
            .waiting
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let clm = self.clone();
            tokio::spawn(async move { clm.run_writer().await });
        }
        outcome.await.map_err(|_| {
            Error::Internal("certificate write was dropped before it finished".into())
        })?
    }

    /// One writer task: waits for the writer lock, then writes every job
    /// queued by then. At most one such task waits for the lock at a time,
    /// so jobs gather into batches while a batch is being written.
    async fn run_writer(&self) {
        let group = self.group_commit();
        let writer = group.writer.lock().await;
        // Jobs queued from here on are drained by the next task.
        group
            .waiting
            .store(false, std::sync::atomic::Ordering::SeqCst);
        match group.drain() {
            Ok(jobs) if !jobs.is_empty() => self.write_jobs(jobs, writer).await,
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "certificate write queue unusable"),
        }
    }

    /// Writes queued jobs together. If the shared secure transaction fails
    /// (it rolled back), each job is retried alone so only the faulty one
    /// sees its error; if only the core step failed, every job's certificates
    /// stand and each caller hears that reconcile will repair the metadata.
    ///
    /// `writer` is released as soon as the shared secure transaction has
    /// committed, so the next batch writes while this one commits core (its
    /// core transaction already holds the core audit chain, so core commits
    /// stay in order).
    async fn write_jobs(&self, jobs: Vec<WriteJob>, writer: tokio::sync::MutexGuard<'_, ()>) {
        let mut writer = Some(writer);
        let certificates: usize = jobs.iter().map(|job| job.writes.len()).sum();
        tracing::debug!(
            jobs = jobs.len(),
            certificates,
            "group commit: writing a batch"
        );
        if jobs.len() > 1 {
            match self.write_batch(&jobs, &mut writer).await {
                Ok(()) => {
                    for job in jobs {
                        let rows = job.writes.iter().map(|w| w.certificate.clone()).collect();
                        let _ = job.reply.send(Ok(rows));
                    }
                    return;
                }
                Err(BatchError::Core(message)) => {
                    for job in jobs {
                        let _ = job.reply.send(Err(Error::database(message.clone())));
                    }
                    return;
                }
                Err(BatchError::Secure(err)) => {
                    tracing::info!(
                        jobs = jobs.len(),
                        error = %err,
                        "group commit: the shared secure transaction failed; writing each job alone"
                    );
                }
            }
        }
        // One by one, holding the writer lock throughout.
        for job in jobs {
            let outcome = match self
                .write_batch(std::slice::from_ref(&job), &mut None)
                .await
            {
                Ok(()) => Ok(job.writes.iter().map(|w| w.certificate.clone()).collect()),
                Err(BatchError::Secure(err)) => Err(err),
                Err(BatchError::Core(message)) => Err(Error::database(message)),
            };
            let _ = job.reply.send(outcome);
        }
    }

    /// Runs the secure and the core half of a cross-database write, each
    /// given its transaction and handing it back with its rows written, and
    /// commits secure, then core: metadata never names a certificate that
    /// is not stored.
    ///
    /// Every writer takes the secure audit chain's lock before the core
    /// one's. Taken in the other order, two writers (two import batches, an
    /// import and an issuance batch, two processes) could each hold one
    /// chain and wait for the other's: a deadlock across two databases that
    /// neither server can see.
    ///
    /// PostgreSQL: the secure half's `BEGIN` takes its chain's lock, so the
    /// core half runs beside it, not after it; secure commits (durably) once
    /// both halves' rows are written (an error in either rolls both back);
    /// `writer` (a group commit's lock) is then released, and core, already
    /// holding its chain, commits in order without waiting for its WAL
    /// flush. A caller waits for one flush; a server crash in the moment
    /// after can lose only core's metadata, which reconcile rebuilds from
    /// the durable certificates, as it does for a process that stopped
    /// between the two commits.
    /// SQLite holds a write lock per file, so there secure commits before
    /// core begins.
    pub(crate) async fn commit_secure_then_core<S, SecureHalf, C, CoreHalf>(
        &self,
        secure: S,
        core: C,
        writer: &mut Option<tokio::sync::MutexGuard<'_, ()>>,
    ) -> std::result::Result<(), HalfWritten>
    where
        S: FnOnce(crate::db::Tx) -> SecureHalf,
        SecureHalf: std::future::Future<Output = Result<crate::db::Tx>>,
        C: FnOnce(crate::db::Tx) -> CoreHalf,
        CoreHalf: std::future::Future<Output = Result<crate::db::Tx>>,
    {
        use HalfWritten::{Nothing, SecureOnly};
        let databases = self.databases();
        let secure_tx = databases
            .secure
            .begin_secure_half()
            .await
            .map_err(Nothing)?;
        if databases.dialect() == crate::db::Dialect::Postgres {
            let core = async { core(databases.core.begin_core_half().await?).await };
            // On a failure of either, both transactions are dropped: rolled back.
            let (secure, core) = tokio::try_join!(secure(secure_tx), core).map_err(Nothing)?;
            failpoint!("cross_db.secure_written").map_err(Nothing)?;
            failpoint!("cross_db.core_written").map_err(Nothing)?;
            secure.commit().await.map_err(Nothing)?;
            writer.take();
            failpoint!("cross_db.secure_committed").map_err(SecureOnly)?;
            core.commit().await.map_err(SecureOnly)
        } else {
            let secure = secure(secure_tx).await.map_err(Nothing)?;
            failpoint!("cross_db.secure_written").map_err(Nothing)?;
            secure.commit().await.map_err(Nothing)?;
            writer.take();
            failpoint!("cross_db.secure_committed").map_err(SecureOnly)?;
            let core_tx = databases.core.begin_core_half().await.map_err(SecureOnly)?;
            let core = core(core_tx).await.map_err(SecureOnly)?;
            failpoint!("cross_db.core_written").map_err(SecureOnly)?;
            core.commit().await.map_err(SecureOnly)
        }
    }

    /// Writes the jobs' rows with a few statements per table for the whole
    /// batch (see [`Clm::commit_secure_then_core`]).
    async fn write_batch(
        &self,
        jobs: &[WriteJob],
        writer: &mut Option<tokio::sync::MutexGuard<'_, ()>>,
    ) -> std::result::Result<(), BatchError> {
        let rows: Vec<Certificate> = jobs
            .iter()
            .flat_map(|j| j.writes.iter().map(|w| w.certificate.clone()))
            .collect();
        let rows = &rows;
        let secure = |mut tx: crate::db::Tx| async move {
            write_secure_rows(self, &mut tx.conn(), jobs, rows).await?;
            Ok(tx)
        };
        let core = |mut tx: crate::db::Tx| async move {
            write_core_rows(self, &mut tx.conn(), jobs, rows).await?;
            Ok(tx)
        };
        self.commit_secure_then_core(secure, core, writer)
            .await
            .map_err(|failure| match failure {
                HalfWritten::Nothing(err) => BatchError::Secure(err),
                HalfWritten::SecureOnly(err) => BatchError::Core(format!(
                    "certificates were stored but their metadata was not ({err}); run reconcile to repair"
                )),
            })?;
        // Callers read between batches without pause: see `Pool::bound_wal`.
        let databases = self.databases();
        databases.secure.bound_wal().await;
        databases.core.bound_wal().await;
        Ok(())
    }

    pub(crate) async fn write_metadata(&self, actor: &Actor, rows: &[Certificate]) -> Result<()> {
        let mut tx = self.databases().core.begin().await?;
        write_metadata_rows(&mut tx.conn(), actor, rows).await?;
        tx.commit().await
    }

    /// Repairs half-done cross-database work: certificates whose metadata is
    /// missing in core get it, and approved workflow instances whose
    /// issuance was interrupted (the process stopped between the approval
    /// and the certificate, or before recording it) are issued, or
    /// completed with the certificate their request already has; requests
    /// still waiting on a workflow instance that was rejected, cancelled or
    /// expired (the process stopped between the two databases' writes) are
    /// settled to match it. Safe to run at any time and repeatedly: a
    /// request is issued once whoever issues it.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn reconcile(&self, actor: &Actor) -> Result<ReconcileReport> {
        self.authorize(
            actor,
            crate::service::actor::Access::new("system", "lifecycle"),
        )
        .await?;
        let mut report = ReconcileReport::default();
        let mut after: Option<CertificateId> = None;
        loop {
            let batch = {
                let mut conn = self.databases().secure.acquire().await?;
                certificates::ids_after(&mut conn.conn(), after, 500).await?
            };
            let Some(last) = batch.last() else { break };
            after = Some(*last);
            let present = {
                let mut conn = self.databases().core.acquire().await?;
                certificate_metadata::existing_certificate_ids(&mut conn.conn(), &batch).await?
            };
            let missing: Vec<CertificateId> = batch
                .into_iter()
                .filter(|id| !present.contains(id))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let mut rows = Vec::with_capacity(missing.len());
            let mut conn = self.databases().secure.acquire().await?;
            for id in missing {
                rows.push(
                    crate::store::get::<certificates::Certificates>(&mut conn.conn(), id, true)
                        .await?,
                );
            }
            failpoint!("reconcile.metadata_batch")?;
            self.write_metadata(actor, &rows).await?;
            report.metadata_created = report
                .metadata_created
                .saturating_add(u64::try_from(rows.len()).unwrap_or(u64::MAX));
        }
        let mut after = None;
        loop {
            let batch = {
                let mut conn = self.databases().core.acquire().await?;
                crate::store::workflow_instances::approved_ids_after(&mut conn.conn(), after, 100)
                    .await?
            };
            let Some(last) = batch.last() else { break };
            after = Some(*last);
            for instance in batch {
                tracing::info!(workflow_instance_id = %instance, "reconcile: finishing an approved workflow instance");
                self.issue_approved(actor, instance).await?;
            }
        }
        let mut after = None;
        loop {
            let batch = {
                let mut conn = self.databases().secure.acquire().await?;
                crate::store::certificate_requests::waiting_on_workflow_after(
                    &mut conn.conn(),
                    after,
                    500,
                )
                .await?
            };
            let Some((last, _)) = batch.last() else { break };
            after = Some(*last);
            let instances: Vec<_> = batch.iter().map(|(_, instance)| *instance).collect();
            let ended = {
                let mut conn = self.databases().core.acquire().await?;
                crate::store::workflow_instances::ended_unissued_among(&mut conn.conn(), &instances)
                    .await?
            };
            for instance in ended {
                tracing::info!(workflow_instance_id = %instance.id, "reconcile: settling the request of an ended workflow instance");
                if self.settle_ended_request(actor, &instance).await? {
                    report.requests_settled = report.requests_settled.saturating_add(1);
                }
            }
        }
        Ok(report)
    }
}
