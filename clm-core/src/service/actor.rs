//! Who is acting, what they may do, and the one module that decides it.
//!
//! Every operation asks this module before it opens a write transaction:
//! it loads what the decision needs, decides, audits a refusal in its own
//! transaction, and only then does the operation run. The rules (see
//! SECURITY.md):
//! - permissions are (organization, resource, action): a role of one
//!   organization grants only there, a global role in every organization the
//!   holder reaches and on shared data; an API key's scopes, organization and
//!   lifetime narrow its user's, never widen them;
//! - only members of an active organization act in it (a global
//!   administrator reaches every organization, whatever its status);
//! - containment: nobody acts on a user who holds anything they do not, and
//!   nobody grants, creates or mints anything wider than themselves;
//! - a refusal never says whether a row of another tenant exists.

use std::collections::BTreeMap;

use serde_json::json;

use crate::model::{
    ApiKeyId, AuditOutcome, OrganizationId, Permissions, Role, SessionId, Timestamp, User, UserId,
};
use crate::service::audit::{AuditEntry, append};
use crate::store::audit::AuditLogKind;
use crate::store::users::Users;
use crate::store::{self, roles, user_organizations};
use crate::{Clm, Error, Result};

/// Who an [`Actor`] is: a user through a session, a user's API key, or
/// the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorKind {
    /// A user (a session, or a host that authenticated them elsewhere).
    User(UserId),
    /// An API key, acting for its user within the key's bounds.
    ApiKey {
        /// The key (`api_keys.id`).
        api_key_id: ApiKeyId,
        /// The user who owns the key.
        user_id: UserId,
    },
    /// The host application itself (bootstrap, scheduled jobs).
    System,
}

/// The permission that lifts organization boundaries (from a global role only).
pub const GLOBAL_ADMIN: (&str, &str) = ("system", "admin");

/// Permissions by where they apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// From global roles: in every organization the holder reaches, and on
    /// shared data.
    pub global: Permissions,
    /// From roles of one organization: only there.
    pub by_organization: BTreeMap<OrganizationId, Permissions>,
}

impl Grants {
    /// Grants from roles: a role with an organization grants only there.
    pub fn from_roles(roles: &[Role]) -> Grants {
        let mut grants = Grants::default();
        for role in roles {
            match role.organization_id {
                None => grants.global.merge(&role.permissions.0),
                Some(org) => grants
                    .by_organization
                    .entry(org)
                    .or_default()
                    .merge(&role.permissions.0),
            }
        }
        grants
    }

    /// What applies in `organization`: the global grants plus its own.
    pub fn in_organization(&self, organization: OrganizationId) -> Permissions {
        let mut permissions = self.global.clone();
        if let Some(own) = self.by_organization.get(&organization) {
            permissions.merge(own);
        }
        permissions
    }

    /// Everything granted anywhere.
    pub fn union(&self) -> Permissions {
        let mut permissions = self.global.clone();
        for own in self.by_organization.values() {
            permissions.merge(own);
        }
        permissions
    }

    /// Only what `scopes` also allows (an API key's narrowing).
    fn narrowed_to(&self, scopes: &Permissions) -> Grants {
        Grants {
            global: self.global.intersection(scopes),
            by_organization: self
                .by_organization
                .iter()
                .map(|(org, permissions)| (*org, permissions.intersection(scopes)))
                .filter(|(_, permissions)| !permissions.is_empty())
                .collect(),
        }
    }

    /// Only the grants of `organization` (an organization-bound key).
    fn restricted_to(&self, organization: OrganizationId) -> Grants {
        Grants {
            global: self.global.clone(),
            by_organization: self
                .by_organization
                .iter()
                .filter(|(org, _)| **org == organization)
                .map(|(org, permissions)| (*org, permissions.clone()))
                .collect(),
        }
    }
}

/// What an API key may never exceed, whatever its user holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBounds {
    /// The most the key may do; it gets these only where its user also holds them.
    pub scopes: Permissions,
    /// The one organization the key may act in; None leaves its user's reach.
    pub organization_id: Option<OrganizationId>,
    /// After this instant the key no longer authenticates; None: no expiry.
    pub expires_at: Option<Timestamp>,
}

/// An authenticated principal with a snapshot of what it may do, resolved per
/// request from a session, an API key, or the host (system).
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who is acting.
    pub kind: ActorKind,
    grants: Grants,
    /// Active organizations it is a member of (for a key bound to one
    /// organization, at most that one).
    organization_ids: Vec<OrganizationId>,
    key: Option<KeyBounds>,
    /// The session the actor came from (`sessions.id`); None for API keys,
    /// the system and users the host resolved. A password change keeps this
    /// session and ends the user's others.
    pub session_id: Option<SessionId>,
}

impl Actor {
    /// The host application: every permission, every organization.
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            grants: Grants {
                global: Permissions::all(),
                by_organization: BTreeMap::new(),
            },
            organization_ids: Vec::new(),
            key: None,
            session_id: None,
        }
    }

    /// An actor the host vouches for: `grants` in the active
    /// `organization_ids` (hosts that authenticate and authorize elsewhere;
    /// the library resolves real users with [`Clm::actor_for_user`]).
    pub fn new(kind: ActorKind, grants: Grants, organization_ids: Vec<OrganizationId>) -> Actor {
        let grants = Grants {
            global: grants.global,
            by_organization: grants
                .by_organization
                .into_iter()
                .filter(|(org, _)| organization_ids.contains(org))
                .collect(),
        };
        Actor {
            kind,
            grants,
            organization_ids,
            key: None,
            session_id: None,
        }
    }

    /// A user actor holding `permissions` as a global role would, in
    /// `organization_ids` (convenience for hosts and tests).
    pub fn with_permissions(
        user_id: UserId,
        permissions: Permissions,
        organization_ids: Vec<OrganizationId>,
    ) -> Actor {
        Actor::new(
            ActorKind::User(user_id),
            Grants {
                global: permissions,
                by_organization: BTreeMap::new(),
            },
            organization_ids,
        )
    }

    /// The actor of an API key: its user's grants narrowed to the key's
    /// scopes and organization.
    pub(crate) fn for_api_key(
        api_key_id: ApiKeyId,
        user: Actor,
        bounds: KeyBounds,
    ) -> Result<Actor> {
        let user_id = user
            .user_id()
            .ok_or_else(|| Error::Internal("an API key's actor without a user".into()))?;
        let mut grants = user.grants.narrowed_to(&bounds.scopes);
        let mut organization_ids = user.organization_ids;
        if let Some(org) = bounds.organization_id {
            grants = grants.restricted_to(org);
            organization_ids.retain(|o| *o == org);
            // A global administrator's key bound to an organization acts there.
            if grants.global.allows(GLOBAL_ADMIN.0, GLOBAL_ADMIN.1) && organization_ids.is_empty() {
                organization_ids.push(org);
            }
        }
        Ok(Actor {
            kind: ActorKind::ApiKey {
                api_key_id,
                user_id,
            },
            grants,
            organization_ids,
            key: Some(bounds),
            session_id: None,
        })
    }

    /// The acting user, or the API key's owner; None for the system.
    pub fn user_id(&self) -> Option<UserId> {
        match &self.kind {
            ActorKind::User(id) | ActorKind::ApiKey { user_id: id, .. } => Some(*id),
            ActorKind::System => None,
        }
    }

    /// What kind of principal acts, for logs and traces: `system`,
    /// `session` (a user through a session), `user` (a user the host
    /// vouches for) or `api_key`. Never an id or a credential.
    pub fn log_kind(&self) -> &'static str {
        match &self.kind {
            ActorKind::System => "system",
            ActorKind::ApiKey { .. } => "api_key",
            ActorKind::User(_) if self.session_id.is_some() => "session",
            ActorKind::User(_) => "user",
        }
    }

    /// The API key acting, if the actor is one.
    pub fn api_key_id(&self) -> Option<ApiKeyId> {
        match &self.kind {
            ActorKind::ApiKey { api_key_id, .. } => Some(*api_key_id),
            _ => None,
        }
    }

    /// What the actor's roles grant, before an API key's bounds narrow it.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The active organizations the actor is a member of.
    pub fn organization_ids(&self) -> &[OrganizationId] {
        &self.organization_ids
    }

    /// The bounds of the API key it acts through, if any.
    pub fn key_bounds(&self) -> Option<&KeyBounds> {
        self.key.as_ref()
    }

    /// A global administrator: `system:admin` from a global role, not
    /// through a key bound to one organization.
    pub fn is_global(&self) -> bool {
        self.grants.global.allows(GLOBAL_ADMIN.0, GLOBAL_ADMIN.1)
            && self
                .key
                .as_ref()
                .is_none_or(|key| key.organization_id.is_none())
    }

    /// Whether the actor acts in `organization` at all: a member of it (while
    /// it is active), or a global administrator; a key bound to one
    /// organization reaches only that one.
    pub fn reaches_organization(&self, organization: OrganizationId) -> bool {
        if let Some(bound) = self.key.as_ref().and_then(|k| k.organization_id)
            && bound != organization
        {
            return false;
        }
        self.grants.global.allows(GLOBAL_ADMIN.0, GLOBAL_ADMIN.1)
            || self.organization_ids.contains(&organization)
    }

    /// What the actor holds in `organization` (nothing outside its reach).
    pub fn permissions_in(&self, organization: OrganizationId) -> Permissions {
        if self.reaches_organization(organization) {
            self.grants.in_organization(organization)
        } else {
            Permissions::default()
        }
    }

    /// Whether `resource:action` is granted anywhere (before the row, and so
    /// its organization, is known).
    pub fn can(&self, resource: &str, action: &str) -> bool {
        self.grants.union().allows(resource, action)
    }

    /// The decision for one access.
    pub fn may(&self, access: &Access<'_>) -> bool {
        let (resource, action) = (access.resource, access.action);
        match access.organization {
            Some(org) => self.permissions_in(org).allows(resource, action),
            // The actor's own resource outside any organization (its key).
            None if access.own => self.can(resource, action),
            // Shared data: changed only by global administrators.
            None if access.is_write() => {
                self.is_global() && self.grants.global.allows(resource, action)
            }
            None => self.can(resource, action),
        }
    }

    /// Whether a row of `organization` is within reach for reading (shared
    /// rows are).
    pub fn reaches(&self, organization: Option<OrganizationId>) -> bool {
        organization.is_none_or(|org| self.reaches_organization(org))
    }

    /// Organizations a listing of `resource` must be restricted to (None:
    /// no restriction): those where the actor may `action` it.
    pub fn organizations_where(&self, resource: &str, action: &str) -> Option<Vec<OrganizationId>> {
        if self.is_global() {
            return None;
        }
        Some(
            self.organization_ids
                .iter()
                .copied()
                .filter(|org| self.permissions_in(*org).allows(resource, action))
                .collect(),
        )
    }

    /// Whether the actor may decide approvals of an instance of
    /// `organization` at all (step assignment aside): `workflows:approve`
    /// there. Instances of no organization are shared: any assigned approver
    /// holding the permission anywhere may act on them. One rule for
    /// deciding, listing pending approvals and notifying approvers.
    pub fn may_approve(&self, organization: Option<OrganizationId>) -> bool {
        match organization {
            Some(org) => self.permissions_in(org).allows("workflows", "approve"),
            None => self.can("workflows", "approve"),
        }
    }

    /// Whether the actor may put `permissions` where they would apply (a
    /// role of `organization`, or a global role): only what it holds there.
    pub fn may_confer(
        &self,
        permissions: &Permissions,
        organization: Option<OrganizationId>,
    ) -> bool {
        let held = match organization {
            Some(org) => self.permissions_in(org),
            None => self.grants.global.clone(),
        };
        permissions.is_subset_of(&held)
    }

    /// Whether the actor may `resource:action` on what belongs to someone of
    /// `organizations`: in one of them, or as a global administrator.
    pub fn may_in_any(
        &self,
        resource: &str,
        action: &str,
        organizations: &[OrganizationId],
    ) -> bool {
        self.is_global()
            || organizations
                .iter()
                .any(|org| self.permissions_in(*org).allows(resource, action))
    }

    /// Whether the actor may do `users:action` (anything but reading) to a
    /// user holding `target` in `target_organizations`: the permission in an
    /// organization they share (or global administration), and containment.
    pub fn may_change_user(
        &self,
        action: &str,
        target: &Grants,
        target_organizations: &[OrganizationId],
    ) -> bool {
        self.may_in_any("users", action, target_organizations)
            && self.covers(target, target_organizations)
    }

    /// Whether the actor may change a user's roles or memberships: it reaches
    /// the user already (a shared organization, or global administration)
    /// and contains them.
    pub fn may_regrant(&self, target: &Grants, target_organizations: &[OrganizationId]) -> bool {
        let reached = self.is_global()
            || target_organizations
                .iter()
                .any(|org| self.reaches_organization(*org));
        reached && self.covers(target, target_organizations)
    }

    /// Why the actor may not mint an API key with `scopes`, bound to
    /// `organization`, expiring at `expires_at`; None when it may. A key
    /// minted by a key inherits that key's organization and expiry as bounds.
    pub fn key_minting_problem(
        &self,
        scopes: &Permissions,
        organization: Option<OrganizationId>,
        expires_at: Option<Timestamp>,
    ) -> Option<&'static str> {
        if !scopes.is_subset_of(&self.grants.union()) {
            return Some("scopes beyond the creator's permissions");
        }
        let bounds = self.key.as_ref()?;
        if bounds.organization_id.is_some() && bounds.organization_id != organization {
            return Some("an organization other than the creating key's");
        }
        if bounds
            .expires_at
            .is_some_and(|limit| expires_at.is_none_or(|e| e > limit))
        {
            return Some("a lifetime beyond the creating key's expiry");
        }
        None
    }

    /// Containment: the actor holds everything `target` holds, wherever the
    /// target holds it (global grants, and each organization the target
    /// belongs to or has a role in), and reaches each of those organizations.
    pub fn covers(&self, target: &Grants, target_organizations: &[OrganizationId]) -> bool {
        if !target.global.is_subset_of(&self.grants.global) {
            return false;
        }
        let mut orgs: Vec<OrganizationId> = target_organizations.to_vec();
        orgs.extend(target.by_organization.keys().copied());
        orgs.iter().all(|org| {
            self.reaches_organization(*org)
                && target
                    .in_organization(*org)
                    .is_subset_of(&self.permissions_in(*org))
        })
    }
}

/// What an operation needs: `action` on `resource`, within `organization`.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The permission's resource (`certificates`, `policies`).
    pub resource: &'a str,
    /// The permission's action on it (`read`, `revoke`).
    pub action: &'a str,
    /// The organization the row belongs to; None for shared data.
    pub organization: Option<OrganizationId>,
    /// The resource belongs to the actor (their own API key): outside any
    /// organization it is nobody else's, so it is not shared data.
    pub own: bool,
}

impl<'a> Access<'a> {
    /// `action` on `resource`, on shared data until [`Access::in_org`].
    pub fn new(resource: &'a str, action: &'a str) -> Self {
        Access {
            resource,
            action,
            organization: None,
            own: false,
        }
    }

    /// Sets the organization the row belongs to (None: shared data).
    pub fn in_org(mut self, organization: Option<OrganizationId>) -> Self {
        self.organization = organization;
        self
    }

    /// See [`Access::own`].
    pub fn own(mut self) -> Self {
        self.own = true;
        self
    }

    /// Records the organization on the operation's span (the span
    /// `#[instrument]` opens around every operation declares the field).
    fn trace_organization(&self) {
        if let Some(organization) = self.organization {
            tracing::Span::current().record("organization", tracing::field::display(organization));
        }
    }

    /// Whether the action changes something. Verifying a trail only reads
    /// it, so an auditor outside every organization may verify the shared
    /// trails (the built-in AUDITOR role exists for that).
    fn is_write(&self) -> bool {
        !matches!(self.action, "read" | "verify")
    }
}

/// A user as an authorization decision sees them: their grants and
/// organizations, whatever acts through them.
#[derive(Debug, Clone)]
pub(crate) struct Subject {
    pub user: User,
    pub grants: Grants,
    pub organizations: Vec<OrganizationId>,
}

impl Clm {
    /// The single authorization check. A refusal is audited in its own
    /// transaction and returned as PermissionDenied naming resource and action.
    pub async fn authorize(&self, actor: &Actor, access: Access<'_>) -> Result<()> {
        access.trace_organization();
        if actor.may(&access) {
            return Ok(());
        }
        Err(self.refuse(actor, access, access.resource).await)
    }

    /// Like [`Clm::authorize`] for one row, where a row out of reach must
    /// look exactly like a missing one (no existence oracle): an actor that
    /// may not do this anywhere is refused; one that may, but not on this
    /// row, is told the row does not exist.
    pub async fn authorize_visible(
        &self,
        actor: &Actor,
        access: Access<'_>,
        entity: &'static str,
        key: impl std::fmt::Display,
    ) -> Result<()> {
        access.trace_organization();
        self.gate(actor, access.resource, access.action).await?;
        if actor.may(&access) {
            return Ok(());
        }
        self.audit_denial(actor, access).await?;
        Err(Error::not_found(entity, key))
    }

    /// Refuses an actor that may not do `resource:action` anywhere. Called
    /// before a row is loaded, so a missing row and a refused actor never
    /// answer differently for the same input.
    pub(crate) async fn gate(&self, actor: &Actor, resource: &str, action: &str) -> Result<()> {
        if actor.can(resource, action) {
            return Ok(());
        }
        Err(self
            .refuse(actor, Access::new(resource, action), resource)
            .await)
    }

    /// Audits a refusal of `access` and returns it as PermissionDenied on
    /// `what` (the only place a denial is made).
    pub(crate) async fn refuse(&self, actor: &Actor, access: Access<'_>, what: &str) -> Error {
        if let Err(err) = self.audit_denial(actor, access).await {
            return err;
        }
        Error::denied(what, access.action)
    }

    /// Writes an audit row for a refused attempt, in its own transaction.
    /// Callers hold no transaction when they decide, so this waits on
    /// nothing of theirs.
    pub(crate) async fn audit_denial(&self, actor: &Actor, access: Access<'_>) -> Result<()> {
        tracing::info!(
            actor = actor.log_kind(),
            resource = access.resource,
            action = access.action,
            organization = access.organization.map(tracing::field::display),
            "authorization denied"
        );
        let entry = AuditEntry::new(
            format!("{}.{}", access.resource, access.action),
            access.action,
        )
        .outcome(AuditOutcome::Denied)
        .org(access.organization)
        .details(json!({"resource": access.resource, "action": access.action}));
        let mut tx = self.databases().core.begin().await?;
        append(&mut tx.conn(), AuditLogKind::Core, actor, entry).await?;
        tx.commit().await
    }

    /// A user with the grants and organizations a decision about them needs.
    pub(crate) async fn load_subject(&self, id: UserId, include_deleted: bool) -> Result<Subject> {
        let mut conn = self.databases().core.acquire().await?;
        let user = store::get::<Users>(&mut conn.conn(), id, include_deleted).await?;
        let grants = Grants::from_roles(&roles::roles_of_user(&mut conn.conn(), id).await?);
        let organizations = user_organizations::organizations_of_user(&mut conn.conn(), id).await?;
        Ok(Subject {
            user,
            grants,
            organizations,
        })
    }

    /// The user `id` if `actor` may do `users:action` on them, else an error
    /// that does not say whether the user exists. Reading needs reach (a
    /// shared organization, or oneself); anything else needs containment:
    /// the actor holds whatever the user holds, wherever they hold it.
    pub(crate) async fn authorize_user(
        &self,
        actor: &Actor,
        action: &str,
        id: UserId,
        include_deleted: bool,
    ) -> Result<Subject> {
        let own_read = action == "read" && actor.user_id() == Some(id);
        if !own_read {
            self.gate(actor, "users", action).await?;
        }
        let subject = match self.load_subject(id, include_deleted).await {
            Err(Error::NotFound { .. }) => return Err(Error::not_found("user", id)),
            other => other?,
        };
        let allowed = own_read
            || if action == "read" {
                actor.may_in_any("users", "read", &subject.organizations)
            } else {
                actor.may_change_user(action, &subject.grants, &subject.organizations)
            };
        if allowed {
            return Ok(subject);
        }
        self.audit_denial(actor, Access::new("users", action))
            .await?;
        Err(Error::not_found("user", id))
    }

    /// User `id` when `actor` may `resource:action` on what is theirs (their
    /// notifications, say): in an organization they belong to. Else
    /// NotFound, as for a user that does not exist.
    pub(crate) async fn authorize_about_user(
        &self,
        actor: &Actor,
        resource: &str,
        action: &str,
        id: UserId,
    ) -> Result<Subject> {
        self.gate(actor, resource, action).await?;
        let subject = match self.load_subject(id, false).await {
            Err(Error::NotFound { .. }) => return Err(Error::not_found("user", id)),
            other => other?,
        };
        if actor.may_in_any(resource, action, &subject.organizations) {
            return Ok(subject);
        }
        self.audit_denial(actor, Access::new(resource, action))
            .await?;
        Err(Error::not_found("user", id))
    }

    /// Resolves the actor of a user from their current roles and active
    /// memberships.
    pub(crate) async fn resolve_user_actor(
        &self,
        conn: &mut crate::db::Conn<'_>,
        user_id: UserId,
    ) -> Result<Actor> {
        let roles = roles::roles_of_user(conn, user_id).await?;
        let organization_ids =
            user_organizations::active_organizations_of_user(conn, user_id).await?;
        Ok(Actor::new(
            ActorKind::User(user_id),
            Grants::from_roles(&roles),
            organization_ids,
        ))
    }
}

#[cfg(test)]
#[path = "actor_model_tests.rs"]
mod model_tests;
