//! Property tests of the authorization module against a reference model
//! written separately here: random organizations (active or not), roles
//! (global or of one organization), memberships and API keys.
//!
//! 1. For every generated actor, organization and permission, the module's
//!    decision equals the model's.
//! 2. Whatever sequence of operations an actor attempts (create or widen
//!    roles, grant them, add members, mint keys and act through them, take
//!    over users by resetting their credentials), the ones the module lets
//!    through never give the actor, a user it took over, or anyone else, a
//!    permission that neither they nor the actor held at the start.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{Access, Actor, ActorKind, Grants, KeyBounds};
use crate::model::{ApiKeyId, OrganizationId, Permissions, UserId};

const ORGS: usize = 3;
const USERS: usize = 3;
/// A small catalog; index 0 is the global administrator's permission.
const CATALOG: &[(&str, &str)] = &[
    ("system", "admin"),
    ("certificates", "read"),
    ("certificates", "create"),
    ("users", "update"),
    ("roles", "create"),
    ("roles", "update"),
    ("roles", "assign"),
    ("organizations", "manage_members"),
    ("api_keys", "create"),
];
const SYSTEM_ADMIN: usize = 0;

#[derive(Debug, Clone)]
struct RoleSpec {
    org: Option<usize>,
    perms: BTreeSet<usize>,
}

#[derive(Debug, Clone)]
struct KeySpec {
    scopes: BTreeSet<usize>,
    org: Option<usize>,
}

#[derive(Debug, Clone)]
struct World {
    active: Vec<bool>,
    roles: Vec<RoleSpec>,
    /// Per user: organizations (live memberships) and roles held.
    members: Vec<BTreeSet<usize>>,
    held: Vec<BTreeSet<usize>>,
}

// ----------------------------------------------------------- the reference

/// Whether `p` is a write: everything in this catalog but `certificates:read`.
fn is_write(p: usize) -> bool {
    CATALOG[p].1 != "read"
}

fn scoped(key: Option<&KeySpec>, p: usize) -> bool {
    key.is_none_or(|k| k.scopes.contains(&p))
}

fn key_allows_org(key: Option<&KeySpec>, o: usize) -> bool {
    key.is_none_or(|k| k.org.is_none_or(|ko| ko == o))
}

fn ref_global(w: &World, u: usize, key: Option<&KeySpec>, p: usize) -> bool {
    scoped(key, p)
        && w.held[u]
            .iter()
            .any(|r| w.roles[*r].org.is_none() && w.roles[*r].perms.contains(&p))
}

fn ref_active_member(w: &World, u: usize, key: Option<&KeySpec>, o: usize) -> bool {
    key_allows_org(key, o) && w.members[u].contains(&o) && w.active[o]
}

fn ref_admin(w: &World, u: usize, key: Option<&KeySpec>) -> bool {
    ref_global(w, u, key, SYSTEM_ADMIN)
}

fn ref_org_role(w: &World, u: usize, key: Option<&KeySpec>, o: usize, p: usize) -> bool {
    scoped(key, p)
        && ref_active_member(w, u, key, o)
        && w.held[u]
            .iter()
            .any(|r| w.roles[*r].org == Some(o) && w.roles[*r].perms.contains(&p))
}

fn ref_may(w: &World, u: usize, key: Option<&KeySpec>, org: Option<usize>, p: usize) -> bool {
    match org {
        Some(o) => {
            let reach =
                key_allows_org(key, o) && (ref_admin(w, u, key) || ref_active_member(w, u, key, o));
            reach && (ref_global(w, u, key, p) || ref_org_role(w, u, key, o, p))
        }
        None if is_write(p) => {
            ref_admin(w, u, key) && key.is_none_or(|k| k.org.is_none()) && ref_global(w, u, key, p)
        }
        None => ref_global(w, u, key, p) || (0..ORGS).any(|o| ref_org_role(w, u, key, o, p)),
    }
}

// ------------------------------------------------------------- the module

struct Ids {
    orgs: Vec<OrganizationId>,
    users: Vec<UserId>,
}

impl Ids {
    fn new() -> Ids {
        Ids {
            orgs: (0..ORGS).map(|_| OrganizationId::new()).collect(),
            users: (0..USERS).map(|_| UserId::new()).collect(),
        }
    }
}

fn permissions(set: &BTreeSet<usize>) -> Permissions {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in set {
        let (resource, action) = CATALOG[*p];
        map.entry(resource.into()).or_default().push(action.into());
    }
    Permissions(map)
}

/// A user's grants from every role they hold (as `load_subject` reads them).
fn grants_of(w: &World, ids: &Ids, u: usize) -> Grants {
    let mut grants = Grants::default();
    for r in &w.held[u] {
        let role = &w.roles[*r];
        match role.org {
            None => grants.global.merge(&permissions(&role.perms)),
            Some(o) => grants
                .by_organization
                .entry(ids.orgs[o])
                .or_default()
                .merge(&permissions(&role.perms)),
        }
    }
    grants
}

/// The actor as sessions and keys resolve it: active memberships only.
fn actor_of(w: &World, ids: &Ids, u: usize, key: Option<&KeySpec>) -> Actor {
    let active: Vec<OrganizationId> = w.members[u]
        .iter()
        .filter(|o| w.active[**o])
        .map(|o| ids.orgs[*o])
        .collect();
    let user = Actor::new(ActorKind::User(ids.users[u]), grants_of(w, ids, u), active);
    match key {
        None => user,
        Some(k) => Actor::for_api_key(
            ApiKeyId::new(),
            user,
            KeyBounds {
                scopes: permissions(&k.scopes),
                organization_id: k.org.map(|o| ids.orgs[o]),
                expires_at: None,
            },
        )
        .expect("a user's key"),
    }
}

fn access(ids: &Ids, org: Option<usize>, p: usize) -> Access<'static> {
    let (resource, action) = CATALOG[p];
    Access::new(resource, action).in_org(org.map(|o| ids.orgs[o]))
}

fn every_access() -> impl Iterator<Item = (Option<usize>, usize)> {
    std::iter::once(None)
        .chain((0..ORGS).map(Some))
        .flat_map(|org| (0..CATALOG.len()).map(move |p| (org, p)))
}

// ------------------------------------------------------------- strategies

fn perm_set() -> impl Strategy<Value = BTreeSet<usize>> {
    // The administrator's permission is rare, so most worlds are tenants.
    proptest::collection::btree_set(
        prop_oneof![1 => Just(SYSTEM_ADMIN), 12 => 1..CATALOG.len()],
        0..5,
    )
}

fn org_opt() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![1 => Just(None), 3 => (0..ORGS).prop_map(Some)]
}

fn role() -> impl Strategy<Value = RoleSpec> {
    (org_opt(), perm_set()).prop_map(|(org, perms)| RoleSpec { org, perms })
}

fn key() -> impl Strategy<Value = KeySpec> {
    (perm_set(), org_opt()).prop_map(|(scopes, org)| KeySpec { scopes, org })
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec(prop_oneof![4 => Just(true), 1 => Just(false)], ORGS),
        proptest::collection::vec(role(), 1..6),
        proptest::collection::vec(proptest::collection::btree_set(0..ORGS, 1..3), USERS),
        proptest::collection::vec(proptest::collection::btree_set(0..6usize, 0..3), USERS),
    )
        .prop_map(|(active, mut roles, mut members, held)| {
            let mut held: Vec<BTreeSet<usize>> = held
                .into_iter()
                .map(|set| set.into_iter().filter(|r| *r < roles.len()).collect())
                .collect();
            // The actor (user 0) manages organization 0, so attempts get
            // through often enough to test what they lead to.
            roles.push(RoleSpec {
                org: Some(0),
                perms: (1..CATALOG.len()).collect(),
            });
            held[0].insert(roles.len() - 1);
            members[0].insert(0);
            World {
                active,
                roles,
                members,
                held,
            }
        })
}

#[derive(Debug, Clone)]
enum Op {
    CreateRole(RoleSpec),
    UpdateRole(usize, BTreeSet<usize>),
    AssignRole(usize, usize),
    AddMember(usize, usize),
    Activate(usize),
    /// Mint a key and act through it from now on.
    MintKey(KeySpec),
    /// Reset a user's password (or disable their MFA): the actor then
    /// controls that user.
    TakeOver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        role().prop_map(Op::CreateRole),
        (0..8usize, perm_set()).prop_map(|(r, p)| Op::UpdateRole(r, p)),
        (0..8usize, 0..USERS).prop_map(|(r, u)| Op::AssignRole(r, u)),
        (0..ORGS, 0..USERS).prop_map(|(o, u)| Op::AddMember(o, u)),
        (0..ORGS).prop_map(Op::Activate),
        key().prop_map(Op::MintKey),
        (1..USERS).prop_map(Op::TakeOver),
    ]
}

/// Applies `op` as the module would let it through (the checks each
/// service operation makes, in its order); returns whether it was applied.
fn attempt(
    w: &mut World,
    ids: &Ids,
    actor: &Actor,
    attacker_key: &mut Option<KeySpec>,
    controlled: &mut BTreeSet<usize>,
    op: &Op,
) -> bool {
    let target = |w: &World, u: usize| {
        let orgs: Vec<OrganizationId> = w.members[u].iter().map(|o| ids.orgs[*o]).collect();
        (grants_of(w, ids, u), orgs)
    };
    let in_org = |o: Option<usize>| o.map(|o| ids.orgs[o]);
    match op {
        Op::CreateRole(spec) => {
            let allowed = actor.may(&Access::new("roles", "create").in_org(in_org(spec.org)))
                && actor.may_confer(&permissions(&spec.perms), in_org(spec.org));
            if allowed {
                w.roles.push(spec.clone());
            }
            allowed
        }
        Op::UpdateRole(r, perms) => {
            let Some(role) = w.roles.get(*r).cloned() else {
                return false;
            };
            let allowed = actor.may(&Access::new("roles", "update").in_org(in_org(role.org)))
                && actor.may_confer(&permissions(perms), in_org(role.org));
            if allowed {
                w.roles[*r].perms = perms.clone();
            }
            allowed
        }
        Op::AssignRole(r, u) => {
            let Some(role) = w.roles.get(*r).cloned() else {
                return false;
            };
            let (grants, orgs) = target(w, *u);
            let allowed = actor.may(&Access::new("roles", "assign").in_org(in_org(role.org)))
                && actor.may_regrant(&grants, &orgs)
                && role.org.is_none_or(|o| w.members[*u].contains(&o))
                && actor.may_confer(&permissions(&role.perms), in_org(role.org));
            if allowed {
                w.held[*u].insert(*r);
            }
            allowed
        }
        Op::AddMember(o, u) => {
            let (grants, orgs) = target(w, *u);
            let allowed = actor
                .may(&Access::new("organizations", "manage_members").in_org(Some(ids.orgs[*o])))
                && actor.may_regrant(&grants, &orgs);
            if allowed {
                w.members[*u].insert(*o);
            }
            allowed
        }
        Op::Activate(o) => {
            let allowed = actor.may(&Access::new("organizations", "update"));
            if allowed {
                w.active[*o] = true;
            }
            allowed
        }
        Op::MintKey(spec) => {
            let own = Access::new("api_keys", "create")
                .in_org(in_org(spec.org))
                .own();
            let allowed = actor.may(&own)
                && actor
                    .key_minting_problem(&permissions(&spec.scopes), in_org(spec.org), None)
                    .is_none();
            if allowed {
                *attacker_key = Some(spec.clone());
            }
            allowed
        }
        Op::TakeOver(u) => {
            let (grants, orgs) = target(w, *u);
            let allowed = actor.may_change_user("update", &grants, &orgs);
            if allowed {
                controlled.insert(*u);
            }
            allowed
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn decisions_match_the_reference_model(w in world(), k in proptest::option::of(key()), u in 0..USERS) {
        let ids = Ids::new();
        let actor = actor_of(&w, &ids, u, k.as_ref());
        for (org, p) in every_access() {
            prop_assert_eq!(
                actor.may(&access(&ids, org, p)),
                ref_may(&w, u, k.as_ref(), org, p),
                "user {} key {:?} org {:?} {:?} in {:?}", u, k, org, CATALOG[p], w
            );
        }
    }

    #[test]
    fn nobody_obtains_what_neither_they_nor_the_actor_held(
        w in world(),
        k in proptest::option::of(key()),
        ops in proptest::collection::vec(op(), 1..10),
    ) {
        let ids = Ids::new();
        let initial = w.clone();
        let mut w = w;
        let mut attacker_key = k;
        let attacker = 0;
        let before = |u: usize, key: Option<&KeySpec>, org, p| ref_may(&initial, u, key, org, p);
        let attacker_start = attacker_key.clone();
        let mut controlled = BTreeSet::new();
        for op in &ops {
            let actor = actor_of(&w, &ids, attacker, attacker_key.as_ref());
            attempt(&mut w, &ids, &actor, &mut attacker_key, &mut controlled, op);
            for (org, p) in every_access() {
                // The attacker, through whatever key it now uses.
                if ref_may(&w, attacker, attacker_key.as_ref(), org, p) {
                    prop_assert!(
                        before(attacker, attacker_start.as_ref(), org, p),
                        "the actor gained {:?} in {:?} after {:?}", CATALOG[p], org, ops
                    );
                }
                // Users it took over: nothing beyond what it started with.
                for u in &controlled {
                    if ref_may(&w, *u, None, org, p) {
                        prop_assert!(
                            before(attacker, attacker_start.as_ref(), org, p),
                            "taking over user {} gave {:?} in {:?} after {:?}", u, CATALOG[p], org, ops
                        );
                    }
                }
                // Everyone else, in person.
                for u in 1..USERS {
                    if ref_may(&w, u, None, org, p) {
                        prop_assert!(
                            before(u, None, org, p) || before(attacker, attacker_start.as_ref(), org, p),
                            "user {} gained {:?} in {:?} beyond the actor after {:?}", u, CATALOG[p], org, ops
                        );
                    }
                }
            }
        }
    }
}
