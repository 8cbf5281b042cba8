//! Attacks: rotation_race (see main.rs). Finding 15: a private key (or MFA
//! secret) sealed under the active data key just before a rotation, and
//! written after the rotation retired that key, could never be opened again.
//! Finding 16: rotation and lifecycle shared an advisory lock key, and the
//! group-commit writer ran inside whichever caller's future took its lock, so
//! a cancelled caller failed everybody else's writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clm::crypto::{DistinguishedName, KeyAlgorithm, SecretBytes, SecretString, totp};
use clm::model::{
    CertificateId, CertificateKind, KeyStatus, PolicyId, PolicyRules, RotationStatus,
    SubjectAlternativeName, UserId,
};
use clm::service::authorities::NewCertificateAuthority;
use clm::service::identity::NewUser;
use clm::service::issuance::{IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::service::rotation::RotationOptions;
use clm::{Clm, ClmConfig, SecuritySettings};

use crate::common::{master_key, on_both_configs, unique};

/// Concurrent issuers while rotations run (the reviewer used 8).
const ISSUERS: usize = 32;
/// Data-key rotations per run.
const ROUNDS: usize = 4;
/// Small batches: many transactions, so the walk interleaves with issuance.
const BATCH: u32 = 50;
/// Users enrolling in MFA (their secrets are sealed by the same ring).
const MFA_USERS: usize = 12;
/// The MFA users' password (enrolment re-authenticates).
const RACE_PASSWORD: &str = "Race-condition-passphrase-7";

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

async fn open(config: &ClmConfig, master: u8) -> Clm {
    Clm::open(
        config
            .clone()
            .with_master_key(master_key(master))
            .with_security(security()),
    )
    .await
    .expect("open")
}

struct Pki {
    issuer: CertificateId,
    policy: PolicyId,
}

async fn pki(clm: &Clm) -> Pki {
    let system = clm.system_actor();
    let root = clm
        .create_root_ca(
            &system,
            NewCertificateAuthority {
                subject: DistinguishedName::common_name("Rotation Race Root"),
                key_algorithm: KeyAlgorithm::EcdsaP256,
                validity_days: Some(3650),
                ..Default::default()
            },
        )
        .await
        .expect("root");
    let policy = clm
        .create_policy(
            &system,
            NewPolicy {
                policy_code: unique("RACE").to_uppercase(),
                name: "Rotation race".into(),
                rules: PolicyRules {
                    max_validity_days: 90,
                    allowed_domains: vec!["example.com".into()],
                    allow_subdomains: true,
                    ..PolicyRules::default()
                },
                ..NewPolicy::default()
            },
        )
        .await
        .expect("policy");
    Pki {
        issuer: root.certificate.id,
        policy: policy.id,
    }
}

fn request(pki: &Pki, name: String) -> IssueRequest {
    IssueRequest {
        issuer_id: pki.issuer,
        policy_id: Some(pki.policy),
        subject: DistinguishedName::common_name(name.clone()),
        sans: vec![SubjectAlternativeName::Dns(name)],
        kind: CertificateKind::TlsServer,
        validity_days: 30,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: None,
    }
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

/// What the concurrent run left behind.
struct Outcome {
    issued: Vec<CertificateId>,
    enrolled: Vec<(UserId, SecretBytes)>,
    issuance_errors: Vec<String>,
    rotation_errors: Vec<String>,
    last_master: u8,
}

/// `ISSUERS` tasks issue (and `MFA_USERS` users enroll in MFA), spread over
/// `handles` (each like another process on the same databases), while
/// `ROUNDS` data-key rotations run back to back on the first handle, each
/// followed by a master-key rotation when `with_master` is set.
async fn race(handles: &[Clm], pki: Arc<Pki>, with_master: bool) -> Outcome {
    let clm = &handles[0];
    let stop = Arc::new(AtomicBool::new(false));
    let mut issuers = Vec::new();
    for task in 0..ISSUERS {
        let clm = handles[task % handles.len()].clone();
        let (pki, stop) = (pki.clone(), stop.clone());
        issuers.push(tokio::spawn(async move {
            let system = clm.system_actor();
            let (mut issued, mut errors) = (Vec::new(), Vec::new());
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let name = format!("h{task}-{n}.race.example.com");
                match clm.issue_certificate(&system, request(&pki, name)).await {
                    Ok(outcome) => match outcome.certificate() {
                        Some(certificate) => issued.push(certificate.id),
                        None => errors.push("issuance left a pending request".to_string()),
                    },
                    Err(err) => errors.push(err.to_string()),
                }
            }
            (issued, errors)
        }));
    }
    let enrolling = {
        let handles = handles.to_vec();
        tokio::spawn(async move {
            let mut enrolled = Vec::new();
            for n in 0..MFA_USERS {
                let clm = &handles[n % handles.len()];
                let system = clm.system_actor();
                let name = unique("race");
                let user = clm
                    .create_user(
                        &system,
                        NewUser {
                            username: name.clone(),
                            email: format!("{name}@example.com"),
                            password: Some(SecretString::new(RACE_PASSWORD.into())),
                            ..Default::default()
                        },
                    )
                    .await
                    .expect("create user");
                let actor = clm.actor_for_user(user.id).await.expect("actor");
                let enrollment = clm
                    .begin_mfa_enrollment(&actor, SecretString::new(RACE_PASSWORD.into()))
                    .await
                    .expect("enroll");
                let secret =
                    SecretBytes::from_slice(&base32_decode(enrollment.secret_base32.expose()));
                enrolled.push((user.id, secret));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            enrolled
        })
    };

    let system = clm.system_actor();
    let mut rotation_errors = Vec::new();
    let mut last_master = 0x42;
    // Let the issuers get going before the first rotation.
    tokio::time::sleep(Duration::from_millis(150)).await;
    for round in 0..ROUNDS {
        let options = RotationOptions {
            batch_size: BATCH,
            ..RotationOptions::default()
        };
        match clm.rotate_data_key(&system, options).await {
            Ok(report) if report.status == RotationStatus::Completed => {}
            Ok(report) => rotation_errors.push(format!("round {round}: {:?}", report.status)),
            Err(err) => rotation_errors.push(format!("round {round}: {err}")),
        }
        if with_master {
            let next = 0x50 + round as u8;
            match clm.rotate_master_key(&system, master_key(next)).await {
                Ok(_) => last_master = next,
                Err(err) => rotation_errors.push(format!("master key, round {round}: {err}")),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (mut issued, mut issuance_errors) = (Vec::new(), Vec::new());
    for task in issuers {
        let (ids, errors) = task.await.expect("issuer task");
        issued.extend(ids);
        issuance_errors.extend(errors);
    }
    let enrolled = enrolling.await.expect("enrolling task");
    Outcome {
        issued,
        enrolled,
        issuance_errors,
        rotation_errors,
        last_master,
    }
}

/// Every private key exports, every MFA secret opens (enrollment confirms),
/// and no retired data key holds anything.
async fn assert_nothing_lost(clm: &Clm, outcome: &Outcome) {
    let system = clm.system_actor();
    let statuses = clm.key_status(&system).await.expect("key status");
    let stranded: Vec<String> = statuses
        .iter()
        .filter(|s| s.key.key_status == KeyStatus::Retired)
        .filter(|s| s.private_keys > 0 || s.mfa_secrets > 0)
        .map(|s| {
            format!(
                "{} holds {} private keys and {} MFA secrets",
                s.key.key_id, s.private_keys, s.mfa_secrets
            )
        })
        .collect();

    // Exports run concurrently: thousands of audited exports one by one
    // would make this test slow, not stricter.
    let ids = Arc::new(outcome.issued.clone());
    let mut exporters = Vec::new();
    for part in 0..8 {
        let (clm, ids) = (clm.clone(), ids.clone());
        exporters.push(tokio::spawn(async move {
            let system = clm.system_actor();
            let mut failed = Vec::new();
            for id in ids.iter().skip(part).step_by(8) {
                if let Err(err) = clm.export_private_key(&system, *id).await {
                    failed.push(format!("{id}: {err}"));
                }
            }
            failed
        }));
    }
    let mut unexportable = Vec::new();
    for task in exporters {
        unexportable.extend(task.await.expect("export task"));
    }

    let mut mfa_unusable = Vec::new();
    for (user, secret) in &outcome.enrolled {
        let actor = clm.actor_for_user(*user).await.expect("actor");
        let code = totp::code_for_step(secret, totp::step_at(chrono::Utc::now().timestamp()))
            .expect("code");
        if let Err(err) = clm.confirm_mfa_enrollment(&actor, &code).await {
            mfa_unusable.push(format!("{user}: {err}"));
        }
    }

    eprintln!(
        "issued {}, issuance errors {}, rotation errors {}, unexportable {}, MFA unusable {}, stranded keys {}",
        outcome.issued.len(),
        outcome.issuance_errors.len(),
        outcome.rotation_errors.len(),
        unexportable.len(),
        mfa_unusable.len(),
        stranded.len()
    );
    assert!(
        outcome.issued.len() > 50,
        "too few issuances to race: {}",
        outcome.issued.len()
    );
    assert!(
        unexportable.is_empty(),
        "{} of {} private keys no longer export, e.g. {:?}",
        unexportable.len(),
        outcome.issued.len(),
        &unexportable[..unexportable.len().min(3)]
    );
    assert!(
        mfa_unusable.is_empty(),
        "MFA secrets no longer open: {mfa_unusable:?}"
    );
    assert!(
        stranded.is_empty(),
        "retired data keys still hold rows: {stranded:?}"
    );
    assert!(
        outcome.issuance_errors.is_empty(),
        "issuance failed during rotation: {:?}",
        &outcome.issuance_errors[..outcome.issuance_errors.len().min(3)]
    );
    assert!(
        outcome.rotation_errors.is_empty(),
        "rotations failed: {:?}",
        outcome.rotation_errors
    );
}

/// Two handles on the same databases (two processes): the one that does not
/// rotate keeps the ring it loaded at open, so everything it seals after the
/// rotation started is under the old key, and its writes keep arriving after
/// the other handle retired that key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_race_keys_sealed_during_data_key_rotation_stay_usable() {
    on_both_configs(|config| async move {
        let clm = open(&config, 0x42).await;
        let other = open(&config, 0x42).await;
        let pki = Arc::new(pki(&clm).await);
        let outcome = race(&[clm.clone(), other.clone()], pki, false).await;
        assert_nothing_lost(&clm, &outcome).await;
        other.close().await;
        clm.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_race_keys_survive_data_and_master_key_rotations_and_reopen() {
    on_both_configs(|config| async move {
        let clm = open(&config, 0x42).await;
        let pki = Arc::new(pki(&clm).await);
        let outcome = race(std::slice::from_ref(&clm), pki, true).await;
        clm.close().await;
        // As the reviewer did: reopen with the newest master key.
        let clm = open(&config, outcome.last_master).await;
        assert_nothing_lost(&clm, &outcome).await;
        clm.close().await;
    })
    .await;
}

/// Key of the lifecycle lease (`service/lifecycle.rs`): a session-level
/// PostgreSQL advisory lock, held for a whole lifecycle run.
const LIFECYCLE_LEASE_KEY: i64 = 0x636c_6d10;

async fn session_lock(pooled: &mut clm::db::PooledConn, lock: bool) {
    let conn: &mut clm::db::Conn<'_> = &mut pooled.conn();
    // PostgreSQL only (the lease is a file lock on SQLite).
    let sql = if lock {
        "SELECT 1 FROM (SELECT pg_advisory_lock($1)) AS l"
    } else {
        "SELECT 1 FROM (SELECT pg_advisory_unlock($1)) AS l"
    };
    clm::on_conn!(conn, |c| sqlx::query_scalar::<_, i32>(sql)
        .bind(LIFECYCLE_LEASE_KEY)
        .fetch_one(&mut *c)
        .await)
    .expect("advisory lock");
}

/// A lifecycle run (here: its lease, held as another process's run would
/// hold it, in each database) must not stall a rotation, and a rotation must
/// not make a lifecycle run report that another run holds the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_race_lifecycle_and_rotation_do_not_block_each_other() {
    on_both_configs(|config| async move {
        let clm = open(&config, 0x42).await;
        let system = clm.system_actor();
        let pki = pki(&clm).await;
        for n in 0..10 {
            clm.issue_certificate(&system, request(&pki, format!("l{n}.race.example.com")))
                .await
                .expect("issue");
        }
        let postgres = !format!("{:?}", config.database).starts_with("Sqlite");
        if postgres {
            let mut secure = clm.databases().secure.acquire().await.expect("conn");
            let mut core = clm.databases().core.acquire().await.expect("conn");
            session_lock(&mut secure, true).await;
            session_lock(&mut core, true).await;
            let rotated = tokio::time::timeout(
                Duration::from_secs(20),
                clm.rotate_data_key(&system, RotationOptions::default()),
            )
            .await;
            session_lock(&mut secure, false).await;
            session_lock(&mut core, false).await;
            let report = rotated
                .expect("rotation waited for the lifecycle lease")
                .expect("rotate");
            assert_eq!(report.status, RotationStatus::Completed);
        }
        for round in 0..5 {
            let options = RotationOptions {
                batch_size: 2,
                ..RotationOptions::default()
            };
            let (lifecycle, rotation) = tokio::join!(
                clm.run_lifecycle(&system, chrono::Utc::now()),
                clm.rotate_data_key(&system, options),
            );
            assert!(
                lifecycle.expect("lifecycle").ran,
                "round {round}: the lifecycle run was refused during a rotation"
            );
            assert_eq!(
                rotation.expect("rotation").status,
                RotationStatus::Completed
            );
        }
        clm.close().await;
    })
    .await;
}

/// Issuances whose callers give up (their futures dropped mid-write) must
/// not fail anybody else's issuance, and every certificate written keeps
/// its private key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_race_cancelled_issuer_fails_no_other_issuer() {
    on_both_configs(|config| async move {
        let clm = open(&config, 0x42).await;
        let pki = Arc::new(pki(&clm).await);
        let mut failures = Vec::new();
        let mut issued = Vec::new();
        for round in 0..12u64 {
            let mut tasks = Vec::new();
            for caller in 0..16u64 {
                let (clm, pki) = (clm.clone(), pki.clone());
                tasks.push(tokio::spawn(async move {
                    let system = clm.system_actor();
                    let name = format!("c{round}-{caller}.race.example.com");
                    let issue = clm.issue_certificate(&system, request(&pki, name));
                    if caller % 2 == 0 {
                        // Given up on at spread-out moments, many of them
                        // while a batch is being written.
                        let patience = Duration::from_micros((caller * 997 + round * 331) % 12_000);
                        let _ = tokio::time::timeout(patience, issue).await;
                        return None;
                    }
                    Some(issue.await.map_err(|err| err.to_string()))
                }));
            }
            for task in tasks {
                match task.await.expect("caller task") {
                    Some(Ok(outcome)) => issued.extend(outcome.certificate().map(|c| c.id)),
                    Some(Err(err)) => failures.push(err),
                    None => {}
                }
            }
        }
        let system = clm.system_actor();
        let keyless = {
            let mut pooled = clm.databases().secure.acquire().await.expect("conn");
            let conn: &mut clm::db::Conn<'_> = &mut pooled.conn();
            clm::on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM certificates c WHERE NOT EXISTS
                     (SELECT 1 FROM private_keys k WHERE k.certificate_id = c.id)"
            )
            .fetch_one(&mut *c)
            .await)
            .expect("count")
        };
        for id in &issued {
            clm.export_private_key(&system, *id).await.expect("export");
        }
        eprintln!(
            "issued {}, failed {}, certificates without a key {keyless}",
            issued.len(),
            failures.len()
        );
        assert!(
            failures.is_empty(),
            "{} callers failed because others gave up, e.g. {:?}",
            failures.len(),
            &failures[..failures.len().min(2)]
        );
        assert_eq!(keyless, 0, "certificates were written without their key");
        clm.close().await;
    })
    .await;
}
