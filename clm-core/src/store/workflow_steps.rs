//! `workflow_steps`: the steps of one workflow instance.

use crate::db::Conn;
use crate::model::{RoleId, UserId, WorkflowInstanceId, WorkflowStatus, WorkflowStep};
use crate::store::support::{fetch_all, require_row};
use crate::store::{Filter, Page, PageRequest, id_value, list};
use crate::{Result, exec, table};

table!(
    WorkflowSteps,
    WorkflowStep,
    "workflow_steps",
    "workflow step",
    id = crate::model::WorkflowStepId
);

#[derive(Debug, Clone, Default)]
pub struct WorkflowStepFilter {
    pub workflow_instance_id: Option<WorkflowInstanceId>,
    pub status: Option<WorkflowStatus>,
    pub assigned_to_user_id: Option<UserId>,
    pub assigned_to_role_id: Option<RoleId>,
}

pub async fn insert(conn: &mut Conn<'_>, step: &WorkflowStep) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO workflow_steps (id, workflow_instance_id, step_id, step_order, step_type, name, status,
            assigned_to_user_id, assigned_to_role_id, required_approvals, approvals, acted_by_user_id,
            decision_comment, started_at, completed_at, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    )
    .bind(step.id)
    .bind(step.workflow_instance_id)
    .bind(step.step_id)
    .bind(step.step_order)
    .bind(step.step_type)
    .bind(&step.name)
    .bind(step.status)
    .bind(step.assigned_to_user_id)
    .bind(step.assigned_to_role_id)
    .bind(step.required_approvals)
    .bind(&step.approvals)
    .bind(step.acted_by_user_id)
    .bind(&step.decision_comment)
    .bind(step.started_at)
    .bind(step.completed_at)
    .bind(step.created_at)
    .bind(step.updated_at)
    .bind(step.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns: status, approvals, decision, timing.
pub async fn update(conn: &mut Conn<'_>, step: &WorkflowStep) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE workflow_steps SET status = $2, approvals = $3, acted_by_user_id = $4, decision_comment = $5,
            started_at = $6, completed_at = $7
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(step.id)
    .bind(step.status)
    .bind(&step.approvals)
    .bind(step.acted_by_user_id)
    .bind(&step.decision_comment)
    .bind(step.started_at)
    .bind(step.completed_at)
    })?;
    require_row(affected, "workflow step", step.id)
}

pub async fn list_workflow_steps(
    conn: &mut Conn<'_>,
    filter: &WorkflowStepFilter,
    page: &PageRequest,
) -> Result<Page<WorkflowStep>> {
    let f = Filter::new()
        .eq_opt(
            "workflow_instance_id",
            filter.workflow_instance_id.map(id_value),
        )
        .eq_opt("status", filter.status.map(|s| s.as_str()))
        .eq_opt(
            "assigned_to_user_id",
            filter.assigned_to_user_id.map(id_value),
        )
        .eq_opt(
            "assigned_to_role_id",
            filter.assigned_to_role_id.map(id_value),
        );
    list::<WorkflowSteps>(conn, &f, page).await
}

/// Live steps of one instance in execution order.
pub async fn list_for_instance(
    conn: &mut Conn<'_>,
    instance_id: WorkflowInstanceId,
) -> Result<Vec<WorkflowStep>> {
    fetch_all(
        conn,
        "SELECT * FROM workflow_steps WHERE deleted_at IS NULL",
        &Filter::new().eq("workflow_instance_id", id_value(instance_id)),
        " ORDER BY step_order, id",
    )
    .await
}
