//! Approval workflows: definitions, instances that carry a certificate
//! request through approval steps, and the status machine they move along.
//! The approval engine never issues: once a request is approved, issuance
//! (`service/issuance.rs`) takes it and reports back the outcome.

use std::collections::BTreeSet;

use chrono::Duration;
use serde_json::json;

use crate::db::Conn;
use crate::model::{
    ApprovalDecision, ApproverRef, CertificateRequest, NotificationPriority, NotificationType,
    OrganizationId, PendingApproval, ResourceId, RoleId, StepType, UserId, Workflow,
    WorkflowDefinition, WorkflowDefinitionStatus, WorkflowId, WorkflowInstance, WorkflowInstanceId,
    WorkflowStatus, WorkflowStep, WorkflowStepId,
};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, append, commit_audited};
use crate::service::notifications::{Notice, notify};
use crate::store::audit::AuditLogKind;
use crate::store::roles::Roles;
use crate::store::users::Users;
use crate::store::workflows::Workflows;
use crate::store::{
    self, Page, PageRequest, now, user_roles, views, workflow_instances, workflow_steps, workflows,
};
use crate::{Clm, Error, Result};

/// Code of the workflow used when a policy requires approval and names none.
pub const DEFAULT_WORKFLOW_CODE: &str = "DEFAULT_APPROVAL";

/// The only moves an instance (or step) status may make. Anything else is a
/// Conflict.
pub fn check_transition(from: WorkflowStatus, to: WorkflowStatus) -> Result<()> {
    use WorkflowStatus::*;
    let allowed = matches!(
        (from, to),
        (Initiated, InProgress | PendingApproval | Cancelled | Failed)
            | (
                InProgress,
                PendingApproval | Approved | Completed | Failed | Cancelled
            )
            | (PendingApproval, Approved | Rejected | Cancelled | Failed)
            | (Approved, Completed | Failed)
            // A failed issuance is retried (back to approved) or given up.
            | (Failed, Approved | Cancelled)
    );
    if allowed {
        Ok(())
    } else {
        Err(Error::conflict(format!(
            "a workflow cannot move from {from} to {to}"
        )))
    }
}

/// Whether `step` is assigned to the user, by name or by a role they hold.
fn assigned_to(step: &WorkflowStep, user_id: UserId, held_roles: &[RoleId]) -> bool {
    step.assigned_to_user_id == Some(user_id)
        || step
            .assigned_to_role_id
            .is_some_and(|r| held_roles.contains(&r))
}

/// Steps still waiting (or not yet started) of an instance that ends
/// without them: cancelled, so no step of it looks actionable.
async fn cancel_open_steps(conn: &mut Conn<'_>, instance_id: WorkflowInstanceId) -> Result<()> {
    let at = now();
    for mut step in workflow_steps::list_for_instance(conn, instance_id).await? {
        if matches!(
            step.status,
            WorkflowStatus::Initiated | WorkflowStatus::PendingApproval
        ) {
            step.status = WorkflowStatus::Cancelled;
            step.completed_at = Some(at);
            workflow_steps::update(conn, &step).await?;
        }
    }
    Ok(())
}

/// A workflow to create.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkflow {
    /// Unique code, 2-64 letters, digits, `_`, `-` or `.`; policies name it
    /// in `workflow_code`.
    pub workflow_code: String,
    /// Display name; required.
    pub name: String,
    /// Free text for people.
    pub description: Option<String>,
    /// The workflow definition document (an object or JSON text).
    #[serde(deserialize_with = "crate::model::documents::document")]
    pub definition: WorkflowDefinition,
    /// The tenant it belongs to; None: shared (global administrators only).
    pub organization_id: Option<OrganizationId>,
    /// Marks the default workflow. At most one live workflow is (the seeded
    /// `DEFAULT_APPROVAL`), so a second fails with AlreadyExists.
    #[serde(default)]
    pub is_default: bool,
}

/// An instance with its steps.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct WorkflowInstanceView {
    /// The instance row.
    pub instance: WorkflowInstance,
    /// Its steps, in order, with each one's status and decisions.
    pub steps: Vec<WorkflowStep>,
}

/// Hours a request waits for approval when the definition does not say.
pub const DEFAULT_EXPIRY_HOURS: u32 = 7 * 24;

impl Clm {
    /// Seeds the default approval workflow (one approval by an APPROVER).
    pub(crate) async fn seed_default_workflow(&self) -> Result<()> {
        let mut tx = self.databases().core.begin().await?;
        if store::find_by::<Workflows>(&mut tx.conn(), "workflow_code", DEFAULT_WORKFLOW_CODE)
            .await?
            .is_some()
        {
            return Ok(());
        }
        let definition = WorkflowDefinition::parse(
            r#"{"steps": [
                {"step_id": 1, "type": "validation", "name": "Policy validation"},
                {"step_id": 2, "type": "approval", "name": "Approval", "approvers": ["role:APPROVER"], "required_approvals": 1},
                {"step_id": 3, "type": "issuance", "name": "Issuance"}
            ]}"#,
        )?;
        let at = now();
        let workflow = Workflow {
            id: WorkflowId::new(),
            workflow_code: DEFAULT_WORKFLOW_CODE.into(),
            name: "Default approval".into(),
            description: Some("One approval by a holder of the APPROVER role".into()),
            workflow_definition: sqlx::types::Json(definition),
            status: WorkflowDefinitionStatus::Active,
            version: 1,
            is_default: true,
            organization_id: None,
            created_by_user_id: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        workflows::insert(&mut tx.conn(), &workflow).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            &Actor::system(),
            AuditEntry::new("workflow.created", "create")
                .resource("workflow", workflow.id)
                .details(json!({"workflow_code": DEFAULT_WORKFLOW_CODE})),
        )
        .await?;
        match tx.commit().await {
            Err(Error::AlreadyExists { .. }) => Ok(()),
            other => other,
        }
    }

    /// Checks that every approver of a definition exists; names step and field.
    async fn check_approvers(
        &self,
        conn: &mut Conn<'_>,
        definition: &WorkflowDefinition,
    ) -> Result<()> {
        for (index, step) in definition.steps.iter().enumerate() {
            for approver in &step.approvers {
                let field = format!("workflow_definition.steps[{index}].approvers");
                match ApproverRef::parse(approver)
                    .map_err(|reason| Error::invalid(field.clone(), reason))?
                {
                    ApproverRef::Role(code) => {
                        if store::find_by::<Roles>(conn, "role_code", code.as_str())
                            .await?
                            .is_none()
                        {
                            return Err(Error::invalid(
                                field,
                                format!("role {code:?} does not exist"),
                            ));
                        }
                    }
                    ApproverRef::User(id) => {
                        if store::find_by::<Users>(conn, "id", store::id_value(id))
                            .await?
                            .is_none()
                        {
                            return Err(Error::invalid(field, format!("user {id} does not exist")));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Creates an active workflow at version 1. Needs `workflows:create` in
    /// its organization; the approvers its steps name must exist.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn create_workflow(&self, actor: &Actor, new: NewWorkflow) -> Result<Workflow> {
        self.authorize(
            actor,
            Access::new("workflows", "create").in_org(new.organization_id),
        )
        .await?;
        let code = new.workflow_code.trim();
        if !(2..=64).contains(&code.len())
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(Error::invalid(
                "workflow_code",
                "must be 2-64 characters of letters, digits, '_', '-' or '.'",
            ));
        }
        if new.name.trim().is_empty() {
            return Err(Error::invalid("name", "is required"));
        }
        new.definition.validate_shape()?;
        let mut tx = self.databases().core.begin().await?;
        self.check_approvers(&mut tx.conn(), &new.definition)
            .await?;
        let at = now();
        let workflow = Workflow {
            id: WorkflowId::new(),
            workflow_code: code.into(),
            name: new.name.trim().into(),
            description: new.description,
            workflow_definition: sqlx::types::Json(new.definition),
            status: WorkflowDefinitionStatus::Active,
            version: 1,
            is_default: new.is_default,
            organization_id: new.organization_id,
            created_by_user_id: actor.user_id(),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        workflows::insert(&mut tx.conn(), &workflow).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("workflow.created", "create")
                .resource("workflow", workflow.id)
                .org(workflow.organization_id)
                .details(json!({"workflow_code": workflow.workflow_code})),
        )
        .await?;
        Ok(workflow)
    }

    /// A workflow by id. Needs `workflows:read` where it applies; one out of
    /// reach is NotFound.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_workflow(&self, actor: &Actor, id: WorkflowId) -> Result<Workflow> {
        let mut conn = self.databases().core.acquire().await?;
        let workflow = store::get::<Workflows>(&mut conn.conn(), id, false).await?;
        self.authorize_visible(
            actor,
            Access::new("workflows", "read").in_org(workflow.organization_id),
            "workflow",
            id,
        )
        .await?;
        Ok(workflow)
    }

    /// A workflow by its `workflow_code`, as [`Clm::get_workflow`].
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_workflow_by_code(&self, actor: &Actor, code: &str) -> Result<Workflow> {
        let id = {
            let mut conn = self.databases().core.acquire().await?;
            workflows::get_by_code(&mut conn.conn(), code).await?.id
        };
        self.get_workflow(actor, id).await
    }

    /// Lists the shared workflows and those of the organizations where the
    /// actor has `workflows:read`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_workflows(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<Workflow>> {
        self.authorize(actor, Access::new("workflows", "read"))
            .await?;
        let filter = crate::store::support::shared_or_in_orgs(
            store::Filter::new(),
            "organization_id",
            actor.organizations_where("workflows", "read").as_ref(),
        );
        let mut conn = self.databases().acquire_core_read().await?;
        store::list::<Workflows>(&mut conn.conn(), &filter, page).await
    }

    /// Starts an approval instance for a request that waits for approval:
    /// validation steps complete at once (the policy passed when the request
    /// was made), the first approval step waits on its approvers, who are
    /// notified in the same transaction.
    pub(crate) async fn start_request_workflow(
        &self,
        actor: &Actor,
        request: &CertificateRequest,
        workflow_code: Option<&str>,
    ) -> Result<WorkflowInstance> {
        let mut tx = self.databases().core.begin().await?;
        let workflow = match workflow_code {
            Some(code) => workflows::get_by_code(&mut tx.conn(), code).await?,
            None => workflows::get_by_code(&mut tx.conn(), DEFAULT_WORKFLOW_CODE).await?,
        };
        if workflow.status != WorkflowDefinitionStatus::Active {
            return Err(Error::conflict(format!(
                "workflow {} is {}, not active",
                workflow.workflow_code, workflow.status
            )));
        }
        let at = now();
        let expiry_hours = workflow
            .workflow_definition
            .0
            .expires_after_hours
            .unwrap_or(DEFAULT_EXPIRY_HOURS);
        let instance = WorkflowInstance {
            id: WorkflowInstanceId::new(),
            workflow_id: workflow.id,
            workflow_version: workflow.version,
            status: WorkflowStatus::PendingApproval,
            subject_type: "certificate_request".into(),
            subject_id: ResourceId(request.id.as_uuid()),
            requested_by_user_id: request.requested_by_user_id,
            organization_id: request.organization_id,
            current_step_order: 0,
            certificate_id: None,
            error_message: None,
            expires_at: Some(crate::service::shifted(
                "expires_after_hours",
                at,
                Duration::hours(i64::from(expiry_hours)),
            )?),
            started_at: at,
            completed_at: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        workflow_instances::insert(&mut tx.conn(), &instance).await?;
        let mut first_approval: Option<i32> = None;
        for (order, step) in workflow.workflow_definition.0.steps.iter().enumerate() {
            let order = i32::try_from(order).unwrap_or(i32::MAX);
            let is_waiting =
                step.step_type == StepType::Approval && first_approval.is_none_or(|o| o == order);
            if is_waiting {
                first_approval = Some(order);
            }
            let status = match step.step_type {
                StepType::Validation => WorkflowStatus::Completed,
                StepType::Approval if is_waiting => WorkflowStatus::PendingApproval,
                _ => WorkflowStatus::Initiated,
            };
            let assignments: Vec<(Option<UserId>, Option<RoleId>)> = if step.step_type
                == StepType::Approval
            {
                let mut out = Vec::new();
                for approver in &step.approvers {
                    match ApproverRef::parse(approver)
                        .map_err(|reason| Error::invalid("workflow_definition.approvers", reason))?
                    {
                        ApproverRef::Role(code) => {
                            let role =
                                store::get_by::<Roles>(&mut tx.conn(), "role_code", code.as_str())
                                    .await?;
                            out.push((None, Some(role.id)));
                        }
                        ApproverRef::User(id) => out.push((Some(UserId(id)), None)),
                    }
                }
                out
            } else {
                vec![(None, None)]
            };
            for (user, role) in assignments {
                let row = WorkflowStep {
                    id: WorkflowStepId::new(),
                    workflow_instance_id: instance.id,
                    step_id: i32::try_from(step.step_id).unwrap_or(i32::MAX),
                    step_order: order,
                    step_type: step.step_type,
                    name: step.name.clone(),
                    status,
                    assigned_to_user_id: user,
                    assigned_to_role_id: role,
                    required_approvals: i32::try_from(step.required_approvals.unwrap_or(1))
                        .unwrap_or(i32::MAX),
                    approvals: sqlx::types::Json(Vec::new()),
                    acted_by_user_id: None,
                    decision_comment: None,
                    started_at: (status != WorkflowStatus::Initiated).then_some(at),
                    completed_at: (status == WorkflowStatus::Completed).then_some(at),
                    created_at: at,
                    updated_at: at,
                    deleted_at: None,
                };
                workflow_steps::insert(&mut tx.conn(), &row).await?;
            }
        }
        let Some(order) = first_approval else {
            return Err(Error::invalid(
                "workflow_definition.steps",
                format!("workflow {} has no approval step", workflow.workflow_code),
            ));
        };
        let mut instance = instance;
        instance.current_step_order = order;
        workflow_instances::update(&mut tx.conn(), &instance).await?;
        self.notify_approvers(&mut tx.conn(), &instance, order, request)
            .await?;
        append(&mut tx.conn(), AuditLogKind::Core, actor, AuditEntry::new("workflow.started", "execute").resource("workflow_instance", instance.id).org(instance.organization_id).details(json!({"workflow_code": workflow.workflow_code, "request_id": request.request_id}))).await?;
        tx.commit().await?;
        Ok(instance)
    }

    /// Tells every eligible approver of a step (never the requester).
    async fn notify_approvers(
        &self,
        conn: &mut Conn<'_>,
        instance: &WorkflowInstance,
        order: i32,
        request: &CertificateRequest,
    ) -> Result<()> {
        let steps = workflow_steps::list_for_instance(conn, instance.id).await?;
        let mut approvers = BTreeSet::new();
        for step in steps.iter().filter(|s| s.step_order == order) {
            if let Some(user) = step.assigned_to_user_id {
                approvers.insert(user);
            }
            if let Some(role) = step.assigned_to_role_id {
                approvers.extend(user_roles::holders_of_role(conn, role).await?);
            }
        }
        for user in approvers
            .into_iter()
            .filter(|u| Some(*u) != instance.requested_by_user_id)
        {
            // Only those who could act: a role holder of another
            // organization is not told about this one's requests.
            let approver = self.resolve_user_actor(conn, user).await?;
            if !approver.may_approve(instance.organization_id) {
                continue;
            }
            notify(
                conn,
                Notice::new(
                    user,
                    NotificationType::ApprovalRequired,
                    "Approval required",
                    format!(
                        "Certificate request {} for {} waits for your approval",
                        request.request_id, request.subject_dn
                    ),
                )
                .about("workflow_instance", instance.id)
                .priority(NotificationPriority::High)
                .once(format!(
                    "approval_required:{}:{}:{user}",
                    instance.id, order
                )),
            )
            .await?;
        }
        Ok(())
    }

    /// Records a decision on the waiting step of an instance. Only an
    /// eligible approver may, never the requester; each approver counts once;
    /// the instance is locked so two approvers at once reach one outcome.
    /// True when the last approval landed: the instance and its request are
    /// `approved`, and the caller ([`Clm::decide_approval`]) hands the
    /// request to issuance.
    pub(crate) async fn record_decision(
        &self,
        actor: &Actor,
        instance_id: WorkflowInstanceId,
        approve: bool,
        comment: Option<String>,
    ) -> Result<bool> {
        self.gate(actor, "workflows", "approve").await?;
        let user_id = actor
            .user_id()
            .ok_or_else(|| Error::invalid("actor", "approvals are made by users"))?;
        // Decided before the write transaction: who may decide does not
        // change while the instance waits (requester, assignments, roles).
        let held_roles: Vec<RoleId> = {
            let mut conn = self.databases().core.acquire().await?;
            let instance = store::get::<workflow_instances::WorkflowInstances>(
                &mut conn.conn(),
                instance_id,
                false,
            )
            .await?;
            let access = Access::new("workflows", "approve").in_org(instance.organization_id);
            if !actor.may_approve(instance.organization_id) {
                drop(conn);
                self.audit_denial(actor, access).await?;
                return Err(Error::not_found("workflow instance", instance_id));
            }
            if instance.requested_by_user_id == Some(user_id) {
                drop(conn);
                return Err(self
                    .refuse(actor, access, "workflow instance (own request)")
                    .await);
            }
            let steps = workflow_steps::list_for_instance(&mut conn.conn(), instance.id).await?;
            let held_roles: Vec<RoleId> =
                crate::store::roles::roles_of_user(&mut conn.conn(), user_id)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
            if instance.status != WorkflowStatus::PendingApproval {
                return Err(Error::conflict(format!(
                    "workflow instance {instance_id} is {}, not waiting for approval",
                    instance.status
                )));
            }
            // Assignment to the current step, whatever its status: a step
            // another approver settled meanwhile is a Conflict below, not a
            // refusal.
            let assigned = steps.iter().any(|s| {
                s.step_order == instance.current_step_order && assigned_to(s, user_id, &held_roles)
            });
            drop(conn);
            if !assigned {
                return Err(self.refuse(actor, access, "workflow step").await);
            }
            held_roles
        };
        let mut tx = self.databases().core.begin().await?;
        let mut instance = workflow_instances::get_for_update(&mut tx.conn(), instance_id).await?;
        let target = if approve {
            WorkflowStatus::Approved
        } else {
            WorkflowStatus::Rejected
        };
        if instance.status != WorkflowStatus::PendingApproval {
            return Err(Error::conflict(format!(
                "workflow instance {instance_id} is {}, not waiting for approval",
                instance.status
            )));
        }
        let steps = workflow_steps::list_for_instance(&mut tx.conn(), instance.id).await?;
        let waiting: Vec<WorkflowStep> = steps
            .iter()
            .filter(|s| {
                s.step_order == instance.current_step_order
                    && s.status == WorkflowStatus::PendingApproval
            })
            .cloned()
            .collect();
        let Some(eligible) = waiting
            .iter()
            .find(|s| assigned_to(s, user_id, &held_roles))
        else {
            return Err(Error::conflict(format!(
                "workflow instance {instance_id} has no step waiting for this approver any more"
            )));
        };
        if waiting
            .iter()
            .any(|s| s.approvals.0.iter().any(|d| d.user_id == user_id))
        {
            return Err(Error::conflict(
                "this approver has already decided on this step",
            ));
        }
        let at = now();
        let decision = ApprovalDecision {
            user_id,
            approved: approve,
            comment: comment.clone(),
            decided_at: at,
        };
        let mut acted = eligible.clone();
        acted.approvals.0.push(decision);
        acted.acted_by_user_id = Some(user_id);
        acted.decision_comment = comment.clone();
        workflow_steps::update(&mut tx.conn(), &acted).await?;
        let distinct_approvals: BTreeSet<UserId> = waiting
            .iter()
            .map(|s| if s.id == acted.id { &acted } else { s })
            .flat_map(|s| {
                s.approvals
                    .0
                    .iter()
                    .filter(|d| d.approved)
                    .map(|d| d.user_id)
            })
            .collect();
        let required = waiting
            .iter()
            .map(|s| s.required_approvals)
            .max()
            .unwrap_or(1);
        let step_done =
            !approve || distinct_approvals.len() >= usize::try_from(required).unwrap_or(usize::MAX);
        let mut issue = false;
        if step_done {
            for step in &waiting {
                let mut step = if step.id == acted.id {
                    acted.clone()
                } else {
                    step.clone()
                };
                check_transition(step.status, target)?;
                step.status = target;
                step.completed_at = Some(at);
                workflow_steps::update(&mut tx.conn(), &step).await?;
            }
            let next_order = steps
                .iter()
                .filter(|s| {
                    s.step_type == StepType::Approval && s.step_order > instance.current_step_order
                })
                .map(|s| s.step_order)
                .min();
            match (approve, next_order) {
                (true, Some(order)) => {
                    for step in steps.iter().filter(|s| s.step_order == order) {
                        let mut step = step.clone();
                        step.status = WorkflowStatus::PendingApproval;
                        step.started_at = Some(at);
                        workflow_steps::update(&mut tx.conn(), &step).await?;
                    }
                    instance.current_step_order = order;
                    workflow_instances::update(&mut tx.conn(), &instance).await?;
                    let request = self.request_of(&instance).await?;
                    self.notify_approvers(&mut tx.conn(), &instance, order, &request)
                        .await?;
                }
                _ => {
                    check_transition(instance.status, target)?;
                    instance.status = target;
                    if !approve {
                        instance.completed_at = Some(at);
                    }
                    workflow_instances::update(&mut tx.conn(), &instance).await?;
                    if let Some(requester) = instance.requested_by_user_id {
                        let (kind, title) = if approve {
                            (NotificationType::RequestApproved, "Request approved")
                        } else {
                            (NotificationType::RequestRejected, "Request rejected")
                        };
                        notify(
                            &mut tx.conn(),
                            Notice::new(
                                requester,
                                kind,
                                title,
                                format!(
                                    "Your certificate request was {}{}",
                                    target,
                                    comment
                                        .as_deref()
                                        .map(|c| format!(": {c}"))
                                        .unwrap_or_default()
                                ),
                            )
                            .about("workflow_instance", instance.id)
                            .once(format!("{}:{}", kind, instance.id)),
                        )
                        .await?;
                    }
                    issue = approve;
                }
            }
        }
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new(if approve { "workflow.approved" } else { "workflow.rejected" }, "approve")
                .resource("workflow_instance", instance.id)
                .org(instance.organization_id)
                .details(json!({"step_id": acted.step_id, "approvals": distinct_approvals.len(), "required": required, "comment": comment})),
        )
        .await?;
        tx.commit().await?;
        failpoint!("workflow.decided")?;
        if !approve && step_done {
            self.settle_ended_request(actor, &instance).await?;
        }
        if issue {
            self.settle_request(
                actor,
                &instance,
                crate::model::RequestStatus::Approved,
                None,
            )
            .await?;
        }
        Ok(issue)
    }

    /// The request an approved instance carries and the workflow that
    /// approved it: what issuance needs to issue it.
    pub(crate) async fn approved_request(
        &self,
        instance_id: WorkflowInstanceId,
    ) -> Result<(crate::model::CertificateRequestId, WorkflowId)> {
        let mut conn = self.databases().core.acquire().await?;
        let instance = store::get::<workflow_instances::WorkflowInstances>(
            &mut conn.conn(),
            instance_id,
            false,
        )
        .await?;
        Ok((
            crate::model::CertificateRequestId(instance.subject_id.as_uuid()),
            instance.workflow_id,
        ))
    }

    /// Completes an approved instance with the certificate issuance made
    /// for it, or records the failure (instance `failed` with its error, the
    /// request still `approved` with the reason) and leaves it retryable.
    pub(crate) async fn record_issuance_outcome(
        &self,
        actor: &Actor,
        instance_id: WorkflowInstanceId,
        outcome: &Result<crate::model::Certificate>,
    ) -> Result<()> {
        let mut tx = self.databases().core.begin().await?;
        let mut instance = workflow_instances::get_for_update(&mut tx.conn(), instance_id).await?;
        if let Ok(certificate) = outcome
            && instance.status == WorkflowStatus::Completed
            && instance.certificate_id == Some(certificate.id)
        {
            // Recorded already by another caller that found the same issuance.
            return Ok(());
        }
        let at = now();
        let entry = match outcome {
            Ok(certificate) => {
                check_transition(instance.status, WorkflowStatus::Completed)?;
                instance.status = WorkflowStatus::Completed;
                instance.certificate_id = Some(certificate.id);
                instance.error_message = None;
                instance.completed_at = Some(at);
                for step in workflow_steps::list_for_instance(&mut tx.conn(), instance.id).await? {
                    if step.step_type == StepType::Issuance {
                        let mut step = step;
                        step.status = WorkflowStatus::Completed;
                        step.completed_at = Some(at);
                        workflow_steps::update(&mut tx.conn(), &step).await?;
                    }
                }
                if let Some(requester) = instance.requested_by_user_id {
                    notify(
                        &mut tx.conn(),
                        Notice::new(
                            requester,
                            NotificationType::CertificateIssued,
                            "Certificate issued",
                            format!("Certificate {} was issued", certificate.certificate_id),
                        )
                        .about("certificate", certificate.id)
                        .once(format!("certificate_issued:{}", certificate.id)),
                    )
                    .await?;
                }
                AuditEntry::new("workflow.completed", "execute")
                    .details(json!({"certificate_id": certificate.certificate_id}))
            }
            Err(err) => {
                check_transition(instance.status, WorkflowStatus::Failed)?;
                instance.status = WorkflowStatus::Failed;
                instance.error_message = Some(err.to_string());
                instance.completed_at = None;
                AuditEntry::new("workflow.failed", "execute")
                    .outcome(crate::model::AuditOutcome::Failure)
                    .details(json!({"error": err.to_string()}))
            }
        };
        workflow_instances::update(&mut tx.conn(), &instance).await?;
        failpoint!("workflow.outcome_written")?;
        commit_audited(
            tx,
            actor,
            entry
                .resource("workflow_instance", instance.id)
                .org(instance.organization_id),
        )
        .await?;
        if let Err(err) = outcome {
            self.record_request_failure(&instance, &err.to_string())
                .await?;
        }
        Ok(())
    }

    /// Moves an instance whose issuance failed back to `approved`, for
    /// [`Clm::retry_workflow`] to issue again.
    pub(crate) async fn reopen_for_retry(
        &self,
        actor: &Actor,
        instance_id: WorkflowInstanceId,
    ) -> Result<()> {
        self.authorize_instance(actor, "execute", instance_id, false)
            .await?;
        let mut tx = self.databases().core.begin().await?;
        let mut instance = workflow_instances::get_for_update(&mut tx.conn(), instance_id).await?;
        check_transition(instance.status, WorkflowStatus::Approved)?;
        instance.status = WorkflowStatus::Approved;
        workflow_instances::update(&mut tx.conn(), &instance).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("workflow.retried", "execute")
                .resource("workflow_instance", instance.id)
                .org(instance.organization_id),
        )
        .await
    }

    /// Cancels a waiting request: its requester, or an actor allowed to
    /// execute workflows in its organization.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn cancel_workflow(
        &self,
        actor: &Actor,
        instance_id: WorkflowInstanceId,
    ) -> Result<WorkflowInstanceView> {
        self.authorize_instance(actor, "execute", instance_id, true)
            .await?;
        let mut tx = self.databases().core.begin().await?;
        let mut instance = workflow_instances::get_for_update(&mut tx.conn(), instance_id).await?;
        check_transition(instance.status, WorkflowStatus::Cancelled)?;
        instance.status = WorkflowStatus::Cancelled;
        instance.completed_at = Some(now());
        workflow_instances::update(&mut tx.conn(), &instance).await?;
        cancel_open_steps(&mut tx.conn(), instance.id).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("workflow.cancelled", "cancel")
                .resource("workflow_instance", instance.id)
                .org(instance.organization_id),
        )
        .await?;
        self.settle_ended_request(actor, &instance).await?;
        self.workflow_instance_view(instance_id).await
    }

    /// Cancels waiting instances past their expiry and expires their
    /// requests; returns how many.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn expire_stale_workflows(
        &self,
        actor: &Actor,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        self.authorize(actor, Access::new("system", "lifecycle"))
            .await?;
        let at = crate::service::checked_instant("at", at)?;
        let stale = {
            let mut conn = self.databases().core.acquire().await?;
            workflow_instances::list_expired_pending(&mut conn.conn(), at, 500).await?
        };
        let mut expired: u64 = 0;
        for candidate in stale {
            let mut tx = self.databases().core.begin().await?;
            let mut instance =
                workflow_instances::get_for_update(&mut tx.conn(), candidate.id).await?;
            // Another process may have settled it meanwhile.
            if check_transition(instance.status, WorkflowStatus::Cancelled).is_err()
                || instance.expires_at.is_none_or(|e| e > at)
            {
                continue;
            }
            instance.status = WorkflowStatus::Cancelled;
            instance.error_message = Some(EXPIRED.into());
            instance.completed_at = Some(now());
            workflow_instances::update(&mut tx.conn(), &instance).await?;
            cancel_open_steps(&mut tx.conn(), instance.id).await?;
            commit_audited(
                tx,
                actor,
                AuditEntry::new("workflow.expired", "cancel")
                    .resource("workflow_instance", instance.id)
                    .org(instance.organization_id),
            )
            .await?;
            self.settle_ended_request(actor, &instance).await?;
            expired = expired.saturating_add(1);
        }
        Ok(expired)
    }

    /// The approval steps the acting user may decide (the summary's
    /// pending-approvals query), one row per step assignment.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn pending_approvals(&self, actor: &Actor) -> Result<Vec<PendingApproval>> {
        self.authorize(actor, Access::new("workflows", "read"))
            .await?;
        let user_id = actor
            .user_id()
            .ok_or_else(|| Error::invalid("actor", "pending approvals belong to a user"))?;
        let mut conn = self.databases().acquire_core_read().await?;
        let rows = views::pending_approvals_for_user(&mut conn.conn(), user_id).await?;
        // Exactly what this user may act on: not its own requests, not
        // steps it already decided (M-of-N), within its reach.
        Ok(rows
            .into_iter()
            .filter(|row| {
                row.requested_by_user_id != Some(user_id)
                    && actor.may_approve(row.organization_id)
                    && !row.approvals.0.iter().any(|d| d.user_id == user_id)
            })
            .collect())
    }

    /// A workflow instance with its steps: for its requester, or an actor
    /// with `workflows:read` in its organization (else NotFound).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_workflow_instance(
        &self,
        actor: &Actor,
        id: WorkflowInstanceId,
    ) -> Result<WorkflowInstanceView> {
        let view = self.workflow_instance_view(id).await?;
        let own =
            actor.user_id().is_some() && actor.user_id() == view.instance.requested_by_user_id;
        if !own {
            self.authorize_visible(
                actor,
                Access::new("workflows", "read").in_org(view.instance.organization_id),
                "workflow instance",
                id,
            )
            .await?;
        }
        Ok(view)
    }

    pub(crate) async fn workflow_instance_view(
        &self,
        id: WorkflowInstanceId,
    ) -> Result<WorkflowInstanceView> {
        let mut conn = self.databases().core.acquire().await?;
        let instance =
            store::get::<workflow_instances::WorkflowInstances>(&mut conn.conn(), id, false)
                .await?;
        let steps = workflow_steps::list_for_instance(&mut conn.conn(), id).await?;
        Ok(WorkflowInstanceView { instance, steps })
    }
}

impl Clm {
    /// Decides `workflows:action` on instance `id` before any write
    /// transaction: in its organization, or as its requester when
    /// `requester_may`. An instance out of reach is NotFound.
    async fn authorize_instance(
        &self,
        actor: &Actor,
        action: &str,
        id: WorkflowInstanceId,
        requester_may: bool,
    ) -> Result<()> {
        if !requester_may {
            self.gate(actor, "workflows", action).await?;
        }
        let instance = {
            let mut conn = self.databases().core.acquire().await?;
            store::get::<workflow_instances::WorkflowInstances>(&mut conn.conn(), id, false).await?
        };
        let own = requester_may
            && actor.user_id().is_some()
            && actor.user_id() == instance.requested_by_user_id;
        if own {
            return Ok(());
        }
        self.authorize_visible(
            actor,
            Access::new("workflows", action).in_org(instance.organization_id),
            "workflow instance",
            id,
        )
        .await
    }

    /// The certificate request an instance carries (it lives in the secure database).
    async fn request_of(&self, instance: &WorkflowInstance) -> Result<CertificateRequest> {
        let mut conn = self.databases().secure.acquire().await?;
        store::get::<crate::store::certificate_requests::CertificateRequests>(
            &mut conn.conn(),
            crate::model::CertificateRequestId(instance.subject_id.as_uuid()),
            false,
        )
        .await
    }

    /// Notes why issuance of an approved request failed; the request stays
    /// `approved` so that a retry may issue it.
    async fn record_request_failure(
        &self,
        instance: &WorkflowInstance,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.databases().secure.begin().await?;
        let mut request = store::get::<crate::store::certificate_requests::CertificateRequests>(
            &mut tx.conn(),
            crate::model::CertificateRequestId(instance.subject_id.as_uuid()),
            false,
        )
        .await?;
        request.failure_reason = Some(reason.to_string());
        crate::store::certificate_requests::update(&mut tx.conn(), &request).await?;
        tx.commit().await
    }

    /// Moves the carried request to a new status (approved, rejected,
    /// cancelled, expired), with its secure audit row.
    async fn settle_request(
        &self,
        actor: &Actor,
        instance: &WorkflowInstance,
        status: crate::model::RequestStatus,
        reason: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.databases().secure.begin().await?;
        let mut request = store::get::<crate::store::certificate_requests::CertificateRequests>(
            &mut tx.conn(),
            crate::model::CertificateRequestId(instance.subject_id.as_uuid()),
            false,
        )
        .await?;
        if request.status == status {
            // Settled already (reconcile after a run that got this far).
            return Ok(false);
        }
        request.status = status;
        if let Some(reason) = reason {
            request.failure_reason = Some(reason.to_string());
        }
        crate::store::certificate_requests::update(&mut tx.conn(), &request).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new(format!("certificate_request.{status}"), "update")
                .resource("certificate_request", request.id)
                .org(request.organization_id)
                .details(
                    json!({"request_id": request.request_id, "workflow_instance_id": instance.id}),
                ),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Settles the request of an instance that ended without an issuance
    /// (see [`ended_request_status`]); false when there was nothing to do.
    /// The instance commits first (core), the request after (secure): this
    /// is also how [`Clm::reconcile`] finishes a run stopped in between.
    pub(crate) async fn settle_ended_request(
        &self,
        actor: &Actor,
        instance: &WorkflowInstance,
    ) -> Result<bool> {
        match ended_request_status(instance) {
            Some((status, reason)) => self.settle_request(actor, instance, status, reason).await,
            None => Ok(false),
        }
    }
}

/// Why an instance was cancelled at its deadline; its request keeps it as
/// the failure reason.
const EXPIRED: &str = "expired waiting for approval";

/// What the request of an instance that ended without an issuance becomes
/// (rejected, expired or cancelled); None while the instance may still issue.
fn ended_request_status(
    instance: &WorkflowInstance,
) -> Option<(crate::model::RequestStatus, Option<&'static str>)> {
    use crate::model::RequestStatus;
    match instance.status {
        WorkflowStatus::Rejected => Some((RequestStatus::Rejected, None)),
        WorkflowStatus::Cancelled if instance.error_message.as_deref() == Some(EXPIRED) => {
            Some((RequestStatus::Expired, Some(EXPIRED)))
        }
        WorkflowStatus::Cancelled => Some((RequestStatus::Cancelled, None)),
        _ => None,
    }
}

impl Clm {
    /// Sends a request that waits for approval into its policy's workflow
    /// (`policy_rules.workflow_code`, else the policy's workflow, else the
    /// default) and links the instance to the request. If no instance can be
    /// started the request is marked failed, with the reason.
    pub(crate) async fn route_for_approval(
        &self,
        actor: &Actor,
        mut request: CertificateRequest,
        policy: Option<&crate::model::Policy>,
    ) -> Result<CertificateRequest> {
        let mut code = policy.and_then(|p| p.policy_rules.0.workflow_code.clone());
        if code.is_none()
            && let Some(workflow_id) = policy.and_then(|p| p.workflow_id)
        {
            let mut conn = self.databases().core.acquire().await?;
            code = Some(
                store::get::<Workflows>(&mut conn.conn(), workflow_id, false)
                    .await?
                    .workflow_code,
            );
        }
        let started = self
            .start_request_workflow(actor, &request, code.as_deref())
            .await;
        let mut tx = self.databases().secure.begin().await?;
        // Re-read: once the instance is committed an approver may already
        // have moved the request on; only the link (or the failure) is ours.
        request = store::get::<crate::store::certificate_requests::CertificateRequests>(
            &mut tx.conn(),
            request.id,
            false,
        )
        .await?;
        let entry = match &started {
            Ok(instance) => {
                request.workflow_instance_id = Some(instance.id);
                AuditEntry::new("certificate_request.routed", "update").details(
                    json!({"request_id": request.request_id, "workflow_instance_id": instance.id}),
                )
            }
            Err(err) => {
                request.status = crate::model::RequestStatus::Failed;
                request.failure_reason = Some(format!("approval workflow could not start: {err}"));
                AuditEntry::new("certificate_request.failed", "update")
                    .outcome(crate::model::AuditOutcome::Failure)
                    .details(json!({"request_id": request.request_id, "error": err.to_string()}))
            }
        };
        crate::store::certificate_requests::update(&mut tx.conn(), &request).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            entry
                .resource("certificate_request", request.id)
                .org(request.organization_id),
        )
        .await?;
        tx.commit().await?;
        started?;
        Ok(request)
    }
}
