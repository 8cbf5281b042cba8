//! PKCS#10 certificate signing requests (RFC 2986).

use der::asn1::{Any, BitString, SetOfVec};
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use spki::{SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::request::{CertReq, CertReqInfo, ExtensionReq, Version};

use super::certificate::{MAX_CERTIFICATE_LEN, general_name_to_san};
use super::keys::KeyPair;
use super::name::{DistinguishedName, common_name_of, format_name};
use super::pem::{looks_like_pem, pem_blocks};
use super::pkix::{
    Signed, encoding, oid, public_key_info, signature_algorithm_name, verify_signature,
};
use crate::model::SubjectAlternativeName;
use crate::{Error, Result};

const FIELD: &str = "csr";

/// What clm reads from a CSR whose self-signature verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedCsr {
    /// The request as received (DER).
    pub der: Vec<u8>,
    /// Flat view of the subject (known attributes only).
    pub subject: DistinguishedName,
    /// Full subject as an RFC 4514 string.
    pub subject_dn: String,
    /// The subject's first CN, when it is a string.
    pub common_name: Option<String>,
    /// From the extensionRequest attribute's subjectAltName.
    pub subject_alternative_names: Vec<SubjectAlternativeName>,
    /// SubjectPublicKeyInfo DER.
    pub public_key_der: Vec<u8>,
    /// "RSA", "ECDSA", "Ed25519" or the key algorithm's OID.
    pub key_algorithm: String,
    /// RSA modulus bits or curve size; 0 when unknown.
    pub key_size: u32,
    /// The algorithm of the self-signature, e.g. `sha256WithRSAEncryption`.
    pub signature_algorithm: String,
    /// Requested extensions other than subjectAltName, by OID (the issuer
    /// decides extensions; these are informational).
    pub other_requested_extensions: Vec<String>,
    /// SAN kinds the model cannot hold (e.g. `otherName`), skipped.
    pub unsupported_san_kinds: Vec<String>,
}

/// Builds a CSR for `subject` and `sans`, signed by `key`. SANs travel in
/// an extensionRequest attribute, which is left out when there are none.
///
/// Assembled here rather than by x509-cert 0.3's `RequestBuilder`, which
/// always writes an extensionRequest attribute, empty when there is nothing
/// to request: PKCS#9 gives that attribute SIZE (1..MAX), and every CSR
/// without SANs would change.
pub fn build_csr(
    subject: &DistinguishedName,
    sans: &[SubjectAlternativeName],
    key: &KeyPair,
) -> Result<Vec<u8>> {
    if subject.is_empty() && sans.is_empty() {
        return Err(Error::invalid(
            "subject",
            "is empty; give a subject or at least one subject alternative name",
        ));
    }
    for (index, san) in sans.iter().enumerate() {
        san.validate().map_err(|reason| {
            Error::invalid(format!("subject_alternative_names[{index}]"), reason)
        })?;
    }
    let subject_name = subject.to_name()?;
    let public_key = SubjectPublicKeyInfoOwned::from_der(&key.public_key_der())
        .map_err(encoding("public key"))?;
    let mut attributes = SetOfVec::new();
    if !sans.is_empty() {
        let names = sans
            .iter()
            .map(|san| -> der::Result<GeneralName> {
                Ok(match san {
                    SubjectAlternativeName::Dns(v) => {
                        GeneralName::DnsName(der::asn1::Ia5String::new(v)?)
                    }
                    SubjectAlternativeName::Email(v) => {
                        GeneralName::Rfc822Name(der::asn1::Ia5String::new(v)?)
                    }
                    SubjectAlternativeName::Uri(v) => {
                        GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(v)?)
                    }
                    SubjectAlternativeName::Ip(ip) => GeneralName::from(*ip),
                })
            })
            .collect::<der::Result<Vec<_>>>()
            .map_err(|err| Error::invalid("subject_alternative_names", err.to_string()))?;
        // Critical exactly when the subject is empty (RFC 5280 §4.2.1.6).
        let san = SubjectAltName(names)
            .to_extension(&subject_name, &[])
            .map_err(encoding("subjectAltName"))?;
        let attribute =
            Attribute::try_from(ExtensionReq(vec![san])).map_err(encoding("extensionRequest"))?;
        attributes
            .insert(attribute)
            .map_err(encoding("extensionRequest"))?;
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject_name,
        public_key,
        attributes,
    };
    let signature = key.sign(&info.to_der().map_err(encoding("CSR"))?)?;
    let request = CertReq {
        info,
        algorithm: key.algorithm().signature_algorithm(),
        signature: BitString::from_bytes(&signature).map_err(encoding("CSR signature"))?,
    };
    request.to_der().map_err(encoding("CSR"))
}

/// Parses a PEM or DER CSR and verifies its self-signature (RSA PKCS#1 v1.5
/// with SHA-256/384/512, ECDSA P-256/P-384 with SHA-256/384, Ed25519). A
/// signature that does not verify is `Error::Crypto`.
pub fn parse_csr(input: &[u8]) -> Result<ParsedCsr> {
    let der_holder;
    let der: &[u8] = if looks_like_pem(input) {
        let blocks = pem_blocks(input, FIELD)?;
        let mut requests = blocks.into_iter().filter(|b| {
            matches!(
                b.label.as_str(),
                "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST"
            )
        });
        let Some(first) = requests.next() else {
            return Err(Error::invalid(
                FIELD,
                "PEM holds no CERTIFICATE REQUEST block",
            ));
        };
        if requests.next().is_some() {
            return Err(Error::invalid(
                FIELD,
                "PEM holds more than one CERTIFICATE REQUEST",
            ));
        }
        if !first.headers.is_empty() {
            return Err(first.headers_error(FIELD));
        }
        der_holder = first.der;
        &der_holder
    } else {
        input
    };
    if der.is_empty() {
        return Err(Error::invalid(FIELD, "is empty"));
    }
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err(Error::invalid(
            FIELD,
            format!(
                "is {} bytes; at most {MAX_CERTIFICATE_LEN} are accepted",
                der.len()
            ),
        ));
    }
    let request = CertReq::from_der(der)
        .map_err(|err| Error::invalid(FIELD, format!("malformed DER: {err}")))?;
    let signed = Signed::parse(der, FIELD)?;
    let public_key_der = request
        .info
        .public_key
        .to_der()
        .map_err(encoding("public key"))?;
    let signature = signed
        .signature
        .as_bytes()
        .ok_or_else(|| Error::crypto("CSR signature does not verify"))?;
    verify_signature(
        &public_key_der,
        &signed.algorithm,
        &signed.message()?,
        signature,
    )
    .map_err(|err| match err {
        Error::Crypto(reason) if reason.ends_with("does not verify") => {
            Error::crypto("CSR signature does not verify")
        }
        Error::Crypto(reason) => {
            Error::crypto(format!("CSR signature cannot be checked: {reason}"))
        }
        other => other,
    })?;

    let spki = SubjectPublicKeyInfoRef::from_der(&public_key_der)
        .map_err(|err| Error::invalid(FIELD, format!("malformed public key: {err}")))?;
    let key = public_key_info(&spki);
    let mut parsed = ParsedCsr {
        der: der.to_vec(),
        subject: DistinguishedName::from_name(&request.info.subject),
        subject_dn: format_name(&request.info.subject),
        common_name: common_name_of(&request.info.subject),
        subject_alternative_names: Vec::new(),
        public_key_der,
        key_algorithm: key.family,
        key_size: key.bits,
        signature_algorithm: signature_algorithm_name(&request.algorithm.oid),
        other_requested_extensions: Vec::new(),
        unsupported_san_kinds: Vec::new(),
    };
    for attribute in request
        .info
        .attributes
        .iter()
        .filter(|a| a.oid == oid::EXTENSION_REQUEST)
    {
        for value in attribute.values.iter() {
            read_requested_extensions(value, &mut parsed)?;
        }
    }
    Ok(parsed)
}

fn read_requested_extensions(value: &Any, parsed: &mut ParsedCsr) -> Result<()> {
    let extensions: Vec<Extension> = value
        .decode_as()
        .map_err(|err| Error::invalid(FIELD, format!("malformed extensionRequest: {err}")))?;
    for extension in extensions {
        if extension.extn_id != oid::SUBJECT_ALT_NAME {
            parsed
                .other_requested_extensions
                .push(extension.extn_id.to_string());
            continue;
        }
        let san = SubjectAltName::from_der(extension.extn_value.as_bytes())
            .map_err(|err| Error::invalid(FIELD, format!("malformed subjectAltName: {err}")))?;
        for name in &san.0 {
            match general_name_to_san(name) {
                Ok(san) => parsed.subject_alternative_names.push(san),
                Err(kind) => parsed.unsupported_san_kinds.push(kind.to_string()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyAlgorithm;

    /// x509-cert's `ToExtension` writes the extension the hand assembly
    /// wrote: the same OID and bytes, critical only for an empty subject.
    #[test]
    fn requested_san_is_critical_only_without_a_subject() {
        let key = KeyPair::generate(KeyAlgorithm::Ed25519).unwrap();
        let dns = vec![SubjectAlternativeName::Dns("a.example.com".into())];
        for (subject, critical) in [
            (DistinguishedName::parse("CN=a.example.com").unwrap(), false),
            (DistinguishedName::default(), true),
        ] {
            let parsed = parse_csr(&build_csr(&subject, &dns, &key).unwrap()).unwrap();
            assert_eq!(parsed.subject_alternative_names, dns);
            let request = CertReq::from_der(&parsed.der).unwrap();
            let requested: Vec<Extension> = request
                .info
                .attributes
                .iter()
                .find(|a| a.oid == oid::EXTENSION_REQUEST)
                .and_then(|a| a.values.iter().next())
                .unwrap()
                .decode_as()
                .unwrap();
            let san = SubjectAltName(vec![GeneralName::DnsName(
                der::asn1::Ia5String::new("a.example.com").unwrap(),
            )]);
            assert_eq!(
                requested,
                vec![Extension {
                    extn_id: oid::SUBJECT_ALT_NAME,
                    critical,
                    extn_value: der::asn1::OctetString::new(san.to_der().unwrap()).unwrap(),
                }]
            );
        }
        // No SANs: no extensionRequest attribute at all.
        let subject = DistinguishedName::parse("CN=plain").unwrap();
        let der = build_csr(&subject, &[], &key).unwrap();
        assert!(CertReq::from_der(&der).unwrap().info.attributes.is_empty());
    }
}
