//! A store for the CLI's tests: SQLite in a temporary directory, or a
//! PostgreSQL database pair `clm init` creates (dropped when the store is).
//! Every `clm` run gets only the environment the store sets: the
//! developer's own `CLM_*` variables, session and clm.toml never leak in.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// The test administrator's password.
pub const PASSWORD: &str = "correct horse battery staple";

pub fn pg_base_url() -> String {
    std::env::var("CLM_TEST_PG_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_string())
        .trim_end_matches('/')
        .to_string()
}

pub enum Backend {
    Sqlite,
    Postgres { secure: String, core: String },
}

pub struct Store {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

impl Store {
    pub fn sqlite() -> Store {
        Store {
            dir: tempfile::tempdir().expect("a temporary directory"),
            backend: Backend::Sqlite,
        }
    }

    /// A PostgreSQL store with fresh database names; None (loudly) when
    /// PostgreSQL is unreachable and CI is not set.
    pub fn postgres() -> Option<Store> {
        let base = pg_base_url();
        let host = base
            .rsplit('@')
            .next()
            .unwrap_or("127.0.0.1:5432")
            .to_string();
        if std::net::TcpStream::connect(host.as_str()).is_err() {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL at {base} is unreachable and CI is set");
            }
            eprintln!("!!! SKIPPING the PostgreSQL CLI tests: {base} unreachable");
            return None;
        }
        let stem = format!("clm_test_cli_{}", uuid::Uuid::new_v4().simple());
        Some(Store {
            dir: tempfile::tempdir().expect("a temporary directory"),
            backend: Backend::Postgres {
                secure: format!("{base}/{stem}_secure"),
                core: format!("{base}/{stem}_core"),
            },
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn key_file(&self) -> PathBuf {
        self.path("master.key")
    }

    /// The environment of a `clm` run with the session of `config` (a
    /// directory name under the store: one per logged-in person).
    pub fn envs(&self, config: &str) -> Vec<(String, std::ffi::OsString)> {
        let mut envs: Vec<(String, std::ffi::OsString)> = Vec::new();
        for name in ["PATH", "LANG"] {
            if let Some(value) = std::env::var_os(name) {
                envs.push((name.into(), value));
            }
        }
        let mut set = |name: &str, value: std::ffi::OsString| envs.push((name.into(), value));
        set("HOME", self.dir.path().into());
        set("CLM_CONFIG_DIR", self.path(config).into());
        set("CLM_MASTER_KEY_FILE", self.key_file().into());
        set("CLM_OUTPUT", "json".into());
        set("CLM_MAX_CONNECTIONS", "2".into());
        match &self.backend {
            Backend::Sqlite => set("CLM_DATA_DIR", self.path("data").into()),
            Backend::Postgres { secure, core } => {
                set("CLM_SECURE_DATABASE_URL", secure.into());
                set("CLM_CORE_DATABASE_URL", core.into());
            }
        }
        envs
    }

    /// `clm` with this store's settings and the session of `config`.
    pub fn clm_as(&self, config: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clm"));
        command.env_clear().current_dir(self.dir.path());
        for (name, value) in self.envs(config) {
            command.env(name, value);
        }
        command
    }

    pub fn clm(&self) -> Command {
        self.clm_as("config")
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let Backend::Postgres { secure, core } = &self.backend else {
            return;
        };
        let names: Vec<String> = [secure, core]
            .iter()
            .filter_map(|url| url.rsplit('/').next().map(str::to_string))
            .collect();
        let base = pg_base_url();
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            use sqlx::Connection;
            let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{base}/postgres")).await
            else {
                return;
            };
            for name in names {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
            }
        });
    }
}

/// The stdout of a run that must succeed, as JSON.
pub fn ok_json(output: Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "clm failed ({:?}):\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "not JSON ({err}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The stderr of a run that must fail with `status`.
pub fn fails(output: Output, status: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(
        output.status.code(),
        Some(status),
        "expected exit {status}:\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Initializes the store with the administrator and logs in (session `config`).
pub fn init_and_login(store: &Store) {
    ok_json(
        store
            .clm()
            .args([
                "init",
                "--admin-email",
                "admin@example.com",
                "--password-stdin",
            ])
            .write_stdin(format!("{PASSWORD}\n"))
            .output()
            .unwrap(),
    );
    ok_json(
        store
            .clm()
            .args(["login", "-u", "admin", "--password-stdin"])
            .write_stdin(format!("{PASSWORD}\n"))
            .output()
            .unwrap(),
    );
}

/// A CA and `n` leaves it signed, as one PEM bundle, made outside any store.
pub fn foreign_bundle(n: usize, prefix: &str) -> String {
    foreign_bundle_and_key(n, prefix).0
}

/// [`foreign_bundle`] and the leaves' (shared) private key, PKCS#8 PEM.
pub fn foreign_bundle_and_key(n: usize, prefix: &str) -> (String, String) {
    use chrono::{Duration, Utc};
    use clm::crypto::{
        CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, PemLabel,
        build_certificate, der_to_pem, parse_certificate_der,
    };
    use clm::model::{CertificateKind, SubjectAlternativeName};
    let now = Utc::now();
    let ca_key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let ca_template = CertificateTemplate::new(
        DistinguishedName::common_name(format!("{prefix} Import CA")),
        CertificateKind::RootCa,
        now - Duration::days(1),
        now + Duration::days(3650),
    );
    let ca_der = build_certificate(
        &ca_template,
        &ca_key.public_key_der(),
        Issuer::SelfSigned(&ca_key),
    )
    .unwrap();
    let ca = parse_certificate_der(&ca_der).unwrap();
    let leaf_key = KeyPair::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let mut pem = der_to_pem(PemLabel::Certificate, &ca_der);
    for i in 0..n {
        let name = format!("host{i}.{prefix}.example");
        let mut template = CertificateTemplate::new(
            DistinguishedName::common_name(&name),
            CertificateKind::TlsServer,
            now - Duration::hours(1),
            now + Duration::days(90),
        );
        template.subject_alternative_names = vec![SubjectAlternativeName::Dns(name)];
        let der = build_certificate(
            &template,
            &leaf_key.public_key_der(),
            Issuer::Ca {
                certificate: &ca,
                key: &ca_key,
            },
        )
        .unwrap();
        pem.push_str(&der_to_pem(PemLabel::Certificate, &der));
    }
    (pem, leaf_key.to_pkcs8_pem().expose().to_string())
}
