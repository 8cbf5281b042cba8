//! `clm::api`: the JSON entry point every binding calls. Runs a PKI through
//! it on both backends and checks that bad input is refused by name before
//! anything runs.

mod common;

use std::sync::Mutex;

use clm::api::{self, OpenOptions, Reply};
use clm::{Actor, Clm, ErrorCode, SecuritySettings};
use common::{on_both_keyed, unique};
use serde_json::{Value, json};

async fn call(clm: &Clm, actor: &Actor, name: &str, input: Value) -> clm::Result<Value> {
    api::call(clm, Some(actor), name, input, None)
        .await
        .map(Reply::into_value)
}

fn invalid_field(result: clm::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(err) => {
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
            err.to_string()
        }
        Ok(value) => panic!("expected InvalidInput, got {value:?}"),
    }
}

#[tokio::test]
async fn a_pki_runs_through_the_json_entry_point() {
    on_both_keyed(SecuritySettings::default(), |clm| async move {
        let system = match api::call(&clm, None, "system_actor", Value::Null, None).await {
            Ok(Reply::Actor(actor, description)) => {
                assert_eq!(description["kind"], "system");
                actor
            }
            _ => panic!("system_actor returns an actor"),
        };
        let root = call(
            &clm,
            &system,
            "create_root_ca",
            json!({"new": {"subject": {"common_name": unique("API Root")}}}),
        )
        .await
        .expect("root CA");
        let root_id = root["certificate"]["id"]
            .as_str()
            .expect("root id")
            .to_string();
        let issued = call(
            &clm,
            &system,
            "issue_certificate",
            json!({"request": {
                "issuer_id": root_id,
                "validity_days": 30,
                "subject": {"common_name": "api.example.com"},
                "sans": [{"type": "DNS", "value": "api.example.com"}],
            }}),
        )
        .await
        .expect("issue");
        let leaf_id = issued["certificate"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("an issued certificate: {issued}"))
            .to_string();
        let page = call(
            &clm,
            &system,
            "search_certificates",
            json!({"search": {"common_name": "api.example.com"}, "page": {"limit": 10}}),
        )
        .await
        .expect("search");
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");

        let key = call(
            &clm,
            &system,
            "export_private_key",
            json!({"certificate_id": leaf_id}),
        )
        .await
        .expect("export");
        assert!(key.as_str().is_some_and(|pem| pem.contains("PRIVATE KEY")));

        call(
            &clm,
            &system,
            "revoke_certificate",
            json!({"id": leaf_id, "reason": "key_compromise"}),
        )
        .await
        .expect("revoke");
        let generated = call(&clm, &system, "generate_crl", json!({"issuer_id": root_id}))
            .await
            .expect("crl");
        assert!(generated["size_bytes"].as_i64().is_some_and(|n| n > 0));
        assert!(generated.get("pem").is_none(), "a summary, not the CRL");
        let crl = call(&clm, &system, "latest_crl", json!({"issuer_id": root_id}))
            .await
            .expect("served crl");
        assert!(
            crl["pem"]
                .as_str()
                .is_some_and(|pem| pem.contains("X509 CRL"))
        );

        let csr = api::call(
            &clm,
            None,
            "create_csr",
            json!({"sans": [{"type": "DNS", "value": "csr.example.com"}]}),
            None,
        )
        .await
        .expect("csr")
        .into_value();
        let from_csr = call(
            &clm,
            &system,
            "issue_certificate",
            json!({"request": {"issuer_id": root_id, "validity_days": 10, "csr": csr["csr_pem"]}}),
        )
        .await
        .expect("issue from csr");
        assert_eq!(from_csr["certificate"]["common_name"], Value::Null);

        let seen = Mutex::new(Vec::new());
        let sink = |progress: Value| {
            if let Ok(mut seen) = seen.lock() {
                seen.push(progress);
            }
        };
        let report = api::call(
            &clm,
            Some(&system),
            "rotate_data_key",
            json!({"batch_size": 1}),
            Some(&sink),
        )
        .await
        .expect("rotate")
        .into_value();
        let seen = seen.into_inner().expect("progress lock");
        assert!(!seen.is_empty(), "progress reported: {report}");
        assert_eq!(
            seen.last().map(|p| p["rotated"].clone()),
            Some(report["rotated_items"].clone())
        );

        let chain = call(
            &clm,
            &system,
            "verify_audit_chain",
            json!({"log": "secure"}),
        )
        .await
        .expect("verify");
        assert!(chain["broken"].is_null(), "{chain}");
        assert!(
            chain["rows_checked"].as_u64().is_some_and(|rows| rows > 0),
            "{chain}"
        );
    })
    .await;
}

#[tokio::test]
async fn bad_input_is_refused_by_name_and_changes_nothing() {
    on_both_keyed(SecuritySettings::default(), |clm| async move {
        let system = clm.system_actor();
        let message = invalid_field(call(&clm, &system, "no_such_operation", Value::Null).await);
        assert!(message.contains("no_such_operation"), "{message}");

        let message = invalid_field(
            api::call(&clm, None, "list_users", Value::Null, None).await.map(Reply::into_value),
        );
        assert!(message.contains("actor"), "{message}");

        let message = invalid_field(call(&clm, &system, "get_user", json!({"idd": "x"})).await);
        assert!(message.contains("idd"), "{message}");

        let message = invalid_field(call(&clm, &system, "get_user", json!({"id": 42})).await);
        assert!(message.contains("id"), "{message}");

        let message = invalid_field(call(&clm, &system, "list_users", json!([1, 2])).await);
        assert!(message.contains("object"), "{message}");

        let message = invalid_field(
            call(
                &clm,
                &system,
                "create_policy",
                json!({"new": {"policy_code": "P", "name": "P", "rules": {"max_validity_days": "many"}}}),
            )
            .await,
        );
        assert!(message.contains("max_validity_days"), "{message}");

        let message = invalid_field(
            call(&clm, &system, "import_certificates", json!({"request": {"pem": "garbage"}})).await,
        );
        assert!(!message.is_empty());

        let policies = call(&clm, &system, "list_policies", Value::Null)
            .await
            .expect("list policies");
        assert_eq!(policies["items"].as_array().map(Vec::len), Some(0), "{policies}");
    })
    .await;
}

#[test]
fn open_options_name_what_is_wrong() {
    let err = OpenOptions::parse(json!({"sqlite_dir": "/tmp/x"}))
        .and_then(OpenOptions::into_config)
        .expect_err("no master key");
    assert!(err.to_string().contains("master_key"), "{err}");
    let err = OpenOptions::parse(json!({"sqlite_dir": "/tmp/x", "master_key": "k", "colour": 1}))
        .expect_err("unknown option");
    assert!(err.to_string().contains("colour"), "{err}");
    let err = OpenOptions::parse(json!({"secure_url": "postgres://x", "master_key": "k"}))
        .and_then(OpenOptions::into_config)
        .expect_err("one url");
    assert!(err.to_string().contains("core_url"), "{err}");
    let debug = format!(
        "{:?}",
        OpenOptions::parse(json!({"sqlite_dir": "/tmp/x", "master_key": "c2VjcmV0LWtleQ=="}))
            .expect("options")
    );
    assert!(!debug.contains("c2VjcmV0LWtleQ"), "{debug}");
    let key = "c2VjcmV0LWtleS1jMnZqY21WMExXdGxlUT09LTMyYnk=";
    let config =
        OpenOptions::parse(json!({"sqlite_dir": "/tmp/x", "master_key": key, "cache_ttl_ms": 0}))
            .and_then(OpenOptions::into_config)
            .expect("caches off");
    assert!(config.cache_ttl.is_zero());
    let config = OpenOptions::parse(json!({"sqlite_dir": "/tmp/x", "master_key": key}))
        .and_then(OpenOptions::into_config)
        .expect("default caches");
    assert_eq!(config.cache_ttl, clm::config::DEFAULT_CACHE_TTL);
    let err =
        OpenOptions::parse(json!({"sqlite_dir": "/tmp/x", "master_key": key, "cache_ttl_ms": -1}))
            .expect_err("negative ttl");
    assert!(err.to_string().contains("cache_ttl_ms"), "{err}");
}

/// A host calls clm from its own threads, whose stacks may be small (a
/// thread pool's 1 MiB, or less). Every operation goes through one
/// dispatcher; it used to hold every operation's locals in one poll frame
/// (over 1 MiB unoptimised) and overflowed such a thread.
#[test]
fn operations_run_on_a_host_thread_with_a_small_stack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let worker = std::thread::Builder::new()
        .stack_size(768 * 1024)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let clm = Clm::open(
                    clm::ClmConfig::sqlite(&path).with_master_key(common::test_master_key()),
                )
                .await
                .expect("open");
                let system = clm.system_actor();
                let root = call(
                    &clm,
                    &system,
                    "create_root_ca",
                    json!({"new": {"subject": {"common_name": "Small Stack Root"}}}),
                )
                .await
                .expect("root CA");
                let issued = call(
                    &clm,
                    &system,
                    "issue_certificate",
                    json!({"request": {
                        "issuer_id": root["certificate"]["id"],
                        "validity_days": 200,
                        "subject": {"common_name": "small.example.com"},
                        "sans": [{"type": "DNS", "value": "small.example.com"}],
                    }}),
                )
                .await
                .expect("issue");
                clm.close().await;
                issued["certificate"]["status"].as_str().map(str::to_string)
            })
        })
        .expect("spawn");
    let status = worker.join().expect("the worker thread did not overflow");
    assert_eq!(status.as_deref(), Some("active"));
}
