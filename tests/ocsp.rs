//! The OCSP responder on both backends: `openssl ocsp` against
//! examples/ocsp_server.rs (good, revoked, unknown; with and without nonce;
//! delegated responder and CA key), GET per RFC 6960 appendix A, Python
//! `cryptography` on a response, malformed requests, unknown issuers, SHA-1
//! and SHA-256 CertIDs, several certificates at once, nonce sizes, the
//! pre-signed responses (issuance, revocation, hold release, lifecycle
//! refresh and signer renewal) and a closed database.

mod common;

#[allow(dead_code)]
#[path = "../examples/ocsp_server.rs"]
mod server;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use chrono::{Duration, Utc};
use clm::crypto::ocsp::{
    OcspCertId, OcspCertStatus, OcspHash, OcspResponseStatus, build_ocsp_request,
    read_ocsp_response,
};
use clm::crypto::{DistinguishedName, KeyAlgorithm, ParsedCertificate, parse_certificates};
use clm::model::{Certificate, CertificateKind, RevocationReason, SubjectAlternativeName};
use clm::service::authorities::{CertificateAuthority, NewCertificateAuthority};
use clm::service::issuance::{IssueRequest, KeySource};
use clm::{Clm, OcspSettings, SecuritySettings};
use common::{on_both_configs, test_master_key, unique};

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

/// Runs `body` on both backends with a handle opened with `ocsp`.
async fn on_both<F, Fut>(ocsp: OcspSettings, body: F)
where
    F: Fn(Clm) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let body = &body;
    on_both_configs(|config| async move {
        let clm = Clm::open(
            config
                .with_master_key(test_master_key())
                .with_security(security())
                .with_ocsp(ocsp),
        )
        .await
        .expect("open");
        body(clm.clone()).await;
        clm.close().await;
    })
    .await;
}

async fn root_ca(clm: &Clm) -> CertificateAuthority {
    clm.create_root_ca(
        &clm.system_actor(),
        NewCertificateAuthority {
            subject: DistinguishedName {
                common_name: Some(unique("OCSP Root")),
                organization: Some("Example".into()),
                ..Default::default()
            },
            key_algorithm: KeyAlgorithm::EcdsaP256,
            validity_days: Some(3650),
            ..Default::default()
        },
    )
    .await
    .expect("root CA")
}

async fn leaf(clm: &Clm, ca: &CertificateAuthority, name: &str) -> Certificate {
    clm.issue_certificate(
        &clm.system_actor(),
        IssueRequest {
            issuer_id: ca.certificate.id,
            policy_id: None,
            subject: DistinguishedName::common_name(name),
            sans: vec![SubjectAlternativeName::Dns(name.into())],
            kind: CertificateKind::TlsServer,
            validity_days: 90,
            key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
            owner_user_id: None,
            organization_id: ca.certificate.organization_id,
        },
    )
    .await
    .expect("issue")
    .into_certificate()
    .expect("issued")
}

fn parsed(certificate: &Certificate) -> ParsedCertificate {
    parse_certificates(certificate.certificate_pem.as_bytes())
        .expect("parse")
        .remove(0)
}

fn cert_id(ca: &CertificateAuthority, serial_hex: &str, hash: OcspHash) -> OcspCertId {
    OcspCertId::new(
        &parsed(&ca.certificate),
        &hex::decode(serial_hex).expect("hex"),
        hash,
    )
    .expect("cert id")
}

async fn ask(clm: &Clm, ids: &[OcspCertId], nonce: Option<&[u8]>) -> Vec<u8> {
    clm.ocsp_respond(&build_ocsp_request(ids, nonce).expect("request"))
        .await
}

fn statuses(der: &[u8]) -> Vec<OcspCertStatus> {
    let read = read_ocsp_response(der).expect("read");
    assert_eq!(read.status, OcspResponseStatus::Successful);
    read.responses.into_iter().map(|(_, _, s)| s).collect()
}

fn status_of(der: &[u8]) -> OcspResponseStatus {
    read_ocsp_response(der).expect("read").status
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

/// Starts examples/ocsp_server.rs's `serve` on 127.0.0.1:0; returns the port.
fn start_server(clm: &Clm) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (clm, handle) = (clm.clone(), tokio::runtime::Handle::current());
    std::thread::spawn(move || server::serve(listener, clm, handle));
    port
}

/// `openssl ocsp` against the server for `-cert file` or `-serial 0x..`.
async fn openssl_ocsp(dir: &Path, port: u16, target: &[&str], nonce: bool) -> String {
    let mut args: Vec<String> = vec![
        "ocsp".into(),
        "-issuer".into(),
        "ca.pem".into(),
        "-CAfile".into(),
        "ca.pem".into(),
        "-url".into(),
        format!("http://127.0.0.1:{port}/ocsp"),
        "-resp_text".into(),
    ];
    args.extend(target.iter().map(|s| s.to_string()));
    if !nonce {
        args.push("-no_nonce".into());
    }
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out) = run(&dir, "openssl", &args);
        assert!(ok, "openssl ocsp failed:\n{out}");
        out
    })
    .await
    .expect("openssl task")
}

async fn openssl_scenario(clm: Clm, delegated: bool) {
    let ca = root_ca(&clm).await;
    let good = leaf(&clm, &ca, "good.example.com").await;
    let revoked = leaf(&clm, &ca, "revoked.example.com").await;
    clm.revoke_certificate(
        &clm.system_actor(),
        revoked.id,
        RevocationReason::KeyCompromise,
        None,
    )
    .await
    .expect("revoke");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("ca.pem"), &ca.certificate.certificate_pem).expect("ca");
    std::fs::write(dir.path().join("good.pem"), &good.certificate_pem).expect("good");
    std::fs::write(dir.path().join("revoked.pem"), &revoked.certificate_pem).expect("revoked");
    let port = start_server(&clm);
    for nonce in [false, true] {
        let out = openssl_ocsp(dir.path(), port, &["-cert", "good.pem"], nonce).await;
        assert!(out.contains("good.pem: good"), "{out}");
        assert!(out.contains("Response verify OK"), "{out}");
        assert_eq!(out.contains("OCSP Nonce"), nonce, "{out}");
        assert_eq!(out.contains("OCSP Responder"), delegated, "{out}");

        let out = openssl_ocsp(dir.path(), port, &["-cert", "revoked.pem"], nonce).await;
        assert!(out.contains("revoked.pem: revoked"), "{out}");
        assert!(out.contains("keyCompromise"), "{out}");
        assert!(out.contains("Response verify OK"), "{out}");

        let out = openssl_ocsp(dir.path(), port, &["-serial", "0x0badc0ffee"], nonce).await;
        assert!(out.contains(": unknown"), "{out}");
        assert!(out.contains("Response verify OK"), "{out}");
    }

    // GET (RFC 6960 appendix A): base64 in the path, '/' and '+' escaped.
    let request = build_ocsp_request(&[cert_id(&ca, &good.serial_number, OcspHash::Sha1)], None)
        .expect("request");
    let encoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(&request)
            .replace('/', "%2F")
            .replace('+', "%2B")
            .replace('=', "%3D")
    };
    let body = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            stream,
            "GET /ocsp/{encoded} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).expect("read");
        reply
    })
    .await
    .expect("get");
    let split = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head");
    let head = String::from_utf8_lossy(&body[..split]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.contains("Content-Type: application/ocsp-response"),
        "{head}"
    );
    let response = &body[split + 4..];
    assert_eq!(statuses(response), vec![OcspCertStatus::Good]);

    // Python's cryptography reads a response and checks its signature
    // against the certificate that signed it.
    let revoked_response = ask(
        &clm,
        &[cert_id(&ca, &revoked.serial_number, OcspHash::Sha1)],
        Some(&[5u8; 16]),
    )
    .await;
    std::fs::write(dir.path().join("response.der"), &revoked_response).expect("write");
    let script = r#"
import sys
from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.hazmat.primitives.asymmetric import ec
data = open("response.der", "rb").read()
ca = x509.load_pem_x509_certificate(open("ca.pem", "rb").read())
r = ocsp.load_der_ocsp_response(data)
assert r.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, r.response_status
assert r.certificate_status == ocsp.OCSPCertStatus.REVOKED, r.certificate_status
assert r.revocation_reason == x509.ReasonFlags.key_compromise, r.revocation_reason
signer = r.certificates[0] if r.certificates else ca
signer.public_key().verify(r.signature, r.tbs_response_bytes, ec.ECDSA(r.signature_hash_algorithm))
nonce = r.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
assert nonce == bytes([5] * 16), nonce
print("serial", format(r.serial_number, "x"), "delegated", bool(r.certificates))
"#;
    std::fs::write(dir.path().join("check.py"), script).expect("script");
    let (ok, out) = run(dir.path(), &python(), &["check.py"]);
    assert!(ok, "cryptography refused the response:\n{out}");
    assert!(
        out.contains(&format!(
            "delegated {}",
            if delegated { "True" } else { "False" }
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_and_cryptography_accept_answers_of_a_delegated_responder() {
    on_both(OcspSettings::default(), |clm| openssl_scenario(clm, true)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_and_cryptography_accept_answers_signed_by_the_ca_key() {
    on_both(
        OcspSettings {
            sign_with_ca_key: true,
        },
        |clm| openssl_scenario(clm, false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_by_hash_count_and_nonce() {
    on_both(OcspSettings::default(), |clm| async move {
        let ca = root_ca(&clm).await;
        let a = leaf(&clm, &ca, "a.example.com").await;
        let b = leaf(&clm, &ca, "b.example.com").await;
        clm.revoke_certificate(
            &clm.system_actor(),
            b.id,
            RevocationReason::Superseded,
            None,
        )
        .await
        .expect("revoke");

        // SHA-1 and SHA-256 CertIDs, each echoed as asked.
        for hash in [OcspHash::Sha1, OcspHash::Sha256] {
            let der = ask(&clm, &[cert_id(&ca, &a.serial_number, hash)], None).await;
            let read = read_ocsp_response(&der).expect("read");
            assert_eq!(read.responses.len(), 1);
            assert_eq!(read.responses[0].0, Some(hash));
            assert_eq!(read.responses[0].2, OcspCertStatus::Good);
        }

        // Several certificates in one request, answered in order.
        let der = ask(
            &clm,
            &[
                cert_id(&ca, &a.serial_number, OcspHash::Sha1),
                cert_id(&ca, &b.serial_number, OcspHash::Sha256),
                cert_id(&ca, "0badc0ffee", OcspHash::Sha1),
            ],
            None,
        )
        .await;
        let got = statuses(&der);
        assert_eq!(got[0], OcspCertStatus::Good);
        assert!(
            matches!(
                got[1],
                OcspCertStatus::Revoked {
                    reason: RevocationReason::Superseded,
                    ..
                }
            ),
            "{got:?}"
        );
        assert_eq!(got[2], OcspCertStatus::Unknown);

        // Nonces: 1..=32 bytes echoed, 0 or 33 refused.
        let id = cert_id(&ca, &a.serial_number, OcspHash::Sha1);
        for length in [1usize, 16, 32] {
            let nonce = vec![0xa5; length];
            let der = ask(&clm, std::slice::from_ref(&id), Some(&nonce)).await;
            assert_eq!(read_ocsp_response(&der).expect("read").nonce, Some(nonce));
        }
        for length in [0usize, 33, 64] {
            let der = ask(&clm, std::slice::from_ref(&id), Some(&vec![1; length])).await;
            assert_eq!(status_of(&der), OcspResponseStatus::MalformedRequest);
        }

        // Malformed requests.
        for bad in [&b""[..], b"\x30\x00", b"garbage", &[0x30; 70_000][..]] {
            assert_eq!(
                status_of(&clm.ocsp_respond(bad).await),
                OcspResponseStatus::MalformedRequest
            );
        }
        let mut trailing = build_ocsp_request(std::slice::from_ref(&id), None).expect("r");
        trailing.push(0);
        assert_eq!(
            status_of(&clm.ocsp_respond(&trailing).await),
            OcspResponseStatus::MalformedRequest
        );

        // An issuer clm holds no key for, or a request mixing issuers.
        let stranger = root_ca(&clm).await;
        let mut foreign = parsed(&stranger.certificate);
        foreign.public_key_der = parsed(&a).public_key_der;
        let unknown_issuer = OcspCertId::new(&foreign, &[1], OcspHash::Sha1).expect("id");
        assert_eq!(
            status_of(&ask(&clm, &[unknown_issuer], None).await),
            OcspResponseStatus::Unauthorized
        );
        let mixed = [
            id.clone(),
            cert_id(&stranger, &a.serial_number, OcspHash::Sha1),
        ];
        assert_eq!(
            status_of(&ask(&clm, &mixed, None).await),
            OcspResponseStatus::Unauthorized
        );
        // A revoked CA answers nothing.
        clm.revoke_certificate(
            &clm.system_actor(),
            stranger.certificate.id,
            RevocationReason::CessationOfOperation,
            None,
        )
        .await
        .expect("revoke CA");
        let der = ask(&clm, &[cert_id(&stranger, "01", OcspHash::Sha1)], None).await;
        assert_eq!(status_of(&der), OcspResponseStatus::Unauthorized);

        // The bindings' entry: base64 in, base64 and status out.
        let reply = clm.ocsp_respond(b"").await;
        assert_eq!(reply, vec![0x30, 0x03, 0x0a, 0x01, 0x01]);
    })
    .await;
}

async fn stored_response(clm: &Clm, certificate: &Certificate) -> Option<(Vec<u8>, String)> {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    let issuer = certificate.issuer_certificate_id.expect("issuer");
    let stored =
        clm::store::ocsp_responses::lookup(&mut conn.conn(), issuer, &certificate.serial_number)
            .await
            .expect("lookup");
    stored.map(|(der, _)| {
        let status = match statuses(&der)[0] {
            OcspCertStatus::Good => "good",
            OcspCertStatus::Revoked { .. } => "revoked",
            OcspCertStatus::Unknown => "unknown",
        };
        (der, status.to_string())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_signed_responses_follow_issuance_revocation_release_and_the_lifecycle() {
    on_both(OcspSettings::default(), |clm| async move {
        let ca = root_ca(&clm).await;
        let cert = leaf(&clm, &ca, "stored.example.com").await;
        let id = cert_id(&ca, &cert.serial_number, OcspHash::Sha1);

        // Signed at issuance; a request without nonce gets exactly those bytes.
        let (stored, status) = stored_response(&clm, &cert)
            .await
            .expect("stored at issuance");
        assert_eq!(status, "good");
        assert_eq!(ask(&clm, std::slice::from_ref(&id), None).await, stored);
        // A nonce, or a SHA-256 CertID, is signed fresh.
        let fresh = ask(&clm, std::slice::from_ref(&id), Some(&[1; 8])).await;
        assert_ne!(fresh, stored);
        let sha256 = ask(
            &clm,
            &[cert_id(&ca, &cert.serial_number, OcspHash::Sha256)],
            None,
        )
        .await;
        assert_ne!(sha256, stored);
        assert_eq!(statuses(&sha256), vec![OcspCertStatus::Good]);

        // A hold replaces it in the revocation's transaction; a release again.
        clm.revoke_certificate(
            &clm.system_actor(),
            cert.id,
            RevocationReason::CertificateHold,
            None,
        )
        .await
        .expect("hold");
        let (held, status) = stored_response(&clm, &cert).await.expect("stored");
        assert_eq!(status, "revoked");
        assert_eq!(ask(&clm, std::slice::from_ref(&id), None).await, held);
        assert!(matches!(
            statuses(&held)[0],
            OcspCertStatus::Revoked {
                reason: RevocationReason::CertificateHold,
                ..
            }
        ));
        clm.release_certificate_hold(&clm.system_actor(), cert.id)
            .await
            .expect("release");
        let (_, status) = stored_response(&clm, &cert).await.expect("stored");
        assert_eq!(status, "good");
        assert_eq!(
            statuses(&ask(&clm, std::slice::from_ref(&id), None).await),
            vec![OcspCertStatus::Good]
        );

        // The lifecycle re-signs responses near their nextUpdate, and renews
        // the delegated responder before it ends.
        let before = stored_response(&clm, &cert).await.expect("stored").0;
        let report = clm
            .run_lifecycle(&clm.system_actor(), Utc::now() + Duration::days(3))
            .await
            .expect("lifecycle");
        assert!(report.ocsp.responses_refreshed >= 1, "{:?}", report.ocsp);
        assert!(report.ocsp.errors.is_empty(), "{:?}", report.ocsp);
        let after = stored_response(&clm, &cert).await.expect("stored").0;
        assert_ne!(before, after);
        let report = clm
            .run_lifecycle(&clm.system_actor(), Utc::now() + Duration::days(25))
            .await
            .expect("lifecycle");
        assert!(report.ocsp.signers_renewed >= 1, "{:?}", report.ocsp);
        let responder =
            read_ocsp_response(&ask(&clm, std::slice::from_ref(&id), Some(&[2; 8])).await)
                .expect("read")
                .certificates;
        let responder = clm::crypto::parse_certificate_der(&responder[0]).expect("responder");
        assert!(
            responder.not_after > Utc::now() + Duration::days(25),
            "{}",
            responder.not_after
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_database_answers_try_later() {
    on_both(OcspSettings::default(), |clm| async move {
        let ca = root_ca(&clm).await;
        let cert = leaf(&clm, &ca, "later.example.com").await;
        let id = cert_id(&ca, &cert.serial_number, OcspHash::Sha1);
        clm.close().await;
        let der = ask(&clm, &[id], Some(&[3; 8])).await;
        assert_eq!(status_of(&der), OcspResponseStatus::TryLater);
    })
    .await;
}
