//! sqlx repositories, one module per table, over [`crate::db::Conn`]. The store
//! holds no policy: services authorize and validate before they call it.
//!
//! Every table gets the same generic reads ([`get`], [`find_by`], [`list`]) and
//! soft-delete pair ([`soft_delete`], [`restore`]); table modules add their
//! inserts, updates and filters.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::model::ResourceId;
use crate::{Error, Result, exec, on_conn};

pub(crate) mod constraints;
pub(crate) mod support;

pub mod api_keys;
pub mod audit;
pub mod ca_rollovers;
pub mod certificate_metadata;
pub mod certificate_requests;
pub mod certificate_revocations;
pub mod certificates;
pub mod crls;
pub mod encryption_keys;
#[cfg(feature = "postgres")]
pub(crate) mod issuance;
pub mod key_rotation_history;
pub mod maintenance;
pub mod notifications;
pub mod ocsp_responses;
pub mod ocsp_signers;
pub mod organizations;
pub mod policies;
pub mod private_keys;
pub mod roles;
pub mod sessions;
pub mod user_organizations;
pub mod user_roles;
pub mod users;
pub mod views;
pub mod workflow_instances;
pub mod workflow_steps;
pub mod workflows;

/// Current time, truncated to microseconds: the precision both backends keep,
/// so a value read back compares equal to the value written.
pub fn now() -> DateTime<Utc> {
    truncate_micros(Utc::now())
}

pub fn truncate_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let micros = at.timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap_or(at)
}

/// A table and the record it holds.
pub trait Table {
    /// SQL table name.
    const NAME: &'static str;
    /// Entity name used in errors ("user", "certificate").
    const ENTITY: &'static str;
    /// Columns read by `get`/`list`; tables with heavy columns narrow this for lists.
    const COLUMNS: &'static str = "*";
    /// Columns read by `list` (defaults to `COLUMNS`).
    const LIST_COLUMNS: &'static str = Self::COLUMNS;
    /// Whether the table has `deleted_at` (audit tables do not).
    const SOFT_DELETE: bool = true;
    type Row: BackendRow;
    /// The primary key's type: [`get`], [`soft_delete`] and [`restore`] take
    /// only this one, so another table's id does not compile.
    // The proof needs the store's paths, which doc tests reach only with
    // `unstable-internals`; the passing twin shows the paths resolve, so the
    // failing one fails on the id alone.
    #[cfg_attr(
        feature = "unstable-internals",
        doc = r#"
```
# async fn demo(conn: &mut clm::db::Conn<'_>) -> clm::Result<()> {
use clm::model::UserId;
use clm::store::{get, users::Users};
get::<Users>(conn, UserId::new(), false).await?;
# Ok(()) }
```

```compile_fail,E0308
# async fn demo(conn: &mut clm::db::Conn<'_>) -> clm::Result<()> {
use clm::model::CertificateId;
use clm::store::{get, users::Users};
get::<Users>(conn, CertificateId::new(), false).await?;
# Ok(()) }
```
"#
    )]
    type Id: Copy + Into<uuid::Uuid>;
}

/// A record that reads from a row of every backend compiled in.
pub trait BackendRow: Send + Unpin + FromPgRow + FromSqliteRow {}
impl<T: Send + Unpin + FromPgRow + FromSqliteRow> BackendRow for T {}

/// Reads from a PostgreSQL row (every type, in a build without PostgreSQL).
#[cfg(feature = "postgres")]
pub trait FromPgRow: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> {}
#[cfg(feature = "postgres")]
impl<T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>> FromPgRow for T {}
/// Reads from a PostgreSQL row (every type, in a build without PostgreSQL).
#[cfg(not(feature = "postgres"))]
pub trait FromPgRow {}
#[cfg(not(feature = "postgres"))]
impl<T> FromPgRow for T {}

/// Reads from a SQLite row (every type, in a build without SQLite).
#[cfg(feature = "sqlite")]
pub trait FromSqliteRow: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> {}
#[cfg(feature = "sqlite")]
impl<T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>> FromSqliteRow for T {}
/// Reads from a SQLite row (every type, in a build without SQLite).
#[cfg(not(feature = "sqlite"))]
pub trait FromSqliteRow {}
#[cfg(not(feature = "sqlite"))]
impl<T> FromSqliteRow for T {}

/// A value bound into a dynamically built query.
#[derive(Debug, Clone)]
pub enum Value {
    Text(String),
    Id(ResourceId),
    Int(i64),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<DateTime<Utc>> for Value {
    fn from(v: DateTime<Utc>) -> Self {
        Value::Time(v)
    }
}

/// Converts any typed id into a bindable value.
pub fn id_value(id: impl Into<uuid::Uuid>) -> Value {
    Value::Id(ResourceId(id.into()))
}

/// Binds a slice of [`Value`]s in order; expands inside `on_conn!` bodies.
#[macro_export]
#[doc(hidden)]
macro_rules! bind_values {
    ($query:expr, $values:expr) => {{
        let mut query = $query;
        for value in $values {
            query = match value {
                $crate::store::Value::Text(v) => query.bind(v.clone()),
                $crate::store::Value::Id(v) => query.bind(*v),
                $crate::store::Value::Int(v) => query.bind(*v),
                $crate::store::Value::Bool(v) => query.bind(*v),
                $crate::store::Value::Time(v) => query.bind(*v),
            };
        }
        query
    }};
}

/// WHERE clauses with their values. Clauses use `?` for their one value;
/// numbering into `$n` happens when the query is built.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Filter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `clause`, whose single `?` takes `value`.
    pub fn eq(mut self, column: &str, value: impl Into<Value>) -> Self {
        self.clauses.push(format!("{column} = ?"));
        self.values.push(value.into());
        self
    }

    /// Adds an arbitrary clause with as many `?` as `values`.
    pub fn clause(mut self, clause: impl Into<String>, values: Vec<Value>) -> Self {
        self.clauses.push(clause.into());
        self.values.extend(values);
        self
    }

    /// Adds `eq` only when `value` is present.
    pub fn eq_opt<V: Into<Value>>(self, column: &str, value: Option<V>) -> Self {
        match value {
            Some(v) => self.eq(column, v),
            None => self,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Renders `AND clause AND clause ...` numbering placeholders from `first`.
    /// Returns the SQL and the next free placeholder number.
    fn render(&self, first: usize) -> (String, usize) {
        let mut sql = String::new();
        let mut next = first;
        for clause in &self.clauses {
            sql.push_str(" AND (");
            for ch in clause.chars() {
                if ch == '?' {
                    sql.push('$');
                    sql.push_str(&next.to_string());
                    next += 1;
                } else {
                    sql.push(ch);
                }
            }
            sql.push(')');
        }
        (sql, next)
    }
}

/// A page request: at most `limit` rows (1..=1000, default 50) after `cursor`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct PageRequest {
    /// Rows per page, 1 to 1000 (`MAX_PAGE_SIZE`); None means 50 (`DEFAULT_PAGE_SIZE`).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`; None starts at the first row.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Also list soft-deleted rows (those with `deleted_at` set).
    #[serde(default)]
    pub include_deleted: bool,
}

/// Rows per page when [`PageRequest::limit`] is None.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest [`PageRequest::limit`] accepted.
pub const MAX_PAGE_SIZE: u32 = 1000;

impl PageRequest {
    /// The first page of at most `limit` rows.
    pub fn first(limit: u32) -> Self {
        PageRequest {
            limit: Some(limit),
            ..Default::default()
        }
    }

    /// The page of at most `limit` rows after `cursor` (a previous page's
    /// `next_cursor`; None for the first page).
    pub fn after(limit: u32, cursor: Option<String>) -> Self {
        PageRequest {
            limit: Some(limit),
            cursor,
            include_deleted: false,
        }
    }

    /// Includes soft-deleted rows.
    pub fn with_deleted(mut self) -> Self {
        self.include_deleted = true;
        self
    }

    /// The limit to use: the default when unset, an InvalidInput error when
    /// 0 or above [`MAX_PAGE_SIZE`].
    pub fn effective_limit(&self) -> Result<u32> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(0) => Err(Error::invalid("limit", "must be at least 1")),
            Some(n) if n > MAX_PAGE_SIZE => Err(Error::invalid(
                "limit",
                format!("must be at most {MAX_PAGE_SIZE}"),
            )),
            Some(n) => Ok(n),
        }
    }

    fn cursor_id(&self) -> Result<Option<ResourceId>> {
        self.cursor
            .as_deref()
            .map(|c| {
                c.parse::<ResourceId>().map_err(|_| {
                    Error::invalid("cursor", "is not a cursor returned by a previous page")
                })
            })
            .transpose()
    }
}

/// One page of rows and the cursor of the next page (None on the last page).
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    /// The rows, in listing order.
    pub items: Vec<T>,
    /// Pass back as the next request's `cursor`; None on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page with every item converted by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

fn live_clause<T: Table>(include_deleted: bool) -> &'static str {
    if T::SOFT_DELETE && !include_deleted {
        " AND deleted_at IS NULL"
    } else {
        ""
    }
}

/// Reads one row by primary key; soft-deleted rows count as missing unless
/// `include_deleted`.
pub async fn get<T: Table>(
    conn: &mut Conn<'_>,
    id: T::Id,
    include_deleted: bool,
) -> Result<T::Row> {
    let id = ResourceId(id.into());
    let sql = format!(
        "SELECT {} FROM {} WHERE id = $1{}",
        T::COLUMNS,
        T::NAME,
        live_clause::<T>(include_deleted)
    );
    let row = on_conn!(conn, |c| sqlx::query_as::<_, T::Row>(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *c)
        .await)?;
    row.ok_or_else(|| Error::not_found(T::ENTITY, id))
}

/// Reads one live row by a unique business-key column.
pub async fn find_by<T: Table>(
    conn: &mut Conn<'_>,
    column: &'static str,
    value: impl Into<Value>,
) -> Result<Option<T::Row>> {
    let values = [value.into()];
    let sql = format!(
        "SELECT {} FROM {} WHERE {column} = $1{}",
        T::COLUMNS,
        T::NAME,
        live_clause::<T>(false)
    );
    Ok(on_conn!(conn, |c| bind_values!(
        sqlx::query_as::<_, T::Row>(AssertSqlSafe(sql)),
        &values
    )
    .fetch_optional(&mut *c)
    .await)?)
}

/// Like [`find_by`], NotFound when absent.
pub async fn get_by<T: Table>(
    conn: &mut Conn<'_>,
    column: &'static str,
    value: impl Into<Value>,
) -> Result<T::Row> {
    let value = value.into();
    let key = match &value {
        Value::Text(t) => t.clone(),
        other => format!("{other:?}"),
    };
    find_by::<T>(conn, column, value)
        .await?
        .ok_or_else(|| Error::not_found(T::ENTITY, format!("{column} {key}")))
}

/// Keyset pagination in id order (ids are time-ordered UUIDv7): every page
/// costs the same however deep the walk goes.
pub async fn list<T: Table>(
    conn: &mut Conn<'_>,
    filter: &Filter,
    page: &PageRequest,
) -> Result<Page<T::Row>>
where
    T::Row: HasId,
{
    let limit = page.effective_limit()?;
    let mut filter = filter.clone();
    if let Some(after) = page.cursor_id()? {
        filter = filter.clause("id > ?", vec![Value::Id(after)]);
    }
    let (clauses, next) = filter.render(1);
    let sql = format!(
        "SELECT {} FROM {} WHERE 1 = 1{}{} ORDER BY id LIMIT ${next}",
        T::LIST_COLUMNS,
        T::NAME,
        live_clause::<T>(page.include_deleted),
        clauses
    );
    let fetch = i64::from(limit) + 1;
    let mut rows = on_conn!(conn, |c| bind_values!(
        sqlx::query_as::<_, T::Row>(AssertSqlSafe(sql)),
        &filter.values
    )
    .bind(fetch)
    .fetch_all(&mut *c)
    .await)?;
    Ok(paginate(&mut rows, limit, |row| row.row_id().to_string()))
}

/// Trims the look-ahead row and derives the next cursor from the last item.
pub fn paginate<T>(rows: &mut Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page {
        items: std::mem::take(rows),
        next_cursor,
    }
}

/// Counts live rows matching a filter.
pub async fn count<T: Table>(conn: &mut Conn<'_>, filter: &Filter) -> Result<i64> {
    let (clauses, _) = filter.render(1);
    let sql = format!(
        "SELECT COUNT(*) FROM {} WHERE 1 = 1{}{}",
        T::NAME,
        live_clause::<T>(false),
        clauses
    );
    Ok(on_conn!(conn, |c| bind_values!(
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)),
        &filter.values
    )
    .fetch_one(&mut *c)
    .await)?)
}

/// Marks a live row deleted. NotFound when it is absent or already deleted.
pub async fn soft_delete<T: Table>(conn: &mut Conn<'_>, id: T::Id) -> Result<()> {
    let id = ResourceId(id.into());
    no_soft_delete_guard::<T>()?;
    let sql = format!(
        "UPDATE {} SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
        T::NAME
    );
    let affected = exec!(conn, |c| sqlx::query(AssertSqlSafe(sql))
        .bind(now())
        .bind(id))?;
    if affected == 0 {
        return Err(Error::not_found(T::ENTITY, id));
    }
    Ok(())
}

/// Brings a soft-deleted row back. NotFound when no deleted row has that id.
pub async fn restore<T: Table>(conn: &mut Conn<'_>, id: T::Id) -> Result<()> {
    let id = ResourceId(id.into());
    no_soft_delete_guard::<T>()?;
    let sql = format!(
        "UPDATE {} SET deleted_at = NULL WHERE id = $1 AND deleted_at IS NOT NULL",
        T::NAME
    );
    let affected = exec!(conn, |c| sqlx::query(AssertSqlSafe(sql)).bind(id))?;
    if affected == 0 {
        return Err(Error::not_found(T::ENTITY, format!("deleted {id}")));
    }
    Ok(())
}

/// Tables without `deleted_at` (the append-only audit logs) have nothing to
/// soft-delete or restore; say so instead of failing on a missing column.
fn no_soft_delete_guard<T: Table>() -> Result<()> {
    if T::SOFT_DELETE {
        Ok(())
    } else {
        Err(Error::conflict(format!(
            "{} is append-only: rows cannot be deleted or restored",
            T::NAME
        )))
    }
}

/// Records expose their primary key for cursors.
pub trait HasId {
    fn row_id(&self) -> uuid::Uuid;
}

/// A table whose rows the store inserts whole: its column list, written once
/// in [`table!`], gives the statement text, the column count and the binds
/// (per row for VALUES lists, per column for PostgreSQL's UNNEST arrays).
pub(crate) trait Insert: Table {
    /// `id, certificate_id, ...` in bind order.
    const INSERT_COLUMNS: &'static str;
    const INSERT_COLUMN_COUNT: usize;
    /// Binds one array per column, in [`Insert::INSERT_COLUMNS`] order.
    #[cfg(feature = "postgres")]
    fn bind_columns<'r>(
        query: support::PgInsert<'r>,
        rows: &'r [Self::Row],
    ) -> support::PgInsert<'r>;
    /// Binds one row's columns in order (PostgreSQL VALUES).
    #[cfg(feature = "postgres")]
    fn bind_row_postgres<'r>(
        query: support::PgInsert<'r>,
        row: &'r Self::Row,
    ) -> support::PgInsert<'r>;
    /// Binds one row's columns in order (SQLite VALUES).
    #[cfg(feature = "sqlite")]
    fn bind_row_sqlite<'r>(
        query: support::SqliteInsert<'r>,
        row: &'r Self::Row,
    ) -> support::SqliteInsert<'r>;
}

/// Implements [`Table`] and [`HasId`] for a record; with an `insert |row| {
/// column: value, ... }` section also [`Insert`], each value an expression of
/// `row` that binds as the column (the same expression serves the per-row
/// binds and, collected over rows, PostgreSQL's column arrays).
#[macro_export]
#[doc(hidden)]
macro_rules! table {
    (
        $marker:ident, $row:ty, $name:literal, $entity:literal, id = $id:ty
        $(, $key:ident : $ty:ty = $value:expr)* $(,)?
        $(; insert |$r:ident| {
            $first:ident : $first_bind:expr $(, $col:ident : $bind:expr)* $(,)?
        })?
    ) => {
        pub struct $marker;
        impl $crate::store::Table for $marker {
            const NAME: &'static str = $name;
            const ENTITY: &'static str = $entity;
            $(const $key: $ty = $value;)*
            type Row = $row;
            type Id = $id;
        }
        impl $crate::store::HasId for $row {
            fn row_id(&self) -> uuid::Uuid {
                self.id.as_uuid()
            }
        }
        $(
            impl $crate::store::Insert for $marker {
                const INSERT_COLUMNS: &'static str =
                    concat!(stringify!($first) $(, ", ", stringify!($col))*);
                const INSERT_COLUMN_COUNT: usize =
                    [stringify!($first) $(, stringify!($col))*].len();
                #[cfg(feature = "postgres")]
                fn bind_columns<'r>(
                    query: $crate::store::support::PgInsert<'r>,
                    rows: &'r [$row],
                ) -> $crate::store::support::PgInsert<'r> {
                    query
                        .bind($crate::store::support::column(rows, |$r: &'r $row| $first_bind))
                        $(.bind($crate::store::support::column(rows, |$r: &'r $row| $bind)))*
                }
                #[cfg(feature = "postgres")]
                fn bind_row_postgres<'r>(
                    query: $crate::store::support::PgInsert<'r>,
                    $r: &'r $row,
                ) -> $crate::store::support::PgInsert<'r> {
                    query.bind($first_bind)$(.bind($bind))*
                }
                #[cfg(feature = "sqlite")]
                fn bind_row_sqlite<'r>(
                    query: $crate::store::support::SqliteInsert<'r>,
                    $r: &'r $row,
                ) -> $crate::store::support::SqliteInsert<'r> {
                    query.bind($first_bind)$(.bind($bind))*
                }
            }
        )?
    };
}

/// Maps database errors to the domain: unique -> AlreadyExists naming the
/// entity and field (by constraint name, see [`constraints`]), foreign key ->
/// Conflict, not-null and check -> InvalidInput, each naming table and
/// field. The driver's error is kept as the result's `source()`.
pub fn map_sqlx_error(err: sqlx::Error) -> Error {
    let mapped = match &err {
        sqlx::Error::RowNotFound => return Error::not_found("row", "query returned no row"),
        sqlx::Error::PoolClosed => return Error::Closed,
        sqlx::Error::PoolTimedOut => {
            MappedKind::Database("timed out waiting for a database connection".into())
        }
        sqlx::Error::Database(db) => map_database_error(db.as_ref()),
        other => MappedKind::Database(other.to_string()),
    };
    let source = Some(crate::error::DatabaseSource::new(err));
    match mapped {
        MappedKind::AlreadyExists { entity, field } => Error::AlreadyExists {
            entity,
            field,
            source,
        },
        MappedKind::Invalid { field, reason } => Error::InvalidInput {
            field,
            reason,
            source,
        },
        MappedKind::Conflict(reason) => Error::Conflict(reason, source),
        MappedKind::Database(reason) => Error::Database(reason, source),
        MappedKind::StorageFull(reason) => Error::StorageFull(reason, source),
    }
}

/// What a database error means, before its source is attached.
enum MappedKind {
    AlreadyExists { entity: String, field: String },
    Invalid { field: String, reason: String },
    Conflict(String),
    Database(String),
    StorageFull(String),
}

fn map_database_error(db: &dyn sqlx::error::DatabaseError) -> MappedKind {
    use sqlx::error::ErrorKind;
    let message = db.message().to_string();
    // Our append-only triggers raise with their own text and no constraint
    // (PostgreSQL RAISE, SQLite RAISE(ABORT)): the text is ours to match.
    if message.contains("append-only") {
        return MappedKind::Conflict(message);
    }
    // SQLITE_FULL (13; ENOSPC on a write) and PostgreSQL's disk_full.
    if matches!(db.code().as_deref(), Some("13" | "53100")) {
        return MappedKind::StorageFull(message);
    }
    match db.kind() {
        ErrorKind::UniqueViolation => {
            let (entity, field) = unique_violation(db);
            MappedKind::AlreadyExists { entity, field }
        }
        ErrorKind::ForeignKeyViolation => {
            let (table, field) = constraint_location(db);
            MappedKind::Conflict(format!(
                "{table}.{field} refers to a row that does not exist, or the row is still referenced ({message})"
            ))
        }
        ErrorKind::NotNullViolation => {
            let (table, field) = constraint_location(db);
            MappedKind::Invalid {
                field: format!("{table}.{field}"),
                reason: "is required".into(),
            }
        }
        ErrorKind::CheckViolation => {
            let (table, field) = constraint_location(db);
            MappedKind::Invalid {
                field: format!("{table}.{field}"),
                reason: format!("rejected by the database: {message}"),
            }
        }
        _ => MappedKind::Database(message),
    }
}

/// Entity and field of a unique violation: PostgreSQL by the constraint's
/// name; SQLite (which names none) by the `table.column` list of its
/// message, or the index name it gives for an expression index. A key not in
/// [`constraints::UNIQUE_KEYS`] (a primary key) names its table and columns.
fn unique_violation(db: &dyn sqlx::error::DatabaseError) -> (String, String) {
    if let Some(key) = db.constraint().and_then(constraints::unique_by_name) {
        return (key.entity.to_string(), key.field.to_string());
    }
    if let Some((table, columns)) = sqlite_columns(db.message()) {
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        if let Some(key) = constraints::unique_by_columns(&table, &columns) {
            return (key.entity.to_string(), key.field.to_string());
        }
        return (table, columns.join(" and "));
    }
    if let Some(key) = sqlite_index_name(db.message()).and_then(constraints::unique_by_name) {
        return (key.entity.to_string(), key.field.to_string());
    }
    constraint_location(db)
}

/// SQLite's `UNIQUE constraint failed: t.a, t.b` (also NOT NULL's) -> `(t, [a, b])`.
fn sqlite_columns(message: &str) -> Option<(String, Vec<String>)> {
    let (_, rest) = message.split_once("constraint failed: ")?;
    let mut table = None;
    let mut columns = Vec::new();
    for part in rest.split(',') {
        let (t, column) = part.trim().split_once('.')?;
        if *table.get_or_insert(t) != t {
            return None;
        }
        columns.push(column.to_string());
    }
    Some((table?.to_string(), columns))
}

/// SQLite's `UNIQUE constraint failed: index 'name'` -> `name`.
fn sqlite_index_name(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once("constraint failed: index '")?;
    rest.strip_suffix('\'')
}

/// Table and column of a non-unique constraint failure. PostgreSQL: the
/// table and column it reports, else the column its constraint's name
/// holds (`<table>_<column>_fkey`, `ck_<table>_<what>`). SQLite, which names
/// neither: the `table.column` of its message (NOT NULL), the check's
/// expression or name (CHECK), nothing at all for a foreign key.
fn constraint_location(db: &dyn sqlx::error::DatabaseError) -> (String, String) {
    #[cfg(feature = "postgres")]
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let table = pg.table().unwrap_or("row").to_string();
        let field = pg
            .column()
            .or_else(|| {
                pg.constraint().and_then(|name| {
                    constraints::column_of_default_name(&table, name)
                        .or_else(|| constraints::subject_of_named_check(&table, name))
                        .or(Some(name))
                })
            })
            .unwrap_or("value")
            .to_string();
        return (table, field);
    }
    if let Some((table, columns)) = sqlite_columns(db.message()) {
        return (table, columns.join(" and "));
    }
    if let Some((_, rest)) = db.message().split_once("constraint failed: ") {
        return (String::from("row"), rest.trim().to_string());
    }
    (String::from("row"), String::from("reference"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_messages_name_table_columns_or_index() {
        assert_eq!(
            sqlite_columns("UNIQUE constraint failed: user_roles.user_id, user_roles.role_id"),
            Some((
                "user_roles".to_string(),
                vec!["user_id".to_string(), "role_id".to_string()]
            ))
        );
        assert_eq!(sqlite_columns("FOREIGN KEY constraint failed"), None);
        assert_eq!(
            sqlite_columns("CHECK constraint failed: status IN ('a', 'b')"),
            None
        );
        assert_eq!(
            sqlite_index_name("UNIQUE constraint failed: index 'uq_x'"),
            Some("uq_x")
        );
        let key = sqlite_columns("UNIQUE constraint failed: users.username")
            .and_then(|(t, c)| constraints::unique_by_columns(&t, &[c[0].as_str()]));
        assert_eq!(key.map(|k| (k.entity, k.field)), Some(("user", "username")));
    }
}
