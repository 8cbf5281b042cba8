//! Small pieces shared by the table modules: IN lists, LIKE patterns, keyset
//! cursors over `(timestamp, id)` and a page fetch for queries whose order is
//! not plain `id`.

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::AssertSqlSafe;

use crate::db::{Conn, Dialect};
use crate::model::ResourceId;
use crate::store::{BackendRow, Filter, Insert, Value};
use crate::{Error, Result, bind_values, on_conn};

/// SQLite allows at most 32766 bound parameters per statement (PostgreSQL
/// 65535); multi-row statements stay under the smaller limit.
pub(crate) const MAX_BIND_PARAMS: usize = 32_766;

/// `column IN (?, ...)` over typed ids; an empty set matches nothing.
pub(crate) fn in_ids<I>(filter: Filter, column: &str, ids: &[I]) -> Filter
where
    I: Into<uuid::Uuid> + Copy,
{
    if ids.is_empty() {
        return filter.clause("1 = 0", Vec::new());
    }
    filter.clause(
        format!("{column} IN ({})", marks(ids.len())),
        ids.iter()
            .map(|id| Value::Id(ResourceId((*id).into())))
            .collect(),
    )
}

/// [`in_ids`] when the restriction is present.
pub(crate) fn in_ids_opt<I>(filter: Filter, column: &str, ids: Option<&Vec<I>>) -> Filter
where
    I: Into<uuid::Uuid> + Copy,
{
    match ids {
        Some(ids) => in_ids(filter, column, ids),
        None => filter,
    }
}

/// `column IN (?, ...)` over text values (status sets); empty matches nothing.
pub(crate) fn in_texts<S: std::fmt::Display>(filter: Filter, column: &str, values: &[S]) -> Filter {
    if values.is_empty() {
        return filter.clause("1 = 0", Vec::new());
    }
    filter.clause(
        format!("{column} IN ({})", marks(values.len())),
        values.iter().map(|v| Value::Text(v.to_string())).collect(),
    )
}

/// Case-insensitive substring match of `column` (LIKE metacharacters escaped).
pub(crate) fn contains_ci(filter: Filter, dialect: Dialect, column: &str, needle: &str) -> Filter {
    contains_ci_any(filter, dialect, &[column], needle)
}

/// Case-insensitive substring match of any of `columns`. The one place that
/// escapes LIKE's metacharacters: the escape character itself first, then
/// `%` and `_`, so every character of `needle` matches only itself.
pub(crate) fn contains_ci_any(
    filter: Filter,
    dialect: Dialect,
    columns: &[&str],
    needle: &str,
) -> Filter {
    let pattern = format!(
        "%{}%",
        needle
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let clause = columns
        .iter()
        .map(|column| format!("{column} {} ? ESCAPE '\\'", dialect.ilike()))
        .collect::<Vec<_>>()
        .join(" OR ");
    filter.clause(clause, vec![Value::Text(pattern); columns.len()])
}

/// `Dialect::certificate_has_san` as a [`Filter`] clause (Filter numbers `?` itself).
pub(crate) fn certificate_has_san(filter: Filter, dialect: Dialect, value: &str) -> Filter {
    let clause = dialect.certificate_has_san(0).replace("$0", "?");
    filter.clause(clause, vec![Value::Text(value.to_string())])
}

/// `?, ?, ?` for a Filter clause.
pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Placeholders `first..first + n` for a hand-built statement with many
/// binds: `$first, $first+1, ...` on PostgreSQL, anonymous `?` on SQLite,
/// whose parser looks each `$N` name up in a linear list (quadratic for a
/// multi-row INSERT of thousands of values; `?` is constant time). The `?`
/// must be bound in textual order, so never mix them with `$N` in one statement.
pub(crate) fn placeholders(dialect: Dialect, first: usize, n: usize) -> String {
    match dialect {
        Dialect::Postgres => (first..first + n)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", "),
        Dialect::Sqlite => marks(n),
    }
}

/// `INSERT INTO table (columns) SELECT * FROM UNNEST($1, ..., $n)` for
/// PostgreSQL, each parameter an array holding one column of every row
/// (see [`column`]). The text is the same for any number of rows, so it is
/// prepared once per connection; a multi-row VALUES list would be a new
/// statement, with thousands of parameters to parse, for every batch size.
#[cfg(feature = "postgres")]
pub(crate) fn unnest_insert_sql(table: &str, columns: &str, count: usize) -> String {
    unnest_insert_sql_from(table, columns, 1, count)
}

/// [`unnest_insert_sql`] with its placeholders numbered from `first`.
#[cfg(feature = "postgres")]
pub(crate) fn unnest_insert_sql_from(
    table: &str,
    columns: &str,
    first: usize,
    count: usize,
) -> String {
    format!(
        "INSERT INTO {table} ({columns}) SELECT * FROM UNNEST({})",
        placeholders(Dialect::Postgres, first, count)
    )
}

/// One PostgreSQL statement made of several parts, `WITH a AS (INSERT ...),
/// b AS (...) SELECT ...`: writes that would be a statement per table cost
/// one round trip, one parse and one executor start-up instead. Each part
/// takes the next placeholder numbers; bind the parts' values in the order
/// the parts were added. Every data-modifying part runs, referenced or not,
/// and all of them see the snapshot the statement started with; foreign
/// keys are checked after the last part, so a part may insert rows that
/// reference another part's.
#[cfg(feature = "postgres")]
#[derive(Debug)]
pub(crate) struct PgWith {
    parts: Vec<String>,
    next_placeholder: usize,
}

#[cfg(feature = "postgres")]
impl PgWith {
    pub(crate) fn new() -> Self {
        Self {
            parts: Vec::new(),
            next_placeholder: 1,
        }
    }

    /// Adds `name AS (sql)`, where `sql` is built by `build` from the number
    /// of the first of the `placeholders` it uses.
    pub(crate) fn part(
        &mut self,
        name: &str,
        placeholders: usize,
        build: impl FnOnce(usize) -> String,
    ) -> &mut Self {
        let sql = build(self.next_placeholder);
        self.next_placeholder = self.next_placeholder.saturating_add(placeholders);
        self.parts.push(format!("{name} AS ({sql})"));
        self
    }

    /// Adds `name AS (INSERT INTO T ... SELECT * FROM UNNEST(...) returning)`
    /// for rows bound with [`Insert::bind_columns`].
    pub(crate) fn unnest_insert<T: Insert>(&mut self, name: &str, returning: &str) -> &mut Self {
        self.part(name, T::INSERT_COLUMN_COUNT, |first| {
            let insert =
                unnest_insert_sql_from(T::NAME, T::INSERT_COLUMNS, first, T::INSERT_COLUMN_COUNT);
            if returning.is_empty() {
                insert
            } else {
                format!("{insert} RETURNING {returning}")
            }
        })
    }

    /// The statement, ending in `select` (which may read the parts).
    pub(crate) fn sql(&self, select: &str) -> String {
        format!("WITH {} {select}", self.parts.join(",\n"))
    }
}

/// A PostgreSQL insert being bound (see [`Insert`]).
#[cfg(feature = "postgres")]
pub(crate) type PgInsert<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
/// A SQLite insert being bound (see [`Insert`]).
#[cfg(feature = "sqlite")]
pub(crate) type SqliteInsert<'q> =
    sqlx::query::Query<'q, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments>;

/// Inserts `rows` into `T` with few statements: on PostgreSQL one
/// [`unnest_insert_sql`] statement binding one array per column; on SQLite
/// multi-row `VALUES` of [`chunk_rows`] rows, the rest in statements of
/// halving sizes (so few, small statement texts per table, see
/// [`SQLITE_ROWS_PER_INSERT`]).
/// Not atomic by itself: run it in a transaction for all-or-nothing.
pub(crate) async fn insert_rows<T: Insert>(conn: &mut Conn<'_>, rows: &[T::Row]) -> Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            let query = sqlx::query(sqlx::AssertSqlSafe(unnest_insert_sql(
                T::NAME,
                T::INSERT_COLUMNS,
                T::INSERT_COLUMN_COUNT,
            )));
            Ok(T::bind_columns(query, rows)
                .execute(&mut **c)
                .await?
                .rows_affected())
        }
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            let mut inserted = 0;
            let mut rest = rows;
            while !rest.is_empty() {
                let (chunk, after) = rest.split_at(sqlite_statement_rows::<T>(rest.len()));
                rest = after;
                let sql = values_insert_sql(
                    Dialect::Sqlite,
                    T::NAME,
                    T::INSERT_COLUMNS,
                    T::INSERT_COLUMN_COUNT,
                    chunk.len(),
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for row in chunk {
                    query = T::bind_row_sqlite(query, row);
                }
                inserted += query.execute(&mut **c).await?.rows_affected();
            }
            Ok(inserted)
        }
    }
}

/// Inserts one row of `T` with a one-row `VALUES` list on either backend.
pub(crate) async fn insert_one<T: Insert>(conn: &mut Conn<'_>, row: &T::Row) -> Result<()> {
    let sql = values_insert_sql(
        conn.dialect(),
        T::NAME,
        T::INSERT_COLUMNS,
        T::INSERT_COLUMN_COUNT,
        1,
    );
    match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            T::bind_row_postgres(sqlx::query(sqlx::AssertSqlSafe(sql)), row)
                .execute(&mut **c)
                .await?;
        }
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            T::bind_row_sqlite(sqlx::query(sqlx::AssertSqlSafe(sql)), row)
                .execute(&mut **c)
                .await?;
        }
    }
    Ok(())
}

/// Rows per multi-row INSERT on SQLite. Every statement text stays
/// prepared in each pooled connection (sqlx's statement cache, 100 per
/// connection), and a multi-row INSERT compiles to a program that grows
/// with its rows: statements as large as the bind limit allows (over a
/// thousand rows, a different text for every batch size) held 15-19 MiB
/// in a SQLite import. A fixed size, with the rest of a batch in halving
/// sizes, keeps a few small texts per table; SQLite has no round trip to
/// save by going larger.
pub(crate) const SQLITE_ROWS_PER_INSERT: usize = 64;

/// Rows of the next SQLite INSERT of `T` with `remaining` rows left:
/// [`chunk_rows`] while that many are left, then the largest power of two
/// that fits, so a batch of any size is written with at most seven
/// statement texts per table.
#[cfg(feature = "sqlite")]
fn sqlite_statement_rows<T: Insert>(remaining: usize) -> usize {
    sqlite_rows_of(chunk_rows::<T>(), remaining)
}

/// Rows of the next multi-row SQLite statement with `remaining` rows left
/// and at most `full` in one: `full` while that many are left, then the
/// largest power of two that fits. Any batch then takes few statement
/// texts (each stays prepared in every pooled connection).
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_rows_of(full: usize, remaining: usize) -> usize {
    let full = full.max(1);
    match remaining {
        0 => 0,
        n if n >= full => full,
        // The largest power of two not above n.
        n => 1 << (usize::BITS - 1 - n.leading_zeros()),
    }
}

/// Rows per multi-row INSERT of `T` on SQLite: [`SQLITE_ROWS_PER_INSERT`],
/// or fewer where its bind limit needs.
pub(crate) const fn chunk_rows<T: Insert>() -> usize {
    let per_row = if T::INSERT_COLUMN_COUNT == 0 {
        1
    } else {
        T::INSERT_COLUMN_COUNT
    };
    let rows = MAX_BIND_PARAMS / per_row;
    if rows == 0 {
        1
    } else if rows > SQLITE_ROWS_PER_INSERT {
        SQLITE_ROWS_PER_INSERT
    } else {
        rows
    }
}

/// `INSERT INTO table (columns) VALUES (...), (...)` with `rows` rows of
/// `count` placeholders each.
pub(crate) fn values_insert_sql(
    dialect: Dialect,
    table: &str,
    columns: &str,
    count: usize,
    rows: usize,
) -> String {
    let values = (0..rows)
        .map(|r| format!("({})", placeholders(dialect, r * count + 1, count)))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO {table} ({columns}) VALUES {values}")
}

/// One column of `rows`, bound as an array for [`unnest_insert_sql`].
#[cfg(feature = "postgres")]
pub(crate) fn column<'a, T, U>(rows: &'a [T], value: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(value).collect()
}

/// NotFound when an UPDATE touched no row.
pub(crate) fn require_row(
    affected: u64,
    entity: &'static str,
    key: impl std::fmt::Display,
) -> Result<()> {
    if affected == 0 {
        return Err(Error::not_found(entity, key));
    }
    Ok(())
}

/// Cursor of a `(timestamp, id)` keyset: `"<rfc3339>|<uuid>"`.
pub(crate) fn time_id_cursor(at: DateTime<Utc>, id: impl Into<uuid::Uuid>) -> String {
    format!(
        "{}|{}",
        at.to_rfc3339_opts(SecondsFormat::Micros, true),
        id.into()
    )
}

pub(crate) fn parse_time_id_cursor(cursor: &str) -> Result<(DateTime<Utc>, ResourceId)> {
    let invalid = || Error::invalid("cursor", "is not a cursor returned by a previous page");
    let (at, id) = cursor.split_once('|').ok_or_else(invalid)?;
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|_| invalid())?
        .with_timezone(&Utc);
    let id = id.parse::<ResourceId>().map_err(|_| invalid())?;
    Ok((at, id))
}

/// Adds `(time_col, id) > (?, ?)` (or `<` for descending) after a cursor.
pub(crate) fn after_time_id(
    filter: Filter,
    time_col: &str,
    id_col: &str,
    cursor: Option<&str>,
    descending: bool,
) -> Result<Filter> {
    let Some(cursor) = cursor else {
        return Ok(filter);
    };
    let (at, id) = parse_time_id_cursor(cursor)?;
    let op = if descending { "<" } else { ">" };
    Ok(filter.clause(
        format!("({time_col}, {id_col}) {op} (?, ?)"),
        vec![Value::Time(at), Value::Id(id)],
    ))
}

/// Runs `head` (a `SELECT ... WHERE <condition>`) with the filter's clauses,
/// `ORDER BY order_by` and `LIMIT limit + 1` (the look-ahead row that tells
/// whether another page follows).
pub(crate) async fn fetch_page<R>(
    conn: &mut Conn<'_>,
    head: &str,
    filter: &Filter,
    order_by: &str,
    limit: u32,
) -> Result<Vec<R>>
where
    R: BackendRow,
{
    let (clauses, next) = filter.render(1);
    let sql = format!("{head}{clauses} ORDER BY {order_by} LIMIT ${next}");
    let fetch = i64::from(limit) + 1;
    Ok(on_conn!(conn, |c| bind_values!(
        sqlx::query_as::<_, R>(AssertSqlSafe(sql)),
        &filter.values
    )
    .bind(fetch)
    .fetch_all(&mut *c)
    .await)?)
}

/// Runs `head` with the filter's clauses and returns every row (small sets).
pub(crate) async fn fetch_all<R>(
    conn: &mut Conn<'_>,
    head: &str,
    filter: &Filter,
    tail: &str,
) -> Result<Vec<R>>
where
    R: BackendRow,
{
    let (clauses, _) = filter.render(1);
    let sql = format!("{head}{clauses}{tail}");
    Ok(on_conn!(conn, |c| bind_values!(
        sqlx::query_as::<_, R>(AssertSqlSafe(sql)),
        &filter.values
    )
    .fetch_all(&mut *c)
    .await)?)
}

/// Rows shared by everyone (`column IS NULL`) or of one of `orgs`; no
/// restriction when `orgs` is None (a global administrator).
pub(crate) fn shared_or_in_orgs(
    filter: Filter,
    column: &str,
    orgs: Option<&Vec<crate::model::OrganizationId>>,
) -> Filter {
    match orgs {
        None => filter,
        Some(orgs) if orgs.is_empty() => filter.clause(format!("{column} IS NULL"), Vec::new()),
        Some(orgs) => filter.clause(
            format!("{column} IS NULL OR {column} IN ({})", marks(orgs.len())),
            orgs.iter()
                .map(|id| Value::Id(ResourceId(id.as_uuid())))
                .collect(),
        ),
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::store::certificates::Certificates;

    /// The SQLite statement sizes `insert_rows` takes for `total` rows.
    fn statement_sizes(total: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut rest = total;
        while rest > 0 {
            let rows = sqlite_statement_rows::<Certificates>(rest);
            assert!((1..=rest).contains(&rows), "{rows} rows of {rest} left");
            sizes.push(rows);
            rest -= rows;
        }
        sizes
    }

    #[test]
    fn sqlite_inserts_use_few_small_statement_texts_for_any_batch_size() {
        assert_eq!(statement_sizes(1), vec![1]);
        assert_eq!(statement_sizes(64), vec![64]);
        assert_eq!(statement_sizes(100), vec![64, 32, 4]);
        assert_eq!(statement_sizes(1500).iter().sum::<usize>(), 1500);
        let mut texts = std::collections::BTreeSet::new();
        for total in 1..=3000 {
            let sizes = statement_sizes(total);
            assert!(sizes.iter().all(|&n| n <= SQLITE_ROWS_PER_INSERT));
            texts.extend(sizes);
        }
        assert_eq!(texts.len(), 7, "statement sizes seen: {texts:?}");
        assert_eq!(sqlite_rows_of(64, 0), 0);
        assert_eq!(
            sqlite_rows_of(0, 5),
            1,
            "a statement takes one row at least"
        );
    }
}
