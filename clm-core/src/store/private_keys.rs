//! `private_keys`: sealed key material, 1:1 with certificates.

use crate::db::Conn;
use crate::model::{CertificateId, EncryptionKeyId, Opaque, PrivateKeyId, PrivateKeyRecord};
use crate::store::support::{fetch_all, require_row};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, on_conn, table};

table!(PrivateKeys, PrivateKeyRecord, "private_keys", "private key");

#[derive(Debug, Clone, Default)]
pub struct PrivateKeyFilter {
    pub encryption_key_id: Option<EncryptionKeyId>,
    pub key_algorithm: Option<String>,
}

pub async fn insert(conn: &mut Conn<'_>, key: &PrivateKeyRecord) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO private_keys (id, certificate_id, encryption_key_id, encrypted_key_material, nonce,
            key_algorithm, key_size, public_key_sha256, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )
    .bind(key.id)
    .bind(key.certificate_id)
    .bind(key.encryption_key_id)
    .bind(&key.encrypted_key_material)
    .bind(&key.nonce)
    .bind(&key.key_algorithm)
    .bind(key.key_size)
    .bind(&key.public_key_sha256)
    .bind(key.created_at)
    .bind(key.updated_at)
    .bind(key.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns: the sealing (key, material, nonce).
pub async fn update(conn: &mut Conn<'_>, key: &PrivateKeyRecord) -> Result<()> {
    reseal(
        conn,
        key.id,
        key.encryption_key_id,
        &key.encrypted_key_material,
        &key.nonce,
    )
    .await
}

pub async fn get_by_certificate(
    conn: &mut Conn<'_>,
    certificate_id: CertificateId,
) -> Result<PrivateKeyRecord> {
    get_by::<PrivateKeys>(conn, "certificate_id", id_value(certificate_id)).await
}

pub async fn list_private_keys(
    conn: &mut Conn<'_>,
    filter: &PrivateKeyFilter,
    page: &PageRequest,
) -> Result<Page<PrivateKeyRecord>> {
    let f = Filter::new()
        .eq_opt("encryption_key_id", filter.encryption_key_id.map(id_value))
        .eq_opt("key_algorithm", filter.key_algorithm.clone());
    list::<PrivateKeys>(conn, &f, page).await
}

/// The next `limit` live keys sealed by `encryption_key_id` after `after`, in
/// id order: a rotation resumes from its last item.
pub async fn batch_for_key(
    conn: &mut Conn<'_>,
    encryption_key_id: EncryptionKeyId,
    after: Option<PrivateKeyId>,
    limit: u32,
) -> Result<Vec<PrivateKeyRecord>> {
    let mut f = Filter::new().eq("encryption_key_id", id_value(encryption_key_id));
    if let Some(after) = after {
        f = f.clause("id > ?", vec![id_value(after)]);
    }
    let tail = format!(" ORDER BY id LIMIT {}", limit.max(1));
    fetch_all(
        conn,
        "SELECT * FROM private_keys WHERE deleted_at IS NULL",
        &f,
        &tail,
    )
    .await
}

/// Replaces the sealing of one key (rotation).
pub async fn reseal(
    conn: &mut Conn<'_>,
    id: PrivateKeyId,
    new_encryption_key_id: EncryptionKeyId,
    material: &Opaque,
    nonce: &Opaque,
) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE private_keys SET encryption_key_id = $2, encrypted_key_material = $3, nonce = $4
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(new_encryption_key_id)
    .bind(material)
    .bind(nonce)
    })?;
    require_row(affected, "private key", id)
}

/// Live keys still sealed by `encryption_key_id`.
pub async fn count_for_key(conn: &mut Conn<'_>, encryption_key_id: EncryptionKeyId) -> Result<i64> {
    Ok(on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM private_keys WHERE encryption_key_id = $1 AND deleted_at IS NULL"
    )
    .bind(encryption_key_id)
    .fetch_one(&mut *c)
    .await)?)
}
