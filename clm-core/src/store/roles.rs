//! `roles`: named permission sets.

use crate::db::Conn;
use crate::model::{OrganizationId, Role, UserId};
use crate::store::support::{fetch_all, require_row};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, table};

table!(Roles, Role, "roles", "role", id = crate::model::RoleId);

#[derive(Debug, Clone, Default)]
pub struct RoleFilter {
    pub organization_id: Option<OrganizationId>,
    pub is_builtin: Option<bool>,
}

pub async fn insert(conn: &mut Conn<'_>, role: &Role) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO roles (id, role_code, role_name, description, permissions, is_builtin, organization_id,
            created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )
    .bind(role.id)
    .bind(&role.role_code)
    .bind(&role.role_name)
    .bind(&role.description)
    .bind(&role.permissions)
    .bind(role.is_builtin)
    .bind(role.organization_id)
    .bind(role.created_at)
    .bind(role.updated_at)
    .bind(role.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns (the code is the role's identity and stays).
pub async fn update(conn: &mut Conn<'_>, role: &Role) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE roles SET role_name = $2, description = $3, permissions = $4, organization_id = $5
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(role.id)
    .bind(&role.role_name)
    .bind(&role.description)
    .bind(&role.permissions)
    .bind(role.organization_id)
    })?;
    require_row(affected, "role", role.id)
}

pub async fn get_by_code(conn: &mut Conn<'_>, role_code: &str) -> Result<Role> {
    get_by::<Roles>(conn, "role_code", role_code).await
}

pub async fn list_roles(
    conn: &mut Conn<'_>,
    filter: &RoleFilter,
    page: &PageRequest,
) -> Result<Page<Role>> {
    let f = Filter::new()
        .eq_opt("organization_id", filter.organization_id.map(id_value))
        .eq_opt("is_builtin", filter.is_builtin);
    list::<Roles>(conn, &f, page).await
}

/// Live roles the user currently holds (unrevoked, undeleted grants), by code.
pub async fn roles_of_user(conn: &mut Conn<'_>, user_id: UserId) -> Result<Vec<Role>> {
    fetch_all(
        conn,
        "SELECT r.* FROM roles r JOIN user_roles ur ON ur.role_id = r.id
         WHERE ur.revoked_at IS NULL AND ur.deleted_at IS NULL AND r.deleted_at IS NULL",
        &Filter::new().eq("ur.user_id", id_value(user_id)),
        " ORDER BY r.role_code",
    )
    .await
}
