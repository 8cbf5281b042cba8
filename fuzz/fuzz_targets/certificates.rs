//! PEM, DER and bundle certificate parsing (what an import reads), then
//! what clm derives from a parsed certificate: its name constraints, its
//! OCSP issuer hashes and a signature check against its own key.
//!
//! Checked on every input that parses: the fingerprint is the SHA-256 of
//! the DER kept, the serial's hex gives back its bytes, and the PEM clm
//! writes parses back to the same certificate.
#![no_main]

use clm::crypto::ocsp::IssuerHashes;
use clm::crypto::{NameConstraints, PresentedName, parse_certificates, verify_signed_by};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    let Ok(certificates) = parse_certificates(data) else {
        return;
    };
    assert!(
        !certificates.is_empty(),
        "a successful parse returned no certificate"
    );
    for certificate in &certificates {
        let fingerprint: String = Sha256::digest(&certificate.der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(certificate.fingerprint_sha256, fingerprint);
        let serial = certificate.serial_bytes();
        assert_eq!(
            serial
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            certificate.serial_hex
        );
        let again = parse_certificates(certificate.pem.as_bytes())
            .expect("the PEM clm wrote for a parsed certificate parses");
        assert_eq!(again.len(), 1);
        assert_eq!(
            &again[0], certificate,
            "PEM round trip changed the certificate"
        );

        // Only its own key can have signed a self-signed certificate; the
        // answer does not matter, only that nothing panics.
        let _ = verify_signed_by(certificate, &certificate.public_key_der);
        let _ = IssuerHashes::of(certificate);
        if let Ok(Some(constraints)) = NameConstraints::of_certificate(&certificate.der) {
            for san in &certificate.subject_alternative_names {
                let name = match san {
                    clm::model::SubjectAlternativeName::Dns(name) => {
                        PresentedName::Dns(name.clone())
                    }
                    clm::model::SubjectAlternativeName::Ip(ip) => PresentedName::Ip(*ip),
                    clm::model::SubjectAlternativeName::Email(email) => {
                        PresentedName::Email(email.clone())
                    }
                    clm::model::SubjectAlternativeName::Uri(uri) => PresentedName::Uri(uri.clone()),
                };
                let _ = constraints.violation(&name);
            }
            if let Some(name) = certificate
                .common_name
                .as_deref()
                .and_then(PresentedName::from_common_name)
            {
                let _ = constraints.violation(&name);
            }
            let _ = constraints.to_extension();
        }
    }
});
