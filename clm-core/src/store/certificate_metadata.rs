//! `certificate_metadata`: the core database's view of a certificate
//! (ownership, environment, tags), keyed by the secure database's id.

use crate::db::Conn;
use crate::model::{CertificateId, CertificateMetadata, OrganizationId, Timestamp, UserId};
use crate::store::support::{
    chunk_rows, in_ids_opt, insert_one, insert_rows, placeholders, require_row,
};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, on_conn, table};

table!(
    CertificateMetadataTable,
    CertificateMetadata,
    "certificate_metadata",
    "certificate metadata",
    id = crate::model::CertificateMetadataId;
    insert |m| {
        id: m.id,
        certificate_id: m.certificate_id,
        common_name: m.common_name.as_deref(),
        not_after: m.not_after,
        owner_user_id: m.owner_user_id,
        organization_id: m.organization_id,
        environment: m.environment.as_deref(),
        application: m.application.as_deref(),
        tags: &m.tags,
        notes: m.notes.as_deref(),
        last_notified_threshold: m.last_notified_threshold,
        created_at: m.created_at,
        updated_at: m.updated_at,
        deleted_at: m.deleted_at,
    }
);

#[derive(Debug, Clone, Default)]
pub struct CertificateMetadataFilter {
    pub owner_user_id: Option<UserId>,
    pub organization_ids: Option<Vec<OrganizationId>>,
    pub environment: Option<String>,
    pub application: Option<String>,
}

/// Rows per multi-row INSERT on SQLite (the rest in halving sizes).
pub const INSERT_CHUNK_ROWS: usize = chunk_rows::<CertificateMetadataTable>();

pub async fn insert(conn: &mut Conn<'_>, metadata: &CertificateMetadata) -> Result<()> {
    insert_one::<CertificateMetadataTable>(conn, metadata).await
}

/// On PostgreSQL one statement of column arrays, on SQLite multi-row
/// INSERTs of [`INSERT_CHUNK_ROWS`]; wrap in a transaction for all-or-nothing.
pub async fn insert_many(conn: &mut Conn<'_>, rows: &[CertificateMetadata]) -> Result<u64> {
    insert_rows::<CertificateMetadataTable>(conn, rows).await
}

/// Writes the mutable columns (everything but the certificate reference).
pub async fn update(conn: &mut Conn<'_>, metadata: &CertificateMetadata) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE certificate_metadata SET common_name = $2, not_after = $3, owner_user_id = $4,
            organization_id = $5, environment = $6, application = $7, tags = $8, notes = $9,
            last_notified_threshold = $10
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(metadata.id)
    .bind(&metadata.common_name)
    .bind(metadata.not_after)
    .bind(metadata.owner_user_id)
    .bind(metadata.organization_id)
    .bind(&metadata.environment)
    .bind(&metadata.application)
    .bind(&metadata.tags)
    .bind(&metadata.notes)
    .bind(metadata.last_notified_threshold))?;
    require_row(affected, "certificate metadata", metadata.id)
}

pub async fn get_by_certificate(
    conn: &mut Conn<'_>,
    certificate_id: CertificateId,
) -> Result<CertificateMetadata> {
    get_by::<CertificateMetadataTable>(conn, "certificate_id", id_value(certificate_id)).await
}

pub async fn list_certificate_metadata(
    conn: &mut Conn<'_>,
    filter: &CertificateMetadataFilter,
    page: &PageRequest,
) -> Result<Page<CertificateMetadata>> {
    let f = Filter::new()
        .eq_opt("owner_user_id", filter.owner_user_id.map(id_value))
        .eq_opt("environment", filter.environment.clone())
        .eq_opt("application", filter.application.clone());
    let f = in_ids_opt(f, "organization_id", filter.organization_ids.as_ref());
    list::<CertificateMetadataTable>(conn, &f, page).await
}

/// Mirrors a certificate's new `not_after` (renewal, import refresh) and
/// resets the expiry-notification threshold.
pub async fn update_not_after(
    conn: &mut Conn<'_>,
    certificate_id: CertificateId,
    not_after: Timestamp,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE certificate_metadata SET not_after = $2, last_notified_threshold = NULL
         WHERE certificate_id = $1 AND deleted_at IS NULL"
    )
    .bind(certificate_id)
    .bind(not_after))?;
    require_row(affected, "certificate metadata", certificate_id)
}

/// Which of `ids` already have a metadata row (deleted ones included).
pub async fn existing_certificate_ids(
    conn: &mut Conn<'_>,
    ids: &[CertificateId],
) -> Result<Vec<CertificateId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = placeholders(conn.dialect(), 1, ids.len());
    let sql = format!(
        "SELECT certificate_id FROM certificate_metadata WHERE certificate_id IN ({marks})"
    );
    Ok(on_conn!(conn, |c| {
        let mut query = sqlx::query_scalar::<_, CertificateId>(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(&mut *c).await
    })?)
}

/// Soft-deletes the live metadata of a certificate; returns rows changed (0 or 1).
pub async fn soft_delete_by_certificate(
    conn: &mut Conn<'_>,
    certificate_id: CertificateId,
    at: Timestamp,
) -> Result<u64> {
    Ok(exec!(conn, |c| {
        sqlx::query(
        "UPDATE certificate_metadata SET deleted_at = $2 WHERE certificate_id = $1 AND deleted_at IS NULL"
    )
    .bind(certificate_id)
    .bind(at)
    })?)
}

/// Brings back the deleted metadata of a certificate; returns rows changed.
pub async fn restore_by_certificate(
    conn: &mut Conn<'_>,
    certificate_id: CertificateId,
) -> Result<u64> {
    Ok(exec!(conn, |c| {
        sqlx::query(
        "UPDATE certificate_metadata SET deleted_at = NULL WHERE certificate_id = $1 AND deleted_at IS NOT NULL"
    )
    .bind(certificate_id)
    })?)
}
