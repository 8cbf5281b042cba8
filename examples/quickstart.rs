//! Quickstart: opens clm on embedded SQLite (or PostgreSQL when
//! CLM_SECURE_DATABASE_URL / CLM_CORE_DATABASE_URL are set, with the
//! CLM_DATABASE_SSL* TLS settings and CLM_MASTER_KEY(_FILE); set but wrong,
//! it fails instead of falling back to SQLite), creates an
//! organization, an administrator, a custom role and a policy, logs in and
//! creates an API key, sends a certificate request through approval, then
//! prints what it stored.
//!
//!     cargo run --example quickstart [-- DATA_DIR]

use clm::PageRequest;
use clm::crypto::{DistinguishedName, KeyAlgorithm, SecretString};
use clm::model::{CertificateKind, Permissions, PolicyRules, SubjectAlternativeName};
use clm::service::access::{NewOrganization, NewRole, ROLE_ADMIN, ROLE_APPROVER};
use clm::service::authorities::NewCertificateAuthority;
use clm::service::identity::{LoginContext, NewApiKey, NewUser};
use clm::service::issuance::{IssuanceOutcome, IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::{Clm, ClmConfig, MasterKeySource};

#[tokio::main]
async fn main() {
    if let Err(err) = run().await {
        eprintln!("quickstart failed: {err} [{}]", err.code());
        if postgres_requested() {
            eprintln!(
                "(CLM_SECURE_DATABASE_URL or CLM_CORE_DATABASE_URL is set, so the quickstart uses PostgreSQL and nothing else: fix them, or unset both for SQLite)"
            );
        }
        std::process::exit(1);
    }
}

/// Whether either PostgreSQL variable is set: then PostgreSQL it is, and a
/// half-set pair, a bad URL or an unreachable server is an error rather
/// than a quiet fall back to SQLite.
fn postgres_requested() -> bool {
    ["CLM_SECURE_DATABASE_URL", "CLM_CORE_DATABASE_URL"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

async fn run() -> clm::Result<()> {
    let data_dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./clm-data".to_string());
    let mut config = if postgres_requested() {
        ClmConfig::from_env()?
    } else {
        ClmConfig::sqlite(&data_dir)
    };
    if config.master_key.is_none() {
        let key_file = std::path::Path::new(&data_dir).join("master.key");
        println!(
            "no master key configured: using (or creating) {}",
            key_file.display()
        );
        config.master_key = Some(MasterKeySource::FileOrCreate(key_file));
    }
    println!("opening clm: {:?}", config.database);
    let clm = Clm::open(config).await?;
    let system = clm.system_actor();

    // Runs are repeatable: names carry a suffix unique to this run.
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];

    let org = clm
        .create_organization(
            &system,
            NewOrganization {
                org_code: format!("ACME-{suffix}"),
                name: "Acme Corporation".into(),
                description: Some("Example organization".into()),
                parent_organization_id: None,
            },
        )
        .await?;
    println!("organization  {} ({})", org.org_code, org.id);

    let password = SecretString::new(format!("correct horse battery {suffix}"));
    let admin = clm
        .create_user(
            &system,
            NewUser {
                username: format!("admin-{suffix}"),
                email: format!("admin-{suffix}@acme.example"),
                display_name: Some("Acme Administrator".into()),
                password: Some(password.clone()),
                organization_id: Some(org.id),
            },
        )
        .await?;
    let admin_role = clm.get_role_by_code(&system, ROLE_ADMIN).await?;
    clm.assign_role(&system, admin.id, admin_role.id).await?;
    println!(
        "user          {} <{}> with role {}",
        admin.username, admin.email, admin_role.role_code
    );

    let custom = clm
        .create_role(
            &system,
            NewRole {
                role_code: format!("CERT_REQUESTER_{suffix}"),
                role_name: "Certificate requester".into(),
                description: Some("May request and read certificates".into()),
                permissions: Permissions::from_pairs(&[
                    ("certificates", &["read"]),
                    ("requests", &["create", "read"]),
                ]),
                organization_id: Some(org.id),
            },
        )
        .await?;
    println!(
        "role          {} {:?}",
        custom.role_code, custom.permissions.0
    );

    let login = clm
        .authenticate(&admin.username, password, None, LoginContext::default())
        .await?;
    let actor = clm.validate_session(login.token.expose()).await?;
    println!(
        "logged in     session {} (expires {})",
        login.session.session_id, login.session.expires_at
    );

    let policy = clm
        .create_policy(
            &actor,
            NewPolicy {
                policy_code: format!("TLS-{suffix}"),
                name: "Internal TLS".into(),
                description: Some("Server certificates for internal services".into()),
                rules: PolicyRules {
                    max_validity_days: 90,
                    allowed_domains: vec!["acme.example".into()],
                    allow_subdomains: true,
                    ..PolicyRules::default()
                },
                organization_id: Some(org.id),
                ..NewPolicy::default()
            },
        )
        .await?;
    println!(
        "policy        {} v{} {}",
        policy.policy_code,
        policy.version,
        serde_json::to_string(&policy.policy_rules.0)?
    );

    let api_key = clm
        .create_api_key(
            &actor,
            NewApiKey {
                name: "deploy pipeline".into(),
                organization_id: Some(org.id),
                ..NewApiKey::default()
            },
        )
        .await?;
    let key_actor = clm.authenticate_api_key(api_key.key.expose()).await?;
    println!(
        "api key       {} (shown once: {}...), authenticates as user {:?}",
        api_key.api_key.key_id,
        &api_key.key.expose()[..8],
        key_actor.user_id()
    );

    // A request that needs approval: a CA and a policy requiring approval
    // in the organization, an approver, a request that waits, an approval.
    let ca = clm
        .create_root_ca(
            &actor,
            NewCertificateAuthority {
                subject: DistinguishedName::common_name(format!("Acme Root CA {suffix}")),
                key_algorithm: KeyAlgorithm::EcdsaP256,
                validity_days: Some(3650),
                organization_id: Some(org.id),
                ..Default::default()
            },
        )
        .await?;
    let gated = clm
        .create_policy(
            &actor,
            NewPolicy {
                policy_code: format!("TLS-APPROVED-{suffix}"),
                name: "Internal TLS, approved".into(),
                rules: PolicyRules {
                    require_approval: true,
                    ..policy.policy_rules.0.clone()
                },
                organization_id: Some(org.id),
                ..NewPolicy::default()
            },
        )
        .await?;
    let approver = clm
        .create_user(
            &system,
            NewUser {
                username: format!("approver-{suffix}"),
                email: format!("approver-{suffix}@acme.example"),
                display_name: Some("Acme Approver".into()),
                password: None,
                organization_id: Some(org.id),
            },
        )
        .await?;
    let approver_role = clm.get_role_by_code(&system, ROLE_APPROVER).await?;
    clm.assign_role(&system, approver.id, approver_role.id)
        .await?;
    let outcome = clm
        .issue_certificate(
            &actor,
            IssueRequest {
                issuer_id: ca.certificate.id,
                policy_id: Some(gated.id),
                subject: DistinguishedName::common_name("api.acme.example"),
                sans: vec![SubjectAlternativeName::Dns("api.acme.example".into())],
                kind: CertificateKind::TlsServer,
                validity_days: 90,
                key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                owner_user_id: None,
                organization_id: Some(org.id),
            },
        )
        .await?;
    let IssuanceOutcome::Pending { request } = outcome else {
        return Err(clm::Error::Internal("the policy requires approval".into()));
    };
    let instance_id = request
        .workflow_instance_id
        .ok_or_else(|| clm::Error::Internal("request not routed".into()))?;
    println!(
        "request       {} is {} (workflow instance {instance_id})",
        request.request_id, request.status
    );
    let approver_actor = clm.actor_for_user(approver.id).await?;
    let waiting = clm.pending_approvals(&approver_actor).await?;
    println!(
        "approver      {} sees {} pending approval(s)",
        approver.username,
        waiting.len()
    );
    let done = clm
        .decide_approval(&approver_actor, instance_id, true, Some("ok".into()))
        .await?;
    println!(
        "approved      workflow {}, certificate {:?}",
        done.instance.status, done.instance.certificate_id
    );

    let users = clm
        .list_users(&actor, &Default::default(), &PageRequest::first(10))
        .await?;
    println!("users in reach: {}", users.items.len());
    let chain = clm
        .verify_audit_chain(&actor, clm::query::AuditLogKind::Core)
        .await?;
    println!(
        "audit chain   {} rows, intact: {}",
        chain.rows_checked,
        chain.is_intact()
    );
    clm.close().await;
    Ok(())
}
