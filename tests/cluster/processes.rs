//! Several processes sharing one PostgreSQL: this test binary runs itself
//! again as workers (the ignored test `processes::worker`, told what to do
//! by `CLM_CLUSTER_WORKER`). All workers at once issue, revoke, sign CRLs of
//! one CA, decide the same pending approvals and run the lifecycle; then
//! the parent changes a policy and each worker, after its `cache_ttl`, must
//! be refused by the new rule. The parent checks: no duplicate serial, no
//! CRL number twice, one certificate per approved request, every expiring
//! certificate renewed once by whichever lifecycle run got the lease, the
//! caches converged, and the invariants.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use clm::crypto::{DistinguishedName, KeyAlgorithm};
use clm::model::{
    CertificateId, CertificateKind, OrganizationId, PolicyRules, RevocationReason,
    SubjectAlternativeName, UserId, WorkflowStatus,
};
use clm::service::access::{ROLE_APPROVER, ROLE_OPERATOR};
use clm::service::issuance::{IssueRequest, KeySource};
use clm::service::policies::PolicyUpdate;
use clm::store::now;
use clm::{Clm, ClmConfig, ErrorCode};

use crate::common::invariants::{assert_invariants, assert_issued_with_keys};
use crate::common::{PgTestDb, test_master_key};
use crate::wf_support::{leaf, org, pending, policy, root_ca, rules, security, user_in};

const WORKER_VARIABLE: &str = "CLM_CLUSTER_WORKER";
/// The workers' cache lifetime: short, so convergence is quick to observe.
const CACHE_TTL: Duration = Duration::from_millis(500);

/// What the parent tells a worker, one `key=value` a line in a file.
struct Assignment {
    secure_url: String,
    core_url: String,
    worker: usize,
    iterations: usize,
    issuer: CertificateId,
    organization: OrganizationId,
    policy: clm::model::PolicyId,
    approver: UserId,
    out: PathBuf,
    go_phase_two: PathBuf,
}

impl Assignment {
    fn write(&self, path: &Path) {
        let text = format!(
            "secure_url={}\ncore_url={}\nworker={}\niterations={}\nissuer={}\norganization={}\npolicy={}\n\
             approver={}\nout={}\ngo_phase_two={}\n",
            self.secure_url,
            self.core_url,
            self.worker,
            self.iterations,
            self.issuer,
            self.organization,
            self.policy,
            self.approver,
            self.out.display(),
            self.go_phase_two.display()
        );
        std::fs::write(path, text).expect("write the assignment");
    }

    fn read(path: &str) -> Assignment {
        let text = std::fs::read_to_string(path).expect("read the assignment");
        let fields: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let field = |name: &str| {
            fields
                .get(name)
                .copied()
                .unwrap_or_else(|| panic!("no {name}"))
        };
        let uuid = |name: &str| uuid::Uuid::from_str(field(name)).expect("a uuid");
        Assignment {
            secure_url: field("secure_url").into(),
            core_url: field("core_url").into(),
            worker: field("worker").parse().expect("worker"),
            iterations: field("iterations").parse().expect("iterations"),
            issuer: CertificateId(uuid("issuer")),
            organization: OrganizationId(uuid("organization")),
            policy: clm::model::PolicyId(uuid("policy")),
            approver: UserId(uuid("approver")),
            out: field("out").into(),
            go_phase_two: field("go_phase_two").into(),
        }
    }
}

fn worker_config(secure_url: &str, core_url: &str) -> ClmConfig {
    ClmConfig::postgres(secure_url, core_url)
        .with_master_key(test_master_key())
        .with_security(security())
        .with_max_connections(4)
        .with_cache_ttl(CACHE_TTL)
}

fn request(job: &Assignment, name: &str) -> IssueRequest {
    IssueRequest {
        issuer_id: job.issuer,
        policy_id: Some(job.policy),
        subject: DistinguishedName::common_name(name),
        sans: vec![SubjectAlternativeName::Dns(name.into())],
        kind: CertificateKind::TlsServer,
        validity_days: 60,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: Some(job.organization),
    }
}

/// The worker's side: runs only when the parent set `CLM_CLUSTER_WORKER`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process of the multi-process tests, started by them"]
async fn worker() {
    let Ok(path) = std::env::var(WORKER_VARIABLE) else {
        eprintln!("processes::worker runs only as a child of the multi-process tests");
        return;
    };
    let job = Assignment::read(&path);
    let clm = Clm::open(worker_config(&job.secure_url, &job.core_url))
        .await
        .expect("worker: open");
    let system = clm.system_actor();
    let mut out = Vec::new();
    let w = job.worker;

    // Phase one, with every other worker at once.
    let mut mine = Vec::new();
    for n in 0..job.iterations {
        let name = format!("w{w}-{n}.example.com");
        let certificate = clm
            .issue_certificate(&system, request(&job, &name))
            .await
            .and_then(|outcome| outcome.into_certificate())
            .unwrap_or_else(|err| panic!("worker {w}: issue {name}: {err}"));
        out.push(format!("issued {}", certificate.id));
        mine.push(certificate.id);
        if n % 2 == 1 {
            clm.revoke_certificate(&system, certificate.id, RevocationReason::Superseded, None)
                .await
                .unwrap_or_else(|err| panic!("worker {w}: revoke: {err}"));
        }
        let crl = clm
            .generate_crl(&system, job.issuer, None)
            .await
            .unwrap_or_else(|err| panic!("worker {w}: CRL: {err}"));
        out.push(format!("crl {}", crl.crl_number));
    }
    let approver = clm.actor_for_user(job.approver).await.expect("approver");
    for approval in clm
        .pending_approvals(&approver)
        .await
        .expect("pending approvals")
    {
        match clm
            .decide_approval(&approver, approval.workflow_instance_id, true, None)
            .await
        {
            Ok(view) => out.push(format!(
                "approved {} {:?}",
                approval.workflow_instance_id, view.instance.status
            )),
            // Another worker decided it first.
            Err(err) if matches!(err.code(), ErrorCode::Conflict | ErrorCode::NotFound) => {
                out.push(format!("lost {}", approval.workflow_instance_id))
            }
            Err(err) => panic!("worker {w}: approve: {err}"),
        }
    }
    for _ in 0..3 {
        let report = clm
            .run_lifecycle(&system, now())
            .await
            .unwrap_or_else(|err| panic!("worker {w}: lifecycle: {err}"));
        assert!(report.renewal_errors.is_empty(), "{report:?}");
        out.push(format!(
            "lifecycle {} {}",
            report.ran, report.renewals_issued
        ));
    }
    std::fs::write(&job.out, out.join("\n") + "\nphase_one_done\n").expect("write results");

    // Phase two: the parent changed the policy; within the cache's lifetime
    // this process must follow it.
    let started = Instant::now();
    while !job.go_phase_two.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "worker {w}: no phase two"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(CACHE_TTL + Duration::from_millis(100)).await;
    let refused = clm
        .issue_certificate(&system, request(&job, &format!("late{w}.example.com")))
        .await;
    out.push(match refused {
        Err(err) if err.code() == ErrorCode::PolicyViolation => "phase_two refused".to_string(),
        Err(err) => format!("phase_two error {err}"),
        Ok(_) => "phase_two accepted".to_string(),
    });
    std::fs::write(&job.out, out.join("\n") + "\nphase_one_done\nend\n").expect("write results");
    clm.close().await;
}

/// Runs `workers` worker processes of `iterations` each against a fresh
/// database pair and checks what they did together.
async fn run_processes(workers: usize, iterations: usize) {
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(check_processes(
        &db, workers, iterations,
    )))
    .await;
    db.drop_all().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn check_processes(db: &PgTestDb, workers: usize, iterations: usize) {
    let clm = Clm::open(
        db.config()
            .with_master_key(test_master_key())
            .with_security(security()),
    )
    .await
    .expect("open");
    let system = clm.system_actor();
    let org_a = org(&clm, "procs").await;
    let ca = root_ca(&clm, Some(org_a)).await;
    let plain = policy(&clm, Some(org_a), rules(false, None)).await;
    let renewing = policy(
        &clm,
        Some(org_a),
        PolicyRules {
            auto_renewal: true,
            renewal_threshold_days: 30,
            ..rules(false, None)
        },
    )
    .await;
    let gated = policy(&clm, Some(org_a), rules(true, None)).await;
    let (_, owner) = user_in(&clm, Some(org_a), &[ROLE_OPERATOR]).await;
    let (approver, _) = user_in(&clm, Some(org_a), &[ROLE_APPROVER]).await;
    // Expiring within the renewal threshold: the lifecycle renews each once.
    const EXPIRING: usize = 3;
    let mut expiring = Vec::new();
    for n in 0..EXPIRING {
        let certificate = clm
            .issue_certificate(
                &owner,
                leaf(
                    &ca,
                    &renewing,
                    Some(org_a),
                    &format!("exp{n}.example.com"),
                    20,
                ),
            )
            .await
            .and_then(|outcome| outcome.into_certificate())
            .expect("issue an expiring certificate");
        expiring.push(certificate.id);
    }
    const WAITING: usize = 3;
    let mut waiting = Vec::new();
    for n in 0..WAITING {
        waiting.push(
            pending(
                &clm,
                &owner,
                leaf(
                    &ca,
                    &gated,
                    Some(org_a),
                    &format!("gate{n}.example.com"),
                    30,
                ),
            )
            .await,
        );
    }

    let work = tempfile::tempdir().expect("tempdir");
    let go = work.path().join("go-phase-two");
    let exe = std::env::current_exe().expect("the test binary");
    let mut children = Vec::new();
    let mut outs = Vec::new();
    for worker in 0..workers {
        let out = work.path().join(format!("worker-{worker}.out"));
        let assignment = work.path().join(format!("worker-{worker}.job"));
        Assignment {
            secure_url: db.secure_url(),
            core_url: db.core_url(),
            worker,
            iterations,
            issuer: ca.certificate.id,
            organization: org_a,
            policy: plain.id,
            approver,
            out: out.clone(),
            go_phase_two: go.clone(),
        }
        .write(&assignment);
        let child = Command::new(&exe)
            .args([
                "processes::worker",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(WORKER_VARIABLE, &assignment)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a worker");
        children.push(child);
        outs.push(out);
    }
    let read = |out: &PathBuf| std::fs::read_to_string(out).unwrap_or_default();
    let started = Instant::now();
    while !outs.iter().all(|out| read(out).contains("phase_one_done")) {
        // A worker that ended already failed: its output tells why (below).
        let ended = children
            .iter_mut()
            .any(|child| child.try_wait().is_ok_and(|status| status.is_some()));
        if ended {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            for child in &mut children {
                let _ = child.kill();
            }
            panic!("workers did not finish phase one");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Phase two: a rule every worker's cached policy does not have yet.
    clm.update_policy(
        &system,
        plain.id,
        PolicyUpdate {
            rules: Some(PolicyRules {
                allowed_domains: vec!["elsewhere.example.org".into()],
                ..rules(false, None)
            }),
            ..Default::default()
        },
    )
    .await
    .expect("change the policy");
    std::fs::write(&go, "go").expect("start phase two");
    for (worker, child) in children.into_iter().enumerate() {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .expect("join")
            .expect("worker output");
        assert!(
            output.status.success(),
            "worker {worker} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let mut issued = Vec::new();
    let mut crl_numbers = BTreeSet::new();
    let mut crls = 0;
    let mut approved = BTreeSet::new();
    let mut renewals = 0u64;
    let mut runs = (0, 0);
    for (worker, out) in outs.iter().enumerate() {
        let text = read(out);
        assert!(
            text.ends_with("end\n"),
            "worker {worker} ended early:\n{text}"
        );
        let mut last_crl = 0;
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["issued", id] => issued.push(CertificateId(uuid::Uuid::from_str(id).expect("id"))),
                ["crl", number] => {
                    let number: i64 = number.parse().expect("number");
                    assert!(number > last_crl, "worker {worker}: CRL numbers go up");
                    last_crl = number;
                    crls += 1;
                    assert!(crl_numbers.insert(number), "CRL number {number} used twice");
                }
                ["approved", instance, status] => {
                    assert_eq!(*status, "Completed", "{line}");
                    assert!(
                        approved.insert(instance.to_string()),
                        "{instance} approved twice"
                    );
                }
                ["lifecycle", ran, renewed] => {
                    if *ran == "true" {
                        runs.0 += 1;
                    } else {
                        runs.1 += 1;
                    }
                    renewals += renewed.parse::<u64>().expect("count");
                }
                ["phase_two", outcome] => assert_eq!(
                    *outcome, "refused",
                    "worker {worker} still used its cached policy after cache_ttl"
                ),
                ["phase_two", ..] => panic!("worker {worker}: {line}"),
                _ => {}
            }
        }
    }
    assert_eq!(issued.len(), workers * iterations);
    assert_eq!(
        issued.iter().collect::<BTreeSet<_>>().len(),
        issued.len(),
        "no certificate returned to two callers"
    );
    assert_eq!(
        approved.len(),
        WAITING,
        "each waiting request approved once"
    );
    for request in &waiting {
        let instance = request.workflow_instance_id.expect("instance");
        let view = clm
            .get_workflow_instance(&system, instance)
            .await
            .expect("instance");
        assert_eq!(view.instance.status, WorkflowStatus::Completed);
        assert!(view.instance.certificate_id.is_some());
    }
    assert_eq!(
        renewals, EXPIRING as u64,
        "each expiring certificate renewed once"
    );
    clm.reconcile(&system).await.expect("reconcile");
    assert_issued_with_keys(&clm, &issued).await;
    let counts = assert_invariants(&clm, &crate::common::test_master_key()).await;
    eprintln!(
        "{workers} processes: {} certificates, {crls} CRLs (numbers {:?}..={:?}), {} approvals, \
         {renewals} renewals, lifecycle runs {} ran / {} found the lease taken; {counts:?}",
        issued.len(),
        crl_numbers.first(),
        crl_numbers.last(),
        approved.len(),
        runs.0,
        runs.1
    );
    clm.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_postgres() {
    run_processes(2, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_share_one_postgres() {
    run_processes(4, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "longer: run by hand (the soak script runs longer still)"]
async fn four_processes_longer() {
    run_processes(4, 40).await;
}
