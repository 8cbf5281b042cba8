//! What needs no store: the order of precedence of the settings as `clm
//! config show` reports it (flags > CLM_* variables > clm.toml > defaults),
//! completions and the man page from the same definitions as `--help`, and
//! usage errors.

use assert_cmd::Command;
use serde_json::Value;

fn clm(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clm"));
    command
        .env_clear()
        .env("HOME", dir)
        .current_dir(dir)
        .args(["config", "show", "-o", "json"]);
    command
}

fn setting<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|row| row["setting"] == name)
        .unwrap_or_else(|| panic!("{name} is not shown: {rows}"))
}

fn show(command: &mut Command) -> Value {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn flags_beat_variables_beat_clm_toml_beat_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let rows = show(&mut clm(home));
    let data = setting(&rows, "data_dir");
    assert_eq!(data["source"], "default");
    assert_eq!(
        data["value"],
        home.join(".local/share/clm").to_str().unwrap()
    );
    assert_eq!(setting(&rows, "master_key_file")["source"], "default");

    std::fs::write(
        home.join("clm.toml"),
        "data_dir = \"/from/file\"\nmax_connections = 3\n",
    )
    .unwrap();
    let rows = show(&mut clm(home));
    assert_eq!(setting(&rows, "data_dir")["value"], "/from/file");
    assert_eq!(setting(&rows, "data_dir")["source"], "file");
    assert_eq!(setting(&rows, "max_connections")["value"], "3");

    let rows = show(clm(home).env("CLM_DATA_DIR", "/from/env"));
    assert_eq!(setting(&rows, "data_dir")["value"], "/from/env");
    assert_eq!(setting(&rows, "data_dir")["source"], "env");
    assert_eq!(setting(&rows, "max_connections")["source"], "file");

    let rows = show(
        clm(home)
            .env("CLM_DATA_DIR", "/from/env")
            .args(["--data-dir", "/from/flag"]),
    );
    assert_eq!(setting(&rows, "data_dir")["value"], "/from/flag");
    assert_eq!(setting(&rows, "data_dir")["source"], "flag");

    // --data-dir wins over PostgreSQL URLs in the environment, whose
    // passwords are never shown.
    let rows = show(
        clm(home)
            .env("CLM_SECURE_DATABASE_URL", "postgres://u:hunter2@db/s")
            .env("CLM_CORE_DATABASE_URL", "postgres://u:hunter2@db/c")
            .args(["--data-dir", "/from/flag"]),
    );
    assert!(!rows.to_string().contains("secure_url"), "{rows}");
    let rows = show(
        clm(home)
            .env("CLM_SECURE_DATABASE_URL", "postgres://u:hunter2@db/s")
            .env("CLM_CORE_DATABASE_URL", "postgres://u:hunter2@db/c"),
    );
    assert_eq!(setting(&rows, "secure_url")["value"], "[redacted]");
    assert!(!rows.to_string().contains("hunter2"), "{rows}");

    // --config names another file; an unknown key in it is refused by name.
    std::fs::write(home.join("other.toml"), "colour = \"red\"\n").unwrap();
    let output = clm(home).args(["--config", "other.toml"]).output().unwrap();
    assert_eq!(output.status.code(), Some(13));
    assert!(String::from_utf8_lossy(&output.stderr).contains("colour"));
    // CLM_OUTPUT picks the format when no flag does.
    let output = Command::new(env!("CARGO_BIN_EXE_clm"))
        .env_clear()
        .env("HOME", home)
        .current_dir(home)
        .env("CLM_OUTPUT", "yaml")
        .args(["config", "show"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("- setting: data_dir"));
}

#[test]
fn completions_man_page_and_usage_errors() {
    for (shell, marker) in [
        ("bash", "_clm()"),
        ("zsh", "#compdef clm"),
        ("fish", "complete -c clm"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_clm"))
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && text.contains(marker),
            "{shell}: {text}"
        );
        assert!(
            text.contains("rotate-data"),
            "{shell} completes subcommands"
        );
    }
    let output = Command::new(env!("CARGO_BIN_EXE_clm"))
        .arg("man")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains(".TH clm"),
        "{text}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_clm"))
        .args(["cert", "issue", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(env!("CARGO_BIN_EXE_clm"))
        .args(["cert", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("sign-csr"));
}
