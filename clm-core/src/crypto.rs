//! Pure cryptography: key generation and import, CSRs, certificate parsing
//! and building, CRLs, envelope encryption and secret wrappers. No I/O, no
//! database: services call these functions and store what they return.

pub mod certificate;
pub mod chain_check;
pub mod crl;
pub mod csr;
pub mod envelope;
#[cfg(test)]
mod interop_tests;
pub mod keys;
pub mod name;
pub mod name_constraints;
pub mod ocsp;
// Password hashing, bearer tokens and TOTP live here too (written with the
// identity service).
pub mod password;
// Exports: password-based encryption, PKCS #12 files, PKCS #7 bundles.
pub mod pbe;
pub mod pem;
pub mod pkcs12;
pub mod pkcs7;
mod pkix;
pub mod secret;
pub mod token;
pub mod totp;

pub use certificate::{
    CertificateTemplate, Issuer, MAX_CERTIFICATE_LEN, ParsedBundle, ParsedCertificate,
    SkippedBlock, build_certificate, parse_certificate_bundle, parse_certificate_der,
    parse_certificates, random_serial, serial_from_text, signed_serial, verify_signed_by,
};
pub use crl::{CrlBuilder, CrlEntry, CrlScope, SignedCrl, build_crl, crl_partition};
pub use csr::{ParsedCsr, build_csr, parse_csr};
pub use envelope::{Sealed, aad, generate_data_key, open, open_parts, seal, sealed_key_version};
pub use keys::{KeyAlgorithm, KeyInfo, KeyPair};
pub use name::DistinguishedName;
pub use name_constraints::{NameConstraints, NameSubtree, PresentedName};
pub use pbe::{check_export_password, check_iterations};
pub use pem::{PemLabel, der_to_pem};
pub use pkcs12::{Pkcs12Contents, Pkcs12Encryption, build_pkcs12};
pub use pkix::spki_sha256;
pub use secret::{SecretBytes, SecretString, random_bytes};
