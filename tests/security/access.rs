//! Attacks on the access model: containment of user managers, API-key
//! scopes against self-service, organization-scoped roles, shared CAs and
//! policies, key minting, organization status, and the denials that must be
//! audited. Each test is one finding of the review (issue 11).

use clm::crypto::{DistinguishedName, KeyAlgorithm, SecretString};
use clm::model::{
    AuditOutcome, CertificateKind, OrganizationId, OrganizationStatus, Permissions, PolicyRules,
    RoleId, SubjectAlternativeName, User, UserId, UserStatus,
};
use clm::service::access::{NewOrganization, NewRole, ROLE_ADMIN, ROLE_OPERATOR};
use clm::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use clm::service::identity::{LoginContext, NewApiKey, NewUser, UserUpdate};
use clm::service::issuance::{IssuanceOutcome, IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::store::PageRequest;
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::{Actor, Clm, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, unique};

// ------------------------------------------------------------------ helpers

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

fn pw(tag: &str) -> SecretString {
    SecretString::new(format!("Correct-{tag}-battery-staple-9"))
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

/// A user with a password, member of `org` when given.
async fn user(clm: &Clm, prefix: &str, org: Option<OrganizationId>) -> User {
    let name = unique(prefix);
    clm.create_user(
        &clm.system_actor(),
        NewUser {
            username: name.clone(),
            email: format!("{name}@example.com"),
            display_name: None,
            password: Some(pw(prefix)),
            organization_id: org,
        },
    )
    .await
    .expect("create user")
}

/// A custom role (of `org`, or global) with `permissions`, granted to `user`.
async fn grant(
    clm: &Clm,
    user: UserId,
    org: Option<OrganizationId>,
    permissions: &[(&str, &[&str])],
) -> RoleId {
    let system = clm.system_actor();
    let role = clm
        .create_role(
            &system,
            NewRole {
                role_code: unique("role"),
                role_name: "Custom".into(),
                permissions: Permissions::from_pairs(permissions),
                organization_id: org,
                ..Default::default()
            },
        )
        .await
        .expect("create role");
    clm.assign_role(&system, user, role.id)
        .await
        .expect("assign role");
    role.id
}

async fn grant_builtin(clm: &Clm, user: UserId, code: &str) {
    let system = clm.system_actor();
    let role = clm.get_role_by_code(&system, code).await.expect("role");
    clm.assign_role(&system, user, role.id)
        .await
        .expect("assign role");
}

/// Logs `user` in (password `pw(prefix)`) and returns the session actor.
async fn session(clm: &Clm, user: &User, prefix: &str) -> (Actor, String) {
    let login = clm
        .authenticate(&user.username, pw(prefix), None, LoginContext::default())
        .await
        .expect("login");
    let token = login.token.expose().to_string();
    let actor = clm.validate_session(&token).await.expect("session");
    (actor, token)
}

fn refused(result: &clm::Result<impl std::fmt::Debug>, what: &str) {
    match result {
        Err(err)
            if matches!(
                err.code(),
                ErrorCode::PermissionDenied | ErrorCode::NotFound
            ) => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

async fn denials(clm: &Clm, user: UserId) -> usize {
    clm.list_audit_events(
        &clm.system_actor(),
        AuditLogKind::Core,
        &AuditFilter {
            user_id: Some(user),
            ..Default::default()
        },
        &PageRequest::first(500),
    )
    .await
    .expect("audit events")
    .items
    .iter()
    .filter(|e| e.outcome == AuditOutcome::Denied)
    .count()
}

async fn root_ca(clm: &Clm, org: Option<OrganizationId>) -> CertificateAuthority {
    clm.create_root_ca(
        &clm.system_actor(),
        NewCertificateAuthority {
            subject: DistinguishedName::common_name(unique("Root CA")),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            validity_days: Some(3650),
            path_len: Some(1),
            organization_id: org,
            ..Default::default()
        },
    )
    .await
    .expect("create root")
}

fn leaf(
    ca: &CertificateAuthority,
    policy: Option<clm::model::PolicyId>,
    org: Option<OrganizationId>,
    name: &str,
) -> IssueRequest {
    IssueRequest {
        issuer_id: ca.certificate.id,
        policy_id: policy,
        subject: DistinguishedName::common_name(name),
        sans: vec![SubjectAlternativeName::Dns(name.into())],
        kind: CertificateKind::TlsServer,
        validity_days: 30,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: org,
    }
}

// ------------------------------------------------------------------ finding 1

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_user_manager_cannot_take_over_the_global_admin() {
    on_both_keyed(security(), |clm| async move {
        let tenant = org(&clm, "tenant").await;
        let admin = user(&clm, "gadmin", None).await;
        grant_builtin(&clm, admin.id, ROLE_ADMIN).await;
        let manager = user(&clm, "umgr", Some(tenant)).await;
        grant(
            &clm,
            manager.id,
            Some(tenant),
            &[
                ("users", &["read", "update"]),
                ("organizations", &["read", "manage_members"]),
            ],
        )
        .await;
        let (mgr, _) = session(&clm, &manager, "umgr").await;

        // Pulling the administrator into the tenant needs reach over them.
        let added = clm
            .add_organization_member(&mgr, tenant, admin.id, "member")
            .await;
        refused(&added, "add the global admin to my organization");
        // The lookup by name must not hand out the administrator's id.
        let lookup = clm.get_user_by_username(&mgr, &admin.username).await;
        let message = lookup.expect_err("admin out of reach").to_string();
        assert!(
            !message.contains(&admin.id.to_string()),
            "error gives away the id: {message}"
        );

        // Even when the administrator is a member of the tenant, a manager
        // holding less cannot act on them.
        clm.add_organization_member(&clm.system_actor(), tenant, admin.id, "member")
            .await
            .expect("system adds admin");
        refused(
            &clm.set_password(&mgr, admin.id, pw("taken")).await,
            "reset the admin's password",
        );
        refused(
            &clm.disable_mfa(&mgr, admin.id, None, None).await,
            "disable the admin's MFA",
        );
        refused(
            &clm.update_user(
                &mgr,
                admin.id,
                UserUpdate {
                    email: Some("attacker@example.net".into()),
                    ..Default::default()
                },
            )
            .await,
            "change the admin's e-mail",
        );
        refused(
            &clm.revoke_user_sessions(&mgr, admin.id).await,
            "end the admin's sessions",
        );
        let stored = clm
            .get_user(&clm.system_actor(), admin.id)
            .await
            .expect("admin");
        assert_eq!(stored.email, admin.email, "admin's e-mail changed");
        clm.authenticate(&admin.username, pw("gadmin"), None, LoginContext::default())
            .await
            .expect("admin's password still works");

        // A plain member the manager covers stays manageable.
        let member = user(&clm, "member", Some(tenant)).await;
        clm.update_user(
            &mgr,
            member.id,
            UserUpdate {
                display_name: Some("Renamed".into()),
                ..Default::default()
            },
        )
        .await
        .expect("manager updates a plain member");
    })
    .await;
}

// ------------------------------------------------------------------ finding 2

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_read_only_key_cannot_change_its_owners_credentials() {
    on_both_keyed(security(), |clm| async move {
        let tenant = org(&clm, "tenant").await;
        let owner = user(&clm, "owner", Some(tenant)).await;
        grant_builtin(&clm, owner.id, ROLE_OPERATOR).await;
        let (sess, sess_token) = session(&clm, &owner, "owner").await;
        let created = clm
            .create_api_key(
                &sess,
                NewApiKey {
                    name: "read only".into(),
                    scopes: Some(Permissions::from_pairs(&[("certificates", &["read"])])),
                    ..Default::default()
                },
            )
            .await
            .expect("create key");
        let key = clm
            .authenticate_api_key(created.key.expose())
            .await
            .expect("key actor");

        refused(
            &clm.set_password(&key, owner.id, pw("stolen")).await,
            "a read-only key sets its owner's password",
        );
        refused(
            &clm.change_password(&key, pw("owner"), pw("stolen"), None)
                .await,
            "a read-only key changes its owner's password, even knowing it",
        );
        refused(
            &clm.begin_mfa_enrollment(&key, pw("owner")).await,
            "a read-only key enrols MFA",
        );
        refused(
            &clm.disable_mfa(&key, owner.id, Some(pw("owner")), None)
                .await,
            "a read-only key disables MFA",
        );
        clm.authenticate(&owner.username, pw("owner"), None, LoginContext::default())
            .await
            .expect("the owner's password is unchanged");

        // In person, the current password is asked for, and a change ends
        // every other session.
        let (other, other_token) = session(&clm, &owner, "owner").await;
        let wrong = clm
            .change_password(&sess, pw("not-the-password"), pw("stolen"), None)
            .await;
        assert_eq!(
            wrong.as_ref().map_err(|e| e.code()).err(),
            Some(ErrorCode::Authentication),
            "a change without the current password: {wrong:?}"
        );
        clm.change_password(&sess, pw("owner"), pw("renewed"), None)
            .await
            .expect("change with the current password");
        assert!(
            clm.validate_session(&other_token).await.is_err(),
            "the other session survived a password change"
        );
        drop(other);
        clm.validate_session(&sess_token)
            .await
            .expect("the session that changed it stays open");
        clm.authenticate(
            &owner.username,
            pw("renewed"),
            None,
            LoginContext::default(),
        )
        .await
        .expect("the new password works");
    })
    .await;
}

// ------------------------------------------------------------------ finding 3

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_org_scoped_role_grants_only_in_its_organization() {
    on_both_keyed(security(), |clm| async move {
        let x = org(&clm, "x").await;
        let y = org(&clm, "y").await;
        let member = user(&clm, "both", Some(x)).await;
        clm.add_organization_member(&clm.system_actor(), y, member.id, "member")
            .await
            .expect("member of y");
        grant(
            &clm,
            member.id,
            Some(x),
            &[("policies", &["create", "read"])],
        )
        .await;
        let actor = clm.actor_for_user(member.id).await.expect("actor");
        let in_x = NewPolicy {
            policy_code: unique("px"),
            name: "X policy".into(),
            rules: PolicyRules::default(),
            organization_id: Some(x),
            ..Default::default()
        };
        clm.create_policy(&actor, in_x)
            .await
            .expect("the role grants in X");
        let in_y = NewPolicy {
            policy_code: unique("py"),
            name: "Y policy".into(),
            rules: PolicyRules::default(),
            organization_id: Some(y),
            ..Default::default()
        };
        refused(
            &clm.create_policy(&actor, in_y).await,
            "X's role creates a policy in Y",
        );
    })
    .await;
}

// ------------------------------------------------------------------ finding 4

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_tenant_cannot_mint_an_intermediate_under_a_shared_root() {
    on_both_keyed(security(), |clm| async move {
        let tenant = org(&clm, "tenant").await;
        let shared_root = root_ca(&clm, None).await;
        let own_root = root_ca(&clm, Some(tenant)).await;
        let operator = user(&clm, "caop", Some(tenant)).await;
        grant(
            &clm,
            operator.id,
            Some(tenant),
            &[
                ("authorities", &["create", "read"]),
                ("certificates", &["create", "read", "export"]),
            ],
        )
        .await;
        let actor = clm.actor_for_user(operator.id).await.expect("actor");
        let minted = clm
            .create_intermediate_ca(
                &actor,
                shared_root.certificate.id,
                NewCertificateAuthority {
                    subject: DistinguishedName::common_name("Tenant Sub CA"),
                    key_algorithm: KeyAlgorithm::EcdsaP256,
                    validity_days: Some(365),
                    organization_id: Some(tenant),
                    ..Default::default()
                },
            )
            .await;
        assert!(
            minted.is_err(),
            "a tenant minted a CA under the shared root: {minted:?}"
        );
        // A CA's key is not an end-entity key: certificates:export is not enough.
        let exported = clm
            .export_private_key(&actor, own_root.certificate.id)
            .await;
        refused(
            &exported,
            "export a CA's private key with certificates:export",
        );
    })
    .await;
}

// ------------------------------------------------------------------ finding 5

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_caller_cannot_pick_a_laxer_policy() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let tenant = org(&clm, "tenant").await;
        let ca = root_ca(&clm, Some(tenant)).await;
        // The organization's own policy requires approval.
        clm.create_policy(
            &system,
            NewPolicy {
                policy_code: unique("strict"),
                name: "Strict".into(),
                rules: PolicyRules {
                    require_approval: true,
                    ..PolicyRules::default()
                },
                organization_id: Some(tenant),
                ..Default::default()
            },
        )
        .await
        .expect("strict policy");
        // A shared policy without approval, readable by everyone.
        let lax = clm
            .create_policy(
                &system,
                NewPolicy {
                    policy_code: unique("lax"),
                    name: "Lax".into(),
                    rules: PolicyRules::default(),
                    organization_id: None,
                    ..Default::default()
                },
            )
            .await
            .expect("lax policy");
        let operator = user(&clm, "op", Some(tenant)).await;
        grant(
            &clm,
            operator.id,
            Some(tenant),
            &[
                ("certificates", &["create", "read"]),
                ("authorities", &["read"]),
                ("policies", &["read"]),
                ("requests", &["create", "read"]),
            ],
        )
        .await;
        let actor = clm.actor_for_user(operator.id).await.expect("actor");
        let outcome = clm
            .issue_certificate(
                &actor,
                leaf(&ca, Some(lax.id), Some(tenant), "a.example.com"),
            )
            .await;
        assert!(
            !matches!(outcome, Ok(IssuanceOutcome::Issued { .. })),
            "naming a laxer shared policy skipped the organization's approval: {outcome:?}"
        );
    })
    .await;
}

// ------------------------------------------------------------------ finding 7

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_narrow_key_cannot_mint_a_wider_key() {
    on_both_keyed(security(), |clm| async move {
        let x = org(&clm, "x").await;
        let y = org(&clm, "y").await;
        let owner = user(&clm, "keyowner", Some(x)).await;
        clm.add_organization_member(&clm.system_actor(), y, owner.id, "member")
            .await
            .expect("member of y");
        grant_builtin(&clm, owner.id, ROLE_OPERATOR).await;
        let (sess, _) = session(&clm, &owner, "keyowner").await;
        let expires = chrono::Utc::now() + chrono::Duration::days(1);
        let narrow = clm
            .create_api_key(
                &sess,
                NewApiKey {
                    name: "narrow".into(),
                    scopes: Some(Permissions::from_pairs(&[
                        ("certificates", &["read"]),
                        ("api_keys", &["create"]),
                    ])),
                    expires_at: Some(expires),
                    organization_id: Some(x),
                },
            )
            .await
            .expect("narrow key");
        let key = clm
            .authenticate_api_key(narrow.key.expose())
            .await
            .expect("key actor");
        let unrestricted = clm
            .create_api_key(
                &key,
                NewApiKey {
                    name: "no organization".into(),
                    scopes: Some(Permissions::from_pairs(&[("certificates", &["read"])])),
                    expires_at: Some(expires),
                    organization_id: None,
                },
            )
            .await;
        assert!(
            unrestricted.is_err(),
            "X-only key minted an any-organization key"
        );
        let forever = clm
            .create_api_key(
                &key,
                NewApiKey {
                    name: "forever".into(),
                    scopes: Some(Permissions::from_pairs(&[("certificates", &["read"])])),
                    expires_at: None,
                    organization_id: Some(x),
                },
            )
            .await;
        assert!(
            forever.is_err(),
            "an expiring key minted a non-expiring key"
        );
        let wider = clm
            .create_api_key(
                &key,
                NewApiKey {
                    name: "wider".into(),
                    scopes: Some(Permissions::from_pairs(&[(
                        "certificates",
                        &["read", "create"],
                    )])),
                    expires_at: Some(expires),
                    organization_id: Some(x),
                },
            )
            .await;
        assert!(wider.is_err(), "a key minted one with wider scopes");
        let other_org = clm
            .create_api_key(
                &key,
                NewApiKey {
                    name: "other org".into(),
                    scopes: Some(Permissions::from_pairs(&[("certificates", &["read"])])),
                    expires_at: Some(expires),
                    organization_id: Some(y),
                },
            )
            .await;
        assert!(other_org.is_err(), "an X-only key minted a Y key");
        // Within its bounds it may.
        clm.create_api_key(
            &key,
            NewApiKey {
                name: "within".into(),
                scopes: Some(Permissions::from_pairs(&[("certificates", &["read"])])),
                expires_at: Some(expires - chrono::Duration::hours(1)),
                organization_id: Some(x),
            },
        )
        .await
        .expect("a key within the minting key's bounds");
    })
    .await;
}

// ------------------------------------------------------------------ finding 10

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_suspended_organization_stops_working() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let tenant = org(&clm, "tenant").await;
        let ca = root_ca(&clm, Some(tenant)).await;
        let member = user(&clm, "member", Some(tenant)).await;
        grant(
            &clm,
            member.id,
            Some(tenant),
            &[
                ("certificates", &["create", "read"]),
                ("authorities", &["read"]),
                ("policies", &["read"]),
                ("organizations", &["read", "update"]),
            ],
        )
        .await;
        let policy = clm
            .create_policy(
                &system,
                NewPolicy {
                    policy_code: unique("pol"),
                    name: "Tenant policy".into(),
                    rules: PolicyRules::default(),
                    organization_id: Some(tenant),
                    ..Default::default()
                },
            )
            .await
            .expect("policy");
        let actor = clm.actor_for_user(member.id).await.expect("actor");
        clm.issue_certificate(
            &actor,
            leaf(&ca, Some(policy.id), Some(tenant), "a.example.com"),
        )
        .await
        .expect("an active organization issues");
        clm.set_organization_status(&system, tenant, OrganizationStatus::Suspended)
            .await
            .expect("suspend");
        let actor = clm.actor_for_user(member.id).await.expect("actor");
        let issued = clm
            .issue_certificate(
                &actor,
                leaf(&ca, Some(policy.id), Some(tenant), "s.example.com"),
            )
            .await;
        refused(&issued, "a suspended organization issues");
        let read = clm.get_certificate(&actor, ca.certificate.id).await;
        refused(&read, "a suspended organization's member reads its CA");
        let reactivated = clm
            .set_organization_status(&actor, tenant, OrganizationStatus::Active)
            .await;
        refused(
            &reactivated,
            "a member reactivates its suspended organization",
        );
        // Even while active, a member's organizations:update does not cover status.
        clm.set_organization_status(&system, tenant, OrganizationStatus::Active)
            .await
            .expect("the provider reactivates");
        let actor = clm.actor_for_user(member.id).await.expect("actor");
        let archived = clm
            .set_organization_status(&actor, tenant, OrganizationStatus::Inactive)
            .await;
        refused(&archived, "a member changes its organization's status");
    })
    .await;
}

// ------------------------------------------------------------------ seed: delete_role

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_deleted_role_grants_nothing_and_its_grants_are_revoked() {
    on_both_keyed(security(), |clm| async move {
        let tenant = org(&clm, "tenant").await;
        let member = user(&clm, "member", Some(tenant)).await;
        let role = grant(
            &clm,
            member.id,
            Some(tenant),
            &[("certificates", &["read"])],
        )
        .await;
        clm.delete_role(&clm.system_actor(), role)
            .await
            .expect("delete role");
        let mut conn = clm.databases().core.acquire().await.expect("conn");
        let current = clm::store::user_roles::find_current(&mut conn.conn(), member.id, role)
            .await
            .expect("query");
        assert!(
            current.is_none(),
            "the deleted role's grant is still current: {current:?}"
        );
    })
    .await;
}

// ------------------------------------------------------------------ finding 12

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_denials_inside_workflows_are_audited() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let tenant = org(&clm, "tenant").await;
        let ca = root_ca(&clm, Some(tenant)).await;
        let policy = clm
            .create_policy(
                &system,
                NewPolicy {
                    policy_code: unique("approve"),
                    name: "Approval".into(),
                    rules: PolicyRules {
                        require_approval: true,
                        ..PolicyRules::default()
                    },
                    organization_id: Some(tenant),
                    ..Default::default()
                },
            )
            .await
            .expect("policy");
        let requester = user(&clm, "req", Some(tenant)).await;
        grant(
            &clm,
            requester.id,
            Some(tenant),
            &[
                ("certificates", &["create", "read"]),
                ("authorities", &["read"]),
                ("policies", &["read"]),
                ("requests", &["create", "read"]),
                ("workflows", &["read", "approve"]),
            ],
        )
        .await;
        let actor = clm.actor_for_user(requester.id).await.expect("actor");
        let request = match clm
            .issue_certificate(
                &actor,
                leaf(&ca, Some(policy.id), Some(tenant), "w.example.com"),
            )
            .await
            .expect("request")
        {
            IssuanceOutcome::Pending { request } => request,
            other => panic!("expected a pending request, got {other:?}"),
        };
        let instance = request.workflow_instance_id.expect("instance");
        let before = denials(&clm, requester.id).await;
        let own = clm.decide_approval(&actor, instance, true, None).await;
        assert_eq!(
            own.as_ref().map_err(|e| e.code()).err(),
            Some(ErrorCode::PermissionDenied),
            "approving one's own request: {own:?}"
        );
        assert_eq!(
            denials(&clm, requester.id).await,
            before + 1,
            "the refused self-approval left no audit row"
        );
    })
    .await;
}

// ------------------------------------------------------------------ finding 16

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_key_without_api_keys_read_cannot_list_keys() {
    on_both_keyed(security(), |clm| async move {
        let tenant = org(&clm, "tenant").await;
        let owner = user(&clm, "owner", Some(tenant)).await;
        grant_builtin(&clm, owner.id, ROLE_OPERATOR).await;
        let (sess, _) = session(&clm, &owner, "owner").await;
        let created = clm
            .create_api_key(
                &sess,
                NewApiKey {
                    name: "certs only".into(),
                    scopes: Some(Permissions::from_pairs(&[("certificates", &["read"])])),
                    ..Default::default()
                },
            )
            .await
            .expect("key");
        let key = clm
            .authenticate_api_key(created.key.expose())
            .await
            .expect("key actor");
        refused(
            &clm.list_api_keys(&key, &PageRequest::first(10)).await,
            "a certificates-only key lists its owner's keys",
        );
        clm.list_api_keys(&sess, &PageRequest::first(10))
            .await
            .expect("the owner (api_keys:read) lists them");
    })
    .await;
}

// ------------------------------------------------------------------ status sanity

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_disabled_user_session_is_refused() {
    on_both_keyed(security(), |clm| async move {
        let tenant = org(&clm, "tenant").await;
        let member = user(&clm, "member", Some(tenant)).await;
        let (_, token) = session(&clm, &member, "member").await;
        clm.update_user(
            &clm.system_actor(),
            member.id,
            UserUpdate {
                status: Some(UserStatus::Suspended),
                ..Default::default()
            },
        )
        .await
        .expect("suspend");
        assert!(clm.validate_session(&token).await.is_err());
    })
    .await;
}

// ------------------------------------------------------------------ finding 11

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_numbers_feeding_time_arithmetic_are_range_checked() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let far = chrono::DateTime::<chrono::Utc>::MAX_UTC;
        for (what, result) in [
            (
                "run_lifecycle",
                clm.run_lifecycle(&system, far).await.map(|_| ()),
            ),
            (
                "refresh_certificate_statuses",
                clm.refresh_certificate_statuses(&system, far)
                    .await
                    .map(|_| ()),
            ),
            (
                "expire_stale_workflows",
                clm.expire_stale_workflows(&system, far).await.map(|_| ()),
            ),
        ] {
            let err = result.expect_err(what);
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{what}: {err}");
            assert!(err.to_string().contains("at"), "{what}: {err}");
        }
    })
    .await;
    // Limits that feed session and lockout arithmetic are checked at open.
    let dir = tempfile::tempdir().expect("tempdir");
    let opened = Clm::open(
        clm::ClmConfig::sqlite(dir.path())
            .with_master_key(crate::common::test_master_key())
            .with_security(SecuritySettings {
                session_ttl_seconds: u64::MAX,
                ..security()
            }),
    )
    .await;
    let err = opened.expect_err("an absurd session lifetime");
    assert!(err.to_string().contains("session_ttl_seconds"), "{err}");
}
