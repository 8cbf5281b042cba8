//! `secure_audit_log` and `audit_log`: two append-only trails of the same
//! shape. Nothing here updates, and the one delete is the archive's
//! [`delete_archived`]; the database refuses anything else.

use sqlx::AssertSqlSafe;

use crate::db::{Conn, Dialect, Lock};
use crate::model::{AuditEvent, OrganizationId, ResourceId, Timestamp, UserId};
use crate::store::support::{
    MAX_BIND_PARAMS, fetch_all, fetch_page, in_ids_opt, values_insert_sql,
};
#[cfg(feature = "postgres")]
use crate::store::support::{PgInsert, column, unnest_insert_sql_from};
use crate::store::{Filter, Page, PageRequest, Value, id_value, paginate};
use crate::{Error, Result, exec, on_conn, table};

table!(SecureAuditLog, AuditEvent, "secure_audit_log", "secure audit event", id = crate::model::AuditId, SOFT_DELETE: bool = false);

/// `HasId` for `AuditEvent` comes from the first marker; the second only needs `Table`.
pub struct AuditLog;
impl crate::store::Table for AuditLog {
    const NAME: &'static str = "audit_log";
    const ENTITY: &'static str = "audit event";
    const SOFT_DELETE: bool = false;
    type Row = AuditEvent;
    type Id = crate::model::AuditId;
}

/// Which trail: `Secure` lives in the secure database, `Core` in the core one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuditLogKind {
    /// The secure database's trail (keys, certificates, revocations).
    Secure,
    /// The core database's trail (identity, policies, workflows).
    Core,
}

impl AuditLogKind {
    /// The trail's table name (`secure_audit_log` or `audit_log`).
    pub fn table(self) -> &'static str {
        match self {
            AuditLogKind::Secure => "secure_audit_log",
            AuditLogKind::Core => "audit_log",
        }
    }
}

/// Serializes appends to one chain until the transaction ends.
pub(crate) async fn lock_chain(conn: &mut Conn<'_>, kind: AuditLogKind) -> Result<()> {
    let lock = match kind {
        AuditLogKind::Secure => Lock::SecureAuditChain,
        AuditLogKind::Core => Lock::CoreAuditChain,
    };
    conn.lock_for_transaction(lock, true).await
}

/// The one sanctioned delete from an audit table. PostgreSQL: the
/// `archive_<table>_rows` function (SECURITY DEFINER, owned by the schema's
/// owner; migration 0002 core / 0004 secure) deletes only what the
/// `audit.archived` record just appended accounts for; the application's
/// own role cannot delete at all. SQLite: the delete trigger is dropped and
/// recreated inside the same transaction (whoever opens the file can do
/// anything; checkpoints detect it).
pub(crate) async fn delete_archived(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    through: i64,
) -> Result<()> {
    let table = kind.table();
    match conn.dialect() {
        Dialect::Postgres => {
            exec!(conn, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT archive_{table}_rows($1)"
            )))
            .bind(through))?;
        }
        Dialect::Sqlite => {
            let trigger = format!("trg_{table}_append_only_delete");
            exec!(conn, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP TRIGGER {trigger}"
            ))))?;
            exec!(conn, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE sequence_number <= $1"
            )))
            .bind(through))?;
            exec!(conn, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE TRIGGER {trigger} BEFORE DELETE ON {table} FOR EACH ROW BEGIN \
                 SELECT RAISE(ABORT, '{table} is append-only: DELETE is not allowed'); END"
            ))))?;
        }
    }
    Ok(())
}

/// What an audit listing may filter on; every field set must match.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    /// Only events by this user (acting directly or through one of their API keys).
    pub user_id: Option<UserId>,
    /// Only events on this kind of resource (`certificate`, `user`, `policy`).
    pub resource_type: Option<String>,
    /// Only events on this resource (its primary key).
    pub resource_id: Option<ResourceId>,
    /// Only events of this type (`certificate.revoked`).
    pub event_type: Option<String>,
    /// Only events in these organizations; the actor's reach narrows it further.
    pub organization_ids: Option<Vec<OrganizationId>>,
    /// `event_timestamp >= since`.
    pub since: Option<Timestamp>,
    /// `event_timestamp < until`.
    pub until: Option<Timestamp>,
}

const APPEND_COLUMNS: &str = "id, sequence_number, event_type, action, outcome, actor_type, user_id,
    api_key_id, organization_id, resource_type, resource_id, details, event_timestamp, previous_hash,
    row_hash, created_at";
const APPEND_COLUMN_COUNT: usize = 16;

/// Binds one event's [`APPEND_COLUMNS`] in order.
macro_rules! bind_event {
    ($query:expr, $e:expr) => {
        $query
            .bind($e.id)
            .bind($e.sequence_number)
            .bind(&$e.event_type)
            .bind(&$e.action)
            .bind($e.outcome)
            .bind($e.actor_type)
            .bind($e.user_id)
            .bind($e.api_key_id)
            .bind($e.organization_id)
            .bind(&$e.resource_type)
            .bind($e.resource_id)
            .bind(&$e.details)
            .bind($e.event_timestamp)
            .bind(&$e.previous_hash)
            .bind(&$e.row_hash)
            .bind($e.created_at)
    };
}

/// Appends events, already chained by the service (sequence numbers and
/// hashes are the caller's): on PostgreSQL one statement of column arrays,
/// on SQLite multi-row INSERTs under its bind limit. A duplicate sequence
/// number fails as AlreadyExists.
pub async fn append_many(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    events: &[AuditEvent],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    // The VALUES path below serves SQLite (and would serve PostgreSQL).
    #[cfg(feature = "postgres")]
    #[cfg_attr(not(feature = "sqlite"), allow(irrefutable_let_patterns))]
    if let Conn::Postgres(c) = conn {
        append_unnest(c, kind, events, None).await?;
        return Ok(());
    }
    for chunk in events.chunks(MAX_BIND_PARAMS / APPEND_COLUMN_COUNT) {
        let sql = values_insert_sql(
            conn.dialect(),
            kind.table(),
            APPEND_COLUMNS,
            APPEND_COLUMN_COUNT,
            chunk.len(),
        );
        exec!(conn, |c| {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for event in chunk {
                query = bind_event!(query, event);
            }
            query
        })
        .map_err(|err| duplicate_as_already_exists(kind, err.into()))?;
    }
    Ok(())
}

/// PostgreSQL's append: one statement of column arrays. With `after`
/// (a head the caller believes current: sequence number and row hash) the
/// rows go in only if that row is the chain's last; returns whether they
/// went in (without `after`, always).
#[cfg(feature = "postgres")]
async fn append_unnest(
    c: &mut sqlx::PgConnection,
    kind: AuditLogKind,
    events: &[AuditEvent],
    after: Option<(i64, &str)>,
) -> Result<bool> {
    let sql = append_sql_from(kind, 1, after.is_some());
    let query = bind_append(sqlx::query(AssertSqlSafe(sql)), events, after);
    let inserted = query.execute(&mut *c).await?.rows_affected();
    Ok(after.is_none() || usize::try_from(inserted).is_ok_and(|n| n == events.len()))
}

/// How many placeholders [`append_sql_from`] takes.
#[cfg(feature = "postgres")]
pub(crate) fn append_placeholders(conditional: bool) -> usize {
    APPEND_COLUMN_COUNT.saturating_add(if conditional { 2 } else { 0 })
}

/// PostgreSQL's append statement, its placeholders numbered from `first`:
/// column arrays, and when `conditional` the head the rows must follow
/// (sequence number, row hash), checked in the same statement. Bound by
/// [`bind_append`].
#[cfg(feature = "postgres")]
pub(crate) fn append_sql_from(kind: AuditLogKind, first: usize, conditional: bool) -> String {
    let table = kind.table();
    let mut sql = unnest_insert_sql_from(table, APPEND_COLUMNS, first, APPEND_COLUMN_COUNT);
    if conditional {
        let head = first.saturating_add(APPEND_COLUMN_COUNT);
        let hash = head.saturating_add(1);
        // max() is answered from the end of the sequence index whatever the
        // parameters; `NOT EXISTS (... sequence_number > $n)` was planned,
        // generically, as a scan of the whole chain.
        sql.push_str(&format!(
            " WHERE EXISTS (SELECT 1 FROM {table} WHERE sequence_number = ${head} AND row_hash = ${hash})
               AND (SELECT max(sequence_number) FROM {table}) = ${head}"
        ));
    }
    sql
}

/// Binds `events` (and the head they must follow) for [`append_sql_from`].
#[cfg(feature = "postgres")]
pub(crate) fn bind_append<'q>(
    query: PgInsert<'q>,
    events: &'q [AuditEvent],
    after: Option<(i64, &'q str)>,
) -> PgInsert<'q> {
    let query = query
        .bind(column(events, |e| e.id))
        .bind(column(events, |e| e.sequence_number))
        .bind(column(events, |e| e.event_type.as_str()))
        .bind(column(events, |e| e.action.as_str()))
        .bind(column(events, |e| e.outcome.as_str()))
        .bind(column(events, |e| e.actor_type.as_str()))
        .bind(column(events, |e| e.user_id))
        .bind(column(events, |e| e.api_key_id))
        .bind(column(events, |e| e.organization_id))
        .bind(column(events, |e| e.resource_type.as_deref()))
        .bind(column(events, |e| e.resource_id))
        .bind(column(events, |e| &e.details))
        .bind(column(events, |e| e.event_timestamp))
        .bind(column(events, |e| e.previous_hash.as_str()))
        .bind(column(events, |e| e.row_hash.as_str()))
        .bind(column(events, |e| e.created_at));
    match after {
        Some((sequence_number, row_hash)) => query.bind(sequence_number).bind(row_hash),
        None => query,
    }
}

/// [`append_many`] on the condition that the chain's last row is `after`
/// (sequence number and row hash), checked in the same statement: a writer
/// holding the chain's lock that remembers the head it wrote last appends
/// without reading it first. Returns false, having written nothing, when
/// the head has moved (another writer, a rolled-back append): the caller
/// reads the head and chains again. SQLite reads its head locally at no
/// round trip's cost, so there this is the caller's cue to do that.
pub async fn append_many_after(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    after: (i64, &str),
    events: &[AuditEvent],
) -> Result<bool> {
    if events.is_empty() {
        return Ok(true);
    }
    match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => append_unnest(c, kind, events, Some(after)).await,
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(_) => {
            let _ = (kind, after);
            Ok(false)
        }
    }
}

/// SQLite's no-replace trigger (migration 0002 core / 0004 secure) refuses
/// a colliding insert before the unique index can: still a duplicate.
fn duplicate_as_already_exists(kind: AuditLogKind, err: Error) -> Error {
    match err {
        Error::Conflict(message, source) if message.contains("may not be replaced") => {
            Error::AlreadyExists {
                entity: match kind {
                    AuditLogKind::Secure => "secure audit event",
                    AuditLogKind::Core => "audit event",
                }
                .to_string(),
                field: "sequence_number".to_string(),
                source,
            }
        }
        other => other,
    }
}

/// Appends one event (see [`append_many`]).
pub async fn append(conn: &mut Conn<'_>, kind: AuditLogKind, event: &AuditEvent) -> Result<()> {
    append_many(conn, kind, std::slice::from_ref(event)).await
}

/// The chain's head: sequence number and row hash of the last event.
pub async fn head(conn: &mut Conn<'_>, kind: AuditLogKind) -> Result<Option<(i64, String)>> {
    let sql = format!(
        "SELECT sequence_number, row_hash FROM {} ORDER BY sequence_number DESC LIMIT 1",
        kind.table()
    );
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, (i64, String)>(
        AssertSqlSafe(sql)
    )
    .fetch_optional(&mut *c)
    .await)?)
}

/// The event with the highest sequence number (the chain's head).
pub async fn last(conn: &mut Conn<'_>, kind: AuditLogKind) -> Result<Option<AuditEvent>> {
    let sql = format!(
        "SELECT * FROM {} ORDER BY sequence_number DESC LIMIT 1",
        kind.table()
    );
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, AuditEvent>(
        AssertSqlSafe(sql)
    )
    .fetch_optional(&mut *c)
    .await)?)
}

/// Newest first; the cursor is the last sequence number seen.
pub async fn list_audit(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<AuditEvent>> {
    let limit = page.effective_limit()?;
    let mut f = Filter::new()
        .eq_opt("user_id", filter.user_id.map(id_value))
        .eq_opt("resource_type", filter.resource_type.clone())
        .eq_opt("resource_id", filter.resource_id.map(id_value))
        .eq_opt("event_type", filter.event_type.clone());
    f = in_ids_opt(f, "organization_id", filter.organization_ids.as_ref());
    if let Some(since) = filter.since {
        f = f.clause("event_timestamp >= ?", vec![Value::Time(since)]);
    }
    if let Some(until) = filter.until {
        f = f.clause("event_timestamp < ?", vec![Value::Time(until)]);
    }
    if let Some(cursor) = &page.cursor {
        let before: i64 = cursor
            .parse()
            .map_err(|_| Error::invalid("cursor", "is not a cursor returned by a previous page"))?;
        f = f.clause("sequence_number < ?", vec![Value::Int(before)]);
    }
    let head = format!("SELECT * FROM {} WHERE 1 = 1", kind.table());
    let mut rows = fetch_page(conn, &head, &f, "sequence_number DESC", limit).await?;
    Ok(paginate(&mut rows, limit, |e: &AuditEvent| {
        e.sequence_number.to_string()
    }))
}

/// Up to `limit` events after `after_sequence`, oldest first: chain verification
/// walks the whole trail with this.
pub async fn walk(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    after_sequence: i64,
    limit: u32,
) -> Result<Vec<AuditEvent>> {
    let head = format!("SELECT * FROM {} WHERE 1 = 1", kind.table());
    let tail = format!(" ORDER BY sequence_number LIMIT {}", limit.max(1));
    fetch_all(
        conn,
        &head,
        &Filter::new().clause("sequence_number > ?", vec![Value::Int(after_sequence)]),
        &tail,
    )
    .await
}

/// Every event of one type, oldest first (archive runs are few).
pub async fn by_event_type(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    event_type: &str,
) -> Result<Vec<AuditEvent>> {
    let sql = format!(
        "SELECT * FROM {} WHERE event_type = $1 ORDER BY sequence_number",
        kind.table()
    );
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, AuditEvent>(
        AssertSqlSafe(sql)
    )
    .bind(event_type)
    .fetch_all(&mut *c)
    .await)?)
}

/// The highest sequence number of an event older than `cutoff`.
pub async fn last_sequence_before(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    cutoff: Timestamp,
) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT MAX(sequence_number) FROM {} WHERE event_timestamp < $1",
        kind.table()
    );
    Ok(on_conn!(conn, |c| sqlx::query_scalar::<_, Option<i64>>(
        AssertSqlSafe(sql)
    )
    .bind(cutoff)
    .fetch_one(&mut *c)
    .await)?)
}

/// The event with sequence number `sequence`, if the chain still holds it.
pub async fn by_sequence(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    sequence: i64,
) -> Result<Option<AuditEvent>> {
    let sql = format!("SELECT * FROM {} WHERE sequence_number = $1", kind.table());
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, AuditEvent>(
        AssertSqlSafe(sql)
    )
    .bind(sequence)
    .fetch_optional(&mut *c)
    .await)?)
}
