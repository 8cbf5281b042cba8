//! A real streaming replica (`pg_basebackup -R`, its own port) behind
//! `with_read_replicas`: reports (searches, lists) read it, so they may lag
//! the primary by the replication delay (bounded staleness, documented in
//! docs/ARCHITECTURE.md), while reads by id and every write use the primary,
//! so the caller who just wrote reads it back by id at once. When the
//! replica stops, reports fall back to the primary and writes go on; when it
//! is back, reports return to it.

use std::time::{Duration, Instant};

use clm::model::CertificateId;
use clm::service::inventory::CertificateSearch;
use clm::store::PageRequest;
use clm::{Clm, ClmConfig};

use crate::common::invariants::assert_invariants;
use crate::common::pg_cluster::PgCluster;
use crate::wf_support::{leaf, org, policy, root_ca, rules};
use crate::{config_at, primary};

/// How long reports leave a failed replica alone (short for the test).
const RETRY_AFTER: Duration = Duration::from_millis(300);

/// Pauses the replica's replay and waits until it has taken effect.
async fn pause_replay(replica: &PgCluster) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&replica.url("postgres", "postgres"))
        .await
        .expect("connect to the replica");
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut conn)
        .await
        .expect("pause replay");
    let started = Instant::now();
    loop {
        let state: String = sqlx::query_scalar("SELECT pg_get_wal_replay_pause_state()")
            .fetch_one(&mut conn)
            .await
            .expect("replay pause state");
        if state == "paused" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replay never paused"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = conn.close().await;
}

fn with_replica(primary: &PgCluster, replica: &PgCluster) -> ClmConfig {
    let mut config = config_at(primary.port(), Duration::from_secs(5)).with_read_replicas(
        replica.url("postgres", "clm_secure"),
        replica.url("postgres", "clm_core"),
    );
    config.pool.replica_retry_after = RETRY_AFTER;
    config
}

/// The certificates named `name` a report (the replica's side) finds.
async fn reported(clm: &Clm, name: &str) -> Vec<CertificateId> {
    clm.search_certificates(
        &clm.system_actor(),
        &CertificateSearch {
            common_name: Some(name.to_string()),
            ..Default::default()
        },
        &PageRequest::first(10),
    )
    .await
    .unwrap_or_else(|err| panic!("search for {name}: {err}"))
    .items
    .into_iter()
    .map(|c| c.id)
    .collect()
}

async fn organizations(clm: &Clm) -> usize {
    clm.list_organizations(&clm.system_actor(), &PageRequest::first(100))
        .await
        .expect("list organizations")
        .items
        .len()
}

/// Polls until the replica has replayed up to now (the primary's write).
async fn until_reported(clm: &Clm, name: &str) -> Vec<CertificateId> {
    let started = Instant::now();
    loop {
        let found = reported(clm, name).await;
        if !found.is_empty() {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replica never showed {name}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_read_the_replica_and_fall_back_to_the_primary_when_it_stops() {
    let Some(main) = primary("replica").await else {
        return;
    };
    // Migrate on the primary first: the replica copies the schema.
    Clm::open(config_at(main.port(), Duration::from_secs(5)))
        .await
        .expect("migrate on the primary")
        .close()
        .await;
    let replica = main.start_replica().expect("start the replica");
    let clm = Clm::open(with_replica(&main, &replica))
        .await
        .expect("open with the replica");
    let system = clm.system_actor();
    let ca = root_ca(&clm, None).await;
    let pol = policy(&clm, None, rules(false, None)).await;
    let issue = |name: &'static str| {
        let (clm, ca, pol, system) = (clm.clone(), ca.clone(), pol.clone(), system.clone());
        async move {
            clm.issue_certificate(&system, leaf(&ca, &pol, None, name, 30))
                .await
                .and_then(|outcome| outcome.into_certificate())
                .unwrap_or_else(|err| panic!("issue {name}: {err}"))
        }
    };

    // Streaming: what the primary commits shows in reports soon after.
    let first = issue("streamed.example.com").await;
    assert_eq!(
        until_reported(&clm, "streamed.example.com").await,
        vec![first.id]
    );

    // Reports read the replica: with its replay paused they miss a new
    // write, which the writer still reads back by id (the primary).
    pause_replay(&replica).await;
    let orgs_before = organizations(&clm).await;
    let paused = issue("paused.example.com").await;
    org(&clm, "replica").await;
    assert_eq!(
        clm.get_certificate(&system, paused.id)
            .await
            .expect("read back by id")
            .id,
        paused.id
    );
    assert!(
        reported(&clm, "paused.example.com").await.is_empty(),
        "the search read the replica"
    );
    assert_eq!(
        organizations(&clm).await,
        orgs_before,
        "the list read the replica"
    );
    replica
        .admin("", &["SELECT pg_wal_replay_resume()".into()])
        .await;
    assert_eq!(
        until_reported(&clm, "paused.example.com").await,
        vec![paused.id]
    );
    assert_eq!(organizations(&clm).await, orgs_before + 1);

    // The replica stops: writes go on, reports come from the primary.
    replica.kill().expect("stop the replica");
    let alone = issue("alone.example.com").await;
    assert_eq!(reported(&clm, "alone.example.com").await, vec![alone.id]);
    org(&clm, "alone").await;
    assert_eq!(organizations(&clm).await, orgs_before + 2);
    // A process that opens while the replica is down opens all the same.
    let late = Clm::open(with_replica(&main, &replica))
        .await
        .expect("open while the replica is down");
    assert_eq!(reported(&late, "alone.example.com").await, vec![alone.id]);
    late.close().await;

    // Back again: it catches up and reports return to it once the pause
    // after its failure has passed.
    replica.start().expect("restart the replica");
    tokio::time::sleep(RETRY_AFTER).await;
    pause_replay(&replica).await;
    let back = issue("back.example.com").await;
    assert!(
        reported(&clm, "back.example.com").await.is_empty(),
        "reports read the replica again"
    );
    replica
        .admin("", &["SELECT pg_wal_replay_resume()".into()])
        .await;
    assert_eq!(
        until_reported(&clm, "back.example.com").await,
        vec![back.id]
    );

    assert_invariants(&clm, &crate::common::test_master_key()).await;
    clm.close().await;
    drop(replica);
}
