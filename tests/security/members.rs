//! An organization and one member whose role, scoped to it, holds given
//! permissions: the tenant most attacks start from.

use clm::model::{OrganizationId, Permissions, UserId};
use clm::service::access::{NewOrganization, NewRole};
use clm::service::identity::NewUser;
use clm::{Actor, Clm};

use crate::common::unique;

pub struct Member {
    pub org: OrganizationId,
    pub actor: Actor,
    pub user: UserId,
}

/// A new organization tagged `tag` and a member holding `grants` in it.
pub async fn member(clm: &Clm, tag: &str, grants: &[(&str, &[&str])]) -> Member {
    let system = clm.system_actor();
    let org = clm
        .create_organization(
            &system,
            NewOrganization {
                org_code: unique(tag),
                name: format!("Tenant {tag}"),
                ..Default::default()
            },
        )
        .await
        .expect("organization")
        .id;
    let role = clm
        .create_role(
            &system,
            NewRole {
                role_code: unique(&format!("ROLE-{tag}")),
                role_name: format!("Members of {tag}"),
                description: None,
                permissions: Permissions::from_pairs(grants),
                organization_id: Some(org),
            },
        )
        .await
        .expect("role");
    let name = unique(tag);
    let user = clm
        .create_user(
            &system,
            NewUser {
                username: name.clone(),
                email: format!("{name}@example.com"),
                display_name: None,
                password: None,
                organization_id: Some(org),
            },
        )
        .await
        .expect("user")
        .id;
    clm.assign_role(&system, user, role.id)
        .await
        .expect("assign role");
    let actor = clm.actor_for_user(user).await.expect("actor");
    Member { org, actor, user }
}
