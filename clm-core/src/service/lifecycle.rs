//! The lifecycle loop: one call that a cron job or timer runs, from one or
//! several processes, moving statuses forward, telling owners about expiry,
//! renewing what policies say to renew, and expiring stale requests.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::db::{Lock, RunLease};
use crate::model::PolicyRules;
use crate::model::{CertificateStatus, NotificationPriority, NotificationType};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{ArchiveReport, AuditEntry, commit_audited, days_before};
use crate::service::inventory::{CertificateSearch, StatusRefreshReport};
use crate::service::issuance::{IssuanceOutcome, RenewOptions};
use crate::service::notifications::{Notice, notify};
use crate::store::audit::AuditLogKind;
use crate::store::policies::Policies;
use crate::store::{self, PageRequest, certificates, policies};
use crate::{AuditRetention, Clm, Error, Result};

/// What one lifecycle run did.
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct LifecycleReport {
    /// False when another process was already running the loop.
    pub ran: bool,
    /// The status transitions made.
    pub statuses: StatusRefreshReport,
    /// New "expiring soon" notices to owners (one per certificate and threshold).
    pub expiring_notices: u64,
    /// New "expired" notices to owners (one per certificate).
    pub expired_notices: u64,
    /// Renewals signed at once.
    pub renewals_issued: u64,
    /// Renewals left waiting for approval.
    pub renewals_pending_approval: u64,
    /// `certificate_id: error` for renewals that failed (retried next run).
    pub renewal_errors: Vec<String>,
    /// Waiting workflow instances past their expiry, cancelled with their requests.
    pub workflows_expired: u64,
    /// Audit rows archived under the configured retention.
    pub audit_retention: AuditRetentionReport,
    /// Delegated OCSP responders renewed and stored responses re-signed.
    pub ocsp: crate::service::ocsp::OcspLifecycleReport,
    /// CRLs signed ahead of their nextUpdate (every CA, partition and delta).
    pub crls: crate::service::crls::CrlRefreshReport,
}

/// What the lifecycle's audit retention step did ([`crate::AuditRetention`]).
#[derive(Debug, Clone, Default, serde::Serialize, schemars::JsonSchema)]
pub struct AuditRetentionReport {
    /// The configured retention in days.
    pub retention_days: u32,
    /// Where rows were archived; None when no archive directory is
    /// configured, and then nothing was archived.
    pub archive_dir: Option<String>,
    /// Rows older than this were archived (None when not archiving).
    pub cutoff: Option<DateTime<Utc>>,
    /// Rows moved out of the secure database's trail (`secure_audit_log`).
    pub secure_archived: u64,
    /// Rows moved out of the core database's trail (`audit_log`).
    pub core_archived: u64,
    /// Each database's archive run (file, last sequence, chain anchor).
    pub runs: Vec<ArchiveReport>,
}

/// Expired certificates are reported for this long after expiry.
const EXPIRED_NOTICE_WINDOW_DAYS: i64 = 30;
/// Renewals started per run; the rest wait for the next run.
const RENEWALS_PER_RUN: u32 = 500;

/// Validity of an automatic renewal. The certificate's own validity
/// (`None`: renew_certificate's default) unless that is within the renewal
/// threshold: then the renewal would be due again at once and every run
/// would renew it anew, so it gets its original lifetime on top of the
/// threshold (capped by the policy). A policy whose longest validity is
/// within its own threshold cannot be renewed automatically at all.
fn renewal_validity(
    certificate: &crate::model::Certificate,
    rules: &PolicyRules,
) -> std::result::Result<Option<u32>, String> {
    let original = u32::try_from(
        certificate
            .not_after
            .signed_duration_since(certificate.not_before)
            .num_days()
            .max(1),
    )
    .unwrap_or(1);
    let threshold = rules.renewal_threshold_days;
    if original.min(rules.max_validity_days) > threshold {
        return Ok(None);
    }
    let days = original
        .saturating_add(threshold)
        .min(rules.max_validity_days);
    if days <= threshold {
        return Err(format!(
            "its policy renews {threshold} days before expiry but allows at most {} days of validity: every renewal would be due at once; renew it by hand or fix the policy",
            rules.max_validity_days
        ));
    }
    Ok(Some(days))
}

impl Clm {
    /// Runs the lifecycle loop for time `at`: refresh statuses, write expiry
    /// notices (once per certificate and threshold), start renewals that
    /// auto-renewing policies call for (through approval where required),
    /// expire stale requests, renew delegated OCSP responders and re-sign
    /// stored OCSP responses ahead of their nextUpdate, sign every CA's CRLs
    /// (partitions and deltas included) that are missing or past half their
    /// validity, and archive audit rows older than the
    /// configured retention as of `at` ([`AuditRetention`]; archiving also
    /// needs `audit:archive`). Concurrent runs in other processes are
    /// skipped (`ran: false`), never doubled.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn run_lifecycle(&self, actor: &Actor, at: DateTime<Utc>) -> Result<LifecycleReport> {
        self.authorize(actor, Access::new("system", "lifecycle"))
            .await?;
        if self.config().audit_retention.archive_dir.is_some() {
            self.authorize(actor, Access::new("audit", "archive"))
                .await?;
        }
        let at = crate::service::checked_instant("at", at)?;
        let lease = RunLease::try_take(
            &self.databases().core,
            &self.config().database,
            Lock::Lifecycle,
            "lifecycle.lock",
        )
        .await?;
        let Some(lease) = lease else {
            tracing::info!("lifecycle: another process is running the loop; skipped");
            return Ok(LifecycleReport::default());
        };
        let outcome = self.lifecycle_steps(actor, at).await;
        lease.release().await?;
        let report = outcome?;
        // The run is one audit row with its counts.
        let details = serde_json::to_value(&report)?;
        let tx = self.databases().core.begin().await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("lifecycle.run", "lifecycle")
                .details(json!({"at": at, "report": details})),
        )
        .await?;
        Ok(report)
    }

    async fn lifecycle_steps(&self, actor: &Actor, at: DateTime<Utc>) -> Result<LifecycleReport> {
        let mut report = LifecycleReport {
            ran: true,
            statuses: self.refresh_certificate_statuses(actor, at).await?,
            ..Default::default()
        };
        tracing::info!(statuses = ?report.statuses, "lifecycle: statuses refreshed");
        report.expiring_notices = self
            .notify_owners(actor, CertificateStatus::Expiring, at)
            .await?;
        report.expired_notices = self
            .notify_owners(actor, CertificateStatus::Expired, at)
            .await?;
        tracing::info!(
            expiring = report.expiring_notices,
            expired = report.expired_notices,
            "lifecycle: expiry notices written"
        );
        self.auto_renew(actor, &mut report).await?;
        tracing::info!(
            issued = report.renewals_issued,
            pending_approval = report.renewals_pending_approval,
            failed = report.renewal_errors.len(),
            "lifecycle: renewals started"
        );
        report.workflows_expired = self.expire_stale_workflows(actor, at).await?;
        tracing::info!(
            workflows_expired = report.workflows_expired,
            "lifecycle: stale requests expired"
        );
        report.ocsp = Box::pin(self.ocsp_lifecycle(at)).await?;
        tracing::info!(
            signers_renewed = report.ocsp.signers_renewed,
            responses_refreshed = report.ocsp.responses_refreshed,
            "lifecycle: OCSP responders and responses refreshed"
        );
        report.crls = self.refresh_crls(actor, at).await?;
        tracing::info!(
            generated = report.crls.generated,
            failed = report.crls.errors.len(),
            "lifecycle: CRLs refreshed"
        );
        report.audit_retention = self.archive_expired_audit(actor, at).await?;
        tracing::info!(
            secure_archived = report.audit_retention.secure_archived,
            core_archived = report.audit_retention.core_archived,
            "lifecycle: audit retention applied"
        );
        Ok(report)
    }

    /// Archives both trails' rows older than the retention as of `at` into
    /// `<archive_dir>/<table>-<YYYY-MM-DD of at>.jsonl` (appended), through
    /// the one archive rule ([`Clm::archive_audit_events`]'s).
    async fn archive_expired_audit(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<AuditRetentionReport> {
        let retention: &AuditRetention = &self.config().audit_retention;
        let mut report = AuditRetentionReport {
            retention_days: retention.retention_days,
            ..Default::default()
        };
        let Some(dir) = &retention.archive_dir else {
            return Ok(report);
        };
        let cutoff = days_before(
            at,
            "audit_retention.retention_days",
            retention.retention_days,
            AuditRetention::MAX_DAYS,
        )?;
        std::fs::create_dir_all(dir).map_err(|err| {
            Error::Configuration(format!(
                "cannot create the audit archive directory {}: {err}",
                dir.display()
            ))
        })?;
        report.archive_dir = Some(dir.display().to_string());
        report.cutoff = Some(cutoff);
        for kind in [AuditLogKind::Secure, AuditLogKind::Core] {
            let file = dir.join(format!("{}-{}.jsonl", kind.table(), at.format("%Y-%m-%d")));
            let run = self
                .archive_audit_before(actor, kind, cutoff, &file)
                .await?;
            match kind {
                AuditLogKind::Secure => report.secure_archived = run.archived,
                AuditLogKind::Core => report.core_archived = run.archived,
            }
            report.runs.push(run);
        }
        Ok(report)
    }

    /// One notice per certificate per threshold, to its owner.
    async fn notify_owners(
        &self,
        actor: &Actor,
        status: CertificateStatus,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let mut search = CertificateSearch {
            status: Some(vec![status]),
            ..Default::default()
        };
        if status == CertificateStatus::Expired {
            search.expires_after = Some(crate::service::shifted(
                "at",
                at,
                Duration::days(EXPIRED_NOTICE_WINDOW_DAYS.saturating_neg()),
            )?);
        }
        let mut page = PageRequest::first(500);
        let mut written: u64 = 0;
        loop {
            let batch = self.search_certificates(actor, &search, &page).await?;
            let mut tx = self.databases().core.begin().await?;
            for certificate in batch.items.iter() {
                let Some(owner) = certificate.owner_user_id else {
                    continue;
                };
                let name = certificate
                    .common_name
                    .clone()
                    .unwrap_or_else(|| certificate.subject_dn.clone());
                let notice = match status {
                    CertificateStatus::Expired => Notice::new(
                        owner,
                        NotificationType::CertificateExpired,
                        "Certificate expired",
                        format!(
                            "Certificate {name} ({}) expired on {}",
                            certificate.certificate_id, certificate.not_after
                        ),
                    )
                    .priority(NotificationPriority::Critical)
                    .once(format!("certificate_expired:{}", certificate.id)),
                    _ => {
                        let days = certificate.not_after.signed_duration_since(at).num_days();
                        Notice::new(
                            owner,
                            NotificationType::CertificateExpiring,
                            "Certificate expiring",
                            format!(
                                "Certificate {name} ({}) expires on {} (in {days} days)",
                                certificate.certificate_id, certificate.not_after
                            ),
                        )
                        .priority(NotificationPriority::High)
                        .once(format!(
                            "certificate_expiring:{}:{}",
                            certificate.id,
                            certificate.not_after.timestamp()
                        ))
                    }
                };
                if notify(&mut tx.conn(), notice.about("certificate", certificate.id)).await? {
                    written = written.saturating_add(1);
                }
            }
            tx.commit().await?;
            match batch.next_cursor {
                Some(cursor) => page = PageRequest::after(500, Some(cursor)),
                None => break,
            }
        }
        Ok(written)
    }

    /// Renews expiring certificates whose policy has auto_renewal.
    async fn auto_renew(&self, actor: &Actor, report: &mut LifecycleReport) -> Result<()> {
        let policy_ids = {
            let mut conn = self.databases().core.acquire().await?;
            policies::auto_renewal_policies(&mut conn.conn()).await?
        };
        let candidates = {
            let mut conn = self.databases().secure.acquire().await?;
            certificates::renewal_candidates(&mut conn.conn(), &policy_ids, RENEWALS_PER_RUN)
                .await?
        };
        let mut rules_of: std::collections::HashMap<crate::model::PolicyId, PolicyRules> =
            std::collections::HashMap::new();
        for certificate in candidates {
            let Some(policy_id) = certificate.policy_id else {
                continue;
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = rules_of.entry(policy_id) {
                let mut conn = self.databases().core.acquire().await?;
                let policy = store::get::<Policies>(&mut conn.conn(), policy_id, false).await?;
                slot.insert(policy.policy_rules.0);
            }
            let validity_days = match renewal_validity(&certificate, &rules_of[&policy_id]) {
                Ok(days) => days,
                Err(reason) => {
                    report
                        .renewal_errors
                        .push(format!("{}: {reason}", certificate.certificate_id));
                    continue;
                }
            };
            let options = RenewOptions {
                reuse_key: false,
                validity_days,
            };
            match self.renew_certificate(actor, certificate.id, options).await {
                Ok(outcome) => {
                    let pending = matches!(outcome, IssuanceOutcome::Pending { .. });
                    if pending {
                        report.renewals_pending_approval =
                            report.renewals_pending_approval.saturating_add(1);
                    } else {
                        report.renewals_issued = report.renewals_issued.saturating_add(1);
                    }
                    if let Some(owner) = certificate.owner_user_id {
                        let mut tx = self.databases().core.begin().await?;
                        notify(
                            &mut tx.conn(),
                            Notice::new(
                                owner,
                                NotificationType::RenewalStarted,
                                "Certificate renewal",
                                format!(
                                    "Certificate {} {}",
                                    certificate.certificate_id,
                                    if pending {
                                        "is being renewed and waits for approval"
                                    } else {
                                        "was renewed"
                                    }
                                ),
                            )
                            .about("certificate", certificate.id)
                            .once(format!("renewal_started:{}", certificate.id)),
                        )
                        .await?;
                        tx.commit().await?;
                    }
                }
                Err(err) => report
                    .renewal_errors
                    .push(format!("{}: {err}", certificate.certificate_id)),
            }
        }
        Ok(())
    }
}
