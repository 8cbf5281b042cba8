//! Operator upkeep of both databases: what they hold and how they are doing
//! (`database_stats`), and the statements that keep them fast and small
//! (`maintain`). System-level: both need `system:maintain` outside any
//! organization, which only a global administrator (or the host's system
//! actor) can hold.

use std::time::Instant;

use serde_json::json;

use crate::db::{DatabaseConfig, Dialect, Pool};
use crate::model::{AuditOutcome, Timestamp};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, commit_audited};
use crate::store::maintenance::{self as store, MaintenancePlan};
use crate::store::now;
use crate::{Clm, Result};

/// One table's size and upkeep. A value the backend cannot tell is None.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct TableStats {
    /// The table's name.
    pub name: String,
    /// The table's own pages (PostgreSQL: `pg_relation_size`; SQLite: its
    /// b-tree in `dbstat`).
    pub table_bytes: Option<i64>,
    /// All of its indexes (PostgreSQL: `pg_indexes_size`; SQLite: their
    /// b-trees in `dbstat`).
    pub index_bytes: Option<i64>,
    /// Table, indexes and (PostgreSQL) TOAST: `pg_total_relation_size`.
    pub total_bytes: Option<i64>,
    /// PostgreSQL's estimate of live rows (`n_live_tup`); None on SQLite.
    pub live_rows: Option<i64>,
    /// Dead row versions waiting for VACUUM (`n_dead_tup`); None on SQLite,
    /// which reports free pages for the whole database instead.
    pub dead_rows: Option<i64>,
    /// Latest manual or automatic VACUUM (PostgreSQL only).
    pub last_vacuum: Option<Timestamp>,
    /// Latest manual or automatic ANALYZE (PostgreSQL only).
    pub last_analyze: Option<Timestamp>,
}

/// One index's size and use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct IndexStats {
    /// The index's name.
    pub name: String,
    /// The table it indexes.
    pub table: String,
    /// Its size (SQLite: from `dbstat`, None without it).
    pub bytes: Option<i64>,
    /// Index scans since the statistics were last reset (`idx_scan`); None
    /// on SQLite, which does not count index use.
    pub scans: Option<i64>,
}

/// How full a pool is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct PoolStats {
    /// The pool's limit.
    pub max_connections: u32,
    /// Connections open now, idle or in use.
    pub open: u32,
    /// Open and waiting in the pool.
    pub idle: u32,
    /// Checked out by callers now.
    pub in_use: u32,
}

/// One maintenance statement as run: what, how long, and what it reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct MaintenanceStep {
    /// `secure` or `core`.
    pub database: String,
    /// The statement, e.g. `VACUUM (ANALYZE)` or `PRAGMA optimize`.
    pub statement: String,
    /// How long the statement took.
    pub duration_ms: u64,
    /// What the backend reported (tables skipped, a busy checkpoint).
    pub detail: Option<String>,
}

/// One database's size, indexes, dead space and pool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct DatabaseStats {
    /// `secure` or `core`.
    pub database: String,
    /// `postgres` or `sqlite`.
    pub backend: String,
    /// The whole database: PostgreSQL `pg_database_size`; SQLite page count
    /// times page size (the main file, not its WAL).
    pub total_bytes: i64,
    /// SQLite's page size; None on PostgreSQL.
    pub page_size: Option<i64>,
    /// SQLite pages free for reuse (`freelist_count`; VACUUM returns them to
    /// the file system); None on PostgreSQL, which reports dead rows per table.
    pub free_pages: Option<i64>,
    /// Every table, by name.
    pub tables: Vec<TableStats>,
    /// Every index, by table and name.
    pub indexes: Vec<IndexStats>,
    /// The primary pool of this database.
    pub pool: PoolStats,
    /// The read-replica pool, when one is configured.
    pub replica_pool: Option<PoolStats>,
    /// What this backend cannot report, said once.
    pub notes: Vec<String>,
}

/// [`Clm::database_stats`]: both databases, as of `taken_at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct DatabaseStatsReport {
    /// When the figures were read.
    pub taken_at: Timestamp,
    /// The secure database (certificates, keys, secure audit trail).
    pub secure: DatabaseStats,
    /// The core database (users, policies, workflows, audit trail).
    pub core: DatabaseStats,
}

/// What [`Clm::maintain`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintainOptions {
    /// PostgreSQL VACUUM, SQLite VACUUM (rewrites the file; slow on a large
    /// database and blocks its writers meanwhile). Default false.
    pub vacuum: bool,
    /// PostgreSQL ANALYZE, SQLite `PRAGMA optimize`. Default true.
    pub analyze: bool,
}

impl Default for MaintainOptions {
    fn default() -> Self {
        MaintainOptions {
            vacuum: false,
            analyze: true,
        }
    }
}

/// What one maintenance run did, step by step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct MaintenanceReport {
    /// Whether VACUUM was asked for.
    pub vacuum: bool,
    /// Whether ANALYZE (`PRAGMA optimize`) was asked for.
    pub analyze: bool,
    /// Every statement run, on `secure` then `core`, with its duration.
    pub steps: Vec<MaintenanceStep>,
    /// The whole run.
    pub duration_ms: u64,
}

const DATABASES: [&str; 2] = ["secure", "core"];

impl Clm {
    fn maintenance_pool(&self, database: &str) -> &Pool {
        match database {
            "secure" => &self.databases().secure,
            _ => &self.databases().core,
        }
    }

    fn has_replicas(&self) -> (bool, bool) {
        match &self.config().database {
            DatabaseConfig::Postgres {
                secure_replica_url,
                core_replica_url,
                ..
            } => (secure_replica_url.is_some(), core_replica_url.is_some()),
            DatabaseConfig::Sqlite { .. } => (false, false),
        }
    }

    async fn stats_of(&self, database: &str) -> Result<DatabaseStats> {
        let pool = self.maintenance_pool(database);
        let (secure_replica, core_replica) = self.has_replicas();
        let replica = match database {
            "secure" if secure_replica => Some(store::pool_stats(&self.databases().secure_read)),
            "core" if core_replica => Some(store::pool_stats(&self.databases().core_read)),
            _ => None,
        };
        // Taken before this call checks a connection out, so the figures are
        // the host's use, not ours.
        let pool_use = store::pool_stats(pool);
        let mut conn = pool.acquire().await?;
        let size = store::database_size(&mut conn.conn())
            .await
            .map_err(|err| store::on_database(database, err))?;
        let (tables, indexes, note) = store::tables_and_indexes(&mut conn.conn())
            .await
            .map_err(|err| store::on_database(database, err))?;
        let (backend, mut notes) = match pool.dialect() {
            Dialect::Postgres => (
                "postgres",
                vec!["row counts, dead rows and index scans are PostgreSQL's cumulative statistics, updated with a short delay".to_string()],
            ),
            Dialect::Sqlite => (
                "sqlite",
                vec!["SQLite counts neither index use nor dead rows: scans, live_rows and dead_rows are null; free_pages is its dead space".to_string()],
            ),
        };
        notes.extend(note);
        Ok(DatabaseStats {
            database: database.to_string(),
            backend: backend.to_string(),
            total_bytes: size.total_bytes,
            page_size: size.page_size,
            free_pages: size.free_pages,
            tables,
            indexes,
            pool: pool_use,
            replica_pool: replica,
            notes,
        })
    }

    /// Sizes of every table and index, index use, dead rows or free pages,
    /// and pool use, for both databases. Needs `system:maintain` (a global
    /// administrator's); a read, so only a refusal is audited.
    pub async fn database_stats(&self, actor: &Actor) -> Result<DatabaseStatsReport> {
        self.authorize(actor, Access::new("system", "maintain"))
            .await?;
        Ok(DatabaseStatsReport {
            taken_at: now(),
            secure: self.stats_of(DATABASES[0]).await?,
            core: self.stats_of(DATABASES[1]).await?,
        })
    }

    /// Runs the maintenance statements on both databases (see
    /// [`MaintainOptions`]) and reports each with its duration. Needs
    /// `system:maintain` (a global administrator's). Every run is one row
    /// of the core audit trail (`system.maintained`) with its steps; a run
    /// that fails part way is recorded as a failure with the steps it
    /// completed.
    pub async fn maintain(
        &self,
        actor: &Actor,
        options: MaintainOptions,
    ) -> Result<MaintenanceReport> {
        self.authorize(actor, Access::new("system", "maintain"))
            .await?;
        let plan = MaintenancePlan {
            vacuum: options.vacuum,
            analyze: options.analyze,
        };
        let started = Instant::now();
        let mut steps = Vec::new();
        let mut outcome = Ok(());
        for database in DATABASES {
            let run = async {
                let mut conn = self.maintenance_pool(database).acquire().await?;
                store::maintain(&mut conn.conn(), database, plan, &mut steps).await
            };
            outcome = run.await.map_err(|err| store::on_database(database, err));
            if outcome.is_err() {
                break;
            }
        }
        let report = MaintenanceReport {
            vacuum: options.vacuum,
            analyze: options.analyze,
            steps,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let mut details = json!({
            "vacuum": report.vacuum,
            "analyze": report.analyze,
            "steps": report.steps,
            "duration_ms": report.duration_ms,
        });
        let mut entry = AuditEntry::new("system.maintained", "maintain");
        if let Err(err) = &outcome {
            details["error"] = json!(err.to_string());
            entry = entry.outcome(AuditOutcome::Failure);
        }
        failpoint!("maintenance.ran")?;
        let tx = self.databases().core.begin().await?;
        commit_audited(tx, actor, entry.details(details)).await?;
        outcome.map(|()| report)
    }
}
