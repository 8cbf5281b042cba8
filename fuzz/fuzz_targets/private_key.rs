//! Private key import: PKCS#8, PKCS#1 (RSA) and SEC1 (EC), in PEM or DER,
//! as an import with a key or a CA import reads them.
//!
//! Checked on every key that imports: its PKCS#8 form imports again to the
//! same public key, and a CSR it signs verifies.
#![no_main]

use clm::crypto::{DistinguishedName, KeyPair, build_csr, parse_csr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let from_der = KeyPair::from_der(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let from_pem = KeyPair::from_pem(text);
        if let (Ok(a), Ok(b)) = (&from_pem, &from_der) {
            assert_eq!(
                a.public_key_der(),
                b.public_key_der(),
                "PEM and DER readers disagree"
            );
        }
    }
    let Ok(key) = from_der else {
        return;
    };
    let again = KeyPair::from_der(key.to_pkcs8_der().expose())
        .expect("the PKCS#8 DER clm wrote for an imported key imports");
    assert_eq!(again.public_key_der(), key.public_key_der());
    assert_eq!(again.algorithm(), key.algorithm());
    let pem = KeyPair::from_pem(key.to_pkcs8_pem().expose())
        .expect("the PKCS#8 PEM clm wrote for an imported key imports");
    assert_eq!(pem.public_key_der(), key.public_key_der());
    assert!(key.matches_public_key(&key.public_key_der()));

    let csr = build_csr(&DistinguishedName::common_name("fuzz.example"), &[], &key)
        .expect("an imported key signs a CSR");
    let parsed = parse_csr(&csr).expect("a CSR signed by an imported key verifies");
    assert!(key.matches_public_key(&parsed.public_key_der));
});
