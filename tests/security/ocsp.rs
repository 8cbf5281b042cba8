//! Attacks: ocsp (see main.rs). The responder answers anyone (RFC 6960), so
//! what an answer carries must be the status of the serials asked about and
//! nothing else of any tenant; another tenant's imported copy must not
//! change what the issuing CA says; and the responder's key must not sign
//! anything a client chooses beyond the bounded CertID serial and nonce.

use clm::Clm;
use clm::crypto::ocsp::{
    MAX_OCSP_NONCE_LEN, MAX_SERIAL_LEN, OcspCertId, OcspCertStatus, OcspHash, OcspResponseStatus,
    build_ocsp_request, read_ocsp_response,
};
use clm::crypto::{
    DistinguishedName, ParsedCertificate, parse_certificate_der, parse_certificates,
};
use clm::model::{Certificate, CertificateId, RevocationReason, SubjectAlternativeName};
use clm::service::inventory::ImportRequest;
use clm::store::certificates::Certificates;
use clm::store::get;

use crate::common::on_both_keyed;
use crate::names::{Tenant, example_rules, issued, request, security, tenant};

async fn issue(clm: &Clm, t: &Tenant, name: &str) -> Certificate {
    issued(
        clm.issue_certificate(
            &clm.system_actor(),
            request(
                t,
                DistinguishedName::common_name(name),
                vec![SubjectAlternativeName::Dns(name.into())],
            ),
        )
        .await
        .expect("issue"),
    )
}

fn parsed(certificate: &Certificate) -> ParsedCertificate {
    parse_certificates(certificate.certificate_pem.as_bytes())
        .expect("parse")
        .remove(0)
}

async fn ca_of(clm: &Clm, id: CertificateId) -> ParsedCertificate {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    parsed(
        &get::<Certificates>(&mut conn.conn(), id, false)
            .await
            .expect("CA"),
    )
}

async fn ask(clm: &Clm, ca: &ParsedCertificate, serial: &[u8], nonce: Option<&[u8]>) -> Vec<u8> {
    let id = OcspCertId::new(ca, serial, OcspHash::Sha1).expect("cert id");
    clm.ocsp_respond(&build_ocsp_request(&[id], nonce).expect("request"))
        .await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn ocsp_an_answer_carries_the_status_and_nothing_of_the_certificate() {
    on_both_keyed(security(), |clm| async move {
        let victim = tenant(&clm, example_rules()).await;
        let cert = issue(&clm, &victim, "secret-host.example.com").await;
        let ca = ca_of(&clm, victim.ca).await;
        let serial = hex::decode(&cert.serial_number).expect("hex");
        let leaf = parsed(&cert);
        for nonce in [None, Some(&[7u8; 16][..])] {
            let der = ask(&clm, &ca, &serial, nonce).await;
            let read = read_ocsp_response(&der).expect("read");
            assert_eq!(read.responses[0].2, OcspCertStatus::Good);
            for secret in [
                &b"secret-host"[..],
                cert.certificate_id.as_bytes(),
                victim.org.to_string().as_bytes(),
                cert.id.to_string().as_bytes(),
                &leaf.public_key_der,
                &leaf.der,
            ] {
                assert!(!contains(&der, secret), "the response leaks {secret:?}");
            }
            // The one certificate it carries is the delegated responder's.
            assert_eq!(read.certificates.len(), 1);
            let responder = parse_certificate_der(&read.certificates[0]).expect("responder");
            assert_eq!(responder.common_name.as_deref(), Some("OCSP Responder"));
        }
    })
    .await;
}

#[tokio::test]
async fn ocsp_another_tenants_revoked_copy_changes_nothing() {
    on_both_keyed(security(), |clm| async move {
        let owner = tenant(&clm, example_rules()).await;
        let intruder = tenant(&clm, example_rules()).await;
        let cert = issue(&clm, &owner, "owned.example.com").await;
        let report = clm
            .import_certificates(
                &clm.system_actor(),
                ImportRequest {
                    data: cert.certificate_pem.clone().into_bytes(),
                    organization_id: Some(intruder.org),
                    ..Default::default()
                },
            )
            .await
            .expect("import the public copy");
        let copy = report.imported.first().expect("a copy").clone();
        clm.revoke_certificate(
            &clm.system_actor(),
            copy.id,
            RevocationReason::KeyCompromise,
            None,
        )
        .await
        .expect("revoke the copy");
        let ca = ca_of(&clm, owner.ca).await;
        let serial = hex::decode(&cert.serial_number).expect("hex");
        for nonce in [None, Some(&[1u8; 8][..])] {
            let read = read_ocsp_response(&ask(&clm, &ca, &serial, nonce).await).expect("read");
            assert_eq!(read.responses[0].2, OcspCertStatus::Good, "nonce {nonce:?}");
        }
    })
    .await;
}

#[tokio::test]
async fn ocsp_the_responder_signs_only_bounded_ocsp_answers() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        let cert = issue(&clm, &t, "bounded.example.com").await;
        let ca = ca_of(&clm, t.ca).await;

        // Client-chosen bytes in a signed answer are bounded: a longer serial
        // or nonce is refused unsigned.
        let long_serial = vec![0x11; MAX_SERIAL_LEN + 1];
        let long_nonce = vec![0x22; MAX_OCSP_NONCE_LEN + 1];
        for der in [
            ask(&clm, &ca, &long_serial, None).await,
            ask(&clm, &ca, &[1], Some(&long_nonce)).await,
        ] {
            assert_eq!(
                der,
                vec![0x30, 0x03, 0x0a, 0x01, 0x01],
                "malformedRequest, unsigned"
            );
        }
        // An issuer clm does not hold gets nothing signed either.
        let mut made_up = ca.clone();
        made_up.public_key_der = parsed(&cert).public_key_der;
        let der = ask(&clm, &made_up, &[1], Some(&[3; 8])).await;
        assert_eq!(
            read_ocsp_response(&der).expect("read").status,
            OcspResponseStatus::Unauthorized
        );
        assert_eq!(der.len(), 5);

        // What signs can sign nothing but OCSP: an end entity whose only
        // purpose is OCSPSigning, with no certificate or CRL signing bit.
        let read = read_ocsp_response(&ask(&clm, &ca, &[1], Some(&[4; 8])).await).expect("read");
        let responder = parse_certificate_der(&read.certificates[0]).expect("responder");
        assert!(!responder.is_ca);
        assert_eq!(responder.key_usage, vec!["digitalSignature".to_string()]);
        assert_eq!(responder.extended_key_usage.len(), 1);
        assert!(
            responder.extended_key_usage[0].contains("OCSP")
                || responder.extended_key_usage[0] == "1.3.6.1.5.5.7.3.9",
            "{:?}",
            responder.extended_key_usage
        );
        assert!(responder.not_after <= ca.not_after);
        // Its key is not the CA's.
        assert_ne!(responder.public_key_der, ca.public_key_der);
    })
    .await;
}
