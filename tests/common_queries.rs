//! The schema summary's five "Common Queries", run verbatim on PostgreSQL
//! (only the quoted placeholders are replaced by real values) against data
//! written through the repositories.

mod common;

use chrono::Duration as Days;
use clm::db::Databases;
use clm::model::*;
use clm::store::audit::{self, AuditLogKind};
use clm::store::{
    certificates, now, roles, user_roles, users, workflow_instances, workflow_steps, workflows,
};
use common::*;
use sqlx::{AssertSqlSafe, PgPool, Row};

const GET_USER_WITH_ROLES: &str = "SELECT u.*, array_agg(r.role_code) as roles
FROM users u
LEFT JOIN user_roles ur ON u.id = ur.user_id AND ur.revoked_at IS NULL
LEFT JOIN roles r ON ur.role_id = r.id
WHERE u.username = 'user@example.com' AND u.deleted_at IS NULL
GROUP BY u.id;";

const ACTIVE_CERTIFICATES_FOR_USER: &str =
    "SELECT c.certificate_id, c.common_name, c.not_after, c.status
FROM certificates c
WHERE c.owner_user_id = 'user-uuid'
  AND c.deleted_at IS NULL
  AND c.status = 'active'
ORDER BY c.not_after ASC;";

const EXPIRING_CERTIFICATES: &str = "SELECT * FROM expiring_certificates;  -- Pre-defined view";

const PENDING_APPROVALS_FOR_USER: &str = "SELECT * FROM pending_approvals
WHERE assigned_to_user_id = 'user-uuid'
   OR assigned_to_role_id IN (
       SELECT role_id FROM user_roles 
       WHERE user_id = 'user-uuid' AND revoked_at IS NULL
   );";

const RECENT_CERTIFICATE_OPERATIONS: &str = "SELECT event_type, action, user_id, event_timestamp
FROM secure_audit_log
WHERE resource_type = 'certificate'
  AND resource_id = 'cert-uuid'
ORDER BY event_timestamp DESC
LIMIT 50;";

fn pg_pools(db: &Databases) -> (PgPool, PgPool) {
    match (&db.secure, &db.core) {
        (clm::db::Pool::Postgres(s), clm::db::Pool::Postgres(c)) => (s.clone(), c.clone()),
        _ => panic!("common queries run on PostgreSQL only"),
    }
}

#[tokio::test]
async fn summary_common_queries_run_verbatim() {
    let ran = on_postgres(&|db: Databases| async move {
        let (secure, core) = pg_pools(&db);
        let mut core_conn = db.core.acquire().await.unwrap();
        let mut c = core_conn.conn();

        // Users and roles: the username is literally 'user@example.com'.
        let mut me = user("user@example.com");
        me.email = "user@example.com".into();
        let other = user("other");
        users::insert(&mut c, &me).await.unwrap();
        users::insert(&mut c, &other).await.unwrap();
        let approver = role("APPROVER");
        let ops = role("OPS");
        let former = role("FORMER");
        for r in [&approver, &ops, &former] {
            roles::insert(&mut c, r).await.unwrap();
        }
        user_roles::insert(&mut c, &grant(me.id, approver.id))
            .await
            .unwrap();
        user_roles::insert(&mut c, &grant(me.id, ops.id))
            .await
            .unwrap();
        let revoked = grant(me.id, former.id);
        user_roles::insert(&mut c, &revoked).await.unwrap();
        user_roles::revoke(&mut c, revoked.id, None, now())
            .await
            .unwrap();

        // 1. Get user with roles.
        let rows = sqlx::query(GET_USER_WITH_ROLES)
            .fetch_all(&core)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let id: uuid::Uuid = rows[0].get("id");
        assert_eq!(id, me.id.as_uuid());
        let mut codes: Vec<String> = rows[0].get("roles");
        codes.sort();
        assert_eq!(codes, vec!["APPROVER", "OPS"]);

        // 4. Pending approvals for the user.
        let wf = workflow("STD");
        workflows::insert(&mut c, &wf).await.unwrap();
        let inst = instance(wf.id, WorkflowStatus::PendingApproval);
        workflow_instances::insert(&mut c, &inst).await.unwrap();
        let mut to_me = step(inst.id, 1, StepType::Approval);
        to_me.status = WorkflowStatus::PendingApproval;
        to_me.assigned_to_user_id = Some(me.id);
        let mut to_role = step(inst.id, 2, StepType::Approval);
        to_role.status = WorkflowStatus::PendingApproval;
        to_role.assigned_to_role_id = Some(approver.id);
        let mut to_former = step(inst.id, 3, StepType::Approval);
        to_former.status = WorkflowStatus::PendingApproval;
        to_former.assigned_to_role_id = Some(former.id);
        let mut to_other = step(inst.id, 4, StepType::Approval);
        to_other.status = WorkflowStatus::PendingApproval;
        to_other.assigned_to_user_id = Some(other.id);
        for s in [&to_me, &to_role, &to_former, &to_other] {
            workflow_steps::insert(&mut c, s).await.unwrap();
        }
        let sql = PENDING_APPROVALS_FOR_USER.replace("user-uuid", &me.id.to_string());
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&core)
            .await
            .unwrap();
        let mut got: Vec<uuid::Uuid> = rows.iter().map(|r| r.get("workflow_step_id")).collect();
        got.sort();
        let mut expected = vec![to_me.id.as_uuid(), to_role.id.as_uuid()];
        expected.sort();
        assert_eq!(got, expected);

        // 2. Active certificates of the user.
        let mut secure_conn = db.secure.acquire().await.unwrap();
        let mut s = secure_conn.conn();
        let t = now();
        let mut later = certificate("later.example.com", t + Days::days(200));
        later.owner_user_id = Some(me.id);
        let mut sooner = certificate("sooner.example.com", t + Days::days(20));
        sooner.owner_user_id = Some(me.id);
        let mut revoked_cert = certificate("revoked.example.com", t + Days::days(50));
        revoked_cert.owner_user_id = Some(me.id);
        revoked_cert.status = CertificateStatus::Revoked;
        let mut theirs = certificate("theirs.example.com", t + Days::days(10));
        theirs.owner_user_id = Some(other.id);
        let mut far = certificate("far.example.com", t + Days::days(45));
        far.owner_user_id = Some(other.id);
        certificates::insert_many(
            &mut s,
            &[
                later.clone(),
                sooner.clone(),
                revoked_cert.clone(),
                theirs.clone(),
                far.clone(),
            ],
        )
        .await
        .unwrap();
        let sql = ACTIVE_CERTIFICATES_FOR_USER.replace("user-uuid", &me.id.to_string());
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&secure)
            .await
            .unwrap();
        let got: Vec<String> = rows.iter().map(|r| r.get("certificate_id")).collect();
        assert_eq!(
            got,
            vec![sooner.certificate_id.clone(), later.certificate_id.clone()]
        );
        let status: String = rows[0].get("status");
        assert_eq!(status, "active");

        // 3. Expiring certificates (next 30 days).
        let rows = sqlx::query(EXPIRING_CERTIFICATES)
            .fetch_all(&secure)
            .await
            .unwrap();
        let mut got: Vec<String> = rows.iter().map(|r| r.get("certificate_id")).collect();
        got.sort();
        let mut expected = vec![sooner.certificate_id.clone(), theirs.certificate_id.clone()];
        expected.sort();
        assert_eq!(got, expected);
        let days: i32 = rows[0].get("days_until_expiry");
        assert!((9..=20).contains(&days));

        // 5. Recent operations on one certificate.
        for seq in 1..=60 {
            let resource = if seq <= 55 {
                ResourceId(sooner.id.as_uuid())
            } else {
                ResourceId::new()
            };
            let mut event = audit_event(seq, Some(resource));
            event.event_timestamp = t + Days::seconds(seq);
            audit::append(&mut s, AuditLogKind::Secure, &event)
                .await
                .unwrap();
        }
        let sql = RECENT_CERTIFICATE_OPERATIONS.replace("cert-uuid", &sooner.id.to_string());
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&secure)
            .await
            .unwrap();
        assert_eq!(rows.len(), 50, "LIMIT 50 of 55 matching events");
        let first: chrono::DateTime<chrono::Utc> = rows[0].get("event_timestamp");
        assert_eq!(first, t + Days::seconds(55), "newest first");
        let last: chrono::DateTime<chrono::Utc> = rows[49].get("event_timestamp");
        assert_eq!(last, t + Days::seconds(6));
        let action: String = rows[0].get("action");
        assert_eq!(action, "issue");
    })
    .await;
    if !ran {
        eprintln!("common_queries: PostgreSQL unavailable, nothing ran");
    }
}
