//! `workflows`: approval workflow definitions.

use crate::db::Conn;
use crate::model::{OrganizationId, Workflow, WorkflowDefinitionStatus};
use crate::store::support::require_row;
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, on_conn, table};

table!(
    Workflows,
    Workflow,
    "workflows",
    "workflow",
    id = crate::model::WorkflowId
);

#[derive(Debug, Clone, Default)]
pub struct WorkflowFilter {
    pub status: Option<WorkflowDefinitionStatus>,
    pub organization_id: Option<OrganizationId>,
}

pub async fn insert(conn: &mut Conn<'_>, workflow: &Workflow) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO workflows (id, workflow_code, name, description, workflow_definition, status, version,
            is_default, organization_id, created_by_user_id, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )
    .bind(workflow.id)
    .bind(&workflow.workflow_code)
    .bind(&workflow.name)
    .bind(&workflow.description)
    .bind(&workflow.workflow_definition)
    .bind(workflow.status)
    .bind(workflow.version)
    .bind(workflow.is_default)
    .bind(workflow.organization_id)
    .bind(workflow.created_by_user_id)
    .bind(workflow.created_at)
    .bind(workflow.updated_at)
    .bind(workflow.deleted_at)
    })?;
    Ok(())
}

pub async fn update(conn: &mut Conn<'_>, workflow: &Workflow) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE workflows SET name = $2, description = $3, workflow_definition = $4, status = $5, version = $6,
            is_default = $7, organization_id = $8
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(workflow.id)
    .bind(&workflow.name)
    .bind(&workflow.description)
    .bind(&workflow.workflow_definition)
    .bind(workflow.status)
    .bind(workflow.version)
    .bind(workflow.is_default)
    .bind(workflow.organization_id)
    })?;
    require_row(affected, "workflow", workflow.id)
}

pub async fn get_by_code(conn: &mut Conn<'_>, workflow_code: &str) -> Result<Workflow> {
    get_by::<Workflows>(conn, "workflow_code", workflow_code).await
}

/// The live default workflow (at most one: a partial unique index).
pub async fn find_default(conn: &mut Conn<'_>) -> Result<Option<Workflow>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, Workflow>(
        "SELECT * FROM workflows WHERE is_default AND deleted_at IS NULL LIMIT 1"
    )
    .fetch_optional(&mut *c)
    .await)?)
}

pub async fn list_workflows(
    conn: &mut Conn<'_>,
    filter: &WorkflowFilter,
    page: &PageRequest,
) -> Result<Page<Workflow>> {
    let f = Filter::new()
        .eq_opt("status", filter.status.map(|s| s.as_str()))
        .eq_opt("organization_id", filter.organization_id.map(id_value));
    list::<Workflows>(conn, &f, page).await
}
