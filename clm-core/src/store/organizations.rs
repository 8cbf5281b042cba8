//! `organizations`: tenants, optionally nested.

use crate::db::Conn;
use crate::model::{Organization, OrganizationId, OrganizationStatus};
use crate::store::support::{contains_ci, require_row};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, table};

table!(
    Organizations,
    Organization,
    "organizations",
    "organization",
    id = crate::model::OrganizationId
);

#[derive(Debug, Clone, Default)]
pub struct OrganizationFilter {
    pub status: Option<OrganizationStatus>,
    pub parent_organization_id: Option<OrganizationId>,
    /// Case-insensitive substring of the name.
    pub name: Option<String>,
}

pub async fn insert(conn: &mut Conn<'_>, org: &Organization) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO organizations (id, org_code, name, description, status, parent_organization_id,
            created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )
    .bind(org.id)
    .bind(&org.org_code)
    .bind(&org.name)
    .bind(&org.description)
    .bind(org.status)
    .bind(org.parent_organization_id)
    .bind(org.created_at)
    .bind(org.updated_at)
    .bind(org.deleted_at)
    })?;
    Ok(())
}

pub async fn update(conn: &mut Conn<'_>, org: &Organization) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE organizations SET name = $2, description = $3, status = $4, parent_organization_id = $5
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(org.id)
    .bind(&org.name)
    .bind(&org.description)
    .bind(org.status)
    .bind(org.parent_organization_id)
    })?;
    require_row(affected, "organization", org.id)
}

pub async fn get_by_code(conn: &mut Conn<'_>, org_code: &str) -> Result<Organization> {
    get_by::<Organizations>(conn, "org_code", org_code).await
}

pub async fn list_organizations(
    conn: &mut Conn<'_>,
    filter: &OrganizationFilter,
    page: &PageRequest,
) -> Result<Page<Organization>> {
    let dialect = conn.dialect();
    let mut f = Filter::new()
        .eq_opt("status", filter.status.map(|s| s.as_str()))
        .eq_opt(
            "parent_organization_id",
            filter.parent_organization_id.map(id_value),
        );
    if let Some(name) = &filter.name {
        f = contains_ci(f, dialect, "name", name);
    }
    list::<Organizations>(conn, &f, page).await
}
