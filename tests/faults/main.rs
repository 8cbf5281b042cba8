//! Fault injection at clm's failpoints (clm-core feature `failpoints`), on
//! SQLite and PostgreSQL. Each failpoint is hit twice: once made to fail
//! (the operation gets an error), once with the process aborting there (a
//! child process: this test binary run again on the same test, told by
//! `CLM_FAULT_POINT` where to abort). Then the databases are reopened, the
//! repair runs (`reconcile`, the interrupted rotation resumed, the CRL or
//! archive run again) and [`common::invariants::assert_invariants`] must hold.

#[path = "../common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use clm::crypto::{DistinguishedName, KeyAlgorithm, SecretString};
use clm::db::DatabaseConfig;
use clm::model::{
    CertificateId, CertificateKind, CertificateRequestId, KeyStatus, RequestStatus,
    RevocationReason, RotationStatus, SubjectAlternativeName, WorkflowInstanceId, WorkflowStatus,
};
use clm::query::AuditLogKind;
use clm::service::access::ROLE_APPROVER;
use clm::service::authorities::NewCertificateAuthority;
use clm::service::identity::NewUser;
use clm::service::inventory::ImportRequest;
use clm::service::issuance::{IssuanceOutcome, IssueRequest, KeySource};
use clm::service::maintenance::MaintainOptions;
use clm::service::policies::NewPolicy;
use clm::service::rotation::RotationOptions;
use clm::store::certificate_requests::CertificateRequests;
use clm::store::certificates::Certificates;
use clm::store::{Filter, count};
use clm::{Actor, Clm, ClmConfig, MasterKeySource, SecuritySettings};
use common::invariants::assert_invariants;
use common::small_disk::{SmallDisk, fill};
use common::{master_key, on_both_configs, unique};

/// Set in a child process: the failpoint to abort at.
const POINT_ENV: &str = "CLM_FAULT_POINT";
/// The child's databases (see [`describe_databases`]).
const DATABASES_ENV: &str = "CLM_FAULT_DATABASES";
/// What the child's operation works on (ids, a path), as the test wrote it.
const ARGUMENT_ENV: &str = "CLM_FAULT_ARGUMENT";
/// A child that returns from its operation (the failpoint was not reached).
const NOT_REACHED: i32 = 3;

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 2,
        ..SecuritySettings::default()
    }
}

fn old_master() -> MasterKeySource {
    master_key(0x42)
}

fn new_master() -> MasterKeySource {
    master_key(0x43)
}

async fn open(config: &ClmConfig, master: MasterKeySource) -> clm::Result<Clm> {
    Clm::open(
        config
            .clone()
            .with_master_key(master)
            .with_security(security()),
    )
    .await
}

// ------------------------------------------------------------ operations

/// What a test interrupts. The same code runs in the test (failpoint set to
/// fail) and in the child process (failpoint set to abort).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// Issue one certificate with a key clm generates (argument: CA id).
    Issue,
    /// Import one certificate with its private key (argument: a directory).
    Import,
    /// `reconcile`.
    Reconcile,
    /// Rotate the data key, two private keys a batch.
    RotateDataKey,
    /// Rotate the master key from 0x42.. to 0x43...
    RotateMasterKey,
    /// Generate the CA's next CRL (argument: CA id).
    GenerateCrl,
    /// Approve a waiting workflow instance (argument: instance id, approver id).
    Approve,
    /// Reject a waiting workflow instance (argument: instance id, approver id).
    Reject,
    /// Archive the whole secure audit chain (argument: the archive file).
    ArchiveAudit,
    /// `maintain` (ANALYZE only).
    Maintain,
    /// Create the master key file (argument: its path).
    CreateMasterKeyFile,
}

impl Operation {
    async fn run(self, clm: &Clm, argument: &str) -> clm::Result<()> {
        let system = clm.system_actor();
        match self {
            Operation::Issue => {
                let ca = CertificateId(argument.parse().expect("CA id"));
                clm.issue_certificate(&system, leaf(ca, &unique("leaf")))
                    .await
                    .map(|_| ())
            }
            Operation::Import => {
                let (certificate, key) = openssl_certificate(Path::new(argument));
                clm.import_certificates(
                    &system,
                    ImportRequest {
                        data: certificate,
                        private_key_pem: Some(SecretString::new(key)),
                        ..Default::default()
                    },
                )
                .await
                .map(|_| ())
            }
            Operation::Reconcile => clm.reconcile(&system).await.map(|_| ()),
            Operation::RotateDataKey => clm
                .rotate_data_key(
                    &system,
                    RotationOptions {
                        batch_size: 2,
                        ..Default::default()
                    },
                )
                .await
                .map(|_| ()),
            Operation::RotateMasterKey => clm
                .rotate_master_key(&system, new_master())
                .await
                .map(|_| ()),
            Operation::GenerateCrl => {
                let ca = CertificateId(argument.parse().expect("CA id"));
                clm.generate_crl(&system, ca, None).await.map(|_| ())
            }
            Operation::Approve | Operation::Reject => {
                let (instance, approver) = argument.split_once(' ').expect("two ids");
                let instance = WorkflowInstanceId(instance.parse().expect("instance id"));
                let approver = clm
                    .actor_for_user(clm::model::UserId(approver.parse().expect("user id")))
                    .await?;
                clm.decide_approval(&approver, instance, self == Operation::Approve, None)
                    .await
                    .map(|_| ())
            }
            Operation::ArchiveAudit => clm
                .archive_audit_events(&system, AuditLogKind::Secure, 0, Path::new(argument))
                .await
                .map(|_| ()),
            Operation::Maintain => clm
                .maintain(
                    &system,
                    MaintainOptions {
                        vacuum: false,
                        analyze: true,
                    },
                )
                .await
                .map(|_| ()),
            Operation::CreateMasterKeyFile => self.run_without_databases(argument),
        }
    }
}

fn leaf(ca: CertificateId, name: &str) -> IssueRequest {
    let host = format!("{name}.example.com");
    IssueRequest {
        issuer_id: ca,
        policy_id: None,
        subject: DistinguishedName::common_name(&host),
        sans: vec![SubjectAlternativeName::Dns(host.clone())],
        kind: CertificateKind::TlsServer,
        validity_days: 30,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: None,
    }
}

/// A fresh self-signed certificate and its key (PEM), made by openssl in `dir`.
fn openssl_certificate(dir: &Path) -> (Vec<u8>, String) {
    let name = unique("imported");
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let output = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}.example.com"),
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl");
    assert!(output.status.success(), "openssl: {output:?}");
    (
        std::fs::read(cert).expect("certificate"),
        std::fs::read_to_string(key).expect("key"),
    )
}

async fn root_ca(clm: &Clm) -> CertificateId {
    clm.create_root_ca(
        &clm.system_actor(),
        NewCertificateAuthority {
            subject: DistinguishedName::common_name(unique("Faults Root CA")),
            key_algorithm: KeyAlgorithm::EcdsaP256,
            validity_days: Some(3650),
            ..Default::default()
        },
    )
    .await
    .expect("create root CA")
    .certificate
    .id
}

async fn certificate_count(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    count::<Certificates>(&mut conn.conn(), &Filter::new())
        .await
        .expect("count")
}

// ------------------------------------------------------- the two faults

/// How a test's failpoint is hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The failpoint returns an error to the operation.
    Error,
    /// The process aborts there (a child process).
    Abort,
}

/// Every failpoint is hit both ways. An error at a point after a commit
/// stands for a commit that reported an error after it took effect (the
/// connection lost before the answer): the caller must not be misled, and
/// the repair must not undo or repeat what was committed.
const BOTH: &[Fault] = &[Fault::Error, Fault::Abort];

/// In a child process (the test binary run again by [`abort_at`]): opens
/// the databases, arms the failpoint to abort and runs the operation; a
/// child that gets past it exits with [`NOT_REACHED`]. Returns false in the
/// test itself.
async fn child(operation: Operation) -> bool {
    let Ok(point) = std::env::var(POINT_ENV) else {
        return false;
    };
    let argument = std::env::var(ARGUMENT_ENV).unwrap_or_default();
    let _scenario = fail::FailScenario::setup();
    let clm = match operation {
        Operation::CreateMasterKeyFile => None,
        _ => {
            let config = config_from(&std::env::var(DATABASES_ENV).expect("databases"));
            Some(open(&config, old_master()).await.expect("child opens"))
        }
    };
    fail::cfg_callback(point.clone(), || std::process::abort()).expect("arm failpoint");
    let outcome = match &clm {
        Some(clm) => operation.run(clm, &argument).await,
        None => operation.run_without_databases(&argument),
    };
    eprintln!("child: {operation:?} got past failpoint {point}: {outcome:?}");
    std::process::exit(NOT_REACHED);
}

impl Operation {
    fn run_without_databases(self, argument: &str) -> clm::Result<()> {
        match self {
            Operation::CreateMasterKeyFile => {
                MasterKeySource::FileOrCreate(PathBuf::from(argument))
                    .resolve()
                    .map(|_| ())
            }
            other => panic!("{other:?} needs databases"),
        }
    }
}

/// The databases of `config` as one line for the child.
fn describe_databases(config: &ClmConfig) -> String {
    match &config.database {
        DatabaseConfig::Sqlite { data_dir } => format!("sqlite\t{}", data_dir.display()),
        DatabaseConfig::Postgres {
            secure_url,
            core_url,
            ..
        } => format!("postgres\t{secure_url}\t{core_url}"),
    }
}

fn config_from(line: &str) -> ClmConfig {
    let parts: Vec<&str> = line.split('\t').collect();
    match parts.as_slice() {
        ["sqlite", dir] => ClmConfig::sqlite(dir).with_max_connections(4),
        ["postgres", secure, core] => ClmConfig::postgres(*secure, *core).with_max_connections(4),
        other => panic!("bad {DATABASES_ENV}: {other:?}"),
    }
}

/// Runs `test` (this binary's test of that name) in a child process that
/// aborts at `point`, and checks that it did abort there.
fn abort_at(test: &str, point: &str, config: Option<&ClmConfig>, argument: &str) {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(POINT_ENV, point)
        .env(ARGUMENT_ENV, argument);
    if let Some(config) = config {
        command.env(DATABASES_ENV, describe_databases(config));
    }
    let output = command.output().expect("run the child");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(6),
        "the child should abort at {point} (SIGABRT); it ended {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// Hits `point` with `fault` while `operation` runs: in this process (its
/// outcome is returned) or in a child that aborts (None). The handle `clm`
/// is closed first for an abort, as a crashed process leaves it: the caller
/// reopens.
async fn inject(
    test: &str,
    fault: Fault,
    point: &str,
    operation: Operation,
    clm: &Clm,
    config: &ClmConfig,
    argument: &str,
) -> Option<clm::Result<()>> {
    match fault {
        Fault::Error => {
            fail::cfg(point, "return").expect("arm failpoint");
            let outcome = operation.run(clm, argument).await;
            fail::remove(point);
            Some(outcome)
        }
        Fault::Abort => {
            clm.close().await;
            abort_at(test, point, Some(config), argument);
            None
        }
    }
}

/// Reopens after `inject` (a fresh handle: caches and key ring reloaded).
async fn reopen(clm: Clm, config: &ClmConfig, master: MasterKeySource) -> Clm {
    clm.close().await;
    open(config, master).await.expect("reopen")
}

// -------------------------------------------------- cross-database writes

const CROSS_DB: &[&str] = &[
    "cross_db.secure_written",
    "cross_db.core_written",
    "cross_db.secure_committed",
];

/// Whether the secure half stands when a write stops at `point`: after
/// the secure commit, or at `core_written` on SQLite, where secure commits
/// before core begins (PostgreSQL writes core's rows first).
fn secure_stands(point: &str, config: &ClmConfig) -> bool {
    point == "cross_db.secure_committed"
        || (point == "cross_db.core_written"
            && matches!(config.database, DatabaseConfig::Sqlite { .. }))
}

async fn cross_database_write(test: &str, operation: Operation) {
    on_both_configs(|config| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut clm = open(&config, old_master()).await.expect("open");
        let argument = match operation {
            Operation::Issue => root_ca(&clm).await.to_string(),
            _ => dir.path().display().to_string(),
        };
        for point in CROSS_DB {
            for fault in BOTH {
                let before = certificate_count(&clm).await;
                let outcome =
                    inject(test, *fault, point, operation, &clm, &config, &argument).await;
                clm = reopen(clm, &config, old_master()).await;
                let stands = secure_stands(point, &config);
                if let Some(outcome) = outcome {
                    let error = outcome.expect_err(point);
                    // Never a false success, and the error says what stands.
                    assert_eq!(
                        error.to_string().contains("run reconcile"),
                        stands,
                        "{point}: {error}"
                    );
                }
                assert_eq!(
                    certificate_count(&clm).await,
                    before + i64::from(stands),
                    "{fault:?} at {point}"
                );
                let repaired = clm.reconcile(&clm.system_actor()).await.expect("reconcile");
                assert_eq!(repaired.metadata_created, u64::from(stands), "{point}");
                assert_invariants(&clm, &old_master()).await;
                // And the next write goes through.
                operation
                    .run(&clm, &argument)
                    .await
                    .expect("after the fault");
            }
        }
        let seen = assert_invariants(&clm, &old_master()).await;
        assert!(seen.private_keys >= 7, "{seen:?}");
        clm.close().await;
    })
    .await;
}

#[tokio::test]
async fn issuance_at_each_step_of_the_cross_database_write() {
    if child(Operation::Issue).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    cross_database_write(
        "issuance_at_each_step_of_the_cross_database_write",
        Operation::Issue,
    )
    .await;
}

#[tokio::test]
async fn import_at_each_step_of_the_cross_database_write() {
    if child(Operation::Import).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    cross_database_write(
        "import_at_each_step_of_the_cross_database_write",
        Operation::Import,
    )
    .await;
}

#[tokio::test]
async fn reconcile_interrupted_repairs_when_run_again() {
    const TEST: &str = "reconcile_interrupted_repairs_when_run_again";
    if child(Operation::Reconcile).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let mut clm = open(&config, old_master()).await.expect("open");
        let ca = root_ca(&clm).await.to_string();
        for fault in BOTH {
            // A certificate whose metadata is missing.
            fail::cfg("cross_db.secure_committed", "return").expect("arm");
            Operation::Issue
                .run(&clm, &ca)
                .await
                .expect_err("core half fails");
            fail::remove("cross_db.secure_committed");
            inject(
                TEST,
                *fault,
                "reconcile.metadata_batch",
                Operation::Reconcile,
                &clm,
                &config,
                "",
            )
            .await;
            clm = reopen(clm, &config, old_master()).await;
            let repaired = clm.reconcile(&clm.system_actor()).await.expect("reconcile");
            assert_eq!(repaired.metadata_created, 1, "{fault:?}");
            assert_invariants(&clm, &old_master()).await;
        }
        clm.close().await;
    })
    .await;
}

// --------------------------------------------------------------- rotation

/// A user with a password and confirmed MFA (a secret sealed in core).
async fn mfa_user(clm: &Clm) {
    let name = unique("mfa");
    let password = SecretString::new("Tr0ub4dor-battery-horse-staple".to_string());
    let user = clm
        .create_user(
            &clm.system_actor(),
            NewUser {
                username: name.clone(),
                email: format!("{name}@example.com"),
                password: Some(password.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("create user");
    let actor = clm.actor_for_user(user.id).await.expect("actor");
    let enrollment = clm
        .begin_mfa_enrollment(&actor, password)
        .await
        .expect("enroll");
    let secret = base32_decode(enrollment.secret_base32.expose());
    let step = clm::crypto::totp::step_at(chrono::Utc::now().timestamp());
    let code =
        clm::crypto::totp::code_for_step(&clm::crypto::SecretBytes::from_slice(&secret), step)
            .expect("code");
    clm.confirm_mfa_enrollment(&actor, &code)
        .await
        .expect("confirm");
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut count, mut out) = (0u64, 0, Vec::new());
    for ch in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|a| *a == ch).expect("base32") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

const DATA_KEY_ROTATION: &[(&str, &[Fault])] = &[
    ("rotation.data_key_started", BOTH),
    ("rotation.batch_written", BOTH),
    ("rotation.batch_committed", BOTH),
    ("rotation.mfa_batch_written", BOTH),
    ("rotation.finish_written", BOTH),
    ("rotation.finish_secure_committed", BOTH),
];

#[tokio::test]
async fn data_key_rotation_interrupted_resumes() {
    const TEST: &str = "data_key_rotation_interrupted_resumes";
    if child(Operation::RotateDataKey).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let mut clm = open(&config, old_master()).await.expect("open");
        let ca = root_ca(&clm).await.to_string();
        mfa_user(&clm).await;
        for (point, faults) in DATA_KEY_ROTATION {
            for fault in *faults {
                // Fresh keys under the active data key, so each rotation has batches.
                for _ in 0..4 {
                    Operation::Issue.run(&clm, &ca).await.expect("issue");
                }
                inject(
                    TEST,
                    *fault,
                    point,
                    Operation::RotateDataKey,
                    &clm,
                    &config,
                    "",
                )
                .await;
                clm = reopen(clm, &config, old_master()).await;
                let report = clm
                    .rotate_data_key(&clm.system_actor(), RotationOptions::default())
                    .await
                    .expect("resume");
                assert_eq!(
                    report.status,
                    RotationStatus::Completed,
                    "{fault:?} at {point}"
                );
                assert_eq!(
                    report.resumed,
                    *point != "rotation.finish_secure_committed",
                    "{fault:?} at {point}: {report:?}"
                );
                // The progress counts what was re-sealed, whatever stopped it.
                assert_eq!(
                    report.rotated_items, report.total_items,
                    "{fault:?} at {point}: {report:?}"
                );
                let statuses = clm.key_status(&clm.system_actor()).await.expect("status");
                for status in &statuses {
                    if status.key.key_status != KeyStatus::Active {
                        assert_eq!(
                            (
                                status.key.key_status,
                                status.private_keys,
                                status.mfa_secrets
                            ),
                            (KeyStatus::Retired, 0, 0),
                            "{fault:?} at {point}"
                        );
                    }
                }
                assert_invariants(&clm, &old_master()).await;
            }
        }
        clm.close().await;
    })
    .await;
}

#[tokio::test]
async fn master_key_rotation_interrupted_leaves_one_master_key() {
    const TEST: &str = "master_key_rotation_interrupted_leaves_one_master_key";
    if child(Operation::RotateMasterKey).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let mut clm = open(&config, old_master()).await.expect("open");
        let ca = root_ca(&clm).await.to_string();
        Operation::Issue.run(&clm, &ca).await.expect("issue");
        mfa_user(&clm).await;
        for (point, faults, rotated) in [
            ("rotation.master_key_written", BOTH, false),
            ("rotation.master_key_committed", BOTH, true),
        ] {
            for fault in faults {
                let outcome = inject(
                    TEST,
                    *fault,
                    point,
                    Operation::RotateMasterKey,
                    &clm,
                    &config,
                    "",
                )
                .await;
                if let Some(outcome) = outcome {
                    // Never a failure reported for a rotation that took effect:
                    // a host told so would keep the old key, and lose the data.
                    assert_eq!(outcome.is_ok(), rotated, "{point}: {outcome:?}");
                }
                clm.close().await;
                let (now, before) = if rotated {
                    (new_master(), old_master())
                } else {
                    (old_master(), new_master())
                };
                let refused = open(&config, before).await.expect_err("the other key");
                assert_eq!(refused.code(), clm::ErrorCode::Configuration, "{refused}");
                clm = open(&config, now.clone())
                    .await
                    .expect("the current key opens");
                assert_invariants(&clm, &now).await;
                if rotated {
                    // Back to the first key for the next fault.
                    clm.rotate_master_key(&clm.system_actor(), old_master())
                        .await
                        .expect("rotate back");
                    clm = reopen(clm, &config, old_master()).await;
                }
            }
        }
        clm.close().await;
    })
    .await;
}

// --------------------------------------------------------------------- CRLs

const CRL_NUMBERING: &[(&str, &[Fault])] = &[
    ("crl.number_taken", BOTH),
    ("crl.written", BOTH),
    ("crl.committed", BOTH),
];

#[tokio::test]
async fn crl_numbering_interrupted_never_reuses_a_number() {
    const TEST: &str = "crl_numbering_interrupted_never_reuses_a_number";
    if child(Operation::GenerateCrl).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let mut clm = open(&config, old_master()).await.expect("open");
        let system = clm.system_actor();
        let ca = root_ca(&clm).await;
        let argument = ca.to_string();
        let leaf = match clm
            .issue_certificate(&system, leaf(ca, &unique("revoked")))
            .await
            .expect("issue")
        {
            IssuanceOutcome::Issued { certificate } => certificate.id,
            other => panic!("{other:?}"),
        };
        clm.revoke_certificate(&system, leaf, RevocationReason::KeyCompromise, None)
            .await
            .expect("revoke");
        let mut last = clm
            .generate_crl(&system, ca, None)
            .await
            .expect("crl")
            .crl_number;
        for (point, faults) in CRL_NUMBERING {
            for fault in *faults {
                inject(
                    TEST,
                    *fault,
                    point,
                    Operation::GenerateCrl,
                    &clm,
                    &config,
                    &argument,
                )
                .await;
                clm = reopen(clm, &config, old_master()).await;
                let next = clm
                    .generate_crl(&clm.system_actor(), ca, None)
                    .await
                    .expect("the next CRL")
                    .crl_number;
                assert!(next > last, "{fault:?} at {point}: {next} after {last}");
                last = next;
                assert_invariants(&clm, &old_master()).await;
            }
        }
        clm.close().await;
    })
    .await;
}

// ---------------------------------------------------------------- workflows

/// The approval's own steps, and the certificate write in between. An
/// issuance that failed cleanly (nothing written) leaves the instance
/// `failed`, which `retry_workflow` takes up.
const WORKFLOW_COMPLETION: &[(&str, &[Fault])] = &[
    ("workflow.decided", BOTH),
    ("cross_db.secure_written", BOTH),
    ("cross_db.secure_committed", BOTH),
    ("workflow.issued", BOTH),
    ("workflow.outcome_written", BOTH),
];

/// A request waiting in the default approval workflow, and an approver.
async fn waiting_request(clm: &Clm, ca: CertificateId) -> (WorkflowInstanceId, Actor) {
    let system = clm.system_actor();
    let policy = clm
        .create_policy(
            &system,
            NewPolicy {
                policy_code: unique("pol"),
                name: "Approval".into(),
                rules: clm::model::PolicyRules {
                    max_validity_days: 365,
                    allowed_domains: vec!["example.com".into()],
                    allow_subdomains: true,
                    require_approval: true,
                    ..Default::default()
                },
                ..NewPolicy::default()
            },
        )
        .await
        .expect("policy");
    let mut request = leaf(ca, &unique("approved"));
    request.policy_id = Some(policy.id);
    let pending = match clm
        .issue_certificate(&system, request)
        .await
        .expect("request")
    {
        IssuanceOutcome::Pending { request } => request,
        other => panic!("{other:?}"),
    };
    let name = unique("approver");
    let approver = clm
        .create_user(
            &system,
            NewUser {
                username: name.clone(),
                email: format!("{name}@example.com"),
                ..Default::default()
            },
        )
        .await
        .expect("approver");
    let role = clm
        .get_role_by_code(&system, ROLE_APPROVER)
        .await
        .expect("role");
    clm.assign_role(&system, approver.id, role.id)
        .await
        .expect("assign");
    let actor = clm.actor_for_user(approver.id).await.expect("actor");
    (pending.workflow_instance_id.expect("instance"), actor)
}

#[tokio::test]
async fn approval_interrupted_ends_with_one_certificate() {
    const TEST: &str = "approval_interrupted_ends_with_one_certificate";
    if child(Operation::Approve).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let mut clm = open(&config, old_master()).await.expect("open");
        let ca = root_ca(&clm).await;
        for (point, faults) in WORKFLOW_COMPLETION {
            for fault in *faults {
                let (instance, approver) = waiting_request(&clm, ca).await;
                let argument = format!(
                    "{} {}",
                    instance.as_uuid(),
                    approver.user_id().expect("user").as_uuid()
                );
                inject(
                    TEST,
                    *fault,
                    point,
                    Operation::Approve,
                    &clm,
                    &config,
                    &argument,
                )
                .await;
                clm = reopen(clm, &config, old_master()).await;
                clm.reconcile(&clm.system_actor()).await.expect("reconcile");
                let mut view = clm
                    .get_workflow_instance(&clm.system_actor(), instance)
                    .await
                    .expect("instance");
                if view.instance.status == WorkflowStatus::Failed {
                    assert_eq!(*point, "cross_db.secure_written", "{fault:?}: {view:?}");
                    view = clm
                        .retry_workflow(&clm.system_actor(), instance)
                        .await
                        .expect("retry");
                }
                assert_eq!(
                    view.instance.status,
                    WorkflowStatus::Completed,
                    "{fault:?} at {point}: {:?}",
                    view.instance.error_message
                );
                assert!(
                    view.instance.certificate_id.is_some(),
                    "{fault:?} at {point}"
                );
                assert_invariants(&clm, &old_master()).await;
            }
        }
        clm.close().await;
    })
    .await;
}

/// The status of the request `instance` carries.
async fn request_status(clm: &Clm, instance: WorkflowInstanceId) -> RequestStatus {
    let view = clm
        .get_workflow_instance(&clm.system_actor(), instance)
        .await
        .expect("instance");
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    clm::store::get::<CertificateRequests>(
        &mut conn.conn(),
        CertificateRequestId(view.instance.subject_id.as_uuid()),
        false,
    )
    .await
    .expect("request")
    .status
}

/// A rejection commits the instance (core) before it settles the request
/// (secure): stopped in between, the request waits forever unless
/// reconcile finishes it.
#[tokio::test]
async fn rejection_interrupted_rejects_the_request_on_reconcile() {
    const TEST: &str = "rejection_interrupted_rejects_the_request_on_reconcile";
    if child(Operation::Reject).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let mut clm = open(&config, old_master()).await.expect("open");
        let ca = root_ca(&clm).await;
        for fault in BOTH {
            let (instance, approver) = waiting_request(&clm, ca).await;
            let argument = format!(
                "{} {}",
                instance.as_uuid(),
                approver.user_id().expect("user").as_uuid()
            );
            let outcome = inject(
                TEST,
                *fault,
                "workflow.decided",
                Operation::Reject,
                &clm,
                &config,
                &argument,
            )
            .await;
            if let Some(outcome) = outcome {
                outcome.expect_err("never a false success");
            }
            clm = reopen(clm, &config, old_master()).await;
            let view = clm
                .get_workflow_instance(&clm.system_actor(), instance)
                .await
                .expect("instance");
            assert_eq!(view.instance.status, WorkflowStatus::Rejected, "{fault:?}");
            assert_eq!(
                request_status(&clm, instance).await,
                RequestStatus::PendingApproval,
                "{fault:?}: the fault stops between the two writes"
            );
            let report = clm.reconcile(&clm.system_actor()).await.expect("reconcile");
            assert_eq!(report.requests_settled, 1, "{fault:?}");
            assert_eq!(
                request_status(&clm, instance).await,
                RequestStatus::Rejected,
                "{fault:?}"
            );
            let again = clm.reconcile(&clm.system_actor()).await.expect("again");
            assert_eq!(again.requests_settled, 0, "{fault:?}: settled once");
            assert_invariants(&clm, &old_master()).await;
        }
        clm.close().await;
    })
    .await;
}

// -------------------------------------------------------------------- audit

#[tokio::test]
async fn a_failed_audit_append_writes_nothing() {
    const TEST: &str = "a_failed_audit_append_writes_nothing";
    if child(Operation::Issue).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let mut clm = open(&config, old_master()).await.expect("open");
        let ca = root_ca(&clm).await.to_string();
        for fault in BOTH {
            let before = certificate_count(&clm).await;
            inject(
                TEST,
                *fault,
                "audit.append",
                Operation::Issue,
                &clm,
                &config,
                &ca,
            )
            .await;
            clm = reopen(clm, &config, old_master()).await;
            assert_eq!(certificate_count(&clm).await, before, "{fault:?}");
            assert_invariants(&clm, &old_master()).await;
        }
        clm.close().await;
    })
    .await;
}

const ARCHIVE: &[&str] = &["audit.archive_file_synced", "audit.archive_written"];

#[tokio::test]
async fn audit_archive_interrupted_keeps_the_chain() {
    const TEST: &str = "audit_archive_interrupted_keeps_the_chain";
    if child(Operation::ArchiveAudit).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut clm = open(&config, old_master()).await.expect("open");
        let ca = root_ca(&clm).await.to_string();
        for point in ARCHIVE {
            for fault in BOTH {
                let file = dir.path().join(unique("archive"));
                let argument = file.display().to_string();
                Operation::Issue.run(&clm, &ca).await.expect("issue");
                inject(
                    TEST,
                    *fault,
                    point,
                    Operation::ArchiveAudit,
                    &clm,
                    &config,
                    &argument,
                )
                .await;
                clm = reopen(clm, &config, old_master()).await;
                assert_invariants(&clm, &old_master()).await;
                if *point == "audit.archive_file_synced" {
                    // As a process stopped in the middle of a line leaves it.
                    use std::io::Write;
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(&file)
                        .and_then(|mut out| out.write_all(br#"{"id":"torn","sequence_n"#))
                        .expect("a torn last line");
                }
                let report = clm
                    .archive_audit_events(&clm.system_actor(), AuditLogKind::Secure, 0, &file)
                    .await
                    .expect("archive again");
                assert!(report.archived > 0, "{fault:?} at {point}");
                assert_invariants(&clm, &old_master()).await;
                // Every line whole (no torn write), no row twice, each line
                // linked to the one before and hashing to its row_hash, every
                // archived row in the file.
                let text = std::fs::read_to_string(&file).expect("archive file");
                let mut sequences = std::collections::BTreeSet::new();
                let mut previous: Option<String> = None;
                for line in text.lines() {
                    let event: clm::model::AuditEvent =
                        serde_json::from_str(line).expect("whole JSON lines");
                    assert!(
                        sequences.insert(event.sequence_number),
                        "{fault:?} at {point}: row {} archived twice",
                        event.sequence_number
                    );
                    assert_eq!(
                        clm::service::audit::row_hash(&event),
                        event.row_hash,
                        "{fault:?} at {point}"
                    );
                    if let Some(previous) = &previous {
                        assert_eq!(&event.previous_hash, previous, "{fault:?} at {point}");
                    }
                    previous = Some(event.row_hash);
                }
                let through = report.through_sequence.expect("through");
                assert!(
                    (1..=through).all(|s| sequences.contains(&s)) || sequences.contains(&through),
                    "{fault:?} at {point}: {sequences:?}"
                );
            }
        }
        clm.close().await;
    })
    .await;
}

#[tokio::test]
async fn maintenance_interrupted_keeps_the_chains() {
    const TEST: &str = "maintenance_interrupted_keeps_the_chains";
    if child(Operation::Maintain).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    on_both_configs(|config| async move {
        let mut clm = open(&config, old_master()).await.expect("open");
        for fault in BOTH {
            inject(
                TEST,
                *fault,
                "maintenance.ran",
                Operation::Maintain,
                &clm,
                &config,
                "",
            )
            .await;
            clm = reopen(clm, &config, old_master()).await;
            assert_invariants(&clm, &old_master()).await;
        }
        clm.close().await;
    })
    .await;
}

// ------------------------------------------------------------ the key file

#[tokio::test]
async fn master_key_file_is_created_whole_or_not_at_all() {
    const TEST: &str = "master_key_file_is_created_whole_or_not_at_all";
    if child(Operation::CreateMasterKeyFile).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().expect("tempdir");
    for fault in BOTH {
        let path = dir.path().join(unique("master")).join("master.key");
        let argument = path.display().to_string();
        match fault {
            Fault::Error => {
                fail::cfg("keyring.key_file_synced", "return").expect("arm");
                let err = Operation::CreateMasterKeyFile
                    .run_without_databases(&argument)
                    .expect_err("fails before publishing");
                fail::remove("keyring.key_file_synced");
                assert_eq!(err.code(), clm::ErrorCode::Configuration, "{err}");
                assert!(err.to_string().contains("master key file"), "{err}");
            }
            Fault::Abort => abort_at(TEST, "keyring.key_file_synced", None, &argument),
        }
        assert!(!path.exists(), "{fault:?}: no key file until it is whole");
        let (created, was_new) = clm::LocalMasterKey::from_file_or_create(&path).expect("create");
        assert!(was_new);
        let read = clm::LocalMasterKey::from_file(&path).expect("read back");
        use clm::KeyProvider;
        assert_eq!(created.master_key_id(), read.master_key_id());
    }
}

// ------------------------------------------------------- SQLite durability

#[tokio::test]
async fn sqlite_syncs_the_secure_database_fully() {
    if child(Operation::Maintain).await {
        return;
    }
    let _scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let clm = open(&ClmConfig::sqlite(dir.path()), old_master())
        .await
        .expect("open");
    // PRAGMA synchronous: 1 NORMAL, 2 FULL; asked of every pooled connection.
    for (pool, expected) in [(&clm.databases().secure, 2), (&clm.databases().core, 1)] {
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = pool.acquire().await.expect("conn");
            let level: i64 = clm::on_conn!(&mut conn.conn(), |c| sqlx::query_scalar(
                "PRAGMA synchronous"
            )
            .fetch_one(&mut *c)
            .await)
            .expect("pragma");
            assert_eq!(level, expected);
            held.push(conn);
        }
    }
    clm.close().await;
}

async fn integrity(clm: &Clm) {
    for pool in [&clm.databases().secure, &clm.databases().core] {
        let mut conn = pool.acquire().await.expect("conn");
        let verdict: String = clm::on_conn!(&mut conn.conn(), |c| sqlx::query_scalar(
            "PRAGMA integrity_check"
        )
        .fetch_one(&mut *c)
        .await)
        .expect("integrity_check");
        assert_eq!(verdict, "ok");
    }
}

#[tokio::test]
async fn sqlite_on_a_full_disk_refuses_writes_and_recovers() {
    if child(Operation::Maintain).await {
        return;
    }
    // Failpoints are global to the process: no other test's may fire here.
    let _scenario = fail::FailScenario::setup();
    let Some(disk) = SmallDisk::mount(16, "the SQLite disk-full test") else {
        return;
    };
    let config = ClmConfig::sqlite(disk.path().join("clm")).with_max_connections(4);
    let clm = open(&config, old_master()).await.expect("open");
    let system = clm.system_actor();
    let ca = root_ca(&clm).await;
    let issued = match clm
        .issue_certificate(&system, leaf(ca, &unique("before")))
        .await
        .expect("issue")
    {
        IssuanceOutcome::Issued { certificate } => certificate.id,
        other => panic!("{other:?}"),
    };
    let filler = fill(disk.path());

    // Writes fail with a clear error, whatever their size.
    let mut refusals = 0;
    for attempt in 0..20 {
        let Err(err) = clm
            .issue_certificate(&system, leaf(ca, &unique("full")))
            .await
        else {
            continue;
        };
        refusals += 1;
        let message = err.to_string();
        match err.code() {
            clm::ErrorCode::StorageFull => assert!(message.contains("full"), "{message}"),
            // The core half failed after secure committed: said so.
            clm::ErrorCode::Database => assert!(
                message.contains("run reconcile") && message.contains("full"),
                "attempt {attempt}: {message}"
            ),
            other => panic!("attempt {attempt}: {other:?}: {message}"),
        }
    }
    assert!(
        refusals >= 10,
        "a full disk refused only {refusals} of 20 writes"
    );
    let user = clm
        .create_user(
            &system,
            NewUser {
                username: unique("full"),
                email: "full@example.com".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("a core write on a full disk");
    assert_eq!(user.code(), clm::ErrorCode::StorageFull, "{user}");

    // Reads go on; nothing is corrupt.
    clm.get_certificate(&system, issued)
        .await
        .expect("read on a full disk");
    integrity(&clm).await;

    // Space returns: writes resume, and reconcile repairs any half write.
    std::fs::remove_file(filler).expect("free the disk");
    clm.issue_certificate(&system, leaf(ca, &unique("after")))
        .await
        .expect("a write once space returns");
    clm.reconcile(&system).await.expect("reconcile");
    integrity(&clm).await;
    assert_invariants(&clm, &old_master()).await;
    clm.close().await;
    drop(disk);
}

/// Between a master-key rotation's commit and the moment its handle
/// switches to the new key, the key rows already name the new key: a
/// data-key rotation and an issuance that reload the ring right then (the
/// race `tests/security/rotation_race.rs` hit on PostgreSQL) must open
/// them, and nothing may end up wrapped under the old key. Held there by a
/// callback at `rotation.master_key_committed`. SQLite only: the callback
/// holds a runtime worker, and on PostgreSQL the driver's work parked on
/// that worker stalls the other operations until the window has closed
/// (they then pass without testing it); the keyring code is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_in_the_moment_a_master_key_rotation_switches_uses_the_new_key() {
    let _scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = ClmConfig::sqlite(dir.path()).with_max_connections(4);
    {
        let clm = open(&config, old_master()).await.expect("open");
        let ca = root_ca(&clm).await.to_string();
        Operation::Issue.run(&clm, &ca).await.expect("issue");

        let (reached_tx, reached_rx) = std::sync::mpsc::channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let reached_tx = std::sync::Mutex::new(reached_tx);
        let go_rx = std::sync::Mutex::new(go_rx);
        fail::cfg_callback("rotation.master_key_committed", move || {
            let _ = reached_tx.lock().expect("sender").send(());
            let _ = go_rx
                .lock()
                .expect("receiver")
                .recv_timeout(std::time::Duration::from_secs(20));
        })
        .expect("arm");
        let rotating = {
            let clm = clm.clone();
            tokio::spawn(async move {
                clm.rotate_master_key(&clm.system_actor(), new_master())
                    .await
            })
        };
        tokio::task::spawn_blocking(move || {
            reached_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("the rotation reaches its commit")
        })
        .await
        .expect("wait");

        // The rows are under the new key; this handle has not switched yet.
        Operation::RotateDataKey
            .run(&clm, "")
            .await
            .expect("a data-key rotation in the moment of the switch");
        Operation::Issue
            .run(&clm, &ca)
            .await
            .expect("an issuance in the moment of the switch");
        go_tx.send(()).expect("release the rotation");
        rotating
            .await
            .expect("join")
            .expect("the master-key rotation");
        fail::remove("rotation.master_key_committed");

        Operation::Issue.run(&clm, &ca).await.expect("issue after");
        let clm = reopen(clm, &config, new_master()).await;
        assert_invariants(&clm, &new_master()).await;
        let refused = open(&config, old_master()).await.expect_err("the old key");
        assert_eq!(refused.code(), clm::ErrorCode::Configuration, "{refused}");
        clm.close().await;
    }
}
