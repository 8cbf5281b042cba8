//! `api_keys`: hashed API credentials.

use crate::db::Conn;
use crate::model::{ApiKey, ApiKeyId, OrganizationId, Timestamp, UserId};
use crate::store::support::require_row;
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, table};

table!(
    ApiKeys,
    ApiKey,
    "api_keys",
    "api key",
    id = crate::model::ApiKeyId
);

#[derive(Debug, Clone, Default)]
pub struct ApiKeyFilter {
    pub user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    /// Only unrevoked keys.
    pub unrevoked_only: bool,
}

pub async fn insert(conn: &mut Conn<'_>, key: &ApiKey) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO api_keys (id, key_id, key_hash, name, user_id, organization_id, scopes, expires_at,
            last_used_at, revoked_at, revoked_by_user_id, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    )
    .bind(key.id)
    .bind(&key.key_id)
    .bind(&key.key_hash)
    .bind(&key.name)
    .bind(key.user_id)
    .bind(key.organization_id)
    .bind(&key.scopes)
    .bind(key.expires_at)
    .bind(key.last_used_at)
    .bind(key.revoked_at)
    .bind(key.revoked_by_user_id)
    .bind(key.created_at)
    .bind(key.updated_at)
    .bind(key.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns (name, scopes, expiry, usage, revocation); the
/// key and its hash never change.
pub async fn update(conn: &mut Conn<'_>, key: &ApiKey) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE api_keys SET name = $2, organization_id = $3, scopes = $4, expires_at = $5, last_used_at = $6,
            revoked_at = $7, revoked_by_user_id = $8
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(key.id)
    .bind(&key.name)
    .bind(key.organization_id)
    .bind(&key.scopes)
    .bind(key.expires_at)
    .bind(key.last_used_at)
    .bind(key.revoked_at)
    .bind(key.revoked_by_user_id)
    })?;
    require_row(affected, "api key", key.id)
}

pub async fn get_by_key_id(conn: &mut Conn<'_>, key_id: &str) -> Result<ApiKey> {
    get_by::<ApiKeys>(conn, "key_id", key_id).await
}

pub async fn get_by_key_hash(conn: &mut Conn<'_>, key_hash: &str) -> Result<ApiKey> {
    get_by::<ApiKeys>(conn, "key_hash", key_hash).await
}

pub async fn list_api_keys(
    conn: &mut Conn<'_>,
    filter: &ApiKeyFilter,
    page: &PageRequest,
) -> Result<Page<ApiKey>> {
    let mut f = Filter::new()
        .eq_opt("user_id", filter.user_id.map(id_value))
        .eq_opt("organization_id", filter.organization_id.map(id_value));
    if filter.unrevoked_only {
        f = f.clause("revoked_at IS NULL", Vec::new());
    }
    list::<ApiKeys>(conn, &f, page).await
}

pub async fn touch_last_used(conn: &mut Conn<'_>, id: ApiKeyId, at: Timestamp) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(at))?;
    require_row(affected, "api key", id)
}

/// Revokes a key. NotFound when it is absent or already revoked.
pub async fn revoke(
    conn: &mut Conn<'_>,
    id: ApiKeyId,
    by: Option<UserId>,
    at: Timestamp,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE api_keys SET revoked_at = $2, revoked_by_user_id = $3
         WHERE id = $1 AND revoked_at IS NULL AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(at)
    .bind(by))?;
    require_row(affected, "api key", id)
}
