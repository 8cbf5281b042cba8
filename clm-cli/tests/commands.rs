//! Every command against one store per backend (SQLite, PostgreSQL): the
//! happy paths, and bad input (missing file, wrong password, unknown id,
//! malformed YAML) failing with a clear message, the documented exit status
//! and nothing written. Exit statuses: 10 + the library's error number
//! (11 NOT_FOUND, 12 ALREADY_EXISTS, 13 INVALID_INPUT, 14 POLICY_VIOLATION,
//! 15 PERMISSION_DENIED, 16 CONFLICT, 19 AUTHENTICATION, 20 CONFIGURATION).

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;

#[test]
fn every_command_on_sqlite() {
    every_command(&Store::sqlite());
}

#[test]
fn every_command_on_postgres() {
    if let Some(store) = Store::postgres() {
        every_command(&store);
    }
}

fn run(store: &Store, args: &[&str]) -> Value {
    ok_json(store.clm().args(args).output().unwrap())
}

fn run_fails(store: &Store, args: &[&str], status: i32) -> String {
    fails(store.clm().args(args).output().unwrap(), status)
}

fn text(store: &Store, args: &[&str]) -> String {
    let output = store.clm().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn every_command(store: &Store) {
    identity_and_sessions(store);
    let (root, intermediate) = authorities(store);
    policies(store, &intermediate);
    certificates(store, &root, &intermediate);
    imports(store);
    governance(store);
    users_roles_and_keys(store);
    audit_keys_and_maintenance(store);
    ocsp(store, &intermediate);
    rollover(store);
}

fn rollover(store: &Store) {
    let root = run(
        store,
        &[
            "ca",
            "create-root",
            "--cn",
            "Rollover Root",
            "--validity-days",
            "400",
        ],
    );
    let root = root["certificate"]["id"].as_str().unwrap().to_string();
    for name in ["a.example.com", "b.example.com"] {
        run(
            store,
            &[
                "cert", "issue", "--issuer", &root, "--cn", name, "--san", name,
            ],
        );
    }
    let plan = run(store, &["ca", "rollover", "plan", &root]);
    assert_eq!(plan["leaves_to_reissue"], 2, "{plan}");
    let report = run(
        store,
        &["ca", "rollover", "run", &root, "--batch-size", "1"],
    );
    assert_eq!(report["rollover"]["status"], "completed", "{report}");
    assert_eq!(report["rollover"]["leaves_reissued"], 2, "{report}");
    let bundle = text(store, &["ca", "rollover", "status", &root, "-o", "pem"]);
    assert!(bundle.matches("BEGIN CERTIFICATE").count() >= 2, "{bundle}");
    run_fails(
        store,
        &[
            "ca",
            "rollover",
            "status",
            "00000000-0000-0000-0000-000000000004",
        ],
        11,
    );
}

fn identity_and_sessions(store: &Store) {
    // Before init: no master key file, a clear error and nothing written.
    let stderr = run_fails(store, &["whoami"], 20);
    assert!(stderr.contains("clm init"), "{stderr}");

    // The two prompted passwords must match; a weak one is refused first.
    let stderr = fails(
        store
            .clm()
            .args([
                "init",
                "--admin-email",
                "admin@example.com",
                "--password-stdin",
            ])
            .write_stdin("short\n")
            .output()
            .unwrap(),
        13,
    );
    assert!(stderr.contains("password"), "{stderr}");
    assert!(!store.key_file().exists(), "a refused init wrote the key");
    assert!(
        !store.path("data").exists(),
        "a refused init wrote the store"
    );

    // Refused after the store was opened (the email): undone, no key kept.
    let stderr = fails(
        store
            .clm()
            .args(["init", "--admin-email", "not-an-email", "--password-stdin"])
            .write_stdin(format!("{PASSWORD}\n"))
            .output()
            .unwrap(),
        13,
    );
    assert!(stderr.contains("email"), "{stderr}");
    assert!(!store.key_file().exists(), "a failed init kept the key");
    assert!(!store.path("data").exists(), "a failed init kept the store");

    init_and_login(store);
    assert_eq!(mode(&store.key_file()), 0o600);
    assert_eq!(mode(&store.path("config/session.json")), 0o600);
    let pending: Vec<_> = std::fs::read_dir(store.dir.path())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().contains("pending"))
        .collect();
    assert!(pending.is_empty(), "the pending key file stayed");

    // A second init changes nothing.
    let key_before = std::fs::read(store.key_file()).unwrap();
    let stderr = fails(
        store
            .clm()
            .args([
                "init",
                "--admin-email",
                "other@example.com",
                "--password-stdin",
            ])
            .write_stdin(format!("{PASSWORD}\n"))
            .output()
            .unwrap(),
        12,
    );
    assert!(stderr.contains("already initialized"), "{stderr}");
    assert_eq!(std::fs::read(store.key_file()).unwrap(), key_before);

    let me = run(store, &["whoami"]);
    assert_eq!(me["username"], "admin");
    if !store.is_postgres() {
        // A mistyped data directory is not made into a new store.
        let elsewhere = store.path("elsewhere");
        let stderr = run_fails(
            store,
            &["whoami", "--data-dir", elsewhere.to_str().unwrap()],
            20,
        );
        assert!(stderr.contains("clm init"), "{stderr}");
        assert!(!elsewhere.exists());
    }
    assert_eq!(me["kind"], "user");

    // A wrong password: refused, and the kept session is untouched.
    let session = std::fs::read(store.path("config/session.json")).unwrap();
    let stderr = fails(
        store
            .clm()
            .args(["login", "-u", "admin", "--password-stdin"])
            .write_stdin("not the password at all\n")
            .output()
            .unwrap(),
        19,
    );
    assert!(stderr.contains("AUTHENTICATION"), "{stderr}");
    assert_eq!(
        std::fs::read(store.path("config/session.json")).unwrap(),
        session
    );

    // No session elsewhere: not logged in.
    let stderr = fails(store.clm_as("nobody").arg("whoami").output().unwrap(), 19);
    assert!(stderr.contains("clm login"), "{stderr}");

    // --as-system needs the master key from a file, not the variable.
    let system = ok_json(
        store
            .clm_as("nobody")
            .args(["whoami", "--as-system"])
            .output()
            .unwrap(),
    );
    assert_eq!(system["kind"], "system");
    let key_text = std::fs::read_to_string(store.key_file()).unwrap();
    let stderr = fails(
        store
            .clm_as("nobody")
            .env_remove("CLM_MASTER_KEY_FILE")
            .env("CLM_MASTER_KEY", key_text.trim())
            .args(["whoami", "--as-system"])
            .output()
            .unwrap(),
        19,
    );
    assert!(stderr.contains("master key from a file"), "{stderr}");

    // Formats: YAML, a table without colour when not on a terminal, and
    // JSON errors for scripts.
    let yaml = text(store, &["whoami", "-o", "yaml"]);
    assert!(yaml.contains("username: admin"), "{yaml}");
    let table = text(store, &["config", "show", "-o", "table"]);
    assert!(table.starts_with("SETTING"), "{table}");
    assert!(!table.contains('\u{1b}'), "colour off a terminal: {table}");
    let stderr = run_fails(
        store,
        &["cert", "show", "00000000-0000-0000-0000-000000000000"],
        11,
    );
    let error: Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(error["code"], "NOT_FOUND");
}

fn authorities(store: &Store) -> (String, String) {
    let root = run(
        store,
        &[
            "ca",
            "create-root",
            "--cn",
            "CLI Root",
            "--org",
            "Example Inc.",
            "--country",
            "US",
            "--validity-days",
            "3650",
            "--path-len",
            "1",
        ],
    );
    let root_id = root["certificate"]["id"].as_str().unwrap().to_string();
    let intermediate = run(
        store,
        &[
            "ca",
            "create-intermediate",
            "--issuer",
            &root_id,
            "--cn",
            "CLI Issuing",
            "--key-algorithm",
            "ECDSA-P256",
            "--validity-days",
            "1825",
            "--path-len",
            "0",
            "--crl-url",
            "http://pki.example.com/issuing.crl",
        ],
    );
    let intermediate_id = intermediate["certificate"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = run(store, &["ca", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let pem = text(store, &["ca", "show", &root_id, "-o", "pem"]);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    // A bad key algorithm names the field; an unknown issuer is NOT_FOUND.
    let stderr = run_fails(
        store,
        &[
            "ca",
            "create-root",
            "--cn",
            "X",
            "--key-algorithm",
            "DSA-1024",
        ],
        13,
    );
    assert!(stderr.contains("key_algorithm"), "{stderr}");
    run_fails(
        store,
        &[
            "ca",
            "create-intermediate",
            "--issuer",
            "00000000-0000-0000-0000-000000000001",
            "--cn",
            "Y",
        ],
        11,
    );
    let stderr = run_fails(
        store,
        &[
            "ca",
            "create-intermediate",
            "--issuer",
            "not-an-id",
            "--cn",
            "Y",
        ],
        11,
    );
    assert!(stderr.contains("not-an-id"), "{stderr}");
    assert_eq!(run(store, &["ca", "list"]).as_array().unwrap().len(), 2);
    let plan = run(store, &["ca", "rollover", "plan", &intermediate_id]);
    assert_eq!(plan["ca_certificate_id"], intermediate_id.as_str());
    (root_id, intermediate_id)
}

fn policies(store: &Store, intermediate: &str) {
    let file = store.path("policy.yaml");
    std::fs::write(
        &file,
        "policy_code: WEB\nname: Web servers\nrules:\n  max_validity_days: 397\n  allowed_domains: [example.com]\n  allow_subdomains: true\n  allowed_ip_ranges: [127.0.0.0/8]\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let dry = run(store, &["policy", "apply", path, "--dry-run"]);
    assert_eq!(dry[0]["action"], "create");
    run_fails(store, &["policy", "show", "WEB"], 11);
    assert_eq!(
        run(store, &["policy", "apply", path])[0]["action"],
        "create"
    );
    assert_eq!(
        run(store, &["policy", "apply", path])[0]["action"],
        "unchanged"
    );
    std::fs::write(
        &file,
        "- policy_code: WEB\n  name: Web servers\n  rules:\n    max_validity_days: 200\n    allowed_domains: [example.com]\n    allow_subdomains: true\n    allowed_ip_ranges: [127.0.0.0/8]\n",
    )
    .unwrap();
    let update = run(store, &["policy", "apply", path]);
    assert_eq!(update[0]["action"], "update");
    let changes = update[0]["changes"].to_string();
    assert!(
        changes.contains("rules.max_validity_days: 397 -> 200"),
        "{changes}"
    );
    assert_eq!(run(store, &["policy", "show", "WEB"])["version"], 2);

    // Malformed YAML, a wrong rule type, an unknown field, a missing file:
    // named, and nothing applied.
    std::fs::write(store.path("bad.yaml"), "policy_code: [unclosed\n").unwrap();
    let stderr = run_fails(
        store,
        &["policy", "apply", store.path("bad.yaml").to_str().unwrap()],
        13,
    );
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("YAML"),
        "{stderr}"
    );
    std::fs::write(
        store.path("typo.yaml"),
        "policy_code: WEB\nrules:\n  max_validity_days: ninety\n",
    )
    .unwrap();
    let stderr = run_fails(
        store,
        &["policy", "apply", store.path("typo.yaml").to_str().unwrap()],
        13,
    );
    assert!(stderr.contains("rules.max_validity_days"), "{stderr}");
    std::fs::write(store.path("field.yaml"), "policy_code: WEB\nrulez: {}\n").unwrap();
    let stderr = run_fails(
        store,
        &[
            "policy",
            "apply",
            store.path("field.yaml").to_str().unwrap(),
        ],
        13,
    );
    assert!(stderr.contains("rulez"), "{stderr}");
    let stderr = run_fails(
        store,
        &[
            "policy",
            "apply",
            store.path("missing.yaml").to_str().unwrap(),
        ],
        13,
    );
    assert!(stderr.contains("missing.yaml"), "{stderr}");
    assert_eq!(run(store, &["policy", "show", "WEB"])["version"], 2);
    assert_eq!(
        run(store, &["policy", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Without --issuer the policy must name exactly one.
    let stderr = run_fails(
        store,
        &[
            "policy",
            "check",
            "--policy",
            "WEB",
            "--subject",
            "www.example.com",
        ],
        13,
    );
    assert!(stderr.contains("--issuer"), "{stderr}");
    // The dry run as a table of rules; a refused request exits 14 with the rules.
    let check = run(
        store,
        &[
            "policy",
            "check",
            "--policy",
            "WEB",
            "--issuer",
            intermediate,
            "--subject",
            "www.example.com",
            "--san",
            "www.example.com",
        ],
    );
    assert_eq!(check["allowed"], true);
    let output = store
        .clm()
        .args([
            "policy",
            "check",
            "--policy",
            "WEB",
            "--issuer",
            intermediate,
            "--subject",
            "evil.test",
            "--san",
            "evil.test",
            "-o",
            "table",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = fails(output, 14);
    assert!(
        stdout.contains("RULE") && stdout.contains("allowed_domains"),
        "{stdout}"
    );
    assert!(stderr.contains("violated rule allowed_domains"), "{stderr}");
}

fn certificates(store: &Store, root: &str, intermediate: &str) {
    let cert_out = store.path("server.pem");
    let key_out = store.path("server.key");
    let issued = run(
        store,
        &[
            "cert",
            "issue",
            "--issuer",
            intermediate,
            "--policy",
            "WEB",
            "--cn",
            "server.example.com",
            "--san",
            "DNS:server.example.com",
            "--san",
            "127.0.0.1",
            "--cert-out",
            cert_out.to_str().unwrap(),
            "--key-out",
            key_out.to_str().unwrap(),
        ],
    );
    assert_eq!(issued["outcome"], "issued");
    let id = issued["certificate"]["id"].as_str().unwrap().to_string();
    assert_eq!(mode(&key_out), 0o600);
    assert!(
        std::fs::read_to_string(&key_out)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert_eq!(
        std::fs::read_to_string(&cert_out).unwrap(),
        text(store, &["cert", "show", &id, "-o", "pem"])
    );
    // By fingerprint too.
    let fingerprint = issued["certificate"]["certificate_id"].as_str().unwrap();
    assert_eq!(
        run(store, &["cert", "show", fingerprint])["id"],
        id.as_str()
    );
    assert_eq!(
        text(store, &["cert", "show", &id, "--get", "common_name"]),
        "server.example.com\n"
    );

    // A policy violation issues nothing and writes no file.
    let refused = store.path("refused.pem");
    let stderr = run_fails(
        store,
        &[
            "cert",
            "issue",
            "--issuer",
            intermediate,
            "--policy",
            "WEB",
            "--cn",
            "evil.test",
            "--san",
            "evil.test",
            "--cert-out",
            refused.to_str().unwrap(),
        ],
        14,
    );
    assert!(stderr.contains("allowed_domains"), "{stderr}");
    assert!(!refused.exists());
    let stderr = run_fails(
        store,
        &[
            "cert",
            "issue",
            "--issuer",
            intermediate,
            "--cn",
            "x.example.com",
            "--cert-out",
            "/nonexistent/dir/x.pem",
        ],
        13,
    );
    assert!(stderr.contains("cert_out"), "{stderr}");

    let chain = text(store, &["cert", "chain", &id, "-o", "pem"]);
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 3);
    let found = run(store, &["cert", "search", "--cn", "server.example.com"]);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let expiring = run(store, &["cert", "expiring", "--days", "30"]);
    assert!(expiring["items"].is_array());
    run_fails(store, &["cert", "expiring", "--days", "31"], 13);

    // Exports: DER to a file, PKCS #12 under a password file (0600).
    let der = store.path("server.der");
    run(
        store,
        &[
            "cert",
            "export",
            &id,
            "--format",
            "der",
            "--out",
            der.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&der).unwrap()[0], 0x30);
    let password = store.path("p12.password");
    std::fs::write(&password, "export password 123\n").unwrap();
    let p12 = store.path("server.p12");
    run(
        store,
        &[
            "cert",
            "export",
            &id,
            "--format",
            "p12",
            "--password-file",
            password.to_str().unwrap(),
            "--out",
            p12.to_str().unwrap(),
        ],
    );
    assert_eq!(mode(&p12), 0o600);
    let stderr = run_fails(
        store,
        &[
            "cert",
            "export",
            &id,
            "--format",
            "p12",
            "--out",
            p12.to_str().unwrap(),
        ],
        13,
    );
    assert!(stderr.contains("password_file"), "{stderr}");
    let stderr = run_fails(
        store,
        &[
            "cert",
            "export",
            &id,
            "--format",
            "p12",
            "--password-file",
            "/nonexistent/pw",
            "--out",
            store.path("x.p12").to_str().unwrap(),
        ],
        13,
    );
    assert!(stderr.contains("/nonexistent/pw"), "{stderr}");
    assert!(!store.path("x.p12").exists());

    // Key export, encrypted under a password.
    let key_file = store.path("exported.key");
    run(
        store,
        &[
            "key",
            "export",
            &id,
            "--out",
            key_file.to_str().unwrap(),
            "--password-file",
            password.to_str().unwrap(),
        ],
    );
    assert!(
        std::fs::read_to_string(&key_file)
            .unwrap()
            .contains("ENCRYPTED PRIVATE KEY")
    );
    assert_eq!(mode(&key_file), 0o600);

    // CSR made here, signed there.
    let csr_key = store.path("csr.key");
    let csr = store.path("csr.pem");
    run(
        store,
        &[
            "csr",
            "create",
            "--cn",
            "api.example.com",
            "--san",
            "api.example.com",
            "--key-out",
            csr_key.to_str().unwrap(),
            "--csr-out",
            csr.to_str().unwrap(),
        ],
    );
    assert_eq!(mode(&csr_key), 0o600);
    let signed = run(
        store,
        &[
            "cert",
            "sign-csr",
            "--issuer",
            intermediate,
            "--policy",
            "WEB",
            "--csr",
            csr.to_str().unwrap(),
        ],
    );
    assert_eq!(signed["certificate"]["common_name"], "api.example.com");
    let stderr = run_fails(
        store,
        &[
            "cert",
            "sign-csr",
            "--issuer",
            intermediate,
            "--csr",
            "/nonexistent.csr",
        ],
        13,
    );
    assert!(stderr.contains("/nonexistent.csr"), "{stderr}");
    std::fs::write(store.path("garbage.csr"), "not a csr").unwrap();
    run_fails(
        store,
        &[
            "cert",
            "sign-csr",
            "--issuer",
            intermediate,
            "--policy",
            "WEB",
            "--csr",
            store.path("garbage.csr").to_str().unwrap(),
        ],
        13,
    );

    // Renew, hold, release, revoke.
    let renewed = run(store, &["cert", "renew", &id, "--validity-days", "60"]);
    assert_eq!(renewed["outcome"], "issued");
    let signed_id = signed["certificate"]["id"].as_str().unwrap();
    run(store, &["cert", "hold", signed_id]);
    assert_eq!(
        run(store, &["cert", "show", signed_id])["status"],
        "suspended"
    );
    run(store, &["cert", "release", signed_id]);
    assert_eq!(run(store, &["cert", "show", signed_id])["status"], "active");
    run(
        store,
        &["cert", "revoke", signed_id, "--reason", "key-compromise"],
    );
    assert_eq!(
        run(store, &["cert", "show", signed_id])["status"],
        "revoked"
    );
    run_fails(store, &["cert", "revoke", signed_id], 16);
    run_fails(
        store,
        &["cert", "revoke", "00000000-0000-0000-0000-000000000002"],
        11,
    );

    // CRLs: one issuer to a file, then every CA.
    let crl = store.path("crl.pem");
    let generated = run(
        store,
        &[
            "crl",
            "generate",
            "--issuer",
            intermediate,
            "--out",
            crl.to_str().unwrap(),
        ],
    );
    assert_eq!(generated[0]["entry_count"], 1);
    assert!(
        std::fs::read_to_string(&crl)
            .unwrap()
            .contains("BEGIN X509 CRL")
    );
    let all = run(store, &["crl", "generate"]);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let _ = root;

    // A CA with name constraints and delta CRLs.
    let constrained = run(
        store,
        &[
            "ca",
            "create-root",
            "--cn",
            "Constrained Root",
            "--permitted",
            "DNS:example.com",
            "--permitted",
            "10.0.0.0/8",
            "--delta-crls",
            "--crl-url",
            "http://pki.example.com/constrained.crl",
        ],
    );
    let constrained = constrained["certificate"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    run(
        store,
        &[
            "cert",
            "issue",
            "--issuer",
            &constrained,
            "--cn",
            "ok.example.com",
            "--san",
            "ok.example.com",
        ],
    );
    let output = store
        .clm()
        .args([
            "cert",
            "issue",
            "--issuer",
            &constrained,
            "--cn",
            "out.test",
            "--san",
            "out.test",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("name_constraints") || stderr.contains("out.test"),
        "{stderr}"
    );
    run(store, &["crl", "generate", "--issuer", &constrained]);
    let delta = run(
        store,
        &["crl", "generate", "--issuer", &constrained, "--delta"],
    );
    assert_eq!(delta[0]["kind"], "delta", "{delta}");
}

fn imports(store: &Store) {
    let dir = store.path("import");
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    std::fs::write(dir.join("bundle.pem"), foreign_bundle(3, "bundle")).unwrap();
    let (other, key) = foreign_bundle_and_key(1, "single");
    // The second block alone, its key beside it: a leaf whose CA is elsewhere.
    let leaf = other
        .split_inclusive("-----END CERTIFICATE-----\n")
        .nth(1)
        .unwrap();
    std::fs::write(dir.join("nested/leaf.crt"), leaf).unwrap();
    std::fs::write(dir.join("nested/leaf.key"), key).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a certificate").unwrap();

    // A missing path: refused before anything is imported.
    let stderr = run_fails(
        store,
        &["import", dir.to_str().unwrap(), "/nonexistent/certs"],
        13,
    );
    assert!(stderr.contains("/nonexistent/certs"), "{stderr}");
    let before = run(store, &["cert", "search", "--cn", "host0.bundle.example"]);
    assert_eq!(before["items"].as_array().unwrap().len(), 0);

    let report = run(store, &["import", dir.to_str().unwrap(), "--chunk", "2"]);
    assert_eq!(report["imported"], 5, "{report}");
    assert_eq!(report["failed"], 0);
    // The key beside the leaf came in with it: it can be exported.
    let leaf_id = run(store, &["cert", "search", "--cn", "host0.single.example"])["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let exported = text(store, &["key", "export", &leaf_id]);
    assert!(exported.contains("PRIVATE KEY"), "{exported}");
    let again = run(store, &["import", dir.to_str().unwrap()]);
    assert_eq!(again["imported"], 0);
    assert_eq!(again["already_present"], 5);
    // A file with no certificate: reported with the library's reason.
    std::fs::write(
        store.path("junk.pem"),
        "-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n",
    )
    .unwrap();
    let output = store
        .clm()
        .args(["import", store.path("junk.pem").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = fails(output, 13);
    assert!(stderr.contains("INVALID_INPUT"), "{stderr}");
}

fn governance(store: &Store) {
    let file = store.path("workflow.yaml");
    std::fs::write(
        &file,
        "workflow_code: TWO-EYES\nname: Two eyes\ndefinition:\n  steps:\n    - step_id: 1\n      name: Security review\n      type: approval\n      required_approvals: 1\n      approvers: [\"role:ADMIN\"]\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let created = run(store, &["workflow", "apply", path]);
    assert_eq!(created[0]["action"], "create", "{created}");
    assert_eq!(
        run(store, &["workflow", "apply", path])[0]["action"],
        "unchanged"
    );
    assert_eq!(
        run(store, &["workflow", "show", "TWO-EYES"])["workflow_code"],
        "TWO-EYES"
    );
    assert!(
        run(store, &["workflow", "list"])["items"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    assert!(run(store, &["approvals", "list"]).is_array());
    run_fails(
        store,
        &[
            "approvals",
            "approve",
            "00000000-0000-0000-0000-000000000003",
        ],
        11,
    );
    run_fails(
        store,
        &["approvals", "reject", "nope", "--comment", "x"],
        13,
    );
}

fn users_roles_and_keys(store: &Store) {
    let viewer_password = "a quiet reader 4567";
    let created = ok_json(
        store
            .clm()
            .args([
                "user",
                "create",
                "--username",
                "viewer",
                "--email",
                "viewer@example.com",
                "--password-stdin",
            ])
            .write_stdin(format!("{viewer_password}\n"))
            .output()
            .unwrap(),
    );
    assert_eq!(created["username"], "viewer");
    run_fails(store, &["user", "show", "nobody-here"], 11);
    assert_eq!(
        run(store, &["user", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        run(store, &["role", "list"])["items"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    let role = run(
        store,
        &[
            "role",
            "create",
            "--code",
            "CERT-READER",
            "--name",
            "Certificate reader",
            "--permissions",
            r#"{"certificates": ["read"]}"#,
        ],
    );
    assert_eq!(role["role_code"], "CERT-READER");
    // A command without a PEM form refuses --output pem before it runs.
    run_fails(
        store,
        &[
            "role",
            "create",
            "--code",
            "PEM",
            "--name",
            "Pem",
            "--permissions",
            "{}",
            "-o",
            "pem",
        ],
        13,
    );
    run_fails(store, &["role", "show", "PEM"], 11);
    run_fails(
        store,
        &[
            "role",
            "create",
            "--code",
            "BAD",
            "--name",
            "Bad",
            "--permissions",
            "{not json",
        ],
        13,
    );
    run(store, &["user", "grant", "viewer", "CERT-READER"]);
    let org = run(
        store,
        &["org", "create", "--code", "OPS", "--name", "Operations"],
    );
    let org_id = org["id"].as_str().unwrap();
    run(store, &["org", "add-member", org_id, "viewer"]);
    assert_eq!(
        run(store, &["org", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The viewer, logged in elsewhere, reads but may not create a CA.
    ok_json(
        store
            .clm_as("viewer")
            .args(["login", "-u", "viewer", "--password-stdin"])
            .write_stdin(format!("{viewer_password}\n"))
            .output()
            .unwrap(),
    );
    let stderr = fails(
        store
            .clm_as("viewer")
            .args(["ca", "create-root", "--cn", "Rogue"])
            .output()
            .unwrap(),
        15,
    );
    assert!(stderr.contains("PERMISSION_DENIED"), "{stderr}");
    // Suspending the viewer refuses their session; reactivated, a reset
    // password and an unlock later they log in again.
    assert_eq!(
        run(store, &["user", "set-status", "viewer", "suspended"])["status"],
        "suspended"
    );
    fails(store.clm_as("viewer").arg("whoami").output().unwrap(), 19);
    run(store, &["user", "set-status", "viewer", "active"]);
    run_fails(store, &["user", "set-status", "viewer", "sleepy"], 13);
    ok_json(
        store
            .clm()
            .args(["user", "set-password", "viewer", "--password-stdin"])
            .write_stdin("a brand new secret 890\n")
            .output()
            .unwrap(),
    );
    // Five wrong passwords lock the account; the right one then fails too
    // until an administrator unlocks it.
    let login = |password: &str| {
        store
            .clm_as("viewer")
            .args(["login", "-u", "viewer", "--password-stdin"])
            .write_stdin(format!("{password}\n"))
            .output()
            .unwrap()
    };
    for _ in 0..5 {
        fails(login("guessing wrong again"), 19);
    }
    fails(login("a brand new secret 890"), 19);
    assert!(run(store, &["user", "show", "viewer"])["locked_until"].is_string());
    run(store, &["user", "unlock", "viewer"]);
    ok_json(
        store
            .clm_as("viewer")
            .args(["login", "-u", "viewer", "--password-stdin"])
            .write_stdin("a brand new secret 890\n")
            .output()
            .unwrap(),
    );
    run(store, &["user", "revoke", "viewer", "CERT-READER"]);
    run(store, &["org", "remove-member", org_id, "viewer"]);
    assert_eq!(
        run(store, &["org", "set-status", org_id, "suspended"])["status"],
        "suspended"
    );
    assert_eq!(run(store, &["org", "show", org_id])["org_code"], "OPS");
    run(store, &["role", "delete", "CERT-READER"]);
    run_fails(store, &["role", "show", "CERT-READER"], 11);
    // Deleting the viewer ends their session; restoring brings the user back.
    let viewer_id = run(store, &["user", "show", "viewer"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    run(store, &["user", "delete", "viewer"]);
    fails(store.clm_as("viewer").arg("whoami").output().unwrap(), 19);
    assert_eq!(
        run(store, &["user", "restore", &viewer_id])["username"],
        "viewer"
    );
    // Logging out ends the session for good.
    ok_json(store.clm_as("viewer").arg("logout").output().unwrap());
    assert!(!store.path("viewer/session.json").exists());

    // An API key: written once (0600), used, revoked, then refused.
    let key_file = store.path("automation.key");
    let created = run(
        store,
        &[
            "apikey",
            "create",
            "--name",
            "automation",
            "--scopes",
            r#"{"certificates": ["read"]}"#,
            "--out",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(
        created.get("key").is_none(),
        "the key was printed: {created}"
    );
    assert_eq!(mode(&key_file), 0o600);
    let key_path = key_file.to_str().unwrap();
    let me = ok_json(
        store
            .clm_as("nobody")
            .args(["whoami", "--api-key-file", key_path])
            .output()
            .unwrap(),
    );
    assert_eq!(me["kind"], "api_key");
    // The narrower key may read certificates but not create a CA.
    ok_json(
        store
            .clm_as("nobody")
            .args(["cert", "search", "--api-key-file", key_path])
            .output()
            .unwrap(),
    );
    fails(
        store
            .clm_as("nobody")
            .args(["ca", "create-root", "--cn", "K", "--api-key-file", key_path])
            .output()
            .unwrap(),
        15,
    );
    let id = created["api_key"]["id"].as_str().unwrap();
    assert_eq!(
        run(store, &["apikey", "list"])["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    run(store, &["apikey", "revoke", id]);
    fails(
        store
            .clm_as("nobody")
            .args(["whoami", "--api-key-file", key_path])
            .output()
            .unwrap(),
        19,
    );
    let stderr = fails(
        store
            .clm_as("nobody")
            .args(["whoami", "--api-key-file", "/nonexistent/key"])
            .output()
            .unwrap(),
        13,
    );
    assert!(stderr.contains("/nonexistent/key"), "{stderr}");
}

fn audit_keys_and_maintenance(store: &Store) {
    let verified = run(store, &["audit", "verify"]);
    assert_eq!(verified.as_array().unwrap().len(), 2);
    assert!(verified[0]["broken"].is_null());
    let tail = run(store, &["audit", "tail", "--log", "core", "-n", "5"]);
    let events = tail.as_array().unwrap();
    assert_eq!(events.len(), 5);
    assert!(events[0]["sequence_number"].as_i64() < events[4]["sequence_number"].as_i64());
    let checkpoint = store.path("core.checkpoint");
    run(
        store,
        &[
            "audit",
            "checkpoint",
            "--log",
            "core",
            "--out",
            checkpoint.to_str().unwrap(),
        ],
    );
    let against = run(
        store,
        &[
            "audit",
            "verify",
            "--checkpoint",
            checkpoint.to_str().unwrap(),
        ],
    );
    assert!(against[0]["broken"].is_null(), "{against}");
    run_fails(
        store,
        &[
            "audit",
            "archive",
            "--log",
            "core",
            "--older-than",
            "soon",
            "--to",
            "x.jsonl",
        ],
        13,
    );
    let archived = run(
        store,
        &[
            "audit",
            "archive",
            "--log",
            "core",
            "--older-than",
            "180d",
            "--to",
            store.path("archive.jsonl").to_str().unwrap(),
        ],
    );
    assert_eq!(archived["archived"], 0);

    let status = run(store, &["keys", "status"]);
    assert!(!status.as_array().unwrap().is_empty());
    let rotated = run(store, &["keys", "rotate-data", "--batch-size", "2"]);
    assert_eq!(rotated["status"], "completed", "{rotated}");
    assert!(rotated["rotated_items"].as_u64().unwrap() > 0, "{rotated}");

    // A new master key: the old file no longer opens the store.
    let new_key = store.path("master-2.key");
    run(
        store,
        &[
            "keys",
            "rotate-master",
            "--new-key-file",
            new_key.to_str().unwrap(),
        ],
    );
    assert_eq!(mode(&new_key), 0o600);
    let stderr = run_fails(store, &["keys", "status"], 20);
    assert!(stderr.contains("CONFIGURATION"), "{stderr}");
    std::fs::rename(&new_key, store.key_file()).unwrap();
    run(store, &["keys", "status"]);

    let report = run(store, &["lifecycle", "run"]);
    assert_eq!(report["ran"], true, "{report}");
    run_fails(store, &["lifecycle", "run", "--at", "yesterday"], 13);
    let stats = run(store, &["db", "stats"]);
    assert!(stats["secure"]["tables"].is_array());
    let table = text(store, &["db", "stats", "-o", "table"]);
    assert!(table.contains("certificates"), "{table}");
    let maintained = run(store, &["db", "maintain"]);
    assert!(!maintained["steps"].as_array().unwrap().is_empty());
}

fn ocsp(store: &Store, intermediate: &str) {
    let issuer = store.path("issuing.pem");
    std::fs::write(
        &issuer,
        text(store, &["cert", "show", intermediate, "-o", "pem"]),
    )
    .unwrap();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_clm"));
    server.env_clear().current_dir(store.dir.path());
    for (name, value) in store.envs("config") {
        server.env(name, value);
    }
    let mut child = server
        .args(["ocsp", "serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.as_mut().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .unwrap();
    }
    let url = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    let openssl = std::process::Command::new("openssl")
        .args([
            "ocsp",
            "-issuer",
            issuer.to_str().unwrap(),
            "-cert",
            store.path("server.pem").to_str().unwrap(),
            "-url",
            &url,
            "-noverify",
        ])
        .output();
    // SIGTERM: the responder stops gracefully and exits 0.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    {
        use std::io::Read;
        child
            .stderr
            .as_mut()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
    }
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    if let Ok(output) = openssl {
        let answer = String::from_utf8_lossy(&output.stdout);
        assert!(
            answer.contains(": good"),
            "{answer} {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
