//! Data-key rotation benchmark: loads `CLM_BENCH_ROTATION` (default 100000)
//! certificates with sealed private keys into SQLite and PostgreSQL, then
//! times `rotate_data_key` and prints keys per second and peak RSS (VmHWM)
//! before and after, so memory growth with the number of keys shows.
//!
//! `cargo bench -p clm-core --bench rotation` (PostgreSQL from
//! `CLM_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432`; a fresh
//! database pair is created and dropped). `CLM_BENCH_BATCH` sets the batch size.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "memory.rs"]
mod memory;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use chrono::Duration as Days;
use clm::crypto::{KeyAlgorithm, KeyPair};
use clm::keyring::KeyRing;
use clm::model::{Opaque, PrivateKeyId, PrivateKeyRecord};
use clm::service::rotation::{RotationOptions, RotationProgress};
use clm::store::{certificates, now, private_keys};
use clm::{Clm, ClmConfig};
use memory::{mib, reset_peak, status_kb};

const LOAD_CHUNK: usize = 5_000;

/// Inserts `n` certificates with private keys. Each row is sealed for its own
/// certificate id (the associated data binds the row), under the active data
/// key, through a key ring loaded from the database like `Clm::open` does.
async fn load(clm: &Clm, n: usize) {
    let provider = common::test_master_key().resolve().expect("master key").0;
    let ring = KeyRing::load(&clm.databases().secure, provider)
        .await
        .expect("key ring");
    // One key pair: sealing per row is what matters here, not key generation.
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let der = key.to_pkcs8_der();
    let public_sha = clm::crypto::token::sha256_hex(&key.public_key_der());
    let started = Instant::now();
    let t = now();
    let mut done = 0;
    while done < n {
        let size = LOAD_CHUNK.min(n - done);
        let mut certs = Vec::with_capacity(size);
        let mut keys = Vec::with_capacity(size);
        for i in 0..size {
            let cert =
                common::certificate(&format!("host{}.example.com", done + i), t + Days::days(90));
            let certificate_id = cert.id.to_string();
            // The associated data private keys are sealed with (see
            // `private_key_aad` in service/certificates.rs).
            let (encryption_key_id, sealed) = ring
                .seal(
                    der.expose(),
                    &["private_keys", "encrypted_key_material", &certificate_id],
                )
                .expect("seal");
            keys.push(PrivateKeyRecord {
                id: PrivateKeyId::new(),
                certificate_id: cert.id,
                encryption_key_id,
                encrypted_key_material: Opaque(sealed.ciphertext),
                nonce: Opaque(sealed.nonce),
                key_algorithm: "ECDSA".into(),
                key_size: 256,
                public_key_sha256: public_sha.clone(),
                created_at: t,
                updated_at: t,
                deleted_at: None,
            });
            certs.push(cert);
        }
        let mut tx = clm.databases().secure.begin().await.expect("begin");
        certificates::insert_many(&mut tx.conn(), &certs)
            .await
            .expect("certificates");
        private_keys::insert_many(&mut tx.conn(), &keys)
            .await
            .expect("private keys");
        tx.commit().await.expect("commit");
        done += size;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loaded {n} certificates + sealed keys in {secs:.1} s ({:.0}/s)",
        n as f64 / secs
    );
}

async fn run(label: &str, config: ClmConfig, n: usize, batch_size: u32) {
    println!("== {label}");
    let clm = Clm::open(config.with_master_key(common::test_master_key()))
        .await
        .expect("open");
    load(&clm, n).await;
    let rss_before = status_kb("VmRSS:");
    let reset = reset_peak();
    let hwm_before = status_kb("VmHWM:");
    let step = (n as i64 / 10).max(1);
    let next_print = AtomicI64::new(step);
    let progress = |p: RotationProgress| {
        if p.rotated >= next_print.load(Ordering::Relaxed) {
            next_print.store(p.rotated + step, Ordering::Relaxed);
            println!(
                "  {:>7}/{} rotated, VmRSS {}",
                p.rotated,
                p.total,
                mib(status_kb("VmRSS:"))
            );
        }
    };
    let started = Instant::now();
    let report = clm
        .rotate_data_key(
            &clm.system_actor(),
            RotationOptions {
                batch_size,
                progress: Some(&progress),
                max_batches: None,
            },
        )
        .await
        .expect("rotate");
    let secs = started.elapsed().as_secs_f64();
    let hwm_after = status_kb("VmHWM:");
    assert_eq!(report.rotated_items, n as i64, "every key rotated");
    println!(
        "rotated {} keys in {secs:.2} s: {:.0} keys/s ({} batches of {batch_size})",
        report.rotated_items,
        report.rotated_items as f64 / secs,
        report.batches
    );
    println!(
        "memory: VmRSS before {}, VmHWM before {} -> after {} (peak {} during rotation{})",
        mib(rss_before),
        mib(hwm_before),
        mib(hwm_after),
        mib(hwm_after.saturating_sub(hwm_before)),
        if reset {
            ", peak reset before it"
        } else {
            ", cumulative peak"
        }
    );
    clm.close().await;
}

fn main() {
    let n: usize = std::env::var("CLM_BENCH_ROTATION")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let batch_size: u32 = std::env::var("CLM_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(clm::service::rotation::DEFAULT_BATCH_SIZE);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        run("sqlite", ClmConfig::sqlite(dir.path()), n, batch_size).await;
        drop(dir);
        match common::PgTestDb::create().await {
            Some(db) => {
                let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run(
                    "postgres",
                    db.config(),
                    n,
                    batch_size,
                )))
                .await;
                db.drop_all().await;
                if let Err(panic) = outcome {
                    std::panic::resume_unwind(panic);
                }
            }
            None => println!("== postgres skipped (unreachable)"),
        }
    });
}
