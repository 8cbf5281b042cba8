//! OCSP responses per second through `Clm::ocsp_respond`: pre-signed
//! lookups (one certificate, SHA-1 CertID, no nonce: one index probe) and
//! fresh signing (a nonce: status read by issuer and serial, then signed by
//! the delegated P-256 responder), with N concurrent callers. Both backends.
//!
//!     cargo bench -p clm-core --features clm-core/unstable-internals --bench ocsp
//!
//! CLM_BENCH_COUNT (default 500) certificates issued first; CLM_BENCH_REQUESTS
//! (default 20000) requests per measurement; CLM_BENCH_CONCURRENCY (default
//! "1,8") callers; CLM_BENCH_BACKENDS (default "sqlite,postgres"). PostgreSQL
//! from CLM_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432; skipped
//! when unreachable).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clm::crypto::ocsp::{
    OcspCertId, OcspHash, OcspResponseStatus, build_ocsp_request, read_ocsp_response,
};
use clm::crypto::{DistinguishedName, KeyAlgorithm, parse_certificates};
use clm::model::{CertificateKind, SubjectAlternativeName};
use clm::service::authorities::NewCertificateAuthority;
use clm::service::issuance::{IssueRequest, KeySource};
use clm::{Clm, ClmConfig, MasterKeySource};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn backend_enabled(backend: &str) -> bool {
    std::env::var("CLM_BENCH_BACKENDS")
        .map(|v| v.split(',').any(|b| b.trim() == backend))
        .unwrap_or(true)
}

fn concurrency_levels() -> Vec<usize> {
    std::env::var("CLM_BENCH_CONCURRENCY")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 8])
}

/// Issues `count` certificates under a new root; returns one request
/// without and one with a nonce per certificate.
async fn setup(clm: &Clm, count: usize) -> clm::Result<(Vec<Vec<u8>>, Vec<Vec<u8>>)> {
    let system = clm.system_actor();
    let root = clm
        .create_root_ca(
            &system,
            NewCertificateAuthority {
                subject: DistinguishedName::common_name("Bench OCSP Root"),
                key_algorithm: KeyAlgorithm::EcdsaP256,
                validity_days: Some(3650),
                ..Default::default()
            },
        )
        .await?;
    let ca = parse_certificates(root.certificate.certificate_pem.as_bytes())?.remove(0);
    let (mut plain, mut nonced) = (Vec::with_capacity(count), Vec::with_capacity(count));
    for n in 0..count {
        let name = format!("host{n}.example.com");
        let certificate = clm
            .issue_certificate(
                &system,
                IssueRequest {
                    issuer_id: root.certificate.id,
                    policy_id: None,
                    subject: DistinguishedName::common_name(&name),
                    sans: vec![SubjectAlternativeName::Dns(name)],
                    kind: CertificateKind::TlsServer,
                    validity_days: 90,
                    key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                    owner_user_id: None,
                    organization_id: None,
                },
            )
            .await?
            .into_certificate()?;
        let serial = hex::decode(&certificate.serial_number).unwrap_or_default();
        let id = OcspCertId::new(&ca, &serial, OcspHash::Sha1)?;
        plain.push(build_ocsp_request(std::slice::from_ref(&id), None)?);
        nonced.push(build_ocsp_request(&[id], Some(&(n as u64).to_be_bytes()))?);
    }
    Ok((plain, nonced))
}

/// `total` requests from `requests` (round robin) over `callers` tasks.
async fn drive(clm: &Clm, requests: &Arc<Vec<Vec<u8>>>, total: usize, callers: usize) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for caller in 0..callers {
        let (clm, requests) = (clm.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = caller;
            while n < total {
                let response = clm.ocsp_respond(&requests[n % requests.len()]).await;
                if n % 997 == 0 {
                    let status = read_ocsp_response(&response).map(|r| r.status);
                    assert_eq!(status.ok(), Some(OcspResponseStatus::Successful));
                }
                n += callers;
            }
        }));
    }
    for task in tasks {
        task.await.expect("caller");
    }
    started.elapsed()
}

async fn bench_backend(label: &str, config: ClmConfig) {
    let master =
        MasterKeySource::Base64(base64::engine::general_purpose::STANDARD.encode([0x5a; 32]));
    let clm = match Clm::open(config.with_master_key(master).with_max_connections(16)).await {
        Ok(clm) => clm,
        Err(err) => {
            println!("{label:<10} SKIPPED: {err}");
            return;
        }
    };
    let count = env_usize("CLM_BENCH_COUNT", 500);
    let total = env_usize("CLM_BENCH_REQUESTS", 20_000);
    let (plain, nonced) = match setup(&clm, count).await {
        Ok(requests) => requests,
        Err(err) => {
            println!("{label:<10} SKIPPED: setup failed: {err}");
            clm.close().await;
            return;
        }
    };
    let (plain, nonced) = (Arc::new(plain), Arc::new(nonced));
    // Warm the issuer index, the signer and the pools.
    drive(&clm, &nonced, 200, 4).await;
    for callers in concurrency_levels() {
        for (what, requests) in [("pre-signed lookup", &plain), ("fresh, nonce", &nonced)] {
            let elapsed = drive(&clm, requests, total, callers).await;
            println!(
                "{label:<10} {what:<18} callers {callers:>3}: {total} responses in {:>7.2} s = {:>8.0} responses/s",
                elapsed.as_secs_f64(),
                total as f64 / elapsed.as_secs_f64()
            );
        }
    }
    clm.close().await;
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; stay quick there.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "ocsp bench: run with `cargo bench -p clm-core --features clm-core/unstable-internals --bench ocsp`"
        );
        return;
    }
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("tempdir: {err}"),
    };
    if backend_enabled("sqlite") {
        bench_backend("sqlite", ClmConfig::sqlite(dir.path())).await;
    }
    if !backend_enabled("postgres") {
        return;
    }
    // The suite's own throwaway databases (tests/common), dropped after.
    match common::PgTestDb::create().await {
        Some(db) => {
            bench_backend("postgres", db.config()).await;
            db.drop_all().await;
        }
        None => println!("postgres   SKIPPED: unreachable"),
    }
}
