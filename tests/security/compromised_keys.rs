//! Attacks: compromised_keys (see main.rs). Finding 8: a revoked
//! certificate must not renew, and a public key revoked for key_compromise
//! (or a CA's key revoked for ca_compromise) must never be certified again:
//! not by renewal, key reuse, CSR signing, nor an import that carries the
//! private key.

use chrono::{Duration, Utc};
use clm::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, PemLabel,
    build_certificate, der_to_pem,
};
use clm::model::{Certificate, CertificateKind, RevocationReason, SubjectAlternativeName};
use clm::service::inventory::ImportRequest;
use clm::service::issuance::RenewOptions;
use clm::{Clm, ErrorCode};

use crate::common::on_both_keyed;
use crate::names::{
    Tenant, certificate_count, csr_request, example_rules, issued, request, security, tenant,
};

fn server(name: &str) -> (DistinguishedName, Vec<SubjectAlternativeName>) {
    (
        DistinguishedName::common_name(name),
        vec![SubjectAlternativeName::Dns(name.into())],
    )
}

async fn issue(clm: &Clm, t: &Tenant, name: &str) -> Certificate {
    let (subject, sans) = server(name);
    issued(
        clm.issue_certificate(&clm.system_actor(), request(t, subject, sans))
            .await
            .expect("issue"),
    )
}

async fn issue_from_key(
    clm: &Clm,
    t: &Tenant,
    name: &str,
    key: &KeyPair,
) -> clm::Result<Certificate> {
    let (subject, sans) = server(name);
    let template = request(t, subject, sans);
    clm.issue_certificate(&clm.system_actor(), csr_request(t, key, &template))
        .await
        .map(issued)
}

async fn revoke(clm: &Clm, certificate: &Certificate, reason: RevocationReason) {
    clm.revoke_certificate(&clm.system_actor(), certificate.id, reason, None)
        .await
        .expect("revoke");
}

/// A self-signed certificate for `key`: a certificate clm has never seen.
fn self_signed(key: &KeyPair, name: &str) -> String {
    let now = Utc::now();
    let template = CertificateTemplate::new(
        DistinguishedName::common_name(name),
        CertificateKind::TlsServer,
        now - Duration::minutes(1),
        now + Duration::days(30),
    );
    let der = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(key))
        .expect("self-signed");
    der_to_pem(PemLabel::Certificate, &der)
}

#[tokio::test]
async fn compromised_keys_revoked_certificate_is_not_renewed() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        let system = clm.system_actor();
        let reuse = RenewOptions {
            reuse_key: true,
            ..Default::default()
        };
        // The finding: key_compromise, then renewal with the same key.
        let compromised = issue(&clm, &t, "a.example.com").await;
        revoke(&clm, &compromised, RevocationReason::KeyCompromise).await;
        let before = certificate_count(&clm).await;
        for options in [reuse, RenewOptions::default()] {
            let err = clm
                .renew_certificate(&system, compromised.id, options)
                .await
                .expect_err("a certificate revoked for key_compromise must not renew");
            assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
            assert!(err.to_string().contains("revoked"), "{err}");
        }
        assert_eq!(
            certificate_count(&clm).await,
            before,
            "a refusal wrote a certificate"
        );
        // Any other reason: revoked is revoked.
        let superseded = issue(&clm, &t, "b.example.com").await;
        revoke(&clm, &superseded, RevocationReason::Superseded).await;
        let err = clm
            .renew_certificate(&system, superseded.id, RenewOptions::default())
            .await
            .expect_err("a revoked certificate must not renew");
        assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
        // On hold: refused while the hold stands, renewable once released.
        let held = issue(&clm, &t, "c.example.com").await;
        revoke(&clm, &held, RevocationReason::CertificateHold).await;
        let before = certificate_count(&clm).await;
        let err = clm
            .renew_certificate(&system, held.id, reuse)
            .await
            .expect_err("a certificate on hold must not renew");
        assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
        assert!(err.to_string().contains("certificate_hold"), "{err}");
        assert_eq!(
            certificate_count(&clm).await,
            before,
            "a refusal wrote a certificate"
        );
        clm.release_certificate_hold(&system, held.id)
            .await
            .expect("release");
        let renewed = issued(
            clm.renew_certificate(&system, held.id, reuse)
                .await
                .expect("renewal after release"),
        );
        assert_eq!(renewed.replaces_certificate_id, Some(held.id));
    })
    .await;
}

#[tokio::test]
async fn compromised_keys_key_stays_dead_for_other_certificates_and_csrs() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        let system = clm.system_actor();
        // Two certificates share one key: the first, and its renewal with
        // the same key. Revoking the first for key_compromise kills the key
        // for the second too, though the second itself is not revoked.
        let first = issue(&clm, &t, "shared.example.com").await;
        let second = issued(
            clm.renew_certificate(
                &system,
                first.id,
                RenewOptions {
                    reuse_key: true,
                    ..Default::default()
                },
            )
            .await
            .expect("renew with the same key"),
        );
        revoke(&clm, &first, RevocationReason::KeyCompromise).await;
        let before = certificate_count(&clm).await;
        let err = clm
            .renew_certificate(
                &system,
                second.id,
                RenewOptions {
                    reuse_key: true,
                    ..Default::default()
                },
            )
            .await
            .expect_err("the compromised key must not be reused");
        assert_eq!(err.code(), ErrorCode::PolicyViolation, "{err}");
        assert!(err.to_string().contains("key_compromise"), "{err}");
        // A fresh key is fine: the certificate itself is not revoked.
        clm.renew_certificate(&system, second.id, RenewOptions::default())
            .await
            .expect("renewal with a new key");

        // A CSR for a key revoked for key_compromise: refused by issuance and dry run.
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let from_csr = issue_from_key(&clm, &t, "csr.example.com", &key)
            .await
            .expect("issue from CSR");
        revoke(&clm, &from_csr, RevocationReason::KeyCompromise).await;
        let before_csr = certificate_count(&clm).await;
        let err = issue_from_key(&clm, &t, "other.example.com", &key)
            .await
            .expect_err("a CSR for a compromised key must be refused");
        assert_eq!(err.code(), ErrorCode::PolicyViolation, "{err}");
        assert!(err.to_string().contains("key_compromise"), "{err}");
        let (subject, sans) = server("other.example.com");
        let err = clm
            .dry_run_issuance(&system, csr_request(&t, &key, &request(&t, subject, sans)))
            .await
            .map(|report| report.allowed)
            .expect_err("the dry run refuses a compromised key too");
        assert_eq!(err.code(), ErrorCode::PolicyViolation, "{err}");
        assert_eq!(certificate_count(&clm).await, before_csr);
        assert!(before_csr > before);

        // Other reasons do not blocklist the key.
        let fine = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let c = issue_from_key(&clm, &t, "fine.example.com", &fine)
            .await
            .expect("issue");
        revoke(&clm, &c, RevocationReason::Superseded).await;
        issue_from_key(&clm, &t, "fine2.example.com", &fine)
            .await
            .expect("superseded does not compromise the key");
    })
    .await;
}

#[tokio::test]
async fn compromised_keys_ca_compromise_kills_the_ca_key() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        let other = tenant(&clm, example_rules()).await;
        let system = clm.system_actor();
        let ca_key = clm
            .export_private_key(&system, t.ca)
            .await
            .expect("export CA key");
        let ca_key = KeyPair::from_pem(ca_key.expose()).expect("CA key");
        let ca = clm.get_certificate(&system, t.ca).await.expect("CA");
        revoke(&clm, &ca, RevocationReason::CaCompromise).await;
        let err = issue_from_key(&clm, &other, "ca-key.example.com", &ca_key)
            .await
            .expect_err("the compromised CA key must not be certified again");
        assert_eq!(err.code(), ErrorCode::PolicyViolation, "{err}");
        assert!(err.to_string().contains("ca_compromise"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn compromised_keys_import_with_key_is_refused_and_without_key_flagged() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        let system = clm.system_actor();
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let leaf = issue_from_key(&clm, &t, "imp.example.com", &key)
            .await
            .expect("issue");
        revoke(&clm, &leaf, RevocationReason::KeyCompromise).await;
        let before = certificate_count(&clm).await;

        // A new certificate for the compromised key, with the key: refused.
        let pem = self_signed(&key, "imp.example.com");
        let err = clm
            .import_certificates(
                &system,
                ImportRequest {
                    data: pem.clone().into_bytes(),
                    private_key_pem: Some(key.to_pkcs8_pem()),
                    organization_id: Some(t.org),
                    owner_user_id: None,
                },
            )
            .await
            .expect_err("importing a compromised private key must be refused");
        assert_eq!(err.code(), ErrorCode::PolicyViolation, "{err}");
        assert!(err.to_string().contains("key_compromise"), "{err}");
        assert_eq!(certificate_count(&clm).await, before);

        // Attaching the key to the stored, revoked certificate: refused too.
        let err = clm
            .import_certificates(
                &system,
                ImportRequest {
                    data: leaf.certificate_pem.clone().into_bytes(),
                    private_key_pem: Some(key.to_pkcs8_pem()),
                    organization_id: Some(t.org),
                    owner_user_id: None,
                },
            )
            .await
            .expect_err("attaching a compromised private key must be refused");
        assert_eq!(err.code(), ErrorCode::PolicyViolation, "{err}");

        // The certificate alone is inventory: kept, and flagged.
        let report = clm
            .import_certificates(
                &system,
                ImportRequest {
                    data: pem.into_bytes(),
                    private_key_pem: None,
                    organization_id: Some(t.org),
                    owner_user_id: None,
                },
            )
            .await
            .expect("a certificate without its key is kept as inventory");
        let [imported] = report.imported.as_slice() else {
            panic!("one certificate imported: {report:?}");
        };
        assert!(
            imported
                .import_flags
                .0
                .iter()
                .any(|f| f == "key_compromised"),
            "{:?}",
            imported.import_flags.0
        );
        assert!(
            report
                .flagged
                .iter()
                .any(|(id, flags)| *id == imported.id
                    && flags.iter().any(|f| f == "key_compromised")),
            "{:?}",
            report.flagged
        );
    })
    .await;
}
