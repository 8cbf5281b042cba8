//! Bulk import benchmark: one PEM bundle of a CA and `CLM_BENCH_IMPORT`
//! (default 20000) leaves it signed, written to a file by a child process
//! (so the generator's memory is not counted) and imported through
//! `Clm::import_certificates_from_file` (streamed: parse, dedupe, issuer
//! linking with signature checks, batched rows, metadata, audit) into
//! SQLite and PostgreSQL. Prints certificates per second and the process's
//! peak RSS during the import.
//!
//! `cargo bench -p clm-core --bench import` (PostgreSQL from `CLM_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432`; a fresh database pair is
//! created and dropped). `CLM_BENCH_BACKENDS` (default "sqlite,postgres")
//! picks the backends.

#[path = "ceiling.rs"]
mod ceiling;
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
use clm::service::inventory::ImportOptions;
use clm::{Clm, ClmConfig};

/// Set (to the bundle's path) in the child process that writes the bundle.
const WRITE_BUNDLE_TO: &str = "CLM_BENCH_IMPORT_WRITE_BUNDLE_TO";

/// Leaves generated (and held) at a time while writing the bundle file.
const GENERATE_BLOCK: usize = 20_000;

/// A CA and `n` leaves in one PEM bundle file, signed on every core.
fn write_bundle(n: usize, path: &std::path::Path) {
    use std::io::Write as _;
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
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("bundle file"));
    file.write_all(ca.pem.as_bytes()).expect("write CA");
    let threads = ceiling::cores();
    for block_start in (0..n).step_by(GENERATE_BLOCK) {
        let block_end = (block_start + GENERATE_BLOCK).min(n);
        let per_thread = (block_end - block_start).div_ceil(threads).max(1);
        let parts: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = (block_start..block_end)
                .step_by(per_thread)
                .map(|start| {
                    let (ca, ca_key, leaf_key) = (&ca, &ca_key, &leaf_key);
                    scope.spawn(move || {
                        let mut pem = String::new();
                        for i in start..(start + per_thread).min(block_end) {
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
        for part in parts {
            file.write_all(part.as_bytes()).expect("write leaves");
        }
    }
    file.flush().expect("flush bundle");
}

async fn run(backend: &str, config: ClmConfig, path: &std::path::Path, bytes: u64, n: usize) {
    let clm = Clm::open(config.with_master_key(common::test_master_key()))
        .await
        .expect("open");
    let rss_before = memory::status_kb("VmRSS:");
    let peak_reset = memory::reset_peak();
    let started = Instant::now();
    let summary = clm
        .import_certificates_from_file(&clm.system_actor(), path, ImportOptions::default())
        .await
        .expect("import");
    let elapsed = started.elapsed();
    assert_eq!(summary.imported, n as u64 + 1);
    let rate = (n + 1) as f64 / elapsed.as_secs_f64();
    println!(
        "{backend:<10} imported {:>7} certificates in {:>8.3} s: {:>9.0} certificates/s",
        n + 1,
        elapsed.as_secs_f64(),
        rate
    );
    // The import holds a chunk or two of the input (and the certificates
    // held back for a later issuer), whatever the input's size.
    println!(
        "{backend:<10} memory: VmRSS before {}, peak during import {}{} (input {})",
        memory::mib(rss_before),
        memory::mib(memory::status_kb("VmHWM:")),
        if peak_reset {
            ""
        } else {
            " (process peak: could not reset)"
        },
        memory::mib(bytes / 1024),
    );
    let started = Instant::now();
    let again = clm
        .import_certificates_from_file(&clm.system_actor(), path, ImportOptions::default())
        .await
        .expect("re-import");
    assert_eq!(again.already_present, n as u64 + 1);
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
    // The bundle is written by a child process (this bench again), so the
    // generator's heap is never part of the importing process's memory.
    if let Some(path) = std::env::var_os(WRITE_BUNDLE_TO) {
        write_bundle(n, std::path::Path::new(&path));
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bundle.pem");
    let status = std::process::Command::new(std::env::current_exe().expect("this bench's path"))
        .env(WRITE_BUNDLE_TO, &path)
        .status()
        .expect("run the bundle writer");
    assert!(status.success(), "the bundle writer failed: {status}");
    let bytes = std::fs::metadata(&path).expect("bundle size").len();
    println!(
        "generated a CA + {n} leaves ({} KB of PEM) in {:.1} s",
        bytes / 1024,
        started.elapsed().as_secs_f64()
    );
    let costs = ceiling::p256_costs();
    println!(
        "ceiling: {}; checking every certificate's signature alone caps an import at {:.0}/s on {} cores",
        costs.describe(),
        ceiling::cap(costs.verify_us),
        ceiling::cores()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if backend_enabled("sqlite") {
            let db_dir = tempfile::tempdir().expect("tempdir");
            run("sqlite", ClmConfig::sqlite(db_dir.path()), &path, bytes, n).await;
        }
        if !backend_enabled("postgres") {
            return;
        }
        match common::PgTestDb::create().await {
            Some(pg) => {
                run("postgres", pg.config(), &path, bytes, n).await;
                pg.drop_all().await;
            }
            None => println!("postgres   skipped (unreachable)"),
        }
    });
}
