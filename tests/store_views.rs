//! The five views, on SQLite and PostgreSQL: each returns what it documents.

mod common;

use std::collections::BTreeSet;

use chrono::Duration as Days;
use clm::db::Databases;
use clm::model::*;
use clm::store::views::{self, ActiveCertificateFilter, CertificateSummaryFilter};
use clm::store::{
    PageRequest, certificate_metadata, certificates, now, organizations, roles, soft_delete,
    user_roles, users, workflow_instances, workflow_steps, workflows,
};
use common::*;

#[tokio::test]
async fn active_and_expiring_certificates() {
    on_both(|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let t = now();
        let org_a = OrganizationId::new();
        let org_b = OrganizationId::new();
        let mk = |cn: &str, days: i64, status: CertificateStatus, org: OrganizationId| {
            let mut cert = certificate(cn, t + Days::days(days) + Days::hours(1));
            cert.not_before = t - Days::days(400);
            cert.status = status;
            cert.organization_id = Some(org);
            cert
        };
        let in10 = mk("in10.example.com", 10, CertificateStatus::Active, org_a);
        let in25 = mk("in25.example.com", 25, CertificateStatus::Expiring, org_b);
        let in2 = mk("in2.example.com", 2, CertificateStatus::Active, org_a);
        let in40 = mk("in40.example.com", 40, CertificateStatus::Active, org_a);
        let revoked = mk("revoked.example.com", 5, CertificateStatus::Revoked, org_a);
        let expired = mk("expired.example.com", -3, CertificateStatus::Expired, org_a);
        let stale = mk("stale.example.com", -1, CertificateStatus::Active, org_a);
        let pending = mk("pending.example.com", 5, CertificateStatus::Pending, org_a);
        let deleted = mk("deleted.example.com", 5, CertificateStatus::Active, org_a);
        let all = [
            &in10, &in25, &in2, &in40, &revoked, &expired, &stale, &pending, &deleted,
        ];
        certificates::insert_many(
            &mut c,
            &all.iter().map(|c| (*c).clone()).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        soft_delete::<certificates::Certificates>(&mut c, deleted.id)
            .await
            .unwrap();

        // active_certificates: active + expiring, live only.
        let active = views::active_certificates(
            &mut c,
            &ActiveCertificateFilter::default(),
            &PageRequest::first(100),
        )
        .await
        .unwrap();
        let ids: BTreeSet<_> = active.items.iter().map(|a| a.id).collect();
        let expected: BTreeSet<_> = [in10.id, in25.id, in2.id, in40.id, stale.id]
            .into_iter()
            .collect();
        assert_eq!(ids, expected);
        let only_b = views::active_certificates(
            &mut c,
            &ActiveCertificateFilter {
                organization_ids: Some(vec![org_b]),
                ..Default::default()
            },
            &PageRequest::first(100),
        )
        .await
        .unwrap();
        assert_eq!(
            only_b.items.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![in25.id]
        );

        // expiring_certificates: in service, within 30 days, soonest first.
        let page = views::expiring_certificates(&mut c, None, &PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![in2.id, in10.id, in25.id]
        );
        for (row, days) in page.items.iter().zip([2, 10, 25]) {
            assert!(
                (row.days_until_expiry - days).abs() <= 1,
                "{} days_until_expiry {} vs {days}",
                row.common_name.as_deref().unwrap_or(""),
                row.days_until_expiry
            );
        }
        let only_a = views::expiring_certificates(&mut c, Some(&[org_a]), &PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(
            only_a.items.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![in2.id, in10.id]
        );
        let none = views::expiring_certificates(&mut c, Some(&[]), &PageRequest::first(100))
            .await
            .unwrap();
        assert!(none.items.is_empty());

        // Keyset paging one row at a time.
        let mut walked = Vec::new();
        let mut req = PageRequest::first(1);
        loop {
            let p = views::expiring_certificates(&mut c, None, &req)
                .await
                .unwrap();
            walked.extend(p.items.iter().map(|e| e.id));
            match p.next_cursor {
                Some(cur) => req = PageRequest::after(1, Some(cur)),
                None => break,
            }
        }
        assert_eq!(walked, vec![in2.id, in10.id, in25.id]);
    })
    .await;
}

/// The view's bounds are "now" and "now + 30 days" to the millisecond on
/// both backends, whatever fraction of a second a stored `not_after` has
/// (SQLite compares the stored RFC 3339 text, which omits a zero fraction).
#[tokio::test]
async fn expiring_view_bounds_are_exact() {
    on_both(|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let t = chrono::DateTime::from_timestamp(now().timestamp() + 2, 0).unwrap();
        let mk = |cn: &str, not_after: Timestamp| {
            let mut cert = certificate(cn, not_after);
            cert.not_before = t - Days::days(400);
            cert
        };
        // Whole seconds (stored without a fraction on SQLite) and odd fractions.
        let soon_whole = mk("soon-whole.example.com", t + Days::seconds(30));
        let soon_micros = mk(
            "soon-micros.example.com",
            t + Days::seconds(30) + Days::microseconds(1),
        );
        let gone_whole = mk("gone-whole.example.com", t - Days::seconds(30));
        let gone_micros = mk(
            "gone-micros.example.com",
            t - Days::seconds(30) + Days::microseconds(999_999),
        );
        let last_day = mk(
            "last-day.example.com",
            t + Days::days(30) - Days::minutes(1),
        );
        let past_window = mk(
            "past-window.example.com",
            t + Days::days(30) + Days::minutes(1),
        );
        let all = [
            &soon_whole,
            &soon_micros,
            &gone_whole,
            &gone_micros,
            &last_day,
            &past_window,
        ];
        certificates::insert_many(
            &mut c,
            &all.iter().map(|c| (*c).clone()).collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        let page = views::expiring_certificates(&mut c, None, &PageRequest::first(100))
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![soon_whole.id, soon_micros.id, last_day.id]
        );
    })
    .await;
}

/// SQLite seeks the expiring page: the index range starts at now instead of
/// walking the expired rows in front of it (59 ms at 1M before, issue 16).
#[tokio::test]
async fn expiring_page_seeks_the_live_expiry_index_on_sqlite() {
    on_sqlite(&|db: Databases| async move {
        let clm::db::Pool::Sqlite(pool) = &db.secure else {
            panic!("on_sqlite opened another backend");
        };
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(
            "EXPLAIN QUERY PLAN SELECT * FROM expiring_certificates WHERE 1 = 1 \
             ORDER BY not_after, id LIMIT 101",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
        assert_eq!(
            details,
            vec!["SEARCH c USING INDEX idx_certificates_live_expiry (not_after>? AND not_after<?)"],
            "plan: {details:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn active_users_with_roles_aggregates_current_roles() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let alice = user("alice");
        let bob = user("bob");
        let mut locked = user("locked");
        locked.status = UserStatus::Locked;
        let gone = user("gone");
        for u in [&alice, &bob, &locked, &gone] {
            users::insert(&mut c, u).await.unwrap();
        }
        soft_delete::<users::Users>(&mut c, gone.id).await.unwrap();
        let mut ops = role("OPS");
        ops.role_name = "Operators".into();
        let mut adm = role("ADMIN");
        adm.role_name = "Administrators".into();
        let mut aud = role("AUDITOR");
        aud.role_name = "Auditors".into();
        for r in [&ops, &adm, &aud] {
            roles::insert(&mut c, r).await.unwrap();
        }
        user_roles::insert(&mut c, &grant(alice.id, ops.id))
            .await
            .unwrap();
        user_roles::insert(&mut c, &grant(alice.id, adm.id))
            .await
            .unwrap();
        let revoked = grant(alice.id, aud.id);
        user_roles::insert(&mut c, &revoked).await.unwrap();
        user_roles::revoke(&mut c, revoked.id, None, now())
            .await
            .unwrap();
        user_roles::insert(&mut c, &grant(locked.id, ops.id))
            .await
            .unwrap();

        let page = views::active_users_with_roles(&mut c, &PageRequest::first(100))
            .await
            .unwrap();
        let names: BTreeSet<_> = page.items.iter().map(|u| u.username.clone()).collect();
        assert_eq!(
            names,
            ["alice", "bob"].into_iter().map(String::from).collect()
        );
        let a = views::active_user_with_roles(&mut c, alice.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.role_codes.0, vec!["ADMIN", "OPS"]);
        assert_eq!(a.role_names.0, vec!["Administrators", "Operators"]);
        let b = views::active_user_with_roles(&mut c, bob.id)
            .await
            .unwrap()
            .unwrap();
        assert!(b.role_codes.0.is_empty() && b.role_names.0.is_empty());
        assert!(
            views::active_user_with_roles(&mut c, locked.id)
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}

#[tokio::test]
async fn pending_approvals_for_user_follows_user_and_role_assignment() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let me = user("me");
        let other = user("other");
        users::insert(&mut c, &me).await.unwrap();
        users::insert(&mut c, &other).await.unwrap();
        let held = role("APPROVER");
        let lost = role("FORMER");
        let foreign = role("FOREIGN");
        for r in [&held, &lost, &foreign] {
            roles::insert(&mut c, r).await.unwrap();
        }
        user_roles::insert(&mut c, &grant(me.id, held.id))
            .await
            .unwrap();
        let former = grant(me.id, lost.id);
        user_roles::insert(&mut c, &former).await.unwrap();
        user_roles::revoke(&mut c, former.id, None, now())
            .await
            .unwrap();
        user_roles::insert(&mut c, &grant(other.id, foreign.id))
            .await
            .unwrap();

        let wf = workflow("APPROVALS");
        workflows::insert(&mut c, &wf).await.unwrap();
        let open = instance(wf.id, WorkflowStatus::PendingApproval);
        let closed = instance(wf.id, WorkflowStatus::Completed);
        workflow_instances::insert(&mut c, &open).await.unwrap();
        workflow_instances::insert(&mut c, &closed).await.unwrap();

        let mut n = 0;
        let mut approval = |inst: WorkflowInstanceId,
                            user: Option<UserId>,
                            role: Option<RoleId>,
                            status: WorkflowStatus| {
            n += 1;
            let mut s = step(inst, n, StepType::Approval);
            s.assigned_to_user_id = user;
            s.assigned_to_role_id = role;
            s.status = status;
            s
        };
        let to_me = approval(open.id, Some(me.id), None, WorkflowStatus::PendingApproval);
        let to_my_role = approval(
            open.id,
            None,
            Some(held.id),
            WorkflowStatus::PendingApproval,
        );
        let to_lost_role = approval(
            open.id,
            None,
            Some(lost.id),
            WorkflowStatus::PendingApproval,
        );
        let to_other = approval(
            open.id,
            Some(other.id),
            None,
            WorkflowStatus::PendingApproval,
        );
        let decided = approval(open.id, Some(me.id), None, WorkflowStatus::Approved);
        let in_closed = approval(
            closed.id,
            Some(me.id),
            None,
            WorkflowStatus::PendingApproval,
        );
        let mut not_approval = step(open.id, 99, StepType::Validation);
        not_approval.status = WorkflowStatus::PendingApproval;
        not_approval.assigned_to_user_id = Some(me.id);
        for s in [
            &to_me,
            &to_my_role,
            &to_lost_role,
            &to_other,
            &decided,
            &in_closed,
            &not_approval,
        ] {
            workflow_steps::insert(&mut c, s).await.unwrap();
        }

        let all = views::pending_approvals(&mut c, &PageRequest::first(100))
            .await
            .unwrap();
        let all: BTreeSet<_> = all.items.iter().map(|p| p.workflow_step_id).collect();
        let expected: BTreeSet<_> = [to_me.id, to_my_role.id, to_lost_role.id, to_other.id]
            .into_iter()
            .collect();
        assert_eq!(all, expected);

        let mine = views::pending_approvals_for_user(&mut c, me.id)
            .await
            .unwrap();
        let mine_ids: BTreeSet<_> = mine.iter().map(|p| p.workflow_step_id).collect();
        assert_eq!(mine_ids, [to_me.id, to_my_role.id].into_iter().collect());
        let row = mine
            .iter()
            .find(|p| p.workflow_step_id == to_my_role.id)
            .unwrap();
        assert_eq!(row.workflow_code, "APPROVALS");
        assert_eq!(row.workflow_instance_id, open.id);
        assert_eq!(row.subject_id, open.subject_id);
        let theirs = views::pending_approvals_for_user(&mut c, other.id)
            .await
            .unwrap();
        assert_eq!(
            theirs
                .iter()
                .map(|p| p.workflow_step_id)
                .collect::<Vec<_>>(),
            vec![to_other.id]
        );
    })
    .await;
}

#[tokio::test]
async fn certificate_summary_joins_owner_and_organization() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let owner = user("owner");
        users::insert(&mut c, &owner).await.unwrap();
        let org = organization("SUMMARY");
        organizations::insert(&mut c, &org).await.unwrap();
        let mut owned = metadata(CertificateId::new());
        owned.owner_user_id = Some(owner.id);
        owned.organization_id = Some(org.id);
        let orphan = metadata(CertificateId::new());
        let removed = metadata(CertificateId::new());
        for m in [&owned, &orphan, &removed] {
            certificate_metadata::insert(&mut c, m).await.unwrap();
        }
        soft_delete::<certificate_metadata::CertificateMetadataTable>(&mut c, removed.id)
            .await
            .unwrap();

        let page = views::certificate_summary(
            &mut c,
            &CertificateSummaryFilter::default(),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(
            page.items.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![owned.id, orphan.id]
        );
        let s = views::certificate_summary_for(&mut c, owned.certificate_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.owner_username.as_deref(), Some("owner"));
        assert_eq!(s.owner_email.as_deref(), Some("owner@example.com"));
        assert_eq!(s.org_code.as_deref(), Some("SUMMARY"));
        assert_eq!(s.organization_name.as_deref(), Some("Org SUMMARY"));
        assert_eq!(s.environment.as_deref(), Some("prod"));
        let o = views::certificate_summary_for(&mut c, orphan.certificate_id)
            .await
            .unwrap()
            .unwrap();
        assert!(o.owner_username.is_none() && o.org_code.is_none());
        assert!(
            views::certificate_summary_for(&mut c, removed.certificate_id)
                .await
                .unwrap()
                .is_none()
        );
        let by_org = views::certificate_summary(
            &mut c,
            &CertificateSummaryFilter {
                organization_ids: Some(vec![org.id]),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(by_org.items.len(), 1);
    })
    .await;
}
