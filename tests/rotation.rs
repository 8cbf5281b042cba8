//! Key rotation through the public API, on both backends: MFA logins across a
//! data-key rotation, key status without key material, permissions, and a
//! master-key rotation that changes which master key opens the databases.
//! Re-sealing of private keys is covered by the unit tests in
//! `src/service/rotation.rs`, which seal keys the way issuance does.

mod common;

use clm::crypto::{SecretBytes, SecretString, totp};
use clm::db::Conn;
use clm::model::{KeyStatus, Permissions, RotationStatus, RotationType};
use clm::service::identity::{LoginContext, NewUser};
use clm::service::rotation::RotationOptions;
use clm::store::PageRequest;
use clm::{Actor, ActorKind, Clm, ErrorCode, SecuritySettings};
use common::{master_key, on_both_configs, on_both_keyed, unique};

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 4,
        ..SecuritySettings::default()
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A user with a password and confirmed MFA; returns its name, password and
/// TOTP secret, and the last step used.
async fn mfa_user(clm: &Clm) -> (String, SecretString, SecretBytes, i64) {
    let name = unique("rot");
    let password = SecretString::new("Tr0ub4dor-battery-horse-staple".to_string());
    let user = clm
        .create_user(
            &clm.system_actor(),
            NewUser {
                username: name.clone(),
                email: format!("{name}@example.com"),
                password: Some(password.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("create user");
    let actor = clm.actor_for_user(user.id).await.expect("actor");
    let enrollment = clm
        .begin_mfa_enrollment(&actor, password.clone())
        .await
        .expect("enroll");
    let secret = SecretBytes::from_slice(&base32_decode(enrollment.secret_base32.expose()));
    let step = totp::step_at(unix_now());
    let code = totp::code_for_step(&secret, step).expect("code");
    clm.confirm_mfa_enrollment(&actor, &code)
        .await
        .expect("confirm");
    (name, password, secret, step)
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for ch in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|a| *a == ch).expect("base32") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

async fn wrapped_keys(clm: &Clm) -> Vec<Vec<u8>> {
    let mut pooled = clm.databases().secure.acquire().await.expect("conn");
    let conn: &mut Conn<'_> = &mut pooled.conn();
    clm::on_conn!(conn, |c| sqlx::query_scalar::<_, Vec<u8>>(
        "SELECT wrapped_key FROM encryption_keys"
    )
    .fetch_all(&mut *c)
    .await)
    .expect("wrapped keys")
}

#[tokio::test]
async fn mfa_login_works_across_a_data_key_rotation() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let (name, password, secret, step) = mfa_user(&clm).await;
        let report = clm
            .rotate_data_key(&system, RotationOptions::default())
            .await
            .expect("rotate");
        assert_eq!(report.status, RotationStatus::Completed);
        assert_eq!(report.mfa_secrets_resealed, 1);
        let (old, new) = (
            report.old_key_id.expect("old"),
            report.new_key_id.expect("new"),
        );

        let statuses = clm.key_status(&system).await.expect("key status");
        let old_status = statuses.iter().find(|s| s.key.id == old).expect("old");
        let new_status = statuses.iter().find(|s| s.key.id == new).expect("new");
        assert_eq!(
            (old_status.key.key_status, old_status.mfa_secrets),
            (KeyStatus::Retired, 0)
        );
        assert_eq!(
            (new_status.key.key_status, new_status.mfa_secrets),
            (KeyStatus::Active, 1)
        );

        let code = totp::code_for_step(&secret, step + 1).expect("code");
        let context = LoginContext::default();
        clm.authenticate(&name, password.clone(), Some(&code), context)
            .await
            .expect("MFA login after rotation");
    })
    .await;
}

#[tokio::test]
async fn key_status_carries_no_key_material() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        clm.rotate_data_key(&system, RotationOptions::default())
            .await
            .expect("rotate");
        let statuses = clm.key_status(&system).await.expect("key status");
        assert_eq!(statuses.len(), 2);
        let debug = format!("{statuses:?}");
        let json = serde_json::to_string(&statuses).expect("json");
        assert!(debug.contains("redacted"), "{debug}");
        assert!(
            !json.contains("wrapped_key") && !json.contains("wrap_nonce"),
            "{json}"
        );
        for wrapped in wrapped_keys(&clm).await {
            assert!(!debug.contains(&format!("{wrapped:?}")));
            assert!(!debug.contains(&hex::encode(&wrapped)));
            assert!(!json.contains(&format!("{wrapped:?}").replace(' ', "")));
        }
        let rotations = clm
            .list_key_rotations(&system, &PageRequest::first(10))
            .await
            .expect("rotations");
        assert_eq!(rotations.items.len(), 1);
        assert_eq!(rotations.items[0].rotation_type, RotationType::DataKey);
    })
    .await;
}

#[tokio::test]
async fn rotation_needs_the_keys_permissions() {
    on_both_keyed(security(), |clm| async move {
        let reader = Actor::new(
            ActorKind::System,
            clm::Grants {
                global: Permissions::from_pairs(&[("keys", &["read"])]),
                ..Default::default()
            },
            Vec::new(),
        );
        let nobody = Actor::new(
            ActorKind::System,
            clm::Grants {
                global: Permissions::from_pairs(&[("certificates", &["read"])]),
                ..Default::default()
            },
            Vec::new(),
        );
        for actor in [&reader, &nobody] {
            let err = clm
                .rotate_data_key(actor, RotationOptions::default())
                .await
                .expect_err("rotate needs keys:rotate");
            assert_eq!(err.code(), ErrorCode::PermissionDenied);
            let err = clm
                .rotate_master_key(actor, master_key(0x77))
                .await
                .expect_err("master rotation needs keys:rotate");
            assert_eq!(err.code(), ErrorCode::PermissionDenied);
        }
        clm.key_status(&reader).await.expect("keys:read suffices");
        let err = clm.key_status(&nobody).await.expect_err("needs keys:read");
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        let err = clm
            .list_key_rotations(&nobody, &PageRequest::first(10))
            .await
            .expect_err("needs keys:read");
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        let err = clm
            .rotate_data_key(
                &clm.system_actor(),
                RotationOptions {
                    batch_size: 0,
                    ..Default::default()
                },
            )
            .await
            .expect_err("batch size 0");
        assert_eq!(err.code(), ErrorCode::InvalidInput);
    })
    .await;
}

#[tokio::test]
async fn after_a_master_key_rotation_only_the_new_master_key_opens() {
    on_both_configs(|config| async move {
        let clm = Clm::open(config.clone().with_master_key(master_key(0x42)))
            .await
            .expect("open");
        let (name, password, secret, step) = mfa_user(&clm).await;
        let report = clm
            .rotate_master_key(&clm.system_actor(), master_key(0x43))
            .await
            .expect("rotate master key");
        assert_eq!(report.rotation_type, RotationType::MasterKey);
        assert_eq!(report.rotated_items, 1);
        clm.close().await;

        let err = Clm::open(config.clone().with_master_key(master_key(0x42)))
            .await
            .expect_err("the old master key no longer opens");
        assert_eq!(err.code(), ErrorCode::Configuration, "{err}");
        let clm = Clm::open(config.clone().with_master_key(master_key(0x43)))
            .await
            .expect("the new master key opens");
        let code = totp::code_for_step(&secret, step + 1).expect("code");
        clm.authenticate(&name, password, Some(&code), LoginContext::default())
            .await
            .expect("MFA secret still opens");
        clm.close().await;
    })
    .await;
}
