//! `ocsp_responses`: one pre-signed OCSP response per certificate, looked
//! up by issuer and serial.

use crate::db::Conn;
use crate::model::{CertificateId, OcspResponseId, Timestamp};
use crate::{Result, exec, on_conn};

/// A signed response ready to serve.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OcspResponseRecord {
    /// Row id.
    pub id: OcspResponseId,
    /// The certificate the response is about.
    pub certificate_id: CertificateId,
    /// The CA the response answers for.
    pub issuer_certificate_id: CertificateId,
    /// Lowercase hex of the serial's DER content bytes.
    pub serial_number: String,
    /// `good` or `revoked` (a hold included).
    pub cert_status: String,
    /// The whole OCSPResponse (DER).
    pub response_der: Vec<u8>,
    /// The response's thisUpdate.
    pub this_update: Timestamp,
    /// The response's nextUpdate: served until then.
    pub next_update: Timestamp,
    /// When it was signed.
    pub updated_at: Timestamp,
}

/// The stored response and its nextUpdate for `serial` under `issuer`.
pub async fn lookup(
    conn: &mut Conn<'_>,
    issuer: CertificateId,
    serial: &str,
) -> Result<Option<(Vec<u8>, Timestamp)>> {
    Ok(on_conn!(conn, |c| {
        sqlx::query_as::<_, (Vec<u8>, Timestamp)>(
            "SELECT response_der, next_update FROM ocsp_responses
         WHERE issuer_certificate_id = $1 AND serial_number = $2
         ORDER BY next_update DESC LIMIT 1",
        )
        .bind(issuer)
        .bind(serial)
        .fetch_optional(&mut *c)
        .await
    })?)
}

/// The columns an insert writes, in bind order.
const INSERT_COLUMNS: &str = "id, certificate_id, issuer_certificate_id, serial_number,
    cert_status, response_der, this_update, next_update, updated_at";
const INSERT_COLUMN_COUNT: usize = 9;

/// PostgreSQL's insert of `rows`, one array per column, its placeholders
/// numbered from `first`; bound by [`bind_columns`].
#[cfg(feature = "postgres")]
pub(crate) fn unnest_insert_sql_from(first: usize) -> String {
    crate::store::support::unnest_insert_sql_from(
        "ocsp_responses",
        INSERT_COLUMNS,
        first,
        INSERT_COLUMN_COUNT,
    )
}

/// How many placeholders [`unnest_insert_sql_from`] takes.
#[cfg(feature = "postgres")]
pub(crate) const UNNEST_PLACEHOLDERS: usize = INSERT_COLUMN_COUNT;

/// Binds `rows` for [`unnest_insert_sql_from`].
#[cfg(feature = "postgres")]
pub(crate) fn bind_columns<'q>(
    query: crate::store::support::PgInsert<'q>,
    rows: &'q [OcspResponseRecord],
) -> crate::store::support::PgInsert<'q> {
    use crate::store::support::column;
    query
        .bind(column(rows, |r| r.id))
        .bind(column(rows, |r| r.certificate_id))
        .bind(column(rows, |r| r.issuer_certificate_id))
        .bind(column(rows, |r| r.serial_number.as_str()))
        .bind(column(rows, |r| r.cert_status.as_str()))
        .bind(column(rows, |r| r.response_der.as_slice()))
        .bind(column(rows, |r| r.this_update))
        .bind(column(rows, |r| r.next_update))
        .bind(column(rows, |r| r.updated_at))
}

/// Inserts responses for new certificates (issuance: one statement for the
/// batch; on SQLite one per chunk under its bind limit).
pub async fn insert_many(conn: &mut Conn<'_>, rows: &[OcspResponseRecord]) -> Result<()> {
    const COLUMNS: usize = INSERT_COLUMN_COUNT;
    if rows.is_empty() {
        return Ok(());
    }
    #[cfg(feature = "postgres")]
    #[cfg_attr(not(feature = "sqlite"), allow(irrefutable_let_patterns))]
    if let Conn::Postgres(c) = conn {
        bind_columns(
            sqlx::query(sqlx::AssertSqlSafe(unnest_insert_sql_from(1))),
            rows,
        )
        .execute(&mut **c)
        .await?;
        return Ok(());
    }
    for chunk in rows.chunks(100) {
        let values = (0..chunk.len())
            .map(|row| {
                let first = row * COLUMNS;
                let placeholders = (1..=COLUMNS)
                    .map(|i| format!("${}", first + i))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("({placeholders})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO ocsp_responses ({INSERT_COLUMNS}) VALUES {values}");
        exec!(conn, |c| {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for row in chunk {
                query = query
                    .bind(row.id)
                    .bind(row.certificate_id)
                    .bind(row.issuer_certificate_id)
                    .bind(&row.serial_number)
                    .bind(&row.cert_status)
                    .bind(&row.response_der)
                    .bind(row.this_update)
                    .bind(row.next_update)
                    .bind(row.updated_at);
            }
            query
        })?;
    }
    Ok(())
}

/// Writes the response of a certificate, replacing the one it had.
pub async fn upsert(conn: &mut Conn<'_>, row: &OcspResponseRecord) -> Result<()> {
    exec!(conn, |c| sqlx::query(
        "INSERT INTO ocsp_responses (id, certificate_id, issuer_certificate_id, serial_number,
            cert_status, response_der, this_update, next_update, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (certificate_id) DO UPDATE SET
            issuer_certificate_id = excluded.issuer_certificate_id,
            serial_number = excluded.serial_number,
            cert_status = excluded.cert_status,
            response_der = excluded.response_der,
            this_update = excluded.this_update,
            next_update = excluded.next_update,
            updated_at = excluded.updated_at"
    )
    .bind(row.id)
    .bind(row.certificate_id)
    .bind(row.issuer_certificate_id)
    .bind(&row.serial_number)
    .bind(&row.cert_status)
    .bind(&row.response_der)
    .bind(row.this_update)
    .bind(row.next_update)
    .bind(row.updated_at))?;
    Ok(())
}

/// Drops the stored response of a certificate (its status changed and no
/// new response could be signed: a fresh one is signed per request).
pub async fn delete_for_certificate(conn: &mut Conn<'_>, certificate: CertificateId) -> Result<()> {
    exec!(conn, |c| sqlx::query(
        "DELETE FROM ocsp_responses WHERE certificate_id = $1"
    )
    .bind(certificate))?;
    Ok(())
}

/// Responses whose nextUpdate falls before `due`, signed before
/// `signed_before`, for certificates still valid at `valid_at`, soonest
/// first: what the lifecycle re-signs.
pub async fn due(
    conn: &mut Conn<'_>,
    due: Timestamp,
    valid_at: Timestamp,
    signed_before: Timestamp,
    limit: u32,
) -> Result<Vec<(CertificateId, CertificateId, String)>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<
        _,
        (CertificateId, CertificateId, String),
    >(
        "SELECT r.certificate_id, r.issuer_certificate_id, r.serial_number
         FROM ocsp_responses r JOIN certificates c ON c.id = r.certificate_id
         WHERE r.next_update <= $1 AND c.not_after > $2 AND c.deleted_at IS NULL
           AND r.updated_at < $4
         ORDER BY r.next_update LIMIT $3"
    )
    .bind(due)
    .bind(valid_at)
    .bind(i64::from(limit))
    .bind(signed_before)
    .fetch_all(&mut *c)
    .await)?)
}
