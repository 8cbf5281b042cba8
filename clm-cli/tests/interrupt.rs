//! Ctrl-C (SIGINT) during a long import: the command stops between chunks
//! with status 130 and says how to resume; the same command then finishes
//! the job, reporting what the first run stored as already present. Off a
//! terminal, progress is plain lines on stderr.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};

use common::*;

#[test]
fn an_interrupted_import_resumes() {
    let store = Store::sqlite();
    init_and_login(&store);
    let certs = store.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("bundle.pem"), foreign_bundle(3000, "sigint")).unwrap();

    let mut command = Command::new(env!("CARGO_BIN_EXE_clm"));
    command.env_clear().current_dir(store.dir.path());
    for (name, value) in store.envs("config") {
        command.env(name, value);
    }
    let mut child = command
        .args(["import", "certs", "--chunk", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first plain progress line (a tenth done), then SIGINT.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("importing: "), "{line}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    if status.code() == Some(0) {
        // The import finished before the signal arrived: nothing to resume.
        eprintln!("the import finished before SIGINT; rerun for the interruption");
        return;
    }
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("resumes"), "{rest}");

    let report = ok_json(store.clm().args(["import", "certs"]).output().unwrap());
    let imported = report["imported"].as_u64().unwrap();
    let present = report["already_present"].as_u64().unwrap();
    assert_eq!(imported + present, 3001, "{report}");
    assert!(present > 0, "the first run stored nothing: {report}");
    assert!(imported > 0, "the first run was not interrupted: {report}");
}

#[test]
fn audit_tail_follows_new_events_until_ctrl_c() {
    let store = Store::sqlite();
    init_and_login(&store);
    let mut command = Command::new(env!("CARGO_BIN_EXE_clm"));
    command.env_clear().current_dir(store.dir.path());
    for (name, value) in store.envs("config") {
        command.env(name, value);
    }
    let mut child = command
        .args(["audit", "tail", "--log", "core", "-n", "1", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let first: serde_json::Value = serde_json::from_str(&line).unwrap();
    // A new event while it follows: an organization created.
    ok_json(
        store
            .clm()
            .args(["org", "create", "--code", "FOLLOW", "--name", "Followed"])
            .output()
            .unwrap(),
    );
    let mut seen = Vec::new();
    loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "the follower stopped"
        );
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(event["sequence_number"].as_i64() > first["sequence_number"].as_i64());
        seen.push(event["event_type"].as_str().unwrap_or_default().to_string());
        if seen.iter().any(|kind| kind.starts_with("organization.")) {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Ctrl-C is how following ends: a clean exit.
    assert!(child.wait().unwrap().success());
}
