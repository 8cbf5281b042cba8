//! clm under faults of its PostgreSQL and with company (issue 17), against
//! clusters the tests start themselves (`common::pg_cluster`):
//!
//! - `kill`: the server killed (`pg_ctl stop -m immediate`) in the middle of
//!   a 32-caller issuance run and of a data-key rotation, then restarted;
//! - `proxy`: a TCP proxy between clm and PostgreSQL that cuts every
//!   connection, mid-transaction, while callers issue;
//! - `replica`: a real streaming replica (`pg_basebackup -R`) behind
//!   `with_read_replicas`, stopped while clm runs;
//! - `disk_full`: the data directory on a small tmpfs, filled and freed;
//! - `processes`: two and four processes (this test binary run again as
//!   workers) sharing one PostgreSQL.
//!
//! Each ends with `reconcile` and the invariant check of
//! `common::invariants` (shared with tests/faults). Without PostgreSQL's server programs the
//! tests skip with the reason; with `CI` set they fail instead. Larger runs
//! are `#[ignore]`d here and live in `scripts/soak`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../wf_support/mod.rs"]
mod wf_support;

mod disk_full;
mod kill;
mod processes;
mod proxy;
mod replica;
mod soak;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use clm::ClmConfig;
use common::pg_cluster::{PgCluster, postgres_bin_dir, unavailable};

/// Trust on 127.0.0.1, replication included (for `pg_basebackup`).
pub const HBA: &str = "host all all 127.0.0.1/32 trust\n\
                       host replication all 127.0.0.1/32 trust\n";

/// A started cluster holding the empty databases `clm_secure` and
/// `clm_core`; None (after saying why) when there is none to start.
pub async fn primary(test: &str) -> Option<PgCluster> {
    let Some(bin) = postgres_bin_dir() else {
        unavailable(
            test,
            "initdb not found (set CLM_TEST_PG_BIN to PostgreSQL's bin directory)",
        );
        return None;
    };
    let cluster = match PgCluster::init(bin, "", HBA) {
        Ok(cluster) => cluster,
        Err(reason) => {
            unavailable(test, &reason);
            return None;
        }
    };
    if let Err(reason) = cluster.start() {
        unavailable(test, &reason);
        return None;
    }
    cluster
        .admin(
            "",
            &[
                "CREATE DATABASE clm_secure".into(),
                "CREATE DATABASE clm_core".into(),
            ],
        )
        .await;
    Some(cluster)
}

/// clm on `port` (the cluster's, or a proxy's in front of it), with the test
/// master key. A caller waits at most `acquire_timeout` for a connection, so
/// one whose server is gone gets an error instead of hanging.
pub fn config_at(port: u16, acquire_timeout: Duration) -> ClmConfig {
    let mut config = ClmConfig::postgres(
        format!("postgres://postgres@127.0.0.1:{port}/clm_secure"),
        format!("postgres://postgres@127.0.0.1:{port}/clm_core"),
    )
    .with_master_key(common::test_master_key())
    .with_security(wf_support::security())
    .with_max_connections(8);
    config.pool.acquire_timeout = acquire_timeout;
    config
}

/// Errors counted by code, for the reports and the "callers got errors"
/// assertions.
#[derive(Default)]
pub struct ErrorTally(Mutex<BTreeMap<String, u64>>);

impl ErrorTally {
    pub fn add(&self, err: &clm::Error) {
        let mut tally = self.0.lock().expect("tally");
        *tally.entry(format!("{:?}", err.code())).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.lock().expect("tally").values().sum()
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("tally").clone()
    }
}
