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
use crate::{Clm, Error, Result};

/// The hash a chain starts from.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is chained.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// `<resource>.<past tense>`, e.g. `certificate.revoked`.
    pub event_type: String,
    /// The verb attempted, e.g. `revoke`.
    pub action: String,
    /// Success unless set with [`AuditEntry::outcome`] (refusals, failures).
    pub outcome: AuditOutcome,
    /// The kind of row acted on (`certificate`, `user`); None for none.
    pub resource_type: Option<String>,
    /// The primary key of the row acted on.
    pub resource_id: Option<ResourceId>,
    /// The organization of the row acted on (None: shared data); it decides
    /// which organization-bound audit readers see the event.
    pub organization_id: Option<OrganizationId>,
    /// Event-specific facts (never secrets), part of the hashed row.
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

    /// Sets the row acted on: its kind and primary key.
    pub fn resource(mut self, resource_type: &str, id: impl Into<uuid::Uuid>) -> Self {
        self.resource_type = Some(resource_type.to_string());
        self.resource_id = Some(ResourceId(id.into()));
        self
    }

    /// Sets the organization of the row acted on.
    pub fn org(mut self, organization: Option<OrganizationId>) -> Self {
        self.organization_id = organization;
        self
    }

    /// Sets the outcome (default success).
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

/// SHA-256 over the previous hash and the row's content in RFC 8785 (JCS)
/// canonical JSON, written by [`canonical::to_string`] rather than by
/// serde_json, whose key order depends on its features (`preserve_order`).
/// For the rows the library writes (string keys, integers, strings) this is
/// byte for byte what serde_json's sorted output was, so existing chains
/// verify unchanged; a row holding floats or keys beyond U+FFFF hashed
/// before this change would not (accepted before 1.0).
pub fn row_hash(event: &AuditEvent) -> String {
    let content = json!({
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
    hasher.update(canonical::to_string(&content).as_bytes());
    hex::encode(hasher.finalize())
}

/// RFC 8785 JSON Canonicalization Scheme: object members sorted by their
/// names' UTF-16 code units, no whitespace, minimal string escaping, numbers
/// as ECMAScript writes them. Independent of how the `Value` was built.
pub mod canonical {
    use serde_json::{Number, Value};

    /// `value` as RFC 8785 canonical JSON text.
    pub fn to_string(value: &Value) -> String {
        let mut out = String::new();
        write_value(&mut out, value);
        out
    }

    fn write_value(out: &mut String, value: &Value) {
        match value {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => write_number(out, n),
            Value::String(s) => write_string(out, s),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_value(out, item);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                out.push('{');
                for (i, (key, item)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    write_value(out, item);
                }
                out.push('}');
            }
        }
    }

    fn write_string(out: &mut String, s: &str) {
        out.reserve(s.len().saturating_add(2));
        out.push('"');
        // Copy runs that need no escape whole; every escape is ASCII, so
        // byte positions are always character boundaries.
        let mut run_start = 0;
        for (at, byte) in s.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                0x08 => "\\b",
                b'\t' => "\\t",
                b'\n' => "\\n",
                0x0c => "\\f",
                b'\r' => "\\r",
                0x00..=0x1f => "",
                _ => continue,
            };
            out.push_str(&s[run_start..at]);
            if escape.is_empty() {
                out.push_str(&format!("\\u{byte:04x}"));
            } else {
                out.push_str(escape);
            }
            run_start = at.saturating_add(1);
        }
        out.push_str(&s[run_start..]);
        out.push('"');
    }

    /// Integers are written exactly. JCS would pass integers beyond 2^53
    /// through a double and lose digits; keeping them exact means two
    /// different values never hash alike (the only departure from RFC 8785,
    /// and only for numbers it cannot represent).
    fn write_number(out: &mut String, n: &Number) {
        if let Some(i) = n.as_i64() {
            out.push_str(&i.to_string());
        } else if let Some(u) = n.as_u64() {
            out.push_str(&u.to_string());
        } else if let Some(f) = n.as_f64() {
            out.push_str(&es6_number(f));
        } else {
            // Only reachable with serde_json's arbitrary_precision: its text.
            out.push_str(&n.to_string());
        }
    }

    /// ECMAScript's Number::toString for a finite double (RFC 8785 3.2.2.3):
    /// the shortest digits that read back to the same double, placed by the
    /// exponent rules of ECMA-262 7.1.12.1.
    pub fn es6_number(f: f64) -> String {
        if f == 0.0 || !f.is_finite() {
            // serde_json holds no NaN or infinity; -0 is written as 0.
            return "0".to_string();
        }
        // `{:e}` gives the shortest round-trip digits: d[.ddd]e<exp>.
        let sci = format!("{:e}", f.abs());
        let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
        let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let k = i32::try_from(digits.len()).unwrap_or(i32::MAX);
        let n = exponent.saturating_add(1);
        let mut out = String::new();
        if f < 0.0 {
            out.push('-');
        }
        if k <= n && n <= 21 {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n(
                '0',
                usize::try_from(n.saturating_sub(k)).unwrap_or(0),
            ));
        } else if 0 < n && n <= 21 {
            out.push_str(&digits[..n as usize]);
            out.push('.');
            out.push_str(&digits[n as usize..]);
        } else if -6 < n && n <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n(
                '0',
                usize::try_from(n.saturating_neg()).unwrap_or(0),
            ));
            out.push_str(&digits);
        } else {
            out.push_str(&digits[..1]);
            if k > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push('e');
            let shown = n.saturating_sub(1);
            out.push(if shown < 0 { '-' } else { '+' });
            out.push_str(&shown.unsigned_abs().to_string());
        }
        out
    }
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
/// by `chain_next` exactly as a single append chains it.
pub async fn append_many(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    entries: Vec<(&Actor, AuditEntry)>,
) -> Result<Vec<AuditEvent>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    audit_store::lock_chain(conn, kind).await?;
    append_after_head(conn, kind, entries).await
}

/// Reads the chain's head and appends `entries` after it (the chain's lock
/// is held).
async fn append_after_head(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    entries: Vec<(&Actor, AuditEntry)>,
) -> Result<Vec<AuditEvent>> {
    let head = audit_store::head(conn, kind).await?;
    let events = chain_after(head, entries)?;
    failpoint!("audit.append")?;
    audit_store::append_many(conn, kind, &events).await?;
    Ok(events)
}

/// The heads of both chains as the certificate writer last wrote them:
/// a guess, checked by the database in the statement that appends.
#[derive(Default)]
pub(crate) struct RememberedHeads {
    secure: std::sync::Mutex<Option<(i64, String)>>,
    core: std::sync::Mutex<Option<(i64, String)>>,
}

impl RememberedHeads {
    fn slot(&self, kind: AuditLogKind) -> &std::sync::Mutex<Option<(i64, String)>> {
        match kind {
            AuditLogKind::Secure => &self.secure,
            AuditLogKind::Core => &self.core,
        }
    }

    /// A poisoned slot is no guess: the head is read instead.
    fn get(&self, kind: AuditLogKind) -> Option<(i64, String)> {
        self.slot(kind).lock().ok().and_then(|head| head.clone())
    }

    fn set(&self, kind: AuditLogKind, head: Option<(i64, String)>) {
        if let Ok(mut slot) = self.slot(kind).lock() {
            *slot = head;
        }
    }
}

/// [`append_many`] in a transaction that already holds the chain's lock
/// (begun by `Pool::begin_secure_half` or `Pool::begin_core_half`), chained
/// after the head `heads` remembers when the database confirms it in the
/// appending statement (PostgreSQL): the issuance path then pays no round
/// trip to read the head. When the head moved (another writer; an append
/// whose transaction rolled back) it is read and the rows chained again.
pub(crate) async fn append_many_chain_held(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    entries: Vec<(&Actor, AuditEntry)>,
    heads: &RememberedHeads,
) -> Result<Vec<AuditEvent>> {
    let guess = chain_after_remembered(conn.dialect(), kind, &entries, heads)?;
    let appended = match &guess {
        Some(guess) => {
            audit_store::append_many_after(conn, kind, guess.head(), &guess.events).await?
        }
        None => false,
    };
    settle_chain_held(conn, kind, entries, heads, guess, appended).await
}

/// Events chained after the head a writer remembers, to be appended on the
/// condition that it is still the chain's head (see
/// [`append_many_chain_held`]).
pub(crate) struct ChainGuess {
    head: (i64, String),
    pub(crate) events: Vec<AuditEvent>,
}

impl ChainGuess {
    /// The head the events follow: sequence number and row hash.
    pub(crate) fn head(&self) -> (i64, &str) {
        (self.head.0, &self.head.1)
    }

    /// The events as the one-statement issuance write takes them.
    #[cfg(feature = "postgres")]
    pub(crate) fn as_audit_after(&self) -> crate::store::issuance::AuditAfter<'_> {
        crate::store::issuance::AuditAfter {
            head: self.head(),
            events: &self.events,
        }
    }
}

/// `entries` chained after the remembered head, when there is one and the
/// database can check it in the appending statement (PostgreSQL).
pub(crate) fn chain_after_remembered(
    dialect: Dialect,
    kind: AuditLogKind,
    entries: &[(&Actor, AuditEntry)],
    heads: &RememberedHeads,
) -> Result<Option<ChainGuess>> {
    if entries.is_empty() || dialect != Dialect::Postgres {
        return Ok(None);
    }
    let Some(head) = heads.get(kind) else {
        return Ok(None);
    };
    let events = chain_after(Some(head.clone()), entries.to_vec())?;
    failpoint!("audit.append")?;
    Ok(Some(ChainGuess { head, events }))
}

/// Ends a conditional append: when the guessed events went in, remembers
/// the head after them; else reads the chain's head and appends `entries`
/// after it.
pub(crate) async fn settle_chain_held(
    conn: &mut Conn<'_>,
    kind: AuditLogKind,
    entries: Vec<(&Actor, AuditEntry)>,
    heads: &RememberedHeads,
    guess: Option<ChainGuess>,
    appended: bool,
) -> Result<Vec<AuditEvent>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let events = match guess {
        Some(guess) if appended => guess.events,
        _ => append_after_head(conn, kind, entries).await?,
    };
    heads.set(kind, last_link(&events));
    Ok(events)
}

/// `entries` chained in order after `head`.
fn chain_after(
    mut head: Option<(i64, String)>,
    entries: Vec<(&Actor, AuditEntry)>,
) -> Result<Vec<AuditEvent>> {
    let mut events = Vec::with_capacity(entries.len());
    for (actor, entry) in entries {
        let event = chain_next(head.as_ref(), actor, entry)?;
        head = Some((event.sequence_number, event.row_hash.clone()));
        events.push(event);
    }
    Ok(events)
}

/// The head after `events`: the last one's sequence number and hash.
fn last_link(events: &[AuditEvent]) -> Option<(i64, String)> {
    events
        .last()
        .map(|event| (event.sequence_number, event.row_hash.clone()))
}

/// The rule of the chain: the event after `head` (sequence number and row
/// hash of the last row, None for an empty chain) takes the next sequence
/// number, links to the head's hash, and hashes itself with [`row_hash`].
fn chain_next(
    head: Option<&(i64, String)>,
    actor: &Actor,
    entry: AuditEntry,
) -> Result<AuditEvent> {
    let (sequence_number, previous_hash) = match head {
        Some((sequence, hash)) => {
            // The head is read from the database: never trust it to add safely.
            let next = sequence.checked_add(1).ok_or_else(|| {
                Error::Internal(format!("audit chain head {sequence} cannot be followed"))
            })?;
            (next, hash.clone())
        }
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
    Ok(event)
}

/// Appends `entry` to the core log and commits: the common tail of a core
/// write, so the audit row and the change land together or not at all.
pub async fn commit_audited(mut tx: crate::db::Tx, actor: &Actor, entry: AuditEntry) -> Result<()> {
    append(&mut tx.conn(), AuditLogKind::Core, actor, entry).await?;
    tx.commit().await
}

/// The first problem found in a chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ChainBreak {
    /// The row where verification stopped.
    pub sequence_number: i64,
    /// What is wrong there: rows missing, a broken link, altered content.
    pub reason: String,
}

/// Outcome of [`Clm::verify_audit_chain`].
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ChainReport {
    /// The table verified: `secure_audit_log` or `audit_log`.
    pub log: &'static str,
    /// Rows whose hash and link verified, before any break.
    pub rows_checked: u64,
    /// The oldest row still stored (above 1 once older rows are archived);
    /// None for an empty chain.
    pub first_sequence: Option<i64>,
    /// The newest row that verified; None for an empty chain.
    pub last_sequence: Option<i64>,
    /// The first problem; None when the whole chain verified.
    pub broken: Option<ChainBreak>,
}

impl ChainReport {
    /// Whether the chain verified end to end.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

const VERIFY_BATCH: u32 = 1000;
/// The event type of an archive run, the anchor later rows continue from.
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
                (Some(_), Some(want)) if sequence != want => Some(format!(
                    "rows {want}..{} are missing (expected sequence {want}, found {sequence})",
                    sequence.saturating_sub(1)
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
            report.rows_checked = report.rows_checked.saturating_add(1);
            expected_previous = Some(event.row_hash.clone());
            expected_sequence = sequence.checked_add(1);
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
    let before = event.sequence_number.saturating_sub(1);
    let archived = anchors
        .iter()
        .any(|(through, anchor)| *through == before && *anchor == event.previous_hash);
    if archived {
        None
    } else {
        Some(format!(
            "rows 1..{before} are missing and no archive run accounts for them"
        ))
    }
}

/// A signed statement of a chain's head, for the host to keep outside the
/// database (another system, a ticket, a WORM bucket). A later
/// [`Clm::verify_audit_chain_against_checkpoint`] fails when the chain no
/// longer holds that row as it was: removed newest rows, a rewritten chain.
///
/// Text form ([`AuditCheckpoint::to_text`]): RFC 8785 canonical JSON of the
/// seven fields, e.g. `{"created_at":"2026-01-02T03:04:05.123456Z",
/// "key_id":"local:…","log":"audit_log","row_hash":"<64 hex>",
/// "sequence_number":42,"signature":"<64 hex>","version":1}`. The
/// signature is hex HMAC-SHA256, under a key derived from the master key for
/// this purpose alone, of `clm audit checkpoint v1\n` followed by the
/// canonical JSON of the other six fields. An empty chain is sequence 0 with
/// the genesis hash.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpoint {
    /// Format version of the checkpoint, 1.
    pub version: u32,
    /// The table: `secure_audit_log` or `audit_log`.
    pub log: String,
    /// The chain's head when signed; 0 for an empty chain.
    pub sequence_number: i64,
    /// The head row's `row_hash` (64 hex); the genesis hash for an empty chain.
    pub row_hash: String,
    /// When the checkpoint was made, RFC 3339 UTC with microseconds.
    pub created_at: String,
    /// The master key's public identifier (never the key).
    pub key_id: String,
    /// Lowercase hex HMAC-SHA256 over the other fields (see the type).
    pub signature: String,
}

const CHECKPOINT_VERSION: u32 = 1;
const CHECKPOINT_KEY_PURPOSE: &str = "audit checkpoint";
const CHECKPOINT_DOMAIN: &[u8] = b"clm audit checkpoint v1\n";

impl AuditCheckpoint {
    /// The stable text form (see the type's documentation).
    pub fn to_text(&self) -> Result<String> {
        Ok(canonical::to_string(&serde_json::to_value(self)?))
    }

    /// Parses the text form; unknown or missing fields are InvalidInput.
    pub fn from_text(text: &str) -> Result<AuditCheckpoint> {
        serde_json::from_str(text)
            .map_err(|err| Error::invalid("checkpoint", format!("is not a checkpoint: {err}")))
    }

    /// What the signature covers: every field but the signature.
    fn signed_message(&self) -> Vec<u8> {
        let fields = json!({
            "version": self.version,
            "log": self.log,
            "sequence_number": self.sequence_number,
            "row_hash": self.row_hash,
            "created_at": self.created_at,
            "key_id": self.key_id,
        });
        [CHECKPOINT_DOMAIN, canonical::to_string(&fields).as_bytes()].concat()
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

fn checkpoint_mac(key: &crate::crypto::SecretBytes, message: &[u8]) -> Result<HmacSha256> {
    use hmac::{KeyInit, Mac};
    let mut mac = HmacSha256::new_from_slice(key.expose())
        .map_err(|_| Error::Internal("HMAC accepts any key length".into()))?;
    mac.update(message);
    Ok(mac)
}

/// What an archive run moved.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ArchiveReport {
    /// The table archived: `secure_audit_log` or `audit_log`.
    pub log: &'static str,
    /// Rows written to the file and deleted; 0 when none were old enough.
    pub archived: u64,
    /// The newest archived row's sequence number; None when nothing was archived.
    pub through_sequence: Option<i64>,
    /// The chain anchor: the row hash of the last archived row, which the
    /// file's last line carries and the chain's `audit.archived` record
    /// keeps, so the rows left in the database continue from it.
    pub anchor_hash: Option<String>,
    /// The file the rows were appended to (JSON lines).
    pub file: String,
}

impl Clm {
    /// Lists audit events, newest first. Outside a global administrator's
    /// reach only events of the actor's organizations (or its own) are shown.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
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
        let mut conn = match kind {
            AuditLogKind::Secure => self.databases().acquire_secure_read().await?,
            AuditLogKind::Core => self.databases().acquire_core_read().await?,
        };
        audit_store::list_audit(&mut conn.conn(), kind, &filter, page).await
    }

    /// Recomputes every hash of a chain and reports the first broken link.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
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

    /// The checkpoint key and the master key id it comes from.
    fn checkpoint_key(&self) -> Result<(crate::crypto::SecretBytes, String)> {
        let provider = self.keyring().provider()?;
        Ok((
            provider.derive_key(CHECKPOINT_KEY_PURPOSE)?,
            provider.master_key_id(),
        ))
    }

    /// Signs the current head of a chain (see [`AuditCheckpoint`]). Needs
    /// `audit:verify`; recorded in the core trail as `audit.checkpoint`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn audit_checkpoint(
        &self,
        actor: &Actor,
        kind: AuditLogKind,
    ) -> Result<AuditCheckpoint> {
        use hmac::Mac;
        self.authorize(actor, Access::new("audit", "verify"))
            .await?;
        let (key, key_id) = self.checkpoint_key()?;
        let head = {
            let mut conn = self.audit_pool(kind).acquire().await?;
            audit_store::head(&mut conn.conn(), kind).await?
        };
        let (sequence_number, row_hash) = head.unwrap_or((0, GENESIS_HASH.to_string()));
        let mut checkpoint = AuditCheckpoint {
            version: CHECKPOINT_VERSION,
            log: kind.table().to_string(),
            sequence_number,
            row_hash,
            created_at: now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            key_id,
            signature: String::new(),
        };
        let mac = checkpoint_mac(&key, &checkpoint.signed_message())?;
        checkpoint.signature = hex::encode(mac.finalize().into_bytes());
        let tx = self.databases().core.begin().await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("audit.checkpoint", "checkpoint").details(json!({
                "log": checkpoint.log,
                "sequence_number": checkpoint.sequence_number,
                "row_hash": checkpoint.row_hash,
            })),
        )
        .await?;
        Ok(checkpoint)
    }

    /// [`Clm::verify_audit_chain`], and that the chain still holds the row a
    /// checkpoint signed, unchanged: a chain cut short or rewritten after
    /// the checkpoint is reported broken. A checkpoint that is not for
    /// `kind`, not signed by this master key, or altered is InvalidInput.
    /// Needs `audit:verify`; recorded as `audit.checkpoint_verified`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn verify_audit_chain_against_checkpoint(
        &self,
        actor: &Actor,
        kind: AuditLogKind,
        checkpoint: &AuditCheckpoint,
    ) -> Result<ChainReport> {
        self.authorize(actor, Access::new("audit", "verify"))
            .await?;
        let outcome = self.check_against_checkpoint(kind, checkpoint).await;
        let (result, details) = match &outcome {
            Ok(report) => (
                if report.is_intact() {
                    AuditOutcome::Success
                } else {
                    AuditOutcome::Failure
                },
                json!({"broken": report.broken}),
            ),
            Err(err) => (AuditOutcome::Failure, json!({"error": err.to_string()})),
        };
        let tx = self.databases().core.begin().await?;
        let mut details = details;
        details["log"] = json!(kind.table());
        details["sequence_number"] = json!(checkpoint.sequence_number);
        commit_audited(
            tx,
            actor,
            AuditEntry::new("audit.checkpoint_verified", "verify")
                .outcome(result)
                .details(details),
        )
        .await?;
        outcome
    }

    async fn check_against_checkpoint(
        &self,
        kind: AuditLogKind,
        checkpoint: &AuditCheckpoint,
    ) -> Result<ChainReport> {
        use hmac::Mac;
        if checkpoint.version != CHECKPOINT_VERSION {
            return Err(Error::invalid(
                "checkpoint.version",
                format!("must be {CHECKPOINT_VERSION}, got {}", checkpoint.version),
            ));
        }
        if checkpoint.log != kind.table() {
            return Err(Error::invalid(
                "checkpoint.log",
                format!("is {}, not {}", checkpoint.log, kind.table()),
            ));
        }
        let (key, key_id) = self.checkpoint_key()?;
        if checkpoint.key_id != key_id {
            return Err(Error::invalid(
                "checkpoint.key_id",
                format!(
                    "the checkpoint was signed under master key {}, this handle holds {key_id}",
                    checkpoint.key_id
                ),
            ));
        }
        let signature = hex::decode(&checkpoint.signature).unwrap_or_default();
        checkpoint_mac(&key, &checkpoint.signed_message())?
            .verify_slice(&signature)
            .map_err(|_| {
                Error::invalid(
                    "checkpoint.signature",
                    "does not verify: the checkpoint was altered or not made by this master key",
                )
            })?;
        let pool = self.audit_pool(kind);
        let mut report = verify_chain(pool, kind).await?;
        if !report.is_intact() || checkpoint.sequence_number == 0 {
            return Ok(report);
        }
        let seen = checkpoint.sequence_number;
        let row = {
            let mut conn = pool.acquire().await?;
            audit_store::by_sequence(&mut conn.conn(), kind, seen).await?
        };
        let reason = match row {
            Some(row) if row.row_hash == checkpoint.row_hash => None,
            Some(_) => Some(format!(
                "row {seen} is not the row the checkpoint signed (the chain was rewritten)"
            )),
            None if report.last_sequence.is_none_or(|last| last < seen) => Some(format!(
                "the chain ends at {} but the checkpoint signed row {seen}: newer rows were removed",
                report.last_sequence.unwrap_or(0)
            )),
            None => Some(format!(
                "row {seen} is no longer in the database (archived); verify the archive file, or use a newer checkpoint"
            )),
        };
        if let Some(reason) = reason {
            report.broken = Some(ChainBreak {
                sequence_number: seen,
                reason,
            });
        }
        Ok(report)
    }

    fn audit_pool(&self, kind: AuditLogKind) -> &Pool {
        match kind {
            AuditLogKind::Secure => &self.databases().secure,
            AuditLogKind::Core => &self.databases().core,
        }
    }

    /// Moves events older than `older_than_days` to a JSON-lines file
    /// (appended), then deletes them. The run is itself recorded in the chain
    /// with the hash the remaining rows continue from, so the rest stays
    /// verifiable.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn archive_audit_events(
        &self,
        actor: &Actor,
        kind: AuditLogKind,
        older_than_days: u32,
        file: &Path,
    ) -> Result<ArchiveReport> {
        self.authorize(actor, Access::new("audit", "archive"))
            .await?;
        let cutoff = days_before(
            now(),
            "older_than_days",
            older_than_days,
            MAX_ARCHIVE_AGE_DAYS,
        )?;
        self.archive_audit_before(actor, kind, cutoff, file).await
    }

    /// The archive rule, for [`Clm::archive_audit_events`] and the
    /// lifecycle's retention (callers authorize): events before `cutoff`
    /// are written to `file` as JSON lines, one [`AuditEvent`] each with
    /// its `previous_hash` and `row_hash`, synced; then an `audit.archived`
    /// record holding the anchor (the last archived row's hash) joins the
    /// chain and the archived rows are deleted, in one transaction. When
    /// writing the file fails nothing is deleted; nothing to archive writes
    /// no file.
    pub(crate) async fn archive_audit_before(
        &self,
        actor: &Actor,
        kind: AuditLogKind,
        cutoff: crate::model::Timestamp,
        file: &Path,
    ) -> Result<ArchiveReport> {
        let pool = match kind {
            AuditLogKind::Secure => &self.databases().secure,
            AuditLogKind::Core => &self.databases().core,
        };
        let mut tx = pool.begin().await?;
        audit_store::lock_chain(&mut tx.conn(), kind).await?;
        let through = audit_store::last_sequence_before(&mut tx.conn(), kind, cutoff).await?;
        let Some(through) = through else {
            return Ok(ArchiveReport {
                log: kind.table(),
                archived: 0,
                through_sequence: None,
                anchor_hash: None,
                file: file.display().to_string(),
            });
        };
        // Write the file first: if it fails, nothing is deleted.
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(file)
            .map_err(|err| {
                Error::invalid("file", format!("cannot open {}: {err}", file.display()))
            })?;
        let first_kept = audit_store::walk(&mut tx.conn(), kind, 0, 1)
            .await?
            .first()
            .map_or(0, |event| event.sequence_number);
        let written_before = lines_of_an_unfinished_run(&mut out, file, first_kept)?;
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
                if !written_before.contains(&event.row_hash) {
                    let line = serde_json::to_string(event)?;
                    writeln!(out, "{line}").map_err(|err| {
                        Error::invalid("file", format!("cannot write {}: {err}", file.display()))
                    })?;
                }
                anchor = event.row_hash.clone();
                after = event.sequence_number;
                archived = archived.saturating_add(1);
            }
        }
        out.sync_all().map_err(|err| {
            Error::invalid("file", format!("cannot sync {}: {err}", file.display()))
        })?;
        failpoint!("audit.archive_file_synced")?;
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
        audit_store::delete_archived(&mut tx.conn(), kind, through).await?;
        failpoint!("audit.archive_written")?;
        tx.commit().await?;
        Ok(ArchiveReport {
            log: kind.table(),
            archived,
            through_sequence: Some(through),
            anchor_hash: Some(anchor),
            file: file.display().to_string(),
        })
    }
}

/// The row hashes of the lines of archive `file` from sequence `first_kept`
/// on: rows still in the database, so written by a run that stopped before
/// its commit deleted them; the run again appends only what they lack, and
/// no row is in the file twice. A torn last line (the process stopped
/// mid-write) is cut off, so the next line starts whole. Reads the whole
/// file: archives are appended to rarely, and a partial run may have
/// stopped anywhere in them.
fn lines_of_an_unfinished_run(
    out: &mut std::fs::File,
    file: &Path,
    first_kept: i64,
) -> Result<std::collections::HashSet<String>> {
    use std::io::{BufRead, Seek};

    /// The fields of an archived [`AuditEvent`] this check needs.
    #[derive(serde::Deserialize)]
    struct ArchivedLine {
        sequence_number: i64,
        row_hash: String,
    }

    let read_error = |err: std::io::Error| {
        Error::invalid("file", format!("cannot read {}: {err}", file.display()))
    };
    out.seek(std::io::SeekFrom::Start(0)).map_err(read_error)?;
    let mut reader = std::io::BufReader::new(&*out);
    let mut written = std::collections::HashSet::new();
    let mut whole: u64 = 0;
    let mut line = Vec::new();
    for number in 1u64.. {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(read_error)?;
        if read == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let archived: ArchivedLine = serde_json::from_slice(&line).map_err(|err| {
            Error::invalid(
                "file",
                format!(
                    "{} is not an audit archive (line {number}: {err})",
                    file.display()
                ),
            )
        })?;
        if archived.sequence_number >= first_kept {
            written.insert(archived.row_hash);
        }
        whole = whole.saturating_add(u64::try_from(read).unwrap_or(u64::MAX));
    }
    drop(reader);
    if out.metadata().map_err(read_error)?.len() > whole {
        out.set_len(whole).map_err(|err| {
            Error::invalid(
                "file",
                format!("cannot cut the torn last line of {}: {err}", file.display()),
            )
        })?;
    }
    Ok(written)
}

/// The largest `older_than_days` an archive run takes (a century): larger
/// ages archive nothing more and only risk overflowing date arithmetic.
pub const MAX_ARCHIVE_AGE_DAYS: u32 = 36_500;

/// `at` minus `days`, for a caller-supplied number of days: out of
/// `0..=max` is InvalidInput naming `field`, and the subtraction is checked,
/// so no input reaches a panicking date operation.
pub(crate) fn days_before(
    at: crate::model::Timestamp,
    field: &str,
    days: u32,
    max: u32,
) -> Result<crate::model::Timestamp> {
    if days > max {
        return Err(Error::invalid(
            field,
            format!("must be between 0 and {max} days, got {days}"),
        ));
    }
    chrono::Duration::try_days(i64::from(days))
        .and_then(|span| at.checked_sub_signed(span))
        .ok_or_else(|| Error::invalid(field, format!("{days} days before {at} is not a date")))
}
