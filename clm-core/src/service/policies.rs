//! Certificate policies: versioned rule documents, organization-scoped.

use serde_json::json;

use crate::model::{OrganizationId, Policy, PolicyId, PolicyRules, PolicyStatus, WorkflowId};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, append, commit_audited};
use crate::store::audit::AuditLogKind;
use crate::store::certificates::Certificates;
use crate::store::policies::{Policies, PolicyFilter};
use crate::store::{self, Page, PageRequest, now, policies};
use crate::{Clm, Error, Result};

/// Policies read for issuance, by id (see [`crate::service::cache::TtlCache`]).
pub type PolicyCache = crate::service::cache::TtlCache<PolicyId, Policy>;

/// A policy to create.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    /// Unique code, 2-64 letters, digits, `_`, `-` or `.` (`WEB-TLS`).
    pub policy_code: String,
    /// Display name; required.
    pub name: String,
    /// Free text for people.
    pub description: Option<String>,
    /// The policy rules document (an object or JSON text); default: the
    /// default rules.
    #[serde(default, deserialize_with = "crate::model::documents::document")]
    pub rules: PolicyRules,
    /// Default active; a policy in any other status refuses issuance.
    #[serde(default = "active")]
    pub status: PolicyStatus,
    /// None = a shared policy (global administrators only).
    pub organization_id: Option<OrganizationId>,
    /// The approval workflow for its requests, unless the rules name one
    /// (`workflow_code`); None: the default workflow.
    pub workflow_id: Option<WorkflowId>,
}

fn active() -> PolicyStatus {
    PolicyStatus::Active
}

impl Default for NewPolicy {
    fn default() -> Self {
        NewPolicy {
            policy_code: String::new(),
            name: String::new(),
            description: None,
            rules: PolicyRules::default(),
            status: PolicyStatus::Active,
            organization_id: None,
            workflow_id: None,
        }
    }
}

/// Changes to a policy; new rules bump its version.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    /// A new display name (not blank).
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New rules (an object or JSON text).
    #[serde(
        default,
        deserialize_with = "crate::model::documents::optional_document"
    )]
    pub rules: Option<PolicyRules>,
    /// A new status; only active policies allow issuance.
    pub status: Option<PolicyStatus>,
    /// A new approval workflow (there is no clearing it back to None).
    pub workflow_id: Option<WorkflowId>,
}

impl Clm {
    /// Creates a policy at version 1. Needs `policies:create` in its
    /// organization; the CAs its rules list must be of that organization or
    /// shared.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn create_policy(&self, actor: &Actor, new: NewPolicy) -> Result<Policy> {
        self.authorize(
            actor,
            Access::new("policies", "create").in_org(new.organization_id),
        )
        .await?;
        let code = new.policy_code.trim();
        if !(2..=64).contains(&code.len())
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(Error::invalid(
                "policy_code",
                "must be 2-64 characters of letters, digits, '_', '-' or '.'",
            ));
        }
        if new.name.trim().is_empty() {
            return Err(Error::invalid("name", "is required"));
        }
        new.rules.validate()?;
        self.check_issuer_bindings(actor, &new.rules, new.organization_id)
            .await?;
        let at = now();
        let policy = Policy {
            id: PolicyId::new(),
            policy_code: code.into(),
            name: new.name.trim().into(),
            description: new.description,
            policy_rules: sqlx::types::Json(new.rules),
            status: new.status,
            version: 1,
            organization_id: new.organization_id,
            workflow_id: new.workflow_id,
            created_by_user_id: actor.user_id(),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut tx = self.databases().core.begin().await?;
        policies::insert(&mut tx.conn(), &policy).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("policy.created", "create")
                .resource("policy", policy.id)
                .org(policy.organization_id)
                .details(
                    json!({"policy_code": policy.policy_code, "rules": policy.policy_rules.0}),
                ),
        )
        .await?;
        tx.commit().await?;
        Ok(policy)
    }

    /// A policy by id. Needs `policies:read` where it applies; one out of
    /// reach is NotFound.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_policy(&self, actor: &Actor, id: PolicyId) -> Result<Policy> {
        self.authorized_policy(actor, "read", id, false).await
    }

    /// The policy `id` for `policies:action`, decided before any write:
    /// NotFound when missing or out of reach.
    async fn authorized_policy(
        &self,
        actor: &Actor,
        action: &str,
        id: PolicyId,
        include_deleted: bool,
    ) -> Result<Policy> {
        self.gate(actor, "policies", action).await?;
        let policy = {
            let mut conn = self.databases().core.acquire().await?;
            store::get::<Policies>(&mut conn.conn(), id, include_deleted).await?
        };
        self.authorize_visible(
            actor,
            Access::new("policies", action).in_org(policy.organization_id),
            "policy",
            id,
        )
        .await?;
        Ok(policy)
    }

    /// The CAs a policy lists must be ones it can bind: a CA of the policy's
    /// own organization, or a shared CA; binding a shared CA to an
    /// organization is the global administrators' decision (it is what lets
    /// the organization use that CA).
    async fn check_issuer_bindings(
        &self,
        actor: &Actor,
        rules: &PolicyRules,
        organization: Option<OrganizationId>,
    ) -> Result<()> {
        for (index, ca_id) in rules.issuer_ids.iter().enumerate() {
            let field = format!("policy_rules.issuer_ids[{index}]");
            let ca = {
                let mut conn = self.databases().secure.acquire().await?;
                store::find_by::<Certificates>(&mut conn.conn(), "id", store::id_value(*ca_id))
                    .await?
            };
            let bindable = ca.as_ref().is_some_and(|ca| {
                ca.is_ca
                    && ca.deleted_at.is_none()
                    && (ca.organization_id.is_none() || ca.organization_id == organization)
                    && actor.reaches(ca.organization_id)
            });
            if !bindable {
                return Err(Error::invalid(
                    field,
                    format!("{ca_id} is not a CA of this policy's organization or a shared CA"),
                ));
            }
            if organization.is_some() && ca.is_some_and(|ca| ca.organization_id.is_none()) {
                self.authorize(actor, Access::new("authorities", "create"))
                    .await?;
            }
        }
        Ok(())
    }

    /// A policy by its `policy_code`, as [`Clm::get_policy`].
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_policy_by_code(&self, actor: &Actor, code: &str) -> Result<Policy> {
        let id = {
            let mut conn = self.databases().core.acquire().await?;
            store::get_by::<Policies>(&mut conn.conn(), "policy_code", code)
                .await?
                .id
        };
        self.get_policy(actor, id).await
    }

    /// Policies the actor can see: its organizations' and the shared ones.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_policies(
        &self,
        actor: &Actor,
        filter: &PolicyFilter,
        page: &PageRequest,
    ) -> Result<Page<Policy>> {
        self.authorize(actor, Access::new("policies", "read"))
            .await?;
        let mut conn = self.databases().acquire_core_read().await?;
        let mut f = crate::store::Filter::new()
            .eq_opt("status", filter.status.map(|s| s.as_str()))
            .eq_opt(
                "workflow_id",
                filter.workflow_id.map(crate::store::id_value),
            );
        f = crate::store::support::in_ids_opt(
            f,
            "organization_id",
            filter.organization_ids.as_ref(),
        );
        f = crate::store::support::shared_or_in_orgs(
            f,
            "organization_id",
            actor.organizations_where("policies", "read").as_ref(),
        );
        store::list::<Policies>(&mut conn.conn(), &f, page).await
    }

    /// Changes a policy. Needs `policies:update` where it applies; new rules
    /// bump its version (certificates keep the version they were issued under).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn update_policy(
        &self,
        actor: &Actor,
        id: PolicyId,
        update: PolicyUpdate,
    ) -> Result<Policy> {
        let mut policy = self.authorized_policy(actor, "update", id, false).await?;
        if let Some(name) = update.name {
            if name.trim().is_empty() {
                return Err(Error::invalid("name", "is required"));
            }
            policy.name = name.trim().into();
        }
        if let Some(description) = update.description {
            policy.description = Some(description);
        }
        if let Some(rules) = update.rules {
            rules.validate()?;
            self.check_issuer_bindings(actor, &rules, policy.organization_id)
                .await?;
            policy.policy_rules = sqlx::types::Json(rules);
            policy.version = policy.version.checked_add(1).ok_or_else(|| {
                Error::conflict(format!(
                    "policy {} has no versions left",
                    policy.policy_code
                ))
            })?;
        }
        if let Some(status) = update.status {
            policy.status = status;
        }
        if let Some(workflow) = update.workflow_id {
            policy.workflow_id = Some(workflow);
        }
        let mut tx = self.databases().core.begin().await?;
        policies::update(&mut tx.conn(), &policy).await?;
        append(&mut tx.conn(), AuditLogKind::Core, actor, AuditEntry::new("policy.updated", "update").resource("policy", id).org(policy.organization_id).details(json!({"version": policy.version, "status": policy.status, "rules": policy.policy_rules.0}))).await?;
        let policy = store::get::<Policies>(&mut tx.conn(), id, false).await?;
        tx.commit().await?;
        self.policies().forget(id);
        Ok(policy)
    }

    /// Soft-deletes a policy (needs `policies:delete`); certificates issued
    /// under it keep their reference.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn delete_policy(&self, actor: &Actor, id: PolicyId) -> Result<()> {
        let policy = self.authorized_policy(actor, "delete", id, false).await?;
        let mut tx = self.databases().core.begin().await?;
        store::soft_delete::<Policies>(&mut tx.conn(), id).await?;
        let deleted = commit_audited(
            tx,
            actor,
            AuditEntry::new("policy.deleted", "delete")
                .resource("policy", id)
                .org(policy.organization_id),
        )
        .await;
        self.policies().forget(id);
        deleted
    }

    /// Undoes [`Clm::delete_policy`] (needs `policies:update`).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn restore_policy(&self, actor: &Actor, id: PolicyId) -> Result<Policy> {
        let policy = self.authorized_policy(actor, "update", id, true).await?;
        let mut tx = self.databases().core.begin().await?;
        store::restore::<Policies>(&mut tx.conn(), id).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("policy.restored", "restore")
                .resource("policy", id)
                .org(policy.organization_id),
        )
        .await?;
        let policy = store::get::<Policies>(&mut tx.conn(), id, false).await?;
        tx.commit().await?;
        self.policies().forget(id);
        Ok(policy)
    }
}
