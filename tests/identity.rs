//! Identity, access and audit: authentication, lockout, MFA, sessions, API
//! keys, RBAC, tenancy, the audit chain and secret hygiene, on both backends.

mod common;

use std::time::Duration;

use clm::crypto::{SecretBytes, SecretString, totp};
use clm::db::{Conn, Dialect};
use clm::model::{
    AuditEvent, AuditOutcome, Organization, OrganizationId, Permissions, PolicyStatus, User,
    UserId, UserStatus,
};
use clm::service::access::{NewOrganization, NewRole, ROLE_ADMIN};
use clm::service::audit::ChainReport;
use clm::service::identity::{LoginContext, NewApiKey, NewUser, UserUpdate};
use clm::service::policies::{NewPolicy, PolicyUpdate};
use clm::store::PageRequest;
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::store::policies::PolicyFilter;
use clm::store::users::UserFilter;
use clm::{Actor, ActorKind, Clm, ClmConfig, ErrorCode, SecuritySettings};
use common::{on_both_configs, on_both_keyed, unique};
use sqlx::AssertSqlSafe;

// ------------------------------------------------------------------ helpers

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

fn password(tag: &str) -> SecretString {
    SecretString::new(format!("Tr0ub4dor-{tag}-horse-staple"))
}

fn ctx() -> LoginContext {
    LoginContext {
        ip_address: Some("192.0.2.7".into()),
        user_agent: Some("identity-tests".into()),
    }
}

fn page() -> PageRequest {
    PageRequest::first(500)
}

async fn org(clm: &Clm, code: &str) -> Organization {
    clm.create_organization(
        &clm.system_actor(),
        NewOrganization {
            org_code: unique(code),
            name: format!("Org {code}"),
            ..Default::default()
        },
    )
    .await
    .expect("create organization")
}

/// A user created by the system actor; `pw` None skips the (slow) hashing.
async fn user(
    clm: &Clm,
    prefix: &str,
    pw: Option<&SecretString>,
    org: Option<OrganizationId>,
) -> User {
    let name = unique(prefix);
    clm.create_user(
        &clm.system_actor(),
        NewUser {
            username: name.clone(),
            email: format!("{name}@example.com"),
            display_name: Some(format!("User {prefix}")),
            password: pw.cloned(),
            organization_id: org,
        },
    )
    .await
    .expect("create user")
}

/// A custom role with `permissions`, granted to `user` by the system.
async fn grant(
    clm: &Clm,
    user: UserId,
    permissions: &[(&str, &[&str])],
    org: Option<OrganizationId>,
) -> clm::model::Role {
    let system = clm.system_actor();
    let role = clm
        .create_role(
            &system,
            NewRole {
                role_code: unique("ROLE"),
                role_name: "Test role".into(),
                description: None,
                permissions: Permissions::from_pairs(permissions),
                organization_id: org,
            },
        )
        .await
        .expect("create role");
    clm.assign_role(&system, user, role.id)
        .await
        .expect("assign role");
    role
}

fn policy(code: &str, org: Option<OrganizationId>) -> NewPolicy {
    NewPolicy {
        policy_code: unique(code),
        name: format!("Policy {code}"),
        organization_id: org,
        status: PolicyStatus::Active,
        ..NewPolicy::default()
    }
}

fn assert_code<T: std::fmt::Debug>(result: clm::Result<T>, code: ErrorCode) -> clm::Error {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(err) => {
            assert_eq!(err.code(), code, "unexpected error: {err}");
            err
        }
    }
}

async fn events(clm: &Clm, kind: AuditLogKind, filter: AuditFilter) -> Vec<AuditEvent> {
    clm.list_audit_events(&clm.system_actor(), kind, &filter, &page())
        .await
        .expect("list audit events")
        .items
}

async fn events_of_type(clm: &Clm, event_type: &str, user: Option<UserId>) -> Vec<AuditEvent> {
    events(
        clm,
        AuditLogKind::Core,
        AuditFilter {
            event_type: Some(event_type.into()),
            user_id: user,
            ..Default::default()
        },
    )
    .await
}

async fn verify(clm: &Clm, kind: AuditLogKind) -> ChainReport {
    clm.verify_audit_chain(&clm.system_actor(), kind)
        .await
        .expect("verify chain")
}

fn pool(clm: &Clm, secure: bool) -> &clm::db::Pool {
    if secure {
        &clm.databases().secure
    } else {
        &clm.databases().core
    }
}

/// Raw SQL returning one text column, behind the library's back.
async fn strings(clm: &Clm, secure: bool, sql: &str) -> Vec<String> {
    let mut pooled = pool(clm, secure).acquire().await.expect("acquire");
    let conn: &mut Conn<'_> = &mut pooled.conn();
    let sql = sql.to_string();
    clm::on_conn!(conn, |c| sqlx::query_scalar::<_, String>(AssertSqlSafe(
        sql
    ))
    .fetch_all(&mut *c)
    .await)
    .expect("raw select")
}

/// Raw SQL statements, behind the library's back.
async fn execute(clm: &Clm, secure: bool, statements: &[String]) {
    let mut pooled = pool(clm, secure).acquire().await.expect("acquire");
    for sql in statements {
        let conn: &mut Conn<'_> = &mut pooled.conn();
        common::raw(conn, sql, Vec::new())
            .await
            .unwrap_or_else(|err| panic!("{sql}: {err}"));
    }
}

/// Every row of `table` rendered as text (all columns).
async fn dump_table(clm: &Clm, secure: bool, table: &str) -> Vec<String> {
    match clm.databases().dialect() {
        Dialect::Postgres => {
            strings(
                clm,
                secure,
                &format!("SELECT row_to_json(t)::text FROM {table} t"),
            )
            .await
        }
        Dialect::Sqlite => {
            let columns = strings(
                clm,
                secure,
                &format!("SELECT name FROM pragma_table_info('{table}')"),
            )
            .await;
            assert!(!columns.is_empty(), "no columns for {table}");
            let expr = columns
                .iter()
                .map(|c| {
                    format!("COALESCE(quote({c}), '') || '|' || COALESCE(CAST({c} AS TEXT), '')")
                })
                .collect::<Vec<_>>()
                .join(" || '|' || ");
            strings(clm, secure, &format!("SELECT {expr} FROM {table}")).await
        }
    }
}

async fn audit_details(clm: &Clm) -> Vec<String> {
    let mut all = dump_table(clm, false, "audit_log").await;
    all.extend(dump_table(clm, true, "secure_audit_log").await);
    all
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for ch in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == ch).expect("base32") as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ------------------------------------------------------- 1. authentication

#[tokio::test]
async fn authentication_by_username_and_email_with_uniform_failures() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let pw = password("auth");
        let alice = user(&clm, "alice", Some(&pw), None).await;

        let by_name = clm
            .authenticate(&alice.username, pw.clone(), None, ctx())
            .await
            .expect("login by username");
        assert_eq!(by_name.user.id, alice.id);
        assert_eq!(by_name.session.user_id, alice.id);
        assert!(by_name.user.last_login_at.is_some());
        let by_email = clm
            .authenticate(&alice.email.to_uppercase(), pw.clone(), None, ctx())
            .await
            .expect("login by email");
        assert_eq!(by_email.user.id, alice.id);

        let wrong = assert_code(
            clm.authenticate(&alice.username, password("nope"), None, ctx())
                .await,
            ErrorCode::Authentication,
        );
        let unknown = assert_code(
            clm.authenticate(&unique("ghost"), pw.clone(), None, ctx())
                .await,
            ErrorCode::Authentication,
        );
        assert_eq!(wrong.to_string(), unknown.to_string());

        for status in [UserStatus::Suspended, UserStatus::Inactive] {
            clm.update_user(
                &system,
                alice.id,
                UserUpdate {
                    status: Some(status),
                    ..Default::default()
                },
            )
            .await
            .expect("set status");
            let err = assert_code(
                clm.authenticate(&alice.username, pw.clone(), None, ctx())
                    .await,
                ErrorCode::Authentication,
            );
            assert_eq!(err.to_string(), wrong.to_string(), "{status:?}");
        }

        let logins = events_of_type(&clm, "auth.login", Some(alice.id)).await;
        assert_eq!(logins.len(), 2, "two successful logins audited");
        assert!(logins.iter().all(|e| e.outcome == AuditOutcome::Success));
        let failed = events_of_type(&clm, "auth.login_failed", None).await;
        assert!(
            failed.len() >= 4,
            "wrong password, unknown user, suspended and inactive audited: {}",
            failed.len()
        );
        assert!(failed.iter().all(|e| e.outcome == AuditOutcome::Failure));
        assert!(
            failed
                .iter()
                .any(|e| e.user_id.is_none() && e.resource_id.is_none()),
            "unknown user failure recorded without a user"
        );
    })
    .await;
}

// ---------------------------------------------------------------- 2. lockout

#[tokio::test]
async fn three_failures_lock_until_an_admin_unlocks() {
    let settings = SecuritySettings {
        max_failed_logins: 3,
        lockout_seconds: 3600,
        ..security()
    };
    on_both_keyed(settings, |clm| async move {
        let system = clm.system_actor();
        let pw = password("lock");
        let bob = user(&clm, "bob", Some(&pw), None).await;
        let admin = user(&clm, "admin", None, None).await;
        let admin_role = clm.get_role_by_code(&system, ROLE_ADMIN).await.unwrap();
        clm.assign_role(&system, admin.id, admin_role.id)
            .await
            .unwrap();
        let admin_actor = clm.actor_for_user(admin.id).await.unwrap();

        for _ in 0..3 {
            assert_code(
                clm.authenticate(&bob.username, password("bad"), None, ctx())
                    .await,
                ErrorCode::Authentication,
            );
        }
        let locked = clm.get_user(&system, bob.id).await.unwrap();
        assert_eq!(locked.status, UserStatus::Locked);
        assert!(locked.locked_until.is_some_and(|t| t > chrono::Utc::now()));
        let audited = events_of_type(&clm, "auth.account_locked", Some(bob.id)).await;
        assert_eq!(audited.len(), 1);

        assert_code(
            clm.authenticate(&bob.username, pw.clone(), None, ctx())
                .await,
            ErrorCode::Authentication,
        );

        let unlocked = clm.unlock_user(&admin_actor, bob.id).await.unwrap();
        assert_eq!(unlocked.status, UserStatus::Active);
        assert_eq!(unlocked.failed_login_attempts, 0);
        clm.authenticate(&bob.username, pw.clone(), None, ctx())
            .await
            .expect("login after unlock");
    })
    .await;
}

#[tokio::test]
async fn lockout_lifts_by_itself() {
    let settings = SecuritySettings {
        max_failed_logins: 3,
        lockout_seconds: 1,
        ..security()
    };
    on_both_keyed(settings, |clm| async move {
        let pw = password("lift");
        let carol = user(&clm, "carol", Some(&pw), None).await;
        for _ in 0..3 {
            assert_code(
                clm.authenticate(&carol.username, password("bad"), None, ctx())
                    .await,
                ErrorCode::Authentication,
            );
        }
        let locked = clm.get_user(&clm.system_actor(), carol.id).await.unwrap();
        assert_eq!(locked.status, UserStatus::Locked);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let outcome = clm
            .authenticate(&carol.username, pw.clone(), None, ctx())
            .await
            .expect("lock expired");
        assert_eq!(outcome.user.status, UserStatus::Active);
        assert_eq!(outcome.user.failed_login_attempts, 0);
        assert!(outcome.user.locked_until.is_none());
    })
    .await;
}

// -------------------------------------------------------------------- 3. MFA

#[tokio::test]
async fn mfa_enrollment_login_and_replay() {
    on_both_keyed(security(), |clm| async move {
        let pw = password("mfa");
        let dave = user(&clm, "dave", Some(&pw), None).await;
        let actor = clm.actor_for_user(dave.id).await.unwrap();
        let enrollment = clm.begin_mfa_enrollment(&actor, pw.clone()).await.unwrap();
        let secret_b32 = enrollment.secret_base32.expose().to_string();
        let raw_secret = base32_decode(&secret_b32);
        assert_eq!(raw_secret.len(), totp::SECRET_LEN);
        assert!(
            enrollment
                .provisioning_uri
                .expose()
                .contains(&format!("secret={secret_b32}"))
        );
        let secret = SecretBytes::from_slice(&raw_secret);

        let step = totp::step_at(unix_now());
        let code = totp::code_for_step(&secret, step).unwrap();
        clm.confirm_mfa_enrollment(&actor, &code)
            .await
            .expect("confirm");
        assert!(clm.get_user(&actor, dave.id).await.unwrap().mfa_enabled);

        // Stored sealed: neither the raw secret nor its base32 form.
        let sealed = {
            let mut pooled = clm.databases().core.acquire().await.unwrap();
            let conn: &mut Conn<'_> = &mut pooled.conn();
            let name = dave.username.clone();
            clm::on_conn!(conn, |c| sqlx::query_scalar::<_, Vec<u8>>(
                "SELECT mfa_secret FROM users WHERE username = $1"
            )
            .bind(name)
            .fetch_one(&mut *c)
            .await)
            .unwrap()
        };
        assert!(sealed.len() >= raw_secret.len());
        assert!(!contains_bytes(&sealed, &raw_secret));
        assert!(!contains_bytes(&sealed, secret_b32.as_bytes()));

        assert_code(
            clm.authenticate(&dave.username, pw.clone(), None, ctx())
                .await,
            ErrorCode::Authentication,
        );
        let window: Vec<String> = (step - 2..=step + 3)
            .map(|s| totp::code_for_step(&secret, s).unwrap())
            .collect();
        let wrong = (0..1000)
            .map(|n| format!("{:06}", n * 7919 % 1_000_000))
            .find(|c| !window.contains(c))
            .unwrap();
        assert_code(
            clm.authenticate(&dave.username, pw.clone(), Some(&wrong), ctx())
                .await,
            ErrorCode::Authentication,
        );
        // The enrollment code's step is used; the next step's code is fresh.
        let next = totp::code_for_step(&secret, step + 1).unwrap();
        clm.authenticate(&dave.username, pw.clone(), Some(&next), ctx())
            .await
            .expect("login with a fresh code");
        assert_code(
            clm.authenticate(&dave.username, pw.clone(), Some(&next), ctx())
                .await,
            ErrorCode::Authentication,
        );
        assert_code(
            clm.authenticate(&dave.username, pw.clone(), Some(&code), ctx())
                .await,
            ErrorCode::Authentication,
        );
    })
    .await;
}

// --------------------------------------------------------------- 4. sessions

#[tokio::test]
async fn sessions_validate_logout_and_revoke() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let pw = password("sess");
        let erin = user(&clm, "erin", Some(&pw), None).await;
        let login = || clm.authenticate(&erin.username, pw.clone(), None, ctx());

        let first = login().await.unwrap();
        let token = first.token.expose().to_string();
        assert!(token.starts_with("clms_"));
        let actor = clm.validate_session(&token).await.unwrap();
        assert_eq!(actor.kind, ActorKind::User(erin.id));
        assert_eq!(actor.session_id, Some(first.session.id));
        clm.logout(&token).await.unwrap();
        assert_code(
            clm.validate_session(&token).await,
            ErrorCode::Authentication,
        );

        let second = login().await.unwrap();
        clm.validate_session(second.token.expose()).await.unwrap();
        clm.revoke_session(&system, second.session.id)
            .await
            .unwrap();
        assert_code(
            clm.validate_session(second.token.expose()).await,
            ErrorCode::Authentication,
        );

        let third = login().await.unwrap();
        let fourth = login().await.unwrap();
        let revoked = clm.revoke_user_sessions(&system, erin.id).await.unwrap();
        assert_eq!(revoked, 2);
        for t in [&third.token, &fourth.token] {
            assert_code(
                clm.validate_session(t.expose()).await,
                ErrorCode::Authentication,
            );
        }

        let mut forged = third.token.expose().to_string();
        forged.replace_range(10..11, if &forged[10..11] == "A" { "B" } else { "A" });
        for garbage in ["", "garbage", "clms_short", forged.as_str()] {
            assert_code(
                clm.validate_session(garbage).await,
                ErrorCode::Authentication,
            );
        }
    })
    .await;
}

#[tokio::test]
async fn idle_session_expires() {
    let settings = SecuritySettings {
        session_idle_seconds: 1,
        session_ttl_seconds: 3600,
        ..security()
    };
    on_both_keyed(settings, |clm| async move {
        let pw = password("idle");
        let frank = user(&clm, "frank", Some(&pw), None).await;
        let login = clm
            .authenticate(&frank.username, pw.clone(), None, ctx())
            .await
            .unwrap();
        clm.validate_session(login.token.expose()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_code(
            clm.validate_session(login.token.expose()).await,
            ErrorCode::Authentication,
        );
    })
    .await;
}

#[tokio::test]
async fn session_ttl_is_absolute_and_purge_removes_expired() {
    let settings = SecuritySettings {
        session_idle_seconds: 3600,
        session_ttl_seconds: 1,
        ..security()
    };
    on_both_keyed(settings, |clm| async move {
        let pw = password("ttl");
        let gina = user(&clm, "gina", Some(&pw), None).await;
        let login = clm
            .authenticate(&gina.username, pw.clone(), None, ctx())
            .await
            .unwrap();
        clm.validate_session(login.token.expose()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Activity does not extend an absolute lifetime.
        clm.validate_session(login.token.expose()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_code(
            clm.validate_session(login.token.expose()).await,
            ErrorCode::Authentication,
        );
        let sql = format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM sessions WHERE session_id = '{}'",
            login.session.session_id
        );
        let count = |clm: Clm| {
            let sql = sql.clone();
            async move { strings(&clm, false, &sql).await[0].clone() }
        };
        assert_eq!(count(clm.clone()).await, "1");
        let purged = clm
            .purge_expired_sessions(&clm.system_actor())
            .await
            .unwrap();
        assert!(purged >= 1);
        assert_eq!(count(clm.clone()).await, "0");
    })
    .await;
}

// ---------------------------------------------------------------- 5. API keys

#[tokio::test]
async fn api_keys_scopes_expiry_revocation_and_storage() {
    on_both_keyed(security(), |clm| async move {
        let org_a = org(&clm, "KEYS").await;
        let hank = user(&clm, "hank", None, Some(org_a.id)).await;
        grant(
            &clm,
            hank.id,
            &[
                ("api_keys", &["create", "read", "revoke"]),
                ("policies", &["read"]),
                ("certificates", &["read"]),
            ],
            None,
        )
        .await;
        let actor = clm.actor_for_user(hank.id).await.unwrap();
        let new_key = |scopes: Option<Permissions>, expires| NewApiKey {
            name: "ci".into(),
            scopes,
            expires_at: expires,
            organization_id: Some(org_a.id),
        };
        let new_key_in = |organization_id| NewApiKey {
            name: "personal".into(),
            organization_id,
            ..Default::default()
        };

        let full = clm
            .create_api_key(&actor, new_key(None, None))
            .await
            .unwrap();
        let key_text = full.key.expose().to_string();
        assert!(key_text.starts_with("clm_"), "{key_text}");

        // A key outside any organization is the user's own: a member of an
        // organization creates one without a global role...
        let personal = clm
            .create_api_key(&actor, new_key_in(None))
            .await
            .expect("a personal API key");
        assert_eq!(personal.api_key.organization_id, None);
        assert_eq!(personal.api_key.user_id, hank.id);
        // ...but not one in an organization they are not a member of,
        let elsewhere = org(&clm, "KEYS-ELSEWHERE").await;
        assert_code(
            clm.create_api_key(&actor, new_key_in(Some(elsewhere.id)))
                .await,
            ErrorCode::PermissionDenied,
        );
        // and not without api_keys:create.
        let ivy = user(&clm, "ivy", None, Some(org_a.id)).await;
        let ivy = clm.actor_for_user(ivy.id).await.unwrap();
        assert_code(
            clm.create_api_key(&ivy, new_key_in(None)).await,
            ErrorCode::PermissionDenied,
        );
        let key_actor = clm.authenticate_api_key(&key_text).await.unwrap();
        assert_eq!(
            key_actor.kind,
            ActorKind::ApiKey {
                api_key_id: full.api_key.id,
                user_id: hank.id
            }
        );
        assert_eq!(key_actor.user_id(), Some(hank.id));
        assert!(key_actor.can("certificates", "read"));

        assert_code(
            clm.create_api_key(
                &actor,
                new_key(
                    Some(Permissions::from_pairs(&[("users", &["delete"])])),
                    None,
                ),
            )
            .await,
            ErrorCode::PermissionDenied,
        );

        let scoped = clm
            .create_api_key(
                &actor,
                new_key(
                    Some(Permissions::from_pairs(&[("policies", &["read"])])),
                    None,
                ),
            )
            .await
            .unwrap();
        let scoped_actor = clm.authenticate_api_key(scoped.key.expose()).await.unwrap();
        assert!(scoped_actor.can("policies", "read"));
        assert!(!scoped_actor.can("certificates", "read"));
        assert!(!scoped_actor.can("api_keys", "create"));
        assert_code(
            clm.create_api_key(&scoped_actor, new_key(None, None)).await,
            ErrorCode::PermissionDenied,
        );

        let expiring = clm
            .create_api_key(
                &actor,
                new_key(
                    None,
                    Some(chrono::Utc::now() + chrono::Duration::seconds(1)),
                ),
            )
            .await
            .unwrap();
        clm.authenticate_api_key(expiring.key.expose())
            .await
            .expect("not yet expired");
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_code(
            clm.authenticate_api_key(expiring.key.expose()).await,
            ErrorCode::Authentication,
        );

        // Anyone else needs api_keys:revoke; the key's own user needs no
        // permission, so a leaked key can always be stopped (here through
        // another key of the same user that may only read policies).
        assert_code(
            clm.revoke_api_key(&ivy, personal.api_key.id).await,
            ErrorCode::PermissionDenied,
        );
        assert!(!scoped_actor.can("api_keys", "revoke"));
        clm.revoke_api_key(&scoped_actor, personal.api_key.id)
            .await
            .expect("a user revokes their own key without api_keys:revoke");
        assert_code(
            clm.authenticate_api_key(personal.key.expose()).await,
            ErrorCode::Authentication,
        );
        assert_code(
            clm.revoke_api_key(&actor, personal.api_key.id).await,
            ErrorCode::Conflict,
        );

        clm.revoke_api_key(&actor, scoped.api_key.id).await.unwrap();
        assert_code(
            clm.authenticate_api_key(scoped.key.expose()).await,
            ErrorCode::Authentication,
        );

        // Only the hash is stored.
        let rows = dump_table(&clm, false, "api_keys").await;
        assert_eq!(rows.len(), 4, "full, personal, scoped and expiring keys");
        let secret_part = &key_text[key_text.rfind('_').unwrap() + 1..];
        for row in &rows {
            assert!(!row.contains(&key_text), "key text stored: {row}");
            assert!(!row.contains(secret_part), "key secret stored: {row}");
        }
        let hash = clm::crypto::token::sha256_hex(key_text.as_bytes());
        assert!(rows.iter().any(|r| r.contains(&hash)), "key_hash stored");

        // One changed character is refused as malformed before any lookup:
        // even a closed handle answers it.
        let mut tampered = key_text.clone();
        let at = tampered.len() - 10;
        let replacement = if &tampered[at..=at] == "x" { "y" } else { "x" };
        tampered.replace_range(at..=at, replacement);
        clm.close().await;
        let err = assert_code(
            clm.authenticate_api_key(&tampered).await,
            ErrorCode::Authentication,
        );
        assert!(err.to_string().contains("malformed"), "{err}");
        assert_code(clm.authenticate_api_key(&key_text).await, ErrorCode::Closed);
    })
    .await;
}

// -------------------------------------------------------------------- 6. RBAC

#[tokio::test]
async fn rbac_grants_revocations_and_denials() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "RBAC").await;
        let ivan = user(&clm, "ivan", None, Some(org_a.id)).await;
        let actor = clm.actor_for_user(ivan.id).await.unwrap();

        let denied = assert_code(
            clm.create_policy(&actor, policy("P", Some(org_a.id))).await,
            ErrorCode::PermissionDenied,
        );
        let message = denied.to_string();
        assert!(
            message.contains("policies") && message.contains("create"),
            "{message}"
        );
        let audited = events(
            &clm,
            AuditLogKind::Core,
            AuditFilter {
                user_id: Some(ivan.id),
                event_type: Some("policies.create".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(audited.len(), 1);
        assert_eq!(audited[0].outcome, AuditOutcome::Denied);

        let role = grant(
            &clm,
            ivan.id,
            &[("policies", &["create", "read"])],
            Some(org_a.id),
        )
        .await;
        assert_code(
            clm.assign_role(&system, ivan.id, role.id).await,
            ErrorCode::AlreadyExists,
        );
        // The old actor snapshot is not upgraded; a fresh one is.
        assert_code(
            clm.create_policy(&actor, policy("P", Some(org_a.id))).await,
            ErrorCode::PermissionDenied,
        );
        let actor = clm.actor_for_user(ivan.id).await.unwrap();
        let created = clm
            .create_policy(&actor, policy("P", Some(org_a.id)))
            .await
            .expect("allowed after grant");
        assert_eq!(created.created_by_user_id, Some(ivan.id));

        clm.revoke_role(&system, ivan.id, role.id).await.unwrap();
        let actor = clm.actor_for_user(ivan.id).await.unwrap();
        assert_code(
            clm.create_policy(&actor, policy("P", Some(org_a.id))).await,
            ErrorCode::PermissionDenied,
        );

        // Nobody grants what they do not hold.
        grant(
            &clm,
            ivan.id,
            &[("roles", &["create", "read"]), ("policies", &["read"])],
            Some(org_a.id),
        )
        .await;
        let actor = clm.actor_for_user(ivan.id).await.unwrap();
        let wider = NewRole {
            role_code: unique("WIDER"),
            role_name: "Wider".into(),
            description: None,
            permissions: Permissions::from_pairs(&[("users", &["delete"])]),
            organization_id: Some(org_a.id),
        };
        assert_code(
            clm.create_role(&actor, wider).await,
            ErrorCode::PermissionDenied,
        );
        let narrower = NewRole {
            role_code: unique("NARROW"),
            role_name: "Narrow".into(),
            description: None,
            permissions: Permissions::from_pairs(&[("policies", &["read"])]),
            organization_id: Some(org_a.id),
        };
        clm.create_role(&actor, narrower)
            .await
            .expect("a subset is allowed");
    })
    .await;
}

// ----------------------------------------------------------------- 7. tenancy

#[tokio::test]
async fn tenants_never_see_or_change_each_other() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let org_a = org(&clm, "TEN-A").await;
        let org_b = org(&clm, "TEN-B").await;
        let a_admin = user(&clm, "aadmin", None, Some(org_a.id)).await;
        let a_member = user(&clm, "amember", None, Some(org_a.id)).await;
        let b_user = user(&clm, "buser", None, Some(org_b.id)).await;
        grant(
            &clm,
            a_admin.id,
            &[
                ("users", &["create", "read", "update", "delete"]),
                ("policies", &["create", "read", "update", "delete"]),
                ("roles", &["create", "read", "assign"]),
                ("organizations", &["read"]),
                ("audit", &["read"]),
            ],
            Some(org_a.id),
        )
        .await;
        let pa = clm
            .create_policy(&system, policy("PA", Some(org_a.id)))
            .await
            .unwrap();
        let pb = clm
            .create_policy(&system, policy("PB", Some(org_b.id)))
            .await
            .unwrap();
        let rb = clm
            .create_role(
                &system,
                NewRole {
                    role_code: unique("RB"),
                    role_name: "B role".into(),
                    description: None,
                    permissions: Permissions::from_pairs(&[("policies", &["read"])]),
                    organization_id: Some(org_b.id),
                },
            )
            .await
            .unwrap();
        let actor: Actor = clm.actor_for_user(a_admin.id).await.unwrap();
        assert!(!actor.is_global());

        // Users.
        clm.get_user(&actor, a_member.id)
            .await
            .expect("own org user");
        assert_code(clm.get_user(&actor, b_user.id).await, ErrorCode::NotFound);
        let users = clm
            .list_users(&actor, &UserFilter::default(), &page())
            .await
            .unwrap()
            .items;
        assert!(users.iter().any(|u| u.id == a_member.id));
        assert!(users.iter().all(|u| u.id != b_user.id));
        let asked_b = clm
            .list_users(
                &actor,
                &UserFilter {
                    organization_ids: Some(vec![org_b.id]),
                    ..Default::default()
                },
                &page(),
            )
            .await
            .unwrap()
            .items;
        assert!(asked_b.iter().all(|u| u.id != b_user.id));

        // Policies.
        clm.get_policy(&actor, pa.id).await.expect("own org policy");
        assert_code(clm.get_policy(&actor, pb.id).await, ErrorCode::NotFound);
        assert_code(
            clm.get_policy_by_code(&actor, &pb.policy_code).await,
            ErrorCode::NotFound,
        );
        let policies = clm
            .list_policies(&actor, &PolicyFilter::default(), &page())
            .await
            .unwrap()
            .items;
        assert!(policies.iter().any(|p| p.id == pa.id));
        assert!(policies.iter().all(|p| p.id != pb.id));
        let asked_b = clm
            .list_policies(
                &actor,
                &PolicyFilter {
                    organization_ids: Some(vec![org_b.id]),
                    ..Default::default()
                },
                &page(),
            )
            .await
            .unwrap()
            .items;
        assert!(asked_b.iter().all(|p| p.id != pb.id));

        // Roles.
        assert_code(clm.get_role(&actor, rb.id).await, ErrorCode::NotFound);
        let roles = clm.list_roles(&actor, &page()).await.unwrap().items;
        assert!(roles.iter().all(|r| r.id != rb.id));
        assert!(roles.iter().all(|r| r.organization_id != Some(org_b.id)));

        // Organizations.
        clm.get_organization(&actor, org_a.id)
            .await
            .expect("own org");
        assert_code(
            clm.get_organization(&actor, org_b.id).await,
            ErrorCode::NotFound,
        );
        let orgs = clm.list_organizations(&actor, &page()).await.unwrap().items;
        assert!(orgs.iter().any(|o| o.id == org_a.id));
        assert!(orgs.iter().all(|o| o.id != org_b.id));

        // Changes to B fail and change nothing.
        assert_code(
            clm.update_policy(
                &actor,
                pb.id,
                PolicyUpdate {
                    name: Some("hijacked".into()),
                    status: Some(PolicyStatus::Inactive),
                    ..Default::default()
                },
            )
            .await,
            ErrorCode::NotFound,
        );
        assert_code(clm.delete_policy(&actor, pb.id).await, ErrorCode::NotFound);
        let pb_now = clm.get_policy(&system, pb.id).await.expect("pb survives");
        assert_eq!(pb_now.name, pb.name);
        assert_eq!(pb_now.status, pb.status);
        assert_eq!(pb_now.version, pb.version);

        assert_code(
            clm.update_user(
                &actor,
                b_user.id,
                UserUpdate {
                    email: Some(format!("{}@evil.example", unique("x"))),
                    status: Some(UserStatus::Suspended),
                    ..Default::default()
                },
            )
            .await,
            ErrorCode::NotFound,
        );
        assert_code(
            clm.delete_user(&actor, b_user.id).await,
            ErrorCode::NotFound,
        );
        let b_now = clm.get_user(&system, b_user.id).await.expect("b survives");
        assert_eq!(b_now.email, b_user.email);
        assert_eq!(b_now.status, UserStatus::Active);
        assert!(b_now.deleted_at.is_none());

        // Positive control: A's own rows can be changed.
        let renamed = clm
            .update_policy(
                &actor,
                pa.id,
                PolicyUpdate {
                    name: Some("renamed".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(renamed.name, "renamed");

        // Audit: nothing of B on either log.
        for kind in [AuditLogKind::Core, AuditLogKind::Secure] {
            let seen = clm
                .list_audit_events(&actor, kind, &AuditFilter::default(), &page())
                .await
                .unwrap()
                .items;
            for e in &seen {
                assert_ne!(e.organization_id, Some(org_b.id), "{kind:?}: {e:?}");
                let rid = e.resource_id.map(|r| r.0);
                assert!(
                    rid != Some(pb.id.into())
                        && rid != Some(b_user.id.into())
                        && rid != Some(rb.id.into()),
                    "{kind:?}: B's resource visible: {e:?}"
                );
            }
            let asked_b = clm
                .list_audit_events(
                    &actor,
                    kind,
                    &AuditFilter {
                        organization_ids: Some(vec![org_b.id]),
                        ..Default::default()
                    },
                    &page(),
                )
                .await
                .unwrap()
                .items;
            assert!(
                asked_b.iter().all(|e| e.organization_id != Some(org_b.id)),
                "{kind:?}"
            );
        }
        let core_seen = clm
            .list_audit_events(&actor, AuditLogKind::Core, &AuditFilter::default(), &page())
            .await
            .unwrap()
            .items;
        assert!(
            core_seen
                .iter()
                .any(|e| e.organization_id == Some(org_a.id)),
            "A's own events are visible"
        );
    })
    .await;
}

// ------------------------------------------------------------- 8. audit chain

/// A denial found inside a write transaction already holds one connection
/// (and on SQLite the write lock) while its audit row needs another. With a
/// pool of two, a row that waited for either would deadlock until the pool
/// timed out; every refusal must come back as NotFound, and every row land.
#[tokio::test]
async fn denials_inside_writes_never_exhaust_a_small_pool() {
    on_both_configs(|config| async move {
        let clm = Clm::open(
            config
                .with_master_key(common::test_master_key())
                .with_security(security())
                .with_max_connections(2),
        )
        .await
        .expect("open with two connections");
        let org_a = org(&clm, "POOL-A").await;
        let org_b = org(&clm, "POOL-B").await;
        let admin = user(&clm, "pooladmin", None, Some(org_a.id)).await;
        let outsider = user(&clm, "pooloutsider", None, Some(org_b.id)).await;
        grant(
            &clm,
            admin.id,
            &[("users", &["read", "update"])],
            Some(org_a.id),
        )
        .await;
        let actor = clm.actor_for_user(admin.id).await.expect("actor");
        let attempt = || {
            clm.update_user(
                &actor,
                outsider.id,
                UserUpdate {
                    status: Some(UserStatus::Suspended),
                    ..Default::default()
                },
            )
        };

        for _ in 0..6 {
            assert_code(attempt().await, ErrorCode::NotFound);
        }
        let concurrent = futures::future::join_all((0..6).map(|_| attempt())).await;
        for result in concurrent {
            assert_code(result, ErrorCode::NotFound);
        }

        let denied = events_of_type(&clm, "users.update", Some(admin.id)).await;
        assert_eq!(denied.len(), 12, "one denial row per refused attempt");
        for event in &denied {
            assert_eq!(event.outcome, AuditOutcome::Denied);
        }
        let outsider_now = clm
            .get_user(&clm.system_actor(), outsider.id)
            .await
            .expect("outsider survives");
        assert_eq!(outsider_now.status, UserStatus::Active);
        assert!(verify(&clm, AuditLogKind::Core).await.is_intact());
        clm.close().await;
    })
    .await;
}

async fn some_actions(clm: &Clm) {
    let system = clm.system_actor();
    let o = org(clm, "AUD").await;
    let u = user(clm, "aud", None, Some(o.id)).await;
    let p = clm
        .create_policy(&system, policy("AUD", Some(o.id)))
        .await
        .unwrap();
    clm.update_policy(
        &system,
        p.id,
        PolicyUpdate {
            name: Some("changed".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    clm.update_user(
        &system,
        u.id,
        UserUpdate {
            display_name: Some("Changed".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

async fn break_append_only(clm: &Clm, sql: &str) {
    let statements = match clm.databases().dialect() {
        Dialect::Postgres => vec![
            "ALTER TABLE audit_log DISABLE TRIGGER USER".to_string(),
            sql.to_string(),
            "ALTER TABLE audit_log ENABLE TRIGGER USER".to_string(),
        ],
        Dialect::Sqlite => vec![
            "DROP TRIGGER IF EXISTS trg_audit_log_append_only".to_string(),
            "DROP TRIGGER IF EXISTS trg_audit_log_append_only_delete".to_string(),
            sql.to_string(),
        ],
    };
    execute(clm, false, &statements).await;
}

#[tokio::test]
async fn audit_chain_detects_an_altered_row() {
    on_both_keyed(security(), |clm| async move {
        some_actions(&clm).await;
        let core = verify(&clm, AuditLogKind::Core).await;
        assert!(core.is_intact(), "{core:?}");
        assert!(core.rows_checked >= 10, "{core:?}");
        let secure = verify(&clm, AuditLogKind::Secure).await;
        assert!(secure.is_intact(), "{secure:?}");

        break_append_only(
            &clm,
            "UPDATE audit_log SET details = '{\"tampered\":true}' WHERE sequence_number = 7",
        )
        .await;
        let report = verify(&clm, AuditLogKind::Core).await;
        let broken = report.broken.expect("tampering detected");
        assert_eq!(broken.sequence_number, 7, "{}", broken.reason);
    })
    .await;
}

#[tokio::test]
async fn audit_chain_detects_a_deleted_row() {
    on_both_keyed(security(), |clm| async move {
        some_actions(&clm).await;
        assert!(verify(&clm, AuditLogKind::Core).await.is_intact());
        break_append_only(&clm, "DELETE FROM audit_log WHERE sequence_number = 6").await;
        let report = verify(&clm, AuditLogKind::Core).await;
        let broken = report.broken.expect("deletion detected");
        assert_eq!(broken.sequence_number, 7, "{}", broken.reason);
    })
    .await;
}

#[tokio::test]
async fn archiving_keeps_the_chain_verifiable() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        some_actions(&clm).await;
        let before = verify(&clm, AuditLogKind::Core).await;
        assert!(before.is_intact());
        let rows = strings(&clm, false, "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log").await[0]
            .parse::<u64>()
            .unwrap();
        assert_eq!(rows, before.rows_checked);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("core-archive.jsonl");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let report = clm
            .archive_audit_events(&system, AuditLogKind::Core, 0, &file)
            .await
            .unwrap();
        assert_eq!(report.archived, rows);
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, rows);
        for (i, line) in lines.iter().enumerate() {
            let event: AuditEvent = serde_json::from_str(line).expect("JSON line");
            assert_eq!(event.sequence_number, i as i64 + 1);
        }
        let left = strings(&clm, false, "SELECT CAST(COUNT(*) AS TEXT) FROM audit_log").await;
        assert_eq!(left[0], "1", "only the archive record remains");

        let after = verify(&clm, AuditLogKind::Core).await;
        assert!(after.is_intact(), "{after:?}");
        some_actions(&clm).await;
        let later = verify(&clm, AuditLogKind::Core).await;
        assert!(later.is_intact(), "{later:?}");
        assert!(later.rows_checked > 1);

        let secure_file = dir.path().join("secure-archive.jsonl");
        let secure = clm
            .archive_audit_events(&system, AuditLogKind::Secure, 0, &secure_file)
            .await
            .unwrap();
        let secure_lines = std::fs::read_to_string(&secure_file)
            .map(|t| t.lines().count() as u64)
            .unwrap_or(0);
        assert_eq!(secure_lines, secure.archived);
        assert!(verify(&clm, AuditLogKind::Secure).await.is_intact());
    })
    .await;
}

// ----------------------------------------------------------------- 9. secrets

#[tokio::test]
async fn secrets_never_leak_into_debug_errors_or_audit() {
    on_both_keyed(security(), |clm| async move {
        let pw = password("secret");
        let pw_text = pw.expose().to_string();
        let org_a = org(&clm, "SEC").await;
        let judy = user(&clm, "judy", Some(&pw), Some(org_a.id)).await;
        grant(&clm, judy.id, &[("api_keys", &["create", "read"])], None).await;

        let user_debug = format!("{judy:?}");
        assert!(!user_debug.contains(&pw_text), "{user_debug}");
        assert!(!user_debug.contains("$argon2"), "{user_debug}");

        let login = clm
            .authenticate(&judy.username, pw.clone(), None, ctx())
            .await
            .unwrap();
        let token = login.token.expose().to_string();
        let login_debug = format!("{login:?}");
        assert!(!login_debug.contains(&token), "{login_debug}");
        assert!(!login_debug.contains(&pw_text));
        assert!(!login_debug.contains("$argon2"), "{login_debug}");
        let token_hash = clm::crypto::token::sha256_hex(token.as_bytes());
        assert!(!login_debug.contains(&token_hash), "{login_debug}");

        let actor = clm.validate_session(&token).await.unwrap();
        let created = clm
            .create_api_key(
                &actor,
                NewApiKey {
                    name: "secret-test".into(),
                    organization_id: Some(org_a.id),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let key_text = created.key.expose().to_string();
        let created_debug = format!("{created:?}");
        assert!(!created_debug.contains(&key_text), "{created_debug}");
        assert!(
            !created_debug.contains(&created.api_key.key_hash.0),
            "{created_debug}"
        );

        let enrollment = clm.begin_mfa_enrollment(&actor, pw.clone()).await.unwrap();
        let enrollment_debug = format!("{enrollment:?}");
        assert!(!enrollment_debug.contains(enrollment.secret_base32.expose()));
        assert!(!enrollment_debug.contains("otpauth"), "{enrollment_debug}");

        let config_debug = format!(
            "{:?}",
            ClmConfig::sqlite("/tmp/x").with_master_key(common::test_master_key())
        );
        let clm::MasterKeySource::Base64(master_text) = common::test_master_key() else {
            unreachable!()
        };
        assert!(!config_debug.contains(&master_text), "{config_debug}");
        assert!(!format!("{clm:?}").contains(&master_text));

        let wrong_pw = "Wr0ng-but-l0ng-passw0rd";
        let err = clm
            .authenticate(&judy.username, SecretString::from(wrong_pw), None, ctx())
            .await
            .unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(wrong_pw), "{text}");
            assert!(!text.contains(&pw_text), "{text}");
        }
        let err = clm
            .authenticate(&unique("ghost"), pw.clone(), None, ctx())
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(&pw_text));

        let secret_part = &key_text[key_text.rfind('_').unwrap() + 1..];
        let rows = audit_details(&clm).await;
        assert!(rows.len() > 5);
        for row in &rows {
            for needle in [
                pw_text.as_str(),
                wrong_pw,
                token.as_str(),
                token_hash.as_str(),
                key_text.as_str(),
                secret_part,
                enrollment.secret_base32.expose(),
            ] {
                assert!(!row.contains(needle), "audit row leaks a secret: {row}");
            }
        }
    })
    .await;
}

// --------------------------------------------------------- 10. master key

#[tokio::test]
async fn wrong_master_key_is_refused_at_open() {
    on_both_configs(|config| async move {
        let first = Clm::open(config.clone().with_master_key(common::master_key(1)))
            .await
            .expect("open with K1");
        first.close().await;
        let err = Clm::open(config.clone().with_master_key(common::master_key(2)))
            .await
            .expect_err("K2 must be refused");
        assert_eq!(err.code(), ErrorCode::Configuration, "{err}");
        assert!(err.to_string().contains("master key"), "{err}");
        let again = Clm::open(config.with_master_key(common::master_key(1)))
            .await
            .expect("K1 still opens");
        again.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_auditor_verifies_the_trails_but_cannot_archive_them() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let auditor = user(&clm, "auditor", None, None).await;
        let role = clm
            .get_role_by_code(&system, clm::service::access::ROLE_AUDITOR)
            .await
            .expect("the built-in AUDITOR role");
        clm.assign_role(&system, auditor.id, role.id)
            .await
            .expect("assign AUDITOR");
        let actor = clm.actor_for_user(auditor.id).await.expect("auditor actor");
        for kind in [AuditLogKind::Core, AuditLogKind::Secure] {
            let report = clm
                .verify_audit_chain(&actor, kind)
                .await
                .expect("an auditor verifies a trail");
            assert!(report.is_intact(), "{report:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        assert_code(
            clm.archive_audit_events(&actor, AuditLogKind::Core, 0, &dir.path().join("a.jsonl"))
                .await,
            ErrorCode::PermissionDenied,
        );
    })
    .await;
}
