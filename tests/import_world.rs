//! Importing what the world has (issue 17): certificates that break rules
//! but that openssl and pyca/cryptography read are stored losslessly and
//! flagged, on both backends. The odd certificates are made here with the
//! openssl command and same-length DER edits, re-signed by openssl.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Datelike, TimeZone, Utc};
use clm::Clm;
use clm::service::inventory::{CertificateSearch, ImportReport, ImportRequest};
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::store::certificates::Certificates;
use clm::store::{Filter, PageRequest};
use common::on_both_keyed;

fn security() -> clm::SecuritySettings {
    clm::SecuritySettings {
        cpu_jobs: 2,
        ..clm::SecuritySettings::default()
    }
}

fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed: {text}");
    text
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A self-signed P-256 certificate made by openssl (DER) and its key file.
fn openssl_der(dir: &Path, name: &str, extra: &[&str]) -> (Vec<u8>, PathBuf) {
    let cert = dir.join(format!("{name}.der"));
    let key = dir.join(format!("{name}.key"));
    let subject = format!("/CN={name}.odd.example");
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        &subject,
        "-days",
        "30",
        "-outform",
        "DER",
        "-keyout",
        path_str(&key),
        "-out",
        path_str(&cert),
    ];
    args.extend_from_slice(extra);
    openssl(&args);
    (std::fs::read(&cert).expect("read certificate"), key)
}

/// Signs `der` again with `key` keeping its dates (an edited certificate
/// gets a valid signature back); returns the PEM.
fn resign(dir: &Path, name: &str, der: &[u8], key: &Path) -> Vec<u8> {
    let edited = dir.join(format!("{name}.edited.der"));
    let signed = dir.join(format!("{name}.signed.pem"));
    std::fs::write(&edited, der).expect("write edited");
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        path_str(&edited),
        "-signkey",
        path_str(key),
        "-preserve_dates",
        "-out",
        path_str(&signed),
    ]);
    std::fs::read(signed).expect("read signed")
}

/// Offsets of the notBefore and notAfter UTCTime values (13 bytes each) of
/// an openssl-made certificate: the first two UTCTimes of the DER.
fn validity_offsets(der: &[u8]) -> (usize, usize) {
    let find = |from: usize| {
        der[from..]
            .windows(2)
            .position(|w| w == [0x17, 0x0d])
            .map(|at| from + at + 2)
            .expect("a UTCTime")
    };
    let not_before = find(0);
    (not_before, find(not_before + 13))
}

/// An openssl certificate with its validity rewritten (UTCTime strings,
/// `YYMMDDHHMMSSZ`), re-signed.
fn with_validity(dir: &Path, name: &str, not_before: &str, not_after: &str) -> Vec<u8> {
    let (mut der, key) = openssl_der(dir, name, &[]);
    let (nb, na) = validity_offsets(&der);
    der[nb..nb + 13].copy_from_slice(not_before.as_bytes());
    der[na..na + 13].copy_from_slice(not_after.as_bytes());
    resign(dir, name, &der, &key)
}

async fn import(clm: &Clm, data: Vec<u8>) -> ImportReport {
    clm.import_certificates(
        &clm.system_actor(),
        ImportRequest {
            data,
            ..Default::default()
        },
    )
    .await
    .expect("import")
}

async fn private_key_count(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("acquire");
    clm::store::count::<clm::store::private_keys::PrivateKeys>(&mut conn.conn(), &Filter::new())
        .await
        .expect("count")
}

async fn certificate_count(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("acquire");
    clm::store::count::<Certificates>(&mut conn.conn(), &Filter::new())
        .await
        .expect("count")
}

async fn search_serial(clm: &Clm, serial: &str) -> clm::Result<Vec<clm::model::CertificateId>> {
    let page = clm
        .search_certificates(
            &clm.system_actor(),
            &CertificateSearch {
                serial_number: Some(serial.to_string()),
                ..Default::default()
            },
            &PageRequest::first(100),
        )
        .await?;
    Ok(page.items.iter().map(|c| c.id).collect())
}

async fn secure_events(clm: &Clm, event_type: &str) -> Vec<clm::model::AuditEvent> {
    clm.list_audit_events(
        &clm.system_actor(),
        AuditLogKind::Secure,
        &AuditFilter {
            event_type: Some(event_type.into()),
            ..Default::default()
        },
        &PageRequest::first(1000),
    )
    .await
    .expect("audit events")
    .items
}

fn flags_of(report: &ImportReport) -> Vec<String> {
    report.imported[0].import_flags.0.clone()
}

// ------------------------------------------------- the four refusals of issue 17

/// notBefore == notAfter was refused with the database's
/// `ck_certificates_validity` message; an inverted validity (flagged
/// `validity_inverted` by the parser) hit the same constraint.
#[tokio::test]
async fn zero_length_and_inverted_validity_are_stored_and_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zero = with_validity(dir.path(), "zero", "250101000000Z", "250101000000Z");
    let inverted = with_validity(dir.path(), "inverted", "250201000000Z", "250101000000Z");
    on_both_keyed(security(), |clm| {
        let (zero, inverted) = (zero.clone(), inverted.clone());
        async move {
            let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap();
            let report = import(&clm, zero).await;
            assert_eq!(report.imported.len(), 1);
            let row = &report.imported[0];
            assert_eq!(row.not_before, at);
            assert_eq!(row.not_after, at);
            assert_eq!(flags_of(&report), vec!["validity_empty".to_string()]);
            assert_eq!(report.flagged, vec![(row.id, flags_of(&report))]);
            let stored = clm
                .get_certificate(&clm.system_actor(), row.id)
                .await
                .expect("get");
            assert_eq!((stored.not_before, stored.not_after), (at, at));
            assert_eq!(stored.status, clm::model::CertificateStatus::Expired);

            let report = import(&clm, inverted).await;
            assert_eq!(report.imported.len(), 1);
            let row = &report.imported[0];
            assert!(row.not_after < row.not_before);
            assert_eq!(flags_of(&report), vec!["validity_inverted".to_string()]);
            assert_eq!(certificate_count(&clm).await, 2);
        }
    })
    .await;
}

/// RFC 5280 §4.1.2.5.1: UTCTime YY >= 50 is 19YY. A notBefore in 1950 was
/// "malformed ASN.1 DER value for UTCTime" (the der crate stops at 1970).
#[tokio::test]
async fn utc_times_of_the_whole_rfc5280_range_are_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = with_validity(dir.path(), "old", "500101000000Z", "491231235959Z");
    let sixties = with_validity(dir.path(), "sixties", "691231235959Z", "700101000000Z");
    on_both_keyed(security(), |clm| {
        let (old, sixties) = (old.clone(), sixties.clone());
        async move {
            let report = import(&clm, old).await;
            let row = &report.imported[0];
            assert_eq!(
                row.not_before,
                Utc.with_ymd_and_hms(1950, 1, 1, 0, 0, 0).single().unwrap()
            );
            assert_eq!(
                row.not_after,
                Utc.with_ymd_and_hms(2049, 12, 31, 23, 59, 59)
                    .single()
                    .unwrap()
            );
            assert!(report.flagged.is_empty(), "{:?}", report.flagged);
            let report = import(&clm, sixties).await;
            let row = &report.imported[0];
            assert_eq!(row.not_before.year(), 1969);
            assert_eq!(row.not_after.year(), 1970);
            assert_eq!(row.not_after.timestamp(), 0);
        }
    })
    .await;
}

/// A bundle holding an encrypted legacy PEM key (RFC 1421 `Proc-Type` and
/// `DEK-Info` headers) was refused whole; its certificates import and the
/// key is skipped, without storing anything of it.
#[tokio::test]
async fn bundle_with_an_encrypted_legacy_key_imports_its_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, key) = openssl_der(dir.path(), "first", &[]);
    let (second, _) = openssl_der(dir.path(), "second", &[]);
    let legacy = dir.path().join("legacy.key");
    openssl(&[
        "ec",
        "-in",
        path_str(&key),
        "-aes128",
        "-passout",
        "pass:secret",
        "-out",
        path_str(&legacy),
    ]);
    let legacy = std::fs::read_to_string(legacy).expect("read key");
    assert!(legacy.contains("Proc-Type: 4,ENCRYPTED") && legacy.contains("DEK-Info:"));
    let pem = |der: &[u8]| clm::crypto::parse_certificate_der(der).expect("parse").pem;
    let (first, second) = (pem(&first), pem(&second));
    let bundle = format!("{first}{legacy}{second}");
    on_both_keyed(security(), |clm| {
        let (bundle, legacy) = (bundle.clone(), legacy.clone());
        let (first, second) = (first.clone(), second.clone());
        async move {
            let report = import(&clm, bundle.into_bytes()).await;
            assert_eq!(report.imported.len(), 2);
            assert_eq!(private_key_count(&clm).await, 0);
            assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
            let skipped = &report.skipped[0];
            assert_eq!(
                (skipped.block, skipped.label.as_str()),
                (2, "EC PRIVATE KEY")
            );
            assert!(skipped.reason.contains("encrypted"), "{}", skipped.reason);
            let audit = format!("{:?}", secure_events(&clm, "certificates.imported").await);
            assert!(!audit.contains("DEK-Info"), "nothing of the key is audited");
            // A certificate block carrying headers is still refused, clearly.
            let headed = first.replacen("\n", "\nComment: odd\n\n", 1);
            let err = clm
                .import_certificates(
                    &clm.system_actor(),
                    ImportRequest {
                        data: headed.into_bytes(),
                        ..Default::default()
                    },
                )
                .await
                .expect_err("a certificate with headers");
            assert_eq!(err.code(), clm::ErrorCode::InvalidInput);
            assert!(err.to_string().contains("headers"), "{err}");
            // As the certificate's own key, the encrypted key is refused by name.
            let err = clm
                .import_certificates(
                    &clm.system_actor(),
                    ImportRequest {
                        data: second.into_bytes(),
                        private_key_pem: Some(clm::crypto::SecretString::new(legacy.clone())),
                        ..Default::default()
                    },
                )
                .await
                .expect_err("an encrypted key");
            assert!(err.to_string().contains("encrypted"), "{err}");
            assert_eq!(private_key_count(&clm).await, 0);
        }
    })
    .await;
}

/// A negative serial keeps its two's-complement bytes and is flagged; rows
/// show its signed value, and the search takes either form.
#[tokio::test]
async fn negative_serials_keep_their_bytes_and_are_flagged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (negative, _) = openssl_der(dir.path(), "negative", &["-set_serial", "-0x4316693ed"]);
    let (positive, _) = openssl_der(dir.path(), "positive", &["-set_serial", "0xfbce996c13"]);
    on_both_keyed(security(), |clm| {
        let (negative, positive) = (negative.clone(), positive.clone());
        async move {
            let report = import(&clm, negative).await;
            let row = &report.imported[0];
            assert_eq!(row.serial_number, "fbce996c13");
            assert_eq!(flags_of(&report), vec!["serial_negative".to_string()]);
            assert_eq!(row.serial_number_signed.0, "-0x4316693ed");
            let positive = import(&clm, positive).await;
            let positive_id = positive.imported[0].id;
            assert_eq!(positive.imported[0].serial_number, "00fbce996c13");
            assert_eq!(positive.imported[0].serial_number_signed.0, "0xfbce996c13");
            // Read back: the signed value comes with every row.
            let stored = clm
                .get_certificate(&clm.system_actor(), row.id)
                .await
                .expect("get");
            assert_eq!(stored.serial_number_signed.0, "-0x4316693ed");
            for (text, expected) in [
                ("-0x4316693ed", Some(row.id)),
                ("-4316693ED", Some(row.id)),
                ("fbce996c13", Some(row.id)),
                ("fb:ce:99:6c:13", Some(row.id)),
                ("0xfbce996c13", Some(positive_id)),
                ("00fbce996c13", Some(positive_id)),
                ("0x4316693ed", None),
            ] {
                let found = search_serial(&clm, text).await.expect("search");
                assert_eq!(found, expected.into_iter().collect::<Vec<_>>(), "{text}");
            }
            for bad in ["", "-", "0x", "xyz", "abc", "-0xfg"] {
                let err = search_serial(&clm, bad).await.expect_err(bad);
                assert_eq!(err.code(), clm::ErrorCode::InvalidInput, "{bad}: {err}");
                assert!(err.to_string().contains("serial_number"), "{err}");
            }
            // Shown signed where revocations list it too.
            let revocation = clm
                .revoke_certificate(
                    &clm.system_actor(),
                    row.id,
                    clm::model::RevocationReason::KeyCompromise,
                    None,
                )
                .await
                .expect("revoke");
            assert_eq!(revocation.serial_number_signed.0, "-0x4316693ed");
        }
    })
    .await;
}

// ------------------------------------------------------------------- the corpus

/// What one parser read from a corpus certificate (tests/corpus/odd_certificates.py).
#[derive(Debug, serde::Deserialize)]
struct Read {
    error: Option<String>,
    fingerprint_sha256: Option<String>,
    serial: Option<String>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    subject: Option<String>,
    issuer: Option<String>,
    /// `[{"dns": ...}, {"ip": ...}, ...]`; None when pyca refused the extension.
    sans: Option<Vec<std::collections::BTreeMap<String, String>>>,
}

#[derive(Debug, serde::Deserialize)]
struct Case {
    name: String,
    file: String,
    note: String,
    openssl: Option<Read>,
    pyca: Read,
}

fn python() -> String {
    std::env::var("CLM_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs the corpus script into `dir`: the cases and their DER.
fn corpus(dir: &Path) -> Vec<(Case, Vec<u8>)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus/odd_certificates.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(dir)
        .output()
        .expect("run the corpus script (CLM_TEST_PYTHON with `cryptography`)");
    assert!(
        out.status.success(),
        "corpus script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let cases: Vec<Case> =
        serde_json::from_slice(&std::fs::read(dir.join("corpus.json")).expect("corpus.json"))
            .expect("corpus.json parses");
    cases
        .into_iter()
        .map(|case| {
            let der = std::fs::read(dir.join(&case.file)).expect("corpus certificate");
            (case, der)
        })
        .collect()
}

/// Notes a value clm read differently from a parser.
fn differ(wrong: &mut Vec<String>, what: &str, field: &str, ours: String, theirs: String) {
    if ours != theirs {
        wrong.push(format!("{what}: {field} {ours:?}, they read {theirs:?}"));
    }
}

/// clm's RFC 4514 text next to pyca's: clm also escapes `=` (RFC 4514
/// allows it), and writes a value without a string form as `#` and the hex
/// of its whole BER encoding (RFC 4514 §2.4), where pyca leaves out the
/// tag and length (`2.5.4.45=#03090070...` against `#0070...`).
fn rfc4514(clm_text: &str) -> String {
    let text = clm_text.replace("\\=", "=");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("=#") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let hex_len = rest.find([',', '+']).unwrap_or(rest.len());
        let (hex, tail) = rest.split_at(hex_len);
        // Skip the tag byte and a short-form length byte.
        let length = usize::from_str_radix(hex.get(2..4).unwrap_or(""), 16).unwrap_or(usize::MAX);
        if length < 0x80 && hex.len() == 4 + 2 * length {
            out.push_str(&hex[4..]);
        } else {
            out.push_str(hex);
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn san_entry(
    san: &clm::model::SubjectAlternativeName,
) -> std::collections::BTreeMap<String, String> {
    use clm::model::SubjectAlternativeName as San;
    let (kind, value) = match san {
        San::Dns(v) => ("dns", v.clone()),
        San::Email(v) => ("email", v.clone()),
        San::Uri(v) => ("uri", v.clone()),
        San::Ip(ip) => ("ip", ip.to_string()),
    };
    [(kind.to_string(), value)].into_iter().collect()
}

/// Every certificate of the corpus that openssl and pyca/cryptography both
/// read is imported with the fingerprint, serial, validity, names and SANs
/// they read; one that only openssl reads is imported with openssl's
/// fingerprint and serial; one that neither reads is refused as bad input
/// (never a database message). Then the whole corpus imports as one bundle.
#[tokio::test]
async fn corpus_of_odd_certificates_imports_as_openssl_and_pyca_read_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = corpus(dir.path());
    let both = cases
        .iter()
        .filter(|(c, _)| c.openssl.is_some() && c.pyca.error.is_none())
        .count();
    assert!(
        both >= 35,
        "the corpus shrank: {both} certificates both parsers read"
    );
    on_both_keyed(security(), |clm| {
        let cases = &cases;
        async move {
            let mut imported = Vec::new();
            let mut wrong: Vec<String> = Vec::new();
            for (case, der) in cases {
                let what = format!("{} ({})", case.name, case.note);
                let outcome = clm
                    .import_certificates(
                        &clm.system_actor(),
                        ImportRequest {
                            data: der.clone(),
                            ..Default::default()
                        },
                    )
                    .await;
                let Some(openssl) = &case.openssl else {
                    match outcome {
                        Ok(_) => eprintln!("{what}: openssl refuses it, clm imports it"),
                        Err(err) => {
                            differ(
                                &mut wrong,
                                &what,
                                "error code",
                                format!("{:?}", err.code()),
                                "InvalidInput".into(),
                            );
                            let text = err.to_string();
                            if !text.starts_with("invalid certificate") {
                                wrong.push(format!("{what}: refused with {text}"));
                            }
                        }
                    }
                    continue;
                };
                let row = match outcome {
                    Ok(report) if report.imported.len() == 1 => report.imported[0].clone(),
                    // The same certificate twice in the corpus (the public sets repeat some).
                    Ok(report) if report.already_present.len() == 1 => clm
                        .get_certificate(&clm.system_actor(), report.already_present[0])
                        .await
                        .expect("get"),
                    Ok(report) => {
                        wrong.push(format!("{what}: imported {} rows", report.imported.len()));
                        continue;
                    }
                    Err(err) => {
                        let pyca = if case.pyca.error.is_none() {
                            " and pyca"
                        } else {
                            ""
                        };
                        wrong.push(format!("{what}: refused, openssl{pyca} read it: {err}"));
                        continue;
                    }
                };
                let row = &row;
                let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                differ(
                    &mut wrong,
                    &what,
                    "fingerprint",
                    row.fingerprint_sha256.clone(),
                    opt(&openssl.fingerprint_sha256),
                );
                differ(
                    &mut wrong,
                    &what,
                    "serial",
                    row.serial_number_signed.0.clone(),
                    opt(&openssl.serial),
                );
                if !imported
                    .iter()
                    .any(|r: &clm::model::Certificate| r.id == row.id)
                {
                    imported.push(row.clone());
                }
                let not_der = row.import_flags.0.iter().any(|f| f == "not_der");
                let encoded_default_or_unsorted = [
                    "version_1_explicit",
                    "critical_false_explicit",
                    "multi_valued_rdn_unsorted",
                ]
                .contains(&case.name.as_str());
                if encoded_default_or_unsorted && !not_der {
                    wrong.push(format!("{what}: not flagged not_der"));
                }
                if not_der && case.pyca.error.is_none() {
                    wrong.push(format!(
                        "{what}: flagged not_der, pyca (strict DER) read it"
                    ));
                }
                let pyca = &case.pyca;
                if let Some(error) = &pyca.error {
                    eprintln!(
                        "{what}: openssl only (pyca: {error}); flags {:?}",
                        row.import_flags.0
                    );
                    continue;
                }
                differ(
                    &mut wrong,
                    &what,
                    "fingerprint",
                    row.fingerprint_sha256.clone(),
                    opt(&pyca.fingerprint_sha256),
                );
                differ(
                    &mut wrong,
                    &what,
                    "serial",
                    row.serial_number_signed.0.clone(),
                    opt(&pyca.serial),
                );
                let time = |t: Option<i64>| t.map_or("none".into(), |t| t.to_string());
                differ(
                    &mut wrong,
                    &what,
                    "not_before",
                    row.not_before.timestamp().to_string(),
                    time(pyca.not_before),
                );
                differ(
                    &mut wrong,
                    &what,
                    "not_after",
                    row.not_after.timestamp().to_string(),
                    time(pyca.not_after),
                );
                differ(
                    &mut wrong,
                    &what,
                    "subject",
                    rfc4514(&row.subject_dn),
                    opt(&pyca.subject),
                );
                differ(
                    &mut wrong,
                    &what,
                    "issuer",
                    rfc4514(&row.issuer_dn),
                    opt(&pyca.issuer),
                );
                if let Some(sans) = &pyca.sans {
                    let ours: Vec<_> = row
                        .subject_alternative_names
                        .0
                        .iter()
                        .map(san_entry)
                        .collect();
                    differ(
                        &mut wrong,
                        &what,
                        "SANs",
                        format!("{ours:?}"),
                        format!("{sans:?}"),
                    );
                }
            }
            assert!(
                wrong.is_empty(),
                "{} differences:\n{}",
                wrong.len(),
                wrong.join("\n")
            );
            let imported_count = imported.len();
            eprintln!(
                "corpus: {} certificates, {both} read by both parsers, {imported_count} imported",
                cases.len()
            );
            // Stored as read: get returns the same values.
            for row in &imported {
                let stored = clm
                    .get_certificate(&clm.system_actor(), row.id)
                    .await
                    .expect("get");
                assert_eq!(stored.fingerprint_sha256, row.fingerprint_sha256);
                assert_eq!(
                    (stored.not_before, stored.not_after),
                    (row.not_before, row.not_after)
                );
                assert_eq!(stored.serial_number_signed, row.serial_number_signed);
                assert_eq!(stored.import_flags.0, row.import_flags.0);
            }
            // One bundle of everything clm read, into an organization: all new there.
            let org = clm
                .create_organization(
                    &clm.system_actor(),
                    clm::service::access::NewOrganization {
                        org_code: common::unique("corpus"),
                        name: "Corpus".into(),
                        ..Default::default()
                    },
                )
                .await
                .expect("organization")
                .id;
            let bundle: String = imported
                .iter()
                .map(|r| r.certificate_pem.as_str())
                .collect();
            let report = clm
                .import_certificates(
                    &clm.system_actor(),
                    ImportRequest {
                        data: bundle.clone().into_bytes(),
                        organization_id: Some(org),
                        ..Default::default()
                    },
                )
                .await
                .expect("bundle import");
            assert_eq!(report.imported.len(), imported_count);
            let again = clm
                .import_certificates(
                    &clm.system_actor(),
                    ImportRequest {
                        data: bundle.into_bytes(),
                        organization_id: Some(org),
                        ..Default::default()
                    },
                )
                .await
                .expect("bundle import again");
            assert!(again.imported.is_empty());
            assert_eq!(again.already_present.len(), imported_count);
        }
    })
    .await;
}

// -------------------------------------------------------- bundles of every size

/// A large bundle (parsed in pieces on several threads) reports its
/// skipped blocks by their position in the whole input, as a small one does;
/// OpenSSL's `TRUSTED CERTIFICATE` form imports as the certificate it holds.
#[tokio::test]
async fn skipped_blocks_are_numbered_in_the_whole_bundle_and_trusted_form_is_read() {
    use clm::crypto::{
        CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, PemLabel,
        build_certificate, der_to_pem, parse_certificate_bundle, parse_certificate_der,
    };
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let mut text = String::new();
    let mut expected_skips = Vec::new();
    let mut block = 0;
    let mut certificates = 0;
    // ~600 bytes each: well over the 256 KiB from which the import parses in pieces.
    for i in 0..700 {
        let template = CertificateTemplate::new(
            DistinguishedName::common_name(format!("bulk-{i}.odd.example")),
            clm::model::CertificateKind::TlsServer,
            now - chrono::Duration::hours(1),
            now + chrono::Duration::days(30),
        );
        let der = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key))
            .expect("certificate");
        text.push_str(&der_to_pem(PemLabel::Certificate, &der));
        block += 1;
        certificates += 1;
        if i % 97 == 13 {
            text.push_str(
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
            );
            block += 1;
            expected_skips.push((block, "EC PARAMETERS".to_string()));
        }
    }
    assert!(text.len() > 300 * 1024);
    let serial = parse_certificate_bundle(text.as_bytes()).expect("bundle");
    let positions = |skipped: &[clm::crypto::SkippedBlock]| {
        skipped
            .iter()
            .map(|s| (s.block, s.label.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(positions(&serial.skipped), expected_skips);
    assert_eq!(serial.blocks, block);

    let dir = tempfile::tempdir().expect("tempdir");
    let (der, _) = openssl_der(dir.path(), "trusted", &[]);
    let plain = dir.path().join("trusted.der");
    let trusted = dir.path().join("trusted.trust.pem");
    openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        path_str(&plain),
        "-trustout",
        "-addtrust",
        "serverAuth",
        "-out",
        path_str(&trusted),
    ]);
    let trusted = std::fs::read(trusted).expect("trusted pem");
    assert!(String::from_utf8_lossy(&trusted).contains("BEGIN TRUSTED CERTIFICATE"));
    let fingerprint = parse_certificate_der(&der)
        .expect("parse")
        .fingerprint_sha256;

    on_both_keyed(security(), |clm| {
        let (text, trusted, expected_skips) =
            (text.clone(), trusted.clone(), expected_skips.clone());
        let fingerprint = fingerprint.clone();
        async move {
            let report = import(&clm, text.into_bytes()).await;
            assert_eq!(report.imported.len(), certificates);
            assert_eq!(positions(&report.skipped), expected_skips);
            assert!(
                report
                    .skipped
                    .iter()
                    .all(|s| s.reason == "not a certificate")
            );
            let report = import(&clm, trusted).await;
            assert_eq!(report.imported.len(), 1);
            assert_eq!(report.imported[0].fingerprint_sha256, fingerprint);
        }
    })
    .await;
}

/// `ck_certificates_validity` (migration 0011): imported rows keep any
/// validity; a row clm issued still needs notAfter after notBefore, on both
/// backends, with a clear error naming the constraint.
#[tokio::test]
async fn validity_constraint_still_binds_issued_rows() {
    common::on_both(|db| async move {
        let mut conn = db.secure.acquire().await.expect("acquire");
        let at = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().unwrap();
        let mut imported = common::certificate("zero.odd.example", at);
        imported.not_before = at;
        clm::store::certificates::insert(&mut conn.conn(), &imported)
            .await
            .expect("an imported zero-length validity is stored");
        let mut issued = common::certificate("issued.odd.example", at);
        issued.not_before = at;
        issued.source = clm::model::CertificateSource::Issued;
        let err = clm::store::certificates::insert(&mut conn.conn(), &issued)
            .await
            .expect_err("an issued zero-length validity");
        assert!(
            err.to_string().contains("ck_certificates_validity"),
            "{err}"
        );
    })
    .await;
}
