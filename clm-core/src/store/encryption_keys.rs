//! `encryption_keys`: the wrapped data-encryption keys.

use crate::db::Conn;
use crate::model::{EncryptionKey, EncryptionKeyId, KeyStatus, Opaque, Timestamp};
use crate::store::support::{fetch_all, require_row};
use crate::store::{Filter, Page, PageRequest, get_by, list};
use crate::{Result, exec, on_conn, table};

table!(
    EncryptionKeys,
    EncryptionKey,
    "encryption_keys",
    "encryption key",
    id = crate::model::EncryptionKeyId
);

#[derive(Debug, Clone, Default)]
pub struct EncryptionKeyFilter {
    pub key_status: Option<KeyStatus>,
}

pub async fn insert(conn: &mut Conn<'_>, key: &EncryptionKey) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO encryption_keys (id, key_id, key_type, key_status, algorithm, key_version, wrapped_key,
            wrap_nonce, master_key_id, encryption_count, activated_at, retired_at, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    )
    .bind(key.id)
    .bind(&key.key_id)
    .bind(key.key_type)
    .bind(key.key_status)
    .bind(&key.algorithm)
    .bind(key.key_version)
    .bind(&key.wrapped_key)
    .bind(&key.wrap_nonce)
    .bind(&key.master_key_id)
    .bind(key.encryption_count)
    .bind(key.activated_at)
    .bind(key.retired_at)
    .bind(key.created_at)
    .bind(key.updated_at)
    .bind(key.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns (status, wrapping, counter, activation dates).
pub async fn update(conn: &mut Conn<'_>, key: &EncryptionKey) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE encryption_keys SET key_status = $2, wrapped_key = $3, wrap_nonce = $4, master_key_id = $5,
            encryption_count = $6, activated_at = $7, retired_at = $8
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(key.id)
    .bind(key.key_status)
    .bind(&key.wrapped_key)
    .bind(&key.wrap_nonce)
    .bind(&key.master_key_id)
    .bind(key.encryption_count)
    .bind(key.activated_at)
    .bind(key.retired_at)
    })?;
    require_row(affected, "encryption key", key.id)
}

pub async fn get_by_key_id(conn: &mut Conn<'_>, key_id: &str) -> Result<EncryptionKey> {
    get_by::<EncryptionKeys>(conn, "key_id", key_id).await
}

pub async fn list_encryption_keys(
    conn: &mut Conn<'_>,
    filter: &EncryptionKeyFilter,
    page: &PageRequest,
) -> Result<Page<EncryptionKey>> {
    let f = Filter::new().eq_opt("key_status", filter.key_status.map(|s| s.as_str()));
    list::<EncryptionKeys>(conn, &f, page).await
}

/// The key that seals new data (at most one: a partial unique index).
pub async fn get_active(conn: &mut Conn<'_>) -> Result<Option<EncryptionKey>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, EncryptionKey>(
        "SELECT * FROM encryption_keys WHERE key_status = 'active' AND deleted_at IS NULL LIMIT 1"
    )
    .fetch_optional(&mut *c)
    .await)?)
}

/// Moves a key to `status`; `at` becomes `activated_at` (active) or
/// `retired_at` (retired).
pub async fn set_status(
    conn: &mut Conn<'_>,
    id: EncryptionKeyId,
    status: KeyStatus,
    at: Timestamp,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE encryption_keys SET key_status = $2,
            activated_at = CASE WHEN $2 = 'active' THEN $3 ELSE activated_at END,
            retired_at = CASE WHEN $2 = 'retired' THEN $3 ELSE retired_at END
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(status)
    .bind(at))?;
    require_row(affected, "encryption key", id)
}

/// Adds `by` to the key's encryption counter; returns the new count (the
/// service rotates well before AES-GCM's random-nonce limit).
pub async fn increment_encryption_count(
    conn: &mut Conn<'_>,
    id: EncryptionKeyId,
    by: i64,
) -> Result<i64> {
    let count = on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
        "UPDATE encryption_keys SET encryption_count = encryption_count + $2
         WHERE id = $1 AND deleted_at IS NULL RETURNING encryption_count"
    )
    .bind(id)
    .bind(by)
    .fetch_optional(&mut *c)
    .await)?;
    count.ok_or_else(|| crate::Error::not_found("encryption key", id))
}

/// Every live key, oldest version first (the table stays small).
pub async fn list_all(conn: &mut Conn<'_>) -> Result<Vec<EncryptionKey>> {
    fetch_all(
        conn,
        "SELECT * FROM encryption_keys WHERE deleted_at IS NULL",
        &Filter::new(),
        " ORDER BY key_version, id",
    )
    .await
}

/// Re-wraps a data key under another master key.
pub async fn update_wrapping(
    conn: &mut Conn<'_>,
    id: EncryptionKeyId,
    wrapped_key: &Opaque,
    wrap_nonce: &Opaque,
    master_key_id: &str,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE encryption_keys SET wrapped_key = $2, wrap_nonce = $3, master_key_id = $4
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(wrapped_key)
    .bind(wrap_nonce)
    .bind(master_key_id))?;
    require_row(affected, "encryption key", id)
}

/// Highest version ever used, deleted rows included (versions are never
/// reused); 0 for an empty table.
pub async fn max_version(conn: &mut Conn<'_>) -> Result<i32> {
    Ok(on_conn!(conn, |c| sqlx::query_scalar::<_, i32>(
        "SELECT CAST(COALESCE(MAX(key_version), 0) AS INTEGER) FROM encryption_keys"
    )
    .fetch_one(&mut *c)
    .await)?)
}

/// The rows of the keys among `ids` that are retired (writers of sealed
/// values check theirs; usually one id, so one query per id).
pub async fn retired_among(
    conn: &mut Conn<'_>,
    ids: &[EncryptionKeyId],
) -> Result<Vec<EncryptionKey>> {
    let mut retired = Vec::new();
    for id in ids {
        let row = on_conn!(conn, |c| sqlx::query_as::<_, EncryptionKey>(
            "SELECT * FROM encryption_keys WHERE id = $1 AND key_status = 'retired'"
        )
        .bind(*id)
        .fetch_optional(&mut *c)
        .await)?;
        retired.extend(row);
    }
    Ok(retired)
}
