//! The lifecycle loop on both backends: concurrent runs do no double work,
//! expiry notices are not repeated, auto-renewal replaces certificates once
//! (through approval when the policy requires it).

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
