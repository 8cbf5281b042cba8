//! CRLs at scale: complete and delta CRLs (RFC 5280 §5.2.4) of a whole
//! issuer or of one of its partitions, built while the revocations stream
//! from the database, stored in `crls`, and served from there.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::crypto::{CrlBuilder, CrlEntry, CrlScope, PemLabel, crl_partition, der_to_pem};
use crate::model::{CertificateId, CertificateStatus, CrlId, CrlKind, RevocationReason};
use crate::service::actor::Actor;
use crate::service::audit::{AuditEntry, append};
use crate::store::audit::AuditLogKind;
use crate::store::certificates::{self, Certificates};
use crate::store::crls::{self, CrlInfo};
use crate::store::{self, now};
use crate::{Clm, Error, Result};

/// Default hours from thisUpdate to nextUpdate.
pub const DEFAULT_CRL_HOURS: u32 = 24;
/// Longest CRL validity accepted (a year).
pub const MAX_CRL_HOURS: u32 = 24 * 366;

/// How far before its base's thisUpdate a delta CRL looks for changes. A
/// revocation is stamped before its transaction commits, so one stamped
/// just before the base was signed may have committed after the base read
/// the revocations: the overlap lists it in the delta (listing a change
/// twice is harmless, missing one is not).
pub const DELTA_CRL_OVERLAP_MINUTES: i64 = 10;

/// Bytes of a CRL stored in one `crl_chunks` row, and the most a
/// [`CrlReader`] hands over at once.
pub const CRL_CHUNK_BYTES: usize = 256 * 1024;

/// What generating a CRL made: its number, scope, times and size. The CRL
/// itself is stored in chunks, never whole in memory; read it with
/// [`Clm::latest_crl`] (whole) or [`Clm::open_latest_crl`] (chunk by chunk).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct CrlSummary {
    /// The CA that signed the CRL.
    pub issuer_certificate_id: CertificateId,
    /// The CRL's cRLNumber, from the CA's one sequence (complete, delta and
    /// partition CRLs alike).
    pub crl_number: i64,
    /// Complete or delta.
    pub kind: CrlKind,
    /// The partition it covers; None for the CA's whole CRL.
    pub partition: Option<u32>,
    /// A delta's base: the complete CRL it updates.
    pub base_crl_number: Option<i64>,
    /// When the CRL was signed (whole seconds).
    pub this_update: DateTime<Utc>,
    /// When the next CRL is due: relying parties treat this one as stale after it.
    pub next_update: DateTime<Utc>,
    /// How many certificates it lists (a delta: with removeFromCRL entries).
    pub entry_count: i64,
    /// The CRL's DER length in bytes.
    pub size_bytes: i64,
}

impl CrlSummary {
    fn from_info(info: &CrlInfo) -> Self {
        CrlSummary {
            issuer_certificate_id: info.issuer_certificate_id,
            crl_number: info.crl_number,
            kind: info.kind,
            partition: info.crl_partition.and_then(|p| u32::try_from(p).ok()),
            base_crl_number: info.base_crl_number,
            this_update: info.this_update,
            next_update: info.next_update,
            entry_count: info.entries_count,
            size_bytes: info.crl_size,
        }
    }
}

/// A signed CRL, as DER and PEM.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct GeneratedCrl {
    /// The CA that signed the CRL.
    pub issuer_certificate_id: CertificateId,
    /// The CRL's cRLNumber, from the CA's one sequence (complete, delta and
    /// partition CRLs alike).
    pub crl_number: i64,
    /// Complete or delta.
    pub kind: CrlKind,
    /// The partition it covers; None for the CA's whole CRL.
    pub partition: Option<u32>,
    /// A delta's base: the complete CRL it updates.
    pub base_crl_number: Option<i64>,
    /// The CRL as DER (Rust only: bindings get `pem`).
    #[serde(skip)]
    pub der: Vec<u8>,
    /// The CRL as one PEM `X509 CRL` block.
    pub pem: String,
    /// When the CRL was signed (whole seconds).
    pub this_update: DateTime<Utc>,
    /// When the next CRL is due: relying parties treat this one as stale after it.
    pub next_update: DateTime<Utc>,
    /// How many certificates it lists (a delta: with removeFromCRL entries).
    pub entry_count: i64,
}

impl GeneratedCrl {
    fn new(summary: CrlSummary, der: Vec<u8>) -> Self {
        GeneratedCrl {
            issuer_certificate_id: summary.issuer_certificate_id,
            crl_number: summary.crl_number,
            kind: summary.kind,
            partition: summary.partition,
            base_crl_number: summary.base_crl_number,
            pem: der_to_pem(PemLabel::X509Crl, &der),
            der,
            this_update: summary.this_update,
            next_update: summary.next_update,
            entry_count: summary.entry_count,
        }
    }
}

/// Reads a stored CRL chunk by chunk, for hosts that serve large CRLs
/// without holding them whole ([`Clm::open_latest_crl`]). The CRL it reads
/// stays stored until a second newer CRL of its scope is signed; read it
/// through before then (a CRL's validity is hours), or open the latest again.
/// It was authorized when opened ([`Clm::open_latest_crl`]).
#[derive(Clone)]
pub struct CrlReader {
    clm: Clm,
    summary: CrlSummary,
    crl: CrlId,
    next_index: i32,
    read: i64,
}

impl std::fmt::Debug for CrlReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlReader")
            .field("summary", &self.summary)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl CrlReader {
    /// The CRL being read: number, scope, times, size.
    pub fn summary(&self) -> &CrlSummary {
        &self.summary
    }

    /// The next chunk of the CRL's DER (at most [`CRL_CHUNK_BYTES`]); None
    /// once all of it was read.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.read >= self.summary.size_bytes {
            return Ok(None);
        }
        let chunk = {
            let mut conn = self.clm.databases().secure.acquire().await?;
            crls::chunk(&mut conn.conn(), self.crl, self.next_index).await?
        };
        let Some(chunk) = chunk else {
            return Err(Error::conflict(format!(
                "CRL number {} of CA {} was replaced by newer CRLs while being read; open the latest again",
                self.summary.crl_number, self.summary.issuer_certificate_id
            )));
        };
        self.next_index = self.next_index.saturating_add(1);
        self.read = self
            .read
            .saturating_add(i64::try_from(chunk.len()).unwrap_or(i64::MAX));
        if self.read > self.summary.size_bytes {
            return Err(Error::Internal(format!(
                "CRL number {} of CA {} is longer than its recorded size",
                self.summary.crl_number, self.summary.issuer_certificate_id
            )));
        }
        Ok(Some(chunk))
    }

    /// The rest of the CRL in one buffer.
    async fn read_to_end(mut self) -> Result<(CrlSummary, Vec<u8>)> {
        let mut der = Vec::with_capacity(usize::try_from(self.summary.size_bytes).unwrap_or(0));
        while let Some(chunk) = self.next_chunk().await? {
            der.extend_from_slice(&chunk);
        }
        Ok((self.summary, der))
    }
}

/// Which CRL of a CA: its whole CRL or a partition's, complete or delta.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrlTarget {
    /// A partition (0-based) of a partitioned CA; None: the whole CA.
    pub partition: Option<u32>,
    /// A delta CRL over the scope's latest complete CRL.
    pub delta: bool,
}

impl CrlTarget {
    fn kind(self) -> CrlKind {
        if self.delta {
            CrlKind::Delta
        } else {
            CrlKind::Full
        }
    }

    fn partition_column(self) -> Option<i32> {
        // At most MAX_CRL_PARTITIONS, checked before any query.
        self.partition.map(|p| i32::try_from(p).unwrap_or(i32::MAX))
    }
}

/// What the lifecycle's CRL step did.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct CrlRefreshReport {
    /// CRLs signed (complete, delta and partition CRLs).
    pub generated: u64,
    /// Revocation entries listed by those CRLs, all together.
    pub entries: u64,
    /// `CA certificate_id: error` for CRLs that failed (retried next run).
    pub errors: Vec<String>,
}

/// CRL times carry whole seconds.
pub(crate) fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// Checks `next_update_hours` (default [`DEFAULT_CRL_HOURS`]).
pub(crate) fn crl_hours(hours: Option<u32>) -> Result<u32> {
    let hours = hours.unwrap_or(DEFAULT_CRL_HOURS);
    if !(1..=MAX_CRL_HOURS).contains(&hours) {
        return Err(Error::invalid(
            "next_update_hours",
            format!("must be 1 to {MAX_CRL_HOURS}"),
        ));
    }
    Ok(hours)
}

impl Clm {
    /// Signs and stores the next CRL of `target` for the CA `issuer_id`,
    /// which the caller has authorized (`authorities:sign_crl`). The CRL
    /// number is taken first, in the CRL's transaction; thisUpdate and the
    /// entries are read after it, while the number's row stays locked, so a
    /// higher number never carries an earlier thisUpdate or misses a
    /// revocation a lower one listed. The entries stream from the database
    /// into the builder in serial order; the key's use is audited in the
    /// same transaction, and nothing (not the number) is used up on failure.
    pub(crate) async fn sign_crl(
        &self,
        actor: &Actor,
        issuer_id: CertificateId,
        target: CrlTarget,
        hours: u32,
    ) -> Result<CrlInfo> {
        let issuer = self.load_issuer(issuer_id).await?;
        let urls = &issuer.issuance_urls;
        let partitions = urls.crl_partitions;
        if let Some(partition) = target.partition {
            match partitions {
                None => {
                    return Err(Error::invalid(
                        "partition",
                        format!("CA {} has no CRL partitions", issuer.row.certificate_id),
                    ));
                }
                Some(count) if partition >= count => {
                    return Err(Error::invalid(
                        "partition",
                        format!(
                            "CA {} has {count} CRL partitions, numbered 0 to {}",
                            issuer.row.certificate_id,
                            count.saturating_sub(1)
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if target.delta && !urls.delta_crls {
            return Err(Error::invalid(
                "delta",
                format!(
                    "CA {} does not publish delta CRLs (create it with delta_crls)",
                    issuer.row.certificate_id
                ),
            ));
        }
        let distribution_point = match target.partition {
            None => None,
            Some(partition) => Some(
                urls.crl_urls(Some(partition))
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        Error::conflict(format!(
                            "CA {} has no CRL URL for its partitions' Issuing Distribution Point; configure a public base URL",
                            issuer.row.certificate_id
                        ))
                    })?,
            ),
        };
        let freshest_crl = if target.delta {
            None
        } else {
            urls.delta_crl_urls(target.partition).into_iter().next()
        };

        let mut tx = self.databases().secure.begin().await?;
        let crl_number = certificates::next_crl_number(&mut tx.conn(), issuer_id).await?;
        failpoint!("crl.number_taken")?;
        // The time is read only now, holding the number (its row stays
        // locked until commit): a later number can never carry an earlier
        // thisUpdate than the CRL before it.
        let this_update = whole_seconds(now());
        let next_update = crate::service::shifted(
            "next_update_hours",
            this_update,
            Duration::hours(i64::from(hours)),
        )?;
        // Re-read under the lock: the status may have changed since the load.
        let current = store::get::<Certificates>(&mut tx.conn(), issuer_id, false).await?;
        match current.status {
            CertificateStatus::Revoked | CertificateStatus::Suspended => {
                return Err(Error::conflict(format!(
                    "CA {} is {}; its key must not sign",
                    current.certificate_id, current.status
                )));
            }
            _ if current.not_after <= this_update => {
                return Err(Error::conflict(format!(
                    "CA {} expired at {}; its key must not sign",
                    current.certificate_id, current.not_after
                )));
            }
            _ => {}
        }
        let base = if target.delta {
            Some(
                crls::latest_info(
                    &mut tx.conn(),
                    issuer_id,
                    CrlKind::Full,
                    target.partition_column(),
                )
                .await?
                .ok_or_else(|| {
                    Error::conflict(format!(
                        "CA {} has no complete CRL of this scope for a delta to update; generate one first",
                        current.certificate_id
                    ))
                })?,
            )
        } else {
            None
        };
        let number = u64::try_from(crl_number)
            .map_err(|_| Error::Internal(format!("negative CRL number {crl_number}")))?;
        let scope = CrlScope {
            delta_of: base
                .as_ref()
                .map(|b| u64::try_from(b.crl_number).unwrap_or(0)),
            distribution_point,
            freshest_crl,
        };
        let mut builder = CrlBuilder::new(&issuer.certificate, &issuer.key, scope)?;
        let since = base
            .as_ref()
            .map(|b| {
                crate::service::shifted(
                    "base.this_update",
                    b.this_update,
                    Duration::minutes(DELTA_CRL_OVERLAP_MINUTES.saturating_neg()),
                )
            })
            .transpose()?;
        crls::stream_revocations(&mut tx.conn(), issuer_id, since, &mut |row| {
            let serial = hex::decode(&row.serial_number).map_err(|_| {
                Error::Internal(format!(
                    "a revocation under CA {issuer_id} has a serial that is not hex"
                ))
            })?;
            if let (Some(partition), Some(count)) = (target.partition, partitions)
                && crl_partition(&serial, count) != partition
            {
                return Ok(());
            }
            // Imported certificates may share a serial, and a delta sees a
            // standing revocation before the same serial's released holds:
            // a CRL lists a serial once, the first seen.
            if builder.last_serial() == Some(serial.as_slice()) {
                return Ok(());
            }
            let (reason, at) = match row.released_at {
                None => (row.revocation_reason, row.revoked_at),
                Some(released) => (RevocationReason::RemoveFromCrl, released),
            };
            builder.push(&CrlEntry {
                serial,
                revoked_at: whole_seconds(at),
                reason,
            })
        })
        .await?;
        let entries = i64::try_from(builder.len()).unwrap_or(i64::MAX);
        let mut signed = {
            let _permit = self.cpu_permit().await?;
            let issuer = issuer.clone();
            tokio::task::spawn_blocking(move || {
                builder.finish(&issuer.key, number, this_update, next_update)
            })
            .await??
        };
        let info = CrlInfo {
            id: CrlId::new(),
            issuer_certificate_id: issuer_id,
            crl_partition: target.partition_column(),
            crl_number,
            kind: target.kind(),
            base_crl_number: base.as_ref().map(|b| b.crl_number),
            this_update,
            next_update,
            entries_count: entries,
            crl_size: i64::try_from(signed.len())
                .map_err(|_| Error::Internal("CRL larger than 2^63 bytes".into()))?,
        };
        crls::insert(&mut tx.conn(), &info).await?;
        // A chunk at a time from the builder's spool into the database: the
        // CRL is never whole in memory.
        let mut index = 0i32;
        loop {
            let (back, chunk) = tokio::task::spawn_blocking(move || {
                let chunk = signed.next_chunk(CRL_CHUNK_BYTES);
                (signed, chunk)
            })
            .await?;
            signed = back;
            let Some(chunk) = chunk? else { break };
            crls::insert_chunk(&mut tx.conn(), info.id, index, &chunk).await?;
            index = index
                .checked_add(1)
                .ok_or_else(|| Error::Internal("CRL has too many chunks".into()))?;
        }
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("crl.generated", "sign_crl")
                .resource("certificate", issuer_id)
                .org(current.organization_id)
                .details(json!({
                    "issuer_certificate_id": current.certificate_id,
                    "ca_key_used": "crl_signing",
                    "crl_number": crl_number,
                    "kind": target.kind(),
                    "partition": target.partition,
                    "base_crl_number": info.base_crl_number,
                    "entries": entries,
                    "this_update": this_update,
                    "next_update": next_update,
                })),
        )
        .await?;
        failpoint!("crl.written")?;
        tx.commit().await?;
        failpoint!("crl.committed")?;
        Ok(info)
    }

    /// Signs the next complete or delta CRL of one partition of a
    /// partitioned CA, or a delta CRL of its whole CRL (`partition` None).
    /// See [`Clm::generate_crl`] for numbering, times and audit; a delta
    /// lists what changed since the scope's latest complete CRL (its base,
    /// named by the Delta CRL Indicator), released holds as removeFromCRL.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn generate_scoped_crl(
        &self,
        actor: &Actor,
        issuer_id: CertificateId,
        partition: Option<u32>,
        delta: bool,
        next_update_hours: Option<u32>,
    ) -> Result<CrlSummary> {
        let row = self
            .certificate_for(actor, issuer_id, "authorities", "sign_crl")
            .await?;
        if !row.is_ca {
            return Err(Error::invalid(
                "issuer_id",
                format!("{} is not a CA certificate", row.certificate_id),
            ));
        }
        let hours = crl_hours(next_update_hours)?;
        let crl = self
            .sign_crl(actor, issuer_id, CrlTarget { partition, delta }, hours)
            .await?;
        Ok(CrlSummary::from_info(&crl))
    }

    /// The latest stored CRL of a CA's scope (its whole CRL or a
    /// partition's; complete or delta), whole, as DER and PEM: what a host
    /// serves at the CRL's URL. Reading needs `certificates:read` on the CA.
    /// NotFound when none was generated yet. A CRL of a million entries is
    /// about 47 MiB: such hosts read it with [`Clm::open_latest_crl`].
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn latest_crl(
        &self,
        actor: &Actor,
        issuer_id: CertificateId,
        partition: Option<u32>,
        delta: bool,
    ) -> Result<GeneratedCrl> {
        let (summary, der) = self
            .open_latest_crl(actor, issuer_id, partition, delta)
            .await?
            .read_to_end()
            .await?;
        Ok(GeneratedCrl::new(summary, der))
    }

    /// The latest stored CRL of a CA's scope, to read chunk by chunk
    /// ([`CrlReader::next_chunk`]): serving a CRL of any size in bounded
    /// memory. Same permission and errors as [`Clm::latest_crl`].
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn open_latest_crl(
        &self,
        actor: &Actor,
        issuer_id: CertificateId,
        partition: Option<u32>,
        delta: bool,
    ) -> Result<CrlReader> {
        self.certificate_for(actor, issuer_id, "certificates", "read")
            .await?;
        let target = CrlTarget { partition, delta };
        if partition.is_some_and(|p| p >= crate::service::certificates::MAX_CRL_PARTITIONS) {
            return Err(Error::invalid(
                "partition",
                format!(
                    "must be below {}",
                    crate::service::certificates::MAX_CRL_PARTITIONS
                ),
            ));
        }
        let info = {
            let mut conn = self.databases().secure.acquire().await?;
            crls::latest_info(
                &mut conn.conn(),
                issuer_id,
                target.kind(),
                target.partition_column(),
            )
            .await?
        }
        .ok_or_else(|| Error::not_found("CRL", issuer_id))?;
        Ok(CrlReader {
            clm: self.clone(),
            summary: CrlSummary::from_info(&info),
            crl: info.id,
            next_index: 0,
            read: 0,
        })
    }

    /// The lifecycle's CRL step: for every CA clm can sign with and that is
    /// in service, each scope (the whole CRL, every partition, and their
    /// deltas when the CA publishes them) whose latest CRL is missing or
    /// past half its validity at `at` is signed anew, so relying parties
    /// never hold a CRL past its nextUpdate while the lifecycle runs at
    /// least every half validity. A CA the actor may not sign CRLs for is
    /// reported, not fatal.
    pub(crate) async fn refresh_crls(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<CrlRefreshReport> {
        let mut report = CrlRefreshReport::default();
        let authorities = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::list_signing_authorities(&mut conn.conn(), None).await?
        };
        for (ca, _) in authorities {
            if !matches!(
                ca.status,
                CertificateStatus::Active | CertificateStatus::Expiring
            ) || ca.not_after <= at
            {
                continue;
            }
            if let Err(err) = self.refresh_ca_crls(actor, ca.id, at, &mut report).await {
                report.errors.push(format!("{}: {err}", ca.certificate_id));
            }
        }
        Ok(report)
    }

    async fn refresh_ca_crls(
        &self,
        actor: &Actor,
        ca: CertificateId,
        at: DateTime<Utc>,
        report: &mut CrlRefreshReport,
    ) -> Result<()> {
        self.certificate_for(actor, ca, "authorities", "sign_crl")
            .await?;
        let issuer = self.load_issuer(ca).await?;
        let mut scopes = vec![None];
        scopes.extend((0..issuer.issuance_urls.crl_partitions.unwrap_or(0)).map(Some));
        let deltas = issuer.issuance_urls.delta_crls;
        for partition in scopes {
            // A complete CRL first: a delta's base is the latest one.
            let mut renewed = false;
            for delta in [false, true] {
                if delta && !deltas {
                    continue;
                }
                let target = CrlTarget { partition, delta };
                let latest = {
                    let mut conn = self.databases().secure.acquire().await?;
                    crls::latest_info(
                        &mut conn.conn(),
                        ca,
                        target.kind(),
                        target.partition_column(),
                    )
                    .await?
                };
                if !renewed && latest.is_some_and(|crl| !half_spent(&crl, at)) {
                    continue;
                }
                let crl = self.sign_crl(actor, ca, target, DEFAULT_CRL_HOURS).await?;
                // A new base makes the scope's deltas stale.
                renewed = true;
                report.generated = report.generated.saturating_add(1);
                report.entries = report
                    .entries
                    .saturating_add(u64::try_from(crl.entries_count).unwrap_or(0));
            }
        }
        Ok(())
    }
}

/// True once half of a CRL's validity has passed at `at`.
fn half_spent(crl: &CrlInfo, at: DateTime<Utc>) -> bool {
    let validity = crl.next_update.signed_duration_since(crl.this_update);
    let half = Duration::seconds(validity.num_seconds() / 2);
    crl.this_update
        .checked_add_signed(half)
        .is_none_or(|midpoint| at >= midpoint)
}
