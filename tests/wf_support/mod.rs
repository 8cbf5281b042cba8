//! Fixtures shared by the workflow and lifecycle tests: an organization with
//! a CA, users holding built-in roles, approval policies and workflows.
#![allow(dead_code)]

use clm::crypto::{DistinguishedName, KeyAlgorithm};
use clm::model::{
    CertificateRequest, CertificateRequestId, Notification, NotificationType, OrganizationId,
    Policy, PolicyRules, SubjectAlternativeName, UserId, Workflow, WorkflowDefinition,
};
use clm::service::access::NewOrganization;
use clm::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use clm::service::identity::NewUser;
use clm::service::issuance::{IssuanceOutcome, IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::service::workflows::NewWorkflow;
use clm::store::certificates::Certificates;
use clm::store::notifications::{NotificationFilter, list_notifications};
use clm::store::{Filter, PageRequest, count};
use clm::{Actor, Clm, SecuritySettings};

use crate::common::unique;

pub fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

pub async fn org(clm: &Clm, code: &str) -> OrganizationId {
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

/// A user of `org` holding the built-in roles `roles`, and its actor as
/// resolved from the database.
pub async fn user_in(clm: &Clm, org: Option<OrganizationId>, roles: &[&str]) -> (UserId, Actor) {
    let system = clm.system_actor();
    let name = unique("user");
    let user = clm
        .create_user(
            &system,
            NewUser {
                username: name.clone(),
                email: format!("{name}@example.com"),
                display_name: None,
                password: None,
                organization_id: org,
            },
        )
        .await
        .expect("create user");
    for code in roles {
        let role = clm.get_role_by_code(&system, code).await.expect("role");
        clm.assign_role(&system, user.id, role.id)
            .await
            .expect("assign role");
    }
    let actor = clm.actor_for_user(user.id).await.expect("actor");
    (user.id, actor)
}

/// A root CA (P-256) of `org` that signs leaves directly.
pub async fn root_ca(clm: &Clm, org: Option<OrganizationId>) -> CertificateAuthority {
    clm.create_root_ca(
        &clm.system_actor(),
        NewCertificateAuthority {
            subject: DistinguishedName::common_name(unique("WF Root CA")),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            validity_days: Some(3650),
            organization_id: org,
            ..Default::default()
        },
    )
    .await
    .expect("create root")
}

/// Root -> intermediate of `org`; the intermediate issues.
pub async fn intermediate_ca(clm: &Clm, org: Option<OrganizationId>) -> CertificateAuthority {
    let root = root_ca(clm, org).await;
    clm.create_intermediate_ca(
        &clm.system_actor(),
        root.certificate.id,
        NewCertificateAuthority {
            subject: DistinguishedName::common_name(unique("WF Issuing CA")),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            validity_days: Some(1825),
            path_len: Some(0),
            organization_id: org,
            ..Default::default()
        },
    )
    .await
    .expect("create intermediate")
}

pub fn rules(require_approval: bool, workflow_code: Option<&str>) -> PolicyRules {
    PolicyRules {
        max_validity_days: 365,
        allowed_domains: vec!["example.com".into()],
        allow_subdomains: true,
        require_approval,
        workflow_code: workflow_code.map(str::to_string),
        ..PolicyRules::default()
    }
}

pub async fn policy(clm: &Clm, org: Option<OrganizationId>, rules: PolicyRules) -> Policy {
    clm.create_policy(
        &clm.system_actor(),
        NewPolicy {
            policy_code: unique("pol"),
            name: "Workflow test policy".into(),
            rules,
            organization_id: org,
            ..NewPolicy::default()
        },
    )
    .await
    .expect("create policy")
}

pub async fn workflow(clm: &Clm, org: Option<OrganizationId>, definition: &str) -> Workflow {
    clm.create_workflow(
        &clm.system_actor(),
        NewWorkflow {
            workflow_code: unique("WF"),
            name: "Test workflow".into(),
            description: None,
            definition: WorkflowDefinition::parse(definition).expect("definition"),
            organization_id: org,
            is_default: false,
        },
    )
    .await
    .expect("create workflow")
}

pub fn leaf(
    ca: &CertificateAuthority,
    policy: &Policy,
    org: Option<OrganizationId>,
    name: &str,
    validity_days: u32,
) -> IssueRequest {
    IssueRequest {
        issuer_id: ca.certificate.id,
        policy_id: Some(policy.id),
        subject: DistinguishedName::common_name(name),
        sans: vec![SubjectAlternativeName::Dns(name.into())],
        kind: clm::model::CertificateKind::TlsServer,
        validity_days,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: org,
    }
}

/// Issues `request` as `actor` and expects it to wait for approval.
pub async fn pending(clm: &Clm, actor: &Actor, request: IssueRequest) -> CertificateRequest {
    match clm
        .issue_certificate(actor, request)
        .await
        .expect("request")
    {
        IssuanceOutcome::Pending { request } => *request,
        other => panic!("expected a pending request, got {other:?}"),
    }
}

pub async fn stored_request(clm: &Clm, id: CertificateRequestId) -> CertificateRequest {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    clm::store::get::<clm::store::certificate_requests::CertificateRequests>(
        &mut conn.conn(),
        id,
        false,
    )
    .await
    .expect("request")
}

pub async fn certificate_count(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    count::<Certificates>(&mut conn.conn(), &Filter::new())
        .await
        .expect("count")
}

/// Every notification of `user` (of `kind` when given), oldest first.
pub async fn notices(clm: &Clm, user: UserId, kind: Option<NotificationType>) -> Vec<Notification> {
    let mut conn = clm.databases().core.acquire().await.expect("conn");
    let mut items = list_notifications(
        &mut conn.conn(),
        &NotificationFilter {
            user_id: Some(user),
            notification_type: kind,
            ..Default::default()
        },
        &PageRequest::first(500),
    )
    .await
    .expect("notifications")
    .items;
    items.sort_by_key(|n| (n.created_at, n.id));
    items
}

/// All notifications of a kind, any user.
pub async fn notices_of_kind(clm: &Clm, kind: NotificationType) -> Vec<Notification> {
    let mut conn = clm.databases().core.acquire().await.expect("conn");
    list_notifications(
        &mut conn.conn(),
        &NotificationFilter {
            notification_type: Some(kind),
            ..Default::default()
        },
        &PageRequest::first(500),
    )
    .await
    .expect("notifications")
    .items
}

/// A custom role of `org` that may approve (but is no APPROVER): for users
/// named personally in a workflow.
pub async fn reviewer_role(clm: &Clm, org: Option<OrganizationId>) -> clm::model::RoleId {
    clm.create_role(
        &clm.system_actor(),
        clm::service::access::NewRole {
            role_code: unique("REVIEWER").replace('-', "_").to_uppercase(),
            role_name: "Reviewer".into(),
            description: None,
            permissions: clm::model::Permissions::from_pairs(&[(
                "workflows",
                &["read", "approve"],
            )]),
            organization_id: org,
        },
    )
    .await
    .expect("role")
    .id
}

/// A user of `org` holding the role `role_id` (and nothing else).
pub async fn user_with_role(
    clm: &Clm,
    org: Option<OrganizationId>,
    role_id: clm::model::RoleId,
) -> (UserId, Actor) {
    let (id, _) = user_in(clm, org, &[]).await;
    clm.assign_role(&clm.system_actor(), id, role_id)
        .await
        .expect("grant");
    (id, clm.actor_for_user(id).await.expect("actor"))
}
