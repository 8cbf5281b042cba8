//! Name constraints on CAs (issue 14): every subtree form, permitted and
//! excluded, enforced through a two-level chain (root constrained,
//! intermediate unconstrained); the dry run naming the rule; `openssl
//! verify` and Python's `cryptography` on what is issued; imported CAs'
//! constraints; CA default validities that nest; and the self-check that
//! refuses (as an internal error, with nothing stored) a certificate whose
//! chain does not validate. Both backends.

mod common;

use std::path::Path;
use std::process::Command;

use clm::crypto::{DistinguishedName, KeyAlgorithm, NameSubtree, SecretString};
use clm::model::{Certificate, CertificateKind, SubjectAlternativeName};
use clm::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use clm::service::inventory::ImportRequest;
use clm::service::issuance::{IssueRequest, KeySource};
use clm::store::Filter;
use clm::store::certificates::Certificates;
use clm::store::private_keys::PrivateKeys;
use clm::{Clm, Error, ErrorCode, SecuritySettings};
use common::{on_both_keyed, unique};

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

fn dn(text: &str) -> DistinguishedName {
    DistinguishedName::parse(text).expect("dn")
}

fn run(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program} must be installed: {err}"));
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn python() -> String {
    std::env::var("CLM_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// A root constrained in every form, and an unconstrained intermediate
/// below it with default validity.
async fn constrained_chain(clm: &Clm) -> (CertificateAuthority, CertificateAuthority) {
    let system = clm.system_actor();
    let root = clm
        .create_root_ca(
            &system,
            NewCertificateAuthority {
                subject: dn(&format!("CN={},O=Example,C=US", unique("Constrained Root"))),
                permitted_subtrees: vec![
                    NameSubtree::Dns("example.com".into()),
                    NameSubtree::Ip("10.0.0.0/8".into()),
                    NameSubtree::Email("example.com".into()),
                    NameSubtree::Uri(".example.com".into()),
                    NameSubtree::DirectoryName("O=Example,C=US".into()),
                ],
                excluded_subtrees: vec![
                    NameSubtree::Dns("secret.example.com".into()),
                    NameSubtree::Ip("10.9.0.0/16".into()),
                    NameSubtree::Email("boss@example.com".into()),
                    NameSubtree::Uri("evil.example.com".into()),
                    NameSubtree::DirectoryName("OU=Blocked,O=Example,C=US".into()),
                ],
                ..Default::default()
            },
        )
        .await
        .expect("create constrained root");
    let intermediate = clm
        .create_intermediate_ca(
            &system,
            root.certificate.id,
            NewCertificateAuthority {
                subject: dn(&format!("CN={},O=Example,C=US", unique("Issuing CA"))),
                ..Default::default()
            },
        )
        .await
        .expect("create intermediate");
    (root, intermediate)
}

fn request(
    issuer: &CertificateAuthority,
    subject: &str,
    kind: CertificateKind,
    san: SubjectAlternativeName,
) -> IssueRequest {
    IssueRequest {
        issuer_id: issuer.certificate.id,
        policy_id: None,
        subject: dn(subject),
        sans: vec![san],
        kind,
        validity_days: 30,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: None,
    }
}

/// (what, inside, outside the permitted subtrees, inside an excluded one)
fn cases() -> Vec<(
    &'static str,
    IssueRequestParts,
    IssueRequestParts,
    IssueRequestParts,
)> {
    use SubjectAlternativeName::{Dns, Email, Ip, Uri};
    let ok_dn = "CN=Test Leaf,O=Example,C=US";
    let server = CertificateKind::TlsServer;
    let mail = CertificateKind::Email;
    vec![
        (
            "DNS",
            (ok_dn, server, Dns("www.example.com".into())),
            (ok_dn, server, Dns("www.example.org".into())),
            (ok_dn, server, Dns("db.secret.example.com".into())),
        ),
        (
            "IP",
            (ok_dn, server, Ip("10.1.2.3".parse().unwrap())),
            (ok_dn, server, Ip("192.168.1.1".parse().unwrap())),
            (ok_dn, server, Ip("10.9.0.5".parse().unwrap())),
        ),
        (
            "EMAIL",
            (ok_dn, mail, Email("alice@example.com".into())),
            (ok_dn, mail, Email("alice@example.org".into())),
            (ok_dn, mail, Email("boss@example.com".into())),
        ),
        (
            "URI",
            (ok_dn, server, Uri("https://api.example.com/x".into())),
            (ok_dn, server, Uri("https://api.example.org/".into())),
            (ok_dn, server, Uri("https://evil.example.com/".into())),
        ),
        (
            "DIRNAME",
            (
                "CN=Dir Leaf,OU=Ops,O=Example,C=US",
                server,
                Dns("dir.example.com".into()),
            ),
            (
                "CN=Dir Leaf,O=Other,C=US",
                server,
                Dns("dir.example.com".into()),
            ),
            (
                "CN=Dir Leaf,OU=Blocked,O=Example,C=US",
                server,
                Dns("dir.example.com".into()),
            ),
        ),
    ]
}

type IssueRequestParts = (&'static str, CertificateKind, SubjectAlternativeName);

async fn counts(clm: &Clm) -> (i64, i64) {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    (
        clm::store::count::<Certificates>(&mut conn.conn(), &Filter::new())
            .await
            .expect("count"),
        clm::store::count::<PrivateKeys>(&mut conn.conn(), &Filter::new())
            .await
            .expect("count"),
    )
}

fn assert_refused(err: Error, needles: &[&str]) {
    assert_eq!(err.code(), ErrorCode::PolicyViolation, "{err}");
    let Error::PolicyViolation { violations } = &err else {
        panic!("{err}");
    };
    let hit = violations
        .iter()
        .find(|v| v.rule == "name_constraints")
        .unwrap_or_else(|| panic!("no name_constraints violation in {err}"));
    for needle in needles {
        assert!(
            hit.message.contains(needle),
            "{:?} lacks {needle:?}",
            hit.message
        );
    }
}

#[tokio::test]
async fn every_form_is_enforced_through_an_unconstrained_intermediate() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let (root, intermediate) = constrained_chain(&clm).await;
        let mut issued: Vec<(&str, Certificate)> = Vec::new();
        for (form, inside, outside, excluded) in cases() {
            let (subject, kind, san) = inside;
            let cert = clm
                .issue_certificate(&system, request(&intermediate, subject, kind, san))
                .await
                .unwrap_or_else(|err| panic!("{form} inside: {err}"))
                .into_certificate()
                .expect("issued");
            issued.push((form, cert));

            let before = counts(&clm).await;
            let (subject, kind, san) = outside;
            let value = san.value();
            let err = clm
                .issue_certificate(&system, request(&intermediate, subject, kind, san.clone()))
                .await
                .expect_err("outside refused");
            let name = if form == "DIRNAME" { "O=Other" } else { &value };
            assert_refused(err, &[name, "outside the permitted subtrees", form]);

            // The dry run reports the same rule.
            let report = clm
                .dry_run_issuance(&system, request(&intermediate, subject, kind, san))
                .await
                .expect("dry run");
            assert!(!report.allowed);
            let rule = report
                .rules
                .iter()
                .find(|r| r.rule == "name_constraints")
                .expect("rule reported");
            assert!(!rule.passed && rule.detail.contains(name), "{rule:?}");

            let (subject, kind, san) = excluded;
            let err = clm
                .issue_certificate(&system, request(&intermediate, subject, kind, san))
                .await
                .expect_err("excluded refused");
            assert_refused(err, &["excluded subtree", form]);
            assert_eq!(counts(&clm).await, before, "{form}: a refusal stores nothing");
        }

        // A dry run inside the constraints passes the rule.
        let (subject, kind, san) = cases()[0].1.clone();
        let report = clm
            .dry_run_issuance(&system, request(&intermediate, subject, kind, san))
            .await
            .expect("dry run");
        assert!(report.allowed, "{:?}", report.rules);
        assert!(report.rules.iter().any(|r| r.rule == "name_constraints" && r.passed));

        // openssl verifies every issued leaf under the constraints, and
        // Python's cryptography reads the extension.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        std::fs::write(path.join("root.pem"), &root.certificate.certificate_pem).expect("write");
        std::fs::write(path.join("inter.pem"), &intermediate.certificate.certificate_pem)
            .expect("write");
        for (form, cert) in &issued {
            std::fs::write(path.join("leaf.pem"), &cert.certificate_pem).expect("write");
            let (ok, out) = run(
                path,
                "openssl",
                &["verify", "-CAfile", "root.pem", "-untrusted", "inter.pem", "leaf.pem"],
            );
            assert!(ok && out.contains("leaf.pem: OK"), "{form}: openssl verify:\n{out}");
        }
        let (_, text) = run(path, "openssl", &["x509", "-in", "root.pem", "-noout", "-text"]);
        assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
        let script = r#"
from cryptography import x509
root = x509.load_pem_x509_certificate(open("root.pem", "rb").read())
ext = root.extensions.get_extension_for_class(x509.NameConstraints)
assert ext.critical
nc = ext.value
permitted = sorted(type(n).__name__ + "=" + str(getattr(n, "value", n)) for n in nc.permitted_subtrees)
excluded = sorted(type(n).__name__ + "=" + str(getattr(n, "value", n)) for n in nc.excluded_subtrees)
print(permitted)
print(excluded)
assert "DNSName=example.com" in permitted, permitted
assert "IPAddress=10.0.0.0/8" in permitted, permitted
assert "RFC822Name=example.com" in permitted, permitted
assert "UniformResourceIdentifier=.example.com" in permitted, permitted
assert any(p.startswith("DirectoryName=") and "O=Example" in p for p in permitted), permitted
assert "DNSName=secret.example.com" in excluded, excluded
assert "IPAddress=10.9.0.0/16" in excluded, excluded
assert "RFC822Name=boss@example.com" in excluded, excluded
"#;
        let (ok, out) = run(path, &python(), &["-c", script]);
        assert!(ok, "python cryptography:\n{out}");
    })
    .await;
}

#[tokio::test]
async fn bad_subtrees_are_refused_naming_the_entry() {
    on_both_keyed(security(), |clm| async move {
        let before = counts(&clm).await;
        for (permitted, excluded, field) in [
            (
                vec![
                    NameSubtree::Dns("example.com".into()),
                    NameSubtree::Ip("10.0.0.1/8".into()),
                ],
                vec![],
                "permitted_subtrees[1]",
            ),
            (
                vec![],
                vec![NameSubtree::Dns("*.example.com".into())],
                "excluded_subtrees[0]",
            ),
            (
                vec![NameSubtree::DirectoryName("".into())],
                vec![],
                "permitted_subtrees[0]",
            ),
            (
                vec![NameSubtree::Uri("https://example.com/".into())],
                vec![],
                "permitted_subtrees[0]",
            ),
        ] {
            let err = clm
                .create_root_ca(
                    &clm.system_actor(),
                    NewCertificateAuthority {
                        subject: dn("CN=Bad Root"),
                        permitted_subtrees: permitted,
                        excluded_subtrees: excluded,
                        ..Default::default()
                    },
                )
                .await
                .expect_err("refused");
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
            assert!(err.to_string().contains(field), "{err} lacks {field}");
        }
        assert_eq!(counts(&clm).await, before);
    })
    .await;
}

#[tokio::test]
async fn a_sub_ca_cannot_widen_or_leave_its_chain_s_constraints() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let (root, intermediate) = constrained_chain(&clm).await;
        let before = counts(&clm).await;
        for (subject, permitted, needle) in [
            (
                "CN=Sub,O=Example,C=US",
                vec![NameSubtree::Dns("example.org".into())],
                "permitted subtree DNS:example.org is outside",
            ),
            (
                "CN=Sub,O=Example,C=US",
                vec![NameSubtree::Ip("0.0.0.0/0".into())],
                "IP:0.0.0.0/0",
            ),
            (
                "CN=Sub,O=Example,C=US",
                vec![NameSubtree::Dns("x.secret.example.com".into())],
                "inside the excluded subtree DNS:secret.example.com",
            ),
            ("CN=Sub,O=Elsewhere,C=US", vec![], "O=Elsewhere"),
        ] {
            let err = clm
                .create_intermediate_ca(
                    &system,
                    intermediate.certificate.id,
                    NewCertificateAuthority {
                        subject: dn(subject),
                        permitted_subtrees: permitted,
                        ..Default::default()
                    },
                )
                .await
                .expect_err("escaping sub-CA refused");
            assert_refused(err, &[needle]);
        }
        assert_eq!(counts(&clm).await, before);

        // Narrower is fine, and both levels bind what it issues.
        let narrow = clm
            .create_intermediate_ca(
                &system,
                root.certificate.id,
                NewCertificateAuthority {
                    subject: dn("CN=Narrow,O=Example,C=US"),
                    permitted_subtrees: vec![NameSubtree::Dns("shop.example.com".into())],
                    ..Default::default()
                },
            )
            .await
            .expect("narrower sub-CA");
        let ok = request(
            &narrow,
            "CN=Test Leaf,O=Example,C=US",
            CertificateKind::TlsServer,
            SubjectAlternativeName::Dns("www.shop.example.com".into()),
        );
        clm.issue_certificate(&system, ok)
            .await
            .expect("inside both");
        let err = clm
            .issue_certificate(
                &system,
                request(
                    &narrow,
                    "CN=Test Leaf,O=Example,C=US",
                    CertificateKind::TlsServer,
                    SubjectAlternativeName::Dns("www.example.com".into()),
                ),
            )
            .await
            .expect_err("outside the sub-CA's own");
        assert_refused(err, &["DNS:shop.example.com"]);
    })
    .await;
}

#[tokio::test]
async fn an_imported_ca_s_constraints_are_enforced() {
    on_both_keyed(security(), |clm| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        let (ok, out) = run(
            path,
            "openssl",
            &[
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
                "-subj", "/CN=Imported Constrained CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-addext", "nameConstraints=critical,permitted;DNS:imported.example,excluded;DNS:no.imported.example",
            ],
        );
        assert!(ok, "openssl req:\n{out}");
        let report = clm
            .import_certificates(
                &clm.system_actor(),
                ImportRequest {
                    data: std::fs::read(path.join("ca.pem")).expect("read"),
                    private_key_pem: Some(SecretString::from(
                        std::fs::read_to_string(path.join("ca.key")).expect("read"),
                    )),
                    organization_id: None,
                    owner_user_id: None,
                },
            )
            .await
            .expect("import CA with key");
        let ca_id = report.imported[0].id;
        let ca = CertificateAuthority {
            certificate: report.imported[0].clone(),
            issuance_urls: Default::default(),
            validity_clamp: None,
        };
        let system = clm.system_actor();
        let dns = |name: &str| {
            let mut r = request(
                &ca,
                "CN=Test Leaf",
                CertificateKind::TlsServer,
                SubjectAlternativeName::Dns(name.into()),
            );
            r.issuer_id = ca_id;
            r.validity_days = 7;
            r
        };
        let leaf = clm
            .issue_certificate(&system, dns("www.imported.example"))
            .await
            .expect("inside")
            .into_certificate()
            .expect("issued");
        std::fs::write(path.join("leaf.pem"), &leaf.certificate_pem).expect("write");
        let (ok, out) = run(path, "openssl", &["verify", "-CAfile", "ca.pem", "leaf.pem"]);
        assert!(ok, "{out}");
        let err = clm
            .issue_certificate(&system, dns("www.example.com"))
            .await
            .expect_err("outside");
        assert_refused(err, &["www.example.com", "DNS:imported.example"]);
        let err = clm
            .issue_certificate(&system, dns("a.no.imported.example"))
            .await
            .expect_err("excluded");
        assert_refused(err, &["DNS:no.imported.example"]);
    })
    .await;
}

#[tokio::test]
async fn default_ca_validities_nest() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let root = clm
            .create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: dn("CN=Default Root"),
                    ..Default::default()
                },
            )
            .await
            .expect("root with defaults");
        assert!(root.validity_clamp.is_none());
        // A slow key (RSA-4096) with the default validity never fails.
        let slow = clm
            .create_intermediate_ca(
                &system,
                root.certificate.id,
                NewCertificateAuthority {
                    subject: dn("CN=Slow Intermediate"),
                    key_algorithm: KeyAlgorithm::Rsa4096,
                    ..Default::default()
                },
            )
            .await
            .expect("intermediate with defaults");
        assert!(slow.certificate.not_after <= root.certificate.not_after);
        if let Some(clamp) = &slow.validity_clamp {
            assert_eq!(clamp.not_after, root.certificate.not_after);
            assert_eq!(clamp.default_days, 3650);
        }

        // A short-lived root: the default is always clamped, and reported.
        let short = clm
            .create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: dn("CN=Short Root"),
                    validity_days: Some(100),
                    ..Default::default()
                },
            )
            .await
            .expect("short root");
        let clamped = clm
            .create_intermediate_ca(
                &system,
                short.certificate.id,
                NewCertificateAuthority {
                    subject: dn("CN=Clamped Intermediate"),
                    ..Default::default()
                },
            )
            .await
            .expect("clamped intermediate");
        assert_eq!(clamped.certificate.not_after, short.certificate.not_after);
        let clamp = clamped.validity_clamp.clone().expect("clamp reported");
        assert_eq!(clamp.not_after, short.certificate.not_after);
        let mut conn = clm.databases().secure.acquire().await.expect("conn");
        let events = clm::store::audit::by_event_type(
            &mut conn.conn(),
            clm::store::audit::AuditLogKind::Secure,
            "certificate_authority.created",
        )
        .await
        .expect("audit");
        drop(conn);
        assert!(
            events.iter().any(
                |e| e.resource_id.map(|r| r.0) == Some(clamped.certificate.id.0)
                    && !e.details.0["validity_clamp"].is_null()
            ),
            "clamp audited"
        );

        // An explicit validity past the issuer still fails, clearly.
        let err = clm
            .create_intermediate_ca(
                &system,
                short.certificate.id,
                NewCertificateAuthority {
                    subject: dn("CN=Too Long"),
                    validity_days: Some(365),
                    ..Default::default()
                },
            )
            .await
            .expect_err("explicit overlong validity");
        assert_eq!(err.code(), ErrorCode::InvalidInput);
        assert!(err.to_string().contains("validity_days"), "{err}");
        assert!(err.to_string().contains("after CA"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_chain_that_does_not_validate_is_an_internal_error_and_stores_nothing() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let root = clm
            .create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: dn("CN=Real Root,O=Example"),
                    ..Default::default()
                },
            )
            .await
            .expect("root");
        let intermediate = clm
            .create_intermediate_ca(
                &system,
                root.certificate.id,
                NewCertificateAuthority {
                    subject: dn("CN=Issuing,O=Example"),
                    ..Default::default()
                },
            )
            .await
            .expect("intermediate");
        // Another root of the same name and another key takes the real
        // root's place in the database: the intermediate's signature no
        // longer verifies against its stored chain.
        let impostor = clm
            .create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: dn("CN=Real Root,O=Example"),
                    ..Default::default()
                },
            )
            .await
            .expect("impostor");
        let mut conn = clm.databases().secure.acquire().await.expect("conn");
        common::raw(
            &mut conn.conn(),
            "UPDATE certificates SET certificate_pem = $1 WHERE id = $2",
            vec![
                impostor.certificate.certificate_pem.clone().into(),
                clm::store::id_value(root.certificate.id),
            ],
        )
        .await
        .expect("swap the root's certificate");
        drop(conn);
        let before = counts(&clm).await;
        let err = clm
            .issue_certificate(
                &system,
                request(
                    &intermediate,
                    "CN=Test Leaf",
                    CertificateKind::TlsServer,
                    SubjectAlternativeName::Dns("www.example.com".into()),
                ),
            )
            .await
            .expect_err("self-check refuses");
        assert_eq!(err.code(), ErrorCode::Internal, "{err}");
        assert!(err.to_string().contains("self-check"), "{err}");
        assert_eq!(counts(&clm).await, before, "nothing stored");
    })
    .await;
}
