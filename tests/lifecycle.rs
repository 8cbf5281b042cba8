//! The lifecycle loop on both backends: concurrent runs do no double work,
//! expiry notices are not repeated, auto-renewal replaces certificates once
//! (through approval when the policy requires it); audit retention archives
//! what is past it; the operator's database statistics and maintenance.

mod common;
mod wf_support;

use clm::crypto::parse_certificates;
use clm::model::{
    Certificate, CertificateStatus, NotificationType, PolicyRules, RequestStatus, WorkflowStatus,
};
use clm::service::access::{ROLE_APPROVER, ROLE_OPERATOR};
use clm::service::issuance::IssuanceOutcome;
use clm::service::policies::PolicyUpdate;
use clm::store::now;
use clm::{Actor, Clm};
use common::on_both_keyed;
use wf_support::*;

fn renewing_rules() -> PolicyRules {
    PolicyRules {
        auto_renewal: true,
        renewal_threshold_days: 30,
        ..rules(false, None)
    }
}

async fn issue(
    clm: &Clm,
    actor: &Actor,
    request: clm::service::issuance::IssueRequest,
) -> Certificate {
    match clm.issue_certificate(actor, request).await.expect("issue") {
        IssuanceOutcome::Issued { certificate } => *certificate,
        other => panic!("expected issued, got {other:?}"),
    }
}

/// Live certificates replacing `old`.
async fn successors(clm: &Clm, old: &Certificate) -> Vec<Certificate> {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    clm::store::list::<clm::store::certificates::Certificates>(
        &mut conn.conn(),
        &clm::store::Filter::new().eq("replaces_certificate_id", clm::store::id_value(old.id)),
        &clm::store::PageRequest::first(100),
    )
    .await
    .expect("list")
    .items
}

async fn public_key(clm: &Clm, certificate: &Certificate) -> Vec<u8> {
    let pem = clm
        .get_certificate_pem(&clm.system_actor(), certificate.id)
        .await
        .expect("pem");
    parse_certificates(pem.as_bytes())
        .expect("parse")
        .remove(0)
        .public_key_der
}

#[tokio::test]
async fn concurrent_runs_do_no_double_work_and_notices_are_not_repeated() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "life").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), renewing_rules()).await;
        let (owner, owner_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let mut olds = Vec::new();
        for n in 0..3 {
            olds.push(
                issue(
                    &clm,
                    &owner_actor,
                    leaf(&ca, &pol, Some(org_a), &format!("l{n}.example.com"), 20),
                )
                .await,
            );
        }
        let certs_before = certificate_count(&clm).await;
        let at = now();
        let (r1, r2) = tokio::join!(
            clm.run_lifecycle(&system, at),
            clm.run_lifecycle(&system, at)
        );
        let (r1, r2) = (r1.expect("run 1"), r2.expect("run 2"));
        let ran = [r1.ran, r2.ran].iter().filter(|r| **r).count();
        assert!(ran >= 1, "{r1:?} {r2:?}");
        let reports = [&r1, &r2];
        let renewed: u64 = reports.iter().map(|r| r.renewals_issued).sum();
        let expiring: u64 = reports.iter().map(|r| r.expiring_notices).sum();
        assert_eq!(renewed, 3, "each certificate renewed once: {r1:?} {r2:?}");
        assert_eq!(expiring, 3, "one notice each: {r1:?} {r2:?}");
        for report in reports.iter().filter(|r| !r.ran) {
            assert_eq!(report.renewals_issued + report.expiring_notices, 0);
        }
        assert!(
            r1.renewal_errors.is_empty() && r2.renewal_errors.is_empty(),
            "{r1:?} {r2:?}"
        );
        assert_eq!(certificate_count(&clm).await, certs_before + 3);
        for old in &olds {
            assert_eq!(successors(&clm, old).await.len(), 1, "renewed exactly once");
        }
        let expiring_rows = notices(&clm, owner, Some(NotificationType::CertificateExpiring)).await;
        assert_eq!(expiring_rows.len(), 3);
        assert_eq!(
            notices(&clm, owner, Some(NotificationType::RenewalStarted))
                .await
                .len(),
            3
        );

        // Later runs: nothing new to say or renew.
        for _ in 0..2 {
            let again = clm.run_lifecycle(&system, now()).await.expect("again");
            assert!(again.ran);
            assert_eq!(again.expiring_notices, 0, "{again:?}");
            assert_eq!(
                again.renewals_issued + again.renewals_pending_approval,
                0,
                "{again:?}"
            );
        }
        assert_eq!(
            notices(&clm, owner, Some(NotificationType::CertificateExpiring))
                .await
                .len(),
            3
        );
        assert_eq!(certificate_count(&clm).await, certs_before + 3);

        // Past expiry: one expired notice per certificate, once.
        let later = now() + chrono::Duration::days(25);
        let run = clm.run_lifecycle(&system, later).await.expect("later");
        assert_eq!(run.expired_notices, 3, "{run:?}");
        let run = clm
            .run_lifecycle(&system, later)
            .await
            .expect("later again");
        assert_eq!(run.expired_notices, 0, "{run:?}");
        assert_eq!(
            notices(&clm, owner, Some(NotificationType::CertificateExpired))
                .await
                .len(),
            3
        );
    })
    .await;
}

#[tokio::test]
async fn auto_renewal_replaces_an_expiring_certificate_once() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "renew").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), renewing_rules()).await;
        let other = policy(&clm, Some(org_a), rules(false, None)).await;
        let (_, owner_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let old = issue(
            &clm,
            &owner_actor,
            leaf(&ca, &pol, Some(org_a), "auto.example.com", 20),
        )
        .await;
        // Same lifetime under a policy without auto_renewal: left alone.
        let manual = issue(
            &clm,
            &owner_actor,
            leaf(&ca, &other, Some(org_a), "manual.example.com", 20),
        )
        .await;
        // Far from expiry under the renewing policy: left alone.
        let fresh = issue(
            &clm,
            &owner_actor,
            leaf(&ca, &pol, Some(org_a), "fresh.example.com", 200),
        )
        .await;

        clm.refresh_certificate_statuses(&system, now())
            .await
            .expect("refresh");
        assert_eq!(
            clm.get_certificate(&system, old.id)
                .await
                .expect("get")
                .status,
            CertificateStatus::Expiring
        );

        let report = clm.run_lifecycle(&system, now()).await.expect("run");
        assert!(report.ran);
        assert_eq!(report.renewals_issued, 1, "{report:?}");
        let next = successors(&clm, &old).await;
        assert_eq!(next.len(), 1);
        let new = &next[0];
        assert_eq!(new.replaces_certificate_id, Some(old.id));
        assert_eq!(new.subject_dn, old.subject_dn);
        assert_eq!(new.policy_id, Some(pol.id));
        assert_eq!(new.owner_user_id, old.owner_user_id);
        assert_ne!(new.serial_number, old.serial_number);
        let pem = clm.get_certificate_pem(&system, new.id).await.expect("pem");
        let parsed = parse_certificates(pem.as_bytes()).expect("parse").remove(0);
        assert_eq!(parsed.common_name.as_deref(), Some("auto.example.com"));
        assert_ne!(
            public_key(&clm, new).await,
            public_key(&clm, &old).await,
            "a new key"
        );
        // Its lifetime clears the threshold, or every run would renew again.
        assert!(
            new.not_after > now() + chrono::Duration::days(31),
            "{}",
            new.not_after
        );
        assert!(successors(&clm, &manual).await.is_empty());
        assert!(successors(&clm, &fresh).await.is_empty());

        let report = clm.run_lifecycle(&system, now()).await.expect("second run");
        assert_eq!(
            report.renewals_issued + report.renewals_pending_approval,
            0,
            "{report:?}"
        );
        assert_eq!(successors(&clm, &old).await.len(), 1);
        assert!(
            successors(&clm, new).await.is_empty(),
            "the renewal is not renewed"
        );
    })
    .await;
}

#[tokio::test]
async fn auto_renewal_goes_through_approval_when_required() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "renew-appr").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), renewing_rules()).await;
        let (owner, owner_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let (approver, approver_actor) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let old = issue(
            &clm,
            &owner_actor,
            leaf(&ca, &pol, Some(org_a), "gated.example.com", 20),
        )
        .await;
        clm.update_policy(
            &system,
            pol.id,
            PolicyUpdate {
                rules: Some(PolicyRules {
                    require_approval: true,
                    ..renewing_rules()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("require approval");
        let certs_before = certificate_count(&clm).await;

        let report = clm.run_lifecycle(&system, now()).await.expect("run");
        assert_eq!(report.renewals_pending_approval, 1, "{report:?}");
        assert_eq!(report.renewals_issued, 0);
        assert_eq!(certificate_count(&clm).await, certs_before);
        let pending = clm
            .pending_approvals(&approver_actor)
            .await
            .expect("pending");
        assert_eq!(pending.len(), 1);
        let instance_id = pending[0].workflow_instance_id;
        let view = clm
            .get_workflow_instance(&system, instance_id)
            .await
            .expect("view");
        let request = stored_request(
            &clm,
            clm::model::CertificateRequestId(view.instance.subject_id.as_uuid()),
        )
        .await;
        assert_eq!(request.renewal_of_certificate_id, Some(old.id));
        assert_eq!(request.status, RequestStatus::PendingApproval);
        assert_eq!(request.workflow_instance_id, Some(instance_id));
        assert_eq!(
            notices(&clm, approver, Some(NotificationType::ApprovalRequired))
                .await
                .len(),
            1
        );
        assert_eq!(
            notices(&clm, owner, Some(NotificationType::RenewalStarted))
                .await
                .len(),
            1
        );

        // While it waits, later runs start no second renewal.
        let report = clm.run_lifecycle(&system, now()).await.expect("run again");
        assert_eq!(
            report.renewals_pending_approval + report.renewals_issued,
            0,
            "{report:?}"
        );
        assert_eq!(
            clm.pending_approvals(&approver_actor)
                .await
                .expect("pending")
                .len(),
            1
        );

        let done = clm
            .decide_approval(&approver_actor, instance_id, true, None)
            .await
            .expect("approve");
        assert_eq!(
            done.instance.status,
            WorkflowStatus::Completed,
            "{:?}",
            done.instance.error_message
        );
        let next = successors(&clm, &old).await;
        assert_eq!(next.len(), 1);
        assert_eq!(Some(next[0].id), done.instance.certificate_id);
        assert_ne!(
            public_key(&clm, &next[0]).await,
            public_key(&clm, &old).await
        );
        let report = clm
            .run_lifecycle(&system, now())
            .await
            .expect("after approval");
        assert_eq!(
            report.renewals_pending_approval + report.renewals_issued,
            0,
            "{report:?}"
        );
        assert_eq!(certificate_count(&clm).await, certs_before + 1);
    })
    .await;
}

#[tokio::test]
async fn a_rejected_renewal_is_not_requested_again() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "renew-rej").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), renewing_rules()).await;
        let (_, owner_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let (approver, approver_actor) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        issue(
            &clm,
            &owner_actor,
            leaf(&ca, &pol, Some(org_a), "nope.example.com", 20),
        )
        .await;
        clm.update_policy(
            &system,
            pol.id,
            PolicyUpdate {
                rules: Some(PolicyRules {
                    require_approval: true,
                    ..renewing_rules()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("require approval");
        assert_eq!(
            clm.run_lifecycle(&system, now())
                .await
                .expect("run")
                .renewals_pending_approval,
            1
        );
        let pending = clm
            .pending_approvals(&approver_actor)
            .await
            .expect("pending");
        clm.decide_approval(
            &approver_actor,
            pending[0].workflow_instance_id,
            false,
            Some("no".into()),
        )
        .await
        .expect("reject");
        for _ in 0..2 {
            let report = clm.run_lifecycle(&system, now()).await.expect("run");
            assert_eq!(
                report.renewals_pending_approval, 0,
                "no storm of requests: {report:?}"
            );
        }
        assert_eq!(
            notices(&clm, approver, Some(NotificationType::ApprovalRequired))
                .await
                .len(),
            1
        );
    })
    .await;
}

// ------------------------------------------------------------ audit retention

mod retention {
    use std::path::Path;
    use std::time::Duration;

    use chrono::{DateTime, Utc};
    use clm::model::{AuditEvent, Permissions};
    use clm::service::access::NewRole;
    use clm::service::audit::row_hash;
    use clm::store::audit::{AuditFilter, AuditLogKind};
    use clm::store::{PageRequest, now};
    use clm::{AuditRetention, Clm, ClmConfig, ErrorCode};

    use crate::common::{on_both_configs, test_master_key, unique};
    use crate::wf_support::{root_ca, security, user_in, user_with_role};

    async fn open(config: ClmConfig, retention: AuditRetention) -> clm::Result<Clm> {
        Clm::open(
            config
                .with_master_key(test_master_key())
                .with_security(security())
                .with_audit_retention(retention),
        )
        .await
    }

    /// Every event of a trail still in the database, oldest first.
    async fn events(clm: &Clm, kind: AuditLogKind) -> Vec<AuditEvent> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let got = clm
                .list_audit_events(&clm.system_actor(), kind, &AuditFilter::default(), &page)
                .await
                .expect("audit events");
            all.extend(got.items);
            match got.next_cursor {
                Some(cursor) => page = PageRequest::after(500, Some(cursor)),
                None => break,
            }
        }
        all.reverse();
        all
    }

    fn archived_lines(file: &Path) -> Vec<AuditEvent> {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("an audit event per line"))
            .collect()
    }

    async fn intact(clm: &Clm) {
        for kind in [AuditLogKind::Secure, AuditLogKind::Core] {
            let report = clm
                .verify_audit_chain(&clm.system_actor(), kind)
                .await
                .expect("verify");
            assert!(report.is_intact(), "{kind:?}: {report:?}");
        }
    }

    /// Some rows in both trails: a root CA (secure and core) and a user.
    async fn activity(clm: &Clm) {
        root_ca(clm, None).await;
        user_in(clm, None, &[]).await;
    }

    #[tokio::test]
    async fn lifecycle_archives_rows_past_retention_with_their_anchor_once() {
        on_both_configs(|config| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let archive = dir.path().join("audit-archive");
            let clm = open(config, AuditRetention::archive_to(90, &archive))
                .await
                .expect("open");
            let system = clm.system_actor();
            activity(&clm).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let boundary: DateTime<Utc> = now();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (newer_user, _) = user_in(&clm, None, &[]).await;
            let old_of = |events: &[AuditEvent]| {
                events
                    .iter()
                    .filter(|e| e.event_timestamp < boundary)
                    .count() as u64
            };
            let secure_old = old_of(&events(&clm, AuditLogKind::Secure).await);
            let core_old = old_of(&events(&clm, AuditLogKind::Core).await);
            assert!(secure_old > 0 && core_old > 0, "{secure_old} {core_old}");

            // 90 days after the boundary, exactly the rows before it are due.
            let at = boundary + chrono::Duration::days(90);
            let report = clm.run_lifecycle(&system, at).await.expect("lifecycle");
            let retention = &report.audit_retention;
            assert_eq!(retention.retention_days, 90);
            assert_eq!(retention.cutoff, Some(boundary));
            assert_eq!(retention.secure_archived, secure_old, "{retention:?}");
            assert_eq!(retention.core_archived, core_old, "{retention:?}");
            assert_eq!(retention.runs.len(), 2);
            for run in &retention.runs {
                let lines = archived_lines(Path::new(&run.file));
                assert_eq!(lines.len() as u64, run.archived, "{run:?}");
                // The file verifies on its own: contiguous from the chain's
                // start, each row's hash recomputes and links to the last,
                // and its last row is the anchor the chain keeps.
                let mut previous = clm::service::audit::GENESIS_HASH.to_string();
                for (n, event) in lines.iter().enumerate() {
                    assert_eq!(event.sequence_number, n as i64 + 1);
                    assert_eq!(event.previous_hash, previous);
                    assert_eq!(row_hash(event), event.row_hash);
                    assert!(event.event_timestamp < boundary);
                    previous = event.row_hash.clone();
                }
                assert_eq!(run.anchor_hash.as_deref(), Some(previous.as_str()));
                let kind = if run.log == "audit_log" {
                    AuditLogKind::Core
                } else {
                    AuditLogKind::Secure
                };
                let left = events(&clm, kind).await;
                assert!(
                    left.iter().all(|e| e.event_timestamp >= boundary),
                    "{left:?}"
                );
                let record = left
                    .iter()
                    .find(|e| e.event_type == "audit.archived")
                    .expect("archive record");
                assert_eq!(record.details.0["anchor_hash"], previous.as_str());
            }
            intact(&clm).await;
            // Newer rows stay: the later user's creation is still there.
            let core = events(&clm, AuditLogKind::Core).await;
            assert!(
                core.iter().any(|e| e.event_type == "user.created"
                    && e.resource_id.map(|r| r.0) == Some(newer_user.into())),
                "the newer user's row stays"
            );

            // A second run finds nothing more past retention.
            let again = clm.run_lifecycle(&system, at).await.expect("again");
            assert_eq!(again.audit_retention.secure_archived, 0);
            assert_eq!(again.audit_retention.core_archived, 0);
            for run in &retention.runs {
                assert_eq!(
                    archived_lines(Path::new(&run.file)).len() as u64,
                    run.archived
                );
            }
            intact(&clm).await;
            clm.close().await;
        })
        .await;
    }

    #[tokio::test]
    async fn without_an_archive_directory_nothing_is_archived() {
        on_both_configs(|config| async move {
            let clm = open(config, AuditRetention::default()).await.expect("open");
            activity(&clm).await;
            let before = events(&clm, AuditLogKind::Core).await.len();
            let far = Utc::now() + chrono::Duration::days(3000);
            let report = clm
                .run_lifecycle(&clm.system_actor(), far)
                .await
                .expect("lifecycle");
            let retention = &report.audit_retention;
            assert_eq!(retention.archive_dir, None);
            assert_eq!(retention.retention_days, 365);
            assert_eq!((retention.secure_archived, retention.core_archived), (0, 0));
            assert!(retention.runs.is_empty());
            // Every row is still there (plus the run's own record).
            assert!(events(&clm, AuditLogKind::Core).await.len() > before);
            assert!(
                events(&clm, AuditLogKind::Core)
                    .await
                    .iter()
                    .all(|e| e.event_type != "audit.archived")
            );
            clm.close().await;
        })
        .await;
    }

    #[tokio::test]
    async fn bad_retention_is_refused_and_changes_nothing() {
        on_both_configs(|config| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let archive = dir.path().join("never");
            for days in [0, 30, 89, 366, 10_000] {
                let err = open(config.clone(), AuditRetention::archive_to(days, &archive))
                    .await
                    .expect_err("retention out of range");
                assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
                assert!(
                    err.to_string().contains("audit_retention.retention_days"),
                    "{err}"
                );
            }
            assert!(!archive.exists(), "a refused configuration writes nothing");
            // Nothing was opened or archived: a good configuration opens on
            // untouched databases, whose trails hold only its own seeding.
            let clm = open(config, AuditRetention::archive_to(365, &archive))
                .await
                .expect("open");
            let archived = events(&clm, AuditLogKind::Core)
                .await
                .into_iter()
                .filter(|e| e.event_type == "audit.archived" || e.event_type == "lifecycle.run")
                .count();
            assert_eq!(archived, 0);
            clm.close().await;
        })
        .await;
    }

    /// With archiving configured the lifecycle also moves audit rows, so it
    /// needs `audit:archive` besides `system:lifecycle`.
    #[tokio::test]
    async fn archiving_lifecycle_needs_audit_archive() {
        on_both_configs(|config| async move {
            let dir = tempfile::tempdir().expect("tempdir");
            let clm = open(config, AuditRetention::archive_to(90, dir.path().join("a")))
                .await
                .expect("open");
            let system = clm.system_actor();
            let role = clm
                .create_role(
                    &system,
                    NewRole {
                        role_code: unique("CRON"),
                        role_name: "Lifecycle runner".into(),
                        description: None,
                        permissions: Permissions::from_pairs(&[(
                            "system",
                            &["admin", "lifecycle"],
                        )]),
                        organization_id: None,
                    },
                )
                .await
                .expect("role");
            let (_, cron) = user_with_role(&clm, None, role.id).await;
            let err = clm
                .run_lifecycle(&cron, Utc::now() + chrono::Duration::days(400))
                .await
                .expect_err("no audit:archive");
            assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
            assert!(err.to_string().contains("audit"), "{err}");
            assert!(!dir.path().join("a").exists(), "nothing archived");
            clm.close().await;
        })
        .await;
    }
}

// ------------------------------------------------------- operator maintenance

mod maintenance {
    use clm::service::maintenance::{DatabaseStats, MaintainOptions};
    use clm::store::PageRequest;
    use clm::store::audit::{AuditFilter, AuditLogKind};

    use crate::common::on_both_keyed;
    use crate::wf_support::{root_ca, security};

    fn table<'a>(
        stats: &'a DatabaseStats,
        name: &str,
    ) -> &'a clm::service::maintenance::TableStats {
        stats
            .tables
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", stats.tables))
    }

    #[tokio::test]
    async fn database_stats_report_sizes_indexes_dead_space_and_pools() {
        on_both_keyed(security(), |clm| async move {
            let system = clm.system_actor();
            root_ca(&clm, None).await;
            let report = clm.database_stats(&system).await.expect("stats");
            let postgres = report.secure.backend == "postgres";
            for (stats, name, audit) in [
                (&report.secure, "secure", "secure_audit_log"),
                (&report.core, "core", "audit_log"),
            ] {
                assert_eq!(stats.database, name);
                assert!(stats.total_bytes > 0, "{stats:?}");
                let trail = table(stats, audit);
                assert!(trail.table_bytes.is_some_and(|b| b > 0), "{trail:?}");
                assert!(trail.index_bytes.is_some_and(|b| b > 0), "{trail:?}");
                // PostgreSQL's total adds TOAST and other forks.
                let parts = trail.table_bytes.unwrap_or(0) + trail.index_bytes.unwrap_or(0);
                let total = trail.total_bytes.unwrap_or(0);
                assert!(
                    if postgres {
                        total >= parts
                    } else {
                        total == parts
                    },
                    "{trail:?}"
                );
                let index = stats
                    .indexes
                    .iter()
                    .find(|i| i.table == audit)
                    .expect("the trail's indexes");
                assert!(index.bytes.is_some_and(|b| b > 0), "{index:?}");
                // The pools of on_both_keyed: four connections at most.
                assert_eq!(stats.pool.max_connections, 4);
                assert!(stats.pool.idle <= stats.pool.open);
                assert_eq!(stats.replica_pool, None);
                if postgres {
                    assert!(index.scans.is_some() && trail.dead_rows.is_some());
                    assert_eq!(stats.free_pages, None);
                } else {
                    assert_eq!(
                        (index.scans, trail.dead_rows, trail.live_rows),
                        (None, None, None)
                    );
                    assert!(stats.free_pages.is_some() && stats.page_size.is_some());
                    assert!(stats.notes.iter().any(|n| n.contains("index use")));
                }
            }
        })
        .await;
    }

    #[tokio::test]
    async fn maintain_runs_each_backends_statements_and_is_audited() {
        on_both_keyed(security(), |clm| async move {
            let system = clm.system_actor();
            root_ca(&clm, None).await;
            let report = clm
                .maintain(
                    &system,
                    MaintainOptions {
                        vacuum: true,
                        analyze: true,
                    },
                )
                .await
                .expect("maintain");
            let postgres = clm.databases().dialect() == clm::db::Dialect::Postgres;
            let statements: Vec<(&str, &str)> = report
                .steps
                .iter()
                .map(|s| (s.database.as_str(), s.statement.as_str()))
                .collect();
            let expected: Vec<(&str, &str)> = if postgres {
                vec![("secure", "VACUUM (ANALYZE)"), ("core", "VACUUM (ANALYZE)")]
            } else {
                ["secure", "core"]
                    .into_iter()
                    .flat_map(|db| {
                        [
                            (db, "PRAGMA optimize"),
                            (db, "VACUUM"),
                            (db, "PRAGMA wal_checkpoint(TRUNCATE)"),
                        ]
                    })
                    .collect()
            };
            assert_eq!(statements, expected, "{report:?}");
            if postgres {
                // The test databases' owner runs them: nothing skipped.
                assert!(
                    report.steps.iter().all(|s| !s
                        .detail
                        .as_deref()
                        .unwrap_or("")
                        .contains("skipped"))
                );
            } else {
                // VACUUM returned the free pages.
                let stats = clm.database_stats(&system).await.expect("stats");
                assert_eq!(stats.core.free_pages, Some(0), "{:?}", stats.core);
            }

            // Analyze only: PostgreSQL ANALYZE; SQLite optimize + checkpoint.
            let light = clm
                .maintain(&system, MaintainOptions::default())
                .await
                .expect("default run");
            let first = light.steps.first().map(|s| s.statement.as_str());
            assert_eq!(
                first,
                Some(if postgres {
                    "ANALYZE"
                } else {
                    "PRAGMA optimize"
                })
            );
            assert!(light.steps.iter().all(|s| s.statement != "VACUUM"));

            let filter = AuditFilter {
                event_type: Some("system.maintained".into()),
                ..AuditFilter::default()
            };
            let rows = clm
                .list_audit_events(
                    &system,
                    AuditLogKind::Core,
                    &filter,
                    &PageRequest::first(10),
                )
                .await
                .expect("audit")
                .items;
            assert_eq!(rows.len(), 2, "one audit row per run");
            // Newest first: the light run, then the full one with its steps.
            assert_eq!(rows[1].details.0["vacuum"], true);
            assert_eq!(
                rows[1].details.0["steps"].as_array().map(Vec::len),
                Some(report.steps.len())
            );
        })
        .await;
    }
}
