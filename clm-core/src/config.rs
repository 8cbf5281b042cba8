//! Host configuration: where the data lives, pool sizes, and (later) the master
//! key. Built in code or from `CLM_*` environment variables.

use std::path::PathBuf;
use std::time::Duration;

use crate::db::{DatabaseConfig, PoolSettings};
use crate::keyring::MasterKeySource;
use crate::{Error, Result};

/// What [`Clm::open`](crate::Clm::open) needs: the databases, pool
/// sizes, the master key and the security limits. Start from
/// [`ClmConfig::sqlite`], [`ClmConfig::postgres`] or [`ClmConfig::from_env`].
#[derive(Debug, Clone)]
pub struct ClmConfig {
    /// Where the two databases (secure and core) live.
    pub database: DatabaseConfig,
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
            pool: PoolSettings::default(),
            master_key: None,
            security: SecuritySettings::default(),
            cache_ttl: DEFAULT_CACHE_TTL,
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
            pool: PoolSettings::default(),
            master_key: None,
            security: SecuritySettings::default(),
            cache_ttl: DEFAULT_CACHE_TTL,
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

    /// Most connections in each primary database's pool (at least 1,
    /// checked when the handle opens).
    pub fn with_max_connections(mut self, max: u32) -> Self {
        self.pool.max_connections = max;
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
    /// with optional `CLM_SECURE_REPLICA_URL`/`CLM_CORE_REPLICA_URL`), else
    /// `CLM_DATA_DIR` (SQLite), plus `CLM_MASTER_KEY` (base64) or
    /// `CLM_MASTER_KEY_FILE`, `CLM_MAX_CONNECTIONS` and `CLM_CACHE_TTL_MS`.
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
}
