//! Property tests of the round trips clm relies on, on random values:
//!
//! - names: RFC 4514 text and X.501 DER give back the name they were made of;
//! - serials: what `validate_serial` accepts is exactly the canonical
//!   positive INTEGER of 1 to 20 bytes, and such a serial survives a
//!   certificate, an OCSP CertID and CRL partitioning;
//! - SAN lists: the JSON document, a certificate and a CSR give back the
//!   names written, and normalizing is idempotent;
//! - sealed envelopes: what is sealed opens, under that key version and
//!   associated data only, and associated data never collides;
//! - keyset cursors: every cursor reads back as the row it was made from,
//!   and a walk page by page visits every row once, in order.
//!
//! The fuzz targets (fuzz/) check the same round trips on hostile input;
//! these run on stable with the unit tests.

use std::net::IpAddr;
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use proptest::prelude::*;

use crate::crypto::certificate::validate_serial;
use crate::crypto::ocsp::{IssuerHashes, OcspCertId, OcspHash};
use crate::crypto::ocsp::{build_ocsp_request, parse_ocsp_request};
use crate::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, ParsedCertificate, aad,
    build_certificate, build_csr, crl_partition, open, parse_certificate_der, parse_csr, seal,
};
use crate::model::{CertificateKind, ResourceId, SubjectAlternativeName};
use crate::store::paginate;
use crate::store::support::{parse_time_id_cursor, time_id_cursor};

// ------------------------------------------------------------------ names

/// Values with everything RFC 4514 escapes (`,+"\<>;=`, a leading `#`,
/// leading and trailing spaces), non-ASCII letters and Unicode spaces.
fn name_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .-]{0,20}",
        "[ #,+\"\\\\<>;=a-z\u{e9}\u{a0}\u{3000}\u{2028}]{0,12}",
        any::<String>(),
    ]
}

fn distinguished_name() -> impl Strategy<Value = DistinguishedName> {
    (
        proptest::option::of(name_value()),
        proptest::option::of(name_value()),
        proptest::option::of(name_value()),
        proptest::option::of(prop_oneof!["[A-Z]{2}", "[a-zA-Z ]{0,3}"]),
        proptest::option::of(name_value()),
        proptest::option::of(name_value()),
        proptest::option::of("[ -~]{0,30}"),
    )
        .prop_map(
            |(common_name, organization, organizational_unit, country, state, locality, email)| {
                DistinguishedName {
                    common_name,
                    organization,
                    organizational_unit,
                    country,
                    state,
                    locality,
                    email,
                }
            },
        )
}

/// The name as clm means it: empty strings count as absent.
fn without_empty(name: &DistinguishedName) -> DistinguishedName {
    let keep = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    DistinguishedName {
        common_name: keep(&name.common_name),
        organization: keep(&name.organization),
        organizational_unit: keep(&name.organizational_unit),
        country: keep(&name.country),
        state: keep(&name.state),
        locality: keep(&name.locality),
        email: keep(&name.email),
    }
}

proptest! {
    #[test]
    fn names_survive_rfc4514_text(name in distinguished_name()) {
        prop_assume!(name.validate().is_ok());
        let text = name.to_rfc4514();
        let back = DistinguishedName::parse(&text)
            .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
        prop_assert_eq!(back, without_empty(&name), "{:?}", text);
    }

    #[test]
    fn names_survive_der(name in distinguished_name()) {
        prop_assume!(name.validate().is_ok());
        let x501 = name.to_name().map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(DistinguishedName::from_name(&x501), without_empty(&name));
        prop_assert_eq!(crate::crypto::name::format_name(&x501), name.to_rfc4514());
    }

    #[test]
    fn name_text_is_a_fixed_point(text in "[ -~\u{e9}\u{a0}]{0,40}") {
        // Whatever text parses, clm's own text of it reads back the same.
        if let Ok(name) = DistinguishedName::parse(&text) {
            let written = name.to_rfc4514();
            let again = DistinguishedName::parse(&written)
                .map_err(|err| TestCaseError::fail(format!("{written:?}: {err}")))?;
            prop_assert_eq!(again, without_empty(&name), "{:?} -> {:?}", text, written);
        }
    }
}

// ------------------------------------------------------------------ serials

/// A CA key and certificate made once for the whole test binary.
fn issuer() -> &'static (KeyPair, ParsedCertificate) {
    static ISSUER: OnceLock<(KeyPair, ParsedCertificate)> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
        let now = Utc::now();
        let template = CertificateTemplate::new(
            DistinguishedName::common_name("Round Trip CA"),
            CertificateKind::RootCa,
            now - chrono::Duration::hours(1),
            now + chrono::Duration::days(30),
        );
        let der = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key))
            .expect("CA certificate");
        let parsed = parse_certificate_der(&der).expect("CA parses");
        (key, parsed)
    })
}

/// A leaf issued by [`issuer`] with `serial` and `sans`.
fn leaf(
    serial: &[u8],
    sans: &[SubjectAlternativeName],
) -> Result<ParsedCertificate, TestCaseError> {
    let (key, ca) = issuer();
    let now = Utc::now();
    let mut template = CertificateTemplate::new(
        DistinguishedName::common_name("leaf.example"),
        CertificateKind::TlsServer,
        now - chrono::Duration::hours(1),
        now + chrono::Duration::days(1),
    );
    template.serial = serial.to_vec();
    template.subject_alternative_names = sans.to_vec();
    let der = build_certificate(
        &template,
        &key.public_key_der(),
        Issuer::Ca {
            certificate: ca,
            key,
        },
    )
    .map_err(|err| TestCaseError::fail(format!("issuing: {err}")))?;
    parse_certificate_der(&der).map_err(|err| TestCaseError::fail(format!("parsing: {err}")))
}

/// The reference: DER content of a positive INTEGER, minimal, 1..=20 bytes.
fn canonical_positive(serial: &[u8]) -> bool {
    match serial {
        [] => false,
        _ if serial.len() > 20 => false,
        [first, ..] if first & 0x80 != 0 => false,
        [0] => false,
        [0, second, ..] if second & 0x80 == 0 => false,
        _ => serial.iter().any(|&b| b != 0),
    }
}

fn serial_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..=24),
        // Mostly valid ones: top bit clear, or a 0x00 before a set top bit.
        proptest::collection::vec(any::<u8>(), 1..=19).prop_map(|mut s| {
            s[0] &= 0x7f;
            if s[0] == 0 {
                s[0] = 1;
            }
            s
        }),
        proptest::collection::vec(any::<u8>(), 1..=19).prop_map(|mut s| {
            s[0] |= 0x80;
            s.insert(0, 0);
            s
        }),
    ]
}

proptest! {
    #[test]
    fn serials_are_valid_exactly_when_canonical_and_positive(serial in serial_bytes()) {
        prop_assert_eq!(
            validate_serial(&serial, "serial").is_ok(),
            canonical_positive(&serial),
            "{:02x?}", serial
        );
    }

    #[test]
    fn serials_survive_a_certificate_and_an_ocsp_request(serial in serial_bytes()) {
        prop_assume!(canonical_positive(&serial));
        let parsed = leaf(&serial, &[])?;
        prop_assert_eq!(parsed.serial_bytes(), serial.clone());
        prop_assert_eq!(&parsed.serial_hex, &hex::encode(&serial));
        prop_assert!(parsed.flags.is_empty(), "{:?}", parsed.flags);

        let hashes = IssuerHashes::of(&issuer().1).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for hash in [OcspHash::Sha1, OcspHash::Sha256] {
            let id = OcspCertId::with_hashes(&hashes, &serial, hash)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let request = build_ocsp_request(std::slice::from_ref(&id), None)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let read = parse_ocsp_request(&request).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(read.certificates.len(), 1);
            prop_assert_eq!(&read.certificates[0].serial, &serial);
            prop_assert!(hashes.matches(&read.certificates[0]));
            prop_assert!(read.certificates[0].encodes_like(&id));
        }
    }

    #[test]
    fn crl_partitions_are_in_range_and_stable(
        serial in proptest::collection::vec(any::<u8>(), 0..=64),
        partitions in 0u32..=1024,
    ) {
        let partition = crl_partition(&serial, partitions);
        prop_assert!(partition < partitions.max(1));
        prop_assert_eq!(partition, crl_partition(&serial.clone(), partitions));
    }
}

// ------------------------------------------------------------------ SAN lists

fn dns_name() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..=4),
        "[a-z]{2,6}",
    )
        .prop_map(|(wildcard, labels, tld)| {
            let name = format!("{}.{tld}", labels.join("."));
            if wildcard { format!("*.{name}") } else { name }
        })
}

fn subject_alternative_name() -> impl Strategy<Value = SubjectAlternativeName> {
    prop_oneof![
        dns_name().prop_map(SubjectAlternativeName::Dns),
        any::<IpAddr>().prop_map(SubjectAlternativeName::Ip),
        ("[a-z0-9._+-]{1,12}", dns_name())
            .prop_filter("a mailbox is on one host", |(_, domain)| !domain
                .starts_with('*'))
            .prop_map(|(local, domain)| SubjectAlternativeName::Email(format!("{local}@{domain}"))),
        (dns_name(), "[a-zA-Z0-9/_-]{0,12}")
            .prop_filter("a URI names one host", |(host, _)| !host.starts_with('*'))
            .prop_map(|(host, path)| SubjectAlternativeName::Uri(format!("https://{host}/{path}"))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn san_lists_survive_json_certificates_and_csrs(
        sans in proptest::collection::vec(subject_alternative_name(), 1..=6),
    ) {
        prop_assume!(sans.iter().all(|san| san.validate().is_ok()));
        let json = serde_json::to_string(&sans).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = SubjectAlternativeName::parse_list(&json)
            .map_err(|e| TestCaseError::fail(format!("{json}: {e}")))?;
        prop_assert_eq!(&back, &sans);

        for san in &sans {
            // Names IDNA refuses (a label such as `ab--c`) pass `validate`
            // but are never issued; only the others must be fixed points.
            let Ok(normalized) = san.normalized() else { continue };
            prop_assert_eq!(&normalized, san, "already normalized names stay as they are");
            prop_assert_eq!(normalized.normalized(), Ok(normalized.clone()));
        }

        let certificate = leaf(&[0x01, 0x02], &sans)?;
        prop_assert_eq!(&certificate.subject_alternative_names, &sans);

        let key = &issuer().0;
        let csr = build_csr(&DistinguishedName::default(), &sans, key)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed = parse_csr(&csr).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&parsed.subject_alternative_names, &sans);
        prop_assert!(parsed.unsupported_san_kinds.is_empty());
    }
}

// ------------------------------------------------------------------ sealed envelopes

proptest! {
    #[test]
    fn sealed_values_open_only_as_sealed(
        key_bytes in proptest::array::uniform32(any::<u8>()),
        version in any::<u32>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..600),
        parts in proptest::collection::vec(".{0,12}", 0..4),
        other_parts in proptest::collection::vec(".{0,12}", 0..4),
    ) {
        let key = crate::crypto::SecretBytes::new(key_bytes.to_vec());
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let other: Vec<&str> = other_parts.iter().map(String::as_str).collect();
        let row = aad(&parts);
        let sealed = seal(&key, version, &plaintext, &row).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let opened = open(&key, version, &sealed, &row).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(opened.expose(), plaintext.as_slice());

        prop_assert!(open(&key, version.wrapping_add(1), &sealed, &row).is_err());
        // Associated data is an injective encoding of the parts.
        prop_assert_eq!(aad(&other) == row, other == parts);
        if other != parts {
            prop_assert!(open(&key, version, &sealed, &aad(&other)).is_err());
        }
        let mut wrong_key = key_bytes;
        wrong_key[0] ^= 1;
        let wrong_key = crate::crypto::SecretBytes::new(wrong_key.to_vec());
        prop_assert!(open(&wrong_key, version, &sealed, &row).is_err());
    }
}

// ------------------------------------------------------------------ keyset cursors

/// A timestamp as the store keeps one: whole microseconds, years 1 to 9999.
fn stored_time() -> impl Strategy<Value = DateTime<Utc>> {
    (-62_135_596_800_000_000i64..=253_402_300_799_999_999i64)
        .prop_map(|micros| DateTime::from_timestamp_micros(micros).expect("in range"))
}

fn uuid() -> impl Strategy<Value = uuid::Uuid> {
    any::<u128>().prop_map(uuid::Uuid::from_u128)
}

proptest! {
    #[test]
    fn time_id_cursors_read_back(at in stored_time(), id in uuid()) {
        let cursor = time_id_cursor(at, id);
        let (read_at, read_id) = parse_time_id_cursor(&cursor)
            .map_err(|e| TestCaseError::fail(format!("{cursor}: {e}")))?;
        prop_assert_eq!(read_at, at);
        prop_assert_eq!(read_id, ResourceId(id));
    }

    #[test]
    fn made_up_cursors_are_refused_by_name(text in ".{0,80}") {
        if let Err(err) = parse_time_id_cursor(&text) {
            prop_assert_eq!(err.code(), crate::ErrorCode::InvalidInput);
        }
    }

    /// The store's walk in (time, id) order: each page takes the rows after
    /// the cursor (`(time, id) > cursor`), at most `limit` plus the
    /// look-ahead row, and `paginate` makes the next cursor. Ties in time
    /// are many on purpose.
    #[test]
    fn keyset_walks_visit_every_row_once(
        mut rows in proptest::collection::vec((0i64..50, uuid()), 0..60),
        limit in 1u32..8,
    ) {
        rows.sort_unstable();
        rows.dedup_by_key(|row| row.1);
        rows.sort_unstable();
        let rows: Vec<(DateTime<Utc>, uuid::Uuid)> = rows
            .into_iter()
            .map(|(seconds, id)| (DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("time"), id))
            .collect();
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let after = cursor
                .as_deref()
                .map(parse_time_id_cursor)
                .transpose()
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut page: Vec<_> = rows
                .iter()
                .filter(|(at, id)| after.is_none_or(|(a, ResourceId(i))| (*at, *id) > (a, i)))
                .take(limit as usize + 1)
                .cloned()
                .collect();
            let page = paginate(&mut page, limit, |(at, id)| time_id_cursor(*at, *id));
            pages += 1;
            prop_assert!(page.items.len() <= limit as usize);
            seen.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            prop_assert!(pages <= rows.len() + 1, "the walk does not end");
        }
        prop_assert_eq!(&seen, &rows);
        prop_assert_eq!(pages, rows.len().div_ceil(limit as usize).max(1));
    }

    /// The same for the id-only cursor of `store::list`.
    #[test]
    fn id_cursors_read_back(id in uuid()) {
        let cursor = ResourceId(id).to_string();
        prop_assert_eq!(cursor.parse::<ResourceId>().ok(), Some(ResourceId(id)));
    }
}
