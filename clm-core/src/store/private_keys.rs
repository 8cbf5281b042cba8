//! `private_keys`: sealed key material, 1:1 with certificates.

use crate::db::Conn;
use crate::model::{CertificateId, EncryptionKeyId, Opaque, PrivateKeyId, PrivateKeyRecord};
#[cfg(feature = "postgres")]
use crate::store::support::unnest_insert_sql;
use crate::store::support::{fetch_all, insert_one, insert_rows, require_row};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, on_conn, table};

table!(
    PrivateKeys,
    PrivateKeyRecord,
    "private_keys",
    "private key",
    id = crate::model::PrivateKeyId;
    insert |k| {
        id: k.id,
        certificate_id: k.certificate_id,
        encryption_key_id: k.encryption_key_id,
        encrypted_key_material: k.encrypted_key_material.0.as_slice(),
        nonce: k.nonce.0.as_slice(),
        key_algorithm: k.key_algorithm.as_str(),
        key_size: k.key_size,
        public_key_sha256: k.public_key_sha256.as_str(),
        created_at: k.created_at,
        updated_at: k.updated_at,
        deleted_at: k.deleted_at,
    }
);

#[derive(Debug, Clone, Default)]
pub struct PrivateKeyFilter {
    pub encryption_key_id: Option<EncryptionKeyId>,
    pub key_algorithm: Option<String>,
}

pub async fn insert(conn: &mut Conn<'_>, key: &PrivateKeyRecord) -> Result<()> {
    insert_one::<PrivateKeys>(conn, key).await
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

// ---------------------------------------------------------------- rotation

/// One key's new sealing, written by [`reseal_many`].
#[derive(Debug, Clone)]
pub struct Resealed {
    pub id: PrivateKeyId,
    pub encryption_key_id: EncryptionKeyId,
    pub encrypted_key_material: Opaque,
    pub nonce: Opaque,
}

/// The next `limit` keys sealed by `encryption_key_id` after `after`, in id
/// order, soft-deleted ones included: a deleted key may be restored, so it
/// must not be left under a data key that gets retired.
pub async fn batch_sealed_by(
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
    fetch_all(conn, "SELECT * FROM private_keys WHERE 1 = 1", &f, &tail).await
}

/// Keys sealed by `encryption_key_id`, soft-deleted ones included.
pub async fn count_sealed_by(
    conn: &mut Conn<'_>,
    encryption_key_id: EncryptionKeyId,
) -> Result<i64> {
    Ok(on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM private_keys WHERE encryption_key_id = $1"
    )
    .bind(encryption_key_id)
    .fetch_one(&mut *c)
    .await)?)
}

/// Rows per re-sealing UPDATE on SQLite (see `support::sqlite_rows_of`).
#[cfg(feature = "sqlite")]
const SQLITE_RESEAL_ROWS: usize = 64;

/// SQLite's re-sealing of `rows` keys in one statement: binds each row's
/// id, new data key, material and nonce, then the old data key. The rows
/// to change are found by key (`id IN` the list), each takes its values
/// from the list, and `updated_at` is set here so the row's trigger does
/// not update it a second time. An `UPDATE ... FROM` the list was planned,
/// at 64 rows, as a walk of every key under the old data key (647 keys/s
/// at 100,000).
#[cfg(feature = "sqlite")]
pub fn sqlite_reseal_sql(rows: usize) -> String {
    use crate::store::support::marks;
    let values = vec![format!("({})", marks(4)); rows].join(", ");
    format!(
        "WITH v (id, new_key_id, material, nonce) AS (VALUES {values})
         UPDATE private_keys
         SET (encryption_key_id, encrypted_key_material, nonce, updated_at) =
             (SELECT v.new_key_id, v.material, v.nonce,
                     strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')
              FROM v WHERE v.id = private_keys.id)
         WHERE id IN (SELECT id FROM v) AND encryption_key_id = ?"
    )
}

/// Re-seals many keys, each row only while it is still sealed by
/// `old_encryption_key_id` (a row changed meanwhile is left for the
/// rotation's final sweep). Returns the rows updated.
pub async fn reseal_many(
    conn: &mut Conn<'_>,
    old_encryption_key_id: EncryptionKeyId,
    rows: &[Resealed],
) -> Result<u64> {
    match conn {
        // One statement of column arrays: the same text, so the same
        // prepared statement and plan, whatever the batch's size.
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            use crate::store::support::column;
            let result = sqlx::query(
                "UPDATE private_keys SET encryption_key_id = v.new_key_id,
                     encrypted_key_material = v.material, nonce = v.nonce
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::bytea[], $4::bytea[])
                     AS v (id, new_key_id, material, nonce)
                 WHERE private_keys.id = v.id AND private_keys.encryption_key_id = $5",
            )
            .bind(column(rows, |r| r.id))
            .bind(column(rows, |r| r.encryption_key_id))
            .bind(column(rows, |r| &r.encrypted_key_material))
            .bind(column(rows, |r| &r.nonce))
            .bind(old_encryption_key_id)
            .execute(&mut **c)
            .await?;
            Ok(result.rows_affected())
        }
        // A few rows per statement (see `sqlite_reseal_sql`).
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            use crate::store::support::sqlite_rows_of;
            let mut updated = 0;
            let mut rest = rows;
            while !rest.is_empty() {
                let (chunk, after) = rest.split_at(sqlite_rows_of(SQLITE_RESEAL_ROWS, rest.len()));
                rest = after;
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sqlite_reseal_sql(chunk.len())));
                for row in chunk {
                    query = query
                        .bind(row.id)
                        .bind(row.encryption_key_id)
                        .bind(&row.encrypted_key_material)
                        .bind(&row.nonce);
                }
                updated += query
                    .bind(old_encryption_key_id)
                    .execute(&mut **c)
                    .await?
                    .rows_affected();
            }
            Ok(updated)
        }
    }
}

/// Inserts many keys (group commits, bulk loads): on PostgreSQL one
/// statement of column arrays, on SQLite one statement per chunk.
pub async fn insert_many(conn: &mut Conn<'_>, keys: &[PrivateKeyRecord]) -> Result<u64> {
    insert_rows::<PrivateKeys>(conn, keys).await
}

/// What an insert into `private_keys` returns to name the keys sealed
/// under a retired data key: each row's id and whether its key is retired.
#[cfg(feature = "postgres")]
pub(crate) const RETURNING_ID_AND_RETIRED: &str = "id, EXISTS (SELECT 1 FROM encryption_keys e
     WHERE e.id = private_keys.encryption_key_id AND e.key_status = 'retired') AS retired";

/// Inserts `keys` like [`insert_many`] and names those sealed under a data
/// key that is retired as the insert sees it. The caller holds the
/// data-key lock shared (`Pool::begin_secure_half`), so that view is fresh and
/// stays true until commit; it re-seals the named keys before committing.
/// On PostgreSQL the check rides on the insert (`RETURNING`), so the usual
/// case, nothing retired, costs no round trip of its own.
pub async fn insert_many_naming_retired(
    conn: &mut Conn<'_>,
    keys: &[PrivateKeyRecord],
) -> Result<Vec<PrivateKeyId>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    #[cfg(feature = "postgres")]
    #[cfg_attr(not(feature = "sqlite"), allow(irrefutable_let_patterns))]
    if let Conn::Postgres(c) = conn {
        use crate::store::{Insert as _, Table as _};
        use sqlx::Row as _;
        let sql = format!(
            "{} RETURNING {RETURNING_ID_AND_RETIRED}",
            unnest_insert_sql(
                PrivateKeys::NAME,
                PrivateKeys::INSERT_COLUMNS,
                PrivateKeys::INSERT_COLUMN_COUNT
            )
        );
        let rows = PrivateKeys::bind_columns(sqlx::query(sqlx::AssertSqlSafe(sql)), keys)
            .fetch_all(&mut **c)
            .await?;
        let mut retired = Vec::new();
        for row in rows {
            if row.try_get::<bool, _>(1)? {
                retired.push(row.try_get::<PrivateKeyId, _>(0)?);
            }
        }
        return Ok(retired);
    }
    // SQLite: the write lock is held; a second statement costs no round trip.
    insert_many(conn, keys).await?;
    let ids = crate::service::rotation::data_key_ids(keys);
    let retired_keys = crate::store::encryption_keys::retired_among(conn, &ids).await?;
    Ok(keys
        .iter()
        .filter(|k| retired_keys.iter().any(|r| r.id == k.encryption_key_id))
        .map(|k| k.id)
        .collect())
}
