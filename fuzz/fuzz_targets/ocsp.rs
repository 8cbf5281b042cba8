//! The OCSP responder: `Clm::ocsp_respond` on raw request bytes, against a
//! SQLite store holding one CA (two leaves, one revoked). The same bytes go
//! to the request parser and to the response reader.
//!
//! A request that parses is also rebuilt with the CA's issuer hashes (a
//! one-byte serial n < 2 stands for leaf n), so the fuzzer reaches the
//! status lookups and the signing, not only the refusals; the answer must
//! be a successful response naming every serial asked, good for the live
//! leaf, revoked for the revoked one, unknown for anything else, with the
//! nonce echoed.
#![no_main]

use std::sync::OnceLock;

use clm::crypto::ocsp::{
    IssuerHashes, OcspCertId, OcspCertStatus, OcspHash, OcspResponseStatus, build_ocsp_request,
    ocsp_response_status, parse_ocsp_request, read_ocsp_response,
};
use clm::crypto::{DistinguishedName, KeyAlgorithm, parse_certificates};
use clm::model::{CertificateKind, RevocationReason, SubjectAlternativeName};
use clm::service::authorities::NewCertificateAuthority;
use clm::service::issuance::{IssueRequest, KeySource};
use clm_fuzz::Store;
use libfuzzer_sys::fuzz_target;

struct Responder {
    store: Store,
    hashes: IssuerHashes,
    /// Serial bytes of the live leaf, then of the revoked one.
    leaves: [Vec<u8>; 2],
}

fn responder() -> &'static Responder {
    static RESPONDER: OnceLock<Responder> = OnceLock::new();
    RESPONDER.get_or_init(|| {
        let store = Store::open("ocsp");
        let clm = &store.clm;
        let system = clm.system_actor();
        let (hashes, leaves) = store.runtime.block_on(async {
            let ca = clm
                .create_root_ca(
                    &system,
                    NewCertificateAuthority {
                        subject: DistinguishedName::common_name("Fuzz OCSP Root"),
                        key_algorithm: KeyAlgorithm::EcdsaP256,
                        ..Default::default()
                    },
                )
                .await
                .expect("root CA");
            let parsed = parse_certificates(ca.certificate.certificate_pem.as_bytes())
                .expect("the CA certificate parses");
            let hashes = IssuerHashes::of(&parsed[0]).expect("issuer hashes");
            let mut leaves = Vec::new();
            for name in ["good.fuzz.example", "revoked.fuzz.example"] {
                let outcome = clm
                    .issue_certificate(
                        &system,
                        IssueRequest {
                            issuer_id: ca.certificate.id,
                            policy_id: None,
                            subject: DistinguishedName::common_name(name),
                            sans: vec![SubjectAlternativeName::Dns(name.into())],
                            kind: CertificateKind::TlsServer,
                            validity_days: 30,
                            key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                            owner_user_id: None,
                            organization_id: None,
                        },
                    )
                    .await
                    .expect("leaf");
                leaves.push(outcome.certificate().expect("issued, not queued").clone());
            }
            clm.revoke_certificate(&system, leaves[1].id, RevocationReason::KeyCompromise, None)
                .await
                .expect("revoke");
            let serial = |i: usize| hex_bytes(&leaves[i].serial_number);
            (hashes, [serial(0), serial(1)])
        });
        Responder {
            store,
            hashes,
            leaves,
        }
    })
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex serial"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let responder = responder();
    let store = &responder.store;
    let _ = read_ocsp_response(data);

    let parsed = parse_ocsp_request(data);
    let response = store.runtime.block_on(store.clm.ocsp_respond(data));
    let status = ocsp_response_status(&response).expect("the responder answers DER");
    if parsed.is_err() {
        assert_eq!(status, OcspResponseStatus::MalformedRequest);
    }
    let Ok(request) = parsed else {
        return;
    };

    // The same request about this CA.
    let mut ids = Vec::new();
    for id in &request.certificates {
        let serial = match id.serial.as_slice() {
            [n] if usize::from(*n) < responder.leaves.len() => {
                responder.leaves[usize::from(*n)].clone()
            }
            other => other.to_vec(),
        };
        let hash = id.hash.unwrap_or(OcspHash::Sha1);
        let Ok(ours) = OcspCertId::with_hashes(&responder.hashes, &serial, hash) else {
            return;
        };
        ids.push(ours);
    }
    let nonce = request.nonce();
    let Ok(rebuilt) = build_ocsp_request(&ids, nonce.as_deref()) else {
        return;
    };
    if parse_ocsp_request(&rebuilt).is_err() {
        // The parser's limits (an empty serial, say) hold for ours too.
        return;
    }
    let response = store.runtime.block_on(store.clm.ocsp_respond(&rebuilt));
    let summary = read_ocsp_response(&response).expect("clm reads its own response");
    assert_eq!(summary.status, OcspResponseStatus::Successful);
    assert_eq!(summary.responses.len(), ids.len());
    assert_eq!(summary.nonce, nonce);
    for ((_, serial, status), asked) in summary.responses.iter().zip(&ids) {
        assert_eq!(serial, &asked.serial);
        if *serial == responder.leaves[0] {
            assert_eq!(status, &OcspCertStatus::Good);
        } else if *serial == responder.leaves[1] {
            assert!(
                matches!(status, OcspCertStatus::Revoked { .. }),
                "{status:?}"
            );
        } else {
            assert_eq!(status, &OcspCertStatus::Unknown, "serial {serial:02x?}");
        }
    }
});
