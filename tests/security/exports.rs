//! Attacks on exports (issue 14): the tenant next door, a narrower API key,
//! a user without `certificates:export`, a CA's key through PKCS #12, and a
//! revoked session. Each refusal is audited as a denial and no export is
//! audited as done.

use clm::crypto::{DistinguishedName, KeyAlgorithm, SecretString};
use clm::model::{AuditOutcome, Certificate, CertificateKind, Permissions, SubjectAlternativeName};
use clm::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use clm::service::exports::{CertificateFormat, Pkcs12Options, PrivateKeyExportOptions};
use clm::service::identity::{LoginContext, NewApiKey};
use clm::service::issuance::{IssueRequest, KeySource};
use clm::store::audit::AuditLogKind;
use clm::{Actor, Clm, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, unique};
use crate::members::member;

const PASSWORD: &str = "Correct horse battery 9";

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 2,
        ..SecuritySettings::default()
    }
}

fn fast() -> Pkcs12Options {
    Pkcs12Options {
        iterations: Some(10_000),
        ..Default::default()
    }
}

fn encrypted() -> PrivateKeyExportOptions {
    PrivateKeyExportOptions {
        password: Some(SecretString::from(PASSWORD)),
        iterations: Some(10_000),
        ..Default::default()
    }
}

const EXPORTER: &[(&str, &[&str])] = &[
    ("certificates", &["create", "read", "export"]),
    ("authorities", &["create", "read"]),
    ("api_keys", &["create"]),
];

async fn root(clm: &Clm, org: clm::model::OrganizationId) -> CertificateAuthority {
    clm.create_root_ca(
        &clm.system_actor(),
        NewCertificateAuthority {
            subject: DistinguishedName::common_name(unique("Export Attack Root")),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            validity_days: Some(3650),
            organization_id: Some(org),
            ..Default::default()
        },
    )
    .await
    .expect("root")
}

async fn leaf(
    clm: &Clm,
    ca: &CertificateAuthority,
    org: clm::model::OrganizationId,
) -> Certificate {
    clm.issue_certificate(
        &clm.system_actor(),
        IssueRequest {
            issuer_id: ca.certificate.id,
            policy_id: None,
            subject: DistinguishedName::common_name("app.example.com"),
            sans: vec![SubjectAlternativeName::Dns("app.example.com".into())],
            kind: CertificateKind::TlsServer,
            validity_days: 30,
            key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
            owner_user_id: None,
            organization_id: Some(org),
        },
    )
    .await
    .expect("issue")
    .into_certificate()
    .expect("issued")
}

fn refused<T: std::fmt::Debug>(result: clm::Result<T>, what: &str) {
    match result {
        Err(err)
            if matches!(
                err.code(),
                ErrorCode::PermissionDenied | ErrorCode::NotFound
            ) =>
        {
            assert!(
                !err.to_string().contains("PRIVATE KEY"),
                "{what}: the error holds key material"
            );
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

/// Every kind of key export `actor` might try on `id`.
async fn try_key_exports(clm: &Clm, actor: &Actor, id: clm::model::CertificateId, who: &str) {
    refused(
        clm.export_pkcs12(actor, id, SecretString::from(PASSWORD), fast())
            .await,
        &format!("{who}: PKCS #12"),
    );
    refused(
        clm.export_private_key_with(actor, id, encrypted()).await,
        &format!("{who}: encrypted PKCS #8"),
    );
    refused(
        clm.export_private_key(actor, id).await,
        &format!("{who}: plain PKCS #8"),
    );
}

async fn exports_done(clm: &Clm) -> usize {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    clm::store::audit::by_event_type(
        &mut conn.conn(),
        AuditLogKind::Secure,
        "private_key.exported",
    )
    .await
    .expect("audit")
    .len()
}

/// Refusals of `certificates:export` / `certificates:read` in the core audit trail.
async fn denials(clm: &Clm) -> usize {
    let mut conn = clm.databases().core.acquire().await.expect("conn");
    let mut total = 0;
    for event_type in ["certificates.export", "certificates.read"] {
        total += clm::store::audit::by_event_type(&mut conn.conn(), AuditLogKind::Core, event_type)
            .await
            .expect("audit")
            .iter()
            .filter(|event| event.outcome == AuditOutcome::Denied)
            .count();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_tenant_next_door_gets_nothing() {
    on_both_keyed(security(), |clm| async move {
        let a = member(&clm, "exp-a", EXPORTER).await;
        let b = member(&clm, "exp-b", EXPORTER).await;
        let ca_b = root(&clm, b.org).await;
        let leaf_b = leaf(&clm, &ca_b, b.org).await;
        let done = exports_done(&clm).await;
        let denied = denials(&clm).await;

        try_key_exports(&clm, &a.actor, leaf_b.id, "tenant next door").await;
        for format in [
            CertificateFormat::Pem,
            CertificateFormat::PemChain,
            CertificateFormat::Pkcs7Der,
        ] {
            let result = clm.export_certificate(&a.actor, leaf_b.id, format).await;
            // Out of reach looks exactly like missing.
            assert_eq!(result.expect_err("refused").code(), ErrorCode::NotFound);
        }
        assert_eq!(
            exports_done(&clm).await,
            done,
            "an export was audited as done"
        );
        assert!(
            denials(&clm).await > denied,
            "the refusals were not audited"
        );

        // B itself may.
        clm.export_pkcs12(&b.actor, leaf_b.id, SecretString::from(PASSWORD), fast())
            .await
            .expect("own export");
        assert_eq!(exports_done(&clm).await, done + 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_need_the_export_permission_and_a_ca_key_its_own() {
    on_both_keyed(security(), |clm| async move {
        let reader = member(&clm, "exp-reader", &[("certificates", &["read"])]).await;
        let ca = root(&clm, reader.org).await;
        let own = leaf(&clm, &ca, reader.org).await;
        let done = exports_done(&clm).await;
        try_key_exports(&clm, &reader.actor, own.id, "reader").await;
        // The certificate itself is public: reading it is enough.
        clm.export_certificate(&reader.actor, own.id, CertificateFormat::Pkcs7Pem)
            .await
            .expect("reader exports the certificate");

        // certificates:export does not reach a CA's key.
        let exporter = member(&clm, "exp-ca", EXPORTER).await;
        let their_ca = root(&clm, exporter.org).await;
        try_key_exports(&clm, &exporter.actor, their_ca.certificate.id, "CA key").await;
        assert_eq!(exports_done(&clm).await, done);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exports_narrower_api_key_and_revoked_session_are_refused() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let owner = member(&clm, "exp-key", EXPORTER).await;
        let ca = root(&clm, owner.org).await;
        let own = leaf(&clm, &ca, owner.org).await;
        let done = exports_done(&clm).await;

        // An API key scoped to reading: the user's export does not pass through it.
        let narrow = clm
            .create_api_key(
                &owner.actor,
                NewApiKey {
                    name: "read only".into(),
                    scopes: Some(Permissions::from_pairs(&[("certificates", &["read"])])),
                    expires_at: Some(chrono::Utc::now() + chrono::Duration::days(1)),
                    organization_id: Some(owner.org),
                },
            )
            .await
            .expect("narrow key");
        let key_actor = clm
            .authenticate_api_key(narrow.key.expose())
            .await
            .expect("key actor");
        try_key_exports(&clm, &key_actor, own.id, "read-only API key").await;
        clm.export_certificate(&key_actor, own.id, CertificateFormat::Der)
            .await
            .expect("the key may read the certificate");
        assert_eq!(exports_done(&clm).await, done);

        // A session works until it is revoked; then no actor comes from it.
        let password = SecretString::new(format!("Session-{}-pw-9", unique("x")));
        clm.set_password(&system, owner.user, password.clone())
            .await
            .expect("password");
        let user = clm.get_user(&system, owner.user).await.expect("user");
        let login = clm
            .authenticate(&user.username, password, None, LoginContext::default())
            .await
            .expect("login");
        let session = clm
            .validate_session(login.token.expose())
            .await
            .expect("session");
        clm.export_pkcs12(&session, own.id, SecretString::from(PASSWORD), fast())
            .await
            .expect("export in a live session");
        clm.revoke_user_sessions(&system, owner.user)
            .await
            .expect("revoke");
        let after = clm.validate_session(login.token.expose()).await;
        assert!(after.is_err(), "a revoked session still gives an actor");
        assert_eq!(exports_done(&clm).await, done + 1);
    })
    .await;
}
