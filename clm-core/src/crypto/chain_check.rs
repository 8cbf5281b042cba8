//! The issuance self-check: every certificate clm signs is validated
//! against its own chain before it is stored or returned, by code that does
//! not share the builder's (`certificate.rs`): x509-cert's strict parser,
//! rustls-webpki's signature verification, and, for end-entity
//! certificates, webpki's whole path validation (signatures, validity,
//! basic constraints, path length, extended key usage, DNS and IP name
//! constraints). webpki cannot end a path at a CA certificate and refuses
//! every directoryName, URI and e-mail constraint, so the checks below
//! cover those, for every path: names, validity nesting, path length, CA
//! flags and key usage.

use chrono::{DateTime, Utc};
use der::{Decode, Encode};
use rustls_pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm, UnixTime,
};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectAltName};
use x509_cert::time::Time;

use super::name::common_name_of;
use super::name_constraints::{NameConstraints, PresentedName, Subtree};
use super::pkix::oid;
use crate::model::CertificateKind;
use crate::{Error, Result};

/// What a self-check failure says: an internal error (clm built something
/// it must not hand out), naming the check.
fn failed(what: impl std::fmt::Display) -> Error {
    Error::Internal(format!("issuance self-check failed: {what}"))
}

/// One certificate of the path, read by x509-cert alone.
struct Link<'a> {
    der: &'a [u8],
    certificate: Certificate,
    basic: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    constraints: Option<NameConstraints>,
}

impl<'a> Link<'a> {
    fn read(der: &'a [u8], role: &str) -> Result<Self> {
        let certificate = Certificate::from_der(der)
            .map_err(|err| failed(format!("the {role} certificate does not parse: {err}")))?;
        let extensions = certificate
            .tbs_certificate()
            .extensions()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut basic = None;
        let mut key_usage = None;
        for extension in extensions {
            let value = extension.extn_value.as_bytes();
            match extension.extn_id {
                oid::BASIC_CONSTRAINTS => {
                    basic = Some(BasicConstraints::from_der(value).map_err(|err| {
                        failed(format!("{role} basicConstraints is malformed: {err}"))
                    })?);
                }
                oid::KEY_USAGE => {
                    key_usage =
                        Some(KeyUsage::from_der(value).map_err(|err| {
                            failed(format!("{role} keyUsage is malformed: {err}"))
                        })?);
                }
                _ => {}
            }
        }
        let constraints = NameConstraints::of_extensions(extensions)
            .map_err(|err| failed(format!("{role} NameConstraints: {err}")))?;
        Ok(Link {
            der,
            certificate,
            basic,
            key_usage,
            constraints,
        })
    }

    fn is_ca(&self) -> bool {
        self.basic.as_ref().is_some_and(|b| b.ca)
    }

    fn validity(&self) -> (i64, i64) {
        let seconds =
            |time: &Time| i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        let validity = self.certificate.tbs_certificate().validity();
        (seconds(&validity.not_before), seconds(&validity.not_after))
    }

    /// The names constraints judge: the subject (when not empty), its CN
    /// when that is a host name or IP (not a CA's: that names the CA), its
    /// emailAddress, and every SAN.
    fn names(&self) -> Result<Vec<PresentedName>> {
        let tbs = self.certificate.tbs_certificate();
        let subject = tbs.subject();
        let mut names = Vec::new();
        if !subject.is_empty() {
            names.push(PresentedName::DirectoryName(subject.clone()));
        }
        if !self.is_ca()
            && let Some(cn) = common_name_of(subject)
            && let Some(name) = PresentedName::from_common_name(&cn)
        {
            names.push(name);
        }
        for atv in subject.iter().filter(|atv| atv.oid == oid::EMAIL_ADDRESS) {
            if let Ok(text) = der::asn1::Ia5StringRef::try_from(&atv.value) {
                names.push(PresentedName::Email(text.to_string()));
            }
        }
        let sans = tbs
            .extensions()
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .find(|e| e.extn_id == oid::SUBJECT_ALT_NAME);
        if let Some(extension) = sans {
            let sans = SubjectAltName::from_der(extension.extn_value.as_bytes())
                .map_err(|err| failed(format!("subjectAltName is malformed: {err}")))?;
            for name in &sans.0 {
                names.push(match name {
                    GeneralName::DnsName(dns) => PresentedName::Dns(dns.to_string()),
                    GeneralName::Rfc822Name(email) => PresentedName::Email(email.to_string()),
                    GeneralName::UniformResourceIdentifier(uri) => {
                        PresentedName::Uri(uri.to_string())
                    }
                    GeneralName::IpAddress(octets) => {
                        let bytes = octets.as_bytes();
                        let ip = <[u8; 4]>::try_from(bytes)
                            .map(std::net::IpAddr::from)
                            .or_else(|_| <[u8; 16]>::try_from(bytes).map(std::net::IpAddr::from))
                            .map_err(|_| failed("an IP SAN is neither 4 nor 16 bytes"))?;
                        PresentedName::Ip(ip)
                    }
                    GeneralName::DirectoryName(name) => PresentedName::DirectoryName(name.clone()),
                    other => return Err(failed(format!("clm does not sign SAN {other:?}"))),
                });
            }
        }
        Ok(names)
    }
}

/// Verifies `child`'s signature with `parent`'s key, through webpki.
fn verify_link_signature(child: &Link<'_>, parent: &Link<'_>) -> Result<()> {
    let algorithm = child
        .certificate
        .signature_algorithm()
        .to_der()
        .map_err(|err| failed(format!("signatureAlgorithm: {err}")))?;
    // webpki names algorithms by their AlgorithmIdentifier's content octets.
    let content = der::asn1::AnyRef::from_der(&algorithm)
        .map(|any| any.value().to_vec())
        .map_err(|err| failed(format!("signatureAlgorithm: {err}")))?;
    let tbs = child
        .certificate
        .tbs_certificate()
        .to_der()
        .map_err(|err| failed(format!("tbsCertificate: {err}")))?;
    let signature = child
        .certificate
        .signature()
        .as_bytes()
        .ok_or_else(|| failed("the signature has unused bits"))?;
    let parent_der = CertificateDer::from(parent.der);
    let signer = webpki::EndEntityCert::try_from(&parent_der)
        .map_err(|err| failed(format!("webpki cannot read the issuer: {err}")))?;
    let mut last = None;
    for candidate in verification_algorithms() {
        if candidate.signature_alg_id().as_ref() != content.as_slice() {
            continue;
        }
        match signer.verify_signature(*candidate, &tbs, signature) {
            Ok(()) => return Ok(()),
            Err(err) => last = Some(err),
        }
    }
    Err(failed(match last {
        Some(err) => format!("the signature does not verify with the issuer's key: {err}"),
        None => "webpki knows no such signature algorithm".to_string(),
    }))
}

/// How many verified signatures [`Remembering`] keeps: enough for the
/// links above every issuer a busy process signs with at once.
const REMEMBERED_SIGNATURES: usize = 64;

/// Digests of (algorithms, public key, message, signature) found valid,
/// oldest overwritten first.
struct RecentlyVerified {
    digests: [[u8; 32]; REMEMBERED_SIGNATURES],
    filled: usize,
    next: usize,
}

static RECENTLY_VERIFIED: std::sync::Mutex<RecentlyVerified> =
    std::sync::Mutex::new(RecentlyVerified {
        digests: [[0; 32]; REMEMBERED_SIGNATURES],
        filled: 0,
        next: 0,
    });

/// One of webpki's verification algorithms that remembers the signatures
/// it recently found valid. Checking every issued certificate's path
/// verifies the same CA links each time (an intermediate's signature by
/// its root, for every leaf under it): the same key, message and signature
/// give the same answer, so a remembered success is reused and each
/// issuance pays for its own certificate's signature alone. Only successes
/// are remembered, under a SHA-256 digest of everything verified.
#[derive(Debug)]
struct Remembering {
    inner: &'static dyn SignatureVerificationAlgorithm,
}

impl Remembering {
    fn digest(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in [
            self.inner.public_key_alg_id().as_ref(),
            self.inner.signature_alg_id().as_ref(),
            public_key,
            message,
            signature,
        ] {
            // Length-prefixed: no two different inputs hash as one.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        hasher.finalize().into()
    }
}

impl SignatureVerificationAlgorithm for Remembering {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> std::result::Result<(), InvalidSignature> {
        let digest = self.digest(public_key, message, signature);
        // A poisoned lock only costs the shortcut: verify in full.
        if let Ok(recent) = RECENTLY_VERIFIED.lock()
            && recent.digests[..recent.filled].contains(&digest)
        {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        if let Ok(mut recent) = RECENTLY_VERIFIED.lock() {
            let slot = recent.next;
            recent.digests[slot] = digest;
            recent.next = (slot + 1) % REMEMBERED_SIGNATURES;
            recent.filled = (recent.filled + 1).min(REMEMBERED_SIGNATURES);
        }
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

/// webpki's algorithms, each [`Remembering`].
fn verification_algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    static REMEMBERING: std::sync::LazyLock<Vec<Remembering>> = std::sync::LazyLock::new(|| {
        webpki::ALL_VERIFICATION_ALGS
            .iter()
            .map(|inner| Remembering { inner: *inner })
            .collect()
    });
    static ALGORITHMS: std::sync::LazyLock<Vec<&'static dyn SignatureVerificationAlgorithm>> =
        std::sync::LazyLock::new(|| {
            REMEMBERING
                .iter()
                .map(|algorithm| algorithm as &dyn SignatureVerificationAlgorithm)
                .collect()
        });
    &ALGORITHMS
}

/// Checks `certificate_der`, issued as `kind`, against `chain` (its issuer
/// first, up to the highest CA clm holds), at `at`. A self-signed root has
/// an empty chain. Any failure is `Error::Internal`.
pub fn verify_issued(
    certificate_der: &[u8],
    kind: CertificateKind,
    chain: &[Vec<u8>],
    at: DateTime<Utc>,
) -> Result<()> {
    verify_path(certificate_der, Purpose::Kind(kind), chain, at)
}

/// Checks a delegated OCSP responder certificate (an end entity for
/// id-kp-OCSPSigning) against `chain`, as [`verify_issued`] does.
pub fn verify_ocsp_responder(
    certificate_der: &[u8],
    chain: &[Vec<u8>],
    at: DateTime<Utc>,
) -> Result<()> {
    verify_path(certificate_der, Purpose::OcspSigning, chain, at)
}

/// What a checked certificate is for: a kind clm issues, or a delegated
/// OCSP responder (not a kind of the schema's).
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Kind(CertificateKind),
    OcspSigning,
}

fn verify_path(
    certificate_der: &[u8],
    purpose: Purpose,
    chain: &[Vec<u8>],
    at: DateTime<Utc>,
) -> Result<()> {
    let target = Link::read(certificate_der, "issued")?;
    let mut path = vec![target];
    for (index, der) in chain.iter().enumerate() {
        path.push(Link::read(
            der,
            &format!("chain #{}", index.saturating_add(1)),
        )?);
    }
    let ca_kind = matches!(
        purpose,
        Purpose::Kind(CertificateKind::RootCa | CertificateKind::IntermediateCa)
    );
    check_target(&path[0], ca_kind, at)?;
    // webpki verifies every signature of a path it validates; otherwise
    // they are verified here, through webpki's primitives.
    let by_webpki = !ca_kind && !chain.is_empty() && webpki_understands(&path);
    if chain.is_empty() {
        // A root: its own issuer.
        check_link(&path[0], &path[0], true, false)?;
    }
    let last = path.len().saturating_sub(1);
    for (index, pair) in path.windows(2).enumerate() {
        // The top CA is the trust anchor: like webpki, take its flags as
        // given when it only anchors (an old v1 root above an imported
        // intermediate); the direct issuer must be a CA whatever it is.
        let anchor_only = index > 0 && index.saturating_add(1) == last;
        check_link(&pair[0], &pair[1], !by_webpki, anchor_only)?;
    }
    check_path_lengths(&path)?;
    check_name_constraints(&path)?;
    if by_webpki {
        check_with_webpki(&path, purpose, at)?;
    }
    Ok(())
}

fn check_target(target: &Link<'_>, ca_kind: bool, at: DateTime<Utc>) -> Result<()> {
    let (not_before, not_after) = target.validity();
    let now = at.timestamp();
    if now < not_before || now > not_after {
        return Err(failed("the certificate is not valid now"));
    }
    if ca_kind {
        if !target.is_ca() {
            return Err(failed("a CA certificate without basicConstraints CA:TRUE"));
        }
        if !target
            .key_usage
            .as_ref()
            .is_some_and(|ku| ku.0.contains(KeyUsages::KeyCertSign))
        {
            return Err(failed("a CA certificate without keyUsage keyCertSign"));
        }
    } else if target.is_ca() {
        return Err(failed("an end-entity certificate says CA:TRUE"));
    }
    Ok(())
}

/// Name chaining, signature (when `signature`), the issuer's CA flags
/// (unless it is `anchor_only`), and validity nesting.
fn check_link(
    child: &Link<'_>,
    parent: &Link<'_>,
    signature: bool,
    anchor_only: bool,
) -> Result<()> {
    let child_tbs = child.certificate.tbs_certificate();
    let parent_tbs = parent.certificate.tbs_certificate();
    if child_tbs.issuer() != parent_tbs.subject() {
        return Err(failed(format!(
            "issuer name {} is not the CA's subject {}",
            child_tbs.issuer(),
            parent_tbs.subject()
        )));
    }
    if !anchor_only && !parent.is_ca() {
        return Err(failed(format!(
            "issuer {} is not a CA (basicConstraints)",
            parent_tbs.subject()
        )));
    }
    if !anchor_only
        && let Some(usage) = &parent.key_usage
        && !usage.0.contains(KeyUsages::KeyCertSign)
    {
        return Err(failed(format!(
            "issuer {} lacks keyUsage keyCertSign",
            parent_tbs.subject()
        )));
    }
    if signature {
        verify_link_signature(child, parent)?;
    }
    let (child_from, child_to) = child.validity();
    let (parent_from, parent_to) = parent.validity();
    if child_from < parent_from || child_to > parent_to {
        return Err(failed(format!(
            "the validity of {} does not nest inside its issuer {}",
            child_tbs.subject(),
            parent_tbs.subject()
        )));
    }
    Ok(())
}

/// Each CA's pathLenConstraint bounds the CA certificates below it,
/// a CA certificate at the end of the path included (it exists to issue).
fn check_path_lengths(path: &[Link<'_>]) -> Result<()> {
    for (index, link) in path.iter().enumerate().skip(1) {
        let Some(limit) = link.basic.as_ref().and_then(|b| b.path_len_constraint) else {
            continue;
        };
        let below = path[..index].iter().filter(|l| l.is_ca()).count();
        if below > usize::from(limit) {
            return Err(failed(format!(
                "{} CA certificates below {}, whose pathLenConstraint is {limit}",
                below,
                link.certificate.tbs_certificate().subject()
            )));
        }
    }
    Ok(())
}

/// The issued certificate's names against every CA's constraints above it.
fn check_name_constraints(path: &[Link<'_>]) -> Result<()> {
    let names = path[0].names()?;
    for link in &path[1..] {
        let Some(constraints) = &link.constraints else {
            continue;
        };
        for name in &names {
            if let Some(why) = constraints.violation(name) {
                return Err(failed(format!(
                    "{why} of CA {}",
                    link.certificate.tbs_certificate().subject()
                )));
            }
        }
    }
    Ok(())
}

/// Whether webpki can judge every constraint of the path: it handles DNS
/// and IP subtrees and fails closed on the other forms.
fn webpki_understands(path: &[Link<'_>]) -> bool {
    path.iter().filter_map(|l| l.constraints.as_ref()).all(|c| {
        c.permitted
            .iter()
            .chain(&c.excluded)
            .all(|s| matches!(s, Subtree::Dns(_) | Subtree::Ip(_)))
    })
}

/// webpki's whole path validation of an end-entity certificate: the top
/// CA as trust anchor (its name constraints included), the others as
/// intermediates, the extended key usage the kind implies.
fn check_with_webpki(path: &[Link<'_>], purpose: Purpose, at: DateTime<Utc>) -> Result<()> {
    const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
    const EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];
    const OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
    let kind = match purpose {
        Purpose::Kind(kind) => kind,
        Purpose::OcspSigning => {
            // webpki's `required` also demands the EKU of every CA on the
            // path, which CAs rarely carry: the responder's own is checked
            // here, webpki only refuses a CA whose EKU excludes OCSP.
            if !has_extended_key_usage(&path[0], const_oid::db::rfc5280::ID_KP_OCSP_SIGNING)? {
                return Err(failed(
                    "a delegated OCSP responder without id-kp-OCSPSigning",
                ));
            }
            return check_with_usage(
                path,
                webpki::KeyUsage::required_if_present(OCSP_SIGNING),
                at,
            );
        }
    };
    let usage = match kind {
        CertificateKind::TlsServer | CertificateKind::TlsServerClient => {
            webpki::KeyUsage::server_auth()
        }
        CertificateKind::TlsClient => webpki::KeyUsage::client_auth(),
        CertificateKind::CodeSigning => webpki::KeyUsage::required(CODE_SIGNING),
        CertificateKind::Email => webpki::KeyUsage::required(EMAIL_PROTECTION),
        _ => webpki::KeyUsage::required_if_present(CODE_SIGNING),
    };
    check_with_usage(path, usage, at)
}

/// Whether `link` carries an extendedKeyUsage extension listing `purpose`.
fn has_extended_key_usage(link: &Link<'_>, purpose: const_oid::ObjectIdentifier) -> Result<bool> {
    let extensions = link
        .certificate
        .tbs_certificate()
        .extensions()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for extension in extensions {
        if extension.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE {
            let usages =
                x509_cert::ext::pkix::ExtendedKeyUsage::from_der(extension.extn_value.as_bytes())
                    .map_err(|err| failed(format!("extendedKeyUsage does not parse: {err}")))?;
            return Ok(usages.0.contains(&purpose));
        }
    }
    Ok(false)
}

fn check_with_usage(path: &[Link<'_>], usage: webpki::KeyUsage, at: DateTime<Utc>) -> Result<()> {
    let end = CertificateDer::from(path[0].der);
    let Some((top, middle)) = path[1..].split_last() else {
        return Ok(());
    };
    let top_der = CertificateDer::from(top.der);
    let anchor = webpki::anchor_from_trusted_cert(&top_der)
        .map_err(|err| failed(format!("webpki cannot read the top CA: {err}")))?;
    let intermediates: Vec<CertificateDer<'_>> =
        middle.iter().map(|l| CertificateDer::from(l.der)).collect();
    let end_entity = webpki::EndEntityCert::try_from(&end)
        .map_err(|err| failed(format!("webpki cannot read the certificate: {err}")))?;
    let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
    end_entity
        .verify_for_usage(
            verification_algorithms(),
            &[anchor],
            &intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds)),
            usage,
            None,
            None,
        )
        .map_err(|err| failed(format!("webpki refuses the path: {err}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{
        CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, NameSubtree,
        build_certificate, parse_certificate_der,
    };
    use crate::model::SubjectAlternativeName;

    struct Ca {
        key: KeyPair,
        der: Vec<u8>,
    }

    fn window(days: i64) -> (DateTime<Utc>, DateTime<Utc>) {
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        (
            now - chrono::Duration::minutes(1),
            now + chrono::Duration::days(days),
        )
    }

    fn root(cn: &str, path_len: Option<u8>, constraints: Option<NameConstraints>) -> Ca {
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let (from, to) = window(3650);
        let mut t = CertificateTemplate::new(
            DistinguishedName::parse(&format!("CN={cn},O=Example,C=US")).unwrap(),
            CertificateKind::RootCa,
            from,
            to,
        );
        t.path_len = path_len;
        t.name_constraints = constraints;
        let der = build_certificate(&t, &key.public_key_der(), Issuer::SelfSigned(&key)).unwrap();
        Ca { key, der }
    }

    fn issue(
        issuer: &Ca,
        kind: CertificateKind,
        subject: &str,
        sans: Vec<SubjectAlternativeName>,
        days: i64,
    ) -> Ca {
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let (from, to) = window(days);
        let mut t =
            CertificateTemplate::new(DistinguishedName::parse(subject).unwrap(), kind, from, to);
        t.subject_alternative_names = sans;
        let parsed = parse_certificate_der(&issuer.der).unwrap();
        let der = build_certificate(
            &t,
            &key.public_key_der(),
            Issuer::Ca {
                certificate: &parsed,
                key: &issuer.key,
            },
        )
        .unwrap();
        Ca { key, der }
    }

    /// The last byte of the DER is in the signature: flipping it keeps the
    /// certificate readable and breaks its signature.
    fn with_broken_signature(der: &[u8]) -> Vec<u8> {
        let mut broken = der.to_vec();
        if let Some(last) = broken.last_mut() {
            *last ^= 0x01;
        }
        broken
    }

    /// Remembered signatures are exactly those verified: after a path
    /// passed (its CA link remembered), the same path with that link's
    /// signature broken, or with the leaf's broken, still fails.
    #[test]
    fn a_remembered_link_never_passes_a_different_signature() {
        let top = root("Remembered Root", Some(1), None);
        let inter = issue(
            &top,
            CertificateKind::IntermediateCa,
            "CN=Remembered Inter",
            vec![],
            1825,
        );
        let leaf = issue(
            &inter,
            CertificateKind::TlsServer,
            "CN=remembered.example.com",
            dns("remembered.example.com"),
            30,
        );
        let at = Utc::now();
        let chain = vec![inter.der.clone(), top.der.clone()];
        for _ in 0..2 {
            verify_issued(&leaf.der, CertificateKind::TlsServer, &chain, at)
                .expect("the genuine path passes, remembered or not");
        }
        let broken_chain = vec![with_broken_signature(&inter.der), top.der.clone()];
        let err = verify_issued(&leaf.der, CertificateKind::TlsServer, &broken_chain, at)
            .expect_err("a broken CA link fails");
        assert!(err.to_string().contains("webpki refuses the path"), "{err}");
        let err = verify_issued(
            &with_broken_signature(&leaf.der),
            CertificateKind::TlsServer,
            &chain,
            at,
        )
        .expect_err("a broken leaf signature fails");
        assert!(err.to_string().contains("webpki refuses the path"), "{err}");
    }

    /// A delegated OCSP responder below an intermediate: the intermediate
    /// carries no extendedKeyUsage, which must not fail the responder
    /// (webpki's `required` usage demanded it of every CA on the path); a
    /// TLS leaf is no responder.
    #[test]
    fn ocsp_responders_below_an_intermediate_pass_and_other_leaves_do_not() {
        // As the Python suite's PKI: a P-384 root allowing one level, a
        // P-256 intermediate allowing none.
        let top_key = KeyPair::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let (from, to) = window(3650);
        let mut t = CertificateTemplate::new(
            DistinguishedName::parse("CN=OCSP Root,O=Example,C=US").unwrap(),
            CertificateKind::RootCa,
            from,
            to,
        );
        t.path_len = Some(1);
        let top = Ca {
            der: build_certificate(&t, &top_key.public_key_der(), Issuer::SelfSigned(&top_key))
                .unwrap(),
            key: top_key,
        };
        let inter_key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let (from, to) = window(1825);
        let mut t = CertificateTemplate::new(
            DistinguishedName::parse("CN=OCSP Inter").unwrap(),
            CertificateKind::IntermediateCa,
            from,
            to,
        );
        t.path_len = Some(0);
        let inter = Ca {
            der: build_certificate(
                &t,
                &inter_key.public_key_der(),
                Issuer::Ca {
                    certificate: &parse_certificate_der(&top.der).unwrap(),
                    key: &top.key,
                },
            )
            .unwrap(),
            key: inter_key,
        };
        let responder_key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let (from, to) = window(30);
        let responder = crate::crypto::ocsp::build_ocsp_responder_certificate(
            &parse_certificate_der(&inter.der).unwrap(),
            &inter.key,
            &responder_key,
            from,
            to,
        )
        .unwrap();
        let chain = [inter.der.clone(), top.der.clone()];
        verify_ocsp_responder(&responder, &chain, Utc::now()).unwrap();
        let leaf = issue(
            &inter,
            CertificateKind::TlsServer,
            "CN=www.example.com",
            dns("www.example.com"),
            30,
        );
        expect_internal(
            verify_ocsp_responder(&leaf.der, &chain, Utc::now()),
            "id-kp-OCSPSigning",
        );
    }

    fn dns(name: &str) -> Vec<SubjectAlternativeName> {
        vec![SubjectAlternativeName::Dns(name.into())]
    }

    fn expect_internal(result: Result<()>, needle: &str) {
        match result {
            Err(Error::Internal(message)) => {
                assert!(message.contains(needle), "{message} lacks {needle:?}")
            }
            other => panic!("expected an internal error with {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_sound_chain_passes() {
        let ca = root("Root", None, None);
        verify_issued(&ca.der, CertificateKind::RootCa, &[], Utc::now()).unwrap();
        let inter = issue(
            &ca,
            CertificateKind::IntermediateCa,
            "CN=Inter,O=Example,C=US",
            vec![],
            1000,
        );
        verify_issued(
            &inter.der,
            CertificateKind::IntermediateCa,
            std::slice::from_ref(&ca.der),
            Utc::now(),
        )
        .unwrap();
        let leaf = issue(
            &inter,
            CertificateKind::TlsServer,
            "CN=www.example.com",
            dns("www.example.com"),
            90,
        );
        verify_issued(
            &leaf.der,
            CertificateKind::TlsServer,
            &[inter.der.clone(), ca.der.clone()],
            Utc::now(),
        )
        .unwrap();
    }

    #[test]
    fn a_broken_chain_is_an_internal_error() {
        let ca = root("Root", None, None);
        // Same name, another key: the signature cannot verify.
        let impostor = root("Root", None, None);
        let leaf = issue(
            &ca,
            CertificateKind::TlsServer,
            "CN=a.example",
            dns("a.example"),
            90,
        );
        expect_internal(
            verify_issued(
                &leaf.der,
                CertificateKind::TlsServer,
                &[impostor.der],
                Utc::now(),
            ),
            "Signature",
        );
        let other = root("Other", None, None);
        expect_internal(
            verify_issued(
                &leaf.der,
                CertificateKind::TlsServer,
                &[other.der],
                Utc::now(),
            ),
            "issuer name",
        );
        // Declared as a CA but built as a leaf.
        expect_internal(
            verify_issued(
                &leaf.der,
                CertificateKind::IntermediateCa,
                &[ca.der],
                Utc::now(),
            ),
            "CA:TRUE",
        );
    }

    #[test]
    fn validity_must_nest() {
        let ca = root("Root", None, None);
        let leaf = issue(
            &ca,
            CertificateKind::TlsServer,
            "CN=a.example",
            dns("a.example"),
            4000,
        );
        expect_internal(
            verify_issued(&leaf.der, CertificateKind::TlsServer, &[ca.der], Utc::now()),
            "does not nest",
        );
    }

    #[test]
    fn path_lengths_are_counted_over_the_whole_chain() {
        let ca = root("Root", Some(1), None);
        let inter = issue(
            &ca,
            CertificateKind::IntermediateCa,
            "CN=Inter,O=Example,C=US",
            vec![],
            1000,
        );
        let sub = issue(
            &inter,
            CertificateKind::IntermediateCa,
            "CN=Sub,O=Example,C=US",
            vec![],
            900,
        );
        expect_internal(
            verify_issued(
                &sub.der,
                CertificateKind::IntermediateCa,
                &[inter.der, ca.der],
                Utc::now(),
            ),
            "pathLenConstraint is 1",
        );
    }

    #[test]
    fn names_outside_constraints_are_caught_for_every_form() {
        let constraints = NameConstraints::from_request(
            &[
                NameSubtree::Dns("example.com".into()),
                NameSubtree::DirectoryName("O=Example,C=US".into()),
            ],
            &[NameSubtree::Dns("secret.example.com".into())],
        )
        .unwrap();
        let ca = root("Root", None, constraints);
        let ok = issue(
            &ca,
            CertificateKind::TlsServer,
            "CN=www.example.com,O=Example,C=US",
            dns("www.example.com"),
            90,
        );
        verify_issued(
            &ok.der,
            CertificateKind::TlsServer,
            std::slice::from_ref(&ca.der),
            Utc::now(),
        )
        .unwrap();
        for (subject, san, needle) in [
            (
                "CN=www.example.com,O=Example,C=US",
                "www.example.org",
                "outside",
            ),
            (
                "CN=x.example.com,O=Example,C=US",
                "db.secret.example.com",
                "excluded",
            ),
            (
                "CN=www.example.com,O=Other,C=US",
                "www.example.com",
                "DIRNAME",
            ),
        ] {
            let bad = issue(&ca, CertificateKind::TlsServer, subject, dns(san), 90);
            expect_internal(
                verify_issued(
                    &bad.der,
                    CertificateKind::TlsServer,
                    std::slice::from_ref(&ca.der),
                    Utc::now(),
                ),
                needle,
            );
        }
    }

    #[test]
    fn webpki_judges_dns_and_ip_constraints_too() {
        let constraints =
            NameConstraints::from_request(&[NameSubtree::Ip("10.0.0.0/8".into())], &[]).unwrap();
        let ca = root("Root", None, constraints);
        let leaf = issue(
            &ca,
            CertificateKind::TlsServer,
            "CN=Service",
            vec![SubjectAlternativeName::Ip("10.1.2.3".parse().unwrap())],
            90,
        );
        let path = [
            Link::read(&leaf.der, "issued").unwrap(),
            Link::read(&ca.der, "chain").unwrap(),
        ];
        assert!(webpki_understands(&path));
        check_with_webpki(&path, Purpose::Kind(CertificateKind::TlsServer), Utc::now()).unwrap();
        let outside = issue(
            &ca,
            CertificateKind::TlsServer,
            "CN=Service",
            vec![SubjectAlternativeName::Ip("192.168.1.1".parse().unwrap())],
            90,
        );
        let path = [
            Link::read(&outside.der, "issued").unwrap(),
            Link::read(&ca.der, "chain").unwrap(),
        ];
        expect_internal(
            check_with_webpki(&path, Purpose::Kind(CertificateKind::TlsServer), Utc::now()),
            "webpki",
        );
    }

    /// What the self-check costs per certificate (printed, not asserted):
    /// `cargo test -p clm-core --lib chain_check::tests::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement"]
    fn cost() {
        let ca = root("Root", None, None);
        let inter = issue(
            &ca,
            CertificateKind::IntermediateCa,
            "CN=Inter,O=Example,C=US",
            vec![],
            1000,
        );
        let leaf = issue(
            &inter,
            CertificateKind::TlsServer,
            "CN=www.example.com",
            dns("www.example.com"),
            90,
        );
        let chain = [inter.der.clone(), ca.der.clone()];
        let rounds = 500u32;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            verify_issued(&leaf.der, CertificateKind::TlsServer, &chain, Utc::now()).unwrap();
        }
        let per = start.elapsed() / rounds;
        println!("self-check of a P-256 leaf under root + intermediate: {per:?} each");
    }
}
