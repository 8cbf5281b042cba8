//! Repositories of the core database, on SQLite and PostgreSQL.

mod common;

use chrono::Duration as Days;
use clm::ErrorCode;
use clm::db::Databases;
use clm::model::*;
use clm::store::{
    PageRequest, api_keys, certificate_metadata, notifications, now, organizations, policies,
    roles, sessions, user_organizations, user_roles, users, workflow_instances, workflow_steps,
    workflows,
};
use common::*;
use sqlx::types::Json;

#[tokio::test]
async fn users_roles_and_grants() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let alice = user("alice");
        let bob = user("bob");
        users::insert(&mut c, &alice).await.unwrap();
        users::insert(&mut c, &bob).await.unwrap();
        assert_eq!(
            users::get_by_username(&mut c, "alice").await.unwrap().id,
            alice.id
        );
        assert_eq!(
            users::get_by_email(&mut c, "Bob@Example.com")
                .await
                .unwrap()
                .id,
            bob.id
        );

        let admin = role("ADMIN");
        let approver = role("APPROVER");
        roles::insert(&mut c, &admin).await.unwrap();
        roles::insert(&mut c, &approver).await.unwrap();
        let got = roles::get_by_code(&mut c, "APPROVER").await.unwrap();
        assert_eq!(got.id, approver.id);
        assert!(got.permissions.0.allows("certificates", "read"));
        let mut changed = got.clone();
        changed.permissions = Json(Permissions::from_pairs(&[("workflows", &["approve"])]));
        roles::update(&mut c, &changed).await.unwrap();
        assert!(
            roles::get_by_code(&mut c, "APPROVER")
                .await
                .unwrap()
                .permissions
                .0
                .allows("workflows", "approve")
        );

        let g1 = grant(alice.id, admin.id);
        let g2 = grant(alice.id, approver.id);
        let g3 = grant(bob.id, approver.id);
        for g in [&g1, &g2, &g3] {
            user_roles::insert(&mut c, g).await.unwrap();
        }
        let err = user_roles::insert(&mut c, &grant(alice.id, admin.id))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
        let codes: Vec<String> = roles::roles_of_user(&mut c, alice.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.role_code)
            .collect();
        assert_eq!(codes, vec!["ADMIN", "APPROVER"]);
        let mut holders = user_roles::holders_of_role(&mut c, approver.id)
            .await
            .unwrap();
        holders.sort();
        let mut expected = vec![alice.id, bob.id];
        expected.sort();
        assert_eq!(holders, expected);
        assert_eq!(
            user_roles::find_current(&mut c, alice.id, admin.id)
                .await
                .unwrap()
                .unwrap()
                .id,
            g1.id
        );
        user_roles::revoke(&mut c, g1.id, Some(bob.id), now())
            .await
            .unwrap();
        assert!(
            user_roles::find_current(&mut c, alice.id, admin.id)
                .await
                .unwrap()
                .is_none()
        );
        let err = user_roles::revoke(&mut c, g1.id, None, now())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert_eq!(
            roles::roles_of_user(&mut c, alice.id).await.unwrap().len(),
            1
        );
        // Granting again after revocation is allowed.
        user_roles::insert(&mut c, &grant(alice.id, admin.id))
            .await
            .unwrap();
        let history = user_roles::list_user_roles(
            &mut c,
            &user_roles::UserRoleFilter {
                user_id: Some(alice.id),
                role_id: Some(admin.id),
                current_only: false,
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(history.items.len(), 2);
        let listed = roles::list_roles(
            &mut c,
            &roles::RoleFilter::default(),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(listed.items.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn organizations_and_memberships() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let parent = organization("ACME");
        let mut child = organization("ACME-EU");
        child.parent_organization_id = Some(parent.id);
        organizations::insert(&mut c, &parent).await.unwrap();
        organizations::insert(&mut c, &child).await.unwrap();
        let got = organizations::get_by_code(&mut c, "ACME-EU").await.unwrap();
        assert_eq!(got.parent_organization_id, Some(parent.id));
        let mut renamed = got.clone();
        renamed.name = "Acme Europe".into();
        renamed.status = OrganizationStatus::Suspended;
        organizations::update(&mut c, &renamed).await.unwrap();
        let page = organizations::list_organizations(
            &mut c,
            &organizations::OrganizationFilter {
                name: Some("europe".into()),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].status, OrganizationStatus::Suspended);

        let u1 = user("carol");
        let u2 = user("dave");
        users::insert(&mut c, &u1).await.unwrap();
        users::insert(&mut c, &u2).await.unwrap();
        let m1 = membership(u1.id, parent.id);
        user_organizations::insert(&mut c, &m1).await.unwrap();
        user_organizations::insert(&mut c, &membership(u1.id, child.id))
            .await
            .unwrap();
        user_organizations::insert(&mut c, &membership(u2.id, parent.id))
            .await
            .unwrap();
        let err = user_organizations::insert(&mut c, &membership(u2.id, parent.id))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
        let mut orgs = user_organizations::organizations_of_user(&mut c, u1.id)
            .await
            .unwrap();
        orgs.sort();
        let mut expected = vec![parent.id, child.id];
        expected.sort();
        assert_eq!(orgs, expected);
        let found = user_organizations::find_membership(&mut c, u1.id, parent.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, m1.id);
        assert!(
            user_organizations::find_membership(&mut c, u2.id, child.id)
                .await
                .unwrap()
                .is_none()
        );
        let members = user_organizations::members_of(&mut c, parent.id, &PageRequest::first(1))
            .await
            .unwrap();
        assert_eq!(members.items.len(), 1);
        let rest = user_organizations::members_of(
            &mut c,
            parent.id,
            &PageRequest::after(10, members.next_cursor.clone()),
        )
        .await
        .unwrap();
        assert_eq!(rest.items.len(), 1);
        assert!(rest.next_cursor.is_none());
        let mut admin = found.clone();
        admin.membership_role = "admin".into();
        user_organizations::update(&mut c, &admin).await.unwrap();
        let listed = user_organizations::list_user_organizations(
            &mut c,
            &user_organizations::UserOrganizationFilter {
                membership_role: Some("admin".into()),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(listed.items.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn policies_workflows_instances_steps() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let mut wf = workflow("STANDARD");
        wf.is_default = true;
        workflows::insert(&mut c, &wf).await.unwrap();
        let got = workflows::get_by_code(&mut c, "STANDARD").await.unwrap();
        assert_eq!(got.workflow_definition.0, wf.workflow_definition.0);
        assert_eq!(
            workflows::find_default(&mut c).await.unwrap().unwrap().id,
            wf.id
        );
        let mut second = workflow("OTHER");
        second.is_default = true;
        let err = workflows::insert(&mut c, &second).await.unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::AlreadyExists,
            "one default workflow: {err}"
        );
        let mut v2 = got.clone();
        v2.version = 2;
        workflows::update(&mut c, &v2).await.unwrap();
        assert_eq!(
            workflows::get_by_code(&mut c, "STANDARD")
                .await
                .unwrap()
                .version,
            2
        );

        let mut p = policy("WEB");
        p.workflow_id = Some(wf.id);
        policies::insert(&mut c, &p).await.unwrap();
        let got = policies::get_by_code(&mut c, "WEB").await.unwrap();
        assert_eq!(got.policy_rules.0, PolicyRules::default());
        let mut stricter = got.clone();
        stricter.policy_rules.0.max_validity_days = 90;
        stricter.status = PolicyStatus::Inactive;
        policies::update(&mut c, &stricter).await.unwrap();
        let page = policies::list_policies(
            &mut c,
            &policies::PolicyFilter {
                status: Some(PolicyStatus::Inactive),
                workflow_id: Some(wf.id),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(page.items[0].policy_rules.0.max_validity_days, 90);

        let inst = instance(wf.id, WorkflowStatus::PendingApproval);
        workflow_instances::insert(&mut c, &inst).await.unwrap();
        let mut overdue = instance(wf.id, WorkflowStatus::PendingApproval);
        overdue.expires_at = Some(now() - Days::hours(1));
        workflow_instances::insert(&mut c, &overdue).await.unwrap();
        let mut finished = instance(wf.id, WorkflowStatus::Completed);
        finished.expires_at = Some(now() - Days::hours(2));
        workflow_instances::insert(&mut c, &finished).await.unwrap();
        let expired = workflow_instances::list_expired_pending(&mut c, now(), 10)
            .await
            .unwrap();
        assert_eq!(
            expired.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![overdue.id]
        );

        let s2 = step(inst.id, 2, StepType::Approval);
        let s1 = step(inst.id, 1, StepType::Validation);
        workflow_steps::insert(&mut c, &s2).await.unwrap();
        workflow_steps::insert(&mut c, &s1).await.unwrap();
        let steps = workflow_steps::list_for_instance(&mut c, inst.id)
            .await
            .unwrap();
        assert_eq!(
            steps.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![s1.id, s2.id]
        );
        let approver = user("approver");
        users::insert(&mut c, &approver).await.unwrap();
        let mut decided = steps[1].clone();
        decided.status = WorkflowStatus::Approved;
        decided.approvals = Json(vec![ApprovalDecision {
            user_id: approver.id,
            approved: true,
            comment: Some("ok".into()),
            decided_at: now(),
        }]);
        decided.acted_by_user_id = Some(approver.id);
        decided.decision_comment = Some("ok".into());
        decided.completed_at = Some(now());
        workflow_steps::update(&mut c, &decided).await.unwrap();
        let steps = workflow_steps::list_for_instance(&mut c, inst.id)
            .await
            .unwrap();
        assert_eq!(steps[1].approvals.0, decided.approvals.0);
        assert_eq!(steps[1].status, WorkflowStatus::Approved);

        let mut done = inst.clone();
        done.status = WorkflowStatus::Completed;
        done.current_step_order = 2;
        done.certificate_id = Some(CertificateId::new());
        done.completed_at = Some(now());
        workflow_instances::update(&mut c, &done).await.unwrap();
        let listed = workflow_instances::list_workflow_instances(
            &mut c,
            &workflow_instances::WorkflowInstanceFilter {
                status: Some(vec![WorkflowStatus::Completed]),
                workflow_id: Some(wf.id),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(listed.items.len(), 2);
        let by_subject = workflow_instances::list_workflow_instances(
            &mut c,
            &workflow_instances::WorkflowInstanceFilter {
                subject_id: Some(inst.subject_id),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(by_subject.items[0].certificate_id, done.certificate_id);
        // An approval step has one row per approver reference, so a step id
        // may repeat within an instance.
        workflow_steps::insert(&mut c, &step(inst.id, 1, StepType::Issuance))
            .await
            .unwrap();
        let rows = workflow_steps::list_for_instance(&mut c, inst.id)
            .await
            .unwrap();
        assert_eq!(rows.iter().filter(|s| s.step_id == 1).count(), 2);
    })
    .await;
}

#[tokio::test]
async fn notifications_inbox_and_outbox() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let u = user("erin");
        let other = user("frank");
        users::insert(&mut c, &u).await.unwrap();
        users::insert(&mut c, &other).await.unwrap();
        let n1 = notification(u.id, Some("expiry:c1:30"));
        assert!(notifications::insert_if_new(&mut c, &n1).await.unwrap());
        assert!(
            !notifications::insert_if_new(&mut c, &notification(u.id, Some("expiry:c1:30")))
                .await
                .unwrap()
        );
        assert_eq!(
            notifications::get_by_dedup_key(&mut c, "expiry:c1:30")
                .await
                .unwrap()
                .id,
            n1.id
        );
        let mut ids = vec![n1.id];
        for _ in 0..4 {
            let n = notification(u.id, None);
            assert!(notifications::insert_if_new(&mut c, &n).await.unwrap());
            ids.push(n.id);
        }
        notifications::insert(&mut c, &notification(other.id, None))
            .await
            .unwrap();

        // Inbox: newest first, paged.
        let p1 = notifications::list_for_user(&mut c, u.id, false, &PageRequest::first(3))
            .await
            .unwrap();
        let p2 = notifications::list_for_user(
            &mut c,
            u.id,
            false,
            &PageRequest::after(3, p1.next_cursor.clone()),
        )
        .await
        .unwrap();
        let walked: Vec<_> = p1.items.iter().chain(&p2.items).map(|n| n.id).collect();
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(walked, newest_first);
        assert!(p2.next_cursor.is_none());

        notifications::mark_read(&mut c, u.id, n1.id, now())
            .await
            .unwrap();
        let err = notifications::mark_read(&mut c, other.id, ids[1], now())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "not theirs");
        let unread = notifications::list_for_user(&mut c, u.id, true, &PageRequest::first(50))
            .await
            .unwrap();
        assert_eq!(unread.items.len(), 4);
        assert_eq!(
            notifications::mark_all_read(&mut c, u.id, now())
                .await
                .unwrap(),
            4
        );
        assert!(
            notifications::list_for_user(&mut c, u.id, true, &PageRequest::first(50))
                .await
                .unwrap()
                .items
                .is_empty()
        );

        // Outbox: undelivered, oldest first.
        let out = notifications::outbox(&mut c, 100).await.unwrap();
        assert_eq!(out.len(), 6);
        assert_eq!(out[0].id, n1.id);
        assert_eq!(
            notifications::mark_delivered(&mut c, &ids[..2], now())
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            notifications::mark_delivered(&mut c, &ids[..2], now())
                .await
                .unwrap(),
            0
        );
        let out = notifications::outbox(&mut c, 100).await.unwrap();
        assert_eq!(out.len(), 4);
        let delivered = notifications::list_notifications(
            &mut c,
            &notifications::NotificationFilter {
                delivered: Some(true),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(delivered.items.len(), 2);
        assert!(delivered.items.iter().all(|n| n.delivery_attempts == 1));
    })
    .await;
}

#[tokio::test]
async fn api_keys_and_sessions() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let u = user("gina");
        users::insert(&mut c, &u).await.unwrap();

        let key = api_key(u.id);
        api_keys::insert(&mut c, &key).await.unwrap();
        assert_eq!(
            api_keys::get_by_key_id(&mut c, &key.key_id)
                .await
                .unwrap()
                .id,
            key.id
        );
        let got = api_keys::get_by_key_hash(&mut c, &key.key_hash.0)
            .await
            .unwrap();
        assert_eq!(got.key_hash, key.key_hash);
        assert!(got.scopes.0.allows("certificates", "read"));
        let used = now();
        api_keys::touch_last_used(&mut c, key.id, used)
            .await
            .unwrap();
        api_keys::revoke(&mut c, key.id, Some(u.id), now())
            .await
            .unwrap();
        let err = api_keys::revoke(&mut c, key.id, None, now())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        let got = api_keys::get_by_key_id(&mut c, &key.key_id).await.unwrap();
        assert_eq!(got.last_used_at, Some(used));
        assert!(got.revoked_at.is_some());
        let live = api_keys::list_api_keys(
            &mut c,
            &api_keys::ApiKeyFilter {
                user_id: Some(u.id),
                unrevoked_only: true,
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert!(live.items.is_empty());

        let s1 = session(u.id, Days::hours(8));
        let s2 = session(u.id, Days::hours(8));
        let old = session(u.id, Days::hours(-1));
        for s in [&s1, &s2, &old] {
            sessions::insert(&mut c, s).await.unwrap();
        }
        assert_eq!(
            sessions::get_by_session_id(&mut c, &s1.session_id)
                .await
                .unwrap()
                .id,
            s1.id
        );
        assert_eq!(
            sessions::get_by_token_hash(&mut c, &s2.token_hash.0)
                .await
                .unwrap()
                .id,
            s2.id
        );
        let seen = now() + Days::seconds(5);
        sessions::touch(&mut c, s1.id, seen).await.unwrap();
        assert_eq!(
            sessions::get_by_session_id(&mut c, &s1.session_id)
                .await
                .unwrap()
                .last_activity_at,
            seen
        );
        sessions::revoke(&mut c, s1.id, "logout", now())
            .await
            .unwrap();
        assert_eq!(
            sessions::touch(&mut c, s1.id, now())
                .await
                .unwrap_err()
                .code(),
            ErrorCode::NotFound
        );
        assert_eq!(
            sessions::revoke_all_for_user(&mut c, u.id, "password change", now())
                .await
                .unwrap(),
            2
        );
        let fresh = session(u.id, Days::hours(8));
        sessions::insert(&mut c, &fresh).await.unwrap();
        assert_eq!(sessions::purge_expired(&mut c, now()).await.unwrap(), 3);
        let left = sessions::list_sessions(
            &mut c,
            &sessions::SessionFilter {
                user_id: Some(u.id),
                unrevoked_only: true,
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(
            left.items.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![fresh.id]
        );
    })
    .await;
}

#[tokio::test]
async fn certificate_metadata_roundtrip() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let owner = user("hank");
        users::insert(&mut c, &owner).await.unwrap();
        let mut m = metadata(CertificateId::new());
        m.owner_user_id = Some(owner.id);
        m.tags = Json(
            serde_json::json!({"team": "edge"})
                .as_object()
                .unwrap()
                .clone(),
        );
        certificate_metadata::insert(&mut c, &m).await.unwrap();
        let got = certificate_metadata::get_by_certificate(&mut c, m.certificate_id)
            .await
            .unwrap();
        assert_eq!(got.id, m.id);
        assert_eq!(got.tags.0["team"], "edge");
        let many: Vec<_> = (0..3000).map(|_| metadata(CertificateId::new())).collect();
        assert_eq!(
            certificate_metadata::insert_many(&mut c, &many)
                .await
                .unwrap(),
            3000
        );
        let later = now() + Days::days(400);
        let mut notified = got.clone();
        notified.last_notified_threshold = Some(30);
        certificate_metadata::update(&mut c, &notified)
            .await
            .unwrap();
        certificate_metadata::update_not_after(&mut c, m.certificate_id, later)
            .await
            .unwrap();
        let got = certificate_metadata::get_by_certificate(&mut c, m.certificate_id)
            .await
            .unwrap();
        assert_eq!(got.not_after, Some(later));
        assert_eq!(got.last_notified_threshold, None);
        let page = certificate_metadata::list_certificate_metadata(
            &mut c,
            &certificate_metadata::CertificateMetadataFilter {
                owner_user_id: Some(owner.id),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 1);
        let err = certificate_metadata::insert(&mut c, &metadata(m.certificate_id))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
    })
    .await;
}
