//! Attacks: database maintenance (issue 13). `database_stats` and `maintain`
//! are system-level: an organization's administrator, an API key narrower
//! than its global administrator, and a member of another tenant are refused
//! (and each refusal is audited); a global administrator and the host's
//! system actor succeed, and every maintenance run leaves one audit row.

use clm::model::{AuditOutcome, PERMISSION_CATALOG, Permissions, UserId};
use clm::service::access::ROLE_ADMIN;
use clm::service::identity::{NewApiKey, NewUser};
use clm::service::maintenance::MaintainOptions;
use clm::store::PageRequest;
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::{Actor, Clm, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, unique};
use crate::members::member;

fn settings() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 2,
        ..SecuritySettings::default()
    }
}

/// A user holding the built-in ADMIN role globally: a global administrator.
async fn global_admin(clm: &Clm) -> (UserId, Actor) {
    let system = clm.system_actor();
    let name = unique("root");
    let user = clm
        .create_user(
            &system,
            NewUser {
                username: name.clone(),
                email: format!("{name}@example.com"),
                display_name: None,
                password: None,
                organization_id: None,
            },
        )
        .await
        .expect("user")
        .id;
    let admin = clm
        .get_role_by_code(&system, ROLE_ADMIN)
        .await
        .expect("ADMIN");
    clm.assign_role(&system, user, admin.id)
        .await
        .expect("grant ADMIN");
    (user, clm.actor_for_user(user).await.expect("actor"))
}

/// Core-trail events of `event_type` with `outcome`.
async fn count_events(clm: &Clm, event_type: &str, outcome: AuditOutcome) -> usize {
    let filter = AuditFilter {
        event_type: Some(event_type.to_string()),
        ..AuditFilter::default()
    };
    clm.list_audit_events(
        &clm.system_actor(),
        AuditLogKind::Core,
        &filter,
        &PageRequest::first(500),
    )
    .await
    .expect("audit events")
    .items
    .iter()
    .filter(|e| e.outcome == outcome)
    .count()
}

async fn refused_both(clm: &Clm, actor: &Actor, who: &str) {
    let stats = clm.database_stats(actor).await;
    let run = clm.maintain(actor, MaintainOptions::default()).await;
    for (what, outcome) in [
        ("database_stats", stats.map(|_| ())),
        ("maintain", run.map(|_| ())),
    ] {
        let err = outcome.expect_err(&format!("{who} must not run {what}"));
        assert_eq!(
            err.code(),
            ErrorCode::PermissionDenied,
            "{who} {what}: {err}"
        );
        assert!(err.to_string().contains("system"), "{err}");
    }
}

#[tokio::test]
async fn maintenance_refuses_tenants_and_narrow_keys_and_serves_global_admins() {
    on_both_keyed(settings(), |clm| async move {
        // An organization's administrator: every permission, system ones
        // included, but from a role of its organization.
        let everything: Vec<(&str, &[&str])> = PERMISSION_CATALOG.to_vec();
        let org_admin = member(&clm, "orgadmin", &everything).await;
        // A member of another tenant.
        let tenant = member(&clm, "tenant", &[("certificates", &["read"])]).await;
        // A global administrator's key scoped to running the lifecycle only.
        let (_root, root) = global_admin(&clm).await;
        let narrow = clm
            .create_api_key(
                &root,
                NewApiKey {
                    name: "lifecycle cron".into(),
                    scopes: Some(Permissions::from_pairs(&[(
                        "system",
                        &["admin", "lifecycle"],
                    )])),
                    ..Default::default()
                },
            )
            .await
            .expect("narrow key");
        let narrow = clm
            .authenticate_api_key(narrow.key.expose())
            .await
            .expect("key actor");

        let denied_before = count_events(&clm, "system.maintain", AuditOutcome::Denied).await;
        refused_both(&clm, &org_admin.actor, "an organization administrator").await;
        refused_both(&clm, &tenant.actor, "a member of another tenant").await;
        refused_both(&clm, &narrow, "a key without system:maintain").await;
        let denied_after = count_events(&clm, "system.maintain", AuditOutcome::Denied).await;
        assert_eq!(denied_after - denied_before, 6, "every refusal is audited");
        assert_eq!(
            count_events(&clm, "system.maintained", AuditOutcome::Success).await,
            0,
            "a refused run maintains nothing"
        );

        // The global administrator (ADMIN holds system:maintain, also in a
        // database seeded before the permission existed) and the system actor.
        let stats = clm.database_stats(&root).await.expect("global admin stats");
        assert_eq!(stats.secure.database, "secure");
        let report = clm
            .maintain(&root, MaintainOptions::default())
            .await
            .expect("global admin maintains");
        assert!(!report.steps.is_empty(), "{report:?}");
        clm.maintain(&clm.system_actor(), MaintainOptions::default())
            .await
            .expect("system actor maintains");
        assert_eq!(
            count_events(&clm, "system.maintained", AuditOutcome::Success).await,
            2,
            "one audit row per run"
        );
    })
    .await;
}

/// A database created before `system:maintain` existed holds an ADMIN role
/// without it: opening it again brings the built-in role up to date
/// (audited), so its global administrators are not locked out.
#[tokio::test]
async fn reopening_brings_builtin_admin_up_to_the_catalog() {
    use clm::db::Dialect;
    on_both_keyed(settings(), |clm| async move {
        let (_root, _) = global_admin(&clm).await;
        let system = clm.system_actor();
        let admin = clm
            .get_role_by_code(&system, ROLE_ADMIN)
            .await
            .expect("ADMIN");
        // Turn the stored role back into an older version's ADMIN.
        let mut older = Permissions::all();
        older
            .0
            .insert("system".into(), vec!["admin".into(), "lifecycle".into()]);
        let json = serde_json::to_string(&older).expect("json");
        let mut conn = clm.databases().core.acquire().await.expect("conn");
        let sql = match conn.conn().dialect() {
            Dialect::Postgres => "UPDATE roles SET permissions = $1::jsonb WHERE id = $2",
            Dialect::Sqlite => "UPDATE roles SET permissions = $1 WHERE id = $2",
        };
        crate::common::raw(
            &mut conn.conn(),
            sql,
            vec![json.into(), clm::store::id_value(admin.id)],
        )
        .await
        .expect("downgrade ADMIN");
        drop(conn);
        let stale = clm.get_role(&system, admin.id).await.expect("role");
        assert!(!stale.permissions.0.allows("system", "maintain"));

        let reopened = Clm::open(clm.config().clone()).await.expect("reopen");
        let fresh = reopened.get_role(&system, admin.id).await.expect("role");
        assert!(
            fresh.permissions.0.allows("system", "maintain"),
            "{fresh:?}"
        );
        let updates = count_events(&reopened, "role.updated", AuditOutcome::Success).await;
        assert_eq!(updates, 1, "the upgrade is audited once");
        reopened.close().await;
    })
    .await;
}
