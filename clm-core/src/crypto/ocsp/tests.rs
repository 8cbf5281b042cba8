//! Requests read and written, malformed ones refused, responses read back,
//! the responder certificate's profile.

use chrono::{Duration, Utc};

use super::*;
use crate::crypto::{CertificateTemplate, Issuer, build_certificate, parse_certificate_der};
use crate::model::CertificateKind;

fn new_ca() -> (KeyPair, ParsedCertificate) {
    let key = KeyPair::generate(crate::crypto::KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let template = CertificateTemplate::new(
        DistinguishedName::common_name("OCSP Test CA"),
        CertificateKind::RootCa,
        now - Duration::days(1),
        now + Duration::days(365),
    );
    let der = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key))
        .expect("root");
    (key, parse_certificate_der(&der).expect("parse"))
}

fn is_malformed(der: &[u8]) -> bool {
    matches!(parse_ocsp_request(der), Err(Error::InvalidInput { .. }))
}

#[test]
fn requests_round_trip_with_both_hashes_and_a_nonce() {
    let (_, ca) = new_ca();
    let ids = vec![
        OcspCertId::new(&ca, &[0x01, 0x02], OcspHash::Sha1).expect("id"),
        OcspCertId::new(&ca, &[0x7f], OcspHash::Sha256).expect("id"),
    ];
    let der = build_ocsp_request(&ids, Some(&[7u8; 16])).expect("request");
    let request = parse_ocsp_request(&der).expect("parse");
    assert_eq!(request.certificates, ids);
    assert_eq!(request.nonce(), Some(vec![7u8; 16]));
    let hashes = IssuerHashes::of(&ca).expect("hashes");
    assert!(request.certificates.iter().all(|id| hashes.matches(id)));
    assert_eq!(
        request.certificates[0].serial_hex().as_deref(),
        Some("0102")
    );

    let (_, other) = new_ca();
    let foreign = OcspCertId::new(&other, &[1], OcspHash::Sha1).expect("id");
    assert!(!hashes.matches(&foreign));
}

#[test]
fn malformed_requests_are_refused() {
    let (_, ca) = new_ca();
    let id = OcspCertId::new(&ca, &[1], OcspHash::Sha1).expect("id");
    let good = build_ocsp_request(std::slice::from_ref(&id), None).expect("request");
    assert!(parse_ocsp_request(&good).is_ok());
    assert!(is_malformed(&[]));
    assert!(is_malformed(b"not DER at all"));
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(is_malformed(&trailing));
    assert!(is_malformed(&good[..good.len() - 1]));
    assert!(is_malformed(&build_ocsp_request(&[], None).expect("empty")));
    let many = vec![id.clone(); MAX_OCSP_REQUEST_CERTS + 1];
    assert!(is_malformed(
        &build_ocsp_request(&many, None).expect("many")
    ));
    // RFC 8954: 1 to 32 bytes.
    assert!(is_malformed(
        &build_ocsp_request(std::slice::from_ref(&id), Some(&[])).expect("r")
    ));
    assert!(is_malformed(
        &build_ocsp_request(std::slice::from_ref(&id), Some(&[1u8; 33])).expect("r")
    ));
    assert!(
        parse_ocsp_request(
            &build_ocsp_request(std::slice::from_ref(&id), Some(&[1u8; 32])).expect("r")
        )
        .is_ok()
    );
    let long = OcspCertId::new(&ca, &[0x11; MAX_SERIAL_LEN + 1], OcspHash::Sha1).expect("id");
    assert!(is_malformed(&build_ocsp_request(&[long], None).expect("r")));
    assert!(is_malformed(&vec![0x30; MAX_OCSP_REQUEST_LEN + 1]));
}

#[test]
fn error_responses_carry_only_their_status() {
    for status in [
        OcspResponseStatus::MalformedRequest,
        OcspResponseStatus::InternalError,
        OcspResponseStatus::TryLater,
        OcspResponseStatus::Unauthorized,
    ] {
        let der = ocsp_error_response(status);
        let read = read_ocsp_response(&der).expect("read");
        assert_eq!(read.status, status);
        assert!(read.responses.is_empty());
    }
}

#[test]
fn responses_say_what_was_signed_and_echo_the_nonce() {
    let (ca_key, ca) = new_ca();
    let responder = KeyPair::generate(crate::crypto::KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let responder_der = build_ocsp_responder_certificate(
        &ca,
        &ca_key,
        &responder,
        now - Duration::minutes(5),
        now + Duration::days(30),
    )
    .expect("responder");
    let ids = vec![
        OcspCertId::new(&ca, &[1], OcspHash::Sha1).expect("id"),
        OcspCertId::new(&ca, &[2], OcspHash::Sha256).expect("id"),
        OcspCertId::new(&ca, &[3], OcspHash::Sha1).expect("id"),
    ];
    let request =
        parse_ocsp_request(&build_ocsp_request(&ids, Some(&[9u8; 8])).expect("r")).expect("parse");
    let at = DateTime::from_timestamp(now.timestamp(), 0).expect("time");
    let revoked_at = at - Duration::hours(1);
    let statuses = [
        OcspCertStatus::Good,
        OcspCertStatus::Revoked {
            at: revoked_at,
            reason: RevocationReason::KeyCompromise,
        },
        OcspCertStatus::Unknown,
    ];
    let singles: Vec<OcspSingleResponse> = ids
        .iter()
        .zip(statuses)
        .map(|(id, status)| OcspSingleResponse {
            cert_id: id.clone(),
            status,
            this_update: at,
            next_update: at + Duration::days(4),
        })
        .collect();
    let der = build_ocsp_response(
        OcspSigner {
            key: &responder,
            certificate: Some(&responder_der),
        },
        &singles,
        at,
        Some(&request),
    )
    .expect("response");
    let read = read_ocsp_response(&der).expect("read");
    assert_eq!(read.status, OcspResponseStatus::Successful);
    assert_eq!(read.nonce, Some(vec![9u8; 8]));
    assert_eq!(read.certificates, vec![responder_der]);
    assert_eq!(read.validity, Some((at, at + Duration::days(4))));
    assert_eq!(
        read.responses,
        vec![
            (Some(OcspHash::Sha1), vec![1], statuses[0]),
            (Some(OcspHash::Sha256), vec![2], statuses[1]),
            (Some(OcspHash::Sha1), vec![3], statuses[2]),
        ]
    );
}

#[test]
fn the_responder_certificate_is_an_ocsp_signer_and_nothing_else() {
    let (ca_key, ca) = new_ca();
    let responder = KeyPair::generate(crate::crypto::KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let der = build_ocsp_responder_certificate(
        &ca,
        &ca_key,
        &responder,
        now - Duration::minutes(5),
        now + Duration::days(30),
    )
    .expect("responder");
    let parsed = parse_certificate_der(&der).expect("parse");
    assert!(!parsed.is_ca);
    assert_eq!(parsed.key_usage, vec!["digitalSignature".to_string()]);
    assert_eq!(
        parsed.extended_key_usage.len(),
        1,
        "{:?}",
        parsed.extended_key_usage
    );
    assert!(parsed.flags.is_empty(), "{:?}", parsed.flags);
    assert_eq!(parsed.issuer_dn, ca.subject_dn);
    assert_eq!(parsed.authority_key_id, ca.subject_key_id);
    crate::crypto::verify_signed_by(&parsed, &ca.public_key_der).expect("signed by the CA");
    // id-pkix-ocsp-nocheck is present.
    let nocheck = OCSP_NOCHECK.to_der().expect("oid");
    assert!(der.windows(nocheck.len()).any(|w| w == nocheck));

    // Not past the CA, not from a key that is not the CA's.
    assert!(
        build_ocsp_responder_certificate(
            &ca,
            &ca_key,
            &responder,
            now,
            ca.not_after + Duration::days(1)
        )
        .is_err()
    );
    let stranger = KeyPair::generate(crate::crypto::KeyAlgorithm::EcdsaP256).expect("key");
    assert!(
        build_ocsp_responder_certificate(&ca, &stranger, &responder, now, now + Duration::days(1))
            .is_err()
    );
}
