//! Tracing: every operation has its span (name, actor kind, organization,
//! outcome, duration), transactions theirs, decisions their events, and no
//! secret ever reaches a field. Runs the operations that handle passwords,
//! session tokens, API keys, MFA secrets, private keys and master keys under
//! a TRACE subscriber that keeps every span and event field (and sqlx's
//! statements), on both backends, then looks for each secret in all of it.
//!
//! The subscriber is the process's global one, so this binary holds this
//! one test only.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use base64::Engine;
use clm::api::{self, Reply};
use clm::crypto::{SecretBytes, SecretString, totp};
use clm::logging::{ForwardLayer, LogRecord, LogSink};
use clm::service::access::NewOrganization;
use clm::service::identity::{LoginContext, NewApiKey, NewUser};
use clm::{Clm, ErrorCode, SecuritySettings};
use common::{on_both_configs, test_master_key, unique};
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Everything any span or event carried, field by field, one line each:
/// independent of `ForwardLayer`'s formatting, so a field it left out would
/// still be searched.
#[derive(Clone, Default)]
struct RawCapture(Arc<Mutex<Vec<String>>>);

struct RawFields<'a>(&'a mut String);

impl Visit for RawFields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl RawCapture {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line);
        }
    }

    fn text(&self) -> String {
        self.0.lock().map(|l| l.join("\n")).unwrap_or_default()
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for RawCapture {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut line = format!("span {}", attrs.metadata().name());
        attrs.record(&mut RawFields(&mut line));
        self.push(line);
    }

    fn on_record(&self, _id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut line = "record".to_string();
        values.record(&mut RawFields(&mut line));
        self.push(line);
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = format!("event {}", event.metadata().target());
        event.record(&mut RawFields(&mut line));
        self.push(line);
    }
}

fn ctx() -> LoginContext {
    LoginContext {
        ip_address: Some("192.0.2.9".into()),
        user_agent: Some("observability-test".into()),
    }
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

/// What the checks after the run look for, besides the secrets.
#[derive(Default)]
struct Seen {
    secrets: Vec<String>,
    organizations: Vec<String>,
}

/// Runs every secret-handling operation once, a denial and a policy
/// refusal; returns the secrets it saw.
async fn secret_handling_operations(clm: &Clm, seen: &mut Seen) {
    let system = clm.system_actor();
    let secrets = &mut seen.secrets;
    let org = clm
        .create_organization(
            &system,
            NewOrganization {
                org_code: unique("observed"),
                name: "Observed".into(),
                ..Default::default()
            },
        )
        .await
        .expect("organization");
    seen.organizations.push(org.id.to_string());
    let password = format!("Pw-{}-correct-horse", unique("s"));
    secrets.push(password.clone());
    let user = clm
        .create_user(
            &system,
            NewUser {
                username: unique("olivia"),
                email: format!("{}@example.com", unique("olivia")),
                password: Some(SecretString::new(password.clone())),
                organization_id: Some(org.id),
                ..Default::default()
            },
        )
        .await
        .expect("create user");
    // A member without roles is refused, by permission.
    let nobody = clm
        .actor_for_user(user.id)
        .await
        .expect("actor of a user without roles");
    let denied = clm
        .create_organization(
            &nobody,
            NewOrganization {
                org_code: unique("denied"),
                name: "Denied".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("no roles");
    assert_eq!(denied.code(), ErrorCode::PermissionDenied);
    clm.assign_role(
        &system,
        user.id,
        clm.get_role_by_code(&system, "ADMIN")
            .await
            .expect("admin role")
            .id,
    )
    .await
    .expect("grant");

    // A wrong password first: the failure is traced, the password is not.
    let wrong = format!("Wrong-{}-password", unique("w"));
    secrets.push(wrong.clone());
    let refused = clm
        .authenticate(&user.username, SecretString::new(wrong), None, ctx())
        .await
        .expect_err("wrong password");
    assert_eq!(refused.code(), ErrorCode::Authentication);

    let login = clm
        .authenticate(
            &user.username,
            SecretString::new(password.clone()),
            None,
            ctx(),
        )
        .await
        .expect("login");
    secrets.push(login.token.expose().to_string());
    let session_actor = clm
        .validate_session(login.token.expose())
        .await
        .expect("session");

    let created = clm
        .create_api_key(
            &session_actor,
            NewApiKey {
                name: unique("observed"),
                ..Default::default()
            },
        )
        .await
        .expect("api key");
    secrets.push(created.key.expose().to_string());
    clm.authenticate_api_key(created.key.expose())
        .await
        .expect("validate api key");

    let enrollment = clm
        .begin_mfa_enrollment(&session_actor, SecretString::new(password.clone()))
        .await
        .expect("begin mfa");
    let secret_b32 = enrollment.secret_base32.expose().to_string();
    let raw = base32_decode(&secret_b32);
    secrets.push(secret_b32);
    secrets.push(hex::encode(&raw));
    secrets.push(enrollment.provisioning_uri.expose().to_string());
    let code = totp::code_for_step(
        &SecretBytes::from_slice(&raw),
        totp::step_at(chrono::Utc::now().timestamp()),
    )
    .expect("totp code");
    clm.confirm_mfa_enrollment(&session_actor, &code)
        .await
        .expect("confirm mfa");

    // Issuance with a generated key, its export, then both rotations.
    let call = |name: &'static str, input: Value| {
        let system = system.clone();
        async move {
            api::call(clm, Some(&system), name, input, None)
                .await
                .map(Reply::into_value)
        }
    };
    let root = call(
        "create_root_ca",
        json!({"new": {"subject": {"common_name": unique("Observed Root")}}}),
    )
    .await
    .expect("root");
    let issued = call(
        "issue_certificate",
        json!({"request": {
            "issuer_id": root["certificate"]["id"],
            "validity_days": 30,
            "subject": {"common_name": "observed.example.com"},
            "sans": [{"type": "DNS", "value": "observed.example.com"}],
        }}),
    )
    .await
    .expect("issue");
    let policy = call(
        "create_policy",
        json!({"new": {"policy_code": unique("short"), "name": "Short-lived",
                       "rules": {"max_validity_days": 10, "renewal_threshold_days": 5}}}),
    )
    .await
    .expect("policy");
    let refused = call(
        "issue_certificate",
        json!({"request": {
            "issuer_id": root["certificate"]["id"],
            "policy_id": policy["id"],
            "validity_days": 30,
            "subject": {"common_name": "long.example.com"},
            "sans": [{"type": "DNS", "value": "long.example.com"}],
        }}),
    )
    .await
    .expect_err("too long for the policy");
    assert_eq!(refused.code(), ErrorCode::PolicyViolation);
    let pem = call(
        "export_private_key",
        json!({"certificate_id": issued["certificate"]["id"]}),
    )
    .await
    .expect("export");
    let pem = pem.as_str().expect("a PEM").to_string();
    // Each base64 line of the key body, so a piece of it is found too.
    secrets.extend(
        pem.lines()
            .filter(|line| !line.starts_with("-----") && line.len() > 16)
            .map(str::to_string),
    );
    // Exports under a password: the password reaches no field or record.
    let export_password = format!("Export-{}-password", unique("p"));
    secrets.push(export_password.clone());
    call(
        "export_pkcs12",
        json!({"certificate_id": issued["certificate"]["id"], "password": export_password,
               "options": {"iterations": 10_000}}),
    )
    .await
    .expect("export PKCS #12");
    call(
        "export_private_key",
        json!({"certificate_id": issued["certificate"]["id"],
               "options": {"password": export_password, "iterations": 10_000}}),
    )
    .await
    .expect("export encrypted key");
    call("rotate_data_key", json!({"batch_size": 1}))
        .await
        .expect("rotate data key");
    let new_master = base64::engine::general_purpose::STANDARD.encode([0x5a_u8; 32]);
    secrets.push(new_master.clone());
    call(
        "rotate_master_key",
        json!({"new_master_key": {"master_key": new_master}}),
    )
    .await
    .expect("rotate master key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_are_traced_and_no_secret_reaches_a_field() {
    let forwarded: Arc<Mutex<Vec<(Level, String, String)>>> = Arc::default();
    let seen = forwarded.clone();
    let sink: LogSink = Arc::new(move |record: &LogRecord<'_>| {
        if let Ok(mut lines) = seen.lock() {
            lines.push((
                record.level,
                record.target.to_string(),
                record.message.to_string(),
            ));
        }
    });
    let raw = RawCapture::default();
    let subscriber = tracing_subscriber::registry()
        .with(raw.clone())
        .with(ForwardLayer::new(sink, Level::TRACE));
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let seen: Arc<Mutex<Seen>> = Arc::default();
    let collected = seen.clone();
    on_both_configs(move |config| {
        let collected = collected.clone();
        async move {
            let master = match test_master_key() {
                clm::MasterKeySource::Base64(key) => key,
                _ => unreachable!("the test key is base64"),
            };
            let clm = Clm::open(config.with_master_key(test_master_key()).with_security(
                SecuritySettings {
                    cpu_jobs: 2,
                    ..SecuritySettings::default()
                },
            ))
            .await
            .expect("open");
            let mut found = Seen::default();
            secret_handling_operations(&clm, &mut found).await;
            found.secrets.push(master);
            clm.close().await;
            if let Ok(mut all) = collected.lock() {
                all.secrets.extend(found.secrets);
                all.organizations.extend(found.organizations);
            }
        }
    })
    .await;

    let raw = raw.text();
    let forwarded = forwarded.lock().map(|l| l.clone()).unwrap_or_default();
    let forwarded_text: String = forwarded
        .iter()
        .map(|(_, target, message)| format!("{target} {message}\n"))
        .collect();
    let (secrets, organizations) = seen
        .lock()
        .map(|s| (s.secrets.clone(), s.organizations.clone()))
        .unwrap_or_default();
    assert!(secrets.len() >= 10, "secrets collected: {}", secrets.len());
    for secret in &secrets {
        assert!(
            !raw.contains(secret.as_str()),
            "a secret reached a traced field: {secret}"
        );
        assert!(
            !forwarded_text.contains(secret.as_str()),
            "a secret reached a forwarded record: {secret}"
        );
    }

    // What should be there is: the operations' spans, closed with their
    // outcome and duration, the actor kinds, transactions, statements.
    let has = |needle: &str| forwarded_text.contains(needle);
    for expected in [
        "authenticate{}: finished outcome=authentication failed",
        "create_api_key{actor=session}: finished outcome=ok",
        "confirm_mfa_enrollment{actor=session}: finished outcome=ok",
        "export_private_key{actor=system}: finished outcome=ok",
        "export_pkcs12{actor=system}: finished outcome=ok",
        "rotate_master_key{actor=system}: finished outcome=ok",
        "data key rotation: batch committed",
        "group commit: writing a batch jobs=1",
        "transaction{sealing=false begin_ms=",
        " half=secure commit_ms=",
        " half=core commit_ms=",
        "ended=committed}: finished outcome=ok duration_ms=",
        "authorization denied actor=user resource=organizations action=create",
        "create_organization{actor=user}: finished outcome=permission denied: create on organizations",
        "policy refused the request rules=[\"max_validity_days\"]",
        "issue_certificate{actor=system}: finished outcome=policy violation",
    ] {
        assert!(has(expected), "no {expected:?} in:\n{forwarded_text}");
    }
    assert!(
        forwarded
            .iter()
            .any(|(level, target, _)| target == "sqlx::query" && *level == Level::TRACE),
        "sqlx's statements reach the same subscriber"
    );
    assert!(
        raw.contains("span issue_certificate actor=\"system\""),
        "operation spans carry the actor kind"
    );
    for organization in &organizations {
        let span = format!("create_user{{actor=system organization={organization}}}: finished");
        assert!(has(&span), "no {span:?}");
    }
}
