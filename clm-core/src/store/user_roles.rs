//! `user_roles`: grants of roles to users. A revoked grant stays as history.

use crate::db::Conn;
use crate::model::{RoleId, Timestamp, UserId, UserRole, UserRoleId};
use crate::store::support::require_row;
use crate::store::{Filter, Page, PageRequest, id_value, list};
use crate::{Result, exec, on_conn, table};

table!(
    UserRoles,
    UserRole,
    "user_roles",
    "role assignment",
    id = crate::model::UserRoleId
);

#[derive(Debug, Clone, Default)]
pub struct UserRoleFilter {
    pub user_id: Option<UserId>,
    pub role_id: Option<RoleId>,
    /// Only unrevoked grants.
    pub current_only: bool,
}

pub async fn insert(conn: &mut Conn<'_>, grant: &UserRole) -> Result<()> {
    exec!(conn, |c| sqlx::query(
        "INSERT INTO user_roles (id, user_id, role_id, granted_by_user_id, granted_at, revoked_at,
            revoked_by_user_id, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(grant.id)
    .bind(grant.user_id)
    .bind(grant.role_id)
    .bind(grant.granted_by_user_id)
    .bind(grant.granted_at)
    .bind(grant.revoked_at)
    .bind(grant.revoked_by_user_id)
    .bind(grant.created_at)
    .bind(grant.updated_at)
    .bind(grant.deleted_at))?;
    Ok(())
}

/// Writes the mutable columns (revocation).
pub async fn update(conn: &mut Conn<'_>, grant: &UserRole) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE user_roles SET revoked_at = $2, revoked_by_user_id = $3 WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(grant.id)
    .bind(grant.revoked_at)
    .bind(grant.revoked_by_user_id)
    })?;
    require_row(affected, "role assignment", grant.id)
}

pub async fn list_user_roles(
    conn: &mut Conn<'_>,
    filter: &UserRoleFilter,
    page: &PageRequest,
) -> Result<Page<UserRole>> {
    let mut f = Filter::new()
        .eq_opt("user_id", filter.user_id.map(id_value))
        .eq_opt("role_id", filter.role_id.map(id_value));
    if filter.current_only {
        f = f.clause("revoked_at IS NULL", Vec::new());
    }
    list::<UserRoles>(conn, &f, page).await
}

/// The standing grant of `role_id` to `user_id`, if any.
pub async fn find_current(
    conn: &mut Conn<'_>,
    user_id: UserId,
    role_id: RoleId,
) -> Result<Option<UserRole>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, UserRole>(
        "SELECT * FROM user_roles
         WHERE user_id = $1 AND role_id = $2 AND revoked_at IS NULL AND deleted_at IS NULL"
    )
    .bind(user_id)
    .bind(role_id)
    .fetch_optional(&mut *c)
    .await)?)
}

/// Revokes a standing grant. NotFound when it is absent or already revoked.
pub async fn revoke(
    conn: &mut Conn<'_>,
    id: UserRoleId,
    by: Option<UserId>,
    at: Timestamp,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE user_roles SET revoked_at = $2, revoked_by_user_id = $3
         WHERE id = $1 AND revoked_at IS NULL AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(at)
    .bind(by))?;
    require_row(affected, "role assignment", id)
}

/// Revokes every standing grant of a role (the role is being deleted);
/// returns how many.
pub async fn revoke_all_for_role(
    conn: &mut Conn<'_>,
    role_id: RoleId,
    by: Option<UserId>,
    at: Timestamp,
) -> Result<u64> {
    exec!(conn, |c| sqlx::query(
        "UPDATE user_roles SET revoked_at = $2, revoked_by_user_id = $3
         WHERE role_id = $1 AND revoked_at IS NULL AND deleted_at IS NULL"
    )
    .bind(role_id)
    .bind(at)
    .bind(by))
    .map_err(Into::into)
}

/// Users holding the role now (live users only).
pub async fn holders_of_role(conn: &mut Conn<'_>, role_id: RoleId) -> Result<Vec<UserId>> {
    Ok(on_conn!(conn, |c| {
        sqlx::query_scalar::<_, UserId>(
        "SELECT ur.user_id FROM user_roles ur JOIN users u ON u.id = ur.user_id
         WHERE ur.role_id = $1 AND ur.revoked_at IS NULL AND ur.deleted_at IS NULL AND u.deleted_at IS NULL
         ORDER BY ur.user_id"
    )
    .bind(role_id)
    .fetch_all(&mut *c)
    .await
    })?)
}
