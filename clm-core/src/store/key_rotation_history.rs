//! `key_rotation_history`: one row per data-key or master-key rotation, with
//! progress so an interrupted rotation resumes.

use crate::db::Conn;
use crate::model::{
    KeyRotation, KeyRotationId, PrivateKeyId, RotationStatus, RotationType, Timestamp,
};
use crate::store::support::require_row;
use crate::store::{Filter, Page, PageRequest, list};
use crate::{Result, exec, on_conn, table};

table!(
    KeyRotations,
    KeyRotation,
    "key_rotation_history",
    "key rotation",
    id = crate::model::KeyRotationId
);

#[derive(Debug, Clone, Default)]
pub struct KeyRotationFilter {
    pub rotation_type: Option<RotationType>,
    pub status: Option<RotationStatus>,
}

pub async fn insert(conn: &mut Conn<'_>, rotation: &KeyRotation) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO key_rotation_history (id, rotation_type, old_key_id, new_key_id, old_master_key_id,
            new_master_key_id, status, total_items, rotated_items, last_item_id, error_message,
            initiated_by_user_id, started_at, completed_at, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    )
    .bind(rotation.id)
    .bind(rotation.rotation_type)
    .bind(rotation.old_key_id)
    .bind(rotation.new_key_id)
    .bind(&rotation.old_master_key_id)
    .bind(&rotation.new_master_key_id)
    .bind(rotation.status)
    .bind(rotation.total_items)
    .bind(rotation.rotated_items)
    .bind(rotation.last_item_id)
    .bind(&rotation.error_message)
    .bind(rotation.initiated_by_user_id)
    .bind(rotation.started_at)
    .bind(rotation.completed_at)
    .bind(rotation.created_at)
    .bind(rotation.updated_at)
    .bind(rotation.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns: status, progress, outcome.
pub async fn update(conn: &mut Conn<'_>, rotation: &KeyRotation) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE key_rotation_history SET status = $2, total_items = $3, rotated_items = $4, last_item_id = $5,
            error_message = $6, completed_at = $7, new_key_id = $8, new_master_key_id = $9
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(rotation.id)
    .bind(rotation.status)
    .bind(rotation.total_items)
    .bind(rotation.rotated_items)
    .bind(rotation.last_item_id)
    .bind(&rotation.error_message)
    .bind(rotation.completed_at)
    .bind(rotation.new_key_id)
    .bind(&rotation.new_master_key_id)
    })?;
    require_row(affected, "key rotation", rotation.id)
}

pub async fn list_key_rotations(
    conn: &mut Conn<'_>,
    filter: &KeyRotationFilter,
    page: &PageRequest,
) -> Result<Page<KeyRotation>> {
    let f = Filter::new()
        .eq_opt("rotation_type", filter.rotation_type.map(|t| t.as_str()))
        .eq_opt("status", filter.status.map(|s| s.as_str()));
    list::<KeyRotations>(conn, &f, page).await
}

/// Records why a rotation in progress stopped, leaving its progress as it is.
pub async fn set_error(conn: &mut Conn<'_>, id: KeyRotationId, message: &str) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE key_rotation_history SET error_message = $2
         WHERE id = $1 AND status = 'in_progress' AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(message))?;
    require_row(affected, "running key rotation", id)
}

/// The rotation of this type in progress (at most one: a partial unique index).
pub async fn get_running(
    conn: &mut Conn<'_>,
    rotation_type: RotationType,
) -> Result<Option<KeyRotation>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, KeyRotation>(
        "SELECT * FROM key_rotation_history
         WHERE rotation_type = $1 AND status = 'in_progress' AND deleted_at IS NULL"
    )
    .bind(rotation_type)
    .fetch_optional(&mut *c)
    .await)?)
}

/// Records progress of a running rotation (the resume point).
pub async fn update_progress(
    conn: &mut Conn<'_>,
    id: KeyRotationId,
    rotated_items: i64,
    last_item_id: Option<PrivateKeyId>,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE key_rotation_history SET rotated_items = $2, last_item_id = $3
         WHERE id = $1 AND status = 'in_progress' AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(rotated_items)
    .bind(last_item_id))?;
    require_row(affected, "running key rotation", id)
}

/// Ends a running rotation as completed or failed.
pub async fn finish(
    conn: &mut Conn<'_>,
    id: KeyRotationId,
    status: RotationStatus,
    error_message: Option<&str>,
    at: Timestamp,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE key_rotation_history SET status = $2, error_message = $3, completed_at = $4
         WHERE id = $1 AND status = 'in_progress' AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(status)
    .bind(error_message)
    .bind(at))?;
    require_row(affected, "running key rotation", id)
}
