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

use chrono::Duration as Days;
use clm::crypto::DistinguishedName;
use clm::model::CertificateId;
use clm::service::authorities::NewCertificateAuthority;
use clm::store::{Value, certificates, now};
use clm::{Clm, ClmConfig};
use memory::{mib, reset_peak, status_kb};

const LOAD_CHUNK: usize = 5_000;

/// A random positive serial, as issuance makes them.
fn serial() -> String {
    hex::encode(clm::crypto::random_serial())
}

/// `n` certificates of `ca`, each with a standing revocation: certificate
/// rows by the store's multi-row insert, then one INSERT ... SELECT per
/// chunk for their revocations (the certificate's id doubles as the
/// revocation's, unique and a valid id on both backends).
async fn load(clm: &Clm, ca: CertificateId, n: usize) {
    let started = Instant::now();
    let t = now();
    let mut done = 0;
    while done < n {
        let size = LOAD_CHUNK.min(n - done);
        let certs: Vec<_> = (0..size)
            .map(|i| {
                let mut cert = common::certificate(
                    &format!("host{}.example.com", done + i),
                    t + Days::days(90),
                );
                cert.issuer_certificate_id = Some(ca);
                cert.serial_number = serial();
                cert
            })
            .collect();
        let mut tx = clm.databases().secure.begin().await.expect("begin");
        certificates::insert_many(&mut tx.conn(), &certs)
            .await
            .expect("certificates");
        tx.commit().await.expect("commit");
        done += size;
    }
    let mut tx = clm.databases().secure.begin().await.expect("begin");
    let revoked = common::raw(
        &mut tx.conn(),
        "INSERT INTO certificate_revocations (id, certificate_id, issuer_certificate_id,
            serial_number, revocation_reason, revoked_at, created_at, updated_at)
         SELECT id, id, issuer_certificate_id, serial_number, 'superseded', $2, $2, $2
           FROM certificates WHERE issuer_certificate_id = $1",
        vec![
            Value::Id(clm::model::ResourceId(ca.as_uuid())),
            Value::Time(t),
        ],
    )
    .await
    .expect("revocations");
    tx.commit().await.expect("commit");
    assert_eq!(revoked, n as u64);
    let secs = started.elapsed().as_secs_f64();
    println!("  loaded {n} revoked certificates in {secs:.1} s");
}

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
    load(&clm, ca, n).await;
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
        crl.der.len() as f64 / 1_048_576.0
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
    println!(
        "  openssl crl -verify: {}",
        openssl_verify(&crl.der, &ca_row.certificate_pem)
    );
    drop(crl);
    clm.close().await;
}

/// What `openssl crl -verify` says of the CRL (DER) against the CA.
fn openssl_verify(der: &[u8], ca_pem: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let (crl, ca) = (dir.path().join("crl.der"), dir.path().join("ca.pem"));
    std::fs::write(&crl, der).expect("write CRL");
    std::fs::write(&ca, ca_pem).expect("write CA");
    match std::process::Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-verify", "-in"])
        .arg(&crl)
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
