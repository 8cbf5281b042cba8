//! Attacks: CA rollover (issue 14). Planning and running a rollover needs
//! `authorities:rollover` where the CA lives; its status needs
//! `authorities:read` there. The tenant next door (every permission, in its
//! own organization) sees no such CA; an API key scoped below its owner, a
//! user whose role lacks the permission, and a revoked session are refused
//! before anything is written, and every refusal is audited.

use clm::crypto::{DistinguishedName, SecretString};
use clm::model::{AuditOutcome, PERMISSION_CATALOG, Permissions};
use clm::service::access::{NewRole, ROLE_OPERATOR};
use clm::service::authorities::NewCertificateAuthority;
use clm::service::identity::{LoginContext, NewApiKey, NewUser};
use clm::service::rollover::{RolloverOptions, RolloverRun};
use clm::store::PageRequest;
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::{Actor, Clm, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, unique};
use crate::members::member;

fn settings() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 2,
        ..SecuritySettings::default()
    }
}

async fn denials(clm: &Clm, event_type: &str) -> usize {
    let filter = AuditFilter {
        event_type: Some(event_type.to_string()),
        ..AuditFilter::default()
    };
    clm.list_audit_events(
        &clm.system_actor(),
        AuditLogKind::Core,
        &filter,
        &PageRequest::first(500),
    )
    .await
    .expect("audit events")
    .items
    .iter()
    .filter(|e| e.outcome == AuditOutcome::Denied)
    .count()
}

/// Plan and run as `actor`; both must fail with `code`.
async fn refused(
    clm: &Clm,
    actor: &Actor,
    ca: clm::model::CertificateId,
    code: ErrorCode,
    who: &str,
) {
    let plan = clm
        .plan_ca_rollover(actor, ca, RolloverOptions::default())
        .await
        .map(|_| ());
    let run = clm
        .run_ca_rollover(
            actor,
            ca,
            RolloverOptions::default(),
            RolloverRun::default(),
        )
        .await
        .map(|_| ());
    for (what, outcome) in [("plan", plan), ("run", run)] {
        let err = outcome.expect_err(&format!("{who} must not {what} the rollover"));
        assert_eq!(err.code(), code, "{who} {what}: {err}");
    }
}

async fn rollovers(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    clm::store::count::<clm::store::ca_rollovers::CaRollovers>(
        &mut conn.conn(),
        &clm::store::Filter::new(),
    )
    .await
    .expect("count")
}

#[tokio::test]
async fn rollover_refuses_neighbours_narrow_keys_weaker_users_and_revoked_sessions() {
    on_both_keyed(settings(), |clm| async move {
        let system = clm.system_actor();
        let everything: Vec<(&str, &[&str])> = PERMISSION_CATALOG.to_vec();
        let owner = member(&clm, "roll-owner", &everything).await;
        let ca = clm
            .create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: DistinguishedName::common_name(unique("Tenant Root")),
                    organization_id: Some(owner.org),
                    ..Default::default()
                },
            )
            .await
            .expect("root")
            .certificate
            .id;

        // The tenant next door: everything, in its own organization. The CA
        // does not exist for it.
        let neighbour = member(&clm, "roll-neighbour", &everything).await;
        refused(
            &clm,
            &neighbour.actor,
            ca,
            ErrorCode::NotFound,
            "the tenant next door",
        )
        .await;
        let err = clm
            .ca_rollover_status(&neighbour.actor, ca)
            .await
            .expect_err("neighbour status");
        assert_eq!(err.code(), ErrorCode::NotFound);

        // The owner's API key scoped to reading authorities.
        let key = clm
            .create_api_key(
                &owner.actor,
                NewApiKey {
                    name: "read only".into(),
                    scopes: Some(Permissions::from_pairs(&[("authorities", &["read"])])),
                    organization_id: Some(owner.org),
                    ..Default::default()
                },
            )
            .await
            .expect("narrow key");
        let narrow = clm
            .authenticate_api_key(key.key.expose())
            .await
            .expect("key actor");
        refused(
            &clm,
            &narrow,
            ca,
            ErrorCode::PermissionDenied,
            "a narrower API key",
        )
        .await;

        // A global operator: authorities read and sign_crl, no rollover.
        let name = unique("operator");
        let operator = clm
            .create_user(
                &system,
                NewUser {
                    username: name.clone(),
                    email: format!("{name}@example.com"),
                    display_name: None,
                    password: None,
                    organization_id: Some(owner.org),
                },
            )
            .await
            .expect("operator");
        let role = clm
            .get_role_by_code(&system, ROLE_OPERATOR)
            .await
            .expect("OPERATOR");
        clm.assign_role(&system, operator.id, role.id)
            .await
            .expect("grant");
        let operator = clm.actor_for_user(operator.id).await.expect("actor");
        refused(
            &clm,
            &operator,
            ca,
            ErrorCode::PermissionDenied,
            "an operator",
        )
        .await;

        // A session of a user who may roll the CA over, revoked: its token
        // no longer yields an actor.
        let name = unique("pki");
        let password = SecretString::from("correct horse battery staple 42".to_string());
        let pki = clm
            .create_user(
                &system,
                NewUser {
                    username: name.clone(),
                    email: format!("{name}@example.com"),
                    display_name: None,
                    password: Some(password.clone()),
                    organization_id: Some(owner.org),
                },
            )
            .await
            .expect("pki user");
        let pki_role = clm
            .create_role(
                &system,
                NewRole {
                    role_code: unique("ROLL"),
                    role_name: "Rolls CAs over".into(),
                    description: None,
                    permissions: Permissions::from_pairs(&[("authorities", &["read", "rollover"])]),
                    organization_id: Some(owner.org),
                },
            )
            .await
            .expect("role");
        clm.assign_role(&system, pki.id, pki_role.id)
            .await
            .expect("grant");
        let login = clm
            .authenticate(&name, password, None, LoginContext::default())
            .await
            .expect("login");
        let session = clm
            .validate_session(login.token.expose())
            .await
            .expect("session");
        let plan = clm
            .plan_ca_rollover(&session, ca, RolloverOptions::default())
            .await
            .expect("a live session may plan");
        assert_eq!(plan.leaves_to_reissue, 0);
        clm.revoke_session(&system, login.session.id)
            .await
            .expect("revoke");
        let err = clm
            .validate_session(login.token.expose())
            .await
            .expect_err("revoked session");
        assert_eq!(err.code(), ErrorCode::Authentication);

        // Nothing was written by any refused attempt; each was audited.
        assert_eq!(rollovers(&clm).await, 0);
        assert!(denials(&clm, "authorities.rollover").await >= 6);

        // The owner may.
        let report = clm
            .run_ca_rollover(
                &owner.actor,
                ca,
                RolloverOptions::default(),
                RolloverRun::default(),
            )
            .await
            .expect("owner runs the rollover");
        assert_eq!(
            report.rollover.status,
            clm::model::RolloverStatus::Completed
        );
        clm.ca_rollover_status(&narrow, ca)
            .await
            .expect("reading the status needs authorities:read only");
    })
    .await;
}

/// A tenant's intermediate under a shared root: rolling it over signs a new
/// subordinate of the shared root, which only whoever may do that where the
/// root lives (a global administrator) may.
#[tokio::test]
async fn a_tenant_cannot_roll_over_its_intermediate_of_a_shared_root() {
    on_both_keyed(settings(), |clm| async move {
        let system = clm.system_actor();
        let everything: Vec<(&str, &[&str])> = PERMISSION_CATALOG.to_vec();
        let tenant = member(&clm, "roll-tenant", &everything).await;
        let shared_root = clm
            .create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: DistinguishedName::common_name(unique("Shared Root")),
                    ..Default::default()
                },
            )
            .await
            .expect("shared root");
        let inter = clm
            .create_intermediate_ca(
                &system,
                shared_root.certificate.id,
                NewCertificateAuthority {
                    subject: DistinguishedName::common_name(unique("Tenant Issuing")),
                    validity_days: Some(1000),
                    organization_id: Some(tenant.org),
                    ..Default::default()
                },
            )
            .await
            .expect("tenant intermediate");
        refused(
            &clm,
            &tenant.actor,
            inter.certificate.id,
            ErrorCode::PermissionDenied,
            "a tenant under a shared root",
        )
        .await;
        assert_eq!(rollovers(&clm).await, 0);
        // Nor may it touch the shared root itself (it cannot see it as its own).
        refused(
            &clm,
            &tenant.actor,
            shared_root.certificate.id,
            ErrorCode::NotFound,
            "a tenant",
        )
        .await;
    })
    .await;
}
