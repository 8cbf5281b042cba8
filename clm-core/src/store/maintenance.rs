//! What the database itself knows about its size and upkeep, and the
//! statements that keep it healthy. Unlike the other repositories this one
//! speaks each backend's own catalog (`pg_stat_*`, `dbstat`, pragmas): there
//! is no common SQL for it, so each function matches on the backend.

#[cfg(feature = "sqlite")]
use std::collections::BTreeMap;
use std::time::Instant;

#[cfg(feature = "postgres")]
use sqlx::AssertSqlSafe;

use crate::db::{Conn, Pool};
#[cfg(feature = "postgres")]
use crate::model::Timestamp;
use crate::service::maintenance::{IndexStats, MaintenanceStep, PoolStats, TableStats};
use crate::{Error, Result};

/// Size figures of one database as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DatabaseSize {
    pub total_bytes: i64,
    pub page_size: Option<i64>,
    pub free_pages: Option<i64>,
}

/// A pool's current use.
pub(crate) fn pool_stats(pool: &Pool) -> PoolStats {
    let (max_connections, open, idle) = match pool {
        #[cfg(feature = "postgres")]
        Pool::Postgres(p) => (p.options().get_max_connections(), p.size(), p.num_idle()),
        #[cfg(feature = "sqlite")]
        Pool::Sqlite(p) => (p.options().get_max_connections(), p.size(), p.num_idle()),
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(open);
    PoolStats {
        max_connections,
        open,
        idle,
        in_use: open.saturating_sub(idle),
    }
}

#[cfg(feature = "postgres")]
type PgTableRow = (
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<Timestamp>,
    Option<Timestamp>,
);

#[cfg(feature = "postgres")]
const PG_TABLES: &str =
    "SELECT s.relname::text, pg_relation_size(s.relid), pg_indexes_size(s.relid),
        pg_total_relation_size(s.relid), s.n_live_tup, s.n_dead_tup,
        GREATEST(s.last_vacuum, s.last_autovacuum), GREATEST(s.last_analyze, s.last_autoanalyze)
   FROM pg_stat_user_tables s
  WHERE s.schemaname = current_schema()
  ORDER BY s.relname";

#[cfg(feature = "postgres")]
const PG_INDEXES: &str = "SELECT s.indexrelname::text, s.relname::text,
        pg_relation_size(s.indexrelid), s.idx_scan
   FROM pg_stat_user_indexes s
  WHERE s.schemaname = current_schema()
  ORDER BY s.relname, s.indexrelname";

#[cfg(feature = "sqlite")]
const SQLITE_OBJECTS: &str = "SELECT type, name, tbl_name FROM sqlite_schema
  WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
     OR type = 'index' AND name LIKE 'sqlite\\_autoindex\\_%' ESCAPE '\\'
  ORDER BY tbl_name, type DESC, name";

/// Tables and indexes of the connection's database (PostgreSQL: its current
/// schema). On SQLite the sizes come from `dbstat` when the library was
/// built with it (the bundled SQLite is); without it they are None and the
/// returned note says so.
pub(crate) async fn tables_and_indexes(
    conn: &mut Conn<'_>,
) -> Result<(Vec<TableStats>, Vec<IndexStats>, Option<String>)> {
    match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            let rows: Vec<PgTableRow> = sqlx::query_as(PG_TABLES).fetch_all(&mut **c).await?;
            let tables = rows
                .into_iter()
                .map(
                    |(name, table, index, total, live, dead, vacuum, analyze)| TableStats {
                        name,
                        table_bytes: Some(table),
                        index_bytes: Some(index),
                        total_bytes: Some(total),
                        live_rows: Some(live),
                        dead_rows: Some(dead),
                        last_vacuum: vacuum,
                        last_analyze: analyze,
                    },
                )
                .collect();
            let rows: Vec<(String, String, i64, i64)> =
                sqlx::query_as(PG_INDEXES).fetch_all(&mut **c).await?;
            let indexes = rows
                .into_iter()
                .map(|(name, table, bytes, scans)| IndexStats {
                    name,
                    table,
                    bytes: Some(bytes),
                    scans: Some(scans),
                })
                .collect();
            Ok((tables, indexes, None))
        }
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            let objects: Vec<(String, String, String)> =
                sqlx::query_as(SQLITE_OBJECTS).fetch_all(&mut **c).await?;
            let sizes: Option<BTreeMap<String, i64>> = match sqlx::query_as::<_, (String, i64)>(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name",
            )
            .fetch_all(&mut **c)
            .await
            {
                Ok(rows) => Some(rows.into_iter().collect()),
                Err(sqlx::Error::Database(err)) if err.message().contains("no such table") => None,
                Err(err) => return Err(err.into()),
            };
            let bytes_of = |name: &str| sizes.as_ref().map(|s| s.get(name).copied().unwrap_or(0));
            let mut tables: Vec<TableStats> = Vec::new();
            let mut indexes: Vec<IndexStats> = Vec::new();
            for (kind, name, table) in objects {
                if kind == "table" {
                    tables.push(TableStats {
                        table_bytes: bytes_of(&name),
                        index_bytes: sizes.as_ref().map(|_| 0),
                        total_bytes: bytes_of(&name),
                        name,
                        live_rows: None,
                        dead_rows: None,
                        last_vacuum: None,
                        last_analyze: None,
                    });
                } else {
                    indexes.push(IndexStats {
                        bytes: bytes_of(&name),
                        name,
                        table,
                        scans: None,
                    });
                }
            }
            for index in &indexes {
                if let Some(table) = tables.iter_mut().find(|t| t.name == index.table) {
                    let bytes = index.bytes.unwrap_or(0);
                    table.index_bytes = table.index_bytes.map(|b| b.saturating_add(bytes));
                    table.total_bytes = table.total_bytes.map(|b| b.saturating_add(bytes));
                }
            }
            let note = sizes.is_none().then(|| {
                "this SQLite was built without dbstat: per-table and per-index sizes are unknown"
                    .to_string()
            });
            Ok((tables, indexes, note))
        }
    }
}

/// The database's size: PostgreSQL `pg_database_size`; SQLite page count
/// times page size, with its free (reusable) pages.
pub(crate) async fn database_size(conn: &mut Conn<'_>) -> Result<DatabaseSize> {
    match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            let total: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut **c)
                .await?;
            Ok(DatabaseSize {
                total_bytes: total,
                page_size: None,
                free_pages: None,
            })
        }
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&mut **c)
                .await?;
            let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
                .fetch_one(&mut **c)
                .await?;
            let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
                .fetch_one(&mut **c)
                .await?;
            Ok(DatabaseSize {
                total_bytes: pages.saturating_mul(page_size),
                page_size: Some(page_size),
                free_pages: Some(free),
            })
        }
    }
}

/// Which statements a maintenance run issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaintenancePlan {
    pub vacuum: bool,
    pub analyze: bool,
}

/// PostgreSQL's tables of the current schema, quoted, split by whether this
/// role may VACUUM and ANALYZE them (owner, database owner, superuser, or
/// from PostgreSQL 17 the MAINTAIN privilege): the others would only warn.
#[cfg(feature = "postgres")]
async fn pg_maintainable_tables(c: &mut sqlx::PgConnection) -> Result<(Vec<String>, Vec<String>)> {
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *c)
        .await?;
    let maintain_privilege = if version >= 170_000 {
        " OR has_table_privilege(c.oid, 'MAINTAIN')"
    } else {
        ""
    };
    let sql = format!(
        "SELECT format('%I.%I', n.nspname, c.relname),
                pg_has_role(c.relowner, 'USAGE')
                OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE')
                {maintain_privilege}
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
          ORDER BY c.relname"
    );
    let rows: Vec<(String, bool)> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(&mut *c)
        .await?;
    let (allowed, refused): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, may)| *may);
    Ok((
        allowed.into_iter().map(|(name, _)| name).collect(),
        refused.into_iter().map(|(name, _)| name).collect(),
    ))
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs the plan on one database (a pooled connection, outside any
/// transaction: VACUUM cannot run inside one). PostgreSQL: `VACUUM
/// (ANALYZE)`, `VACUUM` or `ANALYZE` over the tables this role may maintain.
/// SQLite: `PRAGMA optimize` (when analyzing), `VACUUM` (when asked), then
/// `PRAGMA wal_checkpoint(TRUNCATE)`. Steps already run are pushed to
/// `steps` before an error is returned.
pub(crate) async fn maintain(
    conn: &mut Conn<'_>,
    database: &str,
    plan: MaintenancePlan,
    steps: &mut Vec<MaintenanceStep>,
) -> Result<()> {
    let mut step = |statement: &str, started: Instant, detail: Option<String>| {
        steps.push(MaintenanceStep {
            database: database.to_string(),
            statement: statement.to_string(),
            duration_ms: elapsed_ms(started),
            detail,
        });
    };
    match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            let statement = match (plan.vacuum, plan.analyze) {
                (true, true) => "VACUUM (ANALYZE)",
                (true, false) => "VACUUM",
                (false, true) => "ANALYZE",
                (false, false) => return Ok(()),
            };
            let started = Instant::now();
            let (tables, refused) = pg_maintainable_tables(c).await?;
            if !tables.is_empty() {
                // Names come from the catalog, quoted by format('%I').
                let sql = format!("{statement} {}", tables.join(", "));
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut **c).await?;
            }
            let mut detail = format!("{} tables", tables.len());
            if !refused.is_empty() {
                detail.push_str(&format!(
                    "; skipped {} this role may not maintain (not their owner): {}",
                    refused.len(),
                    refused.join(", ")
                ));
            }
            step(statement, started, Some(detail));
        }
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            if plan.analyze {
                let started = Instant::now();
                // 0x10002: analyze every table that may benefit, even on a
                // connection that has run no queries yet (SQLite 3.46+).
                sqlx::raw_sql("PRAGMA optimize=0x10002")
                    .execute(&mut **c)
                    .await?;
                step("PRAGMA optimize", started, None);
            }
            if plan.vacuum {
                let started = Instant::now();
                sqlx::raw_sql("VACUUM").execute(&mut **c).await?;
                step("VACUUM", started, None);
            }
            let started = Instant::now();
            let (busy, wal_pages, checkpointed): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                    .fetch_one(&mut **c)
                    .await?;
            let detail = if busy != 0 {
                format!(
                    "busy: readers or a writer held the WAL, {checkpointed} of {wal_pages} pages checkpointed; run again later"
                )
            } else {
                format!("{checkpointed} pages checkpointed, WAL truncated")
            };
            step("PRAGMA wal_checkpoint(TRUNCATE)", started, Some(detail));
        }
    }
    Ok(())
}

/// A maintenance error with the database it happened on.
pub(crate) fn on_database(database: &str, err: Error) -> Error {
    match err {
        Error::Database(reason, source) => Error::Database(format!("{database}: {reason}"), source),
        other => other,
    }
}
