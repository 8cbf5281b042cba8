//! sqlx repositories, one module per table, over [`crate::db::Conn`]. The store
//! holds no policy: services authorize and validate before they call it.
//!
//! Every table gets the same generic reads ([`get`], [`find_by`], [`list`]) and
//! soft-delete pair ([`soft_delete`], [`restore`]); table modules add their
//! inserts, updates and filters.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, FromRow};

use crate::db::Conn;
use crate::model::ResourceId;
use crate::{Error, Result, exec, on_conn};

pub(crate) mod support;

pub mod api_keys;
pub mod audit;
pub mod certificate_metadata;
pub mod certificate_requests;
pub mod certificate_revocations;
pub mod certificates;
pub mod encryption_keys;
pub mod key_rotation_history;
pub mod notifications;
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
    type Row: Send + Unpin + for<'r> FromRow<'r, PgRow> + for<'r> FromRow<'r, SqliteRow>;
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
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PageRequest {
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub include_deleted: bool,
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 1000;

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        PageRequest {
            limit: Some(limit),
            ..Default::default()
        }
    }

    pub fn after(limit: u32, cursor: Option<String>) -> Self {
        PageRequest {
            limit: Some(limit),
            cursor,
            include_deleted: false,
        }
    }

    pub fn with_deleted(mut self) -> Self {
        self.include_deleted = true;
        self
    }

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
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
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
    fn bind_columns<'r>(
        query: support::PgInsert<'r>,
        rows: &'r [Self::Row],
    ) -> support::PgInsert<'r>;
    /// Binds one row's columns in order (PostgreSQL VALUES).
    fn bind_row_postgres<'r>(
        query: support::PgInsert<'r>,
        row: &'r Self::Row,
    ) -> support::PgInsert<'r>;
    /// Binds one row's columns in order (SQLite VALUES).
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
                fn bind_columns<'r>(
                    query: $crate::store::support::PgInsert<'r>,
                    rows: &'r [$row],
                ) -> $crate::store::support::PgInsert<'r> {
                    query
                        .bind($crate::store::support::column(rows, |$r: &'r $row| $first_bind))
                        $(.bind($crate::store::support::column(rows, |$r: &'r $row| $bind)))*
                }
                fn bind_row_postgres<'r>(
                    query: $crate::store::support::PgInsert<'r>,
                    $r: &'r $row,
                ) -> $crate::store::support::PgInsert<'r> {
                    query.bind($first_bind)$(.bind($bind))*
                }
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

/// Maps database errors to the domain: unique -> AlreadyExists, foreign key ->
/// Conflict or NotFound, check -> InvalidInput, each naming table and field.
pub fn map_sqlx_error(err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::RowNotFound => Error::not_found("row", "query returned no row"),
        sqlx::Error::PoolClosed => Error::Closed,
        sqlx::Error::PoolTimedOut => {
            Error::Database("timed out waiting for a database connection".into())
        }
        sqlx::Error::Database(db) => {
            let message = db.message().to_string();
            let (table, field) = constraint_location(db.as_ref());
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => Error::AlreadyExists {
                    entity: table,
                    field,
                },
                sqlx::error::ErrorKind::ForeignKeyViolation => Error::Conflict(format!(
                    "{table}.{field} refers to a row that does not exist, or the row is still referenced ({message})"
                )),
                sqlx::error::ErrorKind::NotNullViolation => {
                    Error::invalid(format!("{table}.{field}"), "is required")
                }
                sqlx::error::ErrorKind::CheckViolation => {
                    if message.contains("append-only") {
                        Error::Conflict(message)
                    } else {
                        Error::invalid(
                            format!("{table}.{field}"),
                            format!("rejected by the database: {message}"),
                        )
                    }
                }
                _ if message.contains("append-only") => Error::Conflict(message),
                _ => Error::Database(message),
            }
        }
        _ => Error::Database(err.to_string()),
    }
}

/// Finds table and column of a constraint failure on either backend.
fn constraint_location(db: &dyn sqlx::error::DatabaseError) -> (String, String) {
    let message = db.message();
    // SQLite: "UNIQUE constraint failed: users.username" / "CHECK constraint failed: ..."
    if let Some((_, rest)) = message.split_once("constraint failed: ") {
        let first = rest.split(',').next().unwrap_or(rest).trim();
        if let Some((table, column)) = first.split_once('.') {
            return (table.to_string(), column.to_string());
        }
        return (String::from("row"), first.to_string());
    }
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        let table = pg.table().unwrap_or("row").to_string();
        // "Key (username)=(alice) already exists." -> username
        let field = pg
            .detail()
            .and_then(|d| {
                d.split_once("Key (")
                    .and_then(|(_, r)| r.split_once(')'))
                    .map(|(k, _)| k.to_string())
            })
            .or_else(|| pg.column().map(str::to_string))
            .or_else(|| pg.constraint().map(str::to_string))
            .unwrap_or_else(|| "value".to_string());
        return (table, field);
    }
    (
        String::from("row"),
        db.constraint().unwrap_or("value").to_string(),
    )
}
