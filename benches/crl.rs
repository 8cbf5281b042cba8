//! CRL build benchmark: loads `CLM_BENCH_CRL` revoked certificates
//! (default 100000; e.g. `10000,100000,1000000` for several runs) under one
//! CA with bulk inserts (not the API), then times `generate_crl` (entries
//! streamed from the database into the builder, signed, stored) and prints
//! entries per second, the CRL's size and the peak RSS (VmHWM, reset before
//! the build where the kernel allows), on SQLite and PostgreSQL.
//!
//! `cargo bench -p clm-core --features clm-core/unstable-internals --bench crl`
//! (PostgreSQL from `CLM_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432`; a fresh database pair is
//! created and dropped).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "memory.rs"]
mod memory;

use std::time::Instant;

use clm::crypto::DistinguishedName;
use clm::service::authorities::NewCertificateAuthority;
use clm::{Clm, ClmConfig};
use memory::{mib, reset_peak, status_kb};

async fn run(label: &str, config: ClmConfig, n: usize) {
    println!("== {label}, {n} revoked");
    let clm = Clm::open(config.with_master_key(common::test_master_key()))
        .await
        .expect("open");
    let system = clm.system_actor();
    let ca_row = clm
        .create_root_ca(
            &system,
            NewCertificateAuthority {
                subject: DistinguishedName::common_name("CRL Bench CA"),
                ..Default::default()
            },
        )
        .await
        .expect("CA")
        .certificate;
    let ca = ca_row.id;
    let started = Instant::now();
    common::revoke_in_bulk(&clm, ca, n).await;
    println!(
        "  loaded {n} revoked certificates in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let rss_before = status_kb("VmRSS:");
    let reset = reset_peak();
    let hwm_before = status_kb("VmHWM:");
    let started = Instant::now();
    let crl = clm.generate_crl(&system, ca, None).await.expect("CRL");
    let secs = started.elapsed().as_secs_f64();
    let hwm_after = status_kb("VmHWM:");
    assert_eq!(crl.entry_count, n as i64);
    println!(
        "  generate_crl: {n} entries in {secs:.2} s ({:.0} entries/s), {:.1} MiB DER",
        n as f64 / secs,
        crl.size_bytes as f64 / 1_048_576.0
    );
    println!(
        "  memory: VmRSS before {}, VmHWM {} -> {} (+{}{})",
        mib(rss_before),
        mib(hwm_before),
        mib(hwm_after),
        mib(hwm_after.saturating_sub(hwm_before)),
        if reset {
            ", peak reset before the build"
        } else {
            ", cumulative peak"
        }
    );

    // Serving: the CRL read back chunk by chunk, as a host streams it.
    let reset = reset_peak();
    let hwm_before = status_kb("VmHWM:");
    let started = Instant::now();
    let mut reader = clm
        .open_latest_crl(&system, ca, None, false)
        .await
        .expect("open CRL");
    let dir = tempfile::tempdir().expect("tempdir");
    let crl_path = dir.path().join("crl.der");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&crl_path).expect("CRL file"));
    let mut served = 0usize;
    while let Some(chunk) = reader.next_chunk().await.expect("chunk") {
        served += chunk.len();
        std::io::Write::write_all(&mut file, &chunk).expect("write CRL");
    }
    std::io::Write::flush(&mut file).expect("flush CRL");
    assert_eq!(served as i64, crl.size_bytes);
    let hwm_after = status_kb("VmHWM:");
    println!(
        "  served in chunks: {:.2} s, VmHWM {} -> {} (+{}{})",
        started.elapsed().as_secs_f64(),
        mib(hwm_before),
        mib(hwm_after),
        mib(hwm_after.saturating_sub(hwm_before)),
        if reset {
            ", peak reset"
        } else {
            ", cumulative peak"
        }
    );
    println!(
        "  openssl crl -verify: {}",
        openssl_verify(&crl_path, &ca_row.certificate_pem)
    );
    clm.close().await;
}

/// What `openssl crl -verify` says of the CRL (a DER file) against the CA.
fn openssl_verify(crl: &std::path::Path, ca_pem: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write CA");
    match std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-verify", "-in"])
        .arg(crl)
        .arg("-CAfile")
        .arg(&ca)
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
        Err(err) => format!("not run ({err})"),
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::var("CLM_BENCH_CRL")
        .unwrap_or_else(|_| "100000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for &n in &sizes {
            let dir = tempfile::tempdir().expect("tempdir");
            run("sqlite", ClmConfig::sqlite(dir.path()), n).await;
            drop(dir);
            match common::PgTestDb::create().await {
                Some(db) => {
                    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
                        run("postgres", db.config(), n),
                    ))
                    .await;
                    db.drop_all().await;
                    if let Err(panic) = outcome {
                        std::panic::resume_unwind(panic);
                    }
                }
                None => println!("== postgres skipped (unreachable)"),
            }
        }
    });
}
