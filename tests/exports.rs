//! Exports on both backends: every artifact (PEM, DER, PEM chain, PKCS #7,
//! PKCS #12 modern and legacy, encrypted and plain PKCS #8) is opened by the
//! `openssl` command and Python's `cryptography`; bad input is refused by
//! name with nothing audited; every export is audited without its secrets.

mod common;

use std::path::Path;
use std::process::Command;

use clm::api::{self, Reply};
use clm::crypto::{DistinguishedName, KeyAlgorithm, KeyPair, SecretString, build_csr};
use clm::model::{
    AuditEvent, Certificate, CertificateId, CertificateKind, OrganizationId, SubjectAlternativeName,
};
use clm::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use clm::service::exports::{CertificateFormat, KeyFormat, Pkcs12Options, PrivateKeyExportOptions};
use clm::service::issuance::{IssueRequest, KeySource};
use clm::store::audit::AuditLogKind;
use clm::{Clm, ErrorCode, SecuritySettings};
use common::{on_both_keyed, unique};
use serde_json::{Value, json};

const PASSWORD: &str = "Correct horse battery 9";
/// The lowest count allowed: keeps the suite fast where the default is not the point.
const FAST: Option<u32> = Some(10_000);

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

fn password() -> SecretString {
    SecretString::from(PASSWORD)
}

/// Root (RSA-2048) -> intermediate (P-256) of `org`.
async fn hierarchy(
    clm: &Clm,
    org: Option<OrganizationId>,
) -> (CertificateAuthority, CertificateAuthority) {
    let system = clm.system_actor();
    let root = clm
        .create_root_ca(
            &system,
            NewCertificateAuthority {
                subject: DistinguishedName::common_name(unique("Export Root")),
                key_algorithm: KeyAlgorithm::Rsa2048,
                validity_days: Some(3650),
                organization_id: org,
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
                subject: DistinguishedName::common_name(unique("Export Issuing")),
                key_algorithm: KeyAlgorithm::EcdsaP256,
                validity_days: Some(1825),
                path_len: Some(0),
                organization_id: org,
                ..Default::default()
            },
        )
        .await
        .expect("intermediate");
    (root, intermediate)
}

fn request(issuer: CertificateId, key: KeySource, org: Option<OrganizationId>) -> IssueRequest {
    IssueRequest {
        issuer_id: issuer,
        policy_id: None,
        subject: DistinguishedName::common_name("server.example.com"),
        sans: vec![SubjectAlternativeName::Dns("server.example.com".into())],
        kind: CertificateKind::TlsServer,
        validity_days: 90,
        key,
        owner_user_id: None,
        organization_id: org,
    }
}

async fn leaf(clm: &Clm, issuer: CertificateId, org: Option<OrganizationId>) -> Certificate {
    clm.issue_certificate(
        &clm.system_actor(),
        request(issuer, KeySource::Generate(KeyAlgorithm::EcdsaP256), org),
    )
    .await
    .expect("issue")
    .into_certificate()
    .expect("issued")
}

async fn events(clm: &Clm, kind: AuditLogKind, event_type: &str) -> Vec<AuditEvent> {
    let pool = match kind {
        AuditLogKind::Secure => &clm.databases().secure,
        AuditLogKind::Core => &clm.databases().core,
    };
    let mut conn = pool.acquire().await.expect("conn");
    clm::store::audit::by_event_type(&mut conn.conn(), kind, event_type)
        .await
        .expect("audit")
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

fn openssl(dir: &Path, args: &[&str]) -> String {
    let (ok, out) = run(dir, "openssl", args);
    assert!(ok, "openssl {args:?} failed:\n{out}");
    out
}

fn python() -> String {
    std::env::var("CLM_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn python_ok(dir: &Path, script: &str) -> String {
    let (ok, out) = run(dir, &python(), &["-c", script]);
    assert!(ok, "python cryptography failed:\n{out}");
    out
}

fn pass_arg() -> String {
    format!("pass:{PASSWORD}")
}

#[tokio::test]
async fn certificate_exports_open_in_openssl_and_cryptography() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let (root, intermediate) = hierarchy(&clm, None).await;
        let leaf = leaf(&clm, intermediate.certificate.id, None).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        let before = events(&clm, AuditLogKind::Core, "certificate.exported")
            .await
            .len();

        let mut files = Vec::new();
        for (format, name, count) in [
            (CertificateFormat::Pem, "leaf.pem", 1),
            (CertificateFormat::Der, "leaf.der", 1),
            (CertificateFormat::PemChain, "chain.pem", 3),
            (CertificateFormat::Pkcs7Der, "chain.p7b", 3),
            (CertificateFormat::Pkcs7Pem, "chain.p7.pem", 3),
        ] {
            let export = clm
                .export_certificate(&system, leaf.id, format)
                .await
                .expect("export");
            assert_eq!(export.certificates, count, "{format:?}");
            assert_eq!(
                export.text.is_some(),
                !matches!(format, CertificateFormat::Der | CertificateFormat::Pkcs7Der)
            );
            std::fs::write(path.join(name), &export.data).expect("write");
            files.push(name);
        }
        assert_eq!(
            std::fs::read_to_string(path.join("leaf.pem")).expect("pem"),
            leaf.certificate_pem
        );
        let from_der = openssl(
            path,
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                "leaf.der",
                "-noout",
                "-fingerprint",
                "-sha256",
            ],
        );
        assert!(
            from_der
                .replace(':', "")
                .to_lowercase()
                .contains(&leaf.fingerprint_sha256),
            "{from_der}"
        );
        // The chain: leaf first, root last; it verifies with the root as anchor.
        let chain = std::fs::read_to_string(path.join("chain.pem")).expect("chain");
        let blocks: Vec<&str> = chain
            .split_inclusive("-----END CERTIFICATE-----\n")
            .collect();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0], leaf.certificate_pem);
        assert_eq!(blocks[1], intermediate.certificate.certificate_pem);
        assert_eq!(blocks[2], root.certificate.certificate_pem);
        std::fs::write(path.join("root.pem"), blocks[2]).expect("root");
        std::fs::write(path.join("inter.pem"), blocks[1]).expect("inter");
        let verified = openssl(
            path,
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "inter.pem",
                "leaf.pem",
            ],
        );
        assert!(verified.contains("leaf.pem: OK"), "{verified}");
        for (args, file) in [
            (vec!["-inform", "DER"], "chain.p7b"),
            (vec![], "chain.p7.pem"),
        ] {
            let mut all = vec!["pkcs7"];
            all.extend(args);
            all.extend(["-in", file, "-print_certs", "-noout"]);
            let printed = openssl(path, &all);
            assert_eq!(printed.matches("subject=").count(), 3, "{printed}");
            assert!(printed.contains("server.example.com"), "{printed}");
        }
        let out = python_ok(
            path,
            r#"
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
leaf = x509.load_pem_x509_certificate(open("leaf.pem", "rb").read())
assert x509.load_der_x509_certificate(open("leaf.der", "rb").read()) == leaf
chain = x509.load_pem_x509_certificates(open("chain.pem", "rb").read())
assert chain[0] == leaf and len(chain) == 3
der = pkcs7.load_der_pkcs7_certificates(open("chain.p7b", "rb").read())
pem = pkcs7.load_pem_pkcs7_certificates(open("chain.p7.pem", "rb").read())
assert set(der) == set(pem) == set(chain), (der, pem)
print("ok")
"#,
        );
        assert_eq!(out.trim(), "ok");
        let after = events(&clm, AuditLogKind::Core, "certificate.exported").await;
        assert_eq!(after.len(), before + files.len());
        let last = after.last().expect("event");
        assert_eq!(last.details.0["format"], "pkcs7_pem");
        assert_eq!(last.details.0["certificates"], 3);

        // A root alone is its own chain.
        let export = clm
            .export_certificate(&system, root.certificate.id, CertificateFormat::PemChain)
            .await
            .expect("root chain");
        assert_eq!(export.certificates, 1);
    })
    .await;
}

/// The elements of the DER value at the start of `bytes`: (tag, whole TLV).
fn der_children(value: &[u8]) -> Vec<(u8, &[u8])> {
    let mut rest = value;
    let mut children = Vec::new();
    while !rest.is_empty() {
        let (tag, header, len) = der_header(rest);
        children.push((tag, &rest[..header + len]));
        rest = &rest[header + len..];
    }
    children
}

/// (tag, header length, content length) of the DER element at the start of `bytes`.
fn der_header(bytes: &[u8]) -> (u8, usize, usize) {
    let first = usize::from(bytes[1]);
    if first < 0x80 {
        return (bytes[0], 2, first);
    }
    let count = first & 0x7f;
    let len = bytes[2..2 + count]
        .iter()
        .fold(0usize, |acc, byte| (acc << 8) | usize::from(*byte));
    (bytes[0], 2 + count, len)
}

fn der_content(element: &[u8]) -> &[u8] {
    let (_, header, len) = der_header(element);
    &element[header..header + len]
}

/// Checks a certs-only PKCS #7 bundle: the certificates' SET OF is in DER
/// order (sorted by the elements' encodings, X.690 §11.6), `openssl` prints
/// `count` certificates and pyca/cryptography loads them with warnings made
/// errors (it warns about a SET OF out of order).
fn assert_der_ordered_pkcs7(dir: &Path, file: &str, bundle: &[u8], count: usize) {
    // ContentInfo { contentType, [0] { SignedData { version,
    // digestAlgorithms, encapContentInfo, [0] certificates, signerInfos } } }
    let content_info = der_children(bundle);
    assert_eq!(content_info.len(), 1);
    let fields = der_children(der_content(content_info[0].1));
    let signed_data = der_children(der_content(fields[1].1));
    let signed_fields = der_children(der_content(signed_data[0].1));
    let (tag, certificates) = signed_fields[3];
    assert_eq!(tag, 0xa0, "certificates [0] IMPLICIT SET OF");
    let elements: Vec<&[u8]> = der_children(der_content(certificates))
        .into_iter()
        .map(|(_, element)| element)
        .collect();
    assert_eq!(elements.len(), count);
    assert!(
        elements.windows(2).all(|pair| pair[0] <= pair[1]),
        "{file}: the certificates are not in DER order"
    );
    std::fs::write(dir.join(file), bundle).expect("write");
    let printed = openssl(
        dir,
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            file,
            "-print_certs",
            "-noout",
        ],
    );
    assert_eq!(printed.matches("subject=").count(), count, "{printed}");
    let out = python_ok(
        dir,
        &format!(
            r#"
import warnings
warnings.simplefilter("error")
from cryptography.hazmat.primitives.serialization import pkcs7
with open("{file}", "rb") as f:
    certificates = pkcs7.load_der_pkcs7_certificates(f.read())
assert len(certificates) == {count}, certificates
print("ok")
"#
        ),
    );
    assert_eq!(out.trim(), "ok", "{file}");
}

/// Certificates of one shape differ in their encodings' bytes where the
/// field-by-field order the `cms` crate sorts by disagrees: a bundle of
/// several, and the exported chains for each leaf key algorithm, are in DER
/// order and read by openssl and pyca/cryptography without a warning.
#[tokio::test]
async fn pkcs7_certificate_set_is_in_der_order() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let (_, intermediate) = hierarchy(&clm, None).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        let mut leaves = Vec::new();
        for _ in 0..8 {
            let leaf = leaf(&clm, intermediate.certificate.id, None).await;
            leaves.push(
                clm::crypto::parse_certificates(leaf.certificate_pem.as_bytes())
                    .expect("parse")
                    .remove(0)
                    .der,
            );
        }
        let bundle = clm::crypto::pkcs7::certs_only(&leaves).expect("bundle");
        assert_der_ordered_pkcs7(path, "leaves.p7b", &bundle, leaves.len());

        for algorithm in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::EcdsaP384,
        ] {
            let leaf = clm
                .issue_certificate(
                    &system,
                    request(
                        intermediate.certificate.id,
                        KeySource::Generate(algorithm),
                        None,
                    ),
                )
                .await
                .expect("issue")
                .into_certificate()
                .expect("issued");
            let export = clm
                .export_certificate(&system, leaf.id, CertificateFormat::Pkcs7Der)
                .await
                .expect("export");
            assert_der_ordered_pkcs7(path, &format!("{algorithm:?}.p7b"), &export.data, 3);
        }
    })
    .await;
}

#[tokio::test]
async fn pkcs12_modern_and_legacy_open_in_openssl_and_cryptography() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let (_, intermediate) = hierarchy(&clm, None).await;
        let leaf = leaf(&clm, intermediate.certificate.id, None).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        let before = events(&clm, AuditLogKind::Secure, "private_key.exported").await.len();

        // Modern, with the default work factor.
        let modern = clm
            .export_pkcs12(&system, leaf.id, password(), Pkcs12Options::default())
            .await
            .expect("pkcs12");
        assert_eq!(modern.certificates, 3);
        assert_eq!(modern.iterations, clm::crypto::pbe::DEFAULT_ITERATIONS);
        assert_eq!(modern.friendly_name, "server.example.com");
        std::fs::write(path.join("modern.p12"), &modern.data).expect("write");
        let info = openssl(
            path,
            &["pkcs12", "-info", "-in", "modern.p12", "-passin", &pass_arg(), "-noenc"],
        );
        for expected in [
            "MAC: sha256, Iteration 600000",
            "PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256",
            "friendlyName: server.example.com",
            "BEGIN PRIVATE KEY",
            &format!("localKeyID: {}", spaced_hex(&modern.local_key_id)),
        ] {
            assert!(info.contains(expected), "missing {expected:?} in\n{info}");
        }
        assert_eq!(info.matches("BEGIN CERTIFICATE").count(), 3, "{info}");
        let (ok, out) = run(
            path,
            "openssl",
            &["pkcs12", "-info", "-in", "modern.p12", "-passin", "pass:wrong password", "-noenc"],
        );
        assert!(!ok && out.contains("Mac verify error"), "{out}");

        // Legacy, on request; OpenSSL 3 reads it only with -legacy (RC2).
        let legacy = clm
            .export_pkcs12(
                &system,
                leaf.id,
                password(),
                Pkcs12Options {
                    encryption: clm::crypto::Pkcs12Encryption::Legacy,
                    friendly_name: Some("Legacy näme".into()),
                    include_chain: false,
                    iterations: FAST,
                },
            )
            .await
            .expect("legacy pkcs12");
        assert_eq!(legacy.certificates, 1);
        std::fs::write(path.join("legacy.p12"), &legacy.data).expect("write");
        let info = openssl(
            path,
            &["pkcs12", "-legacy", "-info", "-in", "legacy.p12", "-passin", &pass_arg(), "-noenc"],
        );
        for expected in [
            "MAC: sha1, Iteration 10000",
            "pbeWithSHA1And40BitRC2-CBC, Iteration 10000",
            "pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 10000",
            "BEGIN PRIVATE KEY",
        ] {
            assert!(info.contains(expected), "missing {expected:?} in\n{info}");
        }
        assert_eq!(info.matches("BEGIN CERTIFICATE").count(), 1, "{info}");

        let script = format!(
            r#"
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12, Encoding, PublicFormat
pw = {PASSWORD:?}.encode()
leaf = x509.load_pem_x509_certificate({pem:?}.encode())
spki = lambda k: k.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
for name, name_expected, extra in [("modern.p12", b"server.example.com", 2), ("legacy.p12", "Legacy näme".encode(), 0)]:
    data = open(name, "rb").read()
    p12 = pkcs12.load_pkcs12(data, pw)
    assert p12.cert.certificate == leaf, name
    assert p12.cert.friendly_name == name_expected, (name, p12.cert.friendly_name)
    assert len(p12.additional_certs) == extra, (name, p12.additional_certs)
    assert spki(p12.key) == spki(leaf), name
    key, cert, more = pkcs12.load_key_and_certificates(data, pw)
    assert cert == leaf and len(more) == extra
    try:
        pkcs12.load_pkcs12(data, b"wrong password")
        raise SystemExit("a wrong password opened " + name)
    except ValueError:
        pass
print("ok")
"#,
            pem = leaf.certificate_pem,
        );
        assert_eq!(python_ok(path, &script).trim(), "ok");

        let after = events(&clm, AuditLogKind::Secure, "private_key.exported").await;
        assert_eq!(after.len(), before + 2);
        let last = &after.last().expect("event").details.0;
        assert_eq!(last["format"], "PKCS#12");
        assert_eq!(last["encryption"], "legacy");
        let text = serde_json::to_string(&after).expect("json");
        assert!(!text.contains(PASSWORD), "the password reached the audit trail");
    })
    .await;
}

fn spaced_hex(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).expect("hex").to_uppercase())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn private_keys_export_plain_and_encrypted_as_pem_and_der() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let (_, intermediate) = hierarchy(&clm, None).await;
        let leaf = leaf(&clm, intermediate.certificate.id, None).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        std::fs::write(path.join("leaf.pem"), &leaf.certificate_pem).expect("write");
        let before = events(&clm, AuditLogKind::Secure, "private_key.exported").await;

        let mut written = Vec::new();
        for (format, encrypted, name) in [
            (KeyFormat::Pem, false, "plain.pem"),
            (KeyFormat::Der, false, "plain.der"),
            (KeyFormat::Pem, true, "enc.pem"),
            (KeyFormat::Der, true, "enc.der"),
        ] {
            let export = clm
                .export_private_key_with(
                    &system,
                    leaf.id,
                    PrivateKeyExportOptions {
                        format,
                        password: encrypted.then(password),
                        iterations: if encrypted { FAST } else { None },
                    },
                )
                .await
                .expect("export key");
            assert_eq!(export.encrypted, encrypted);
            std::fs::write(path.join(name), export.data.expose()).expect("write");
            written.push(name);
        }
        let plain_pem = std::fs::read_to_string(path.join("plain.pem")).expect("pem");
        assert!(plain_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(
            plain_pem,
            clm.export_private_key(&system, leaf.id)
                .await
                .expect("pem")
                .expose()
        );
        let enc_pem = std::fs::read_to_string(path.join("enc.pem")).expect("pem");
        assert!(enc_pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));

        let cert_key = openssl(path, &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
        for args in [
            vec!["pkey", "-in", "plain.pem", "-pubout"],
            vec!["pkey", "-inform", "DER", "-in", "plain.der", "-pubout"],
            vec!["pkey", "-in", "enc.pem", "-passin", &pass_arg(), "-pubout"],
            vec![
                "pkey",
                "-inform",
                "DER",
                "-in",
                "enc.der",
                "-passin",
                &pass_arg(),
                "-pubout",
            ],
        ] {
            assert_eq!(openssl(path, &args), cert_key, "{args:?}");
        }
        let parsed = openssl(path, &["asn1parse", "-in", "enc.pem"]);
        for expected in ["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"] {
            assert!(parsed.contains(expected), "missing {expected} in\n{parsed}");
        }
        let pkcs8 = openssl(path, &["pkcs8", "-in", "enc.pem", "-passin", &pass_arg()]);
        assert_eq!(pkcs8, plain_pem);
        let (ok, _) = run(
            path,
            "openssl",
            &[
                "pkcs8",
                "-in",
                "enc.pem",
                "-passin",
                "pass:not the password",
            ],
        );
        assert!(!ok, "a wrong password opened the key");

        let script = format!(
            r#"
from cryptography import x509
from cryptography.hazmat.primitives import serialization as s
pw = {PASSWORD:?}.encode()
leaf = x509.load_pem_x509_certificate(open("leaf.pem", "rb").read())
spki = lambda k: k.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
keys = [
    s.load_pem_private_key(open("plain.pem", "rb").read(), None),
    s.load_der_private_key(open("plain.der", "rb").read(), None),
    s.load_pem_private_key(open("enc.pem", "rb").read(), pw),
    s.load_der_private_key(open("enc.der", "rb").read(), pw),
]
assert all(spki(k) == spki(leaf) for k in keys)
print("ok")
"#
        );
        assert_eq!(python_ok(path, &script).trim(), "ok");

        let after = events(&clm, AuditLogKind::Secure, "private_key.exported").await;
        assert_eq!(after.len(), before.len() + written.len() + 1);
        let formats: Vec<String> = after[before.len()..]
            .iter()
            .map(|event| {
                event.details.0["format"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        assert_eq!(
            formats,
            [
                "PKCS#8 PEM",
                "PKCS#8 DER",
                "encrypted PKCS#8 PEM",
                "encrypted PKCS#8 DER",
                "PKCS#8 PEM"
            ]
        );
        let text = serde_json::to_string(&after).expect("json");
        assert!(!text.contains(PASSWORD) && !text.contains("PRIVATE KEY"));
    })
    .await;
}

#[tokio::test]
async fn bad_input_is_named_and_nothing_is_audited() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let (_, intermediate) = hierarchy(&clm, None).await;
        let leaf = leaf(&clm, intermediate.certificate.id, None).await;
        // A certificate clm holds no key for (issued from a CSR).
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let csr = build_csr(
            &DistinguishedName::common_name("server.example.com"),
            &[SubjectAlternativeName::Dns("server.example.com".into())],
            &key,
        )
        .expect("csr");
        let from_csr = clm
            .issue_certificate(
                &system,
                request(
                    intermediate.certificate.id,
                    KeySource::Csr(clm::crypto::der_to_pem(
                        clm::crypto::PemLabel::CertificateRequest,
                        &csr,
                    )),
                    None,
                ),
            )
            .await
            .expect("issue from CSR")
            .into_certificate()
            .expect("issued");
        // Boxed: the checks as one future overflow a debug build's test stack.
        Box::pin(refusals(&clm, &leaf, &from_csr)).await;
        Box::pin(json_forms(&clm, &leaf)).await;
    })
    .await;
}

/// Refused input on every export: named, and nothing audited as an export.
async fn refusals(clm: &Clm, leaf: &Certificate, from_csr: &Certificate) {
    let system = clm.system_actor();
    let secure_before = events(clm, AuditLogKind::Secure, "private_key.exported")
        .await
        .len();
    let core_before = events(clm, AuditLogKind::Core, "certificate.exported")
        .await
        .len();

    let invalid = |result: clm::Result<_>, field: &str| {
        let err: clm::Error = match result {
            Err(err) => err,
            Ok(()) => panic!("{field}: accepted"),
        };
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
        assert_eq!(err.details().field.as_deref(), Some(field), "{err}");
        assert!(
            !err.to_string().contains("tiny"),
            "the password is quoted: {err}"
        );
    };
    for weak in ["", "tiny", "1234567", "eight\u{7}chars"] {
        invalid(
            clm.export_pkcs12(
                &system,
                leaf.id,
                SecretString::from(weak),
                Pkcs12Options::default(),
            )
            .await
            .map(drop),
            "password",
        );
        invalid(
            clm.export_private_key_with(
                &system,
                leaf.id,
                PrivateKeyExportOptions {
                    password: Some(SecretString::from(weak)),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
            "password",
        );
    }
    for iterations in [1, 9_999, 10_000_001] {
        invalid(
            clm.export_pkcs12(
                &system,
                leaf.id,
                password(),
                Pkcs12Options {
                    iterations: Some(iterations),
                    ..Default::default()
                },
            )
            .await
            .map(drop),
            "iterations",
        );
    }
    invalid(
        clm.export_private_key_with(
            &system,
            leaf.id,
            PrivateKeyExportOptions {
                iterations: FAST,
                ..Default::default()
            },
        )
        .await
        .map(drop),
        "options.iterations",
    );
    invalid(
        clm.export_pkcs12(
            &system,
            leaf.id,
            password(),
            Pkcs12Options {
                friendly_name: Some(String::new()),
                ..Default::default()
            },
        )
        .await
        .map(drop),
        "options.friendly_name",
    );
    // No key: NotFound naming the key, for PKCS #12 and PKCS #8 alike.
    for result in [
        clm.export_pkcs12(&system, from_csr.id, password(), Pkcs12Options::default())
            .await
            .map(drop),
        clm.export_private_key(&system, from_csr.id).await.map(drop),
    ] {
        let err = result.expect_err("no key");
        assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
        assert!(err.to_string().contains("private key"), "{err}");
    }
    // Unknown id.
    let nobody = CertificateId::new();
    for result in [
        clm.export_certificate(&system, nobody, CertificateFormat::Pem)
            .await
            .map(drop),
        clm.export_pkcs12(&system, nobody, password(), Pkcs12Options::default())
            .await
            .map(drop),
        clm.export_private_key(&system, nobody).await.map(drop),
    ] {
        assert_eq!(result.expect_err("unknown").code(), ErrorCode::NotFound);
    }
    // Through the JSON entry point: an unknown format and option are named.
    for (name, args, field) in [
        (
            "export_certificate",
            json!({"certificate_id": leaf.id, "format": "pfx"}),
            "format",
        ),
        (
            "export_pkcs12",
            json!({"certificate_id": leaf.id, "password": PASSWORD, "options": {"cipher": "rc4"}}),
            "options",
        ),
        (
            "export_pkcs12",
            json!({"certificate_id": leaf.id, "password": PASSWORD, "options": {"encryption": "none"}}),
            "options.encryption",
        ),
        (
            "export_private_key",
            json!({"certificate_id": leaf.id, "options": {"format": "jks"}}),
            "options.format",
        ),
    ] {
        let err = api::call(clm, Some(&system), name, args, None)
            .await
            .map(Reply::into_value)
            .expect_err("refused");
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
        let at = err.details().field.unwrap_or_default();
        assert!(
            at.starts_with(field),
            "{name}: field {at:?}, expected {field:?}: {err}"
        );
    }
    assert_eq!(
        events(clm, AuditLogKind::Secure, "private_key.exported")
            .await
            .len(),
        secure_before,
        "a refused export was audited as one"
    );
    assert_eq!(
        events(clm, AuditLogKind::Core, "certificate.exported")
            .await
            .len(),
        core_before
    );
}

/// The JSON forms: base64 data, the key as text or base64.
async fn json_forms(clm: &Clm, leaf: &Certificate) {
    let system = clm.system_actor();
    // The JSON forms: base64 data, the key as text or base64.
    let value: Value = api::call(
        clm,
        Some(&system),
        "export_certificate",
        json!({"certificate_id": leaf.id, "format": "der"}),
        None,
    )
    .await
    .expect("json export")
    .into_value();
    assert!(
        value["data_base64"]
            .as_str()
            .is_some_and(|b| b.starts_with("MII"))
    );
    assert_eq!(value["text"], Value::Null);
    let value = api::call(
        clm,
        Some(&system),
        "export_pkcs12",
        json!({"certificate_id": leaf.id, "password": PASSWORD, "options": {"iterations": 10_000}}),
        None,
    )
    .await
    .expect("json pkcs12")
    .into_value();
    assert_eq!(value["certificates"], 3);
    assert_eq!(value["encryption"], "modern");
    let value = api::call(
        clm,
        Some(&system),
        "export_private_key",
        json!({"certificate_id": leaf.id, "options": {"format": "der"}}),
        None,
    )
    .await
    .expect("json key")
    .into_value();
    assert!(
        value.as_str().is_some_and(|b| b.starts_with("MI")),
        "{value}"
    );
}
