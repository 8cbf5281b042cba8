//! Approval workflows and notifications on both backends: definitions,
//! the full request -> approval(s) -> issuance -> notification path,
//! rejection, cancellation, M-of-N, eligibility, concurrent approvals,
//! status transitions, failure and retry, expiry, and the outbox.

mod common;
mod wf_support;

use chrono::Duration;
use clm::crypto::certificate::verify_signed_by;
use clm::crypto::parse_certificates;
use clm::model::{
    NotificationType, RequestStatus, RevocationReason, WorkflowDefinition, WorkflowStatus,
};
use clm::service::access::{ROLE_APPROVER, ROLE_OPERATOR};
use clm::service::workflows::{NewWorkflow, check_transition};
use clm::store::{PageRequest, now, views};
use clm::{Clm, Error, ErrorCode};
use common::{on_both_keyed, unique};
use wf_support::*;

fn invalid_field(err: &Error) -> (String, String) {
    match err {
        Error::InvalidInput { field, reason, .. } => (field.clone(), reason.clone()),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

async fn create_raw(clm: &Clm, json: &str) -> clm::Result<clm::model::Workflow> {
    // Built with serde alone, so that create_workflow's own checks run.
    let definition: WorkflowDefinition = serde_json::from_str(json).expect("serde");
    clm.create_workflow(
        &clm.system_actor(),
        NewWorkflow {
            workflow_code: unique("WF"),
            name: "raw".into(),
            description: None,
            definition,
            organization_id: None,
            is_default: false,
        },
    )
    .await
}

// ---------------------------------------------------------------- definitions

#[tokio::test]
async fn definitions_are_validated_naming_step_and_field() {
    on_both_keyed(security(), |clm| async move {
        let dup = r#"{"steps":[{"step_id":1,"type":"validation"},{"step_id":1,"type":"approval","approvers":["role:APPROVER"]}]}"#;
        let (field, reason) = invalid_field(&create_raw(&clm, dup).await.unwrap_err());
        assert_eq!(field, "workflow_definition.steps[1].step_id", "{reason}");
        let (field, _) = invalid_field(&WorkflowDefinition::parse(dup).unwrap_err());
        assert_eq!(field, "workflow_definition.steps[1].step_id");

        let unknown = r#"{"steps":[{"step_id":1,"type":"teleport"}]}"#;
        let (field, reason) = invalid_field(&WorkflowDefinition::parse(unknown).unwrap_err());
        assert_eq!(field, "workflow_definition.steps[0].type", "{reason}");
        assert!(reason.contains("teleport"), "{reason}");

        let nope = r#"{"steps":[{"step_id":1,"type":"validation"},{"step_id":2,"type":"approval","approvers":["role:NOPE"]}]}"#;
        let (field, reason) = invalid_field(&create_raw(&clm, nope).await.unwrap_err());
        assert_eq!(field, "workflow_definition.steps[1].approvers");
        assert!(reason.contains("NOPE"), "{reason}");

        let ghost = uuid::Uuid::new_v4();
        let missing_user = format!(
            r#"{{"steps":[{{"step_id":7,"type":"approval","approvers":["role:APPROVER","user:{ghost}"]}}]}}"#
        );
        let (field, reason) = invalid_field(&create_raw(&clm, &missing_user).await.unwrap_err());
        assert_eq!(field, "workflow_definition.steps[0].approvers");
        assert!(reason.contains(&ghost.to_string()), "{reason}");

        let malformed = r#"{"steps":[{"step_id":"one","type":"approval","approvers":["role:APPROVER"]}]}"#;
        let (field, _) = invalid_field(&WorkflowDefinition::parse(malformed).unwrap_err());
        assert_eq!(field, "workflow_definition.steps[0].step_id");
        let (field, _) = invalid_field(&WorkflowDefinition::parse(r#"{"steps": ["#).unwrap_err());
        assert!(field.starts_with("workflow_definition"), "{field}");
        let bad_ref = r#"{"steps":[{"step_id":1,"type":"approval","approvers":["group:x"]}]}"#;
        let (field, _) = invalid_field(&WorkflowDefinition::parse(bad_ref).unwrap_err());
        assert_eq!(field, "workflow_definition.steps[0].approvers");
        let zero = r#"{"steps":[{"step_id":1,"type":"approval","approvers":["role:APPROVER"],"required_approvals":0}]}"#;
        let (field, _) = invalid_field(&WorkflowDefinition::parse(zero).unwrap_err());
        assert_eq!(field, "workflow_definition.steps[0].required_approvals");

        // A valid one is stored; nothing was stored by the refusals.
        let (approver, _) = user_in(&clm, None, &[ROLE_APPROVER]).await;
        let ok = create_raw(
            &clm,
            &format!(r#"{{"steps":[{{"step_id":1,"type":"approval","approvers":["role:APPROVER","user:{}"]}}]}}"#, approver.0),
        )
        .await
        .expect("valid definition");
        let listed = clm
            .list_workflows(&clm.system_actor(), &PageRequest::first(100))
            .await
            .expect("list");
        // The default workflow and the valid one.
        assert_eq!(listed.items.len(), 2, "{:?}", listed.items);
        assert!(listed.items.iter().any(|w| w.id == ok.id));
    })
    .await;
}

// ---------------------------------------------------------------- full path

#[tokio::test]
async fn request_goes_through_approval_to_issuance_with_notifications() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "wf").await;
        let org_b = org(&clm, "other").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), rules(true, None)).await;
        // The requester also holds APPROVER: it must still not approve or be asked.
        let (requester, req_actor) =
            user_in(&clm, Some(org_a), &[ROLE_OPERATOR, ROLE_APPROVER]).await;
        let (approver, app_actor) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let (approver2, app2_actor) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let (foreign, foreign_actor) = user_in(&clm, Some(org_b), &[ROLE_APPROVER]).await;
        // A user named personally in another workflow, holding no APPROVER role
        // (a custom role lets it approve at all).
        let reviewer = reviewer_role(&clm, Some(org_a)).await;
        let (named, named_actor) = user_with_role(&clm, Some(org_a), reviewer).await;
        let named_wf = workflow(
            &clm,
            Some(org_a),
            &format!(
                r#"{{"steps":[{{"step_id":1,"type":"approval","approvers":["user:{}"]}}]}}"#,
                named.0
            ),
        )
        .await;
        let named_pol = policy(
            &clm,
            Some(org_a),
            rules(true, Some(&named_wf.workflow_code)),
        )
        .await;
        let certs_before = certificate_count(&clm).await;

        let request = pending(
            &clm,
            &req_actor,
            leaf(&ca, &pol, Some(org_a), "app.example.com", 90),
        )
        .await;
        assert_eq!(request.status, RequestStatus::PendingApproval);
        let instance_id = request
            .workflow_instance_id
            .expect("request linked to an instance");
        let stored = stored_request(&clm, request.id).await;
        assert_eq!(stored.workflow_instance_id, Some(instance_id));
        let view = clm
            .get_workflow_instance(&req_actor, instance_id)
            .await
            .expect("own instance");
        assert_eq!(view.instance.status, WorkflowStatus::PendingApproval);
        assert_eq!(view.instance.subject_id.as_uuid(), request.id.as_uuid());
        assert_eq!(view.instance.requested_by_user_id, Some(requester));
        assert_eq!(
            view.steps.len(),
            3,
            "default workflow: validation, approval, issuance"
        );
        let other = pending(
            &clm,
            &req_actor,
            leaf(&ca, &named_pol, Some(org_a), "named.example.com", 90),
        )
        .await;
        let other_instance = other.workflow_instance_id.expect("linked");
        assert_eq!(certificate_count(&clm).await, certs_before);

        // Pending approvals: exactly what each user may act on.
        let mine: Vec<_> = clm
            .pending_approvals(&app_actor)
            .await
            .expect("pending")
            .into_iter()
            .map(|p| p.workflow_instance_id)
            .collect();
        assert_eq!(mine, vec![instance_id]);
        let theirs: Vec<_> = clm
            .pending_approvals(&named_actor)
            .await
            .expect("pending")
            .into_iter()
            .map(|p| p.workflow_instance_id)
            .collect();
        assert_eq!(theirs, vec![other_instance]);
        assert!(
            clm.pending_approvals(&req_actor)
                .await
                .expect("pending")
                .is_empty(),
            "own requests are not offered"
        );
        assert!(
            clm.pending_approvals(&foreign_actor)
                .await
                .expect("pending")
                .is_empty(),
            "other org"
        );
        {
            // The summary's query itself, by assignment.
            let mut conn = clm.databases().core.acquire().await.expect("conn");
            let rows = views::pending_approvals_for_user(&mut conn.conn(), approver)
                .await
                .expect("view");
            assert_eq!(
                rows.iter()
                    .map(|r| r.workflow_instance_id)
                    .collect::<Vec<_>>(),
                vec![instance_id]
            );
            let rows = views::pending_approvals_for_user(&mut conn.conn(), named)
                .await
                .expect("view");
            assert_eq!(
                rows.iter()
                    .map(|r| r.workflow_instance_id)
                    .collect::<Vec<_>>(),
                vec![other_instance]
            );
            assert_eq!(rows[0].assigned_to_user_id, Some(named));
        }

        // approval_required: each eligible approver once, never the requester nor another org.
        let asked: Vec<_> = notices_of_kind(&clm, NotificationType::ApprovalRequired)
            .await
            .into_iter()
            .filter(|n| n.resource_id.map(|r| r.as_uuid()) == Some(instance_id.as_uuid()))
            .map(|n| n.user_id)
            .collect();
        let mut asked_sorted = asked.clone();
        asked_sorted.sort();
        let mut expected = vec![approver, approver2];
        expected.sort();
        assert_eq!(
            asked_sorted, expected,
            "requester {requester:?}, foreign {foreign:?}"
        );
        assert_eq!(
            notices(&clm, named, Some(NotificationType::ApprovalRequired))
                .await
                .len(),
            1
        );

        // Approve: issued, linked, notified.
        let done = clm
            .decide_approval(&app_actor, instance_id, true, Some("looks right".into()))
            .await
            .expect("approve");
        assert_eq!(
            done.instance.status,
            WorkflowStatus::Completed,
            "{:?}",
            done.instance.error_message
        );
        let certificate_id = done.instance.certificate_id.expect("certificate linked");
        assert!(done.instance.completed_at.is_some());
        let stored = stored_request(&clm, request.id).await;
        assert_eq!(stored.status, RequestStatus::Issued);
        assert_eq!(stored.certificate_id, Some(certificate_id));
        assert_eq!(certificate_count(&clm).await, certs_before + 1);
        let pem = clm
            .get_certificate_pem(&system, certificate_id)
            .await
            .expect("pem");
        let parsed = parse_certificates(pem.as_bytes()).expect("parse").remove(0);
        assert_eq!(parsed.common_name.as_deref(), Some("app.example.com"));
        let ca_parsed = parse_certificates(ca.certificate.certificate_pem.as_bytes())
            .expect("ca")
            .remove(0);
        verify_signed_by(&parsed, &ca_parsed.public_key_der).expect("signed by the CA");
        let cert = clm
            .get_certificate(&system, certificate_id)
            .await
            .expect("cert");
        assert_eq!(cert.owner_user_id, Some(requester));
        assert_eq!(cert.policy_id, Some(pol.id));

        let approved = notices(&clm, requester, Some(NotificationType::RequestApproved)).await;
        assert_eq!(approved.len(), 1);
        assert!(
            approved[0].message.contains("looks right"),
            "{}",
            approved[0].message
        );
        assert_eq!(
            notices(&clm, requester, Some(NotificationType::CertificateIssued))
                .await
                .len(),
            1
        );
        assert!(
            notices(&clm, requester, Some(NotificationType::ApprovalRequired))
                .await
                .is_empty()
        );
        // Done: gone from pending approvals, and no second decision.
        assert!(
            clm.pending_approvals(&app_actor)
                .await
                .expect("pending")
                .is_empty()
        );
        let err = clm
            .decide_approval(&app2_actor, instance_id, true, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
        assert_eq!(certificate_count(&clm).await, certs_before + 1);
    })
    .await;
}

// ------------------------------------------------- rejection and cancellation

#[tokio::test]
async fn rejection_and_cancellation_end_the_request() {
    on_both_keyed(security(), |clm| async move {
        let org_a = org(&clm, "rej").await;
        let org_b = org(&clm, "rej-b").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), rules(true, None)).await;
        let (requester, req_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let (_, app_actor) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let (_, outsider_operator) = user_in(&clm, Some(org_b), &[ROLE_OPERATOR]).await;
        let (_, bare) = user_in(&clm, Some(org_a), &[]).await;
        let certs_before = certificate_count(&clm).await;

        // Rejection.
        let request = pending(
            &clm,
            &req_actor,
            leaf(&ca, &pol, Some(org_a), "rej.example.com", 30),
        )
        .await;
        let id = request.workflow_instance_id.expect("linked");
        let view = clm
            .decide_approval(&app_actor, id, false, Some("not this one".into()))
            .await
            .expect("reject");
        assert_eq!(view.instance.status, WorkflowStatus::Rejected);
        assert!(
            view.steps
                .iter()
                .all(|s| s.status != WorkflowStatus::PendingApproval)
        );
        assert_eq!(
            stored_request(&clm, request.id).await.status,
            RequestStatus::Rejected
        );
        let told = notices(&clm, requester, Some(NotificationType::RequestRejected)).await;
        assert_eq!(told.len(), 1);
        assert!(told[0].message.contains("not this one"));
        let err = clm
            .decide_approval(&app_actor, id, true, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict);
        let err = clm.cancel_workflow(&req_actor, id).await.unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::Conflict,
            "a rejected request is not cancelled"
        );

        // Cancellation: strangers cannot, the requester can.
        let request = pending(
            &clm,
            &req_actor,
            leaf(&ca, &pol, Some(org_a), "cancel.example.com", 30),
        )
        .await;
        let id = request.workflow_instance_id.expect("linked");
        let err = clm
            .cancel_workflow(&outsider_operator, id)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.code(),
                ErrorCode::NotFound | ErrorCode::PermissionDenied
            ),
            "{err}"
        );
        let err = clm.cancel_workflow(&bare, id).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        let err = clm.cancel_workflow(&app_actor, id).await.unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::PermissionDenied,
            "an approver rejects, it does not cancel: {err}"
        );
        assert_eq!(
            clm.pending_approvals(&app_actor)
                .await
                .expect("pending")
                .len(),
            1
        );
        let view = clm
            .cancel_workflow(&req_actor, id)
            .await
            .expect("cancel own");
        assert_eq!(view.instance.status, WorkflowStatus::Cancelled);
        assert!(
            view.steps
                .iter()
                .all(|s| s.status != WorkflowStatus::PendingApproval)
        );
        assert_eq!(
            stored_request(&clm, request.id).await.status,
            RequestStatus::Cancelled
        );
        assert!(
            clm.pending_approvals(&app_actor)
                .await
                .expect("pending")
                .is_empty()
        );
        let err = clm
            .decide_approval(&app_actor, id, true, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
        let err = clm.cancel_workflow(&req_actor, id).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict);
        assert_eq!(certificate_count(&clm).await, certs_before);
    })
    .await;
}

// ---------------------------------------------------------------------- M-of-N

#[tokio::test]
async fn m_of_n_counts_distinct_approvers() {
    on_both_keyed(security(), |clm| async move {
        let org_a = org(&clm, "mofn").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let wf = workflow(
            &clm,
            Some(org_a),
            r#"{"steps":[{"step_id":1,"type":"validation"},{"step_id":2,"type":"approval","approvers":["role:APPROVER"],"required_approvals":2},{"step_id":3,"type":"issuance"}]}"#,
        )
        .await;
        let pol = policy(&clm, Some(org_a), rules(true, Some(&wf.workflow_code))).await;
        let (_, req_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let (_, a) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let (_, b) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let certs_before = certificate_count(&clm).await;
        let request = pending(&clm, &req_actor, leaf(&ca, &pol, Some(org_a), "mofn.example.com", 30)).await;
        let id = request.workflow_instance_id.expect("linked");
        assert_eq!(clm.get_workflow_instance(&a, id).await.expect("view").instance.workflow_id, wf.id);

        let view = clm.decide_approval(&a, id, true, None).await.expect("first approval");
        assert_eq!(view.instance.status, WorkflowStatus::PendingApproval);
        let approval = view.steps.iter().find(|s| s.step_id == 2).expect("step 2");
        assert_eq!(approval.approvals.0.len(), 1);
        assert_eq!(approval.status, WorkflowStatus::PendingApproval);
        assert_eq!(certificate_count(&clm).await, certs_before);
        let err = clm.decide_approval(&a, id, true, None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict, "same approver twice: {err}");
        assert!(clm.pending_approvals(&a).await.expect("pending").is_empty(), "a has decided");
        assert_eq!(clm.pending_approvals(&b).await.expect("pending").len(), 1);
        assert_eq!(stored_request(&clm, request.id).await.status, RequestStatus::PendingApproval);

        let view = clm.decide_approval(&b, id, true, None).await.expect("second approval");
        assert_eq!(view.instance.status, WorkflowStatus::Completed, "{:?}", view.instance.error_message);
        let approval = view.steps.iter().find(|s| s.step_id == 2).expect("step 2");
        assert_eq!(approval.approvals.0.len(), 2);
        assert_eq!(approval.status, WorkflowStatus::Approved);
        assert!(view.steps.iter().find(|s| s.step_id == 3).is_some_and(|s| s.status == WorkflowStatus::Completed));
        assert_eq!(certificate_count(&clm).await, certs_before + 1);
    })
    .await;
}

// ---------------------------------------------------------------- eligibility

#[tokio::test]
async fn requesters_and_ineligible_users_cannot_approve_and_steps_advance() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "elig").await;
        let org_b = org(&clm, "elig-b").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let (_, req_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR, ROLE_APPROVER]).await;
        let (_, a) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let (_, no_role) = user_in(&clm, Some(org_a), &[]).await;
        let (_, foreign) = user_in(&clm, Some(org_b), &[ROLE_APPROVER]).await;
        // Named personally for step 2; may approve through a custom role.
        let reviewer = reviewer_role(&clm, Some(org_a)).await;
        let (second, second_actor) = user_with_role(&clm, Some(org_a), reviewer).await;
        // Holds workflows:approve (the same custom role) but is assigned to nothing.
        let (_, unassigned) = user_with_role(&clm, Some(org_a), reviewer).await;
        // Named personally for step 2 as well, but without workflows:approve.
        let (powerless, powerless_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;

        let wf = workflow(
            &clm,
            Some(org_a),
            &format!(r#"{{"steps":[{{"step_id":10,"type":"approval","approvers":["role:APPROVER"]}},{{"step_id":20,"type":"approval","approvers":["user:{}","user:{}"]}},{{"step_id":30,"type":"issuance"}}]}}"#, second.0, powerless.0),
        )
        .await;
        let pol = policy(&clm, Some(org_a), rules(true, Some(&wf.workflow_code))).await;
        let request = pending(&clm, &req_actor, leaf(&ca, &pol, Some(org_a), "two.example.com", 30)).await;
        let id = request.workflow_instance_id.expect("linked");
        assert!(notices(&clm, second, Some(NotificationType::ApprovalRequired)).await.is_empty(), "step 2 not yet");

        for (who, actor, codes) in [
            ("requester", &req_actor, &[ErrorCode::PermissionDenied][..]),
            ("no role", &no_role, &[ErrorCode::PermissionDenied][..]),
            ("unassigned", &unassigned, &[ErrorCode::PermissionDenied][..]),
            ("other org", &foreign, &[ErrorCode::NotFound, ErrorCode::PermissionDenied][..]),
            ("step-2 approver on step 1", &second_actor, &[ErrorCode::PermissionDenied][..]),
        ] {
            let err = clm.decide_approval(actor, id, true, None).await.unwrap_err();
            assert!(codes.contains(&err.code()), "{who}: {err}");
        }
        let view = clm.get_workflow_instance(&system, id).await.expect("view");
        assert_eq!(view.instance.status, WorkflowStatus::PendingApproval);
        assert!(view.steps.iter().all(|s| s.approvals.0.is_empty()), "refusals record nothing");

        // Step 1 by an APPROVER moves to step 2 and notifies its approver.
        let view = clm.decide_approval(&a, id, true, None).await.expect("step 1");
        assert_eq!(view.instance.status, WorkflowStatus::PendingApproval);
        assert_eq!(view.instance.current_step_order, 1);
        let step2 = view.steps.iter().find(|s| s.step_id == 20).expect("step 2");
        assert_eq!(step2.status, WorkflowStatus::PendingApproval);
        assert_eq!(notices(&clm, second, Some(NotificationType::ApprovalRequired)).await.len(), 1);
        assert!(
            notices(&clm, powerless, Some(NotificationType::ApprovalRequired)).await.is_empty(),
            "named, but may not approve: not asked"
        );
        assert_eq!(clm.pending_approvals(&second_actor).await.expect("pending").len(), 1);
        assert!(clm.pending_approvals(&powerless_actor).await.expect("pending").is_empty());
        assert!(clm.pending_approvals(&a).await.expect("pending").is_empty());
        let err = clm.decide_approval(&a, id, true, None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "step 2 is not a's: {err}");
        let err = clm.decide_approval(&req_actor, id, true, None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);

        // Named for step 2 but without workflows:approve (OPERATOR only).
        let err = clm.decide_approval(&powerless_actor, id, true, None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        let view = clm.decide_approval(&second_actor, id, true, None).await.expect("step 2");
        assert_eq!(view.instance.status, WorkflowStatus::Completed, "{:?}", view.instance.error_message);
        assert!(view.instance.certificate_id.is_some());
    })
    .await;
}

// ------------------------------------------------------------------ concurrency

#[tokio::test]
async fn concurrent_approvals_issue_exactly_once() {
    on_both_keyed(security(), |clm| async move {
        let org_a = org(&clm, "race").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), rules(true, None)).await;
        let (_, req_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let (_, a) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let (_, b) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        for round in 0..3 {
            let before = certificate_count(&clm).await;
            let request = pending(
                &clm,
                &req_actor,
                leaf(
                    &ca,
                    &pol,
                    Some(org_a),
                    &format!("race{round}.example.com"),
                    30,
                ),
            )
            .await;
            let id = request.workflow_instance_id.expect("linked");
            let (ra, rb) = tokio::join!(
                clm.decide_approval(&a, id, true, None),
                clm.decide_approval(&b, id, true, None)
            );
            let outcomes = [ra, rb];
            let won: Vec<_> = outcomes.iter().filter_map(|r| r.as_ref().ok()).collect();
            let lost: Vec<_> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
            assert_eq!(won.len(), 1, "round {round}: {outcomes:?}");
            assert_eq!(
                won[0].instance.status,
                WorkflowStatus::Completed,
                "{:?}",
                won[0].instance.error_message
            );
            assert_eq!(lost.len(), 1);
            assert_eq!(lost[0].code(), ErrorCode::Conflict, "{}", lost[0]);
            assert_eq!(
                certificate_count(&clm).await,
                before + 1,
                "round {round}: never a double issuance"
            );
            let stored = stored_request(&clm, request.id).await;
            assert_eq!(stored.status, RequestStatus::Issued);
            assert_eq!(stored.certificate_id, won[0].instance.certificate_id);
        }
    })
    .await;
}

// ------------------------------------------------------------------ transitions

#[test]
fn only_the_defined_transitions_are_allowed() {
    use WorkflowStatus::*;
    let all = [
        Initiated,
        InProgress,
        PendingApproval,
        Approved,
        Rejected,
        Completed,
        Failed,
        Cancelled,
    ];
    let allowed = [
        (Initiated, InProgress),
        (Initiated, PendingApproval),
        (Initiated, Cancelled),
        (Initiated, Failed),
        (InProgress, PendingApproval),
        (InProgress, Approved),
        (InProgress, Completed),
        (InProgress, Failed),
        (InProgress, Cancelled),
        (PendingApproval, Approved),
        (PendingApproval, Rejected),
        (PendingApproval, Cancelled),
        (PendingApproval, Failed),
        (Approved, Completed),
        (Approved, Failed),
        (Failed, Approved),
        (Failed, Cancelled),
    ];
    for from in all {
        for to in all {
            let result = check_transition(from, to);
            if allowed.contains(&(from, to)) {
                assert!(result.is_ok(), "{from} -> {to} should be allowed");
            } else {
                let err = result.expect_err(&format!("{from} -> {to} must be refused"));
                assert_eq!(err.code(), ErrorCode::Conflict);
                assert!(
                    err.to_string().contains(from.as_str())
                        && err.to_string().contains(to.as_str()),
                    "{err}"
                );
            }
        }
    }
    // Final states stay final.
    for to in all {
        assert!(check_transition(Completed, to).is_err());
        assert!(check_transition(Rejected, to).is_err());
        assert!(check_transition(Cancelled, to).is_err());
    }
}

// ------------------------------------------------------------ failure and retry

#[tokio::test]
async fn failed_issuance_is_recorded_and_retried() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "retry").await;
        let ca = intermediate_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), rules(true, None)).await;
        let (requester, req_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let (_, a) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let request = pending(
            &clm,
            &req_actor,
            leaf(&ca, &pol, Some(org_a), "retry.example.com", 30),
        )
        .await;
        let id = request.workflow_instance_id.expect("linked");
        let before = certificate_count(&clm).await;

        clm.revoke_certificate(
            &system,
            ca.certificate.id,
            RevocationReason::CertificateHold,
            None,
        )
        .await
        .expect("hold the CA");
        let view = clm
            .decide_approval(&a, id, true, None)
            .await
            .expect("approval is recorded");
        assert_eq!(view.instance.status, WorkflowStatus::Failed);
        let error = view.instance.error_message.clone().expect("error recorded");
        assert!(error.contains("suspended"), "{error}");
        assert_eq!(view.instance.certificate_id, None);
        let stored = stored_request(&clm, request.id).await;
        assert_eq!(stored.status, RequestStatus::Approved, "retryable");
        assert!(stored.failure_reason.is_some());
        assert_eq!(certificate_count(&clm).await, before);
        assert!(
            notices(&clm, requester, Some(NotificationType::CertificateIssued))
                .await
                .is_empty()
        );
        // Failed: not waiting for approval any more.
        let err = clm.decide_approval(&a, id, true, None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict);

        // Retry while still held: fails again, still retryable.
        let view = clm.retry_workflow(&req_actor, id).await.expect("retry");
        assert_eq!(view.instance.status, WorkflowStatus::Failed);
        // An approver cannot retry (no workflows:execute).
        let err = clm.retry_workflow(&a, id).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);

        clm.release_certificate_hold(&system, ca.certificate.id)
            .await
            .expect("release");
        let view = clm.retry_workflow(&req_actor, id).await.expect("retry");
        assert_eq!(
            view.instance.status,
            WorkflowStatus::Completed,
            "{:?}",
            view.instance.error_message
        );
        assert_eq!(view.instance.error_message, None);
        let certificate_id = view.instance.certificate_id.expect("linked");
        assert_eq!(certificate_count(&clm).await, before + 1);
        let stored = stored_request(&clm, request.id).await;
        assert_eq!(stored.status, RequestStatus::Issued);
        assert_eq!(stored.certificate_id, Some(certificate_id));
        let err = clm.retry_workflow(&req_actor, id).await.unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::Conflict,
            "a completed instance is not retried"
        );
        assert_eq!(certificate_count(&clm).await, before + 1);
    })
    .await;
}

// ---------------------------------------------------------------------- expiry

#[tokio::test]
async fn stale_requests_expire() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "exp").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let wf = workflow(
            &clm,
            Some(org_a),
            r#"{"expires_after_hours":1,"steps":[{"step_id":1,"type":"approval","approvers":["role:APPROVER"]}]}"#,
        )
        .await;
        let pol = policy(&clm, Some(org_a), rules(true, Some(&wf.workflow_code))).await;
        let (_, req_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let (_, a) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        let request = pending(&clm, &req_actor, leaf(&ca, &pol, Some(org_a), "stale.example.com", 30)).await;
        let id = request.workflow_instance_id.expect("linked");

        assert_eq!(clm.expire_stale_workflows(&system, now() + Duration::minutes(30)).await.expect("expire"), 0);
        let err = clm.expire_stale_workflows(&a, now() + Duration::hours(2)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert_eq!(clm.expire_stale_workflows(&system, now() + Duration::hours(2)).await.expect("expire"), 1);
        let view = clm.get_workflow_instance(&system, id).await.expect("view");
        assert_eq!(view.instance.status, WorkflowStatus::Cancelled);
        assert!(view.instance.error_message.is_some_and(|m| m.contains("expired")));
        let stored = stored_request(&clm, request.id).await;
        assert_eq!(stored.status, RequestStatus::Expired);
        assert!(clm.pending_approvals(&a).await.expect("pending").is_empty());
        assert_eq!(clm.expire_stale_workflows(&system, now() + Duration::hours(2)).await.expect("expire"), 0);
        let err = clm.decide_approval(&a, id, true, None).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict);
    })
    .await;
}

// --------------------------------------------------------------- notifications

#[tokio::test]
async fn notifications_are_read_marked_and_delivered_at_least_once() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "note").await;
        let ca = root_ca(&clm, Some(org_a)).await;
        let pol = policy(&clm, Some(org_a), rules(true, None)).await;
        let (requester, req_actor) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
        let (approver, a) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
        for n in 0..3 {
            pending(
                &clm,
                &req_actor,
                leaf(&ca, &pol, Some(org_a), &format!("n{n}.example.com"), 30),
            )
            .await;
        }
        let page = PageRequest::first(50);
        let inbox = clm
            .list_notifications(&a, false, &page)
            .await
            .expect("list");
        assert_eq!(inbox.items.len(), 3);
        assert!(
            inbox.items.iter().all(|n| n.user_id == approver
                && n.notification_type == NotificationType::ApprovalRequired)
        );
        assert!(
            inbox
                .items
                .windows(2)
                .all(|w| w[0].created_at >= w[1].created_at),
            "newest first"
        );
        assert!(
            clm.list_notifications(&req_actor, false, &page)
                .await
                .expect("list")
                .items
                .is_empty()
        );

        let first = inbox.items[0].id;
        let err = clm
            .mark_notification_read(&req_actor, first)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "not the requester's");
        assert_eq!(
            clm.list_notifications(&a, true, &page)
                .await
                .expect("unread")
                .items
                .len(),
            3
        );
        clm.mark_notification_read(&a, first)
            .await
            .expect("mark read");
        clm.mark_notification_read(&a, first)
            .await
            .expect("again is fine");
        let unread = clm
            .list_notifications(&a, true, &page)
            .await
            .expect("unread");
        assert_eq!(unread.items.len(), 2);
        assert!(unread.items.iter().all(|n| n.id != first));
        assert_eq!(clm.mark_all_notifications_read(&a).await.expect("all"), 2);
        assert!(
            clm.list_notifications(&a, true, &page)
                .await
                .expect("unread")
                .items
                .is_empty()
        );
        let err = clm
            .list_notifications(&system, false, &page)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput);

        // Outbox: oldest first, at least once.
        let err = clm
            .fetch_undelivered_notifications(&a, 10)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert_eq!(
            clm.fetch_undelivered_notifications(&system, 0)
                .await
                .unwrap_err()
                .code(),
            ErrorCode::InvalidInput
        );
        let outbox = clm
            .fetch_undelivered_notifications(&system, 100)
            .await
            .expect("outbox");
        assert_eq!(outbox.len(), 3);
        assert!(
            outbox
                .windows(2)
                .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id)),
            "oldest first"
        );
        let limited = clm
            .fetch_undelivered_notifications(&system, 2)
            .await
            .expect("outbox");
        assert_eq!(
            limited.iter().map(|n| n.id).collect::<Vec<_>>(),
            outbox[..2].iter().map(|n| n.id).collect::<Vec<_>>()
        );
        // The host delivered the first one only (crashed before the rest).
        assert_eq!(
            clm.mark_notifications_delivered(&system, &[outbox[0].id])
                .await
                .expect("mark"),
            1
        );
        assert_eq!(
            clm.mark_notifications_delivered(&system, &[outbox[0].id])
                .await
                .expect("mark"),
            0
        );
        let again = clm
            .fetch_undelivered_notifications(&system, 100)
            .await
            .expect("outbox");
        assert_eq!(
            again.iter().map(|n| n.id).collect::<Vec<_>>(),
            outbox[1..].iter().map(|n| n.id).collect::<Vec<_>>()
        );
        let ids: Vec<_> = again.iter().map(|n| n.id).collect();
        assert_eq!(
            clm.mark_notifications_delivered(&system, &ids)
                .await
                .expect("mark"),
            2
        );
        assert!(
            clm.fetch_undelivered_notifications(&system, 100)
                .await
                .expect("outbox")
                .is_empty()
        );
        let delivered = notices(&clm, approver, None).await;
        assert!(
            delivered
                .iter()
                .all(|n| n.delivered_at.is_some() && n.delivery_attempts == 1)
        );
        let _ = requester;
    })
    .await;
}
