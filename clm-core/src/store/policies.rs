//! `policies`: certificate issuance rules.

use crate::db::Conn;
use crate::model::{OrganizationId, Policy, PolicyStatus, WorkflowId};
use crate::store::support::{in_ids_opt, require_row};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, table};

table!(
    Policies,
    Policy,
    "policies",
    "policy",
    id = crate::model::PolicyId
);

/// What a policy listing may filter on; every field set must match.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFilter {
    /// Only policies in this status.
    pub status: Option<PolicyStatus>,
    /// Only policies whose requests go to this approval workflow.
    pub workflow_id: Option<WorkflowId>,
    /// Only policies of these organizations (shared policies have none).
    pub organization_ids: Option<Vec<OrganizationId>>,
}

pub async fn insert(conn: &mut Conn<'_>, policy: &Policy) -> Result<()> {
    exec!(conn, |c| sqlx::query(
        "INSERT INTO policies (id, policy_code, name, description, policy_rules, status, version,
            organization_id, workflow_id, created_by_user_id, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    )
    .bind(policy.id)
    .bind(&policy.policy_code)
    .bind(&policy.name)
    .bind(&policy.description)
    .bind(&policy.policy_rules)
    .bind(policy.status)
    .bind(policy.version)
    .bind(policy.organization_id)
    .bind(policy.workflow_id)
    .bind(policy.created_by_user_id)
    .bind(policy.created_at)
    .bind(policy.updated_at)
    .bind(policy.deleted_at))?;
    Ok(())
}

pub async fn update(conn: &mut Conn<'_>, policy: &Policy) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE policies SET name = $2, description = $3, policy_rules = $4, status = $5, version = $6,
            organization_id = $7, workflow_id = $8
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(policy.id)
    .bind(&policy.name)
    .bind(&policy.description)
    .bind(&policy.policy_rules)
    .bind(policy.status)
    .bind(policy.version)
    .bind(policy.organization_id)
    .bind(policy.workflow_id)
    })?;
    require_row(affected, "policy", policy.id)
}

pub async fn get_by_code(conn: &mut Conn<'_>, policy_code: &str) -> Result<Policy> {
    get_by::<Policies>(conn, "policy_code", policy_code).await
}

pub async fn list_policies(
    conn: &mut Conn<'_>,
    filter: &PolicyFilter,
    page: &PageRequest,
) -> Result<Page<Policy>> {
    let f = Filter::new()
        .eq_opt("status", filter.status.map(|s| s.as_str()))
        .eq_opt("workflow_id", filter.workflow_id.map(id_value));
    let f = in_ids_opt(f, "organization_id", filter.organization_ids.as_ref());
    list::<Policies>(conn, &f, page).await
}

/// `renewal_threshold_days` of every live active policy, for status refresh.
pub async fn active_renewal_thresholds(
    conn: &mut Conn<'_>,
) -> Result<Vec<(crate::model::PolicyId, u32)>> {
    Ok(active_policy_rules(conn)
        .await?
        .into_iter()
        .map(|(id, rules)| (id, rules.renewal_threshold_days))
        .collect())
}

/// Active policies whose rules turn auto-renewal on.
pub async fn auto_renewal_policies(conn: &mut Conn<'_>) -> Result<Vec<crate::model::PolicyId>> {
    Ok(active_policy_rules(conn)
        .await?
        .into_iter()
        .filter(|(_, rules)| rules.auto_renewal)
        .map(|(id, _)| id)
        .collect())
}

async fn active_policy_rules(
    conn: &mut Conn<'_>,
) -> Result<Vec<(crate::model::PolicyId, crate::model::PolicyRules)>> {
    let rows = crate::on_conn!(conn, |c| sqlx::query_as::<
        _,
        (
            crate::model::PolicyId,
            sqlx::types::Json<crate::model::PolicyRules>
        ),
    >(
        "SELECT id, policy_rules FROM policies WHERE deleted_at IS NULL AND status = 'active'"
    )
    .fetch_all(&mut *c)
    .await)?;
    Ok(rows.into_iter().map(|(id, rules)| (id, rules.0)).collect())
}
