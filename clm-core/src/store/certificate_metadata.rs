//! `certificate_metadata`: the core database's view of a certificate
//! (ownership, environment, tags), keyed by the secure database's id.

use crate::db::{Conn, Dialect};
use crate::model::{CertificateId, CertificateMetadata, OrganizationId, Timestamp, UserId};
use crate::store::support::{MAX_BIND_PARAMS, column, in_ids_opt, placeholders, require_row};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, on_conn, table};

table!(
    CertificateMetadataTable,
    CertificateMetadata,
    "certificate_metadata",
    "certificate metadata"
);

#[derive(Debug, Clone, Default)]
pub struct CertificateMetadataFilter {
    pub owner_user_id: Option<UserId>,
    pub organization_ids: Option<Vec<OrganizationId>>,
    pub environment: Option<String>,
    pub application: Option<String>,
}

const INSERT_COLUMNS: &str = "id, certificate_id, common_name, not_after, owner_user_id, organization_id,
    environment, application, tags, notes, last_notified_threshold, created_at, updated_at, deleted_at";
const INSERT_COLUMN_COUNT: usize = 14;

/// Rows per multi-row INSERT under SQLite's bind limit.
pub const INSERT_CHUNK_ROWS: usize = MAX_BIND_PARAMS / INSERT_COLUMN_COUNT;

macro_rules! bind_metadata {
    ($query:expr, $m:expr) => {
        $query
            .bind($m.id)
            .bind($m.certificate_id)
            .bind(&$m.common_name)
            .bind($m.not_after)
            .bind($m.owner_user_id)
            .bind($m.organization_id)
            .bind(&$m.environment)
            .bind(&$m.application)
            .bind(&$m.tags)
            .bind(&$m.notes)
            .bind($m.last_notified_threshold)
            .bind($m.created_at)
            .bind($m.updated_at)
            .bind($m.deleted_at)
    };
}

fn insert_sql(dialect: Dialect, rows: usize) -> String {
    let values = (0..rows)
        .map(|r| {
            format!(
                "({})",
                placeholders(dialect, r * INSERT_COLUMN_COUNT + 1, INSERT_COLUMN_COUNT)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO certificate_metadata ({INSERT_COLUMNS}) VALUES {values}")
}

pub async fn insert(conn: &mut Conn<'_>, metadata: &CertificateMetadata) -> Result<()> {
    let sql = insert_sql(conn.dialect(), 1);
    exec!(conn, |c| bind_metadata!(
        sqlx::query(sqlx::AssertSqlSafe(sql)),
        metadata
    ))?;
    Ok(())
}

/// On PostgreSQL one statement of column arrays, on SQLite multi-row
/// INSERTs of [`INSERT_CHUNK_ROWS`]; wrap in a transaction for all-or-nothing.
pub async fn insert_many(conn: &mut Conn<'_>, rows: &[CertificateMetadata]) -> Result<u64> {
    crate::store::support::insert_rows(
        conn,
        "certificate_metadata",
        INSERT_COLUMNS,
        INSERT_COLUMN_COUNT,
        rows,
        |query, rows| {
            query
                .bind(column(rows, |m| m.id))
                .bind(column(rows, |m| m.certificate_id))
                .bind(column(rows, |m| m.common_name.as_deref()))
                .bind(column(rows, |m| m.not_after))
                .bind(column(rows, |m| m.owner_user_id))
                .bind(column(rows, |m| m.organization_id))
                .bind(column(rows, |m| m.environment.as_deref()))
                .bind(column(rows, |m| m.application.as_deref()))
                .bind(column(rows, |m| &m.tags))
                .bind(column(rows, |m| m.notes.as_deref()))
                .bind(column(rows, |m| m.last_notified_threshold))
                .bind(column(rows, |m| m.created_at))
                .bind(column(rows, |m| m.updated_at))
                .bind(column(rows, |m| m.deleted_at))
        },
        |query, row| bind_metadata!(query, row),
    )
    .await
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
