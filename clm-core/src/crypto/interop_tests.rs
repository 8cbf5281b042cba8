//! Certificates, CSRs and CRLs made here, checked by independent parsers and
//! verifiers: the `openssl` command and Python's `cryptography`.

use std::path::Path;
use std::process::Command;

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::model::{CertificateKind, RevocationReason, SubjectAlternativeName};

fn run(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("{program} must be installed: {err}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = run(dir, "openssl", args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}

struct Pki {
    root_key: KeyPair,
    root: ParsedCertificate,
    intermediate_key: KeyPair,
    intermediate: ParsedCertificate,
    server_key: KeyPair,
    server: ParsedCertificate,
    client: ParsedCertificate,
}

fn dn(cn: &str) -> DistinguishedName {
    DistinguishedName {
        common_name: Some(cn.into()),
        organization: Some("Example, Inc.".into()),
        country: Some("US".into()),
        ..Default::default()
    }
}

fn pki() -> Pki {
    let now = Utc::now();
    let root_key = KeyPair::generate(KeyAlgorithm::EcdsaP384).unwrap();
    let mut template = CertificateTemplate::new(
        dn("clm Test Root"),
        CertificateKind::RootCa,
        now - Duration::hours(1),
        now + Duration::days(3650),
    );
    template.path_len = Some(1);
    let root_der = build_certificate(
        &template,
        &root_key.public_key_der(),
        Issuer::SelfSigned(&root_key),
    )
    .unwrap();
    let root = parse_certificate_der(&root_der).unwrap();

    // RSA intermediate, so leaves are signed through ring's RSA signer.
    let intermediate_key = KeyPair::generate(KeyAlgorithm::Rsa2048).unwrap();
    let mut template = CertificateTemplate::new(
        dn("clm Test Issuing CA"),
        CertificateKind::IntermediateCa,
        now - Duration::hours(1),
        now + Duration::days(1825),
    );
    template.path_len = Some(0);
    template.crl_distribution_points = vec!["http://crl.example.com/root.crl".into()];
    template.ca_issuers_urls = vec!["http://ca.example.com/root.cer".into()];
    let root_issuer = Issuer::Ca {
        certificate: &root,
        key: &root_key,
    };
    let intermediate_der =
        build_certificate(&template, &intermediate_key.public_key_der(), root_issuer).unwrap();
    let intermediate = parse_certificate_der(&intermediate_der).unwrap();

    let issuer = Issuer::Ca {
        certificate: &intermediate,
        key: &intermediate_key,
    };
    let server_key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let mut template = CertificateTemplate::new(
        DistinguishedName::common_name("server.example.com"),
        CertificateKind::TlsServer,
        now - Duration::minutes(5),
        now + Duration::days(90),
    );
    template.subject_alternative_names = vec![
        SubjectAlternativeName::Dns("server.example.com".into()),
        SubjectAlternativeName::Ip("127.0.0.1".parse().unwrap()),
    ];
    template.crl_distribution_points = vec!["http://crl.example.com/issuing.crl".into()];
    template.ocsp_urls = vec!["http://ocsp.example.com".into()];
    template.ca_issuers_urls = vec!["http://ca.example.com/issuing.cer".into()];
    let server = parse_certificate_der(
        &build_certificate(&template, &server_key.public_key_der(), issuer).unwrap(),
    )
    .unwrap();

    let client_key = KeyPair::generate(KeyAlgorithm::Ed25519).unwrap();
    let mut template = CertificateTemplate::new(
        DistinguishedName::common_name("alice"),
        CertificateKind::TlsClient,
        now - Duration::minutes(5),
        now + Duration::days(30),
    );
    template.subject_alternative_names =
        vec![SubjectAlternativeName::Email("alice@example.com".into())];
    let client = parse_certificate_der(
        &build_certificate(&template, &client_key.public_key_der(), issuer).unwrap(),
    )
    .unwrap();

    Pki {
        root_key,
        root,
        intermediate_key,
        intermediate,
        server_key,
        server,
        client,
    }
}

#[test]
fn issued_chain_is_accepted_by_our_parser() {
    let pki = pki();
    let (root, intermediate, server, client) =
        (&pki.root, &pki.intermediate, &pki.server, &pki.client);
    assert!(root.is_ca && intermediate.is_ca && !server.is_ca && !client.is_ca);
    assert_eq!(root.path_len, Some(1));
    assert_eq!(intermediate.path_len, Some(0));
    assert_eq!(root.subject_dn, "CN=clm Test Root,O=Example\\, Inc.,C=US");
    assert_eq!(root.issuer_dn, root.subject_dn);
    assert_eq!(intermediate.issuer_dn, root.subject_dn);
    assert_eq!(server.issuer_dn, intermediate.subject_dn);
    assert_eq!(server.common_name.as_deref(), Some("server.example.com"));
    assert_eq!(
        server.subject_alternative_names,
        vec![
            SubjectAlternativeName::Dns("server.example.com".into()),
            SubjectAlternativeName::Ip("127.0.0.1".parse().unwrap())
        ]
    );
    assert_eq!(
        (server.key_algorithm.as_str(), server.key_size),
        ("ECDSA", 256)
    );
    assert_eq!(
        (intermediate.key_algorithm.as_str(), intermediate.key_size),
        ("RSA", 2048)
    );
    assert_eq!(
        (client.key_algorithm.as_str(), client.key_size),
        ("Ed25519", 256)
    );
    assert_eq!(root.signature_algorithm, "ecdsa-with-SHA384");
    assert_eq!(intermediate.signature_algorithm, "ecdsa-with-SHA384");
    assert_eq!(server.signature_algorithm, "sha256WithRSAEncryption");
    assert_eq!(server.key_usage, vec!["digitalSignature"]);
    assert_eq!(server.extended_key_usage, vec!["serverAuth"]);
    assert_eq!(client.extended_key_usage, vec!["clientAuth"]);
    assert_eq!(
        root.key_usage,
        vec!["digitalSignature", "keyCertSign", "cRLSign"]
    );
    assert!(root.extended_key_usage.is_empty());
    // Key identifiers chain.
    assert_eq!(root.authority_key_id, root.subject_key_id);
    assert_eq!(intermediate.authority_key_id, root.subject_key_id);
    assert_eq!(server.authority_key_id, intermediate.subject_key_id);
    assert!(server.flags.is_empty(), "{:?}", server.flags);
    assert_eq!(server.serial_hex.len(), 32);
    assert_eq!(server.fingerprint_sha256.len(), 64);
    // Signatures.
    verify_signed_by(root, &root.public_key_der).unwrap();
    verify_signed_by(intermediate, &root.public_key_der).unwrap();
    verify_signed_by(server, &intermediate.public_key_der).unwrap();
    verify_signed_by(client, &intermediate.public_key_der).unwrap();
    let err = verify_signed_by(server, &root.public_key_der).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = verify_signed_by(intermediate, &pki.server_key.public_key_der()).unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    // Bundle parsing: two certificates and a private key.
    let bundle = format!(
        "{}{}{}",
        server.pem,
        pki.server_key.to_pkcs8_pem().expose(),
        intermediate.pem
    );
    let parsed = parse_certificates(bundle.as_bytes()).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0], *server);
    assert_eq!(parsed[1], *intermediate);
    assert_eq!(parse_certificates(&server.der).unwrap()[0], *server);
}

#[test]
fn issuance_rules_are_enforced() {
    let pki = pki();
    let now = Utc::now();
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let base = CertificateTemplate::new(
        DistinguishedName::common_name("x.example.com"),
        CertificateKind::TlsServer,
        now,
        now + Duration::days(1),
    );
    let issuer = Issuer::Ca {
        certificate: &pki.intermediate,
        key: &pki.intermediate_key,
    };
    let check = |template: &CertificateTemplate, issuer: Issuer<'_>, field: &str| {
        let err = build_certificate(template, &key.public_key_der(), issuer).unwrap_err();
        assert!(err.to_string().contains(field), "expected {field}: {err}");
    };
    // Leaf as issuer.
    check(
        &base,
        Issuer::Ca {
            certificate: &pki.server,
            key: &pki.server_key,
        },
        "not a CA",
    );
    // Key that does not belong to the issuer certificate.
    check(
        &base,
        Issuer::Ca {
            certificate: &pki.intermediate,
            key: &pki.root_key,
        },
        "does not match",
    );
    // Serial rules.
    for serial in [vec![], vec![0x80], vec![0], vec![0, 1], vec![1; 21]] {
        let mut template = base.clone();
        template.serial = serial;
        check(&template, issuer, "invalid serial");
    }
    let mut template = base.clone();
    template.not_after = template.not_before;
    check(&template, issuer, "invalid not_after");
    let mut template = base.clone();
    template.kind = CertificateKind::IntermediateCa;
    check(&template, issuer, "pathLenConstraint of 0");
    let mut template = base.clone();
    template.kind = CertificateKind::RootCa;
    check(&template, issuer, "must be self-signed");
    let mut template = base.clone();
    template.path_len = Some(1);
    check(&template, issuer, "invalid path_len");
    let mut template = base.clone();
    template.subject = DistinguishedName::default();
    check(&template, issuer, "invalid subject");
    let mut template = base.clone();
    template.subject_alternative_names = vec![SubjectAlternativeName::Dns("bad name".into())];
    check(&template, issuer, "subject_alternative_names[0]");
    let mut template = base.clone();
    template.kind = CertificateKind::Imported;
    check(&template, issuer, "invalid kind");
    // Self-signed must carry the signer's own key.
    check(
        &base,
        Issuer::SelfSigned(&pki.root_key),
        "subject_public_key",
    );
    // The base template itself is fine.
    build_certificate(&base, &key.public_key_der(), issuer).unwrap();
}

#[test]
fn openssl_and_python_accept_the_chain_and_crl() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let now = Utc::now();
    let crl = build_crl(
        &pki.intermediate,
        &pki.intermediate_key,
        42,
        now - Duration::minutes(1),
        now + Duration::days(7),
        &[
            CrlEntry {
                serial: pki.client.serial_bytes(),
                revoked_at: now - Duration::minutes(2),
                reason: RevocationReason::KeyCompromise,
            },
            CrlEntry {
                serial: vec![0x01, 0x02],
                revoked_at: now - Duration::minutes(2),
                reason: RevocationReason::Unspecified,
            },
        ],
    )
    .unwrap();
    let empty_crl = build_crl(
        &pki.root,
        &pki.root_key,
        1,
        now,
        now + Duration::days(30),
        &[],
    )
    .unwrap();
    for (name, text) in [
        ("root.pem", pki.root.pem.clone()),
        ("intermediate.pem", pki.intermediate.pem.clone()),
        ("server.pem", pki.server.pem.clone()),
        ("client.pem", pki.client.pem.clone()),
        ("crl.pem", der_to_pem(PemLabel::X509Crl, &crl)),
        ("root-crl.pem", der_to_pem(PemLabel::X509Crl, &empty_crl)),
        (
            "chain.pem",
            format!("{}{}", pki.intermediate.pem, pki.root.pem),
        ),
    ] {
        std::fs::write(path.join(name), text).unwrap();
    }

    let out = openssl_ok(
        path,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "intermediate.pem",
            "-purpose",
            "sslserver",
            "-x509_strict",
            "server.pem",
        ],
    );
    assert!(out.contains("server.pem: OK"), "{out}");
    let out = openssl_ok(
        path,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "intermediate.pem",
            "-purpose",
            "sslclient",
            "-x509_strict",
            "client.pem",
        ],
    );
    assert!(out.contains("client.pem: OK"), "{out}");
    let out = openssl_ok(
        path,
        &[
            "verify",
            "-x509_strict",
            "-crl_check",
            "-CRLfile",
            "crl.pem",
            "-CAfile",
            "chain.pem",
            "server.pem",
        ],
    );
    assert!(out.contains("server.pem: OK"), "{out}");
    let (ok, out) = run(
        path,
        "openssl",
        &[
            "verify",
            "-crl_check",
            "-CRLfile",
            "crl.pem",
            "-CAfile",
            "chain.pem",
            "client.pem",
        ],
    );
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let out = openssl_ok(
        path,
        &[
            "crl",
            "-in",
            "crl.pem",
            "-CAfile",
            "chain.pem",
            "-verify",
            "-noout",
        ],
    );
    assert!(out.contains("verify OK"), "{out}");
    let out = openssl_ok(
        path,
        &[
            "crl",
            "-in",
            "root-crl.pem",
            "-CAfile",
            "root.pem",
            "-verify",
            "-noout",
            "-text",
        ],
    );
    assert!(
        out.contains("verify OK") && out.contains("No Revoked Certificates"),
        "{out}"
    );
    let out = openssl_ok(path, &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(
        out.contains("X509v3 CRL Number: \n                42\n"),
        "{out}"
    );
    assert!(out.contains("Key Compromise"), "{out}");

    let out = openssl_ok(path, &["x509", "-in", "server.pem", "-noout", "-text"]);
    for expected in [
        "Version: 3 (0x2)",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "TLS Web Server Authentication",
        "DNS:server.example.com, IP Address:127.0.0.1",
        "OCSP - URI:http://ocsp.example.com",
        "CA Issuers - URI:http://ca.example.com/issuing.cer",
        "URI:http://crl.example.com/issuing.crl",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    let out = openssl_ok(
        path,
        &["x509", "-in", "intermediate.pem", "-noout", "-text"],
    );
    assert!(
        out.contains("CA:TRUE, pathlen:0") && out.contains("Certificate Sign, CRL Sign"),
        "{out}"
    );

    // Python's cryptography: its Rust verifier is strict about RFC 5280 and CA/B profiles.
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.x509 import DNSName, IPAddress, ReasonFlags
from cryptography.x509.verification import PolicyBuilder, Store
import ipaddress
load = lambda n: x509.load_pem_x509_certificate(open(n, "rb").read())
root, inter, server, client = map(load, ["root.pem", "intermediate.pem", "server.pem", "client.pem"])
store = Store([root])
builder = PolicyBuilder().store(store)
chain = builder.build_server_verifier(DNSName("server.example.com")).verify(server, [inter])
assert len(chain) == 3, chain
builder.build_server_verifier(IPAddress(ipaddress.ip_address("127.0.0.1"))).verify(server, [inter])
try:
    builder.build_server_verifier(DNSName("other.example.com")).verify(server, [inter])
    sys.exit("wrong name accepted")
except x509.verification.VerificationError:
    pass
verified = builder.build_client_verifier().verify(client, [inter])
assert verified.chain[0] == client
crl = x509.load_pem_x509_crl(open("crl.pem", "rb").read())
assert crl.is_signature_valid(inter.public_key())
assert not crl.is_signature_valid(root.public_key())
entry = crl.get_revoked_certificate_by_serial_number(client.serial_number)
assert entry is not None
assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == ReasonFlags.key_compromise
other = crl.get_revoked_certificate_by_serial_number(0x0102)
assert other is not None and len(other.extensions) == 0
assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
ski = inter.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
assert aki == ski
print(server.serial_number, server.fingerprint(__import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()).hex())
"#;
    // scripts/test points this at a virtualenv that has `cryptography`.
    let python = std::env::var("CLM_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let (ok, out) = run(path, &python, &["-c", script]);
    assert!(ok, "python cryptography rejected our output:\n{out}");
    let expected_serial = u128::from_str_radix(&pki.server.serial_hex, 16).unwrap();
    assert_eq!(
        out.trim(),
        format!("{expected_serial} {}", pki.server.fingerprint_sha256)
    );
}

#[test]
fn csr_round_trip_and_tampering() {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let subject = dn("csr.example.com");
    let sans = vec![
        SubjectAlternativeName::Dns("csr.example.com".into()),
        SubjectAlternativeName::Ip("::1".parse().unwrap()),
        SubjectAlternativeName::Uri("spiffe://example.com/web".into()),
    ];
    let der = build_csr(&subject, &sans, &key).unwrap();
    let parsed = parse_csr(&der).unwrap();
    assert_eq!(parsed.subject, subject);
    assert_eq!(
        parsed.subject_dn,
        "CN=csr.example.com,O=Example\\, Inc.,C=US"
    );
    assert_eq!(parsed.common_name.as_deref(), Some("csr.example.com"));
    assert_eq!(parsed.subject_alternative_names, sans);
    assert_eq!(parsed.public_key_der, key.public_key_der());
    assert_eq!(
        (parsed.key_algorithm.as_str(), parsed.key_size),
        ("ECDSA", 256)
    );
    assert_eq!(parsed.signature_algorithm, "ecdsa-with-SHA256");
    // PEM works too, and OpenSSL agrees the signature is good.
    let pem = der_to_pem(PemLabel::CertificateRequest, &der);
    assert_eq!(parse_csr(pem.as_bytes()).unwrap(), parsed);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("req.pem"), &pem).unwrap();
    let out = openssl_ok(
        dir.path(),
        &["req", "-in", "req.pem", "-verify", "-noout", "-text"],
    );
    assert!(
        out.contains("verify OK") || out.contains("Certificate request self-signature verify OK"),
        "{out}"
    );
    assert!(out.contains("DNS:csr.example.com"), "{out}");

    // A flipped signature byte, or a flipped subject byte, is refused.
    let mut bad = der.clone();
    let last = bad.len() - 5;
    bad[last] ^= 0x01;
    let err = parse_csr(&bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cryptographic failure: CSR signature does not verify"
    );
    let mut bad = der.clone();
    let position = der.windows(3).position(|w| w == b"csr").unwrap();
    bad[position] = b'x';
    assert_eq!(
        parse_csr(&bad).unwrap_err().code(),
        crate::ErrorCode::Crypto
    );
    // Truncations and trailing bytes never panic.
    for len in 0..der.len() {
        assert!(parse_csr(&der[..len]).is_err());
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert_eq!(
        parse_csr(&trailing).unwrap_err().code(),
        crate::ErrorCode::InvalidInput
    );

    // Every key type round-trips; without SANs there is no extensionRequest.
    for algorithm in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ] {
        let key = KeyPair::generate(algorithm).unwrap();
        let parsed =
            parse_csr(&build_csr(&DistinguishedName::common_name("k"), &[], &key).unwrap())
                .unwrap();
        assert_eq!(parsed.key_algorithm, algorithm.family());
        assert!(parsed.subject_alternative_names.is_empty());
        assert_eq!(
            parsed.signature_algorithm,
            algorithm.signature_algorithm_name()
        );
    }
    assert!(build_csr(&DistinguishedName::default(), &[], &key).is_err());
}

#[test]
fn csrs_made_by_openssl_parse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    for (name, args) in [
        ("rsa", vec!["-newkey", "rsa:2048", "-sha384"]),
        (
            "ec",
            vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        ),
        ("ed", vec!["-newkey", "ed25519"]),
    ] {
        let out = format!("{name}.csr");
        let key = format!("{name}.key");
        let mut all = vec![
            "req",
            "-new",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &out,
            "-subj",
            "/C=DE/O=Org/CN=openssl.example.com",
            "-addext",
            "subjectAltName=DNS:openssl.example.com,email:a@example.com",
        ];
        all.extend(args.iter().copied());
        openssl_ok(path, &all);
        let parsed = parse_csr(&std::fs::read(path.join(&out)).unwrap()).unwrap();
        assert_eq!(parsed.subject_dn, "CN=openssl.example.com,O=Org,C=DE");
        assert_eq!(parsed.subject.country.as_deref(), Some("DE"));
        assert_eq!(
            parsed.subject_alternative_names,
            vec![
                SubjectAlternativeName::Dns("openssl.example.com".into()),
                SubjectAlternativeName::Email("a@example.com".into())
            ]
        );
        // The key openssl wrote imports and matches the CSR.
        let key = KeyPair::from_pem(&std::fs::read_to_string(path.join(&key)).unwrap()).unwrap();
        assert!(key.matches_public_key(&parsed.public_key_der));
    }
    // RSA-1024 CSRs are refused with a reason.
    openssl_ok(
        path,
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:1024",
            "-keyout",
            "small.key",
            "-out",
            "small.csr",
            "-subj",
            "/CN=small",
        ],
    );
    let err = parse_csr(&std::fs::read(path.join("small.csr")).unwrap()).unwrap_err();
    assert!(err.to_string().contains("2048"), "{err}");
}

fn openssl_certificate(path: &Path, name: &str, extra: &[&str]) -> Vec<u8> {
    let out = format!("{name}.pem");
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "k.pem",
        "-out",
        &out,
        "-subj",
        "/CN=odd",
        "-days",
        "1",
    ];
    args.extend_from_slice(extra);
    openssl_ok(path, &args);
    std::fs::read(path.join(out)).unwrap()
}

#[test]
fn odd_certificates_import_with_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let negative =
        parse_certificates(&openssl_certificate(path, "neg", &["-set_serial", "-5"])).unwrap();
    assert_eq!(negative[0].serial_hex, "fb");
    assert!(
        negative[0].has_flag("serial_negative"),
        "{:?}",
        negative[0].flags
    );
    let zero =
        parse_certificates(&openssl_certificate(path, "zero", &["-set_serial", "0"])).unwrap();
    assert_eq!(zero[0].serial_hex, "00");
    assert!(zero[0].has_flag("serial_zero"));
    let long = parse_certificates(&openssl_certificate(
        path,
        "long",
        &[
            "-set_serial",
            "0x0102030405060708090a0b0c0d0e0f101112131415",
        ],
    ))
    .unwrap();
    assert_eq!(
        long[0].serial_hex,
        "0102030405060708090a0b0c0d0e0f101112131415"
    );
    assert!(long[0].has_flag("serial_too_long"));
    let critical = parse_certificates(&openssl_certificate(
        path,
        "crit",
        &[
            "-addext",
            "1.2.3.4=critical,DER:05:00",
            "-addext",
            "1.2.3.5=DER:05:00",
        ],
    ))
    .unwrap();
    assert_eq!(
        critical[0].flags,
        vec!["unknown_critical_extension:1.2.3.4"]
    );
    assert!(critical[0].has_flag("unknown_critical_extension"));
    // The import is lossless: serial bytes feed a CRL entry unchanged.
    assert_eq!(negative[0].serial_bytes(), vec![0xfb]);
}

#[test]
fn hostile_certificate_input_is_refused_without_panic() {
    let pki = pki();
    let der = pki.server.der.clone();
    let invalid = |input: &[u8]| {
        let err = parse_certificates(input).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidInput, "{err}");
        assert!(err.to_string().starts_with("invalid certificate"), "{err}");
    };
    invalid(b"");
    invalid(b"garbage");
    invalid(&[0x30]);
    for len in 1..der.len() {
        invalid(&der[..len]);
    }
    let mut trailing = der.clone();
    trailing.push(0);
    invalid(&trailing);
    // Non-minimal length: 30 82 xx xx -> 30 83 00 xx xx.
    let mut long_form = vec![0x30, 0x83, 0x00];
    long_form.extend_from_slice(&der[2..]);
    invalid(&long_form);
    // Absurd lengths.
    invalid(&[0x30, 0x84, 0x7f, 0xff, 0xff, 0xff, 0x30, 0x00]);
    invalid(&[
        0x30, 0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    // Indefinite length (BER, not DER).
    invalid(&[0x30, 0x80, 0x00, 0x00]);
    // 50,000 nested SEQUENCEs.
    let mut nested: Vec<u8> = Vec::new();
    for _ in 0..50_000 {
        let len = nested.len();
        let mut outer = vec![0x30];
        if len < 0x80 {
            outer.push(len as u8);
        } else {
            let bytes: Vec<u8> = (len as u32)
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            outer.push(0x80 | bytes.len() as u8);
            outer.extend_from_slice(&bytes);
        }
        outer.extend_from_slice(&nested);
        nested = outer;
    }
    invalid(&nested);
    // Every single-byte corruption of a real certificate either parses or is refused.
    for index in 0..der.len() {
        let mut corrupt = der.clone();
        corrupt[index] ^= 0xff;
        let _ = parse_certificates(&corrupt);
    }
    // Damaged PEM.
    let pem = pki.server.pem.clone();
    invalid(pem.replace("-----END CERTIFICATE-----", "").as_bytes());
    invalid(pem.replacen('M', "*", 1).as_bytes());
    invalid(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    let too_big = vec![0u8; MAX_CERTIFICATE_LEN + 1];
    invalid(&too_big);
}

#[test]
fn crl_rules_are_enforced() {
    let pki = pki();
    let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).single().unwrap();
    let later = now + Duration::days(1);
    let entry = |serial: Vec<u8>, reason| CrlEntry {
        serial,
        revoked_at: now,
        reason,
    };
    let err = build_crl(&pki.server, &pki.server_key, 1, now, later, &[]).unwrap_err();
    assert!(err.to_string().contains("only a CA"), "{err}");
    let err = build_crl(&pki.intermediate, &pki.root_key, 1, now, later, &[]).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let err = build_crl(&pki.intermediate, &pki.intermediate_key, 1, later, now, &[]).unwrap_err();
    assert!(err.to_string().contains("next_update"), "{err}");
    let twice = [
        entry(vec![1], RevocationReason::Superseded),
        entry(vec![1], RevocationReason::KeyCompromise),
    ];
    assert!(
        build_crl(
            &pki.intermediate,
            &pki.intermediate_key,
            1,
            now,
            later,
            &twice
        )
        .unwrap_err()
        .to_string()
        .contains("twice")
    );
    let remove = [entry(vec![1], RevocationReason::RemoveFromCrl)];
    assert!(
        build_crl(
            &pki.intermediate,
            &pki.intermediate_key,
            1,
            now,
            later,
            &remove
        )
        .is_err()
    );
    for serial in [vec![], vec![0, 1], vec![0xff, 0x80]] {
        let bad = [entry(serial, RevocationReason::Superseded)];
        assert!(
            build_crl(
                &pki.intermediate,
                &pki.intermediate_key,
                1,
                now,
                later,
                &bad
            )
            .is_err()
        );
    }
    // Imported oddities (negative, 21-byte serials) are listed exactly.
    let odd = [
        entry(vec![0xfb], RevocationReason::Superseded),
        entry(vec![1; 21], RevocationReason::CaCompromise),
    ];
    let crl = build_crl(
        &pki.intermediate,
        &pki.intermediate_key,
        u64::MAX,
        now,
        later,
        &odd,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crl.der"), &crl).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &pki.intermediate.pem).unwrap();
    let out = openssl_ok(
        dir.path(),
        &[
            "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "ca.pem", "-verify", "-noout",
            "-text",
        ],
    );
    assert!(out.contains("verify OK"), "{out}");
    assert!(out.contains("Serial Number: -05"), "{out}");
    assert!(
        out.contains(&format!("Serial Number: {}\n", "01".repeat(21))),
        "{out}"
    );
    assert!(out.contains("18446744073709551615"), "{out}");
}

/// A CRL larger than the builder keeps in memory (its entries spill to a
/// temporary file), signed through the streamed digest by each key
/// algorithm, read out in chunks: openssl verifies every one, and the
/// pieces add up to the length announced.
#[test]
fn large_crls_are_spooled_signed_streamed_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let entries = 40_000u32;
    for algorithm in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
    ] {
        let key = KeyPair::generate(algorithm).unwrap();
        let template = CertificateTemplate::new(
            dn(&format!("clm CRL signer {algorithm}")),
            CertificateKind::RootCa,
            now - Duration::hours(1),
            now + Duration::days(30),
        );
        let ca = parse_certificate_der(
            &build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key)).unwrap(),
        )
        .unwrap();
        let mut builder = CrlBuilder::new(&ca, &key, CrlScope::default()).unwrap();
        for i in 0..entries {
            builder
                .push(&CrlEntry {
                    // Ascending, positive, minimal: 0x01 then the index.
                    serial: [&[0x01][..], &i.to_be_bytes()].concat(),
                    revoked_at: now - Duration::minutes(5),
                    reason: if i % 2 == 0 {
                        RevocationReason::KeyCompromise
                    } else {
                        RevocationReason::Unspecified
                    },
                })
                .unwrap();
        }
        let mut signed = builder
            .finish(&key, 7, now - Duration::minutes(1), now + Duration::days(1))
            .unwrap();
        let announced = signed.len();
        assert!(
            announced > crl::SPOOL_MEMORY_LIMIT as u64,
            "{algorithm}: {announced} bytes do not spill"
        );
        let mut der = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = signed.next_chunk(100_000).unwrap() {
            assert!(chunk.len() <= 100_000);
            der.extend(chunk);
            chunks += 1;
        }
        assert_eq!(der.len() as u64, announced, "{algorithm}");
        assert!(chunks > 10, "{algorithm}: read in {chunks} chunks");
        let crl_path = format!("crl-{}.der", algorithm.family());
        std::fs::write(dir.path().join(&crl_path), &der).unwrap();
        std::fs::write(dir.path().join("ca.pem"), &ca.pem).unwrap();
        let text = openssl_ok(
            dir.path(),
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                &crl_path,
                "-CAfile",
                "ca.pem",
                "-noout",
                "-verify",
                "-crlnumber",
            ],
        );
        assert!(text.contains("verify OK"), "{algorithm}: {text}");
        assert!(text.contains("crlNumber=0x07"), "{algorithm}: {text}");
        let (ok, listed) = run(
            dir.path(),
            "sh",
            &[
                "-c",
                &format!(
                    "openssl crl -inform DER -in {crl_path} -noout -text | grep -c 'Serial Number'"
                ),
            ],
        );
        assert!(ok, "{listed}");
        assert_eq!(listed.trim(), entries.to_string(), "{algorithm}");
    }
}
