//! Inventory on both backends: import (PEM, DER, bundles, keys, bad input,
//! odd certificates, bulk), issuer linking, reads, search, tenancy, soft
//! delete, chains and the status refresh.

mod common;

use std::process::Command;

use chrono::{Duration, Utc};
use clm::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, ParsedCertificate,
    SecretString, build_certificate, parse_certificate_der,
};
use clm::model::{
    CertificateId, CertificateKind, CertificateStatus, OrganizationId, Permissions, PolicyRules,
    PolicyStatus, RevocationReason, SubjectAlternativeName, Timestamp, UserId,
};
use clm::service::access::NewOrganization;
use clm::service::identity::NewUser;
use clm::service::inventory::{
    CertificateSearch, ImportOptions, ImportProgress, ImportReport, ImportRequest,
};
use clm::service::policies::NewPolicy;
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::store::certificates::Certificates;
use clm::store::{Filter, PageRequest};
use clm::{Actor, Clm, ErrorCode, SecuritySettings};
use common::{on_both_keyed, unique};

// ------------------------------------------------------------------ helpers

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

fn template(
    cn: &str,
    kind: CertificateKind,
    from: Timestamp,
    to: Timestamp,
) -> CertificateTemplate {
    CertificateTemplate::new(DistinguishedName::common_name(cn), kind, from, to)
}

fn root(cn: &str) -> Ca {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let t = template(
        cn,
        CertificateKind::RootCa,
        now - Duration::days(1),
        now + Duration::days(3650),
    );
    let der = build_certificate(&t, &key.public_key_der(), Issuer::SelfSigned(&key)).expect("root");
    Ca {
        cert: parse_certificate_der(&der).expect("parse root"),
        key,
    }
}

fn intermediate(parent: &Ca, cn: &str) -> Ca {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let t = template(
        cn,
        CertificateKind::IntermediateCa,
        now - Duration::days(1),
        now + Duration::days(1825),
    );
    let der =
        build_certificate(&t, &key.public_key_der(), ca_issuer(parent)).expect("intermediate");
    Ca {
        cert: parse_certificate_der(&der).expect("parse intermediate"),
        key,
    }
}

fn ca_issuer(ca: &Ca) -> Issuer<'_> {
    Issuer::Ca {
        certificate: &ca.cert,
        key: &ca.key,
    }
}

/// A TLS server leaf for `cn` (also its DNS SAN) valid `from..to`.
fn leaf_with(
    parent: &Ca,
    key: &KeyPair,
    cn: &str,
    from: Timestamp,
    to: Timestamp,
) -> ParsedCertificate {
    let mut t = template(cn, CertificateKind::TlsServer, from, to);
    t.subject_alternative_names = vec![SubjectAlternativeName::Dns(cn.to_string())];
    let der = build_certificate(&t, &key.public_key_der(), ca_issuer(parent)).expect("leaf");
    parse_certificate_der(&der).expect("parse leaf")
}

fn leaf(parent: &Ca, cn: &str) -> (ParsedCertificate, KeyPair) {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let cert = leaf_with(
        parent,
        &key,
        cn,
        now - Duration::hours(1),
        now + Duration::days(365),
    );
    (cert, key)
}

fn bundle(certs: &[&ParsedCertificate]) -> Vec<u8> {
    certs
        .iter()
        .map(|c| c.pem.as_str())
        .collect::<String>()
        .into_bytes()
}

fn request(data: Vec<u8>) -> ImportRequest {
    ImportRequest {
        data,
        ..Default::default()
    }
}

async fn import(clm: &Clm, data: Vec<u8>) -> ImportReport {
    clm.import_certificates(&clm.system_actor(), request(data))
        .await
        .expect("import")
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

async fn certificate_count(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("acquire");
    clm::store::count::<Certificates>(&mut conn.conn(), &Filter::new())
        .await
        .expect("count")
}

async fn private_key_count(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("acquire");
    clm::store::count::<clm::store::private_keys::PrivateKeys>(&mut conn.conn(), &Filter::new())
        .await
        .expect("count")
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
            name: "Test org".into(),
            ..Default::default()
        },
    )
    .await
    .expect("organization")
    .id
}

async fn new_user(clm: &Clm, org: Option<OrganizationId>) -> UserId {
    let name = unique("owner");
    clm.create_user(
        &clm.system_actor(),
        NewUser {
            username: name.clone(),
            email: format!("{name}@example.com"),
            display_name: None,
            password: None,
            organization_id: org,
        },
    )
    .await
    .expect("user")
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

/// A self-signed P-256 certificate made by the openssl command.
fn openssl_cert(dir: &std::path::Path, name: &str, extra: &[&str]) -> Vec<u8> {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=odd.example",
        "-days",
        "30",
        "-keyout",
        key.to_str().expect("path"),
        "-out",
        cert.to_str().expect("path"),
    ];
    args.extend_from_slice(extra);
    let (ok, output) = openssl(&args);
    assert!(ok, "openssl req failed: {output}");
    std::fs::read(cert).expect("read cert")
}

/// PKCS#8 PEM converted to the traditional form (PKCS#1 for RSA, SEC1 for EC).
fn traditional(pkcs8_pem: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("k8.pem");
    let output = dir.path().join("k.pem");
    std::fs::write(&input, pkcs8_pem).expect("write key");
    let (ok, out) = openssl(&[
        "pkey",
        "-in",
        input.to_str().expect("path"),
        "-traditional",
        "-out",
        output.to_str().expect("path"),
    ]);
    assert!(ok, "openssl pkey failed: {out}");
    std::fs::read_to_string(output).expect("read key")
}

// -------------------------------------------------------------------- import

#[tokio::test]
async fn import_pem_der_bundles_without_duplicates_and_links_issuers() {
    on_both_keyed(security(), |clm| async move {
        let root_ca = root("Inventory Root");
        let inter = intermediate(&root_ca, "Inventory Issuing CA");
        let (server, _) = leaf(&inter, "www.example.com");

        // PEM, then DER: the intermediate links to the stored root.
        let first = import(&clm, root_ca.cert.pem.clone().into_bytes()).await;
        assert_eq!(first.imported.len(), 1);
        let root_row = &first.imported[0];
        assert_eq!(root_row.certificate_kind, CertificateKind::RootCa);
        assert!(root_row.is_ca);
        assert_eq!(
            root_row.issuer_certificate_id, None,
            "a root has no issuer row"
        );
        assert_eq!(root_row.fingerprint_sha256, root_ca.cert.fingerprint_sha256);
        assert!(first.flagged.is_empty());

        let second = import(&clm, inter.cert.der.clone()).await;
        assert_eq!(second.imported.len(), 1);
        let inter_row = &second.imported[0];
        assert_eq!(inter_row.certificate_kind, CertificateKind::IntermediateCa);
        assert_eq!(inter_row.issuer_certificate_id, Some(root_row.id));

        // A bundle of 3 of which 2 are stored: one new row, linked.
        let third = import(&clm, bundle(&[&root_ca.cert, &inter.cert, &server])).await;
        assert_eq!(third.imported.len(), 1);
        assert_eq!(third.already_present, vec![root_row.id, inter_row.id]);
        let server_row = &third.imported[0];
        assert_eq!(server_row.issuer_certificate_id, Some(inter_row.id));
        assert_eq!(server_row.certificate_kind, CertificateKind::TlsServer);
        assert_eq!(server_row.common_name.as_deref(), Some("www.example.com"));
        assert_eq!(server_row.serial_number, server.serial_hex);
        assert_eq!(
            server_row.subject_alternative_names.0,
            vec![SubjectAlternativeName::Dns("www.example.com".into())]
        );
        assert_eq!(server_row.status, CertificateStatus::Active);

        // Twice: nothing new, nothing duplicated.
        let again = import(&clm, bundle(&[&root_ca.cert, &inter.cert, &server])).await;
        assert!(again.imported.is_empty());
        assert_eq!(again.already_present.len(), 3);
        assert_eq!(certificate_count(&clm).await, 3);

        // A new hierarchy, leaf first, with a repeat: links inside the bundle.
        let root2 = root("Second Root");
        let inter2 = intermediate(&root2, "Second Issuing CA");
        let (leaf2, _) = leaf(&inter2, "api.example.com");
        let report = import(&clm, bundle(&[&leaf2, &inter2.cert, &root2.cert, &leaf2])).await;
        assert_eq!(
            report.imported.len(),
            3,
            "the repeated leaf is imported once"
        );
        let by_fp = |fp: &str| {
            report
                .imported
                .iter()
                .find(|c| c.fingerprint_sha256 == fp)
                .expect("imported")
                .clone()
        };
        let (r2, i2, l2) = (
            by_fp(&root2.cert.fingerprint_sha256),
            by_fp(&inter2.cert.fingerprint_sha256),
            by_fp(&leaf2.fingerprint_sha256),
        );
        assert_eq!(r2.issuer_certificate_id, None);
        assert_eq!(i2.issuer_certificate_id, Some(r2.id));
        assert_eq!(l2.issuer_certificate_id, Some(i2.id));
        assert_eq!(certificate_count(&clm).await, 6);

        // A certificate naming a known issuer but signed by another key is not linked.
        let impostor = root("Inventory Issuing CA");
        assert_eq!(impostor.cert.subject_dn, inter.cert.subject_dn);
        let (forged, _) = leaf(&impostor, "forged.example.com");
        let report = import(&clm, forged.pem.clone().into_bytes()).await;
        assert_eq!(report.imported[0].issuer_certificate_id, None);

        // Chain, PEM and reads by business key.
        let chain = clm
            .certificate_chain(&clm.system_actor(), l2.id)
            .await
            .expect("chain");
        let ids: Vec<CertificateId> = chain.iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![l2.id, i2.id, r2.id]);
        let pem = clm
            .get_certificate_pem(&clm.system_actor(), l2.id)
            .await
            .expect("pem");
        assert_eq!(pem, leaf2.pem);
        let by_key = clm
            .get_certificate_by_certificate_id(&clm.system_actor(), &l2.certificate_id)
            .await
            .expect("by certificate_id");
        assert_eq!(by_key.id, l2.id);

        // One audit row per batch, naming every certificate.
        let audits = secure_events(&clm, "certificates.imported").await;
        assert_eq!(audits.len(), 5);
        assert!(audits.iter().any(|e| {
            e.details.0["certificate_ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|id| id.as_str() == Some(&l2.id.to_string())))
        }));
    })
    .await;
}

#[tokio::test]
async fn import_with_private_keys_in_three_encodings_and_refuse_mismatches() {
    on_both_keyed(security(), |clm| async move {
        let ca = root("Key Import Root");
        let now = Utc::now();

        // PKCS#8 (P-256), PKCS#1 (RSA-2048), SEC1 (P-384).
        let cases = [
            (KeyAlgorithm::EcdsaP256, false, "PRIVATE KEY"),
            (KeyAlgorithm::Rsa2048, true, "RSA PRIVATE KEY"),
            (KeyAlgorithm::EcdsaP384, true, "EC PRIVATE KEY"),
        ];
        for (index, (algorithm, convert, label)) in cases.into_iter().enumerate() {
            let key = KeyPair::generate(algorithm).expect("key");
            let cert = leaf_with(
                &ca,
                &key,
                &format!("k{index}.example.com"),
                now - Duration::hours(1),
                now + Duration::days(90),
            );
            let pkcs8 = key.to_pkcs8_pem().expose().to_string();
            let pem = if convert { traditional(&pkcs8) } else { pkcs8 };
            assert!(pem.contains(&format!("BEGIN {label}")), "{pem}");
            let report = clm
                .import_certificates(
                    &clm.system_actor(),
                    ImportRequest {
                        data: cert.pem.clone().into_bytes(),
                        private_key_pem: Some(SecretString::new(pem)),
                        ..Default::default()
                    },
                )
                .await
                .unwrap_or_else(|err| panic!("import with {label}: {err}"));
            assert_eq!(report.imported.len(), 1);
            assert_eq!(private_key_count(&clm).await, index as i64 + 1);
        }
        assert_eq!(secure_events(&clm, "private_key.imported").await.len(), 3);

        // A key that is not the certificate's: refused, nothing written.
        let (cert, _) = leaf(&ca, "mismatch.example.com");
        let other = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let before = certificate_count(&clm).await;
        let err = assert_code(
            clm.import_certificates(
                &clm.system_actor(),
                ImportRequest {
                    data: cert.pem.clone().into_bytes(),
                    private_key_pem: Some(SecretString::new(
                        other.to_pkcs8_pem().expose().to_string(),
                    )),
                    ..Default::default()
                },
            )
            .await,
            ErrorCode::InvalidInput,
        );
        assert!(err.to_string().contains("does not match"), "{err}");
        assert_eq!(certificate_count(&clm).await, before);
        assert_eq!(private_key_count(&clm).await, 3);

        // A key with a bundle of two is ambiguous.
        let (second, second_key) = leaf(&ca, "second.example.com");
        let err = assert_code(
            clm.import_certificates(
                &clm.system_actor(),
                ImportRequest {
                    data: bundle(&[&cert, &second]),
                    private_key_pem: Some(SecretString::new(
                        second_key.to_pkcs8_pem().expose().to_string(),
                    )),
                    ..Default::default()
                },
            )
            .await,
            ErrorCode::InvalidInput,
        );
        assert!(err.to_string().contains("exactly one certificate"), "{err}");
        assert_eq!(certificate_count(&clm).await, before);

        // Certificate first, key later: the key joins the stored certificate.
        let stored = import(&clm, second.pem.clone().into_bytes()).await.imported[0].id;
        let report = clm
            .import_certificates(
                &clm.system_actor(),
                ImportRequest {
                    data: second.pem.clone().into_bytes(),
                    private_key_pem: Some(SecretString::new(
                        second_key.to_pkcs8_pem().expose().to_string(),
                    )),
                    ..Default::default()
                },
            )
            .await
            .expect("attach key");
        assert_eq!(report.already_present, vec![stored]);
        assert_eq!(private_key_count(&clm).await, 4);
    })
    .await;
}

#[tokio::test]
async fn bad_input_is_refused_and_writes_nothing() {
    on_both_keyed(security(), |clm| async move {
        let ca = root("Bad Input Root");
        let (cert, _) = leaf(&ca, "bad.example.com");
        let mut trailing = cert.der.clone();
        trailing.push(0);
        let truncated_pem = cert.pem[..cert.pem.len() / 2].to_string();
        let bad_base64 = cert.pem.replacen("MII", "M*I", 1);
        let mut non_minimal = cert.der.clone();
        non_minimal[1] = 0x83; // long-form length with a redundant leading zero byte
        non_minimal.insert(2, 0);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("garbage", b"this is not a certificate at all".to_vec()),
            (
                "random bytes",
                (0..200u8).map(|b| b.wrapping_mul(37)).collect(),
            ),
            ("truncated DER", cert.der[..cert.der.len() - 20].to_vec()),
            ("trailing bytes", trailing),
            ("non-minimal DER", non_minimal),
            ("truncated PEM", truncated_pem.into_bytes()),
            ("bad base64", bad_base64.into_bytes()),
            (
                "PEM without certificate",
                b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n".to_vec(),
            ),
            // One good and one damaged certificate: all or nothing.
            ("bundle with a bad member", {
                let mut data = cert.pem.clone().into_bytes();
                data.extend_from_slice(
                    b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
                );
                data
            }),
        ];
        for (name, data) in cases {
            let err = assert_code(
                clm.import_certificates(&clm.system_actor(), request(data))
                    .await,
                ErrorCode::InvalidInput,
            );
            assert!(!err.to_string().is_empty(), "{name}");
            assert_eq!(certificate_count(&clm).await, 0, "{name} wrote something");
        }
        assert!(
            secure_events(&clm, "certificates.imported")
                .await
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn odd_serials_and_unknown_critical_extensions_import_flagged() {
    on_both_keyed(security(), |clm| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases = [
            ("zero", vec!["-set_serial", "0"], "serial_zero", "00"),
            (
                "negative",
                vec!["-set_serial", "-5"],
                "serial_negative",
                "fb",
            ),
            (
                "long",
                vec![
                    "-set_serial",
                    "0x0102030405060708090a0b0c0d0e0f101112131415",
                ],
                "serial_too_long",
                "0102030405060708090a0b0c0d0e0f101112131415",
            ),
            (
                "critical",
                vec![
                    "-set_serial",
                    "77",
                    "-addext",
                    "1.2.3.4.5=critical,DER:0500",
                ],
                "unknown_critical_extension:1.2.3.4.5",
                "4d",
            ),
        ];
        for (name, args, flag, serial_hex) in cases {
            let data = openssl_cert(dir.path(), name, &args);
            let report = import(&clm, data).await;
            assert_eq!(report.imported.len(), 1, "{name}");
            let row = &report.imported[0];
            assert_eq!(
                row.serial_number, serial_hex,
                "{name}: serial kept losslessly"
            );
            assert!(
                row.import_flags.0.iter().any(|f| f == flag),
                "{name}: {:?}",
                row.import_flags.0
            );
            assert_eq!(report.flagged.len(), 1, "{name}");
            assert_eq!(report.flagged[0].0, row.id);
            assert!(report.flagged[0].1.iter().any(|f| f == flag));
            let stored = clm
                .get_certificate(&clm.system_actor(), row.id)
                .await
                .expect("get");
            assert_eq!(stored.import_flags.0, row.import_flags.0);
        }
    })
    .await;
}

#[tokio::test]
async fn bulk_import_of_two_thousand_runs_in_batches() {
    // Larger than one batch, with the CAs last in the input: they are
    // written first, the leaves after them in batches linked ahead of the
    // writes, and a leaf naming the intermediate but signed by another key,
    // near the end, is stored unlinked.
    const N: usize = 2_000;
    let ca = root("Bulk Root");
    let sub = intermediate(&ca, "Bulk Issuing CA");
    let impostor = root("Bulk Issuing CA");
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let mut data = Vec::new();
    for i in 0..N {
        let parent = if i % 2 == 0 { &ca } else { &sub };
        let cert = leaf_with(
            parent,
            &key,
            &format!("bulk{i}.example.com"),
            now - Duration::hours(1),
            now + Duration::days(90),
        );
        data.extend_from_slice(cert.pem.as_bytes());
    }
    let forged = leaf_with(
        &impostor,
        &key,
        "forged.bulk.example.com",
        now - Duration::hours(1),
        now + Duration::days(90),
    );
    data.extend_from_slice(forged.pem.as_bytes());
    data.extend_from_slice(sub.cert.pem.as_bytes());
    data.extend_from_slice(ca.cert.pem.as_bytes());
    let total = N + 3;
    let data = &data;
    let forged = &forged;
    on_both_keyed(security(), |clm| async move {
        let report = import(&clm, data.clone()).await;
        assert_eq!(report.imported.len(), total);
        let by_subject = |cn: &str| {
            report
                .imported
                .iter()
                .find(|c| c.is_ca && c.common_name.as_deref() == Some(cn))
                .expect("CA imported")
                .clone()
        };
        let (ca_row, sub_row) = (by_subject("Bulk Root"), by_subject("Bulk Issuing CA"));
        assert_eq!(ca_row.issuer_certificate_id, None);
        assert_eq!(sub_row.issuer_certificate_id, Some(ca_row.id));
        for row in report.imported.iter().filter(|c| !c.is_ca) {
            let expected = if row.fingerprint_sha256 == forged.fingerprint_sha256 {
                None
            } else if row.common_name.as_deref().is_some_and(|cn| {
                cn.trim_start_matches("bulk")
                    .split('.')
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .is_some_and(|n| n % 2 == 0)
            }) {
                Some(ca_row.id)
            } else {
                Some(sub_row.id)
            };
            assert_eq!(
                row.issuer_certificate_id, expected,
                "issuer of {:?}",
                row.common_name
            );
        }
        // One batch for the CAs, then the leaves in batches.
        let batches = secure_events(&clm, "certificates.imported").await;
        assert_eq!(
            batches.len(),
            1 + (N + 1).div_ceil(clm::service::inventory::IMPORT_BATCH)
        );
        let counted: u64 = batches
            .iter()
            .map(|e| e.details.0["count"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(counted, total as u64);

        let again = import(&clm, data.clone()).await;
        assert!(again.imported.is_empty());
        assert_eq!(again.already_present.len(), total);
        assert_eq!(certificate_count(&clm).await, total as i64);
        let page = clm
            .search_certificates(
                &clm.system_actor(),
                &CertificateSearch {
                    issuer_certificate_id: Some(ca_row.id),
                    ..Default::default()
                },
                &PageRequest::first(1000),
            )
            .await
            .expect("search");
        assert_eq!(page.items.len(), 1000);
        assert!(page.next_cursor.is_some());
    })
    .await;
}

// ------------------------------------------------------ search and tenancy

#[tokio::test]
async fn search_filters_and_pagination() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let ca = root("Search Root");
        let ca_id = import(&clm, ca.cert.pem.clone().into_bytes())
            .await
            .imported[0]
            .id;
        let org = new_org(&clm).await;
        let owner = new_user(&clm, Some(org)).await;
        let now = Utc::now();
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let mut ids = Vec::new();
        for i in 0..7 {
            let cert = leaf_with(
                &ca,
                &key,
                &format!("svc{i}.search.example"),
                now - Duration::hours(1),
                now + Duration::days(10 + 20 * i),
            );
            let report = clm
                .import_certificates(
                    &system,
                    ImportRequest {
                        data: cert.pem.into_bytes(),
                        organization_id: (i % 2 == 0).then_some(org),
                        owner_user_id: (i < 3).then_some(owner),
                        ..Default::default()
                    },
                )
                .await
                .expect("import");
            ids.push(report.imported[0].id);
        }
        let search = |s: CertificateSearch| {
            let clm = clm.clone();
            async move {
                clm.search_certificates(&clm.system_actor(), &s, &PageRequest::first(100))
                    .await
                    .expect("search")
                    .items
                    .into_iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            search(CertificateSearch {
                common_name: Some("SVC3.SEARCH".into()),
                ..Default::default()
            })
            .await,
            vec![ids[3]]
        );
        assert_eq!(
            search(CertificateSearch {
                san: Some("svc5.search.example".into()),
                ..Default::default()
            })
            .await,
            vec![ids[5]]
        );
        assert_eq!(
            search(CertificateSearch {
                issuer_certificate_id: Some(ca_id),
                ..Default::default()
            })
            .await,
            ids
        );
        assert_eq!(
            search(CertificateSearch {
                owner_user_id: Some(owner),
                ..Default::default()
            })
            .await,
            ids[..3].to_vec()
        );
        assert_eq!(
            search(CertificateSearch {
                organization_id: Some(org),
                ..Default::default()
            })
            .await,
            vec![ids[0], ids[2], ids[4], ids[6]]
        );
        // Expiry window: after 40 days, up to 100 days (10+20i in (40, 100] -> i = 2, 3, 4).
        assert_eq!(
            search(CertificateSearch {
                expires_after: Some(now + Duration::days(40)),
                expires_before: Some(now + Duration::days(100)),
                ..Default::default()
            })
            .await,
            ids[2..5].to_vec()
        );
        // Status: within 30 days is expiring only after a refresh; the CA is active.
        assert_eq!(
            search(CertificateSearch {
                status: Some(vec![CertificateStatus::Active]),
                is_ca: Some(true),
                ..Default::default()
            })
            .await,
            vec![ca_id]
        );
        clm.revoke_certificate(&system, ids[6], RevocationReason::Superseded, None)
            .await
            .expect("revoke");
        assert_eq!(
            search(CertificateSearch {
                status: Some(vec![CertificateStatus::Revoked]),
                ..Default::default()
            })
            .await,
            vec![ids[6]]
        );
        assert!(
            search(CertificateSearch {
                status: Some(Vec::new()),
                ..Default::default()
            })
            .await
            .is_empty()
        );

        // Pages of 3 walk everything once, in expiry order.
        let mut walked = Vec::new();
        let mut cursor = None;
        loop {
            let page = clm
                .search_certificates(
                    &system,
                    &CertificateSearch::default(),
                    &PageRequest::after(3, cursor),
                )
                .await
                .expect("page");
            assert!(page.items.len() <= 3);
            walked.extend(page.items.iter().map(|c| c.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        let mut expected = ids.clone();
        expected.push(ca_id);
        assert_eq!(walked, expected);

        // Light rows unless asked for the PEM.
        let light = clm
            .search_certificates(
                &system,
                &CertificateSearch::default(),
                &PageRequest::first(1),
            )
            .await
            .expect("light");
        assert!(light.items[0].certificate_pem.is_empty());
        let full = clm
            .search_certificates(
                &system,
                &CertificateSearch {
                    with_pem: true,
                    ..Default::default()
                },
                &PageRequest::first(1),
            )
            .await
            .expect("full");
        assert!(
            full.items[0]
                .certificate_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );

        // Soft delete hides, restore brings back.
        clm.delete_certificate(&system, ids[1])
            .await
            .expect("delete");
        assert_code(
            clm.get_certificate(&system, ids[1]).await,
            ErrorCode::NotFound,
        );
        assert!(
            !search(CertificateSearch {
                owner_user_id: Some(owner),
                ..Default::default()
            })
            .await
            .contains(&ids[1])
        );
        assert_code(
            clm.delete_certificate(&system, ids[1]).await,
            ErrorCode::NotFound,
        );
        let restored = clm
            .restore_certificate(&system, ids[1])
            .await
            .expect("restore");
        assert_eq!(restored.id, ids[1]);
        assert!(restored.deleted_at.is_none());
        assert_eq!(secure_events(&clm, "certificate.deleted").await.len(), 1);
        assert_eq!(secure_events(&clm, "certificate.restored").await.len(), 1);
        // Importing a deleted certificate again (into its organization:
        // de-duplication is per organization) reports it, without a duplicate.
        clm.delete_certificate(&system, ids[2])
            .await
            .expect("delete");
        let pem = {
            let mut conn = clm.databases().secure.acquire().await.expect("acquire");
            clm::store::get::<Certificates>(&mut conn.conn(), ids[2], true)
                .await
                .expect("row")
                .certificate_pem
        };
        let report = clm
            .import_certificates(
                &system,
                ImportRequest {
                    data: pem.into_bytes(),
                    organization_id: Some(org),
                    ..Default::default()
                },
            )
            .await
            .expect("import again");
        assert_eq!(report.already_present, vec![ids[2]]);
    })
    .await;
}

#[tokio::test]
async fn organizations_do_not_see_each_others_certificates() {
    on_both_keyed(security(), |clm| async move {
        let (org_a, org_b) = (new_org(&clm).await, new_org(&clm).await);
        let perms: &[(&str, &[&str])] = &[
            ("certificates", &["read", "import", "revoke", "delete"]),
            ("authorities", &["sign_crl"]),
        ];
        let alice = member(org_a, perms);
        let bob = member(org_b, perms);
        let ca = root("Tenancy Root");
        let (cert_a, _) = leaf(&ca, "a.tenant.example");
        let (cert_b, _) = leaf(&ca, "b.tenant.example");
        let a = clm
            .import_certificates(
                &alice,
                ImportRequest {
                    data: cert_a.pem.clone().into_bytes(),
                    organization_id: Some(org_a),
                    ..Default::default()
                },
            )
            .await
            .expect("alice imports")
            .imported[0]
            .clone();
        let b = clm
            .import_certificates(
                &bob,
                ImportRequest {
                    data: cert_b.pem.clone().into_bytes(),
                    organization_id: Some(org_b),
                    ..Default::default()
                },
            )
            .await
            .expect("bob imports")
            .imported[0]
            .clone();
        // Importing into someone else's organization, or into none, is denied.
        assert_code(
            clm.import_certificates(
                &bob,
                ImportRequest {
                    data: ca.cert.pem.clone().into_bytes(),
                    organization_id: Some(org_a),
                    ..Default::default()
                },
            )
            .await,
            ErrorCode::PermissionDenied,
        );
        assert_code(
            clm.import_certificates(&bob, request(ca.cert.pem.clone().into_bytes()))
                .await,
            ErrorCode::PermissionDenied,
        );

        assert_eq!(
            clm.get_certificate(&alice, a.id).await.expect("own").id,
            a.id
        );
        assert_code(clm.get_certificate(&bob, a.id).await, ErrorCode::NotFound);
        assert_code(
            clm.get_certificate_by_certificate_id(&bob, &a.certificate_id)
                .await,
            ErrorCode::NotFound,
        );
        assert_code(
            clm.get_certificate_pem(&bob, a.id).await,
            ErrorCode::NotFound,
        );
        assert_code(clm.certificate_chain(&bob, a.id).await, ErrorCode::NotFound);
        assert_code(
            clm.revoke_certificate(&bob, a.id, RevocationReason::KeyCompromise, None)
                .await,
            ErrorCode::NotFound,
        );
        assert_code(
            clm.delete_certificate(&bob, a.id).await,
            ErrorCode::NotFound,
        );
        let seen: Vec<CertificateId> = clm
            .search_certificates(
                &bob,
                &CertificateSearch::default(),
                &PageRequest::first(100),
            )
            .await
            .expect("search")
            .items
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(seen, vec![b.id]);
        let asked_for_a = clm
            .search_certificates(
                &bob,
                &CertificateSearch {
                    organization_id: Some(org_a),
                    ..Default::default()
                },
                &PageRequest::first(100),
            )
            .await
            .expect("search");
        assert!(asked_for_a.items.is_empty());
        // A reader without the permission is denied outright.
        let reader = member(org_a, &[("policies", &["read"])]);
        assert_code(
            clm.search_certificates(
                &reader,
                &CertificateSearch::default(),
                &PageRequest::first(10),
            )
            .await,
            ErrorCode::PermissionDenied,
        );
        // The revoke Bob could not do left A alone.
        assert_eq!(
            clm.get_certificate(&alice, a.id).await.expect("get").status,
            CertificateStatus::Active
        );
    })
    .await;
}

// ------------------------------------------------------------ status refresh

#[tokio::test]
async fn status_refresh_moves_statuses_forward_by_policy_threshold() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let ca = root("Refresh Root");
        import(&clm, ca.cert.pem.clone().into_bytes()).await;
        let policy = clm
            .create_policy(
                &system,
                NewPolicy {
                    policy_code: unique("long-warning"),
                    name: "Long warning".into(),
                    rules: PolicyRules {
                        renewal_threshold_days: 60,
                        ..PolicyRules::default()
                    },
                    status: PolicyStatus::Active,
                    ..NewPolicy::default()
                },
            )
            .await
            .expect("policy");
        let now = Utc::now();
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let at = now + Duration::days(100);
        let add = async |cn: &str, from: i64, to: i64| {
            let cert = leaf_with(
                &ca,
                &key,
                cn,
                now + Duration::days(from) - Duration::hours(1),
                now + Duration::days(to),
            );
            import(&clm, cert.pem.into_bytes()).await.imported[0].clone()
        };
        let expires = add("expires.example", 0, 50).await; // -> expired
        let within_default = add("default30.example", 0, 120).await; // -> expiring (30 d)
        let within_policy = add("policy60.example", 0, 150).await; // -> expiring (60 d)
        let outside = add("outside.example", 0, 150).await; // stays active
        let pending = add("pending.example", 10, 400).await; // pending -> active
        let revoked = add("revoked.example", 0, 50).await; // stays revoked
        let held = add("held.example", 0, 50).await; // stays suspended
        assert_eq!(pending.status, CertificateStatus::Pending);

        let mut with_policy = within_policy.clone();
        with_policy.policy_id = Some(policy.id);
        with_policy.policy_version = Some(policy.version);
        {
            let mut conn = clm.databases().secure.acquire().await.expect("acquire");
            clm::store::certificates::update(&mut conn.conn(), &with_policy)
                .await
                .expect("set policy");
        }
        clm.revoke_certificate(&system, revoked.id, RevocationReason::KeyCompromise, None)
            .await
            .expect("revoke");
        clm.revoke_certificate(&system, held.id, RevocationReason::CertificateHold, None)
            .await
            .expect("hold");

        // Only the lifecycle permission may refresh.
        let reader = member(OrganizationId::new(), &[("certificates", &["read"])]);
        assert_code(
            clm.refresh_certificate_statuses(&reader, at).await,
            ErrorCode::PermissionDenied,
        );

        let report = clm
            .refresh_certificate_statuses(&system, at)
            .await
            .expect("refresh");
        assert_eq!(
            (report.expired, report.expiring, report.activated),
            (1, 2, 1),
            "{report:?}"
        );
        let status = async |id| clm.get_certificate(&system, id).await.expect("get").status;
        assert_eq!(status(expires.id).await, CertificateStatus::Expired);
        assert_eq!(status(within_default.id).await, CertificateStatus::Expiring);
        assert_eq!(status(within_policy.id).await, CertificateStatus::Expiring);
        assert_eq!(status(outside.id).await, CertificateStatus::Active);
        assert_eq!(status(pending.id).await, CertificateStatus::Active);
        assert_eq!(status(revoked.id).await, CertificateStatus::Revoked);
        assert_eq!(status(held.id).await, CertificateStatus::Suspended);

        // Same time again: nothing left to move. Later: expiring -> expired.
        let again = clm
            .refresh_certificate_statuses(&system, at)
            .await
            .expect("refresh");
        assert_eq!((again.expired, again.expiring, again.activated), (0, 0, 0));
        let later = clm
            .refresh_certificate_statuses(&system, now + Duration::days(130))
            .await
            .expect("refresh");
        assert_eq!(later.expired, 1, "{later:?}");
        assert_eq!(status(within_default.id).await, CertificateStatus::Expired);
        assert_eq!(status(revoked.id).await, CertificateStatus::Revoked);

        let audits = secure_events(&clm, "certificates.status_refreshed").await;
        assert_eq!(audits.len(), 3);
    })
    .await;
}

// ------------------------------------------------------- streamed import

/// Certificates `issuer` signed, as the inventory links them.
async fn issued_by(clm: &Clm, issuer: CertificateId) -> usize {
    let mut count = 0;
    let mut cursor = None;
    loop {
        let page = clm
            .search_certificates(
                &clm.system_actor(),
                &CertificateSearch {
                    issuer_certificate_id: Some(issuer),
                    ..Default::default()
                },
                &PageRequest::after(1000, cursor),
            )
            .await
            .expect("search");
        count += page.items.len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return count,
        }
    }
}

async fn id_of(clm: &Clm, cert: &ParsedCertificate) -> CertificateId {
    let report = import(clm, cert.pem.clone().into_bytes()).await;
    assert_eq!(
        report.imported.len(),
        0,
        "{} was not stored",
        cert.subject_dn
    );
    report.already_present[0]
}

/// `n` leaves of `parent` as one PEM text, sharing `key`.
fn leaves_pem(parent: &Ca, key: &KeyPair, prefix: &str, n: usize) -> Vec<u8> {
    let now = Utc::now();
    let mut data = Vec::new();
    for i in 0..n {
        let cert = leaf_with(
            parent,
            key,
            &format!("{prefix}{i}.stream.example"),
            now - Duration::hours(1),
            now + Duration::days(90),
        );
        data.extend_from_slice(cert.pem.as_bytes());
    }
    data
}

/// A reader that hands out at most 1000 bytes per call, so PEM blocks
/// straddle the reads.
struct Trickle(std::io::Cursor<Vec<u8>>);

impl std::io::Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = buf.len().min(1000);
        self.0.read(&mut buf[..len])
    }
}

#[tokio::test]
async fn streamed_import_larger_than_a_chunk_reports_progress_and_links_all() {
    let chunk = clm::service::inventory::IMPORT_BATCH;
    let n = 2 * chunk + 5;
    let ca = root("Stream Root");
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let mut data = ca.cert.pem.clone().into_bytes();
    data.extend_from_slice(&leaves_pem(&ca, &key, "s", n));
    // A skipped block in the second chunk, numbered in the input's terms.
    let key_block_number = chunk + 10;
    let mut with_key = Vec::new();
    for (i, block) in String::from_utf8(data.clone())
        .expect("utf-8")
        .split_inclusive("-----END CERTIFICATE-----\n")
        .enumerate()
    {
        if i + 1 == key_block_number {
            with_key.extend_from_slice(key.to_pkcs8_pem().expose().as_bytes());
        }
        with_key.extend_from_slice(block.as_bytes());
    }
    let data = &with_key;
    let ca = &ca;
    on_both_keyed(security(), |clm| async move {
        let seen = std::sync::Mutex::new(Vec::<ImportProgress>::new());
        let record = |step: ImportProgress| seen.lock().expect("lock").push(step);
        let summary = clm
            .import_certificates_from_reader(
                &clm.system_actor(),
                Trickle(std::io::Cursor::new(data.clone())),
                ImportOptions {
                    progress: Some(&record),
                    ..Default::default()
                },
            )
            .await
            .expect("streamed import");
        assert_eq!(summary.imported, (n + 1) as u64);
        assert_eq!(summary.already_present, 0);
        assert_eq!(summary.certificates_read, (n + 1) as u64);
        assert_eq!(summary.blocks, (n + 2) as u64);
        assert_eq!(summary.skipped.len(), 1);
        assert_eq!(summary.skipped[0].block, key_block_number);
        assert_eq!(certificate_count(&clm).await, (n + 1) as i64);
        let ca_id = id_of(&clm, &ca.cert).await;
        assert_eq!(issued_by(&clm, ca_id).await, n);

        let steps = seen.lock().expect("lock").clone();
        assert!(steps.len() >= 3, "one progress call per chunk: {steps:?}");
        assert!(
            steps
                .windows(2)
                .all(|w| w[0].imported <= w[1].imported && w[0].blocks_read <= w[1].blocks_read),
            "{steps:?}"
        );
        assert_eq!(steps.last().map(|s| s.imported), Some((n + 1) as u64));

        // Again, from a file: everything is already there.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bundle.pem");
        std::fs::write(&path, data).expect("write bundle");
        let again = clm
            .import_certificates_from_file(&clm.system_actor(), &path, ImportOptions::default())
            .await
            .expect("file import");
        assert_eq!(again.imported, 0);
        assert_eq!(again.already_present, (n + 1) as u64);
        assert_eq!(certificate_count(&clm).await, (n + 1) as i64);

        let missing = clm
            .import_certificates_from_file(
                &clm.system_actor(),
                dir.path().join("missing.pem"),
                ImportOptions::default(),
            )
            .await;
        let err = assert_code(missing, ErrorCode::InvalidInput);
        assert!(err.to_string().contains("missing.pem"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn children_before_their_issuers_in_a_stream_are_linked() {
    // More leaves than one chunk before their intermediate, which comes
    // before its root: every link is the one an ordered input gets.
    let chunk = clm::service::inventory::IMPORT_BATCH;
    let n = chunk + 300;
    let ca = root("Late Root");
    let sub = intermediate(&ca, "Late Issuing CA");
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let mut data = leaves_pem(&sub, &key, "late", n);
    data.extend_from_slice(sub.cert.pem.as_bytes());
    data.extend_from_slice(ca.cert.pem.as_bytes());
    let data = &data;
    let (ca, sub) = (&ca, &sub);
    on_both_keyed(security(), |clm| async move {
        let summary = clm
            .import_certificates_from_reader(
                &clm.system_actor(),
                std::io::Cursor::new(data.clone()),
                ImportOptions::default(),
            )
            .await
            .expect("streamed import");
        assert_eq!(summary.imported, (n + 2) as u64);
        let ca_id = id_of(&clm, &ca.cert).await;
        let sub_id = id_of(&clm, &sub.cert).await;
        let sub_row = clm
            .get_certificate(&clm.system_actor(), sub_id)
            .await
            .expect("intermediate");
        assert_eq!(sub_row.issuer_certificate_id, Some(ca_id));
        assert_eq!(issued_by(&clm, sub_id).await, n);
        assert_eq!(issued_by(&clm, ca_id).await, 1);
    })
    .await;
}

#[tokio::test]
async fn a_bad_block_mid_stream_stops_there_and_names_it() {
    let chunk = clm::service::inventory::IMPORT_BATCH;
    let before = chunk + 100; // the CA and the leaves ahead of the bad block
    let after = 10;
    let ca = root("Mid Stream Root");
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let mut good = ca.cert.pem.clone().into_bytes();
    good.extend_from_slice(&leaves_pem(&ca, &key, "mid", before - 1));
    let bad_at = good.len();
    let mut data = good.clone();
    data.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n");
    let tail = leaves_pem(&ca, &key, "tail", after);
    data.extend_from_slice(&tail);
    good.extend_from_slice(&tail);
    let (data, good, ca) = (&data, &good, &ca);
    on_both_keyed(security(), |clm| async move {
        let err = assert_code(
            clm.import_certificates(&clm.system_actor(), request(data.clone()))
                .await,
            ErrorCode::InvalidInput,
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("PEM block {} of the input", before + 1)),
            "{text}"
        );
        assert!(text.contains(&format!("at byte {bad_at}")), "{text}");
        // The chunk before the bad one was written whole; nothing after it.
        assert!(
            text.contains(&format!("{chunk} certificates read before it were written")),
            "{text}"
        );
        assert_eq!(certificate_count(&clm).await, chunk as i64);

        // The corrected input completes the rest.
        let report = import(&clm, good.clone()).await;
        assert_eq!(report.imported.len(), before + after - chunk);
        assert_eq!(report.already_present.len(), chunk);
        assert_eq!(certificate_count(&clm).await, (before + after) as i64);
        let ca_id = id_of(&clm, &ca.cert).await;
        assert_eq!(issued_by(&clm, ca_id).await, before + after - 1);
    })
    .await;
}
