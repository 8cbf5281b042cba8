//! `certificate_revocations`: one row per revocation; a `certificate_hold`
//! can be released, which ends it.

use crate::db::Conn;
use crate::model::{
    CertificateId, CertificateRevocation, RevocationId, RevocationReason, Timestamp, UserId,
};
use crate::store::support::{fetch_all, require_row};
use crate::store::{Filter, Page, PageRequest, id_value, list};
use crate::{Result, exec, on_conn, table};

table!(
    CertificateRevocations,
    CertificateRevocation,
    "certificate_revocations",
    "certificate revocation",
    id = crate::model::RevocationId
);

#[derive(Debug, Clone, Default)]
pub struct CertificateRevocationFilter {
    pub certificate_id: Option<CertificateId>,
    pub issuer_certificate_id: Option<CertificateId>,
    /// Only standing (unreleased) revocations.
    pub current_only: bool,
}

pub async fn insert(conn: &mut Conn<'_>, revocation: &CertificateRevocation) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO certificate_revocations (id, certificate_id, issuer_certificate_id, serial_number,
            revocation_reason, revoked_at, revoked_by_user_id, comment, released_at, released_by_user_id,
            created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )
    .bind(revocation.id)
    .bind(revocation.certificate_id)
    .bind(revocation.issuer_certificate_id)
    .bind(&revocation.serial_number)
    .bind(revocation.revocation_reason)
    .bind(revocation.revoked_at)
    .bind(revocation.revoked_by_user_id)
    .bind(&revocation.comment)
    .bind(revocation.released_at)
    .bind(revocation.released_by_user_id)
    .bind(revocation.created_at)
    .bind(revocation.updated_at)
    .bind(revocation.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns: reason (a hold may become final), comment, release.
pub async fn update(conn: &mut Conn<'_>, revocation: &CertificateRevocation) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE certificate_revocations SET revocation_reason = $2, comment = $3, released_at = $4,
            released_by_user_id = $5
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(revocation.id)
    .bind(revocation.revocation_reason)
    .bind(&revocation.comment)
    .bind(revocation.released_at)
    .bind(revocation.released_by_user_id)
    })?;
    require_row(affected, "certificate revocation", revocation.id)
}

/// Records on a compromise revocation the SHA-256 of the public key it
/// kills (`public_key_sha256`, see migration 0006): the blocklist.
pub async fn mark_compromised_key(
    conn: &mut Conn<'_>,
    id: RevocationId,
    public_key_sha256: &str,
) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query("UPDATE certificate_revocations SET public_key_sha256 = $2 WHERE id = $1")
            .bind(id)
            .bind(public_key_sha256)
    })?;
    require_row(affected, "certificate revocation", id)
}

/// [`compromised_keys`] as one statement for PostgreSQL, the hashes bound
/// as one array at placeholder `$n`: a text that does not change with
/// their number.
#[cfg(feature = "postgres")]
pub(crate) fn compromised_among_sql(n: usize) -> String {
    format!(
        "SELECT DISTINCT public_key_sha256, revocation_reason FROM certificate_revocations
         WHERE public_key_sha256 = ANY(${n})"
    )
}

/// Which of `hashes` (public key SHA-256, hex) are blocklisted, with the
/// reason that put each there. One probe of the partial index per hash.
pub async fn compromised_keys(
    conn: &mut Conn<'_>,
    hashes: &[String],
) -> Result<Vec<(String, RevocationReason)>> {
    let mut found = Vec::new();
    #[cfg(feature = "postgres")]
    #[cfg_attr(not(feature = "sqlite"), allow(irrefutable_let_patterns))]
    if let Conn::Postgres(c) = conn {
        let rows: Vec<(String, RevocationReason)> =
            sqlx::query_as(sqlx::AssertSqlSafe(compromised_among_sql(1)))
                .bind(hashes)
                .fetch_all(&mut **c)
                .await?;
        return Ok(rows);
    }
    // Under SQLite's bind limit; a large import asks in chunks.
    for chunk in hashes.chunks(500) {
        let placeholders = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT DISTINCT public_key_sha256, revocation_reason FROM certificate_revocations
             WHERE public_key_sha256 IN ({placeholders})"
        );
        let rows: Vec<(String, RevocationReason)> = on_conn!(conn, |c| {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            for hash in chunk {
                query = query.bind(hash);
            }
            query.fetch_all(&mut *c).await
        })?;
        found.extend(rows);
    }
    Ok(found)
}

/// The standing revocation of a certificate, if any.
pub async fn get_current(
    conn: &mut Conn<'_>,
    certificate_id: CertificateId,
) -> Result<Option<CertificateRevocation>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<
        _,
        CertificateRevocation,
    >(
        "SELECT * FROM certificate_revocations
         WHERE certificate_id = $1 AND released_at IS NULL AND deleted_at IS NULL"
    )
    .bind(certificate_id)
    .fetch_optional(&mut *c)
    .await)?)
}

pub async fn list_certificate_revocations(
    conn: &mut Conn<'_>,
    filter: &CertificateRevocationFilter,
    page: &PageRequest,
) -> Result<Page<CertificateRevocation>> {
    let mut f = Filter::new()
        .eq_opt("certificate_id", filter.certificate_id.map(id_value))
        .eq_opt(
            "issuer_certificate_id",
            filter.issuer_certificate_id.map(id_value),
        );
    if filter.current_only {
        f = f.clause("released_at IS NULL", Vec::new());
    }
    list::<CertificateRevocations>(conn, &f, page).await
}

/// Ends a standing revocation (a released certificate hold). The database
/// refuses it for any other reason.
pub async fn release(
    conn: &mut Conn<'_>,
    id: RevocationId,
    by: Option<UserId>,
    at: Timestamp,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE certificate_revocations SET released_at = $2, released_by_user_id = $3
         WHERE id = $1 AND released_at IS NULL AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(at)
    .bind(by))?;
    require_row(affected, "certificate revocation", id)
}

/// Standing revocations under one issuer, in revocation order: a CRL's entries.
pub async fn list_for_issuer(
    conn: &mut Conn<'_>,
    issuer_id: CertificateId,
) -> Result<Vec<CertificateRevocation>> {
    fetch_all(
        conn,
        "SELECT * FROM certificate_revocations WHERE released_at IS NULL AND deleted_at IS NULL",
        &Filter::new().eq("issuer_certificate_id", id_value(issuer_id)),
        " ORDER BY revoked_at, id",
    )
    .await
}

/// The standing revocation (time and reason) of `serial` on `issuer`'s
/// CRL, if any: what OCSP answers (one probe of
/// `idx_certificate_revocations_issuer_serial`).
pub async fn standing_by_serial(
    conn: &mut Conn<'_>,
    issuer: CertificateId,
    serial: &str,
) -> Result<Option<(Timestamp, RevocationReason)>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<
        _,
        (Timestamp, RevocationReason),
    >(
        "SELECT revoked_at, revocation_reason FROM certificate_revocations
         WHERE issuer_certificate_id = $1 AND serial_number = $2
           AND released_at IS NULL AND deleted_at IS NULL
         ORDER BY revoked_at LIMIT 1"
    )
    .bind(issuer)
    .bind(serial)
    .fetch_optional(&mut *c)
    .await)?)
}
