//! The two backends behind one small surface. Repositories write their SQL once
//! (`$1` placeholders work on both) and run it through `on_conn!`, which
//! expands the same code for PostgreSQL and SQLite. Dialect differences live in
//! [`Dialect`] and nowhere else.

//!
//! Each backend is a cargo feature (`postgres`, `sqlite`, both default): the
//! variants, macro arms and code of a backend left out are not compiled, and
//! opening a configuration of that backend fails with a Configuration error
//! naming the feature.

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!(
    "clm-core needs at least one database backend: enable its `postgres` or `sqlite` feature (both are default features)"
);

#[cfg(feature = "sqlite")]
use std::path::Path;
use std::path::PathBuf;
#[cfg(feature = "postgres")]
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;
use sqlx::pool::PoolConnection;
#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
#[cfg(feature = "postgres")]
use sqlx::{PgConnection, PgPool, Postgres};
#[cfg(feature = "sqlite")]
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use crate::{Error, Result};

#[cfg(feature = "postgres")]
static POSTGRES_SECURE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres/secure");
#[cfg(feature = "postgres")]
static POSTGRES_CORE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres/core");
#[cfg(feature = "sqlite")]
static SQLITE_SECURE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite/secure");
#[cfg(feature = "sqlite")]
static SQLITE_CORE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite/core");

/// How long a SQLite writer waits for the write lock.
pub const SQLITE_BUSY_TIMEOUT_MS: u64 = 30_000;

/// A SQLite write-ahead log larger than this is checkpointed and truncated
/// by the next bulk write ([`Pool::bound_wal`]), and cut back to it by any
/// checkpoint that resets the log (`journal_size_limit`).
pub const SQLITE_WAL_BOUND_BYTES: u64 = 64 * 1024 * 1024;

/// How long [`Pool::bound_wal`]'s checkpoint waits for readers (writers
/// wait meanwhile).
pub const SQLITE_CHECKPOINT_WAIT_MS: u64 = 250;

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL 15 or newer.
    Postgres,
    /// SQLite 3 (bundled), in WAL mode.
    Sqlite,
}

impl Dialect {
    /// Row lock for read-modify-write inside a transaction. SQLite write
    /// transactions start with `BEGIN IMMEDIATE` and hold the database lock.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Postgres => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }

    /// Case-insensitive pattern match.
    pub fn ilike(self) -> &'static str {
        match self {
            Dialect::Postgres => "ILIKE",
            Dialect::Sqlite => "LIKE",
        }
    }

    /// A predicate on `certificates` true when one of its subject
    /// alternative names has the value given by the text parameter `$n`.
    pub fn certificate_has_san(self, param: usize) -> String {
        match self {
            // Containment, so idx_certificates_sans (GIN, jsonb_path_ops) answers it.
            Dialect::Postgres => format!(
                "subject_alternative_names @> jsonb_build_array(jsonb_build_object('value', ${param}::text))"
            ),
            // The values' own table (its triggers keep it), in value order.
            Dialect::Sqlite => format!(
                "id IN (SELECT certificate_id FROM certificate_san_values WHERE value = ${param})"
            ),
        }
    }
}

/// The locks clm takes across processes. On PostgreSQL each is an advisory
/// lock with its own key ("clm" in the high bytes, then a number, so clm's
/// locks never meet each other and are unlikely to meet a host's). SQLite
/// needs none of the transaction-scoped ones: a write transaction
/// (`BEGIN IMMEDIATE`) already holds the database's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Appends to the secure database's audit chain.
    SecureAuditChain,
    /// Appends to the core database's audit chain.
    CoreAuditChain,
    /// One lifecycle run at a time (a session lock: see [`RunLease`]).
    Lifecycle,
    /// Rotation starts (data key and master key).
    Rotation,
    /// Writers of sealed values (shared) against data-key retirement (exclusive).
    DataKeys,
    /// One CA rollover run at a time (a session lock: see [`RunLease`]).
    Rollover,
}

impl Lock {
    #[cfg(feature = "postgres")]
    const fn key(self) -> i64 {
        match self {
            Lock::SecureAuditChain => 0x636c_6d01,
            Lock::CoreAuditChain => 0x636c_6d02,
            Lock::Lifecycle => 0x636c_6d10,
            Lock::Rotation => 0x636c_6d11,
            Lock::DataKeys => 0x636c_6d12,
            Lock::Rollover => 0x636c_6d13,
        }
    }
}

/// The secure half of a cross-database write as one simple query (the keys
/// are written out: a simple query takes no parameters; a test checks they
/// are the locks'): `BEGIN`, [`Lock::DataKeys`] shared (it writes sealed
/// values) and [`Lock::SecureAuditChain`], so the core half can start at
/// once without breaking the secure-then-core lock order.
#[cfg(feature = "postgres")]
const BEGIN_SECURE_HALF_POSTGRES: &str = "BEGIN; SELECT pg_advisory_xact_lock_shared(1668050194); SELECT pg_advisory_xact_lock(1668050177)";

/// The core half of a cross-database write: [`Lock::CoreAuditChain`], and a
/// commit that does not wait for its WAL flush. It commits after the secure
/// half's durable commit; a crash that loses it loses only metadata that
/// [`crate::Clm::reconcile`] rebuilds from the durable certificates.
#[cfg(feature = "postgres")]
const BEGIN_CORE_HALF_POSTGRES: &str =
    "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(1668050178)";

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub enum Pool {
    /// A PostgreSQL pool.
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    /// A SQLite pool.
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
}

/// A borrowed connection of either backend: a pooled one or a transaction's.
pub enum Conn<'c> {
    /// A PostgreSQL connection.
    #[cfg(feature = "postgres")]
    Postgres(&'c mut PgConnection),
    /// A SQLite connection.
    #[cfg(feature = "sqlite")]
    Sqlite(&'c mut SqliteConnection),
}

impl Conn<'_> {
    /// The dialect this connection speaks.
    pub fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

impl Conn<'_> {
    /// Takes `lock` until the transaction ends (PostgreSQL: an advisory
    /// transaction lock, shared or exclusive, that waits at most the
    /// transaction's `lock_timeout`). Nothing on SQLite: the write
    /// transaction already holds the database's lock.
    pub(crate) async fn lock_for_transaction(&mut self, lock: Lock, exclusive: bool) -> Result<()> {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                let sql = if exclusive {
                    "SELECT pg_advisory_xact_lock($1)"
                } else {
                    "SELECT pg_advisory_xact_lock_shared($1)"
                };
                let started = Instant::now();
                sqlx::query(sql).bind(lock.key()).execute(&mut **c).await?;
                trace_wait("advisory lock", Some(lock), exclusive, started);
            }
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(_) => {
                let _ = (lock, exclusive);
            }
        }
        Ok(())
    }
}

/// Runs `$body` with `$c` bound to the backend's concrete connection
/// (`&mut PgConnection` or `&mut SqliteConnection`). The body is compiled once
/// per backend, so the same query text and binds serve both. One definition
/// per set of compiled backends: the arms are chosen here, by clm-core's
/// features, not by those of the crate that expands the macro.
#[cfg(all(feature = "postgres", feature = "sqlite"))]
#[macro_export]
#[doc(hidden)]
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Postgres(inner) => {
                let $c: &mut sqlx::PgConnection = &mut **inner;
                $body
            }
            $crate::db::Conn::Sqlite(inner) => {
                let $c: &mut sqlx::SqliteConnection = &mut **inner;
                $body
            }
        }
    };
}

/// [`on_conn!`] of a PostgreSQL-only build.
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
#[macro_export]
#[doc(hidden)]
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Postgres(inner) => {
                let $c: &mut sqlx::PgConnection = &mut **inner;
                $body
            }
        }
    };
}

/// [`on_conn!`] of a SQLite-only build.
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
#[macro_export]
#[doc(hidden)]
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite(inner) => {
                let $c: &mut sqlx::SqliteConnection = &mut **inner;
                $body
            }
        }
    };
}

/// Executes a statement built by `$query` (with `$c` the concrete connection)
/// on either backend and returns the number of rows it affected.
#[macro_export]
#[doc(hidden)]
macro_rules! exec {
    ($conn:expr, |$c:ident| $query:expr) => {
        $crate::on_conn!($conn, |$c| ($query)
            .execute(&mut *$c)
            .await
            .map(|done| done.rows_affected()))
    };
}

/// A connection checked out of a pool.
pub enum PooledConn {
    /// From a PostgreSQL pool.
    #[cfg(feature = "postgres")]
    Postgres(PoolConnection<Postgres>),
    /// From a SQLite pool.
    #[cfg(feature = "sqlite")]
    Sqlite(PoolConnection<Sqlite>),
}

impl PooledConn {
    /// The connection, borrowed for queries.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            #[cfg(feature = "postgres")]
            PooledConn::Postgres(c) => Conn::Postgres(c),
            #[cfg(feature = "sqlite")]
            PooledConn::Sqlite(c) => Conn::Sqlite(c),
        }
    }
}

/// A transaction of either backend. Dropped without `commit` it rolls back.
pub struct Tx {
    inner: TxInner,
    trace: TxTrace,
}

enum TxInner {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, Postgres>),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, Sqlite>),
}

/// A waited lock is reported at DEBUG from this long (shorter ones at TRACE).
const LOCK_WAIT_REPORTED: Duration = Duration::from_millis(20);

/// Reports how long a lock (or `BEGIN`, which waits for a pooled connection
/// and, on SQLite, the database's write lock) took.
fn trace_wait(what: &'static str, lock: Option<Lock>, exclusive: bool, started: Instant) {
    let waited = started.elapsed();
    let waited_ms = waited.as_secs_f64() * 1000.0;
    let lock = lock.map(tracing::field::debug);
    if waited >= LOCK_WAIT_REPORTED {
        tracing::debug!(what, lock, exclusive, waited_ms, "waited for a lock");
    } else {
        tracing::trace!(what, lock, exclusive, waited_ms, "took a lock");
    }
}

/// The span of one transaction, from `BEGIN` to commit or rollback: closed
/// (with how it ended; its duration is the span's) when the transaction is
/// dropped. `begin_ms` and `commit_ms` split off the waits at either end
/// (a connection and locks; the commit, with its WAL flush or fsync);
/// `half` names the side of a cross-database write (`secure`, `core`).
struct TxTrace {
    span: tracing::Span,
    started: Instant,
    /// Until a commit says otherwise, dropping the transaction rolls it back.
    ended: &'static str,
}

impl TxTrace {
    fn begin(sealing: bool) -> TxTrace {
        TxTrace {
            span: tracing::debug_span!(
                "transaction",
                sealing,
                half = tracing::field::Empty,
                begin_ms = tracing::field::Empty,
                commit_ms = tracing::field::Empty,
                ended = tracing::field::Empty,
            ),
            started: Instant::now(),
            ended: "rolled back",
        }
    }

    /// `BEGIN` returned: how long it waited (for a pooled connection, the
    /// SQLite write lock, or `lock` taken shared in the `BEGIN`).
    fn begun(self, lock: Option<Lock>, inner: TxInner) -> Tx {
        self.span
            .record("begin_ms", self.started.elapsed().as_secs_f64() * 1000.0);
        {
            let _inside = self.span.enter();
            trace_wait("begin", lock, false, self.started);
        }
        Tx { inner, trace: self }
    }
}

impl Drop for TxTrace {
    fn drop(&mut self) {
        self.span.record("ended", self.ended);
    }
}

impl Tx {
    /// The transaction's connection, borrowed for queries.
    pub fn conn(&mut self) -> Conn<'_> {
        match &mut self.inner {
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => Conn::Postgres(t),
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(t) => Conn::Sqlite(t),
        }
    }

    /// The dialect this transaction speaks.
    pub fn dialect(&self) -> Dialect {
        match &self.inner {
            #[cfg(feature = "postgres")]
            TxInner::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Commits; an error leaves nothing of the transaction behind.
    pub async fn commit(self) -> Result<()> {
        let Tx { inner, mut trace } = self;
        let started = Instant::now();
        let committed = match inner {
            #[cfg(feature = "postgres")]
            TxInner::Postgres(t) => t.commit().await,
            #[cfg(feature = "sqlite")]
            TxInner::Sqlite(t) => t.commit().await,
        };
        trace
            .span
            .record("commit_ms", started.elapsed().as_secs_f64() * 1000.0);
        trace.ended = if committed.is_ok() {
            "committed"
        } else {
            "commit failed"
        };
        Ok(committed?)
    }
}

impl Pool {
    /// The dialect of the pool's backend.
    pub fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// SQLite: once the database's write-ahead log has grown past
    /// [`SQLITE_WAL_BOUND_BYTES`], checkpoints it whole and truncates it.
    /// SQLite's own checkpoint after a commit is passive and never resets
    /// the log while a reader of an older snapshot is active; with readers
    /// always overlapping the writer (an import reading its next chunk while
    /// it writes the last, many callers at once) the log then grows with
    /// everything written: gigabytes for a million-certificate import, every
    /// read slower for it. `wal_checkpoint(TRUNCATE)` waits (busy timeout)
    /// for those readers to finish, copies the log into the database and
    /// empties it. Called by the writers after each batch; a no-op on
    /// PostgreSQL. Best effort: a checkpoint that could not finish (a reader
    /// held on past [`SQLITE_CHECKPOINT_WAIT_MS`]) is logged and tried again
    /// after the next batch.
    pub async fn bound_wal(&self) {
        #[cfg(feature = "sqlite")]
        #[cfg_attr(not(feature = "postgres"), allow(irrefutable_let_patterns))]
        if let Pool::Sqlite(pool) = self {
            let mut wal = pool.connect_options().get_filename().as_os_str().to_owned();
            wal.push("-wal");
            let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
            if size <= SQLITE_WAL_BOUND_BYTES {
                return;
            }
            let result = async {
                let mut conn = pool.acquire().await?;
                // Other writers wait while the checkpoint waits for readers:
                // briefly, not for the whole busy timeout.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {SQLITE_CHECKPOINT_WAIT_MS}"
                )))
                .execute(&mut *conn)
                .await?;
                let checkpoint =
                    sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(&mut *conn)
                        .await;
                let restored = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                )))
                .execute(&mut *conn)
                .await;
                if restored.is_err() {
                    conn.close_on_drop();
                }
                checkpoint
            }
            .await;
            match result {
                Ok((0, _, _)) => {
                    tracing::debug!(wal_bytes = size, "SQLite log checkpointed and truncated")
                }
                Ok((_, frames, copied)) => tracing::warn!(
                    wal_bytes = size,
                    frames,
                    copied,
                    "SQLite log could not be truncated: a reader held an older snapshot"
                ),
                Err(err) => {
                    tracing::warn!(error = %err, wal_bytes = size, "SQLite log checkpoint failed")
                }
            }
        }
    }

    /// A connection, waiting at most the pool's acquire timeout.
    pub async fn acquire(&self) -> Result<PooledConn> {
        Ok(match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => PooledConn::Postgres(p.acquire().await?),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => PooledConn::Sqlite(p.acquire().await?),
        })
    }

    /// A write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so two writers wait for each other instead of
    /// failing when a read lock would have to be upgraded.
    pub async fn begin(&self) -> Result<Tx> {
        let trace = TxTrace::begin(false);
        let inner = match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => TxInner::Postgres(p.begin().await?),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => TxInner::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        };
        Ok(trace.begun(None, inner))
    }

    /// The secure half of a cross-database write, a writer of sealed values:
    /// [`Pool::begin`] holding [`Lock::DataKeys`] shared and
    /// [`Lock::SecureAuditChain`] from its first statement. On PostgreSQL
    /// the locks ride in the `BEGIN` itself (one simple query), so a writer
    /// pays no round trip for them.
    pub(crate) async fn begin_secure_half(&self) -> Result<Tx> {
        self.begin_with_locks(
            #[cfg(feature = "postgres")]
            BEGIN_SECURE_HALF_POSTGRES,
            Lock::SecureAuditChain,
        )
        .await
    }

    /// The core half of a cross-database write, holding
    /// [`Lock::CoreAuditChain`] from its `BEGIN`; on PostgreSQL its commit
    /// does not wait for the WAL flush (see `BEGIN_CORE_HALF_POSTGRES`).
    pub(crate) async fn begin_core_half(&self) -> Result<Tx> {
        self.begin_with_locks(
            #[cfg(feature = "postgres")]
            BEGIN_CORE_HALF_POSTGRES,
            Lock::CoreAuditChain,
        )
        .await
    }

    async fn begin_with_locks(
        &self,
        #[cfg(feature = "postgres")] begin_postgres: &'static str,
        lock: Lock,
    ) -> Result<Tx> {
        let tx = match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => {
                let trace = TxTrace::begin(true);
                let inner = TxInner::Postgres(p.begin_with(begin_postgres).await?);
                trace.begun(Some(lock), inner)
            }
            // SQLite's `BEGIN IMMEDIATE` holds the file's write lock.
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => self.begin().await?,
        };
        let half = match lock {
            Lock::SecureAuditChain => "secure",
            Lock::CoreAuditChain => "core",
            _ => "other",
        };
        tx.trace.span.record("half", half);
        Ok(tx)
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.close().await,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.close().await,
        }
    }

    /// Whether [`Pool::close`] was called.
    pub fn is_closed(&self) -> bool {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => p.is_closed(),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => p.is_closed(),
        }
    }
}

/// The two logical databases, each with a primary pool and a pool for
/// read-only reporting queries (a replica when configured, else the primary).
#[derive(Debug, Clone)]
pub struct Databases {
    /// The secure database (keys, MFA secrets, their audit trail): writes and reads.
    pub secure: Pool,
    /// The core database (everything else, its audit trail): writes and reads.
    pub core: Pool,
    /// Reporting reads of the secure database: its replica, else `secure`.
    /// Take connections with [`Databases::acquire_secure_read`], which falls
    /// back to the primary while the replica does not answer.
    pub secure_read: Pool,
    /// Reporting reads of the core database: its replica, else `core`.
    /// Take connections with [`Databases::acquire_core_read`].
    pub core_read: Pool,
    /// Which replicas are configured and when each last failed.
    replicas: Arc<ReplicaRoutes>,
}

/// How long a reporting read waits for a replica's connection before it
/// reads the primary instead (at most the pool's acquire timeout).
#[cfg(feature = "postgres")]
const REPLICA_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Default [`PoolSettings::replica_retry_after`].
pub const DEFAULT_REPLICA_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The replicas' routing state, shared by the clones of one [`Databases`].
#[derive(Debug, Default)]
struct ReplicaRoutes {
    secure: ReplicaRoute,
    core: ReplicaRoute,
    retry_after: Duration,
}

/// One replica: whether there is one, and when it last failed to give a
/// connection (reports read the primary until `retry_after` has passed).
#[derive(Debug, Default)]
struct ReplicaRoute {
    configured: bool,
    failed_at: std::sync::Mutex<Option<Instant>>,
}

impl ReplicaRoute {
    #[cfg(feature = "postgres")]
    fn new(configured: bool, up: bool) -> ReplicaRoute {
        ReplicaRoute {
            configured,
            failed_at: std::sync::Mutex::new((!up).then(Instant::now)),
        }
    }

    /// The failure time (a panic elsewhere cannot leave it wrong: it is
    /// one plain value).
    fn failed_at(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.failed_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Databases {
    fn new(secure: Pool, core: Pool, secure_read: Pool, core_read: Pool) -> Databases {
        Databases {
            secure,
            core,
            secure_read,
            core_read,
            replicas: Arc::default(),
        }
    }

    /// The dialect both databases speak.
    pub fn dialect(&self) -> Dialect {
        self.secure.dialect()
    }

    /// A connection for a reporting read of the secure database: from its
    /// replica while the replica answers, else from the primary (see
    /// [`PoolSettings::replica_retry_after`]).
    pub async fn acquire_secure_read(&self) -> Result<PooledConn> {
        acquire_read(
            &self.secure_read,
            &self.secure,
            &self.replicas.secure,
            self.replicas.retry_after,
            "secure",
        )
        .await
    }

    /// A connection for a reporting read of the core database: from its
    /// replica while the replica answers, else from the primary.
    pub async fn acquire_core_read(&self) -> Result<PooledConn> {
        acquire_read(
            &self.core_read,
            &self.core,
            &self.replicas.core,
            self.replicas.retry_after,
            "core",
        )
        .await
    }

    /// Closes all four pools (replicas first).
    pub async fn close(&self) {
        self.secure_read.close().await;
        self.core_read.close().await;
        self.secure.close().await;
        self.core.close().await;
    }
}

/// Reporting reads prefer the replica; a replica that gives no connection
/// (stopped, unreachable, or its pool exhausted for
/// `REPLICA_ACQUIRE_TIMEOUT`) sends them to the primary, and is tried
/// again after `retry_after`, so a stopped replica costs one wait, not one
/// per read.
async fn acquire_read(
    replica: &Pool,
    primary: &Pool,
    route: &ReplicaRoute,
    retry_after: Duration,
    database: &str,
) -> Result<PooledConn> {
    if !route.configured {
        return primary.acquire().await;
    }
    let resting = route
        .failed_at()
        .is_some_and(|failed| failed.elapsed() < retry_after);
    if resting {
        return primary.acquire().await;
    }
    match replica.acquire().await {
        Ok(conn) => {
            route.failed_at().take();
            Ok(conn)
        }
        Err(err) => {
            let first = route.failed_at().replace(Instant::now()).is_none();
            if first {
                tracing::warn!(
                    database,
                    error = %err,
                    "the read replica gives no connection: reports read the primary"
                );
            }
            primary.acquire().await
        }
    }
}

/// Where the data lives. Both variants exist in every build, so a
/// configuration reads the same whichever backends are compiled in; opening
/// one whose backend was left out fails (see [`connect`]).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    /// Two SQLite files, `secure.db` and `core.db`, in one directory.
    Sqlite {
        /// The directory holding both files; created when missing.
        data_dir: PathBuf,
    },
    /// Two PostgreSQL databases, with optional read replicas for reporting.
    Postgres {
        /// `postgres://` URL of the secure database (may carry a password).
        secure_url: String,
        /// `postgres://` URL of the core database (may carry a password).
        core_url: String,
        /// A read replica of the secure database for reporting queries.
        secure_replica_url: Option<String>,
        /// A read replica of the core database for reporting queries.
        core_replica_url: Option<String>,
    },
}

impl std::fmt::Debug for DatabaseConfig {
    // URLs may carry passwords: print them with the password masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseConfig::Sqlite { data_dir } => f
                .debug_struct("Sqlite")
                .field("data_dir", data_dir)
                .finish(),
            DatabaseConfig::Postgres {
                secure_url,
                core_url,
                secure_replica_url,
                core_replica_url,
            } => f
                .debug_struct("Postgres")
                .field("secure_url", &redact_url(secure_url))
                .field("core_url", &redact_url(core_url))
                .field(
                    "secure_replica_url",
                    &secure_replica_url.as_deref().map(redact_url),
                )
                .field(
                    "core_replica_url",
                    &core_replica_url.as_deref().map(redact_url),
                )
                .finish(),
        }
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:[redacted]@host/db`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((credentials, host)) = rest.rsplit_once('@')
        && let Some((user, _password)) = credentials.split_once(':')
    {
        return format!("{scheme}://{user}:[redacted]@{host}");
    }
    url.to_string()
}

/// PostgreSQL's `sslmode`, with libpq's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, without checking its certificate.
    Prefer,
    /// TLS or nothing; the certificate is not checked (unless `sslrootcert`
    /// is given, which makes it `verify-ca`, as libpq does).
    Require,
    /// TLS with a certificate chaining to a trusted root; any host name.
    VerifyCa,
    /// `verify-ca` and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    /// Every mode, in libpq's spelling.
    pub const NAMES: [&'static str; 5] =
        ["disable", "prefer", "require", "verify-ca", "verify-full"];

    /// libpq's spelling (`verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Parses libpq's spelling; an error names `field` and the accepted values.
    pub fn parse(field: &str, value: &str) -> Result<SslMode> {
        match value.trim().to_ascii_lowercase().as_str() {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            _ => Err(Error::invalid(
                field,
                format!(
                    "must be one of {}, got {value:?}",
                    SslMode::NAMES.join(", ")
                ),
            )),
        }
    }
}

/// TLS to PostgreSQL, applied to every URL (primaries and replicas). Each
/// setting given here overrides the same one in the URLs (`?sslmode=...&
/// sslrootcert=...`); a setting given in neither keeps libpq's default
/// (`prefer`, no client certificate). Ignored by SQLite configurations only
/// when left empty: see [`DatabaseTls::is_empty`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseTls {
    /// `sslmode`: see [`SslMode`].
    pub sslmode: Option<SslMode>,
    /// PEM file of the CA certificates that the server's certificate must
    /// chain to (`verify-ca`, `verify-full`). Without one those modes trust
    /// the webpki (Mozilla) roots.
    pub sslrootcert: Option<PathBuf>,
    /// PEM file of the client certificate (chain) for servers that ask for
    /// one (`pg_hba.conf` method `cert`, or `clientcert=verify-full`).
    pub sslcert: Option<PathBuf>,
    /// PEM file of the client certificate's private key (PKCS#8, PKCS#1 or
    /// SEC1). Keep it readable by the host's user only.
    pub sslkey: Option<PathBuf>,
}

impl DatabaseTls {
    /// Whether no setting is given (the URLs decide everything).
    pub fn is_empty(&self) -> bool {
        *self == DatabaseTls::default()
    }
}

/// Pool sizes and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Most connections in each primary database's pool (at least 1).
    pub max_connections: u32,
    /// Most connections in each replica's pool.
    pub replica_max_connections: u32,
    /// After a replica failed to give a connection (within the acquire
    /// timeout, at most two seconds), reports read the primary for this long
    /// before trying the replica again. Default ten seconds.
    pub replica_retry_after: Duration,
    /// How long a caller waits for a pooled connection before a Database error.
    pub acquire_timeout: Duration,
    /// A statement that runs this long or longer is logged at WARN with its
    /// SQL (never its bound values); every other one at TRACE.
    pub slow_statement_threshold: Duration,
}

/// Default [`PoolSettings::slow_statement_threshold`].
pub const DEFAULT_SLOW_STATEMENT_THRESHOLD: Duration = Duration::from_secs(1);

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 10,
            replica_max_connections: 5,
            replica_retry_after: DEFAULT_REPLICA_RETRY_AFTER,
            acquire_timeout: Duration::from_secs(30),
            slow_statement_threshold: DEFAULT_SLOW_STATEMENT_THRESHOLD,
        }
    }
}

/// sqlx logs each statement through `tracing` (target `sqlx::query`) with
/// its SQL text and timing, never its bound values: at TRACE, or at WARN
/// ("slow statement") from the threshold.
fn statement_logging<O: ConnectOptions>(options: O, settings: PoolSettings) -> O {
    options
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Warn, settings.slow_statement_threshold)
}

/// Opens (creating and migrating) the two databases of `config`, with `tls`
/// for PostgreSQL. A backend compiled out of this build, or TLS settings
/// given for SQLite, fail with a Configuration error.
pub async fn connect(
    config: &DatabaseConfig,
    tls: &DatabaseTls,
    settings: PoolSettings,
) -> Result<Databases> {
    if settings.max_connections == 0 {
        return Err(Error::invalid("max_connections", "must be at least 1"));
    }
    match config {
        DatabaseConfig::Sqlite { data_dir } => {
            if !tls.is_empty() {
                // Someone who asked for TLS believes they talk to a server.
                return Err(Error::Configuration(
                    "database TLS settings (sslmode, sslrootcert, sslcert, sslkey) apply to PostgreSQL, but the database is SQLite"
                        .into(),
                ));
            }
            connect_sqlite(data_dir, settings).await
        }
        DatabaseConfig::Postgres {
            secure_url,
            core_url,
            secure_replica_url,
            core_replica_url,
        } => {
            connect_postgres_pair(
                [secure_url, core_url],
                [secure_replica_url.as_deref(), core_replica_url.as_deref()],
                tls,
                settings,
            )
            .await
        }
    }
}

/// A PostgreSQL configuration in a build without PostgreSQL.
#[cfg(not(feature = "postgres"))]
async fn connect_postgres_pair(
    [secure_url, _]: [&String; 2],
    _replicas: [Option<&str>; 2],
    _tls: &DatabaseTls,
    _settings: PoolSettings,
) -> Result<Databases> {
    Err(backend_missing(
        "PostgreSQL",
        "postgres",
        &redact_url(secure_url),
    ))
}

/// A SQLite configuration in a build without SQLite.
#[cfg(not(feature = "sqlite"))]
async fn connect_sqlite(data_dir: &std::path::Path, _settings: PoolSettings) -> Result<Databases> {
    Err(backend_missing("SQLite", "sqlite", &data_dir.display()))
}

/// The error for a configuration whose backend this build left out.
#[cfg(not(all(feature = "postgres", feature = "sqlite")))]
fn backend_missing(backend: &str, feature: &str, location: &dyn std::fmt::Display) -> Error {
    Error::Configuration(format!(
        "the database at {location} is {backend}, but this build of clm-core has no {backend} support: enable clm-core's `{feature}` cargo feature"
    ))
}

#[cfg(feature = "postgres")]
async fn connect_postgres_pair(
    [secure_url, core_url]: [&String; 2],
    [secure_replica_url, core_replica_url]: [Option<&str>; 2],
    tls: &DatabaseTls,
    settings: PoolSettings,
) -> Result<Databases> {
    let primary = settings.max_connections;
    let secure = connect_postgres(secure_url, "secure_url", tls, primary, settings).await?;
    let core = connect_postgres(core_url, "core_url", tls, primary, settings).await?;
    POSTGRES_SECURE.run(&secure).await?;
    POSTGRES_CORE.run(&core).await?;
    let (secure_read, secure_up) = match secure_replica_url {
        Some(url) => connect_replica(url, "secure_replica_url", tls, settings).await?,
        None => (secure.clone(), true),
    };
    let (core_read, core_up) = match core_replica_url {
        Some(url) => connect_replica(url, "core_replica_url", tls, settings).await?,
        None => (core.clone(), true),
    };
    let mut databases = Databases::new(
        Pool::Postgres(secure),
        Pool::Postgres(core),
        Pool::Postgres(secure_read),
        Pool::Postgres(core_read),
    );
    databases.replicas = Arc::new(ReplicaRoutes {
        secure: ReplicaRoute::new(secure_replica_url.is_some(), secure_up),
        core: ReplicaRoute::new(core_replica_url.is_some(), core_up),
        retry_after: settings.replica_retry_after,
    });
    Ok(databases)
}

/// A replica's pool and whether it answered. A replica that is down when
/// clm opens does not stop it (the primary serves the reports until the
/// replica answers); a URL that is not one still does.
#[cfg(feature = "postgres")]
async fn connect_replica(
    url: &str,
    field: &str,
    tls: &DatabaseTls,
    settings: PoolSettings,
) -> Result<(PgPool, bool)> {
    let options = statement_logging(postgres_options(url, field, tls)?, settings);
    let pool = PgPoolOptions::new()
        .max_connections(settings.replica_max_connections.max(1))
        .acquire_timeout(settings.acquire_timeout.min(REPLICA_ACQUIRE_TIMEOUT));
    match pool.clone().connect_with(options.clone()).await {
        Ok(pool) => Ok((pool, true)),
        Err(err) => {
            tracing::warn!(
                field,
                url = %redact_url(url),
                error = %describe_connect_error(&err, &options),
                "the read replica is unreachable: reports read the primary until it answers"
            );
            Ok((pool.connect_lazy_with(options), false))
        }
    }
}

#[cfg(feature = "postgres")]
async fn connect_postgres(
    url: &str,
    field: &str,
    tls: &DatabaseTls,
    max: u32,
    settings: PoolSettings,
) -> Result<PgPool> {
    let options = statement_logging(postgres_options(url, field, tls)?, settings);
    let pool = PgPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options.clone())
        .await;
    match pool {
        Ok(pool) => Ok(pool),
        Err(sqlx::Error::PoolTimedOut) => {
            // The pool retried a refused connection until its timeout; one
            // plain attempt tells why.
            let reason = match tokio::time::timeout(Duration::from_secs(5), options.connect()).await
            {
                Ok(Err(err)) => describe_connect_error(&err, &options),
                _ => "no connection within the acquire timeout".to_string(),
            };
            Err(Error::database(format!(
                "cannot connect to {field} {}: {reason} (gave up after {:?})",
                redact_url(url),
                settings.acquire_timeout
            )))
        }
        Err(err) => Err(Error::database(format!(
            "cannot connect to {field} {}: {}",
            redact_url(url),
            describe_connect_error(&err, &options)
        ))),
    }
}

/// The URL's options with `tls` laid over them, after checking that the
/// files they name can be read (sqlx would report a missing file without
/// its name).
#[cfg(feature = "postgres")]
fn postgres_options(url: &str, field: &str, tls: &DatabaseTls) -> Result<PgConnectOptions> {
    use sqlx::ConnectOptions as _;
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::Configuration(format!(
            "{field} is not a PostgreSQL URL ({}): it must start with postgres:// or postgresql://",
            redact_url(url)
        )));
    }
    let mut options = PgConnectOptions::from_str(url).map_err(|err| {
        Error::Configuration(format!(
            "{field} is not a PostgreSQL URL ({}): {err}",
            redact_url(url)
        ))
    })?;
    if let Some(mode) = tls.sslmode {
        options = options.ssl_mode(match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        });
    }
    if let Some(path) = &tls.sslrootcert {
        options = options.ssl_root_cert(path);
    }
    if let Some(path) = &tls.sslcert {
        options = options.ssl_client_cert(path);
    }
    if let Some(path) = &tls.sslkey {
        options = options.ssl_client_key(path);
    }
    // What the URL, the PG* variables and the settings give together, read
    // back from the URL sqlx rebuilds (which carries the password: only its
    // TLS parameters are read). A file shows as `file: PATH`; anything else
    // is inline PEM (PGSSLKEY may hold a key), never printed.
    let mut files: [(&str, Option<Option<String>>); 3] =
        [("sslrootcert", None), ("sslcert", None), ("sslkey", None)];
    for (key, value) in options.to_url_lossy().query_pairs() {
        if let Some(slot) = files.iter_mut().find(|(name, _)| *name == key) {
            slot.1 = Some(value.strip_prefix("file: ").map(str::to_string));
        }
    }
    let [(_, rootcert), (_, cert), (_, key)] = &files;
    match (cert, key) {
        (Some(_), None) => {
            return Err(Error::Configuration(format!(
                "{field}: sslcert is given without sslkey: a client certificate needs its private key"
            )));
        }
        (None, Some(_)) => {
            return Err(Error::Configuration(format!(
                "{field}: sslkey is given without sslcert: a client key needs its certificate"
            )));
        }
        _ => {}
    }
    if !matches!(options.get_ssl_mode(), PgSslMode::Disable) {
        for (name, path) in &files {
            if let Some(Some(path)) = path
                && let Err(err) = std::fs::File::open(path)
            {
                return Err(Error::Configuration(format!(
                    "{field}: cannot read {name} {path}: {err}"
                )));
            }
        }
    }
    // libpq checks the chain under `require` when a root certificate is
    // given; sqlx would not look at it.
    if rootcert.is_some() && matches!(options.get_ssl_mode(), PgSslMode::Require) {
        options = options.ssl_mode(PgSslMode::VerifyCa);
    }
    Ok(options)
}

/// A connection failure in words: TLS failures say what failed to verify
/// (the driver's text is rustls' enum names); others keep the driver's text,
/// which never holds the password.
#[cfg(feature = "postgres")]
fn describe_connect_error(err: &sqlx::Error, options: &PgConnectOptions) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        let tls = current.downcast_ref::<rustls::Error>().or_else(|| {
            current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return describe_tls_error(tls, options.get_host());
        }
        source = current.source();
    }
    match err {
        sqlx::Error::Tls(inner) => format!("TLS failed: {inner}"),
        other => other.to_string(),
    }
}

#[cfg(feature = "postgres")]
fn describe_tls_error(err: &rustls::Error, host: &str) -> String {
    use rustls::{AlertDescription, CertificateError};
    match err {
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "host name mismatch: the server's certificate is not valid for {host:?} (sslmode=verify-full checks the name; connect by a name or address the certificate holds)"
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "certificate verify failed: the server's certificate is not signed by a trusted CA (check sslrootcert)".to_string()
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "certificate verify failed: the server's certificate has expired".to_string(),
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "certificate verify failed: the server's certificate is not valid yet".to_string(),
        rustls::Error::InvalidCertificate(CertificateError::Revoked) => {
            "certificate verify failed: the server's certificate is revoked".to_string()
        }
        rustls::Error::InvalidCertificate(other) => {
            format!("certificate verify failed: {other:?}")
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::HandshakeFailure),
        ) => format!(
            "the server refused the TLS handshake ({alert:?}): check the client certificate (sslcert/sslkey) and that the server trusts its CA"
        ),
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(data_dir: &Path, settings: PoolSettings) -> Result<Databases> {
    std::fs::create_dir_all(data_dir).map_err(|err| {
        Error::Configuration(format!(
            "cannot create data directory {}: {err}",
            data_dir.display()
        ))
    })?;
    // WAL + NORMAL survives an application crash but may lose the last
    // commits to a power loss or an OS crash; FULL syncs the WAL at every
    // commit, so a commit that returned survives both. secure.db is FULL:
    // it holds the private keys, the data keys and their master-key
    // wrapping (a master-key rotation commits there) and the certificates,
    // and it commits first in every cross-database write, so after a power
    // loss core can only lag behind it (metadata that `reconcile` rebuilds),
    // never name a certificate secure lost. core.db stays NORMAL: its commits
    // are the many small ones (sessions, notifications, metadata, workflow
    // steps); a power loss can take its last commits, never corrupting it
    // (its audit chain verifies: a prefix), and of those the metadata is
    // what `reconcile` rebuilds from secure.
    let open = |file: &str, synchronous: SqliteSynchronous| {
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(file))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS))
            .pragma("journal_size_limit", SQLITE_WAL_BOUND_BYTES.to_string());
        let options = statement_logging(options, settings);
        SqlitePoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // SQLite rolls a transaction back by itself on some errors (a
            // full disk, an I/O error); the driver's own ROLLBACK then
            // fails and it still counts the transaction open, so every
            // later BEGIN on that connection would fail. Such a connection
            // is closed instead of being handed out again.
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect_with(options)
    };
    let secure = open("secure.db", SqliteSynchronous::Full)
        .await
        .map_err(|err| {
            Error::database(format!(
                "cannot open {}/secure.db: {err}",
                data_dir.display()
            ))
        })?;
    let core = open("core.db", SqliteSynchronous::Normal)
        .await
        .map_err(|err| {
            Error::database(format!("cannot open {}/core.db: {err}", data_dir.display()))
        })?;
    SQLITE_SECURE.run(&secure).await?;
    SQLITE_CORE.run(&core).await?;
    Ok(Databases::new(
        Pool::Sqlite(secure.clone()),
        Pool::Sqlite(core.clone()),
        Pool::Sqlite(secure),
        Pool::Sqlite(core),
    ))
}

/// A lease that one process at a time holds across transactions (the
/// lifecycle run): a session-level advisory lock on a connection kept out of
/// the pool (PostgreSQL), or an exclusive lock on a file beside the
/// databases (SQLite). Give it back with [`RunLease::release`].
pub(crate) struct RunLease(LeaseHold);

enum LeaseHold {
    /// The connection holding the lock; taken by [`RunLease::release`].
    #[cfg(feature = "postgres")]
    Postgres(Option<PoolConnection<Postgres>>, Lock),
    /// The locked file; closing it unlocks.
    #[cfg(feature = "sqlite")]
    File(#[allow(dead_code)] std::fs::File),
}

impl Drop for RunLease {
    /// A lease dropped without release (the run's future was cancelled, or
    /// the unlock failed) must not go back to the pool still holding the
    /// advisory lock, or no later run would ever get it: its connection is
    /// closed instead, which ends the lock with the session.
    fn drop(&mut self) {
        match &mut self.0 {
            #[cfg(feature = "postgres")]
            LeaseHold::Postgres(conn, _) => {
                if let Some(mut conn) = conn.take() {
                    conn.close_on_drop();
                }
            }
            #[cfg(feature = "sqlite")]
            LeaseHold::File(_) => {}
        }
    }
}

impl RunLease {
    /// Takes the lease `lock` (`file` names the SQLite lock file in the data
    /// directory). None when another process holds it.
    pub(crate) async fn try_take(
        pool: &Pool,
        config: &DatabaseConfig,
        lock: Lock,
        file: &str,
    ) -> Result<Option<RunLease>> {
        match pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                let _ = (config, file);
                let mut conn = pool.acquire().await?;
                let acquired = sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                    .bind(lock.key())
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(acquired.then(|| RunLease(LeaseHold::Postgres(Some(conn), lock))))
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => {
                // One lock file per lease: the name says which.
                let _ = lock;
                let DatabaseConfig::Sqlite { data_dir } = config else {
                    return Err(Error::Internal(
                        "database pools do not match the configuration".into(),
                    ));
                };
                let path = data_dir.join(file);
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|err| {
                        Error::Configuration(format!("cannot open {}: {err}", path.display()))
                    })?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(RunLease(LeaseHold::File(file)))),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(err)) => Err(Error::Configuration(format!(
                        "cannot lock {}: {err}",
                        path.display()
                    ))),
                }
            }
        }
    }

    /// Gives the lease back: unlocks and returns the connection to the pool
    /// (PostgreSQL), or unlocks the file by closing it (SQLite).
    pub(crate) async fn release(mut self) -> Result<()> {
        match &mut self.0 {
            #[cfg(feature = "postgres")]
            LeaseHold::Postgres(slot, lock) => {
                if let Some(mut conn) = slot.take() {
                    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                        .bind(lock.key())
                        .execute(&mut *conn)
                        .await
                        .map(|_| ());
                    if unlocked.is_err() {
                        // Back into the slot: dropping the lease closes it.
                        *slot = Some(conn);
                    }
                    unlocked?;
                }
            }
            #[cfg(feature = "sqlite")]
            LeaseHold::File(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn the_cross_database_halves_take_their_chain_locks() {
        let data_keys = Lock::DataKeys.key();
        let secure = Lock::SecureAuditChain.key();
        let core = Lock::CoreAuditChain.key();
        assert_eq!(
            BEGIN_SECURE_HALF_POSTGRES,
            format!(
                "BEGIN; SELECT pg_advisory_xact_lock_shared({data_keys}); SELECT pg_advisory_xact_lock({secure})"
            )
        );
        assert_eq!(
            BEGIN_CORE_HALF_POSTGRES,
            format!(
                "BEGIN; SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock({core})"
            )
        );
    }
}
