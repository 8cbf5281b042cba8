//! Host configuration: where the data lives, TLS to PostgreSQL, pool sizes
//! and the master key. Built in code or from `CLM_*` environment variables:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `CLM_SECURE_DATABASE_URL`, `CLM_CORE_DATABASE_URL` | the two PostgreSQL databases (both or neither) |
//! | `CLM_SECURE_REPLICA_URL`, `CLM_CORE_REPLICA_URL` | optional read replicas for reporting |
//! | `CLM_DATA_DIR` | SQLite: the directory of `secure.db` and `core.db` (when no PostgreSQL URL is set) |
//! | `CLM_DATABASE_SSLMODE` | `disable`, `prefer`, `require`, `verify-ca` or `verify-full` |
//! | `CLM_DATABASE_SSLROOTCERT` | PEM file of the CA(s) the server's certificate must chain to |
//! | `CLM_DATABASE_SSLCERT`, `CLM_DATABASE_SSLKEY` | client certificate and its key (PEM) for servers that ask for one |
//! | `CLM_MASTER_KEY` / `CLM_MASTER_KEY_FILE` | the master key, base64 of 32 bytes, or a file holding it |
//! | `CLM_MAX_CONNECTIONS` | pool size per database |
//! | `CLM_CACHE_TTL_MS` | see [`ClmConfig::cache_ttl`] |
//! | `CLM_OCSP_SIGN_WITH_CA_KEY` | see [`OcspSettings::sign_with_ca_key`] |
//! | `CLM_PUBLIC_BASE_URL` | see [`ClmConfig::public_base_url`] |
//!
//! The `CLM_DATABASE_SSL*` settings apply to every PostgreSQL URL and
//! override the same parameters written in the URLs (see [`DatabaseTls`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::db::{DatabaseConfig, PoolSettings};
pub use crate::db::{DatabaseTls, SslMode};
use crate::keyring::MasterKeySource;
use crate::{Error, Result};

/// What [`Clm::open`](crate::Clm::open) needs: the databases, pool
/// sizes, the master key and the security limits. Start from
/// [`ClmConfig::sqlite`], [`ClmConfig::postgres`] or [`ClmConfig::from_env`].
#[derive(Debug, Clone)]
pub struct ClmConfig {
    /// Where the two databases (secure and core) live.
    pub database: DatabaseConfig,
    /// TLS to PostgreSQL (every URL); must stay empty for SQLite.
    pub database_tls: DatabaseTls,
    /// Connections per database pool and how long to wait for one.
    pub pool: PoolSettings,
    /// Required: the key that wraps the data-encryption keys.
    pub master_key: Option<MasterKeySource>,
    /// Login, lockout and session limits, checked when the handle opens.
    pub security: SecuritySettings,
    /// How long issuers (with their opened keys) and policies stay cached in
    /// this process. Changes made through this handle apply at once; changes
    /// made by another process sharing the databases within this time.
    /// Zero disables the caches. Default one second.
    pub cache_ttl: Duration,
    /// How long audit rows stay in the databases, and where
    /// [`crate::Clm::run_lifecycle`] archives older ones.
    pub audit_retention: AuditRetention,
    /// How the OCSP responder signs ([`crate::Clm::ocsp_respond`]).
    pub ocsp: OcspSettings,
    /// Where the host publishes CRLs, the OCSP responder and CA
    /// certificates (`https://pki.example.com`, http allowed; no query or
    /// fragment). A CA created without explicit URLs writes URLs derived
    /// from it into what it issues: `B/crl/<CA id>.crl` (a partition
    /// `B/crl/<CA id>/<n>.crl`, deltas `.../delta.crl`), `B/ocsp` and
    /// `B/ca/<CA id>.crt`. Checked when the handle opens.
    pub public_base_url: Option<String>,
}

/// How [`crate::Clm::ocsp_respond`] signs. By default each CA answers
/// through a delegated responder certificate (id-kp-OCSPSigning,
/// id-pkix-ocsp-nocheck, 30 days) that clm issues, seals and renews, so the
/// CA key signs once a few weeks rather than on every fresh response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OcspSettings {
    /// Sign responses with the CA's own key instead (RFC 6960 §4.2.2.2's
    /// first case): no responder certificate, every fresh response a use of
    /// the CA key. `CLM_OCSP_SIGN_WITH_CA_KEY=true`.
    pub sign_with_ca_key: bool,
}

/// The checked form of [`ClmConfig::public_base_url`]: an absolute http(s)
/// URL with a host and no query, fragment or user info, without its
/// trailing slashes.
pub fn check_public_base_url(field: &str, url: &str) -> Result<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| Error::invalid(field, "must start with https:// or http://"))?;
    if url.contains(['?', '#']) {
        return Err(Error::invalid(field, "must not carry a query or fragment"));
    }
    if url.chars().any(|c| !c.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            "must be ASCII without spaces (percent-encode or use an A-label host)",
        ));
    }
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(Error::invalid(
            field,
            "must name a host (and no user information)",
        ));
    }
    if url.len() > 200 {
        return Err(Error::invalid(field, "must be at most 200 characters"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Audit retention: [`crate::Clm::run_lifecycle`] moves audit rows older than
/// `retention_days` out of both databases into JSON-lines files in
/// `archive_dir` (see [`crate::Clm::archive_audit_events`]), keeping both
/// chains verifiable. Without an `archive_dir` nothing is archived (an audit
/// row is never removed without being written elsewhere first) and the
/// lifecycle report says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRetention {
    /// Days an audit row stays in the database: 90 to 365 (the schema's
    /// rule: archive after 90 to 365 days). Default 365.
    pub retention_days: u32,
    /// Where the archive files go (created when missing). None: no archiving.
    pub archive_dir: Option<PathBuf>,
}

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention {
            retention_days: AuditRetention::DEFAULT_DAYS,
            archive_dir: None,
        }
    }
}

impl AuditRetention {
    /// Shortest retention accepted: auditors get at least a quarter online.
    pub const MIN_DAYS: u32 = 90;
    /// Longest retention accepted: older rows belong in the archive.
    pub const MAX_DAYS: u32 = 365;
    /// Default retention.
    pub const DEFAULT_DAYS: u32 = 365;

    /// Keeps rows `retention_days` and archives older ones into `archive_dir`.
    pub fn archive_to(retention_days: u32, archive_dir: impl Into<PathBuf>) -> Self {
        AuditRetention {
            retention_days,
            archive_dir: Some(archive_dir.into()),
        }
    }

    /// The retention must be within [`Self::MIN_DAYS`]..=[`Self::MAX_DAYS`].
    pub fn validate(&self) -> Result<()> {
        if !(Self::MIN_DAYS..=Self::MAX_DAYS).contains(&self.retention_days) {
            return Err(Error::invalid(
                "audit_retention.retention_days",
                format!(
                    "must be {} to {} days (the schema's rule: archive audit rows after 90 to 365 days), got {}",
                    Self::MIN_DAYS,
                    Self::MAX_DAYS,
                    self.retention_days
                ),
            ));
        }
        if self
            .archive_dir
            .as_ref()
            .is_some_and(|dir| dir.as_os_str().is_empty())
        {
            return Err(Error::invalid(
                "audit_retention.archive_dir",
                "is empty: give a directory, or none to keep every audit row",
            ));
        }
        Ok(())
    }
}

/// Default [`ClmConfig::cache_ttl`].
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(1);

/// Login, lockout and session limits.
#[derive(Debug, Clone, Copy)]
pub struct SecuritySettings {
    /// Consecutive failed logins before the account locks.
    pub max_failed_logins: u32,
    /// How long a lockout lasts unless an administrator lifts it.
    pub lockout_seconds: u64,
    /// Absolute session lifetime.
    pub session_ttl_seconds: u64,
    /// A session unused this long expires.
    pub session_idle_seconds: u64,
    /// Concurrent CPU-heavy jobs (password hashing, RSA key generation).
    pub cpu_jobs: usize,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            max_failed_logins: 5,
            lockout_seconds: 15 * 60,
            session_ttl_seconds: 12 * 60 * 60,
            session_idle_seconds: 30 * 60,
            cpu_jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

impl SecuritySettings {
    /// Longest lockout, session lifetime or idle timeout accepted (a year):
    /// every one of them feeds time arithmetic and a stored 32-bit column.
    pub const MAX_SECONDS: u64 = 366 * 24 * 60 * 60;

    /// Range-checks every limit before the first login uses it.
    pub fn validate(&self) -> crate::Result<()> {
        let seconds = [
            ("security.lockout_seconds", self.lockout_seconds),
            ("security.session_ttl_seconds", self.session_ttl_seconds),
            ("security.session_idle_seconds", self.session_idle_seconds),
        ];
        for (field, value) in seconds {
            if value == 0 || value > Self::MAX_SECONDS {
                return Err(crate::Error::invalid(
                    field,
                    format!("must be 1 to {} seconds, got {value}", Self::MAX_SECONDS),
                ));
            }
        }
        if !(1..=1000).contains(&self.max_failed_logins) {
            return Err(crate::Error::invalid(
                "security.max_failed_logins",
                format!("must be 1 to 1000, got {}", self.max_failed_logins),
            ));
        }
        Ok(())
    }

    /// A validated number of seconds as a duration.
    pub(crate) fn duration(seconds: u64) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(seconds.min(Self::MAX_SECONDS)).unwrap_or(0))
    }
}

impl ClmConfig {
    /// Embedded SQLite: `secure.db` and `core.db` in `data_dir`.
    pub fn sqlite(data_dir: impl Into<PathBuf>) -> Self {
        ClmConfig {
            database: DatabaseConfig::Sqlite {
                data_dir: data_dir.into(),
            },
            database_tls: DatabaseTls::default(),
            pool: PoolSettings::default(),
            master_key: None,
            security: SecuritySettings::default(),
            cache_ttl: DEFAULT_CACHE_TTL,
            audit_retention: AuditRetention::default(),
            ocsp: OcspSettings::default(),
            public_base_url: None,
        }
    }

    /// Two PostgreSQL databases (e.g. `clm_secure_db` and `clm_core_db`).
    pub fn postgres(secure_url: impl Into<String>, core_url: impl Into<String>) -> Self {
        ClmConfig {
            database: DatabaseConfig::Postgres {
                secure_url: secure_url.into(),
                core_url: core_url.into(),
                secure_replica_url: None,
                core_replica_url: None,
            },
            database_tls: DatabaseTls::default(),
            pool: PoolSettings::default(),
            master_key: None,
            security: SecuritySettings::default(),
            cache_ttl: DEFAULT_CACHE_TTL,
            audit_retention: AuditRetention::default(),
            ocsp: OcspSettings::default(),
            public_base_url: None,
        }
    }

    /// Sets [`ClmConfig::master_key`].
    pub fn with_master_key(mut self, source: MasterKeySource) -> Self {
        self.master_key = Some(source);
        self
    }

    /// Replaces the login, lockout and session limits.
    pub fn with_security(mut self, security: SecuritySettings) -> Self {
        self.security = security;
        self
    }

    /// Routes read-only reporting queries (views, lists) to replicas.
    pub fn with_read_replicas(
        mut self,
        secure_replica: impl Into<String>,
        core_replica: impl Into<String>,
    ) -> Self {
        if let DatabaseConfig::Postgres {
            secure_replica_url,
            core_replica_url,
            ..
        } = &mut self.database
        {
            *secure_replica_url = Some(secure_replica.into());
            *core_replica_url = Some(core_replica.into());
        }
        self
    }

    /// TLS to PostgreSQL: see [`DatabaseTls`].
    pub fn with_database_tls(mut self, tls: DatabaseTls) -> Self {
        self.database_tls = tls;
        self
    }

    /// Most connections in each primary database's pool (at least 1,
    /// checked when the handle opens).
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.pool.max_connections = max;
        self
    }

    /// See [`AuditRetention`].
    pub fn with_audit_retention(mut self, retention: AuditRetention) -> Self {
        self.audit_retention = retention;
        self
    }

    /// See [`PoolSettings::slow_statement_threshold`].
    pub fn with_slow_statement_threshold(mut self, threshold: Duration) -> Self {
        self.pool.slow_statement_threshold = threshold;
        self
    }

    /// See [`ClmConfig::ocsp`].
    pub fn with_ocsp(mut self, ocsp: OcspSettings) -> Self {
        self.ocsp = ocsp;
        self
    }

    /// See [`ClmConfig::public_base_url`].
    pub fn with_public_base_url(mut self, url: impl Into<String>) -> Self {
        self.public_base_url = Some(url.into());
        self
    }

    /// See [`ClmConfig::cache_ttl`].
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// `sqlite://DIR` or a directory path opens SQLite.
    pub fn from_location(location: &str) -> Result<Self> {
        let location = location.trim();
        if location.is_empty() {
            return Err(Error::invalid("location", "is empty"));
        }
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            return Err(Error::invalid(
                "location",
                "PostgreSQL needs two URLs (secure and core); use ClmConfig::postgres",
            ));
        }
        let dir = location.strip_prefix("sqlite://").unwrap_or(location);
        Ok(ClmConfig::sqlite(dir))
    }

    /// Reads `CLM_SECURE_DATABASE_URL` + `CLM_CORE_DATABASE_URL` (PostgreSQL,
    /// with optional `CLM_SECURE_REPLICA_URL`/`CLM_CORE_REPLICA_URL` and
    /// `CLM_DATABASE_SSLMODE`, `CLM_DATABASE_SSLROOTCERT`,
    /// `CLM_DATABASE_SSLCERT`, `CLM_DATABASE_SSLKEY`), else `CLM_DATA_DIR`
    /// (SQLite), plus `CLM_MASTER_KEY` (base64) or `CLM_MASTER_KEY_FILE`,
    /// `CLM_MAX_CONNECTIONS`, `CLM_CACHE_TTL_MS`, `CLM_OCSP_SIGN_WITH_CA_KEY`,
    /// `CLM_AUDIT_RETENTION_DAYS` and `CLM_AUDIT_ARCHIVE_DIR`
    /// ([`AuditRetention`]), `CLM_PUBLIC_BASE_URL`, `CLM_SLOW_STATEMENT_MS` (the
    /// table in this module's documentation).
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`Self::from_env`] over any variable source (testable without touching the process environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut config = match (var("CLM_SECURE_DATABASE_URL"), var("CLM_CORE_DATABASE_URL")) {
            (Some(secure), Some(core)) => {
                let mut config = ClmConfig::postgres(secure, core);
                if let DatabaseConfig::Postgres {
                    secure_replica_url,
                    core_replica_url,
                    ..
                } = &mut config.database
                {
                    *secure_replica_url = var("CLM_SECURE_REPLICA_URL");
                    *core_replica_url = var("CLM_CORE_REPLICA_URL");
                }
                config
            }
            (Some(_), None) => {
                return Err(Error::Configuration(
                    "CLM_SECURE_DATABASE_URL is set but CLM_CORE_DATABASE_URL is not".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(Error::Configuration(
                    "CLM_CORE_DATABASE_URL is set but CLM_SECURE_DATABASE_URL is not".into(),
                ));
            }
            (None, None) => match var("CLM_DATA_DIR") {
                Some(dir) => ClmConfig::sqlite(dir),
                None => {
                    return Err(Error::Configuration(
                        "set CLM_DATA_DIR (SQLite) or CLM_SECURE_DATABASE_URL and CLM_CORE_DATABASE_URL (PostgreSQL)"
                            .into(),
                    ));
                }
            },
        };
        config.database_tls = DatabaseTls {
            sslmode: var("CLM_DATABASE_SSLMODE")
                .map(|mode| SslMode::parse("CLM_DATABASE_SSLMODE", &mode))
                .transpose()?,
            sslrootcert: var("CLM_DATABASE_SSLROOTCERT").map(PathBuf::from),
            sslcert: var("CLM_DATABASE_SSLCERT").map(PathBuf::from),
            sslkey: var("CLM_DATABASE_SSLKEY").map(PathBuf::from),
        };
        config.master_key = match (var("CLM_MASTER_KEY"), var("CLM_MASTER_KEY_FILE")) {
            (Some(key), _) => Some(MasterKeySource::Base64(key)),
            (None, Some(path)) => Some(MasterKeySource::File(PathBuf::from(path))),
            (None, None) => None,
        };
        if let Some(max) = var("CLM_MAX_CONNECTIONS") {
            config.pool.max_connections = max.parse().map_err(|_| {
                Error::Configuration(format!("CLM_MAX_CONNECTIONS={max:?} is not a number"))
            })?;
        }
        if let Some(ms) = var("CLM_CACHE_TTL_MS") {
            config.cache_ttl = Duration::from_millis(ms.parse().map_err(|_| {
                Error::Configuration(format!(
                    "CLM_CACHE_TTL_MS={ms:?} is not a number of milliseconds"
                ))
            })?);
        }
        if let Some(flag) = var("CLM_OCSP_SIGN_WITH_CA_KEY") {
            config.ocsp.sign_with_ca_key = match flag.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(Error::Configuration(format!(
                        "CLM_OCSP_SIGN_WITH_CA_KEY={flag:?} is not true or false"
                    )));
                }
            };
        }
        if let Some(ms) = var("CLM_SLOW_STATEMENT_MS") {
            config.pool.slow_statement_threshold =
                Duration::from_millis(ms.parse().map_err(|_| {
                    Error::Configuration(format!(
                        "CLM_SLOW_STATEMENT_MS={ms:?} is not a number of milliseconds"
                    ))
                })?);
        }
        if let Some(days) = var("CLM_AUDIT_RETENTION_DAYS") {
            config.audit_retention.retention_days = days.parse().map_err(|_| {
                Error::Configuration(format!(
                    "CLM_AUDIT_RETENTION_DAYS={days:?} is not a number of days"
                ))
            })?;
        }
        config.audit_retention.archive_dir = var("CLM_AUDIT_ARCHIVE_DIR").map(PathBuf::from);
        if let Some(url) = var("CLM_PUBLIC_BASE_URL") {
            config.public_base_url = Some(
                check_public_base_url("CLM_PUBLIC_BASE_URL", &url)
                    .map_err(|err| Error::Configuration(err.to_string()))?,
            );
        }
        config.audit_retention.validate().map_err(|err| {
            Error::Configuration(format!(
                "CLM_AUDIT_RETENTION_DAYS / CLM_AUDIT_ARCHIVE_DIR: {err}"
            ))
        })?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn postgres_from_variables_with_replicas_and_pool_size() {
        let config = ClmConfig::from_vars(vars(&[
            (
                "CLM_SECURE_DATABASE_URL",
                "postgres://u:secret@db/clm_secure_db",
            ),
            (
                "CLM_CORE_DATABASE_URL",
                "postgres://u:secret@db/clm_core_db",
            ),
            (
                "CLM_CORE_REPLICA_URL",
                "postgres://u:secret@replica/clm_core_db",
            ),
            ("CLM_MAX_CONNECTIONS", "7"),
            ("CLM_MASTER_KEY", "AAAA"),
        ]))
        .unwrap();
        match &config.database {
            DatabaseConfig::Postgres {
                core_replica_url,
                secure_replica_url,
                ..
            } => {
                assert_eq!(
                    core_replica_url.as_deref(),
                    Some("postgres://u:secret@replica/clm_core_db")
                );
                assert_eq!(secure_replica_url, &None);
            }
            other => panic!("expected PostgreSQL, got {other:?}"),
        }
        assert_eq!(config.pool.max_connections, 7);
        assert!(matches!(
            config.master_key,
            Some(MasterKeySource::Base64(_))
        ));
        // Passwords and the master key never print.
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("secret") && !printed.contains("AAAA"),
            "{printed}"
        );
    }

    #[test]
    fn sqlite_from_data_dir_and_clear_errors() {
        let config = ClmConfig::from_vars(vars(&[("CLM_DATA_DIR", "/tmp/clm")])).unwrap();
        assert!(matches!(config.database, DatabaseConfig::Sqlite { .. }));
        let half = ClmConfig::from_vars(vars(&[("CLM_SECURE_DATABASE_URL", "postgres://x/a")]))
            .unwrap_err();
        assert!(half.to_string().contains("CLM_CORE_DATABASE_URL"), "{half}");
        let none = ClmConfig::from_vars(vars(&[])).unwrap_err();
        assert!(none.to_string().contains("CLM_DATA_DIR"), "{none}");
        let bad = ClmConfig::from_vars(vars(&[
            ("CLM_DATA_DIR", "/tmp/clm"),
            ("CLM_MAX_CONNECTIONS", "many"),
        ]))
        .unwrap_err();
        assert!(bad.to_string().contains("CLM_MAX_CONNECTIONS"), "{bad}");
    }

    #[test]
    fn database_tls_from_variables_and_a_named_error_for_a_bad_mode() {
        let urls = [
            ("CLM_SECURE_DATABASE_URL", "postgres://u@db/clm_secure_db"),
            ("CLM_CORE_DATABASE_URL", "postgres://u@db/clm_core_db"),
        ];
        let config = ClmConfig::from_vars(vars(&[
            urls[0],
            urls[1],
            ("CLM_DATABASE_SSLMODE", "Verify-Full"),
            ("CLM_DATABASE_SSLROOTCERT", "/etc/clm/db-ca.pem"),
            ("CLM_DATABASE_SSLCERT", "/etc/clm/db-client.pem"),
            ("CLM_DATABASE_SSLKEY", "/etc/clm/db-client.key"),
        ]))
        .unwrap();
        assert_eq!(
            config.database_tls,
            DatabaseTls {
                sslmode: Some(SslMode::VerifyFull),
                sslrootcert: Some("/etc/clm/db-ca.pem".into()),
                sslcert: Some("/etc/clm/db-client.pem".into()),
                sslkey: Some("/etc/clm/db-client.key".into()),
            }
        );
        let none = ClmConfig::from_vars(vars(&urls)).unwrap();
        assert!(none.database_tls.is_empty());
        let bad = ClmConfig::from_vars(vars(&[
            urls[0],
            urls[1],
            ("CLM_DATABASE_SSLMODE", "strict"),
        ]))
        .unwrap_err();
        let text = bad.to_string();
        assert!(
            text.contains("CLM_DATABASE_SSLMODE") && text.contains("verify-full"),
            "{text}"
        );
    }

    #[test]
    fn cache_ttl_defaults_to_a_second_and_reads_milliseconds() {
        let dir = ("CLM_DATA_DIR", "/tmp/clm");
        let config = ClmConfig::from_vars(vars(&[dir])).unwrap();
        assert_eq!(config.cache_ttl, DEFAULT_CACHE_TTL);
        let config = ClmConfig::from_vars(vars(&[dir, ("CLM_CACHE_TTL_MS", "250")])).unwrap();
        assert_eq!(config.cache_ttl, Duration::from_millis(250));
        let off = ClmConfig::from_vars(vars(&[dir, ("CLM_CACHE_TTL_MS", "0")])).unwrap();
        assert!(off.cache_ttl.is_zero());
        let bad = ClmConfig::from_vars(vars(&[dir, ("CLM_CACHE_TTL_MS", "1s")])).unwrap_err();
        assert!(bad.to_string().contains("CLM_CACHE_TTL_MS"), "{bad}");
    }

    #[test]
    fn audit_retention_defaults_to_a_year_without_archiving_and_reads_variables() {
        let dir = ("CLM_DATA_DIR", "/tmp/clm");
        let config = ClmConfig::from_vars(vars(&[dir])).unwrap();
        assert_eq!(config.audit_retention, AuditRetention::default());
        assert_eq!(config.audit_retention.retention_days, 365);
        assert_eq!(config.audit_retention.archive_dir, None);
        let config = ClmConfig::from_vars(vars(&[
            dir,
            ("CLM_AUDIT_RETENTION_DAYS", "120"),
            ("CLM_AUDIT_ARCHIVE_DIR", "/var/lib/clm/audit"),
        ]))
        .unwrap();
        assert_eq!(
            config.audit_retention,
            AuditRetention::archive_to(120, "/var/lib/clm/audit")
        );
        for (days, named) in [
            ("89", "audit_retention.retention_days"),
            ("366", "audit_retention.retention_days"),
            ("a year", "CLM_AUDIT_RETENTION_DAYS"),
        ] {
            let err =
                ClmConfig::from_vars(vars(&[dir, ("CLM_AUDIT_RETENTION_DAYS", days)])).unwrap_err();
            assert!(err.to_string().contains(named), "{days}: {err}");
            assert!(
                err.to_string().contains("CLM_AUDIT_RETENTION_DAYS"),
                "{err}"
            );
        }
        for days in [90, 365] {
            let retention = AuditRetention {
                retention_days: days,
                archive_dir: None,
            };
            assert!(retention.validate().is_ok(), "{days}");
        }
    }

    #[test]
    fn slow_statement_threshold_defaults_to_a_second_and_reads_milliseconds() {
        let dir = ("CLM_DATA_DIR", "/tmp/clm");
        let config = ClmConfig::from_vars(vars(&[dir])).unwrap();
        assert_eq!(
            config.pool.slow_statement_threshold,
            crate::db::DEFAULT_SLOW_STATEMENT_THRESHOLD
        );
        let config = ClmConfig::from_vars(vars(&[dir, ("CLM_SLOW_STATEMENT_MS", "250")])).unwrap();
        assert_eq!(
            config.pool.slow_statement_threshold,
            Duration::from_millis(250)
        );
        let bad =
            ClmConfig::from_vars(vars(&[dir, ("CLM_SLOW_STATEMENT_MS", "slow")])).unwrap_err();
        assert!(bad.to_string().contains("CLM_SLOW_STATEMENT_MS"), "{bad}");
    }
}
