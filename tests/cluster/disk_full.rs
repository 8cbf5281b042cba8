//! PostgreSQL on a full disk: the data directory of a cluster the test
//! starts sits on a small tmpfs (the WAL elsewhere: a full WAL stops the
//! server, which the kill tests cover). Filled, writes fail with
//! `STORAGE_FULL` (or, when the second database's half failed, an error
//! saying to run reconcile), reads go on, nothing is corrupt; once space
//! returns, writes resume and the invariants hold after reconcile.

use std::time::Duration;

use clm::Clm;
use clm::ErrorCode;
use clm::service::identity::NewUser;

use crate::common::invariants::assert_invariants;
use crate::common::pg_cluster::{PgCluster, postgres_bin_dir, unavailable};
use crate::common::small_disk::{SmallDisk, fill};
use crate::common::unique;
use crate::wf_support::{leaf, policy, root_ca, rules};
use crate::{ErrorTally, HBA, config_at};

const TEST: &str = "disk_full: PostgreSQL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_on_a_full_disk_refuses_writes_and_recovers() {
    let Some(disk) = SmallDisk::mount(128, TEST) else {
        return;
    };
    let Some(bin) = postgres_bin_dir() else {
        unavailable(TEST, "initdb not found (set CLM_TEST_PG_BIN)");
        return;
    };
    let cluster = match PgCluster::init_with_data_in(bin, disk.path(), "", HBA) {
        Ok(cluster) => cluster,
        Err(reason) => {
            unavailable(TEST, &reason);
            return;
        }
    };
    cluster.start().expect("start the cluster");
    cluster
        .admin(
            "",
            &[
                "CREATE DATABASE clm_secure".into(),
                "CREATE DATABASE clm_core".into(),
            ],
        )
        .await;
    let clm = Clm::open(config_at(cluster.port(), Duration::from_secs(10)))
        .await
        .expect("open");
    let system = clm.system_actor();
    let ca = root_ca(&clm, None).await;
    let policy = policy(&clm, None, rules(false, None)).await;
    let issued = clm
        .issue_certificate(
            &system,
            leaf(
                &ca,
                &policy,
                None,
                &format!("{}.example.com", unique("before")),
                30,
            ),
        )
        .await
        .expect("issue")
        .into_certificate()
        .expect("issued");
    let filler = fill(disk.path());

    // Writes fail with a clear error.
    let errors = ErrorTally::default();
    let mut refusals = 0;
    for attempt in 0..20 {
        let Err(err) = clm
            .issue_certificate(
                &system,
                leaf(
                    &ca,
                    &policy,
                    None,
                    &format!("{}.example.com", unique("full")),
                    30,
                ),
            )
            .await
        else {
            continue;
        };
        errors.add(&err);
        refusals += 1;
        let message = err.to_string();
        match err.code() {
            ErrorCode::StorageFull => assert!(message.contains("full"), "{message}"),
            // One database's half failed after the other committed: said so.
            ErrorCode::Database => assert!(
                message.contains("run reconcile"),
                "attempt {attempt}: {message}"
            ),
            other => panic!("attempt {attempt}: {other:?}: {message}"),
        }
    }
    let users = 10;
    let mut user_refusals = 0;
    for _ in 0..users {
        match clm
            .create_user(
                &system,
                NewUser {
                    username: unique("full"),
                    email: "full@example.com".into(),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(_) => {}
            Err(err) => {
                assert_eq!(err.code(), ErrorCode::StorageFull, "{err}");
                user_refusals += 1;
            }
        }
    }
    eprintln!(
        "disk full: {refusals} of 20 issuances and {user_refusals} of {users} user creations refused; errors {:?}",
        errors.snapshot()
    );
    assert!(
        refusals >= 10,
        "a full disk refused only {refusals} of 20 issuances"
    );

    // Reads go on.
    clm.get_certificate(&system, issued.id)
        .await
        .expect("read on a full disk");
    clm.list_audit_events(
        &system,
        clm::query::AuditLogKind::Core,
        &Default::default(),
        &Default::default(),
    )
    .await
    .expect("audit read on a full disk");

    // Space returns: writes resume, reconcile repairs any half write, and
    // nothing is corrupt (every key opens, every chain verifies).
    std::fs::remove_file(filler).expect("free the disk");
    clm.issue_certificate(
        &system,
        leaf(
            &ca,
            &policy,
            None,
            &format!("{}.example.com", unique("after")),
            30,
        ),
    )
    .await
    .expect("a write once space returns");
    clm.reconcile(&system).await.expect("reconcile");
    let counts = assert_invariants(&clm, &crate::common::test_master_key()).await;
    eprintln!("disk full: after recovery {counts:?}");
    clm.close().await;
    drop(cluster);
    drop(disk);
}
