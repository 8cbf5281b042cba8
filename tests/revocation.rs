//! Revocation and CRLs on both backends: every reason class, holds and their
//! release, conflicts, tenancy, CRL numbering (also concurrent), entries and
//! reasons checked with `openssl crl`, and the secure audit trail.

mod common;

use std::process::Command;

use chrono::{Duration, Utc};
use clm::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, ParsedCertificate,
    SecretString, build_certificate, parse_certificate_der,
};
use clm::model::{
    Certificate, CertificateKind, CertificateStatus, OrganizationId, Permissions, RevocationReason,
    SubjectAlternativeName, UserId,
};
use clm::service::access::NewOrganization;
use clm::service::inventory::ImportRequest;
use clm::store::PageRequest;
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::{Actor, Clm, ErrorCode, SecuritySettings};
use common::{on_both_keyed, unique};

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

struct Ca {
    key: KeyPair,
    cert: ParsedCertificate,
}

fn root(cn: &str) -> Ca {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let t = CertificateTemplate::new(
        DistinguishedName::common_name(cn),
        CertificateKind::RootCa,
        now - Duration::days(1),
        now + Duration::days(3650),
    );
    let der = build_certificate(&t, &key.public_key_der(), Issuer::SelfSigned(&key)).expect("root");
    Ca {
        cert: parse_certificate_der(&der).expect("parse"),
        key,
    }
}

fn leaf(ca: &Ca, cn: &str) -> ParsedCertificate {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let mut t = CertificateTemplate::new(
        DistinguishedName::common_name(cn),
        CertificateKind::TlsServer,
        now - Duration::hours(1),
        now + Duration::days(90),
    );
    t.subject_alternative_names = vec![SubjectAlternativeName::Dns(cn.into())];
    let der = build_certificate(
        &t,
        &key.public_key_der(),
        Issuer::Ca {
            certificate: &ca.cert,
            key: &ca.key,
        },
    )
    .expect("leaf");
    parse_certificate_der(&der).expect("parse")
}

/// Imports the CA with its key (a usable CRL issuer) into `org`.
async fn import_ca(clm: &Clm, ca: &Ca, org: Option<OrganizationId>) -> Certificate {
    clm.import_certificates(
        &clm.system_actor(),
        ImportRequest {
            data: ca.cert.pem.clone().into_bytes(),
            private_key_pem: Some(SecretString::new(
                ca.key.to_pkcs8_pem().expose().to_string(),
            )),
            organization_id: org,
            ..Default::default()
        },
    )
    .await
    .expect("import CA")
    .imported
    .remove(0)
}

async fn import_leaves(
    clm: &Clm,
    ca: &Ca,
    n: usize,
    org: Option<OrganizationId>,
) -> Vec<Certificate> {
    let data: String = (0..n)
        .map(|i| leaf(ca, &format!("leaf{i}.{}", unique("crl"))).pem)
        .collect();
    let mut imported = clm
        .import_certificates(
            &clm.system_actor(),
            ImportRequest {
                data: data.into_bytes(),
                organization_id: org,
                ..Default::default()
            },
        )
        .await
        .expect("import leaves")
        .imported;
    imported.sort_by_key(|c| c.certificate_id.clone());
    imported
}

fn assert_code<T: std::fmt::Debug>(result: clm::Result<T>, code: ErrorCode) -> clm::Error {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(err) => {
            assert_eq!(err.code(), code, "unexpected error: {err}");
            err
        }
    }
}

async fn secure_events(clm: &Clm, event_type: &str) -> Vec<clm::model::AuditEvent> {
    clm.list_audit_events(
        &clm.system_actor(),
        AuditLogKind::Secure,
        &AuditFilter {
            event_type: Some(event_type.into()),
            ..Default::default()
        },
        &PageRequest::first(1000),
    )
    .await
    .expect("audit events")
    .items
}

async fn new_org(clm: &Clm) -> OrganizationId {
    clm.create_organization(
        &clm.system_actor(),
        NewOrganization {
            org_code: unique("org"),
            name: "Revocation org".into(),
            ..Default::default()
        },
    )
    .await
    .expect("organization")
    .id
}

fn member(org: OrganizationId, permissions: &[(&str, &[&str])]) -> Actor {
    Actor::with_permissions(
        UserId::new(),
        Permissions::from_pairs(permissions),
        vec![org],
    )
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `openssl crl -verify` against the CA, then the CRL as text.
fn openssl_check(crl_pem: &str, ca_pem: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let crl = dir.path().join("crl.pem");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&crl, crl_pem).expect("write crl");
    std::fs::write(&ca, ca_pem).expect("write ca");
    let (crl, ca) = (crl.to_str().expect("path"), ca.to_str().expect("path"));
    let (ok, out) = openssl(&["crl", "-in", crl, "-CAfile", ca, "-verify", "-noout"]);
    assert!(
        ok && out.contains("verify OK"),
        "openssl crl -verify: {out}"
    );
    let (ok, text) = openssl(&["crl", "-in", crl, "-text", "-noout"]);
    assert!(ok, "openssl crl -text: {text}");
    text
}

/// Serial as `openssl crl -text` prints it.
fn openssl_serial(certificate: &Certificate) -> String {
    certificate.serial_number.to_uppercase()
}

#[tokio::test]
async fn revoke_hold_release_and_conflicts() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let ca = root("Revocation Root");
        let ca_row = import_ca(&clm, &ca, None).await;
        let leaves = import_leaves(&clm, &ca, 5, None).await;
        let revoker = Actor::with_permissions(
            UserId::new(),
            Permissions::from_pairs(&[("certificates", &["read", "revoke"])]),
            Vec::new(),
        );
        // A shared certificate (no organization) is changed by global administrators only.
        assert_code(
            clm.revoke_certificate(
                &revoker,
                leaves[0].id,
                RevocationReason::KeyCompromise,
                None,
            )
            .await,
            ErrorCode::NotFound,
        );

        let reasons = [
            RevocationReason::Unspecified,
            RevocationReason::KeyCompromise,
            RevocationReason::Superseded,
            RevocationReason::CessationOfOperation,
        ];
        for (certificate, reason) in leaves.iter().zip(reasons) {
            let revocation = clm
                .revoke_certificate(
                    &system,
                    certificate.id,
                    reason,
                    Some(format!("because {reason}")),
                )
                .await
                .expect("revoke");
            assert_eq!(revocation.revocation_reason, reason);
            assert_eq!(revocation.certificate_id, certificate.id);
            assert_eq!(revocation.issuer_certificate_id, Some(ca_row.id));
            assert_eq!(revocation.serial_number, certificate.serial_number);
            assert_eq!(
                revocation.comment.as_deref(),
                Some(format!("because {reason}").as_str())
            );
            let row = clm
                .get_certificate(&system, certificate.id)
                .await
                .expect("get");
            assert_eq!(row.status, CertificateStatus::Revoked);
            // Twice is a conflict, whatever the reason.
            assert_code(
                clm.revoke_certificate(
                    &system,
                    certificate.id,
                    RevocationReason::CertificateHold,
                    None,
                )
                .await,
                ErrorCode::Conflict,
            );
            // A final revocation is not released.
            let err = assert_code(
                clm.release_certificate_hold(&system, certificate.id).await,
                ErrorCode::Conflict,
            );
            assert!(err.to_string().contains("final"), "{err}");
        }

        // remove_from_crl is not a reason to revoke for.
        let held = &leaves[4];
        assert_code(
            clm.revoke_certificate(&system, held.id, RevocationReason::RemoveFromCrl, None)
                .await,
            ErrorCode::InvalidInput,
        );
        assert_code(
            clm.release_certificate_hold(&system, held.id).await,
            ErrorCode::Conflict,
        );

        // Hold: suspended; release: active again; twice: nothing to release.
        let hold = clm
            .revoke_certificate(&system, held.id, RevocationReason::CertificateHold, None)
            .await
            .expect("hold");
        assert_eq!(
            clm.get_certificate(&system, held.id)
                .await
                .expect("get")
                .status,
            CertificateStatus::Suspended
        );
        let released = clm
            .release_certificate_hold(&system, held.id)
            .await
            .expect("release");
        assert_eq!(released.status, CertificateStatus::Active);
        assert_code(
            clm.release_certificate_hold(&system, held.id).await,
            ErrorCode::Conflict,
        );
        // After a release it can be revoked again, and the old hold is kept.
        clm.revoke_certificate(&system, held.id, RevocationReason::AffiliationChanged, None)
            .await
            .expect("revoke after release");
        let history = {
            let mut conn = clm.databases().secure.acquire().await.expect("acquire");
            clm::store::certificate_revocations::list_certificate_revocations(
                &mut conn.conn(),
                &clm::store::certificate_revocations::CertificateRevocationFilter {
                    certificate_id: Some(held.id),
                    ..Default::default()
                },
                &PageRequest::first(10),
            )
            .await
            .expect("history")
            .items
        };
        assert_eq!(history.len(), 2);
        let old = history.iter().find(|r| r.id == hold.id).expect("hold kept");
        assert!(old.released_at.is_some());

        // Who: a user actor is recorded.
        let org = new_org(&clm).await;
        let user = member(org, &[("certificates", &["read", "revoke", "import"])]);
        let own = import_leaves(&clm, &ca, 1, Some(org)).await.remove(0);
        let by_user = clm
            .revoke_certificate(&user, own.id, RevocationReason::PrivilegeWithdrawn, None)
            .await
            .expect("user revokes");
        assert_eq!(by_user.revoked_by_user_id, user.user_id());

        // Revoking the CA itself works too, and a revoked CA no longer signs CRLs.
        clm.revoke_certificate(&system, ca_row.id, RevocationReason::CaCompromise, None)
            .await
            .expect("revoke CA");
        assert_code(
            clm.generate_crl(&system, ca_row.id, None).await,
            ErrorCode::Conflict,
        );

        let audits = secure_events(&clm, "certificate.revoked").await;
        assert_eq!(audits.len(), 8);
        assert_eq!(
            secure_events(&clm, "certificate.hold_released").await.len(),
            1
        );
    })
    .await;
}

/// The CA's latest complete CRL, as served.
async fn latest(
    clm: &Clm,
    actor: &Actor,
    ca: clm::model::CertificateId,
) -> clm::service::revocation::GeneratedCrl {
    clm.latest_crl(actor, ca, None, false)
        .await
        .expect("latest CRL")
}

#[tokio::test]
async fn crls_number_up_list_reasons_and_verify_with_openssl() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let ca = root("CRL Root");
        let ca_row = import_ca(&clm, &ca, None).await;
        let leaves = import_leaves(&clm, &ca, 4, None).await;

        // Nothing revoked yet: CRL 1 is empty and valid.
        let first = clm
            .generate_crl(&system, ca_row.id, None)
            .await
            .expect("crl 1");
        assert_eq!(first.crl_number, 1);
        assert_eq!(first.entry_count, 0);
        assert_eq!(first.next_update - first.this_update, Duration::hours(24));
        let text = openssl_check(&latest(&clm, &system, ca_row.id).await.pem, &ca.cert.pem);
        assert!(text.contains("No Revoked Certificates"), "{text}");

        clm.revoke_certificate(&system, leaves[0].id, RevocationReason::KeyCompromise, None)
            .await
            .expect("revoke");
        clm.revoke_certificate(
            &system,
            leaves[1].id,
            RevocationReason::CertificateHold,
            None,
        )
        .await
        .expect("hold");
        clm.revoke_certificate(&system, leaves[2].id, RevocationReason::Unspecified, None)
            .await
            .expect("revoke");

        let second = clm
            .generate_crl(&system, ca_row.id, Some(168))
            .await
            .expect("crl 2");
        assert_eq!(second.crl_number, 2);
        assert_eq!(
            second.next_update - second.this_update,
            Duration::hours(168)
        );
        assert_eq!(second.entry_count, 3);
        // What generation reports is what is stored and served.
        let served = latest(&clm, &system, ca_row.id).await;
        assert_eq!(served.crl_number, second.crl_number);
        assert_eq!(served.entry_count, second.entry_count);
        assert_eq!(served.der.len() as i64, second.size_bytes);
        assert_eq!(
            served.pem,
            clm::crypto::der_to_pem(clm::crypto::PemLabel::X509Crl, &served.der)
        );
        let text = openssl_check(&served.pem, &ca.cert.pem);
        assert!(
            text.contains("X509v3 CRL Number") && text.contains("2"),
            "{text}"
        );
        for revoked in &leaves[..3] {
            assert!(
                text.contains(&openssl_serial(revoked)),
                "{} missing:\n{text}",
                revoked.serial_number
            );
        }
        assert!(!text.contains(&openssl_serial(&leaves[3])));
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Certificate Hold"), "{text}");

        // Released holds drop off the next CRL; numbers keep increasing.
        clm.release_certificate_hold(&system, leaves[1].id)
            .await
            .expect("release");
        let third = clm
            .generate_crl(&system, ca_row.id, None)
            .await
            .expect("crl 3");
        assert_eq!(third.crl_number, 3);
        assert_eq!(third.entry_count, 2);
        let text = openssl_check(&latest(&clm, &system, ca_row.id).await.pem, &ca.cert.pem);
        assert!(!text.contains(&openssl_serial(&leaves[1])), "{text}");
        assert!(!text.contains("Certificate Hold"), "{text}");

        // Every CRL signing is in the secure audit log.
        let signed = secure_events(&clm, "crl.generated").await;
        assert_eq!(signed.len(), 3);
        assert!(
            signed
                .iter()
                .all(|e| e.resource_id.map(|r| r.0) == Some(ca_row.id.as_uuid()))
        );

        // Bad requests.
        assert_code(
            clm.generate_crl(&system, leaves[3].id, None).await,
            ErrorCode::InvalidInput,
        );
        assert_code(
            clm.generate_crl(&system, ca_row.id, Some(0)).await,
            ErrorCode::InvalidInput,
        );
        let keyless = root("Keyless Root");
        let keyless_row = clm
            .import_certificates(
                &system,
                ImportRequest {
                    data: keyless.cert.pem.clone().into_bytes(),
                    ..Default::default()
                },
            )
            .await
            .expect("import")
            .imported
            .remove(0);
        let err = assert_code(
            clm.generate_crl(&system, keyless_row.id, None).await,
            ErrorCode::InvalidInput,
        );
        assert!(err.to_string().contains("no private key"), "{err}");

        // Concurrent CRLs still get distinct, increasing numbers.
        let calls = (0..5).map(|_| {
            let clm = clm.clone();
            let id = ca_row.id;
            tokio::spawn(async move { clm.generate_crl(&clm.system_actor(), id, None).await })
        });
        let mut numbers: Vec<i64> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|joined| joined.expect("join").expect("crl").crl_number)
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, vec![4, 5, 6, 7, 8]);
    })
    .await;
}

#[tokio::test]
async fn other_organizations_cannot_revoke_or_sign() {
    on_both_keyed(security(), |clm| async move {
        let (org_a, org_b) = (new_org(&clm).await, new_org(&clm).await);
        let perms: &[(&str, &[&str])] = &[
            ("certificates", &["read", "revoke"]),
            ("authorities", &["read", "sign_crl"]),
        ];
        let alice = member(org_a, perms);
        let bob = member(org_b, perms);
        let ca = root("Tenant CA");
        let ca_row = import_ca(&clm, &ca, Some(org_a)).await;
        let leaf_a = import_leaves(&clm, &ca, 1, Some(org_a)).await.remove(0);

        assert_code(
            clm.revoke_certificate(&bob, leaf_a.id, RevocationReason::KeyCompromise, None)
                .await,
            ErrorCode::NotFound,
        );
        assert_code(
            clm.release_certificate_hold(&bob, leaf_a.id).await,
            ErrorCode::NotFound,
        );
        assert_code(
            clm.generate_crl(&bob, ca_row.id, None).await,
            ErrorCode::NotFound,
        );
        // Without the permission it is a denial, not a lookup.
        let reader = member(org_a, &[("certificates", &["read"])]);
        assert_code(
            clm.revoke_certificate(&reader, leaf_a.id, RevocationReason::KeyCompromise, None)
                .await,
            ErrorCode::PermissionDenied,
        );
        assert_code(
            clm.generate_crl(&reader, ca_row.id, None).await,
            ErrorCode::PermissionDenied,
        );

        clm.revoke_certificate(&alice, leaf_a.id, RevocationReason::KeyCompromise, None)
            .await
            .expect("alice revokes");
        let crl = clm
            .generate_crl(&alice, ca_row.id, None)
            .await
            .expect("alice signs");
        assert_eq!(crl.crl_number, 1);
        assert_eq!(crl.entry_count, 1);
        openssl_check(&latest(&clm, &alice, ca_row.id).await.pem, &ca.cert.pem);
    })
    .await;
}

/// Two callers generate CRLs while four revoke (nothing is released): sorted
/// by CRL number, thisUpdate never goes back and no CRL lists fewer entries
/// than a lower-numbered one.
#[tokio::test]
async fn crl_numbers_times_and_entries_move_together_under_concurrency() {
    on_both_keyed(security(), |clm| async move {
        let ca = root("Concurrent CRL Root");
        let ca_row = import_ca(&clm, &ca, None).await;
        let leaves = import_leaves(&clm, &ca, 24, None).await;
        let revokers = leaves.chunks(6).map(|chunk| {
            let clm = clm.clone();
            let ids: Vec<_> = chunk.iter().map(|leaf| leaf.id).collect();
            tokio::spawn(async move {
                for id in ids {
                    clm.revoke_certificate(
                        &clm.system_actor(),
                        id,
                        RevocationReason::Superseded,
                        None,
                    )
                    .await
                    .expect("revoke");
                }
            })
        });
        let generators = (0..2).map(|_| {
            let clm = clm.clone();
            let id = ca_row.id;
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..12 {
                    let crl = clm
                        .generate_crl(&clm.system_actor(), id, None)
                        .await
                        .expect("crl");
                    seen.push((crl.crl_number, crl.this_update, crl.entry_count));
                }
                seen
            })
        });
        let generated = futures::future::join_all(generators);
        let revoked = futures::future::join_all(revokers);
        let (generated, revoked) = futures::join!(generated, revoked);
        for joined in revoked {
            joined.expect("revoker");
        }
        let mut crls: Vec<_> = generated
            .into_iter()
            .flat_map(|joined| joined.expect("generator"))
            .collect();
        crls.sort_by_key(|(number, _, _)| *number);
        assert_eq!(
            crls.iter()
                .map(|(number, _, _)| *number)
                .collect::<Vec<_>>(),
            (1..=24).collect::<Vec<_>>(),
            "24 distinct numbers from 1"
        );
        for pair in crls.windows(2) {
            let ((lower, lower_time, lower_entries), (higher, higher_time, higher_entries)) =
                (pair[0], pair[1]);
            assert!(
                higher_time >= lower_time,
                "CRL {higher} has thisUpdate {higher_time}, before CRL {lower}'s {lower_time}"
            );
            assert!(
                higher_entries >= lower_entries,
                "CRL {higher} lists {higher_entries} entries, CRL {lower} {lower_entries}"
            );
        }
        let last = clm
            .generate_crl(&clm.system_actor(), ca_row.id, None)
            .await
            .expect("last crl");
        assert_eq!(
            last.entry_count as usize, 24,
            "every revocation is listed at the end"
        );
    })
    .await;
}
