//! A batch of issued certificates written with one statement per database
//! on PostgreSQL ([`PgWith`]): a single caller's issuance waits for three
//! round trips per database (`BEGIN`, this statement, `COMMIT`) instead of
//! one per table. SQLite writes table by table: its statements cost no
//! round trip.

use sqlx::{AssertSqlSafe, Row as _};

use crate::db::Conn;
use crate::model::{
    AuditEvent, Certificate, CertificateMetadata, CertificateRequest, PrivateKeyId,
    PrivateKeyRecord, RevocationReason,
};
use crate::store::Insert as _;
use crate::store::audit::{AuditLogKind, append_placeholders, append_sql_from, bind_append};
use crate::store::certificate_metadata::CertificateMetadataTable;
use crate::store::certificate_requests::CertificateRequests;
use crate::store::certificate_revocations::compromised_among_sql;
use crate::store::certificates::Certificates;
use crate::store::ocsp_responses::{self, OcspResponseRecord};
use crate::store::private_keys::{PrivateKeys, RETURNING_ID_AND_RETIRED};
use crate::store::support::{PgInsert, PgWith};
use crate::{Error, Result};

/// Audit rows chained after a head the writer remembers: they go in only
/// if that head is still the chain's last (checked in the statement).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuditAfter<'a> {
    /// Sequence number and row hash of the head the events follow.
    pub head: (i64, &'a str),
    pub events: &'a [AuditEvent],
}

/// The secure database's rows of a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecureRows<'a> {
    /// SHA-256 of the public keys being certified: a key revoked for
    /// compromise must not be certified again.
    pub public_key_hashes: &'a [String],
    pub certificates: &'a [Certificate],
    pub keys: &'a [PrivateKeyRecord],
    pub requests: &'a [CertificateRequest],
    /// Pre-signed OCSP answers for the new certificates.
    pub ocsp_responses: &'a [OcspResponseRecord],
    pub audit: Option<AuditAfter<'a>>,
}

/// What the secure statement found besides writing.
#[derive(Debug, Default)]
pub(crate) struct SecureWritten {
    /// A public key among the batch's that was revoked for compromise (the
    /// caller must roll back).
    pub compromised: Option<(String, RevocationReason)>,
    /// Keys sealed under a data key that was retired as the insert saw it
    /// (the caller re-seals them before committing).
    pub keys_under_retired_data_key: Vec<PrivateKeyId>,
    /// Whether the audit rows went in (false: the head had moved; nothing
    /// of the audit part was written, everything else was).
    pub audit_appended: bool,
}

/// Writes `rows` in one statement, in the caller's transaction (which must
/// hold the data-key lock shared and the secure chain's lock, as
/// `Pool::begin_secure_half` does).
pub(crate) async fn write_secure(
    conn: &mut Conn<'_>,
    rows: SecureRows<'_>,
) -> Result<SecureWritten> {
    let conn = postgres(conn)?;
    let mut statement = PgWith::new();
    statement.part("compromised", 1, |first| {
        format!(
            "{} ORDER BY public_key_sha256 LIMIT 1",
            compromised_among_sql(first)
        )
    });
    statement.unnest_insert::<Certificates>("certificates_written", "");
    let retired = if rows.keys.is_empty() {
        "ARRAY[]::uuid[]"
    } else {
        // The retired check rides on the insert: see
        // `private_keys::insert_many_naming_retired`.
        statement.unnest_insert::<PrivateKeys>("keys_written", RETURNING_ID_AND_RETIRED);
        "ARRAY(SELECT id FROM keys_written WHERE retired)"
    };
    if !rows.requests.is_empty() {
        statement.unnest_insert::<CertificateRequests>("requests_written", "");
    }
    if !rows.ocsp_responses.is_empty() {
        statement.part(
            "ocsp_written",
            ocsp_responses::UNNEST_PLACEHOLDERS,
            ocsp_responses::unnest_insert_sql_from,
        );
    }
    let audit_count = add_audit(&mut statement, AuditLogKind::Secure, rows.audit);
    let sql = statement.sql(&format!(
        "SELECT (SELECT public_key_sha256 FROM compromised),
                (SELECT revocation_reason FROM compromised),
                {retired},
                {audit_count}"
    ));
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(rows.public_key_hashes);
    query = Certificates::bind_columns(query, rows.certificates);
    if !rows.keys.is_empty() {
        query = PrivateKeys::bind_columns(query, rows.keys);
    }
    if !rows.requests.is_empty() {
        query = CertificateRequests::bind_columns(query, rows.requests);
    }
    if !rows.ocsp_responses.is_empty() {
        query = ocsp_responses::bind_columns(query, rows.ocsp_responses);
    }
    query = bind_audit(query, rows.audit);
    let row = query.fetch_one(&mut *conn).await?;
    let hash: Option<String> = row.try_get(0)?;
    let reason: Option<RevocationReason> = row.try_get(1)?;
    Ok(SecureWritten {
        compromised: hash.zip(reason),
        keys_under_retired_data_key: row.try_get(2)?,
        audit_appended: audit_went_in(rows.audit, row.try_get(3)?),
    })
}

/// Writes `metadata` and the core audit rows in one statement, in the
/// caller's transaction (holding the core chain's lock, as
/// `Pool::begin_core_half` does). Returns whether the audit rows went in.
pub(crate) async fn write_core(
    conn: &mut Conn<'_>,
    metadata: &[CertificateMetadata],
    audit: Option<AuditAfter<'_>>,
) -> Result<bool> {
    let conn = postgres(conn)?;
    let mut statement = PgWith::new();
    statement.unnest_insert::<CertificateMetadataTable>("metadata_written", "");
    let audit_count = add_audit(&mut statement, AuditLogKind::Core, audit);
    let sql = statement.sql(&format!("SELECT {audit_count}"));
    let query = CertificateMetadataTable::bind_columns(sqlx::query(AssertSqlSafe(sql)), metadata);
    let query = bind_audit(query, audit);
    let row = query.fetch_one(&mut *conn).await?;
    Ok(audit_went_in(audit, row.try_get(0)?))
}

/// The PostgreSQL connection under `conn`; the callers branch on the
/// dialect first.
fn postgres<'a>(conn: &'a mut Conn<'_>) -> Result<&'a mut sqlx::PgConnection> {
    #[cfg_attr(not(feature = "sqlite"), allow(irrefutable_let_patterns))]
    if let Conn::Postgres(c) = conn {
        return Ok(&mut **c);
    }
    Err(Error::Internal(
        "the one-statement batch write is for PostgreSQL".into(),
    ))
}

/// Adds the conditional audit append when there is one; returns the select
/// expression counting the rows it wrote.
fn add_audit(
    statement: &mut PgWith,
    kind: AuditLogKind,
    audit: Option<AuditAfter<'_>>,
) -> &'static str {
    if audit.is_none() {
        return "0::bigint";
    }
    statement.part("audit_written", append_placeholders(true), |first| {
        format!("{} RETURNING 1", append_sql_from(kind, first, true))
    });
    "(SELECT count(*) FROM audit_written)"
}

fn bind_audit<'q>(query: PgInsert<'q>, audit: Option<AuditAfter<'q>>) -> PgInsert<'q> {
    match audit {
        Some(audit) => bind_append(query, audit.events, Some(audit.head)),
        None => query,
    }
}

fn audit_went_in(audit: Option<AuditAfter<'_>>, appended: i64) -> bool {
    audit.is_some_and(|audit| usize::try_from(appended).is_ok_and(|n| n == audit.events.len()))
}
