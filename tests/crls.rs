//! CRLs at scale on both backends: URLs derived from the public base URL,
//! partitioned CRLs (Issuing Distribution Point) and delta CRLs (Delta CRL
//! Indicator, removeFromCRL, Freshest CRL), stored and served as the latest
//! of their scope, refreshed by the lifecycle; every variant checked by
//! `openssl crl -verify` and Python's `cryptography`; bad input refused.

mod common;

use std::path::Path;
use std::process::Command;

use chrono::{Duration, Utc};
use clm::crypto::{DistinguishedName, KeyAlgorithm, crl_partition};
use clm::model::{Certificate, CertificateKind, CrlKind, RevocationReason, SubjectAlternativeName};
use clm::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use clm::service::issuance::{IssueRequest, KeySource};
use clm::service::revocation::{CRL_CHUNK_BYTES, CrlSummary, GeneratedCrl};
use clm::{Clm, ClmConfig, ErrorCode, SecuritySettings};
use common::{on_both_configs, test_master_key, unique};

const BASE: &str = "https://pki.example.test";

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

async fn open(config: ClmConfig, base: Option<&str>) -> Clm {
    let mut config = config
        .with_master_key(test_master_key())
        .with_security(security());
    if let Some(base) = base {
        config = config.with_public_base_url(base);
    }
    Clm::open(config).await.expect("open")
}

/// Runs `body` on both backends with a handle whose public base URL is
/// `BASE` (given with a trailing slash, which open drops).
async fn on_both_with_base<F, Fut>(body: F)
where
    F: Fn(Clm) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let body = &body;
    on_both_configs(|config| async move {
        let clm = open(config, Some(&format!("{BASE}/"))).await;
        body(clm.clone()).await;
        clm.close().await;
    })
    .await;
}

async fn root_ca(clm: &Clm) -> CertificateAuthority {
    clm.create_root_ca(
        &clm.system_actor(),
        NewCertificateAuthority {
            subject: DistinguishedName::common_name(unique("CRL Root")),
            ..Default::default()
        },
    )
    .await
    .expect("root")
}

async fn sub_ca(
    clm: &Clm,
    root: &CertificateAuthority,
    partitions: Option<u32>,
    deltas: bool,
) -> CertificateAuthority {
    clm.create_intermediate_ca(
        &clm.system_actor(),
        root.certificate.id,
        NewCertificateAuthority {
            subject: DistinguishedName::common_name(unique("CRL Issuing CA")),
            validity_days: Some(1000),
            crl_partitions: partitions,
            delta_crls: deltas,
            ..Default::default()
        },
    )
    .await
    .expect("intermediate")
}

fn tls_request(ca: &CertificateAuthority, name: &str) -> IssueRequest {
    IssueRequest {
        issuer_id: ca.certificate.id,
        policy_id: None,
        subject: DistinguishedName::common_name(name),
        sans: vec![SubjectAlternativeName::Dns(name.to_string())],
        kind: CertificateKind::TlsServer,
        validity_days: 30,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: None,
    }
}

async fn issue(clm: &Clm, ca: &CertificateAuthority, name: &str) -> Certificate {
    clm.issue_certificate(&clm.system_actor(), tls_request(ca, name))
        .await
        .expect("issue")
        .certificate()
        .expect("issued at once")
        .clone()
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn python() -> String {
    std::env::var("CLM_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// The CRL a generation reported, as the host serves it (the latest of its
/// scope): same number, entries and size.
async fn served(clm: &Clm, crl: &CrlSummary) -> GeneratedCrl {
    let served = clm
        .latest_crl(
            &clm.system_actor(),
            crl.issuer_certificate_id,
            crl.partition,
            crl.kind == CrlKind::Delta,
        )
        .await
        .expect("latest CRL of the scope");
    assert_eq!(
        (
            served.crl_number,
            served.entry_count,
            served.der.len() as i64
        ),
        (crl.crl_number, crl.entry_count, crl.size_bytes)
    );
    served
}

/// `openssl crl -verify` against the CA (DER input) of the CRL a generation
/// reported, as served; then the CRL as text.
async fn openssl_crl(
    clm: &Clm,
    dir: &Path,
    name: &str,
    crl: &CrlSummary,
    ca: &Certificate,
) -> String {
    let crl = served(clm, crl).await;
    let path = dir.join(format!("{name}.der"));
    let ca_path = dir.join("ca.pem");
    std::fs::write(&path, &crl.der).expect("write crl");
    std::fs::write(&ca_path, &ca.certificate_pem).expect("write ca");
    let (path, ca_path) = (
        path.to_str().expect("path"),
        ca_path.to_str().expect("path"),
    );
    let (ok, out) = run(
        "openssl",
        &[
            "crl", "-inform", "DER", "-in", path, "-CAfile", ca_path, "-verify", "-noout", "-text",
        ],
    );
    assert!(
        ok && out.contains("verify OK"),
        "openssl crl -verify {name}: {out}"
    );
    out
}

fn openssl_text(certificate: &Certificate) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, &certificate.certificate_pem).expect("write");
    let (ok, out) = run(
        "openssl",
        &[
            "x509",
            "-in",
            path.to_str().expect("path"),
            "-noout",
            "-text",
        ],
    );
    assert!(ok, "{out}");
    out
}

/// Python's `cryptography` parses each CRL (DER), checks its signature
/// with the CA's key, and prints what its extensions say.
fn python_crls(dir: &Path, ca: &Certificate, names: &[&str]) -> String {
    let script = r#"
import sys
from cryptography import x509
ca = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
for path in sys.argv[2:]:
    crl = x509.load_der_x509_crl(open(path, "rb").read())
    assert crl.is_signature_valid(ca.public_key()), path
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    parts = [path.rsplit("/", 1)[-1], "number=%d" % number, "entries=%d" % len(list(crl))]
    for ext in crl.extensions:
        v = ext.value
        if isinstance(v, x509.DeltaCRLIndicator):
            parts.append("delta_of=%d critical=%s" % (v.crl_number, ext.critical))
        elif isinstance(v, x509.IssuingDistributionPoint):
            parts.append("idp=%s critical=%s" % (v.full_name[0].value, ext.critical))
        elif isinstance(v, x509.FreshestCRL):
            parts.append("freshest=%s" % v[0].full_name[0].value)
    removed = 0
    for entry in crl:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            if reason == x509.ReasonFlags.remove_from_crl:
                removed += 1
        except x509.ExtensionNotFound:
            pass
    parts.append("removed=%d" % removed)
    print(" ".join(parts))
"#;
    let script_path = dir.join("check.py");
    std::fs::write(&script_path, script).expect("script");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, &ca.certificate_pem).expect("write ca");
    let mut args = vec![
        script_path.to_str().expect("path").to_string(),
        ca_path.to_str().expect("path").to_string(),
    ];
    args.extend(names.iter().map(|n| {
        dir.join(format!("{n}.der"))
            .to_str()
            .expect("path")
            .to_string()
    }));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (ok, out) = run(&python(), &args);
    assert!(ok, "python cryptography rejected a CRL:\n{out}");
    out
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{name}.der ")))
        .unwrap_or_else(|| panic!("{name} missing from:\n{out}"))
}

fn serial(certificate: &Certificate) -> Vec<u8> {
    hex::decode(&certificate.serial_number).expect("hex serial")
}

fn assert_code<T: std::fmt::Debug>(result: clm::Result<T>, code: ErrorCode) -> clm::Error {
    match result {
        Ok(value) => panic!("expected {code:?}, got {value:?}"),
        Err(err) => {
            assert_eq!(err.code(), code, "{err}");
            err
        }
    }
}

#[tokio::test]
async fn crls_full_partitioned_and_delta_verify_with_openssl_and_python() {
    on_both_with_base(|clm| async move {
        let system = clm.system_actor();
        let root = root_ca(&clm).await;
        let ca = sub_ca(&clm, &root, Some(3), true).await;
        let id = ca.certificate.id;

        // Certificates point to their partition's CRL and delta CRL, and to
        // the shared OCSP and CA-issuers URLs, all derived from the base.
        let mut leaves = Vec::new();
        for i in 0..9 {
            leaves.push(issue(&clm, &ca, &format!("p{i}.{}.example.com", unique("crl"))).await);
        }
        for leaf in &leaves {
            let partition = crl_partition(&serial(leaf), 3);
            let text = openssl_text(leaf);
            for url in [
                format!("{BASE}/crl/{id}/{partition}.crl"),
                format!("{BASE}/crl/{id}/{partition}/delta.crl"),
                format!("{BASE}/ocsp"),
                format!("{BASE}/ca/{id}.crt"),
            ] {
                assert!(text.contains(&url), "{url} missing:\n{text}");
            }
            assert!(text.contains("X509v3 Freshest CRL"), "{text}");
        }
        // The intermediate itself points to its root's (unpartitioned) CRL.
        let text = openssl_text(&ca.certificate);
        assert!(
            text.contains(&format!("{BASE}/crl/{}.crl", root.certificate.id)),
            "{text}"
        );

        for leaf in &leaves[..5] {
            clm.revoke_certificate(&system, leaf.id, RevocationReason::Superseded, None)
                .await
                .expect("revoke");
        }
        clm.revoke_certificate(
            &system,
            leaves[5].id,
            RevocationReason::CertificateHold,
            None,
        )
        .await
        .expect("hold");

        let dir = tempfile::tempdir().expect("tempdir");
        let full = clm.generate_crl(&system, id, None).await.expect("full");
        assert_eq!(
            (full.kind, full.partition, full.entry_count),
            (CrlKind::Full, None, 6)
        );
        let text = openssl_crl(&clm, dir.path(), "full", &full, &ca.certificate).await;
        assert!(
            text.contains(&format!("{BASE}/crl/{id}/delta.crl")),
            "{text}"
        );
        assert!(!text.contains("Issuing Distribution Point"), "{text}");

        let mut listed = 0;
        let mut last_number = full.crl_number;
        for partition in 0..3 {
            let crl = clm
                .generate_scoped_crl(&system, id, Some(partition), false, None)
                .await
                .expect("partition CRL");
            assert!(crl.crl_number > last_number, "one number sequence per CA");
            last_number = crl.crl_number;
            let expected = leaves[..6]
                .iter()
                .filter(|l| crl_partition(&serial(l), 3) == partition)
                .count();
            assert_eq!(crl.entry_count, expected as i64);
            listed += crl.entry_count;
            let text = openssl_crl(
                &clm,
                dir.path(),
                &format!("part{partition}"),
                &crl,
                &ca.certificate,
            )
            .await;
            assert!(text.contains("Issuing Distribution Point"), "{text}");
            assert!(
                text.contains(&format!("{BASE}/crl/{id}/{partition}.crl")),
                "{text}"
            );
            for leaf in &leaves[..6] {
                let on_it = text.contains(&leaf.serial_number.to_uppercase());
                assert_eq!(on_it, crl_partition(&serial(leaf), 3) == partition);
            }
        }
        assert_eq!(listed, 6, "every revocation is on exactly one partition");

        // A delta after the hold is released and one more revocation.
        clm.release_certificate_hold(&system, leaves[5].id)
            .await
            .expect("release");
        clm.revoke_certificate(&system, leaves[6].id, RevocationReason::KeyCompromise, None)
            .await
            .expect("revoke");
        let delta = clm
            .generate_scoped_crl(&system, id, None, true, None)
            .await
            .expect("delta");
        assert_eq!(delta.kind, CrlKind::Delta);
        assert_eq!(delta.base_crl_number, Some(full.crl_number));
        assert!(delta.crl_number > last_number);
        let text = openssl_crl(&clm, dir.path(), "delta", &delta, &ca.certificate).await;
        assert!(text.contains("Delta CRL Indicator"), "{text}");
        assert!(text.contains("Remove From CRL"), "{text}");
        assert!(
            text.contains(&leaves[6].serial_number.to_uppercase()),
            "{text}"
        );
        let partition = crl_partition(&serial(&leaves[6]), 3);
        let part_delta = clm
            .generate_scoped_crl(&system, id, Some(partition), true, None)
            .await
            .expect("partition delta");
        let text = openssl_crl(&clm, dir.path(), "partdelta", &part_delta, &ca.certificate).await;
        assert!(
            text.contains(&format!("{BASE}/crl/{id}/{partition}.crl")),
            "{text}"
        );

        // The second parser agrees on every extension.
        let out = python_crls(
            dir.path(),
            &ca.certificate,
            &["full", "part0", "part1", "part2", "delta", "partdelta"],
        );
        assert!(
            line(&out, "full").contains(&format!("freshest={BASE}/crl/{id}/delta.crl")),
            "{out}"
        );
        assert!(line(&out, "full").contains("entries=6"), "{out}");
        assert!(
            line(&out, "part1").contains(&format!("idp={BASE}/crl/{id}/1.crl critical=True")),
            "{out}"
        );
        assert!(
            line(&out, "part1").contains(&format!("freshest={BASE}/crl/{id}/1/delta.crl")),
            "{out}"
        );
        let delta_line = line(&out, "delta");
        assert!(
            delta_line.contains(&format!("delta_of={} critical=True", full.crl_number)),
            "{out}"
        );
        assert!(delta_line.contains("removed=1"), "{out}");
        assert!(!delta_line.contains("freshest="), "{out}");
        assert!(line(&out, "partdelta").contains("delta_of="), "{out}");

        // What hosts serve: the latest of each scope.
        let latest = clm
            .latest_crl(&system, id, None, false)
            .await
            .expect("latest");
        assert_eq!(
            (latest.crl_number, latest.der.len() as i64),
            (full.crl_number, full.size_bytes)
        );
        let latest = clm
            .latest_crl(&system, id, None, true)
            .await
            .expect("latest delta");
        assert_eq!(
            (latest.crl_number, latest.der.len() as i64),
            (delta.crl_number, delta.size_bytes)
        );
        let again = clm
            .generate_crl(&system, id, None)
            .await
            .expect("full again");
        let latest = clm
            .latest_crl(&system, id, None, false)
            .await
            .expect("latest");
        assert_eq!(latest.crl_number, again.crl_number);
        assert_eq!(again.entry_count, 6, "released hold off, new revocation on");
        assert_code(
            clm.latest_crl(&system, root.certificate.id, None, false)
                .await,
            ErrorCode::NotFound,
        );
    })
    .await;
}

#[tokio::test]
async fn crl_settings_and_requests_refuse_bad_input() {
    on_both_configs(|config| async move {
        let clm = open(config.clone(), None).await;
        let system = clm.system_actor();
        let root = root_ca(&clm).await;
        for (partitions, field) in [(Some(0), "crl_partitions"), (Some(5000), "crl_partitions")] {
            let err = assert_code(
                clm.create_intermediate_ca(
                    &system,
                    root.certificate.id,
                    NewCertificateAuthority {
                        subject: DistinguishedName::common_name("Bad partitions"),
                        validity_days: Some(100),
                        crl_partitions: partitions,
                        crl_distribution_points: vec!["http://crl.example.test/a.crl".into()],
                        ..Default::default()
                    },
                )
                .await,
                ErrorCode::InvalidInput,
            );
            assert!(err.to_string().contains(field), "{err}");
        }
        // Partitions and deltas need a CRL URL to publish under.
        assert_code(
            clm.create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: DistinguishedName::common_name("No URL"),
                    crl_partitions: Some(4),
                    ..Default::default()
                },
            )
            .await,
            ErrorCode::InvalidInput,
        );
        assert_code(
            clm.create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: DistinguishedName::common_name("No URL"),
                    delta_crls: true,
                    ..Default::default()
                },
            )
            .await,
            ErrorCode::InvalidInput,
        );
        let explicit = clm
            .create_intermediate_ca(
                &system,
                root.certificate.id,
                NewCertificateAuthority {
                    subject: DistinguishedName::common_name("Explicit URLs"),
                    validity_days: Some(100),
                    crl_partitions: Some(2),
                    crl_distribution_points: vec!["http://crl.example.test/issuing.crl".into()],
                    ..Default::default()
                },
            )
            .await
            .expect("explicit CRL URL");
        let id = explicit.certificate.id;
        // Out of range partitions, a delta of a CA without deltas, a delta
        // before any complete CRL, a partition of an unpartitioned CA.
        assert_code(
            clm.generate_scoped_crl(&system, id, Some(2), false, None)
                .await,
            ErrorCode::InvalidInput,
        );
        assert_code(
            clm.generate_scoped_crl(&system, id, None, true, None).await,
            ErrorCode::InvalidInput,
        );
        assert_code(
            clm.generate_scoped_crl(&system, root.certificate.id, Some(0), false, None)
                .await,
            ErrorCode::InvalidInput,
        );
        assert_code(
            clm.generate_scoped_crl(&system, id, Some(0), false, Some(0))
                .await,
            ErrorCode::InvalidInput,
        );
        let part = clm
            .generate_scoped_crl(&system, id, Some(1), false, None)
            .await
            .expect("partition 1");
        let dir = tempfile::tempdir().expect("tempdir");
        let text = openssl_crl(&clm, dir.path(), "explicit", &part, &explicit.certificate).await;
        assert!(
            text.contains("http://crl.example.test/issuing/1.crl"),
            "{text}"
        );
        assert_code(
            clm.latest_crl(&system, id, Some(100_000), false).await,
            ErrorCode::InvalidInput,
        );
        clm.close().await;

        let deltas = open(config.clone(), Some(BASE)).await;
        let system = deltas.system_actor();
        let root = root_ca(&deltas).await;
        let ca = sub_ca(&deltas, &root, None, true).await;
        assert_code(
            deltas
                .generate_scoped_crl(&system, ca.certificate.id, None, true, None)
                .await,
            ErrorCode::Conflict,
        );
        deltas.close().await;

        // The public base URL is checked when the handle opens.
        for bad in [
            "ftp://pki.example.test",
            "https://pki.example.test/?x=1",
            "https://pki.example.test/#top",
            "https://user@pki.example.test",
            "https://",
            "pki.example.test",
            "https://pki example.test",
        ] {
            let err = Clm::open(
                config
                    .clone()
                    .with_master_key(test_master_key())
                    .with_public_base_url(bad),
            )
            .await
            .expect_err(bad);
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{bad}: {err}");
        }
        let env = ClmConfig::from_vars(|name| match name {
            "CLM_DATA_DIR" => Some("/tmp/unused".into()),
            "CLM_PUBLIC_BASE_URL" => Some("https://x.test/crl?no".into()),
            _ => None,
        });
        assert!(env.is_err());
        let env = ClmConfig::from_vars(|name| match name {
            "CLM_DATA_DIR" => Some("/tmp/unused".into()),
            "CLM_PUBLIC_BASE_URL" => Some("https://x.test/pki/".into()),
            _ => None,
        })
        .expect("env");
        assert_eq!(env.public_base_url.as_deref(), Some("https://x.test/pki"));
    })
    .await;
}

#[tokio::test]
async fn dry_run_warns_about_a_tls_server_certificate_without_revocation_pointers() {
    on_both_configs(|config| async move {
        let bare = open(config.clone(), None).await;
        let root = root_ca(&bare).await;
        let report = bare
            .dry_run_issuance(&bare.system_actor(), tls_request(&root, "bare.example.com"))
            .await
            .expect("dry run");
        assert!(report.allowed);
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(
            report.warnings[0].contains("revocation"),
            "{:?}",
            report.warnings
        );
        bare.close().await;

        // The same CA with a base URL configured derives its pointers.
        let based = open(config, Some(BASE)).await;
        let report = based
            .dry_run_issuance(
                &based.system_actor(),
                tls_request(&root, "based.example.com"),
            )
            .await
            .expect("dry run");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        assert_eq!(
            report.would_issue.crl_distribution_points,
            vec![format!("{BASE}/crl/{}.crl", root.certificate.id)]
        );
        assert_eq!(report.would_issue.ocsp_urls, vec![format!("{BASE}/ocsp")]);
        based.close().await;
    })
    .await;
}

#[tokio::test]
async fn lifecycle_signs_every_scope_ahead_of_next_update() {
    on_both_with_base(|clm| async move {
        let system = clm.system_actor();
        let root = root_ca(&clm).await;
        let ca = sub_ca(&clm, &root, Some(2), true).await;
        let leaf = issue(&clm, &ca, &format!("{}.example.com", unique("life"))).await;
        clm.revoke_certificate(&system, leaf.id, RevocationReason::KeyCompromise, None)
            .await
            .expect("revoke");

        // Root: its whole CRL; the CA: whole + 2 partitions, each with a delta.
        let now = Utc::now();
        let first = clm.run_lifecycle(&system, now).await.expect("lifecycle");
        assert!(first.crls.errors.is_empty(), "{:?}", first.crls.errors);
        assert_eq!(first.crls.generated, 1 + 3 * 2);
        assert_eq!(
            first.crls.entries, 4,
            "whole, its delta, a partition and its delta"
        );
        let id = ca.certificate.id;
        for partition in [None, Some(0), Some(1)] {
            for delta in [false, true] {
                let crl = clm
                    .latest_crl(&system, id, partition, delta)
                    .await
                    .expect("every scope is stored");
                assert!(crl.next_update > now);
            }
        }
        let partition = crl_partition(&serial(&leaf), 2);
        let listed = clm
            .latest_crl(&system, id, Some(partition), false)
            .await
            .expect("partition");
        assert_eq!(listed.entry_count, 1);

        // Nothing is due right after; past half the validity all are again.
        let second = clm.run_lifecycle(&system, Utc::now()).await.expect("again");
        assert_eq!(second.crls.generated, 0);
        let later = clm
            .run_lifecycle(&system, Utc::now() + Duration::hours(13))
            .await
            .expect("later");
        assert_eq!(later.crls.generated, first.crls.generated);
    })
    .await;
}

/// A CRL larger than one stored chunk: generation reports its size, the
/// whole read and the chunked read give the same bytes, openssl and Python
/// verify it; a reader opened on it finishes after the next CRL is signed
/// (the previous one stays stored) and is told to reopen after the one after
/// that, never handed a mix of two CRLs.
#[tokio::test]
async fn crls_larger_than_a_chunk_are_stored_and_served_in_chunks() {
    const REVOKED: usize = 8_000;
    on_both_with_base(|clm| async move {
        let system = clm.system_actor();
        let ca = root_ca(&clm).await;
        let id = ca.certificate.id;
        common::revoke_in_bulk(&clm, id, REVOKED).await;

        let first = clm.generate_crl(&system, id, None).await.expect("CRL");
        assert_eq!(first.entry_count, REVOKED as i64);
        assert!(
            first.size_bytes > CRL_CHUNK_BYTES as i64,
            "{} bytes fit one chunk",
            first.size_bytes
        );
        let whole = served(&clm, &first).await;

        let mut reader = clm
            .open_latest_crl(&system, id, None, false)
            .await
            .expect("open");
        assert_eq!(reader.summary(), &first);
        let mut chunked = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = reader.next_chunk().await.expect("chunk") {
            assert!(chunk.len() <= CRL_CHUNK_BYTES);
            chunked.extend(chunk);
            chunks += 1;
        }
        assert_eq!(chunks, 2);
        assert_eq!(chunked, whole.der);
        assert_eq!(reader.next_chunk().await.expect("after the end"), None);

        let dir = tempfile::tempdir().expect("tempdir");
        let text = openssl_crl(&clm, dir.path(), "large", &first, &ca.certificate).await;
        assert!(text.contains("X509v3 CRL Number"), "{}", &text[..200]);
        let out = python_crls(dir.path(), &ca.certificate, &["large"]);
        assert!(
            line(&out, "large").contains(&format!("entries={REVOKED}")),
            "{out}"
        );

        // A host streaming CRL 1 while CRL 2 is signed still gets CRL 1
        // whole; once CRL 3 is signed, CRL 1 is gone and the reader says so.
        let mut slow = clm
            .open_latest_crl(&system, id, None, false)
            .await
            .expect("open");
        let head = slow
            .next_chunk()
            .await
            .expect("first chunk")
            .expect("bytes");
        let second = clm.generate_crl(&system, id, None).await.expect("CRL 2");
        let mut rest = head;
        while let Some(chunk) = slow.next_chunk().await.expect("CRL 1 after CRL 2") {
            rest.extend(chunk);
        }
        assert_eq!(rest, whole.der, "the reader mixed two CRLs");
        let mut stale = clm
            .open_latest_crl(&system, id, None, false)
            .await
            .expect("open");
        assert_eq!(stale.summary().crl_number, second.crl_number);
        stale.next_chunk().await.expect("first chunk of CRL 2");
        clm.generate_crl(&system, id, None).await.expect("CRL 3");
        clm.generate_crl(&system, id, None).await.expect("CRL 4");
        let err = assert_code(stale.next_chunk().await, ErrorCode::Conflict);
        assert!(err.to_string().contains("open the latest again"), "{err}");
    })
    .await;
}
