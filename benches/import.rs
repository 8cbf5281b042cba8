//! Bulk import benchmark: one PEM bundle of a CA and `CLM_BENCH_IMPORT`
//! (default 20000) leaves it signed, imported through
//! `Clm::import_certificates` (parse, dedupe, issuer linking with signature
//! checks, batched rows, metadata, audit) into SQLite and PostgreSQL.
//! Prints certificates per second.
//!
//! `cargo bench -p clm-core --bench import` (PostgreSQL from `CLM_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432`; a fresh database pair is
//! created and dropped). `CLM_BENCH_BACKENDS` (default "sqlite,postgres")
//! picks the backends.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "memory.rs"]
mod memory;

use std::time::Instant;

use chrono::{Duration, Utc};
use clm::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, build_certificate,
    parse_certificate_der,
};
use clm::model::{CertificateKind, SubjectAlternativeName};
use clm::service::inventory::ImportRequest;
use clm::{Clm, ClmConfig};

/// A CA and `n` leaves in one PEM bundle, signed on every core.
fn bundle(n: usize) -> Vec<u8> {
    let now = Utc::now();
    let ca_key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("CA key");
    let ca_template = CertificateTemplate::new(
        DistinguishedName::common_name("Bench Import CA"),
        CertificateKind::RootCa,
        now - Duration::days(1),
        now + Duration::days(3650),
    );
    let ca_der = build_certificate(
        &ca_template,
        &ca_key.public_key_der(),
        Issuer::SelfSigned(&ca_key),
    )
    .expect("CA");
    let ca = parse_certificate_der(&ca_der).expect("parse CA");
    // One leaf key for all: the bench measures import, not key generation.
    let leaf_key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("leaf key");
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per_thread = n.div_ceil(threads).max(1);
    let parts: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..n)
            .step_by(per_thread)
            .map(|start| {
                let (ca, ca_key, leaf_key) = (&ca, &ca_key, &leaf_key);
                scope.spawn(move || {
                    let mut pem = String::new();
                    for i in start..(start + per_thread).min(n) {
                        let name = format!("host{i}.bench.example");
                        let mut template = CertificateTemplate::new(
                            DistinguishedName::common_name(&name),
                            CertificateKind::TlsServer,
                            now - Duration::hours(1),
                            now + Duration::days(90 + (i % 300) as i64),
                        );
                        template.subject_alternative_names =
                            vec![SubjectAlternativeName::Dns(name)];
                        let der = build_certificate(
                            &template,
                            &leaf_key.public_key_der(),
                            Issuer::Ca {
                                certificate: ca,
                                key: ca_key,
                            },
                        )
                        .expect("leaf");
                        pem.push_str(&clm::crypto::der_to_pem(
                            clm::crypto::PemLabel::Certificate,
                            &der,
                        ));
                    }
                    pem
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("generator thread"))
            .collect()
    });
    let mut data = ca.pem.into_bytes();
    for part in parts {
        data.extend_from_slice(part.as_bytes());
    }
    data
}

async fn run(backend: &str, config: ClmConfig, data: &[u8], n: usize) {
    let clm = Clm::open(config.with_master_key(common::test_master_key()))
        .await
        .expect("open");
    let rss_before = memory::status_kb("VmRSS:");
    let peak_reset = memory::reset_peak();
    let started = Instant::now();
    let report = clm
        .import_certificates(
            &clm.system_actor(),
            ImportRequest {
                data: data.to_vec(),
                ..Default::default()
            },
        )
        .await
        .expect("import");
    let elapsed = started.elapsed();
    assert_eq!(report.imported.len(), n + 1);
    let rate = (n + 1) as f64 / elapsed.as_secs_f64();
    println!(
        "{backend:<10} imported {:>7} certificates in {:>8.3} s: {:>9.0} certificates/s",
        n + 1,
        elapsed.as_secs_f64(),
        rate
    );
    // The input and its parsed form are held for the whole import (nothing
    // is written before all of it has been checked), so the peak grows with
    // the input; the rows written are freed batch by batch.
    println!(
        "{backend:<10} memory: VmRSS before {}, peak during import {}{} (input {})",
        memory::mib(rss_before),
        memory::mib(memory::status_kb("VmHWM:")),
        if peak_reset {
            ""
        } else {
            " (process peak: could not reset)"
        },
        memory::mib(data.len() as u64 / 1024),
    );
    let started = Instant::now();
    let again = clm
        .import_certificates(
            &clm.system_actor(),
            ImportRequest {
                data: data.to_vec(),
                ..Default::default()
            },
        )
        .await
        .expect("re-import");
    assert_eq!(again.already_present.len(), n + 1);
    println!(
        "{backend:<10} re-import (all already present) in {:>8.3} s",
        started.elapsed().as_secs_f64()
    );
    clm.close().await;
}

/// Whether `backend` is among CLM_BENCH_BACKENDS (default: all).
fn backend_enabled(backend: &str) -> bool {
    std::env::var("CLM_BENCH_BACKENDS")
        .map(|v| v.split(',').any(|b| b.trim() == backend))
        .unwrap_or(true)
}

fn main() {
    let n: usize = std::env::var("CLM_BENCH_IMPORT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let started = Instant::now();
    let data = bundle(n);
    println!(
        "generated a CA + {n} leaves ({} KB of PEM) in {:.1} s",
        data.len() / 1024,
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        if backend_enabled("sqlite") {
            run("sqlite", ClmConfig::sqlite(dir.path()), &data, n).await;
        }
        if !backend_enabled("postgres") {
            return;
        }
        match common::PgTestDb::create().await {
            Some(pg) => {
                run("postgres", pg.config(), &data, n).await;
                pg.drop_all().await;
            }
            None => println!("postgres   skipped (unreachable)"),
        }
    });
}
