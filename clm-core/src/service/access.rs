//! Roles, role grants, organizations and memberships, and the built-in roles.

use serde_json::json;

use crate::db::Conn;
use crate::model::{
    Organization, OrganizationId, OrganizationStatus, Permissions, Role, RoleId, UserId,
    UserOrganization, UserOrganizationId, UserRole, UserRoleId,
};
use crate::service::actor::{Access, Actor, Subject};
use crate::service::audit::{AuditEntry, append, commit_audited};
use crate::store::audit::AuditLogKind;
use crate::store::organizations::Organizations;
use crate::store::roles::Roles;
use crate::store::{
    self, Page, PageRequest, now, organizations, roles, user_organizations, user_roles,
};
use crate::{Clm, Error, Result};

/// Built-in role codes.
pub const ROLE_ADMIN: &str = "ADMIN";
/// Reviews and approves certificate requests.
pub const ROLE_APPROVER: &str = "APPROVER";
/// Requests, issues, imports, renews and revokes certificates.
pub const ROLE_OPERATOR: &str = "OPERATOR";
/// Reads everything and verifies the audit trails.
pub const ROLE_AUDITOR: &str = "AUDITOR";
/// Read-only access to the inventory.
pub const ROLE_VIEWER: &str = "VIEWER";

/// The built-in roles: code, name, description, permissions.
pub fn builtin_roles() -> Vec<(&'static str, &'static str, &'static str, Permissions)> {
    vec![
        (
            ROLE_ADMIN,
            "Administrator",
            "Every permission in every organization",
            Permissions::all(),
        ),
        (
            ROLE_APPROVER,
            "Approver",
            "Reviews and approves certificate requests",
            Permissions::from_pairs(&[
                ("certificates", &["read"]),
                ("requests", &["read"]),
                ("workflows", &["read", "approve"]),
                ("policies", &["read"]),
                ("notifications", &["read"]),
            ]),
        ),
        (
            ROLE_OPERATOR,
            "Operator",
            "Requests, issues, imports, renews and revokes certificates",
            Permissions::from_pairs(&[
                (
                    "certificates",
                    &[
                        "create", "read", "update", "revoke", "import", "renew", "export",
                    ],
                ),
                ("authorities", &["read", "sign_crl"]),
                ("requests", &["create", "read", "cancel"]),
                ("policies", &["read"]),
                ("workflows", &["read", "execute"]),
                ("api_keys", &["create", "read", "revoke"]),
                ("notifications", &["read"]),
            ]),
        ),
        (
            ROLE_AUDITOR,
            "Auditor",
            "Reads everything and verifies the audit trails",
            Permissions::from_pairs(&[
                ("certificates", &["read"]),
                ("authorities", &["read"]),
                ("requests", &["read"]),
                ("policies", &["read"]),
                ("workflows", &["read"]),
                ("users", &["read"]),
                ("roles", &["read"]),
                ("organizations", &["read"]),
                ("audit", &["read", "verify"]),
                ("keys", &["read"]),
            ]),
        ),
        (
            ROLE_VIEWER,
            "Viewer",
            "Read-only access to the inventory",
            Permissions::from_pairs(&[
                ("certificates", &["read"]),
                ("authorities", &["read"]),
                ("requests", &["read"]),
                ("policies", &["read"]),
                ("notifications", &["read"]),
            ]),
        ),
    ]
}

/// A role to create.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Unique code, 2-64 letters, digits, `_`, `-` or `.` (`PKI_OPS`).
    pub role_code: String,
    /// Display name; required.
    pub role_name: String,
    /// Free text for people.
    pub description: Option<String>,
    /// The permissions document (an object or JSON text).
    #[serde(deserialize_with = "crate::model::documents::document")]
    pub permissions: Permissions,
    /// Custom roles may belong to one organization.
    pub organization_id: Option<OrganizationId>,
}

/// An organization to create.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// Unique code, 2-64 letters, digits, `_`, `-` or `.` (`ACME-EU`).
    pub org_code: String,
    /// Display name; required.
    pub name: String,
    /// Free text for people.
    pub description: Option<String>,
    /// The organization this one belongs under; recorded only: roles and
    /// membership do not pass down to it.
    pub parent_organization_id: Option<OrganizationId>,
}

fn validate_code(field: &str, code: &str) -> Result<String> {
    let code = code.trim();
    let valid = (2..=64).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid {
        return Err(Error::invalid(
            field,
            "must be 2-64 characters of letters, digits, '_', '-' or '.'",
        ));
    }
    Ok(code.to_string())
}

impl Clm {
    /// Inserts the built-in roles that are missing and brings the
    /// permissions of existing ones up to this version's definition (a
    /// permission added to the catalog reaches ADMIN in databases created
    /// before it), auditing each change. Idempotent, safe to race.
    pub(crate) async fn seed_builtin_roles(&self) -> Result<()> {
        let mut tx = self.databases().core.begin().await?;
        for (code, name, description, permissions) in builtin_roles() {
            if let Some(mut existing) =
                store::find_by::<Roles>(&mut tx.conn(), "role_code", code).await?
            {
                let stored = &existing.permissions.0;
                let current = stored.is_subset_of(&permissions) && permissions.is_subset_of(stored);
                if existing.is_builtin && !current {
                    existing.permissions = sqlx::types::Json(permissions);
                    roles::update(&mut tx.conn(), &existing).await?;
                    append(
                        &mut tx.conn(),
                        AuditLogKind::Core,
                        &Actor::system(),
                        AuditEntry::new("role.updated", "update")
                            .resource("role", existing.id)
                            .details(json!({
                                "role_code": code,
                                "builtin": true,
                                "permissions": existing.permissions.0,
                            })),
                    )
                    .await?;
                }
                continue;
            }
            let at = now();
            let role = Role {
                id: RoleId::new(),
                role_code: code.into(),
                role_name: name.into(),
                description: Some(description.into()),
                permissions: sqlx::types::Json(permissions),
                is_builtin: true,
                organization_id: None,
                created_at: at,
                updated_at: at,
                deleted_at: None,
            };
            roles::insert(&mut tx.conn(), &role).await?;
            append(
                &mut tx.conn(),
                AuditLogKind::Core,
                &Actor::system(),
                AuditEntry::new("role.created", "create")
                    .resource("role", role.id)
                    .details(json!({"role_code": code, "builtin": true})),
            )
            .await?;
        }
        match tx.commit().await {
            // Another process seeded at the same moment.
            Err(Error::AlreadyExists { .. }) => Ok(()),
            other => other,
        }
    }

    /// Creates a custom role. Nobody creates a role carrying what they do
    /// not hold where the role applies.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn create_role(&self, actor: &Actor, new: NewRole) -> Result<Role> {
        let access = Access::new("roles", "create").in_org(new.organization_id);
        self.authorize(actor, access).await?;
        let code = validate_code("role_code", &new.role_code)?;
        if new.role_name.trim().is_empty() {
            return Err(Error::invalid("role_name", "is required"));
        }
        new.permissions.validate()?;
        self.require_within(actor, access, &new.permissions, new.organization_id)
            .await?;
        let at = now();
        let role = Role {
            id: RoleId::new(),
            role_code: code,
            role_name: new.role_name.trim().into(),
            description: new.description,
            permissions: sqlx::types::Json(new.permissions),
            is_builtin: false,
            organization_id: new.organization_id,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut tx = self.databases().core.begin().await?;
        roles::insert(&mut tx.conn(), &role).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("role.created", "create")
                .resource("role", role.id)
                .org(role.organization_id)
                .details(json!({"role_code": role.role_code, "permissions": role.permissions.0})),
        )
        .await?;
        tx.commit().await?;
        Ok(role)
    }

    /// Refuses (audited) `permissions` that the actor does not hold where
    /// they would apply: in `organization`, or everywhere for a global role.
    async fn require_within(
        &self,
        actor: &Actor,
        access: Access<'_>,
        permissions: &Permissions,
        organization: Option<OrganizationId>,
    ) -> Result<()> {
        if actor.may_confer(permissions, organization) {
            return Ok(());
        }
        Err(self
            .refuse(actor, access, "permissions beyond the actor's own")
            .await)
    }

    /// The live role `id` for `roles:action`, or NotFound when it is missing
    /// or out of reach.
    async fn authorized_role(&self, actor: &Actor, action: &str, id: RoleId) -> Result<Role> {
        self.gate(actor, "roles", action).await?;
        let role = {
            let mut conn = self.databases().core.acquire().await?;
            store::get::<Roles>(&mut conn.conn(), id, false).await?
        };
        self.authorize_visible(
            actor,
            Access::new("roles", action).in_org(role.organization_id),
            "role",
            id,
        )
        .await?;
        Ok(role)
    }

    /// A role by id. Needs `roles:read` where the role applies; a role the
    /// actor may not see is NotFound.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_role(&self, actor: &Actor, id: RoleId) -> Result<Role> {
        self.authorized_role(actor, "read", id).await
    }

    /// A role by its `role_code`, as [`Clm::get_role`].
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_role_by_code(&self, actor: &Actor, code: &str) -> Result<Role> {
        self.gate(actor, "roles", "read").await?;
        let id = {
            let mut conn = self.databases().core.acquire().await?;
            roles::get_by_code(&mut conn.conn(), code).await?.id
        };
        match self.get_role(actor, id).await {
            Err(Error::NotFound { .. }) => Err(Error::not_found("role", code)),
            other => other,
        }
    }

    /// Lists the shared roles and those of the organizations where the
    /// actor has `roles:read`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_roles(&self, actor: &Actor, page: &PageRequest) -> Result<Page<Role>> {
        self.authorize(actor, Access::new("roles", "read")).await?;
        let filter = crate::store::support::shared_or_in_orgs(
            crate::store::Filter::new(),
            "organization_id",
            actor.organizations_where("roles", "read").as_ref(),
        );
        let mut conn = self.databases().acquire_core_read().await?;
        store::list::<Roles>(&mut conn.conn(), &filter, page).await
    }

    /// Replaces a custom role's permissions. Built-in roles are fixed.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn update_role_permissions(
        &self,
        actor: &Actor,
        id: RoleId,
        permissions: Permissions,
    ) -> Result<Role> {
        let mut role = self.authorized_role(actor, "update", id).await?;
        if role.is_builtin {
            return Err(Error::conflict(format!(
                "built-in role {} cannot be changed",
                role.role_code
            )));
        }
        permissions.validate()?;
        self.require_within(
            actor,
            Access::new("roles", "update").in_org(role.organization_id),
            &permissions,
            role.organization_id,
        )
        .await?;
        role.permissions = sqlx::types::Json(permissions);
        let mut tx = self.databases().core.begin().await?;
        roles::update(&mut tx.conn(), &role).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("role.updated", "update")
                .resource("role", id)
                .org(role.organization_id)
                .details(json!({"permissions": role.permissions.0})),
        )
        .await?;
        let role = store::get::<Roles>(&mut tx.conn(), id, false).await?;
        tx.commit().await?;
        Ok(role)
    }

    /// Deletes a custom role and revokes every grant of it (audited), so no
    /// listing or approval routing keeps showing it.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn delete_role(&self, actor: &Actor, id: RoleId) -> Result<()> {
        let role = self.authorized_role(actor, "delete", id).await?;
        if role.is_builtin {
            return Err(Error::conflict(format!(
                "built-in role {} cannot be deleted",
                role.role_code
            )));
        }
        let mut tx = self.databases().core.begin().await?;
        store::soft_delete::<Roles>(&mut tx.conn(), id).await?;
        let revoked =
            user_roles::revoke_all_for_role(&mut tx.conn(), id, actor.user_id(), now()).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("role.deleted", "delete")
                .resource("role", id)
                .org(role.organization_id)
                .details(json!({"role_code": role.role_code, "grants_revoked": revoked})),
        )
        .await
    }

    /// Grants a role. The grantor needs `roles:assign` where the role
    /// applies, must hold every permission it carries there, and must
    /// contain the user (hold whatever they hold, wherever).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn assign_role(
        &self,
        actor: &Actor,
        user_id: UserId,
        role_id: RoleId,
    ) -> Result<UserRole> {
        let role = self.authorized_role(actor, "assign", role_id).await?;
        let access = Access::new("roles", "assign").in_org(role.organization_id);
        let subject = self.contained_user(actor, access, user_id).await?;
        if let Some(org) = role.organization_id
            && !subject.organizations.contains(&org)
        {
            return Err(Error::invalid(
                "user_id",
                format!(
                    "the user is not a member of the organization of role {}",
                    role.role_code
                ),
            ));
        }
        self.require_within(actor, access, &role.permissions.0, role.organization_id)
            .await?;
        let mut tx = self.databases().core.begin().await?;
        if user_roles::find_current(&mut tx.conn(), user_id, role_id)
            .await?
            .is_some()
        {
            return Err(Error::AlreadyExists {
                entity: "role assignment".into(),
                field: "user_id and role_id".into(),
                source: None,
            });
        }
        let at = now();
        let grant = UserRole {
            id: UserRoleId::new(),
            user_id,
            role_id,
            granted_by_user_id: actor.user_id(),
            granted_at: at,
            revoked_at: None,
            revoked_by_user_id: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        user_roles::insert(&mut tx.conn(), &grant).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("role.assigned", "assign")
                .resource("user", user_id)
                .org(role.organization_id)
                .details(json!({"role_code": role.role_code, "role_id": role_id})),
        )
        .await?;
        tx.commit().await?;
        Ok(grant)
    }

    /// Revokes a role grant (kept, with `revoked_at`); the same containment
    /// as granting, so nobody strips a user who holds more than they do.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn revoke_role(&self, actor: &Actor, user_id: UserId, role_id: RoleId) -> Result<()> {
        let role = self.authorized_role(actor, "assign", role_id).await?;
        let access = Access::new("roles", "assign").in_org(role.organization_id);
        self.contained_user(actor, access, user_id).await?;
        let mut tx = self.databases().core.begin().await?;
        let grant = user_roles::find_current(&mut tx.conn(), user_id, role_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "role grant",
                    format!("{} for user {user_id}", role.role_code),
                )
            })?;
        user_roles::revoke(&mut tx.conn(), grant.id, actor.user_id(), now()).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("role.revoked", "revoke")
                .resource("user", user_id)
                .org(role.organization_id)
                .details(json!({"role_code": role.role_code, "role_id": role_id})),
        )
        .await
    }

    /// The user `user_id` if the actor reaches them (shares an organization,
    /// or is a global administrator) and contains them; else NotFound, audited.
    async fn contained_user(
        &self,
        actor: &Actor,
        access: Access<'_>,
        user_id: UserId,
    ) -> Result<Subject> {
        let subject = match self.load_subject(user_id, false).await {
            Err(Error::NotFound { .. }) => return Err(Error::not_found("user", user_id)),
            other => other?,
        };
        if actor.may_regrant(&subject.grants, &subject.organizations) {
            return Ok(subject);
        }
        self.audit_denial(actor, access).await?;
        Err(Error::not_found("user", user_id))
    }

    /// Creates an organization (global administrators only: the shared
    /// scope is theirs).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn create_organization(
        &self,
        actor: &Actor,
        new: NewOrganization,
    ) -> Result<Organization> {
        self.authorize(actor, Access::new("organizations", "create"))
            .await?;
        let code = validate_code("org_code", &new.org_code)?;
        if new.name.trim().is_empty() {
            return Err(Error::invalid("name", "is required"));
        }
        let at = now();
        let org = Organization {
            id: OrganizationId::new(),
            org_code: code,
            name: new.name.trim().into(),
            description: new.description,
            status: OrganizationStatus::Active,
            parent_organization_id: new.parent_organization_id,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut tx = self.databases().core.begin().await?;
        organizations::insert(&mut tx.conn(), &org).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("organization.created", "create")
                .resource("organization", org.id)
                .org(Some(org.id))
                .details(json!({"org_code": org.org_code})),
        )
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    /// An organization by id. Needs `organizations:read` in it; one the
    /// actor may not see is NotFound.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn get_organization(
        &self,
        actor: &Actor,
        id: OrganizationId,
    ) -> Result<Organization> {
        self.authorize_visible(
            actor,
            Access::new("organizations", "read").in_org(Some(id)),
            "organization",
            id,
        )
        .await?;
        let mut conn = self.databases().core.acquire().await?;
        store::get::<Organizations>(&mut conn.conn(), id, false).await
    }

    /// Lists the organizations where the actor has `organizations:read`.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_organizations(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<Organization>> {
        self.authorize(actor, Access::new("organizations", "read"))
            .await?;
        let filter = crate::store::support::in_ids_opt(
            crate::store::Filter::new(),
            "id",
            actor.organizations_where("organizations", "read").as_ref(),
        );
        let mut conn = self.databases().acquire_core_read().await?;
        store::list::<Organizations>(&mut conn.conn(), &filter, page).await
    }

    /// Sets an organization's status. The status is the provider's switch
    /// over a tenant, so only global administrators move it: members of a
    /// suspended organization cannot bring it back.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn set_organization_status(
        &self,
        actor: &Actor,
        id: OrganizationId,
        status: OrganizationStatus,
    ) -> Result<Organization> {
        self.authorize_visible(
            actor,
            Access::new("organizations", "read").in_org(Some(id)),
            "organization",
            id,
        )
        .await?;
        self.authorize(actor, Access::new("organizations", "update"))
            .await?;
        let mut tx = self.databases().core.begin().await?;
        let mut org = store::get::<Organizations>(&mut tx.conn(), id, false).await?;
        org.status = status;
        organizations::update(&mut tx.conn(), &org).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Core,
            actor,
            AuditEntry::new("organization.updated", "update")
                .resource("organization", id)
                .org(Some(id))
                .details(json!({"status": status})),
        )
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    /// Adds a user to an organization: `organizations:manage_members` there,
    /// and reach and containment over the user already.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn add_organization_member(
        &self,
        actor: &Actor,
        org: OrganizationId,
        user_id: UserId,
        membership_role: &str,
    ) -> Result<()> {
        let access = Access::new("organizations", "manage_members").in_org(Some(org));
        self.authorize_visible(actor, access, "organization", org)
            .await?;
        if !["member", "admin"].contains(&membership_role) {
            return Err(Error::invalid("membership_role", "must be member or admin"));
        }
        self.contained_user(actor, access, user_id).await?;
        let mut tx = self.databases().core.begin().await?;
        store::get::<Organizations>(&mut tx.conn(), org, false).await?;
        add_membership(&mut tx.conn(), user_id, org, membership_role).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("organization.member_added", "manage_members")
                .resource("user", user_id)
                .org(Some(org))
                .details(json!({"membership_role": membership_role})),
        )
        .await
    }

    /// Removes a user from an organization: the same containment as adding.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn remove_organization_member(
        &self,
        actor: &Actor,
        org: OrganizationId,
        user_id: UserId,
    ) -> Result<()> {
        let access = Access::new("organizations", "manage_members").in_org(Some(org));
        self.authorize_visible(actor, access, "organization", org)
            .await?;
        self.contained_user(actor, access, user_id).await?;
        let mut tx = self.databases().core.begin().await?;
        let membership = user_organizations::find_membership(&mut tx.conn(), user_id, org)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    "membership",
                    format!("user {user_id} in organization {org}"),
                )
            })?;
        store::soft_delete::<user_organizations::UserOrganizations>(&mut tx.conn(), membership.id)
            .await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("organization.member_removed", "manage_members")
                .resource("user", user_id)
                .org(Some(org)),
        )
        .await
    }
}

/// Adds a membership row (user creation and the organization service); the
/// caller authorizes and audits.
pub(crate) async fn add_membership(
    conn: &mut Conn<'_>,
    user_id: UserId,
    organization_id: OrganizationId,
    role: &str,
) -> Result<UserOrganization> {
    let at = now();
    let membership = UserOrganization {
        id: UserOrganizationId::new(),
        user_id,
        organization_id,
        membership_role: role.to_string(),
        joined_at: at,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    };
    user_organizations::insert(conn, &membership).await?;
    Ok(membership)
}
