//! Issuance throughput: the whole path (authorization, policy, P-256 key
//! generation, signing by a cached intermediate, sealing, certificate +
//! key + request + two secure audit rows, metadata + core audit row) with N
//! concurrent callers, and signing of submitted P-256 CSRs. Both backends.
//!
//!     cargo bench -p clm-core --bench issuance
//!
//! CLM_BENCH_COUNT (default 2000) issuances per run; CLM_BENCH_CONCURRENCY
//! (default "1,8,32") callers; CLM_BENCH_BACKENDS (default "sqlite,postgres")
//! which backends run. PostgreSQL from CLM_TEST_PG_URL (default
//! postgres://postgres@127.0.0.1:5432; skipped when unreachable), durable
//! commits (the server's defaults). CLM_BENCH_PHASES=1 also prints where an
//! issuance's time went (see `phases.rs`).

#[path = "ceiling.rs"]
mod ceiling;
#[path = "memory.rs"]
mod memory;
#[path = "phases.rs"]
mod phases;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clm::crypto::{DistinguishedName, KeyAlgorithm, KeyPair, PemLabel, build_csr, der_to_pem};
use clm::model::{CertificateId, CertificateKind, PolicyId, PolicyRules, SubjectAlternativeName};
use clm::service::authorities::NewCertificateAuthority;
use clm::service::issuance::{IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::{Clm, ClmConfig, MasterKeySource};
use sqlx::AssertSqlSafe;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether `backend` is among CLM_BENCH_BACKENDS (default: all).
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
        .unwrap_or_else(|| vec![1, 8, 32])
}

fn master_key() -> MasterKeySource {
    MasterKeySource::Base64(base64::engine::general_purpose::STANDARD.encode([0x5a; 32]))
}

struct Setup {
    clm: Clm,
    issuer: CertificateId,
    policy: PolicyId,
}

async fn setup(config: ClmConfig, max_connections: u32) -> clm::Result<Setup> {
    let clm = Clm::open(
        config
            .with_master_key(master_key())
            .with_max_connections(max_connections),
    )
    .await?;
    let system = clm.system_actor();
    let root = clm
        .create_root_ca(
            &system,
            NewCertificateAuthority {
                subject: DistinguishedName::common_name("Bench Root"),
                key_algorithm: KeyAlgorithm::EcdsaP256,
                validity_days: Some(3650),
                ..Default::default()
            },
        )
        .await?;
    let intermediate = clm
        .create_intermediate_ca(
            &system,
            root.certificate.id,
            NewCertificateAuthority {
                subject: DistinguishedName::common_name("Bench Issuing CA"),
                key_algorithm: KeyAlgorithm::EcdsaP256,
                validity_days: Some(1825),
                path_len: Some(0),
                crl_distribution_points: vec!["http://pki.example.com/issuing.crl".into()],
                ..Default::default()
            },
        )
        .await?;
    let policy = clm
        .create_policy(
            &system,
            NewPolicy {
                policy_code: format!("BENCH-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
                name: "Bench TLS".into(),
                rules: PolicyRules {
                    max_validity_days: 90,
                    allowed_domains: vec!["example.com".into()],
                    allow_subdomains: true,
                    ..PolicyRules::default()
                },
                ..NewPolicy::default()
            },
        )
        .await?;
    Ok(Setup {
        clm,
        issuer: intermediate.certificate.id,
        policy: policy.id,
    })
}

fn request(setup: &Setup, n: usize, key: KeySource) -> IssueRequest {
    let name = format!("host{n}.bench.example.com");
    IssueRequest {
        issuer_id: setup.issuer,
        policy_id: Some(setup.policy),
        subject: DistinguishedName::common_name(name.clone()),
        sans: vec![SubjectAlternativeName::Dns(name)],
        kind: CertificateKind::TlsServer,
        validity_days: 30,
        key,
        owner_user_id: None,
        organization_id: None,
    }
}

/// Issues `count` certificates from `callers` tasks; returns the elapsed time.
async fn drive(
    setup: &Arc<Setup>,
    count: usize,
    callers: usize,
    csrs: Option<Arc<Vec<String>>>,
) -> Duration {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(callers);
    for _ in 0..callers {
        let setup = setup.clone();
        let next = next.clone();
        let csrs = csrs.clone();
        tasks.push(tokio::spawn(async move {
            let actor = setup.clm.system_actor();
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let key = match &csrs {
                    Some(csrs) => KeySource::Csr(csrs[n % csrs.len()].clone()),
                    None => KeySource::Generate(KeyAlgorithm::EcdsaP256),
                };
                let mut req = request(&setup, n, key);
                if csrs.is_some() {
                    // The CSR carries its own subject and SANs.
                    req.subject = DistinguishedName::default();
                    req.sans = Vec::new();
                }
                if let Err(err) = setup.clm.issue_certificate(&actor, req).await {
                    panic!("issuance {n} failed: {err}");
                }
            }
        }));
    }
    for task in tasks {
        if let Err(err) = task.await {
            panic!("caller task failed: {err}");
        }
    }
    start.elapsed()
}

fn csrs(count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let key = KeyPair::generate(KeyAlgorithm::EcdsaP256)
                .unwrap_or_else(|err| panic!("key: {err}"));
            let name = format!("csr{n}.bench.example.com");
            let der = build_csr(
                &DistinguishedName::common_name(name.clone()),
                &[SubjectAlternativeName::Dns(name)],
                &key,
            )
            .unwrap_or_else(|err| panic!("csr: {err}"));
            der_to_pem(PemLabel::CertificateRequest, &der)
        })
        .collect()
}

async fn bench_backend(label: &str, config: ClmConfig) {
    let count = env_usize("CLM_BENCH_COUNT", 2000);
    let levels = concurrency_levels();
    let max_callers = levels.iter().copied().max().unwrap_or(1);
    let setup = match setup(config, (max_callers as u32).clamp(4, 64)).await {
        Ok(setup) => Arc::new(setup),
        Err(err) => panic!("{label}: setup failed: {err}"),
    };
    let csrs = Arc::new(csrs(count.min(2000)));
    // The peak printed after the runs is their own.
    memory::reset_peak();
    // The set-up's own spans are not the runs'.
    phases::clear();
    for &callers in &levels {
        let elapsed = drive(&setup, count, callers, None).await;
        println!(
            "{label:<10} issue (generated P-256)  callers={callers:<3} {count} in {:>7.3}s = {:>8.0}/s",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64()
        );
        phases::report(label, "generated", count);
        let elapsed = drive(&setup, count, callers, Some(csrs.clone())).await;
        println!(
            "{label:<10} sign submitted P-256 CSR callers={callers:<3} {count} in {:>7.3}s = {:>8.0}/s",
            elapsed.as_secs_f64(),
            count as f64 / elapsed.as_secs_f64()
        );
        phases::report(label, "CSR", count);
    }
    println!(
        "{label:<10} peak RSS during the runs {}",
        memory::mib(memory::status_kb("VmHWM:"))
    );
    setup.clm.close().await;
}

async fn postgres_config() -> Option<(sqlx::PgPool, String, String, ClmConfig)> {
    let base = std::env::var("CLM_TEST_PG_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into());
    let base = base.trim_end_matches('/').to_string();
    let admin = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&format!("{base}/postgres"))
        .await
    {
        Ok(pool) => pool,
        Err(err) => {
            println!("postgres   SKIPPED: {base} unreachable ({err})");
            return None;
        }
    };
    let stem = format!("clm_bench_{}", uuid::Uuid::new_v4().simple());
    let (secure, core) = (format!("{stem}_secure"), format!("{stem}_core"));
    for name in [&secure, &core] {
        if let Err(err) = sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
        {
            println!("postgres   SKIPPED: cannot create {name}: {err}");
            return None;
        }
    }
    let config = ClmConfig::postgres(format!("{base}/{secure}"), format!("{base}/{core}"));
    Some((admin, secure, core, config))
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; stay quick there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("issuance bench: run with `cargo bench -p clm-core --bench issuance`");
        return;
    }
    phases::install();
    let costs = ceiling::p256_costs();
    // What every issuance signs and checks: a key (generated ones), the
    // certificate, the self-check of its signature, the OCSP answer; a CSR
    // brings its own key and one more check, of its proof of possession.
    let generated = costs.generate_us + 2.0 * costs.sign_us + costs.verify_us;
    let csr = 2.0 * costs.sign_us + 2.0 * costs.verify_us;
    println!(
        "ceiling: {}; an issuance's own signatures and checks take {generated:.0} us \
         (a CSR's {csr:.0} us), which alone cap {} cores at {:.0}/s ({:.0}/s for CSRs)",
        costs.describe(),
        ceiling::cores(),
        ceiling::cap(generated),
        ceiling::cap(csr)
    );
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
    if let Some((admin, secure, core, config)) = postgres_config().await {
        bench_backend("postgres", config).await;
        for name in [secure, core] {
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
        }
    }
}
