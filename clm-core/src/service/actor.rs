//! Who is acting, what they may do, and the one place that decides it.

use crate::model::{ApiKeyId, OrganizationId, Permissions, SessionId, UserId};
use crate::{Clm, Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorKind {
    User(UserId),
    ApiKey {
        api_key_id: ApiKeyId,
        user_id: UserId,
    },
    /// The host application itself (bootstrap, scheduled jobs).
    System,
}

/// An authenticated principal with a snapshot of its permissions and
/// organizations, resolved per request from a session, an API key, or the
/// host (system).
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub permissions: Permissions,
    pub organization_ids: Vec<OrganizationId>,
    pub session_id: Option<SessionId>,
}

/// The permission that lifts organization boundaries.
pub const GLOBAL_ADMIN: (&str, &str) = ("system", "admin");

impl Actor {
    /// The host application: every permission, every organization.
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            permissions: Permissions::all(),
            organization_ids: Vec::new(),
            session_id: None,
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match &self.kind {
            ActorKind::User(id) | ActorKind::ApiKey { user_id: id, .. } => Some(*id),
            ActorKind::System => None,
        }
    }

    pub fn api_key_id(&self) -> Option<ApiKeyId> {
        match &self.kind {
            ActorKind::ApiKey { api_key_id, .. } => Some(*api_key_id),
            _ => None,
        }
    }

    pub fn is_global(&self) -> bool {
        self.permissions.allows(GLOBAL_ADMIN.0, GLOBAL_ADMIN.1)
    }

    pub fn can(&self, resource: &str, action: &str) -> bool {
        self.permissions.allows(resource, action)
    }

    /// Whether a resource of `organization` is within reach. Resources of no
    /// organization are shared: readable by anyone allowed to read, but only a
    /// global administrator changes them.
    pub fn reaches(&self, organization: Option<OrganizationId>, write: bool) -> bool {
        if self.is_global() {
            return true;
        }
        match organization {
            Some(org) => self.organization_ids.contains(&org),
            None => !write,
        }
    }

    /// Organizations a listing must be restricted to (None = no restriction).
    pub fn visible_organizations(&self) -> Option<Vec<OrganizationId>> {
        (!self.is_global()).then(|| self.organization_ids.clone())
    }
}

/// What an operation needs: `action` on `resource`, within `organization`.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub resource: &'a str,
    pub action: &'a str,
    pub organization: Option<OrganizationId>,
    /// The resource belongs to the actor (their own API key): outside any
    /// organization it is nobody else's, so it is not shared data.
    pub own: bool,
}

impl<'a> Access<'a> {
    pub fn new(resource: &'a str, action: &'a str) -> Self {
        Access {
            resource,
            action,
            organization: None,
            own: false,
        }
    }

    pub fn in_org(mut self, organization: Option<OrganizationId>) -> Self {
        self.organization = organization;
        self
    }

    /// See [`Access::own`].
    pub fn own(mut self) -> Self {
        self.own = true;
        self
    }

    /// Whether `actor` reaches what this access touches: the organization
    /// named, or (with none named) shared data, which only global actors
    /// change, or the actor's own resource.
    fn reached_by(&self, actor: &Actor) -> bool {
        (self.own && self.organization.is_none())
            || actor.reaches(self.organization, self.is_write())
    }

    /// Whether the action changes something. Verifying a trail only reads
    /// it, so an auditor outside every organization may verify the shared
    /// trails (the built-in AUDITOR role exists for that).
    fn is_write(&self) -> bool {
        !matches!(self.action, "read" | "verify")
    }
}

impl Clm {
    /// The single authorization check. A denial is audited (in its own
    /// transaction, since nothing else happens) and returned as
    /// PermissionDenied naming resource and action.
    pub async fn authorize(&self, actor: &Actor, access: Access<'_>) -> Result<()> {
        let permitted = actor.can(access.resource, access.action) && access.reached_by(actor);
        if permitted {
            return Ok(());
        }
        self.audit_denial(actor, access).await?;
        Err(Error::denied(access.resource, access.action))
    }

    /// Like [`Clm::authorize`] for reads of one row, where an out-of-reach row
    /// must look exactly like a missing one (no existence oracle).
    pub async fn authorize_visible(
        &self,
        actor: &Actor,
        access: Access<'_>,
        entity: &'static str,
        key: impl std::fmt::Display,
    ) -> Result<()> {
        if !actor.can(access.resource, access.action) {
            self.audit_denial(actor, access).await?;
            return Err(Error::denied(access.resource, access.action));
        }
        if !access.reached_by(actor) {
            self.audit_denial(actor, access).await?;
            return Err(Error::not_found(entity, key));
        }
        Ok(())
    }
}
