//! `workflow_instances`: one run of a workflow for one subject.

use crate::db::Conn;
use crate::model::{
    OrganizationId, ResourceId, Timestamp, UserId, WorkflowId, WorkflowInstance, WorkflowStatus,
};
use crate::store::support::{fetch_all, in_ids_opt, in_texts, placeholders, require_row};
use crate::store::{Filter, Page, PageRequest, Value, id_value, list};
use crate::{Result, exec, table};

table!(
    WorkflowInstances,
    WorkflowInstance,
    "workflow_instances",
    "workflow instance",
    id = crate::model::WorkflowInstanceId
);

#[derive(Debug, Clone, Default)]
pub struct WorkflowInstanceFilter {
    pub status: Option<Vec<WorkflowStatus>>,
    pub workflow_id: Option<WorkflowId>,
    pub requested_by_user_id: Option<UserId>,
    pub subject_id: Option<ResourceId>,
    pub organization_ids: Option<Vec<OrganizationId>>,
}

pub async fn insert(conn: &mut Conn<'_>, instance: &WorkflowInstance) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO workflow_instances (id, workflow_id, workflow_version, status, subject_type, subject_id,
            requested_by_user_id, organization_id, current_step_order, certificate_id, error_message, expires_at,
            started_at, completed_at, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    )
    .bind(instance.id)
    .bind(instance.workflow_id)
    .bind(instance.workflow_version)
    .bind(instance.status)
    .bind(&instance.subject_type)
    .bind(instance.subject_id)
    .bind(instance.requested_by_user_id)
    .bind(instance.organization_id)
    .bind(instance.current_step_order)
    .bind(instance.certificate_id)
    .bind(&instance.error_message)
    .bind(instance.expires_at)
    .bind(instance.started_at)
    .bind(instance.completed_at)
    .bind(instance.created_at)
    .bind(instance.updated_at)
    .bind(instance.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns: status, current step, outcome.
pub async fn update(conn: &mut Conn<'_>, instance: &WorkflowInstance) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE workflow_instances SET status = $2, current_step_order = $3, certificate_id = $4,
            error_message = $5, completed_at = $6
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(instance.id)
    .bind(instance.status)
    .bind(instance.current_step_order)
    .bind(instance.certificate_id)
    .bind(&instance.error_message)
    .bind(instance.completed_at)
    })?;
    require_row(affected, "workflow instance", instance.id)
}

pub async fn list_workflow_instances(
    conn: &mut Conn<'_>,
    filter: &WorkflowInstanceFilter,
    page: &PageRequest,
) -> Result<Page<WorkflowInstance>> {
    let mut f = Filter::new()
        .eq_opt("workflow_id", filter.workflow_id.map(id_value))
        .eq_opt(
            "requested_by_user_id",
            filter.requested_by_user_id.map(id_value),
        )
        .eq_opt("subject_id", filter.subject_id.map(id_value));
    if let Some(status) = &filter.status {
        f = in_texts(f, "status", status);
    }
    f = in_ids_opt(f, "organization_id", filter.organization_ids.as_ref());
    list::<WorkflowInstances>(conn, &f, page).await
}

/// Unfinished instances (initiated, in progress or awaiting approval) whose
/// `expires_at` has passed, oldest deadline first.
pub async fn list_expired_pending(
    conn: &mut Conn<'_>,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<WorkflowInstance>> {
    let tail = format!(" ORDER BY expires_at, id LIMIT {}", limit.max(1));
    fetch_all(
        conn,
        "SELECT * FROM workflow_instances
         WHERE deleted_at IS NULL AND status IN ('initiated', 'in_progress', 'pending_approval')
           AND expires_at IS NOT NULL",
        &Filter::new().clause("expires_at <= ?", vec![Value::Time(now)]),
        &tail,
    )
    .await
}

/// The instances among `ids` that ended without an issuance (rejected or
/// cancelled, which includes expired).
pub async fn ended_unissued_among(
    conn: &mut Conn<'_>,
    ids: &[crate::model::WorkflowInstanceId],
) -> Result<Vec<WorkflowInstance>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let marks = placeholders(conn.dialect(), 1, ids.len());
    let sql = format!(
        "SELECT * FROM workflow_instances
         WHERE status IN ('rejected', 'cancelled') AND id IN ({marks})"
    );
    Ok(crate::on_conn!(conn, |c| {
        let mut query = sqlx::query_as::<_, WorkflowInstance>(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(*id);
        }
        query.fetch_all(&mut *c).await
    })?)
}

/// Ids of live instances in status `approved` after `after`, in id order:
/// approvals whose issuance was interrupted (or is running now), for the
/// reconcile walk.
pub async fn approved_ids_after(
    conn: &mut Conn<'_>,
    after: Option<crate::model::WorkflowInstanceId>,
    limit: u32,
) -> Result<Vec<crate::model::WorkflowInstanceId>> {
    let after = after.unwrap_or(crate::model::WorkflowInstanceId(uuid::Uuid::nil()));
    Ok(crate::on_conn!(conn, |c| sqlx::query_scalar::<
        _,
        crate::model::WorkflowInstanceId,
    >(
        "SELECT id FROM workflow_instances
         WHERE status = 'approved' AND deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await)?)
}

/// Reads a live instance and, on PostgreSQL, locks its row until the
/// transaction ends (SQLite write transactions already hold the database
/// lock): two approvers acting at once are serialized here.
pub async fn get_for_update(
    conn: &mut Conn<'_>,
    id: crate::model::WorkflowInstanceId,
) -> Result<WorkflowInstance> {
    let sql = format!(
        "SELECT * FROM workflow_instances WHERE id = $1 AND deleted_at IS NULL{}",
        conn.dialect().for_update()
    );
    let row = crate::on_conn!(conn, |c| sqlx::query_as::<_, WorkflowInstance>(
        sqlx::AssertSqlSafe(sql)
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)?;
    row.ok_or_else(|| crate::Error::not_found("workflow instance", id))
}
