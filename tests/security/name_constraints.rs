//! Attacks on name constraints (issue 14): a tenant whose CA is
//! constrained tries to get a sub-CA or a certificate outside the
//! constraints, the tenant next door tries to hang a sub-CA under it, and
//! actors with too little permission try at all. Nothing may be stored.

use clm::crypto::{DistinguishedName, KeyAlgorithm, NameSubtree};
use clm::model::{
    CertificateKind, OrganizationId, Permissions, PolicyRules, SubjectAlternativeName,
};
use clm::service::access::NewOrganization;
use clm::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use clm::service::identity::NewUser;
use clm::service::issuance::{IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::store::Filter;
use clm::store::certificates::Certificates;
use clm::{Actor, Clm, Error, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, unique};

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

async fn org(clm: &Clm, code: &str) -> OrganizationId {
    clm.create_organization(
        &clm.system_actor(),
        NewOrganization {
            org_code: unique(code),
            name: format!("Org {code}"),
            ..Default::default()
        },
    )
    .await
    .expect("create organization")
    .id
}

/// A real user acting in `org` with exactly `permissions`.
async fn actor(clm: &Clm, org: OrganizationId, permissions: &[(&str, &[&str])]) -> Actor {
    let name = unique("nc");
    let user = clm
        .create_user(
            &clm.system_actor(),
            NewUser {
                username: name.clone(),
                email: format!("{name}@example.com"),
                display_name: None,
                password: None,
                organization_id: Some(org),
            },
        )
        .await
        .expect("create user");
    Actor::with_permissions(user.id, Permissions::from_pairs(permissions), vec![org])
}

const CA_ADMIN: &[(&str, &[&str])] = &[
    ("authorities", &["create", "read"]),
    ("certificates", &["create", "read"]),
    ("policies", &["read"]),
];

/// Tenant `org`'s root, constrained to `tenant-a.example` by the operator.
async fn constrained_root(clm: &Clm, org: OrganizationId) -> CertificateAuthority {
    clm.create_root_ca(
        &clm.system_actor(),
        NewCertificateAuthority {
            subject: DistinguishedName::parse("CN=Tenant A Root,O=Tenant A").expect("dn"),
            organization_id: Some(org),
            permitted_subtrees: vec![NameSubtree::Dns("tenant-a.example".into())],
            ..Default::default()
        },
    )
    .await
    .expect("constrained root")
}

fn sub_ca(org: OrganizationId, permitted: Vec<NameSubtree>) -> NewCertificateAuthority {
    NewCertificateAuthority {
        subject: DistinguishedName::parse("CN=Tenant Sub CA,O=Tenant A").expect("dn"),
        key_algorithm: KeyAlgorithm::EcdsaP256,
        organization_id: Some(org),
        permitted_subtrees: permitted,
        ..Default::default()
    }
}

async fn certificate_count(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    clm::store::count::<Certificates>(&mut conn.conn(), &Filter::new())
        .await
        .expect("count")
}

fn is_name_constraint_refusal(err: &Error) -> bool {
    matches!(err, Error::PolicyViolation { violations }
        if violations.iter().any(|v| v.rule == "name_constraints"))
}

#[tokio::test]
async fn a_tenant_cannot_create_a_sub_ca_that_escapes_its_ca_s_constraints() {
    on_both_keyed(security(), |clm| async move {
        let a = org(&clm, "nc-a").await;
        let root = constrained_root(&clm, a).await;
        let tenant = actor(&clm, a, CA_ADMIN).await;
        let before = certificate_count(&clm).await;
        for permitted in [
            vec![NameSubtree::Dns("example.com".into())],
            vec![NameSubtree::Dns("tenant-b.example".into())],
            // Its parent domain is wider than the constraint.
            vec![NameSubtree::Dns("example".into())],
        ] {
            let err = clm
                .create_intermediate_ca(&tenant, root.certificate.id, sub_ca(a, permitted))
                .await
                .expect_err("escaping sub-CA");
            assert!(is_name_constraint_refusal(&err), "{err}");
        }
        assert_eq!(certificate_count(&clm).await, before);

        // An unconstrained sub-CA is allowed, but inherits the constraints:
        // it cannot issue outside them either.
        let sub = clm
            .create_intermediate_ca(&tenant, root.certificate.id, sub_ca(a, vec![]))
            .await
            .expect("sub-CA without constraints of its own");
        let policy = clm
            .create_policy(
                &clm.system_actor(),
                NewPolicy {
                    policy_code: unique("nc-pol"),
                    name: "Tenant A TLS".into(),
                    rules: PolicyRules {
                        max_validity_days: 90,
                        ..PolicyRules::default()
                    },
                    organization_id: Some(a),
                    ..NewPolicy::default()
                },
            )
            .await
            .expect("policy");
        let before = certificate_count(&clm).await;
        let err = clm
            .issue_certificate(
                &tenant,
                IssueRequest {
                    issuer_id: sub.certificate.id,
                    policy_id: Some(policy.id),
                    subject: DistinguishedName::default(),
                    sans: vec![SubjectAlternativeName::Dns("www.tenant-b.example".into())],
                    kind: CertificateKind::TlsServer,
                    validity_days: 30,
                    key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                    owner_user_id: None,
                    organization_id: Some(a),
                },
            )
            .await
            .expect_err("outside the inherited constraints");
        assert!(is_name_constraint_refusal(&err), "{err}");
        assert_eq!(certificate_count(&clm).await, before);
    })
    .await;
}

#[tokio::test]
async fn the_tenant_next_door_and_narrower_actors_cannot_hang_a_sub_ca_under_it() {
    on_both_keyed(security(), |clm| async move {
        let a = org(&clm, "nc-a").await;
        let b = org(&clm, "nc-b").await;
        let root = constrained_root(&clm, a).await;
        let before = certificate_count(&clm).await;
        let inside = || vec![NameSubtree::Dns("shop.tenant-a.example".into())];

        // Tenant B, fully empowered in B, does not even see A's CA.
        let neighbour = actor(&clm, b, CA_ADMIN).await;
        let err = clm
            .create_intermediate_ca(&neighbour, root.certificate.id, sub_ca(b, inside()))
            .await
            .expect_err("other tenant");
        assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
        let err = clm
            .create_intermediate_ca(&neighbour, root.certificate.id, sub_ca(a, inside()))
            .await
            .expect_err("other tenant naming A");
        assert!(
            matches!(
                err.code(),
                ErrorCode::PermissionDenied | ErrorCode::NotFound
            ),
            "{err}"
        );

        // In A, but without authorities:create.
        let reader = actor(
            &clm,
            a,
            &[("authorities", &["read"]), ("certificates", &["create"])],
        )
        .await;
        let err = clm
            .create_intermediate_ca(&reader, root.certificate.id, sub_ca(a, inside()))
            .await
            .expect_err("narrower permissions");
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        assert_eq!(certificate_count(&clm).await, before);
    })
    .await;
}
