//! The shell sessions the repository shows: README.md's "From the command
//! line" block, and scripts/pki-with-cli.sh checked with `openssl verify`
//! and a CRL check, as `cargo run --example pki` is.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A PATH with the built `clm` first.
fn path_with_clm() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_clm"))
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", bin.display())
}

fn bash(script: &str, dir: &Path, envs: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", path_with_clm())
        .env("HOME", dir);
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().expect("bash runs")
}

#[test]
fn the_readme_session_runs_as_written() {
    let readme = std::fs::read_to_string(repository().join("README.md")).expect("README.md");
    let section = readme
        .split("## From the command line")
        .nth(1)
        .expect("README.md has a section \"From the command line\"");
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let block = &section[start..];
    let block = &block[..block.find("```").expect("the block ends")];
    assert!(
        block.contains("clm init") && block.contains("clm cert issue"),
        "{block}"
    );
    let dir = tempfile::tempdir().unwrap();
    let output = bash(block, dir.path(), &[]);
    assert!(
        output.status.success(),
        "the README's session failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let cert = std::fs::read_to_string(dir.path().join("www.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(dir.path().join("issuing.crl").exists());
    // Logged out at the end: the token is gone.
    assert!(!dir.path().join("demo/config/session.json").exists());
}

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(output) => (
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        ),
        Err(err) => panic!("openssl is needed for this test: {err}"),
    }
}

#[test]
fn pki_with_cli_makes_the_example_pki_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let script = repository().join("scripts/pki-with-cli.sh");
    let run = |label: &str| {
        let output = bash(
            &format!("{} {}", script.display(), out.display()),
            dir.path(),
            &[("CLM", env!("CARGO_BIN_EXE_clm"))],
        );
        assert!(
            output.status.success(),
            "{label} run failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run("first");
    // The files of examples/pki.rs, keys readable by their owner only.
    for name in [
        "root.pem",
        "intermediate.pem",
        "server.pem",
        "server.key",
        "client.pem",
        "client.key",
        "chain.pem",
        "crl.pem",
    ] {
        assert!(out.join(name).is_file(), "{name} is missing");
    }
    use std::os::unix::fs::PermissionsExt;
    for key in ["server.key", "client.key", "master.key"] {
        let mode = std::fs::metadata(out.join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    let (ok, text) = openssl(
        &[
            "verify",
            "-crl_check",
            "-CRLfile",
            "crl.pem",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "intermediate.pem",
            "server.pem",
            "client.pem",
        ],
        &out,
    );
    assert!(
        ok && text.contains("server.pem: OK") && text.contains("client.pem: OK"),
        "{text}"
    );
    let (ok, text) = openssl(
        &[
            "crl",
            "-in",
            "crl.pem",
            "-CAfile",
            "intermediate.pem",
            "-noout",
            "-text",
        ],
        &out,
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    assert_eq!(text.matches("Serial Number:").count(), 1, "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    // server.example.com and 127.0.0.1, and the key is the certificate's.
    let (_, text) = openssl(
        &[
            "x509",
            "-in",
            "server.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
        &out,
    );
    assert!(
        text.contains("DNS:server.example.com") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    let (_, cert_key) = openssl(&["x509", "-in", "server.pem", "-noout", "-pubkey"], &out);
    let (_, key) = openssl(&["pkey", "-in", "server.key", "-pubout"], &out);
    assert_eq!(cert_key, key);
    let chain = std::fs::read_to_string(out.join("chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
    // A second run over the same store adds a new PKI, as the example does.
    run("second");
    let (ok, text) = openssl(
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "intermediate.pem",
            "server.pem",
        ],
        &out,
    );
    assert!(ok, "{text}");
}
