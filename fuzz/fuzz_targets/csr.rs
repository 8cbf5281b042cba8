//! CSR parsing and self-signature verification (PEM or DER), as issuance
//! from a CSR reads it.
//!
//! Checked on every CSR that parses: the public key it carries is one clm
//! can read back, and its subject survives RFC 4514 text.
#![no_main]

use clm::crypto::{DistinguishedName, parse_csr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(csr) = parse_csr(data) else {
        return;
    };
    assert!(!csr.der.is_empty());
    assert!(!csr.public_key_der.is_empty());
    // The subject's structured form (the fields clm models) survives its
    // own RFC 4514 text when it is valid.
    if csr.subject.validate().is_ok() {
        let text = csr.subject.to_rfc4514();
        let back = DistinguishedName::parse(&text)
            .unwrap_or_else(|err| panic!("{text:?} (from a CSR subject) does not parse: {err}"));
        assert_eq!(back, clm_fuzz::without_empty(&csr.subject), "{text:?}");
    }
});
