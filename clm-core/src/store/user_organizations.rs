//! `user_organizations`: memberships.

use crate::db::Conn;
use crate::model::{OrganizationId, UserId, UserOrganization};
use crate::store::support::require_row;
use crate::store::{Filter, Page, PageRequest, id_value, list};
use crate::{Result, exec, on_conn, table};

table!(
    UserOrganizations,
    UserOrganization,
    "user_organizations",
    "membership",
    id = crate::model::UserOrganizationId
);

#[derive(Debug, Clone, Default)]
pub struct UserOrganizationFilter {
    pub user_id: Option<UserId>,
    pub organization_id: Option<OrganizationId>,
    pub membership_role: Option<String>,
}

pub async fn insert(conn: &mut Conn<'_>, membership: &UserOrganization) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO user_organizations (id, user_id, organization_id, membership_role, joined_at, created_at,
            updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )
    .bind(membership.id)
    .bind(membership.user_id)
    .bind(membership.organization_id)
    .bind(&membership.membership_role)
    .bind(membership.joined_at)
    .bind(membership.created_at)
    .bind(membership.updated_at)
    .bind(membership.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable column (membership role).
pub async fn update(conn: &mut Conn<'_>, membership: &UserOrganization) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE user_organizations SET membership_role = $2 WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(membership.id)
    .bind(&membership.membership_role)
    })?;
    require_row(affected, "membership", membership.id)
}

pub async fn list_user_organizations(
    conn: &mut Conn<'_>,
    filter: &UserOrganizationFilter,
    page: &PageRequest,
) -> Result<Page<UserOrganization>> {
    let f = Filter::new()
        .eq_opt("user_id", filter.user_id.map(id_value))
        .eq_opt("organization_id", filter.organization_id.map(id_value))
        .eq_opt("membership_role", filter.membership_role.clone());
    list::<UserOrganizations>(conn, &f, page).await
}

/// Organizations the user is a live member of (live organizations only).
pub async fn organizations_of_user(
    conn: &mut Conn<'_>,
    user_id: UserId,
) -> Result<Vec<OrganizationId>> {
    Ok(on_conn!(conn, |c| {
        sqlx::query_scalar::<_, OrganizationId>(
        "SELECT m.organization_id FROM user_organizations m JOIN organizations o ON o.id = m.organization_id
         WHERE m.user_id = $1 AND m.deleted_at IS NULL AND o.deleted_at IS NULL
         ORDER BY m.organization_id"
    )
    .bind(user_id)
    .fetch_all(&mut *c)
    .await
    })?)
}

pub async fn find_membership(
    conn: &mut Conn<'_>,
    user_id: UserId,
    organization_id: OrganizationId,
) -> Result<Option<UserOrganization>> {
    Ok(on_conn!(conn, |c| {
        sqlx::query_as::<_, UserOrganization>(
        "SELECT * FROM user_organizations WHERE user_id = $1 AND organization_id = $2 AND deleted_at IS NULL"
    )
    .bind(user_id)
    .bind(organization_id)
    .fetch_optional(&mut *c)
    .await
    })?)
}

/// Memberships of one organization, in id order.
pub async fn members_of(
    conn: &mut Conn<'_>,
    organization_id: OrganizationId,
    page: &PageRequest,
) -> Result<Page<UserOrganization>> {
    let f = Filter::new().eq("organization_id", id_value(organization_id));
    list::<UserOrganizations>(conn, &f, page).await
}

/// Organizations the user is a live member of that are active: the only
/// ones a user acts in (a suspended or archived organization stops working).
pub async fn active_organizations_of_user(
    conn: &mut Conn<'_>,
    user_id: UserId,
) -> Result<Vec<OrganizationId>> {
    Ok(on_conn!(conn, |c| {
        sqlx::query_scalar::<_, OrganizationId>(
        "SELECT m.organization_id FROM user_organizations m JOIN organizations o ON o.id = m.organization_id
         WHERE m.user_id = $1 AND m.deleted_at IS NULL AND o.deleted_at IS NULL AND o.status = 'active'
         ORDER BY m.organization_id"
    )
    .bind(user_id)
    .fetch_all(&mut *c)
    .await
    })?)
}
