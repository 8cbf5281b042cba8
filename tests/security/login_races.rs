//! Attacks: login_races (see main.rs). Finding 13 of issue 11 (lockout and
//! TOTP replay decided on a row read before the write; the success path
//! rewriting the whole user row) and two items of finding 16 (LIKE escapes
//! of the user search; login by username or e-mail being ambiguous).

use std::time::Duration;

use clm::crypto::{SecretBytes, SecretString, totp};
use clm::model::{AuditEvent, User, UserId, UserStatus};
use clm::service::identity::{LoginContext, NewUser, UserUpdate};
use clm::store::PageRequest;
use clm::store::audit::{AuditFilter, AuditLogKind};
use clm::store::users::UserFilter;
use clm::{Clm, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, unique};

fn security() -> SecuritySettings {
    SecuritySettings {
        max_failed_logins: 3,
        lockout_seconds: 3600,
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

fn password(tag: &str) -> SecretString {
    SecretString::new(format!("Tr0ub4dor-{tag}-horse-staple"))
}

fn ctx() -> LoginContext {
    LoginContext {
        ip_address: Some("192.0.2.13".into()),
        user_agent: Some("login-races".into()),
    }
}

async fn new_user(clm: &Clm, username: &str, email: &str, pw: &SecretString) -> User {
    clm.create_user(
        &clm.system_actor(),
        NewUser {
            username: username.to_string(),
            email: email.to_string(),
            display_name: None,
            password: Some(pw.clone()),
            organization_id: None,
        },
    )
    .await
    .expect("create user")
}

async fn user_named(clm: &Clm, prefix: &str, pw: &SecretString) -> User {
    let name = unique(prefix);
    new_user(clm, &name, &format!("{name}@example.com"), pw).await
}

async fn events_of(clm: &Clm, event_type: &str, user: UserId) -> Vec<AuditEvent> {
    clm.list_audit_events(
        &clm.system_actor(),
        AuditLogKind::Core,
        &AuditFilter {
            event_type: Some(event_type.into()),
            user_id: Some(user),
            ..Default::default()
        },
        &PageRequest::first(500),
    )
    .await
    .expect("audit events")
    .items
}

async fn stored(clm: &Clm, id: UserId) -> User {
    clm.get_user(&clm.system_actor(), id).await.expect("user")
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

/// Ten wrong passwords at once against max_failed_logins = 3. Before the
/// fix every one of them read the row as active and unlocked, so each was
/// verified and counted (ten counted failures, several lock events). Now a
/// failure counts only while the account is unlocked, in the UPDATE that
/// also locks it: exactly three count, one locks, and the right password
/// right after is refused.
#[tokio::test]
async fn login_races_parallel_wrong_passwords_count_at_most_the_threshold() {
    on_both_keyed(security(), |clm| async move {
        let pw = password("lockout");
        let victim = user_named(&clm, "victim", &pw).await;
        let guesses = (0..10).map(|n| {
            let clm = clm.clone();
            let login = victim.username.clone();
            async move {
                clm.authenticate(&login, password(&format!("guess{n}")), None, ctx())
                    .await
            }
        });
        for outcome in futures::future::join_all(guesses).await {
            assert_eq!(
                outcome.map(|o| o.user.id).map_err(|e| e.code()),
                Err(ErrorCode::Authentication)
            );
        }
        let after = stored(&clm, victim.id).await;
        assert_eq!(after.status, UserStatus::Locked);
        assert!(after.locked_until.is_some());
        let counted: Vec<i64> = events_of(&clm, "auth.login_failed", victim.id)
            .await
            .iter()
            .filter_map(|e| e.details.0.get("consecutive_failures"))
            .filter_map(serde_json::Value::as_i64)
            .collect();
        assert!(
            counted.len() <= 3 && counted.iter().all(|n| *n <= 3),
            "more counted failures than the threshold allows: {counted:?}"
        );
        assert_eq!(counted.len(), 3, "the three counted failures: {counted:?}");
        assert_eq!(
            events_of(&clm, "auth.account_locked", victim.id)
                .await
                .len(),
            1,
            "the account locks once"
        );
        assert_eq!(
            clm.authenticate(&victim.username, pw.clone(), None, ctx())
                .await
                .map(|o| o.user.id)
                .map_err(|e| e.code()),
            Err(ErrorCode::Authentication),
            "the right password right after the lock must be refused"
        );
    })
    .await;
}

/// One TOTP code, two logins at once. Before the fix both read the last
/// used step before either wrote it, and both got a session. Now the step
/// is claimed by a conditional UPDATE: exactly one session.
#[tokio::test]
async fn login_races_one_totp_code_opens_one_session() {
    on_both_keyed(security(), |clm| async move {
        let pw = password("totp");
        let user = user_named(&clm, "totp", &pw).await;
        let first = clm
            .authenticate(&user.username, pw.clone(), None, ctx())
            .await
            .expect("login before MFA");
        let actor = clm
            .validate_session(first.token.expose())
            .await
            .expect("session actor");
        let enrollment = clm
            .begin_mfa_enrollment(&actor, pw.clone())
            .await
            .expect("enroll");
        let secret = SecretBytes::from_slice(&base32_decode(enrollment.secret_base32.expose()));
        let step = totp::step_at(chrono::Utc::now().timestamp());
        let enrol_code = totp::code_for_step(&secret, step).expect("code");
        clm.confirm_mfa_enrollment(&actor, &enrol_code)
            .await
            .expect("confirm");
        // The next step's code is fresh (one step of drift is accepted).
        let code = totp::code_for_step(&secret, step + 1).expect("code");
        let (one, two) = tokio::join!(
            clm.authenticate(&user.username, pw.clone(), Some(&code), ctx()),
            clm.authenticate(&user.username, pw.clone(), Some(&code), ctx()),
        );
        let sessions = [one, two]
            .into_iter()
            .filter_map(|outcome| outcome.ok().map(|o| o.session.id))
            .count();
        assert_eq!(sessions, 1, "one TOTP code opened {sessions} sessions");
        let stored = stored(&clm, user.id).await;
        assert_eq!(stored.mfa_last_used_step, Some(step + 1));
    })
    .await;
}

/// An administrator disables a user while the user's login is verifying
/// the password. Before the fix the login wrote its stale copy of the row
/// back (status active): the disable was undone. Now the login writes only
/// its own columns, and only while the account is still active. Whatever
/// the order, the user ends disabled.
#[tokio::test]
async fn login_races_disable_during_login_stays_disabled() {
    on_both_keyed(security(), |clm| async move {
        let pw = password("disable");
        for round in 0..6 {
            let user = user_named(&clm, &format!("disable{round}"), &pw).await;
            let login = clm.authenticate(&user.username, pw.clone(), None, ctx());
            let disable = async {
                // Let the login read the row first; it then spends tens of
                // milliseconds on the password hash.
                tokio::time::sleep(Duration::from_millis(5)).await;
                clm.update_user(
                    &clm.system_actor(),
                    user.id,
                    UserUpdate {
                        status: Some(UserStatus::Inactive),
                        ..Default::default()
                    },
                )
                .await
            };
            let (_login, disabled) = tokio::join!(login, disable);
            disabled.expect("disable");
            assert_eq!(
                stored(&clm, user.id).await.status,
                UserStatus::Inactive,
                "round {round}: a login in flight re-activated a disabled user"
            );
            assert_eq!(
                clm.authenticate(&user.username, pw.clone(), None, ctx())
                    .await
                    .map(|o| o.user.id)
                    .map_err(|e| e.code()),
                Err(ErrorCode::Authentication)
            );
        }
    })
    .await;
}

/// X takes Y's e-mail address as username (created first, so the old
/// `username = $1 OR email = $2 LIMIT 1` found X). Y's login by e-mail must
/// reach Y and only Y: X's password does not open it, Y's failures do not
/// count against X, and X still logs in by its own e-mail.
#[tokio::test]
async fn login_races_username_equal_to_anothers_email_cannot_capture_login() {
    on_both_keyed(security(), |clm| async move {
        let (pw_x, pw_y) = (password("x"), password("y"));
        let y_name = unique("yvonne");
        let y_email = format!("{y_name}@example.com");
        let x_email = format!("{}@example.com", unique("xavier"));
        let x = new_user(&clm, &y_email, &x_email, &pw_x).await;
        let y = new_user(&clm, &y_name, &y_email, &pw_y).await;

        let as_y = clm
            .authenticate(&y_email, pw_y.clone(), None, ctx())
            .await
            .expect("Y logs in by e-mail");
        assert_eq!(as_y.user.id, y.id);
        assert_eq!(
            clm.authenticate(&y_email, pw_x.clone(), None, ctx())
                .await
                .map(|o| o.user.id)
                .map_err(|e| e.code()),
            Err(ErrorCode::Authentication),
            "X's password opened the login that is Y's e-mail"
        );
        assert_eq!(
            stored(&clm, x.id).await.failed_login_attempts,
            0,
            "a failure on Y's e-mail counted against X"
        );
        assert_eq!(stored(&clm, y.id).await.failed_login_attempts, 1);
        let as_x = clm
            .authenticate(&x_email, pw_x.clone(), None, ctx())
            .await
            .expect("X logs in by its own e-mail");
        assert_eq!(as_x.user.id, x.id);
        let by_name = clm
            .authenticate(&y_name, pw_y.clone(), None, ctx())
            .await
            .expect("Y logs in by username");
        assert_eq!(by_name.user.id, y.id);
    })
    .await;
}

/// The user search escapes LIKE's metacharacters, the backslash too.
/// Before the fix `\` was not escaped, so it escaped the next character
/// instead: searching `a\xb` matched `axb`.
#[tokio::test]
async fn login_races_user_search_matches_backslash_percent_and_underscore_literally() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let tag = unique("lk").replace('-', "");
        let mut made = Vec::new();
        for suffix in ["a_b", "axb", "a.b"] {
            let name = format!("{tag}{suffix}");
            let user = clm
                .create_user(
                    &system,
                    NewUser {
                        username: name.clone(),
                        email: format!("{}@example.com", unique("lkmail")),
                        display_name: None,
                        password: None,
                        organization_id: None,
                    },
                )
                .await
                .expect("user");
            made.push(user.username);
        }
        let search = |needle: String| {
            let clm = clm.clone();
            async move {
                let mut names: Vec<String> = clm
                    .list_users(
                        &clm.system_actor(),
                        &UserFilter {
                            search: Some(needle),
                            ..Default::default()
                        },
                        &PageRequest::first(100),
                    )
                    .await
                    .expect("search users")
                    .items
                    .into_iter()
                    .map(|u| u.username)
                    .collect();
                names.sort();
                names
            }
        };
        assert_eq!(search(format!("{tag}a_b")).await, vec![made[0].clone()]);
        assert_eq!(search(format!("{tag}a%b")).await, Vec::<String>::new());
        assert_eq!(
            search(format!("{tag}a\\xb")).await,
            Vec::<String>::new(),
            "a backslash in the search escaped the next character"
        );
        assert_eq!(search(format!("{tag}a\\")).await, Vec::<String>::new());
        assert_eq!(search(tag.clone()).await.len(), 3);
    })
    .await;
}
