//! `crls`: every CRL clm signed, by scope (issuer, partition, complete or
//! delta); the latest of each scope is what hosts serve.

use futures::TryStreamExt;

use crate::db::Conn;
use crate::model::{CertificateId, CrlId, CrlKind, Timestamp};
use crate::{Result, exec, on_conn};

/// A stored CRL without its DER: what deciding whether a scope is due needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CrlInfo {
    /// Row id.
    pub id: CrlId,
    /// The CA that signed it.
    pub issuer_certificate_id: CertificateId,
    /// The partition it covers; None for the whole issuer.
    pub crl_partition: Option<i32>,
    /// Its cRLNumber.
    pub crl_number: i64,
    /// Complete or delta.
    pub kind: CrlKind,
    /// A delta's base CRL number.
    pub base_crl_number: Option<i64>,
    /// Its thisUpdate.
    pub this_update: Timestamp,
    /// Its nextUpdate.
    pub next_update: Timestamp,
    /// How many certificates it lists.
    pub entries_count: i64,
    /// Its DER length in bytes (the sum of its chunks).
    pub crl_size: i64,
}

const INFO_COLUMNS: &str = "id, issuer_certificate_id, crl_partition, crl_number, kind, \
    base_crl_number, this_update, next_update, entries_count, crl_size";

/// The WHERE clause of one scope (`$1` issuer, `$2` kind, `$3` the
/// partition when there is one) and the next placeholder's number.
fn scope_clause(partition: Option<i32>) -> (&'static str, u8) {
    match partition {
        Some(_) => (
            "issuer_certificate_id = $1 AND kind = $2 AND crl_partition = $3",
            4,
        ),
        None => (
            "issuer_certificate_id = $1 AND kind = $2 AND crl_partition IS NULL",
            3,
        ),
    }
}

/// Stores a CRL's row (its chunks follow with [`insert_chunk`]) and drops
/// the CRLs of its scope older than the latest one before it: that one
/// stays, so a host still reading it chunk by chunk can finish.
pub async fn insert(conn: &mut Conn<'_>, info: &CrlInfo) -> Result<()> {
    let (scope, next) = scope_clause(info.crl_partition);
    // Chunks go with their CRL (ON DELETE CASCADE).
    let prune = format!(
        "DELETE FROM crls WHERE {scope} AND crl_number < \
            (SELECT MAX(crl_number) FROM crls WHERE {scope} AND crl_number < ${next})"
    );
    exec!(conn, |c| {
        let query = sqlx::query(sqlx::AssertSqlSafe(prune.clone()))
            .bind(info.issuer_certificate_id)
            .bind(info.kind);
        match info.crl_partition {
            Some(partition) => query.bind(partition),
            None => query,
        }
        .bind(info.crl_number)
    })?;
    exec!(conn, |c| sqlx::query(
        "INSERT INTO crls (id, issuer_certificate_id, crl_partition, crl_number, kind,
            base_crl_number, this_update, next_update, entries_count, crl_size)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(info.id)
    .bind(info.issuer_certificate_id)
    .bind(info.crl_partition)
    .bind(info.crl_number)
    .bind(info.kind)
    .bind(info.base_crl_number)
    .bind(info.this_update)
    .bind(info.next_update)
    .bind(info.entries_count)
    .bind(info.crl_size))?;
    Ok(())
}

/// Stores chunk `index` (from 0) of a CRL's DER.
pub async fn insert_chunk(conn: &mut Conn<'_>, crl: CrlId, index: i32, chunk: &[u8]) -> Result<()> {
    exec!(conn, |c| sqlx::query(
        "INSERT INTO crl_chunks (crl_id, chunk_index, chunk) VALUES ($1, $2, $3)"
    )
    .bind(crl)
    .bind(index)
    .bind(chunk))?;
    Ok(())
}

/// Chunk `index` of a CRL; None past its last chunk or once the CRL has
/// been pruned.
pub async fn chunk(conn: &mut Conn<'_>, crl: CrlId, index: i32) -> Result<Option<Vec<u8>>> {
    Ok(on_conn!(conn, |c| sqlx::query_scalar(
        "SELECT chunk FROM crl_chunks WHERE crl_id = $1 AND chunk_index = $2"
    )
    .bind(crl)
    .bind(index)
    .fetch_optional(&mut *c)
    .await)?)
}

/// The latest CRL of a scope, without its DER.
pub async fn latest_info(
    conn: &mut Conn<'_>,
    issuer: CertificateId,
    kind: CrlKind,
    partition: Option<i32>,
) -> Result<Option<CrlInfo>> {
    let (scope, _) = scope_clause(partition);
    let sql =
        format!("SELECT {INFO_COLUMNS} FROM crls WHERE {scope} ORDER BY crl_number DESC LIMIT 1");
    Ok(on_conn!(conn, |c| {
        let query = sqlx::query_as::<_, CrlInfo>(sqlx::AssertSqlSafe(sql.clone()))
            .bind(issuer)
            .bind(kind);
        match partition {
            Some(partition) => query.bind(partition),
            None => query,
        }
        .fetch_optional(&mut *c)
        .await
    })?)
}

/// One revocation as a CRL lists it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CrlRevocation {
    /// Lowercase hex of the serial's DER content bytes.
    pub serial_number: String,
    /// When it was revoked.
    pub revoked_at: Timestamp,
    /// Why.
    pub revocation_reason: crate::model::RevocationReason,
    /// Set on a released hold.
    pub released_at: Option<Timestamp>,
}

/// Streams, in serial order, what a CRL of `issuer` lists, handing each row
/// to `visit` as it arrives (one statement: one consistent snapshot, and
/// memory independent of the count). `changed_since` None: every standing
/// revocation (a complete CRL). Some: a delta's, the revocations made after
/// it and the holds released after it, a standing revocation of a serial
/// before its released ones.
pub async fn stream_revocations(
    conn: &mut Conn<'_>,
    issuer: CertificateId,
    changed_since: Option<Timestamp>,
    visit: &mut (dyn FnMut(CrlRevocation) -> Result<()> + Send),
) -> Result<()> {
    const COLUMNS: &str = "serial_number, revoked_at, revocation_reason, released_at";
    let sql = match changed_since {
        None => format!(
            "SELECT {COLUMNS} FROM certificate_revocations
             WHERE issuer_certificate_id = $1 AND released_at IS NULL AND deleted_at IS NULL
             ORDER BY serial_number"
        ),
        // Two index-backed halves (idx_certificate_revocations_issuer and
        // _issuer_released), so a delta reads only what changed.
        Some(_) => format!(
            "SELECT {COLUMNS} FROM (
                SELECT {COLUMNS} FROM certificate_revocations
                 WHERE issuer_certificate_id = $1 AND released_at IS NULL AND deleted_at IS NULL
                   AND revoked_at > $2
                UNION ALL
                SELECT {COLUMNS} FROM certificate_revocations
                 WHERE issuer_certificate_id = $1 AND released_at IS NOT NULL AND deleted_at IS NULL
                   AND released_at > $2
             ) changed
             ORDER BY serial_number, CASE WHEN released_at IS NULL THEN 0 ELSE 1 END"
        ),
    };
    on_conn!(conn, |c| {
        let query =
            sqlx::query_as::<_, CrlRevocation>(sqlx::AssertSqlSafe(sql.clone())).bind(issuer);
        let query = match changed_since {
            Some(since) => query.bind(since),
            None => query,
        };
        let mut rows = query.fetch(&mut *c);
        while let Some(row) = rows.try_next().await? {
            visit(row)?;
        }
        Ok::<(), crate::Error>(())
    })
}
