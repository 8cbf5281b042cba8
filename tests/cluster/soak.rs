//! The soak run (`scripts/soak MINUTES [PROCESSES]`, not part of CI): worker
//! processes (this test binary run again) mix every kind of operation
//! against one PostgreSQL for MINUTES, each timing its calls, counting
//! errors by code and sampling its resident memory; the parent then prints
//! operations done, errors by code, p50/p99 latency per operation and RSS
//! over time, and ends with `reconcile` and the invariant check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use clm::crypto::{DistinguishedName, KeyAlgorithm};
use clm::model::{
    CertificateId, CertificateKind, OrganizationId, PolicyId, RevocationReason,
    SubjectAlternativeName, UserId,
};
use clm::service::access::{ROLE_APPROVER, ROLE_OPERATOR};
use clm::service::inventory::CertificateSearch;
use clm::service::issuance::{IssuanceOutcome, IssueRequest, KeySource, RenewOptions};
use clm::service::rotation::RotationOptions;
use clm::store::PageRequest;
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::{Clm, ClmConfig};

use crate::common::invariants::assert_invariants;
use crate::common::{PgTestDb, test_master_key};
use crate::wf_support::{org, policy, root_ca, rules, security, user_in};

const WORKER_VARIABLE: &str = "CLM_SOAK_WORKER";

/// `key=value` lines.
fn read_fields(path: &str) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .expect("read the assignment")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn uuid_of(fields: &BTreeMap<String, String>, name: &str) -> uuid::Uuid {
    uuid::Uuid::from_str(&fields[name]).unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// This process's resident set, in kB (Linux).
fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

/// A small deterministic generator: the mix differs per worker, repeatably.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// Operation weights (out of their sum).
const MIX: &[(&str, u64)] = &[
    ("issue", 24),
    ("search", 14),
    ("get", 14),
    ("export_key", 6),
    ("revoke", 8),
    ("generate_crl", 6),
    ("renew", 6),
    ("approval", 6),
    ("lifecycle", 4),
    ("list_audit", 6),
    ("list_organizations", 6),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of scripts/soak"]
async fn soak_worker() {
    let Ok(path) = std::env::var(WORKER_VARIABLE) else {
        eprintln!("soak_worker runs only as a child of the soak");
        return;
    };
    let job = read_fields(&path);
    let worker: u64 = job["worker"].parse().expect("worker");
    let seconds: u64 = job["seconds"].parse().expect("seconds");
    let issuer = CertificateId(uuid_of(&job, "issuer"));
    let organization = OrganizationId(uuid_of(&job, "organization"));
    let plain = PolicyId(uuid_of(&job, "plain"));
    let gated = PolicyId(uuid_of(&job, "gated"));
    let clm = Clm::open(
        ClmConfig::postgres(job["secure_url"].clone(), job["core_url"].clone())
            .with_master_key(test_master_key())
            .with_security(security())
            .with_max_connections(4),
    )
    .await
    .expect("soak worker: open");
    let system = clm.system_actor();
    let owner = clm
        .actor_for_user(UserId(uuid_of(&job, "owner")))
        .await
        .expect("owner");
    let approver = clm
        .actor_for_user(UserId(uuid_of(&job, "approver")))
        .await
        .expect("approver");
    let request = |policy: PolicyId, name: &str| IssueRequest {
        issuer_id: issuer,
        policy_id: Some(policy),
        subject: DistinguishedName::common_name(name),
        sans: vec![SubjectAlternativeName::Dns(name.into())],
        kind: CertificateKind::TlsServer,
        validity_days: 60,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: Some(organization),
    };

    let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ (worker + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let total: u64 = MIX.iter().map(|(_, w)| w).sum();
    let mut live: Vec<CertificateId> = Vec::new();
    let mut lines = Vec::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut next_rss = started;
    let mut next_rotation = started + Duration::from_secs(120);
    let mut n = 0u64;
    while Instant::now() < deadline {
        if Instant::now() >= next_rss {
            lines.push(format!("rss {} {}", started.elapsed().as_secs(), rss_kb()));
            next_rss += Duration::from_secs(15);
        }
        n += 1;
        let mut roll = dice.roll(total);
        let mut op = MIX[0].0;
        for (name, weight) in MIX {
            if roll < *weight {
                op = name;
                break;
            }
            roll -= weight;
        }
        // Worker 0 also rotates the data key every two minutes.
        if worker == 0 && Instant::now() >= next_rotation {
            op = "rotate_data_key";
            next_rotation += Duration::from_secs(120);
        }
        let pick = |live: &Vec<CertificateId>, dice: &mut Dice| {
            (!live.is_empty()).then(|| live[dice.roll(live.len() as u64) as usize])
        };
        let call = Instant::now();
        let outcome: clm::Result<()> = match op {
            "issue" => clm
                .issue_certificate(
                    &system,
                    request(plain, &format!("s{worker}-{n}.example.com")),
                )
                .await
                .and_then(IssuanceOutcome::into_certificate)
                .map(|c| live.push(c.id)),
            "search" => clm
                .search_certificates(
                    &system,
                    &CertificateSearch {
                        common_name: Some(format!("s{worker}-{}.example.com", dice.roll(n.max(1)))),
                        ..Default::default()
                    },
                    &PageRequest::first(20),
                )
                .await
                .map(drop),
            "get" => match pick(&live, &mut dice) {
                Some(id) => clm.get_certificate(&system, id).await.map(drop),
                None => continue,
            },
            "export_key" => match pick(&live, &mut dice) {
                Some(id) => clm.export_private_key(&system, id).await.map(drop),
                None => continue,
            },
            "revoke" => match pick(&live, &mut dice) {
                Some(id) => {
                    live.retain(|l| *l != id);
                    clm.revoke_certificate(&system, id, RevocationReason::Superseded, None)
                        .await
                        .map(drop)
                }
                None => continue,
            },
            "generate_crl" => clm.generate_crl(&system, issuer, None).await.map(drop),
            "renew" => match pick(&live, &mut dice) {
                Some(id) => {
                    live.retain(|l| *l != id);
                    clm.renew_certificate(&system, id, RenewOptions::default())
                        .await
                        .and_then(IssuanceOutcome::into_certificate)
                        .map(|c| live.push(c.id))
                }
                None => continue,
            },
            "approval" => {
                let name = format!("g{worker}-{n}.example.com");
                match clm.issue_certificate(&owner, request(gated, &name)).await {
                    Ok(IssuanceOutcome::Pending { request }) => {
                        match request.workflow_instance_id {
                            Some(instance) => clm
                                .decide_approval(&approver, instance, true, None)
                                .await
                                .map(drop),
                            None => Err(clm::Error::Internal(
                                "a pending request without its workflow".into(),
                            )),
                        }
                    }
                    Ok(IssuanceOutcome::Issued { .. }) => Err(clm::Error::Internal(
                        "a gated request was issued at once".into(),
                    )),
                    Err(err) => Err(err),
                }
            }
            "lifecycle" => clm
                .run_lifecycle(&system, clm::store::now())
                .await
                .map(drop),
            "list_audit" => clm
                .list_audit_events(
                    &system,
                    AuditLogKind::Core,
                    &AuditFilter::default(),
                    &PageRequest::first(50),
                )
                .await
                .map(drop),
            "list_organizations" => clm
                .list_organizations(&system, &PageRequest::first(50))
                .await
                .map(drop),
            "rotate_data_key" => clm
                .rotate_data_key(&system, RotationOptions::default())
                .await
                .map(drop),
            other => panic!("unknown operation {other}"),
        };
        let micros = call.elapsed().as_micros();
        match outcome {
            Ok(()) => lines.push(format!("ok {op} {micros}")),
            Err(err) => lines.push(format!(
                "err {op} {:?} {micros} {}",
                err.code(),
                err.to_string().replace('\n', " ")
            )),
        }
    }
    lines.push(format!("rss {} {}", started.elapsed().as_secs(), rss_kb()));
    lines.push("end".into());
    std::fs::write(&job["out"], lines.join("\n") + "\n").expect("write the results");
    clm.close().await;
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

/// The soak's parent: `CLM_SOAK_MINUTES` (default 1) and
/// `CLM_SOAK_PROCESSES` (default 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run by scripts/soak"]
async fn soak() {
    let minutes: f64 = std::env::var("CLM_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1.0);
    let processes: usize = std::env::var("CLM_SOAK_PROCESSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(4);
    let Some(db) = PgTestDb::create().await else {
        panic!("the soak needs PostgreSQL (CLM_TEST_PG_URL)");
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run_soak(
        &db, minutes, processes,
    )))
    .await;
    db.drop_all().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn run_soak(db: &PgTestDb, minutes: f64, processes: usize) {
    let clm = Clm::open(
        db.config()
            .with_master_key(test_master_key())
            .with_security(security()),
    )
    .await
    .expect("open");
    let org_a = org(&clm, "soak").await;
    let ca = root_ca(&clm, Some(org_a)).await;
    let plain = policy(&clm, Some(org_a), rules(false, None)).await;
    let gated = policy(&clm, Some(org_a), rules(true, None)).await;
    let (owner, _) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
    let (approver, _) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
    let seconds = (minutes * 60.0).round() as u64;
    let work = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("the test binary");
    let mut children = Vec::new();
    let mut outs: Vec<PathBuf> = Vec::new();
    for worker in 0..processes {
        let out = work.path().join(format!("soak-{worker}.out"));
        let job = work.path().join(format!("soak-{worker}.job"));
        std::fs::write(
            &job,
            format!(
                "secure_url={}\ncore_url={}\nworker={worker}\nseconds={seconds}\nissuer={}\n\
                 organization={org_a}\nplain={}\ngated={}\nowner={owner}\napprover={approver}\nout={}\n",
                db.secure_url(),
                db.core_url(),
                ca.certificate.id,
                plain.id,
                gated.id,
                out.display()
            ),
        )
        .expect("write the assignment");
        children.push(
            Command::new(&exe)
                .args([
                    "soak::soak_worker",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(WORKER_VARIABLE, &job)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a soak worker"),
        );
        outs.push(out);
    }
    eprintln!(
        "soak: {processes} processes for {seconds} s against {}",
        db.secure_name
    );
    for (worker, child) in children.into_iter().enumerate() {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("join")
            .expect("worker output");
        assert!(
            output.status.success(),
            "soak worker {worker} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let mut latencies: BTreeMap<String, Vec<u128>> = BTreeMap::new();
    let mut errors: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut error_samples: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut rss: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for out in &outs {
        let text = std::fs::read_to_string(out).expect("soak results");
        assert!(text.ends_with("end\n"), "a soak worker ended early");
        for line in text.lines() {
            let words: Vec<&str> = line.splitn(6, ' ').collect();
            match words.as_slice() {
                ["ok", op, micros] => latencies
                    .entry(op.to_string())
                    .or_default()
                    .push(micros.parse().expect("micros")),
                ["err", op, code, _micros, rest @ ..] => {
                    let key = (op.to_string(), code.to_string());
                    *errors.entry(key.clone()).or_default() += 1;
                    error_samples.entry(key).or_insert_with(|| rest.join(" "));
                }
                ["rss", at, kb] => rss
                    .entry(at.parse().expect("seconds"))
                    .or_default()
                    .push(kb.parse().expect("kb")),
                _ => {}
            }
        }
    }
    let mut report = String::new();
    let done: usize = latencies.values().map(Vec::len).sum();
    let failed: u64 = errors.values().sum();
    report += &format!(
        "soak: {processes} processes, {seconds} s: {done} operations succeeded ({:.1}/s), {failed} failed\n",
        done as f64 / seconds.max(1) as f64
    );
    report += &format!(
        "{:<20} {:>8} {:>10} {:>10} {:>10}\n",
        "operation", "ok", "p50 ms", "p99 ms", "max ms"
    );
    let mut all = Vec::new();
    for (op, times) in &mut latencies {
        times.sort_unstable();
        all.extend_from_slice(times);
        report += &format!(
            "{op:<20} {:>8} {:>10.1} {:>10.1} {:>10.1}\n",
            times.len(),
            percentile(times, 50.0),
            percentile(times, 99.0),
            percentile(times, 100.0)
        );
    }
    all.sort_unstable();
    report += &format!(
        "{:<20} {:>8} {:>10.1} {:>10.1} {:>10.1}\n",
        "all",
        all.len(),
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        percentile(&all, 100.0)
    );
    report += "errors by operation and code (first message):\n";
    if errors.is_empty() {
        report += "  none\n";
    }
    for ((op, code), count) in &errors {
        report += &format!(
            "  {op} {code}: {count} ({})\n",
            error_samples[&(op.clone(), code.clone())]
        );
    }
    report += "RSS over time (kB per process, min..max):\n";
    for (at, kbs) in &rss {
        report += &format!(
            "  t={at:>5}s {:>8}..{:<8}\n",
            kbs.iter().min().unwrap_or(&0),
            kbs.iter().max().unwrap_or(&0)
        );
    }
    let repaired = clm.reconcile(&clm.system_actor()).await.expect("reconcile");
    let counts = assert_invariants(&clm, &crate::common::test_master_key()).await;
    report += &format!(
        "reconcile wrote {} metadata rows; invariants hold: {counts:?}\n",
        repaired.metadata_created
    );
    println!("{report}");
    if let Ok(path) = std::env::var("CLM_SOAK_REPORT") {
        std::fs::write(path, &report).expect("write the soak report");
    }
    clm.close().await;
}
