//! Both audit trails: appends chained by hash, written inside the caller's
//! transaction; chain verification; archiving old events to JSON lines.

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::db::{Conn, Dialect, Pool};
use crate::model::{ActorType, AuditEvent, AuditId, AuditOutcome, OrganizationId, ResourceId};
use crate::service::actor::{Access, Actor, ActorKind};
use crate::store::audit::{self as audit_store, AuditFilter, AuditLogKind};
use crate::store::{Page, PageRequest, now};
use crate::{Clm, Error, Result, exec};

/// The hash a chain starts from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is chained.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub event_type: String,
    pub action: String,
    pub outcome: AuditOutcome,
    pub resource_type: Option<String>,
    pub resource_id: Option<ResourceId>,
    pub organization_id: Option<OrganizationId>,
    pub details: Value,
}

impl AuditEntry {
    /// `event_type` like `user.created`; `action` like `create`.
    pub fn new(event_type: impl Into<String>, action: impl Into<String>) -> Self {
        AuditEntry {
            event_type: event_type.into(),
            action: action.into(),
            outcome: AuditOutcome::Success,
            resource_type: None,
            resource_id: None,
            organization_id: None,
            details: json!({}),
        }
    }

    pub fn resource(mut self, resource_type: &str, id: impl Into<uuid::Uuid>) -> Self {
        self.resource_type = Some(resource_type.to_string());
        self.resource_id = Some(ResourceId(id.into()));
        self
    }

    pub fn org(mut self, organization: Option<OrganizationId>) -> Self {
        self.organization_id = organization;
        self
    }

    pub fn outcome(mut self, outcome: AuditOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Details must never hold secrets: callers pass ids, names and counts.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

fn actor_type(actor: &Actor) -> ActorType {
    match actor.kind {
        ActorKind::User(_) => ActorType::User,
        ActorKind::ApiKey { .. } => ActorType::ApiKey,
        ActorKind::System => ActorType::System,
    }
}

/// SHA-256 over the previous hash and the row's canonical content. serde_json
/// maps are sorted, so the same content always serializes the same way.
pub fn row_hash(event: &AuditEvent) -> String {
    let canonical = json!({
        "id": event.id,
        "sequence_number": event.sequence_number,
        "event_type": event.event_type,
        "action": event.action,
        "outcome": event.outcome,
        "actor_type": event.actor_type,
        "user_id": event.user_id,
        "api_key_id": event.api_key_id,
        "organization_id": event.organization_id,
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "details": event.details.0,
        "event_timestamp": event.event_timestamp.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    });
    let mut hasher = Sha256::new();
    hasher.update(event.previous_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// Serializes appends to one chain until the transaction ends. SQLite write
/// transactions already hold the database lock.
async fn lock_chain(conn: &mut Conn<'_>, kind: AuditLogKind) -> Result<()> {
    if let Conn::Postgres(pg) = conn {
        lock_chain_postgres(pg, kind).await?;
    }
    Ok(())
}

/// PostgreSQL's lock for one chain: an advisory transaction lock, so it waits
/// at most the transaction's `lock_timeout`.
async fn lock_chain_postgres(
    conn: &mut sqlx::PgConnection,
    kind: AuditLogKind,
) -> sqlx::Result<()> {
    let key: i64 = match kind {
        AuditLogKind::Secure => 0x636c_6d01,
        AuditLogKind::Core => 0x636c_6d02,
    };
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Appends one event inside the caller's transaction: no audit row, no action.
pub async fn append(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    actor: &Actor,
    entry: AuditEntry,
) -> Result<AuditEvent> {
    append_many(conn, kind, vec![(actor, entry)])
        .await?
        .pop()
        .ok_or_else(|| Error::Internal("audit append wrote no event".into()))
}

/// Appends events in order inside the caller's transaction: one chain lock,
/// one read of the chain's head and one insert for the lot, each row chained
/// by [`chain_next`] exactly as a single append chains it.
pub async fn append_many(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    entries: Vec<(&Actor, AuditEntry)>,
) -> Result<Vec<AuditEvent>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    lock_chain(conn, kind).await?;
    let mut head = audit_store::head(conn, kind).await?;
    let mut events = Vec::with_capacity(entries.len());
    for (actor, entry) in entries {
        let event = chain_next(head.as_ref(), actor, entry);
        head = Some((event.sequence_number, event.row_hash.clone()));
        events.push(event);
    }
    audit_store::append_many(conn, kind, &events).await?;
    Ok(events)
}

/// The rule of the chain: the event after `head` (sequence number and row
/// hash of the last row, None for an empty chain) takes the next sequence
/// number, links to the head's hash, and hashes itself with [`row_hash`].
fn chain_next(head: Option<&(i64, String)>, actor: &Actor, entry: AuditEntry) -> AuditEvent {
    let (sequence_number, previous_hash) = match head {
        Some((sequence, hash)) => (sequence + 1, hash.clone()),
        None => (1, GENESIS_HASH.to_string()),
    };
    let at = now();
    let mut event = AuditEvent {
        id: AuditId::new(),
        sequence_number,
        event_type: entry.event_type,
        action: entry.action,
        outcome: entry.outcome,
        actor_type: actor_type(actor),
        user_id: actor.user_id(),
        api_key_id: actor.api_key_id(),
        organization_id: entry.organization_id,
        resource_type: entry.resource_type,
        resource_id: entry.resource_id,
        details: sqlx::types::Json(entry.details),
        event_timestamp: at,
        previous_hash,
        row_hash: String::new(),
        created_at: at,
    };
    event.row_hash = row_hash(&event);
    event
}

/// Appends `entry` to the core log and commits: the common tail of a core
/// write, so the audit row and the change land together or not at all.
pub async fn commit_audited(mut tx: crate::db::Tx, actor: &Actor, entry: AuditEntry) -> Result<()> {
    append(&mut tx.conn(), AuditLogKind::Core, actor, entry).await?;
    tx.commit().await
}

/// The first problem found in a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    pub sequence_number: i64,
    pub reason: String,
}

/// Outcome of [`Clm::verify_audit_chain`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChainReport {
    pub log: &'static str,
    pub rows_checked: u64,
    pub first_sequence: Option<i64>,
    pub last_sequence: Option<i64>,
    pub broken: Option<ChainBreak>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

const VERIFY_BATCH: u32 = 1000;
pub const ARCHIVED_EVENT: &str = "audit.archived";

/// Walks a chain in sequence order in constant memory.
pub async fn verify_chain(pool: &Pool, kind: AuditLogKind) -> Result<ChainReport> {
    let mut conn = pool.acquire().await?;
    let mut report = ChainReport {
        log: kind.table(),
        rows_checked: 0,
        first_sequence: None,
        last_sequence: None,
        broken: None,
    };
    let anchors = archive_anchors(&mut conn.conn(), kind).await?;
    let mut expected_previous: Option<String> = None;
    let mut expected_sequence: Option<i64> = None;
    let mut after = 0i64;
    loop {
        let batch = audit_store::walk(&mut conn.conn(), kind, after, VERIFY_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for event in &batch {
            let sequence = event.sequence_number;
            let problem = match (&expected_previous, expected_sequence) {
                (None, _) => first_row_problem(event, &anchors),
                (Some(previous), Some(want)) if sequence != want => Some(format!(
                    "rows {want}..{} are missing (expected sequence {want}, found {sequence})",
                    sequence - 1
                )),
                (Some(previous), _) if &event.previous_hash != previous => {
                    Some("previous_hash does not match the hash of the row before".to_string())
                }
                _ => None,
            };
            let problem = problem.or_else(|| {
                (row_hash(event) != event.row_hash)
                    .then(|| "row content does not match its row_hash (altered)".to_string())
            });
            if let Some(reason) = problem {
                report.broken = Some(ChainBreak {
                    sequence_number: sequence,
                    reason,
                });
                return Ok(report);
            }
            report.first_sequence.get_or_insert(sequence);
            report.last_sequence = Some(sequence);
            report.rows_checked += 1;
            expected_previous = Some(event.row_hash.clone());
            expected_sequence = Some(sequence + 1);
            after = sequence;
        }
    }
    Ok(report)
}

/// `(through_sequence, anchor_hash)` of every archive run recorded in the chain.
async fn archive_anchors(conn: &mut Conn<'_>, kind: AuditLogKind) -> Result<Vec<(i64, String)>> {
    let events = audit_store::by_event_type(conn, kind, ARCHIVED_EVENT).await?;
    Ok(events
        .into_iter()
        .filter_map(|e| {
            let through = e.details.0.get("archived_through_sequence")?.as_i64()?;
            let anchor = e.details.0.get("anchor_hash")?.as_str()?.to_string();
            Some((through, anchor))
        })
        .collect())
}

fn first_row_problem(event: &AuditEvent, anchors: &[(i64, String)]) -> Option<String> {
    if event.sequence_number == 1 {
        return (event.previous_hash != GENESIS_HASH)
            .then(|| "first row does not start from the genesis hash".to_string());
    }
    let archived = anchors.iter().any(|(through, anchor)| {
        *through == event.sequence_number - 1 && *anchor == event.previous_hash
    });
    if archived {
        None
    } else {
        Some(format!(
            "rows 1..{} are missing and no archive run accounts for them",
            event.sequence_number - 1
        ))
    }
}

/// What an archive run moved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveReport {
    pub log: &'static str,
    pub archived: u64,
    pub through_sequence: Option<i64>,
    pub file: String,
}

impl Clm {
    /// Lists audit events, newest first. Outside a global administrator's
    /// reach only events of the actor's organizations (or its own) are shown.
    pub async fn list_audit_events(
        &self,
        actor: &Actor,
        kind: AuditLogKind,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        self.authorize(actor, Access::new("audit", "read")).await?;
        let mut filter = filter.clone();
        if let Some(orgs) = actor.organizations_where("audit", "read") {
            filter.organization_ids = Some(match filter.organization_ids.take() {
                Some(asked) => asked.into_iter().filter(|o| orgs.contains(o)).collect(),
                None => orgs,
            });
        }
        let pool = match kind {
            AuditLogKind::Secure => &self.databases().secure_read,
            AuditLogKind::Core => &self.databases().core_read,
        };
        let mut conn = pool.acquire().await?;
        audit_store::list_audit(&mut conn.conn(), kind, &filter, page).await
    }

    /// Recomputes every hash of a chain and reports the first broken link.
    pub async fn verify_audit_chain(
        &self,
        actor: &Actor,
        kind: AuditLogKind,
    ) -> Result<ChainReport> {
        self.authorize(actor, Access::new("audit", "verify"))
            .await?;
        let pool = match kind {
            AuditLogKind::Secure => &self.databases().secure,
            AuditLogKind::Core => &self.databases().core,
        };
        verify_chain(pool, kind).await
    }

    /// Moves events older than `older_than_days` to a JSON-lines file
    /// (appended), then deletes them. The run is itself recorded in the chain
    /// with the hash the remaining rows continue from, so the rest stays
    /// verifiable.
    pub async fn archive_audit_events(
        &self,
        actor: &Actor,
        kind: AuditLogKind,
        older_than_days: u32,
        file: &Path,
    ) -> Result<ArchiveReport> {
        self.authorize(actor, Access::new("audit", "archive"))
            .await?;
        let cutoff = now() - chrono::Duration::days(i64::from(older_than_days));
        let pool = match kind {
            AuditLogKind::Secure => &self.databases().secure,
            AuditLogKind::Core => &self.databases().core,
        };
        let mut tx = pool.begin().await?;
        lock_chain(&mut tx.conn(), kind).await?;
        let through = audit_store::last_sequence_before(&mut tx.conn(), kind, cutoff).await?;
        let Some(through) = through else {
            return Ok(ArchiveReport {
                log: kind.table(),
                archived: 0,
                through_sequence: None,
                file: file.display().to_string(),
            });
        };
        // Write the file first: if it fails, nothing is deleted.
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(|err| {
                Error::invalid("file", format!("cannot open {}: {err}", file.display()))
            })?;
        let mut after = 0i64;
        let mut anchor = GENESIS_HASH.to_string();
        let mut archived = 0u64;
        loop {
            let batch = audit_store::walk(&mut tx.conn(), kind, after, VERIFY_BATCH).await?;
            let batch: Vec<_> = batch
                .into_iter()
                .filter(|e| e.sequence_number <= through)
                .collect();
            if batch.is_empty() {
                break;
            }
            for event in &batch {
                let line = serde_json::to_string(event)?;
                writeln!(out, "{line}").map_err(|err| {
                    Error::invalid("file", format!("cannot write {}: {err}", file.display()))
                })?;
                anchor = event.row_hash.clone();
                after = event.sequence_number;
                archived += 1;
            }
        }
        out.sync_all().map_err(|err| {
            Error::invalid("file", format!("cannot sync {}: {err}", file.display()))
        })?;
        append(
            &mut tx.conn(),
            kind,
            actor,
            AuditEntry::new(ARCHIVED_EVENT, "archive").details(json!({
                "archived_through_sequence": through,
                "anchor_hash": anchor,
                "archived_rows": archived,
                "file": file.display().to_string(),
            })),
        )
        .await?;
        delete_archived(&mut tx.conn(), kind, through).await?;
        tx.commit().await?;
        Ok(ArchiveReport {
            log: kind.table(),
            archived,
            through_sequence: Some(through),
            file: file.display().to_string(),
        })
    }
}

/// The one sanctioned delete from an audit table: PostgreSQL's trigger lets it
/// through when the transaction sets `clm.audit_archive`; on SQLite the delete
/// trigger is dropped and recreated inside the same transaction.
async fn delete_archived(conn: &mut Conn<'_>, kind: AuditLogKind, through: i64) -> Result<()> {
    let table = kind.table();
    match conn.dialect() {
        Dialect::Postgres => {
            exec!(conn, |c| sqlx::query(
                "SELECT set_config('clm.audit_archive', 'on', true)"
            ))?;
            exec!(conn, |c| sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE sequence_number <= $1"
            )))
            .bind(through))?;
            exec!(conn, |c| sqlx::query(
                "SELECT set_config('clm.audit_archive', 'off', true)"
            ))?;
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
