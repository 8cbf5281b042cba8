#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// A named point on a write path where the fault-injection tests (feature
/// `failpoints`, tests/faults/) make the write fail or stop the process.
/// It is `Err` (a database error naming the point) when a test set the
/// point to `return`, runs a test's callback (an abort) when one is set,
/// and is `Ok(())` otherwise. Without the feature it is `Ok(())`: nothing
/// is compiled in.
macro_rules! failpoint {
    ($name:literal) => {{
        #[cfg(feature = "failpoints")]
        fn reached() -> $crate::Result<()> {
            fail::fail_point!($name, |_| Err($crate::Error::database(concat!(
                "injected fault at failpoint ",
                $name
            ))));
            Ok(())
        }
        #[cfg(not(feature = "failpoints"))]
        fn reached() -> $crate::Result<()> {
            Ok(())
        }
        reached()
    }};
}

pub mod api;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod keyring;
pub mod logging;
pub mod model;
pub mod service;
// Property tests of the round trips (names, serials, SANs, envelopes, cursors).
#[cfg(test)]
mod round_trip_tests;
// The repositories go around authorization and audit: not for hosts. The
// `unstable-internals` feature opens them (and `Clm::databases`) to the
// store-level tests and benches; nothing about them is stable.
#[cfg(feature = "unstable-internals")]
#[doc(hidden)]
pub mod store;
#[cfg(not(feature = "unstable-internals"))]
#[allow(dead_code)] // parts serve only the tests and benches of the feature
pub(crate) mod store;

/// Paging, the filters of listings and the audit trails' names: the parts of
/// the store that the services' signatures use, for hosts (the store itself
/// is internal).
pub mod query {
    pub use crate::store::audit::{AuditFilter, AuditLogKind};
    pub use crate::store::policies::PolicyFilter;
    pub use crate::store::users::UserFilter;
    pub use crate::store::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest};
}

pub use config::{AuditRetention, ClmConfig, OcspSettings, SecuritySettings};
pub use error::{Error, ErrorCode, Result};
pub use keyring::{KeyProvider, LocalMasterKey, MasterKeySource};
pub use query::{Page, PageRequest};
pub use service::{Actor, ActorKind, Grants};

use std::sync::Arc;

use db::Databases;
use keyring::KeyRing;

/// The handle a host keeps: both databases, opened and migrated.
#[derive(Clone)]
pub struct Clm {
    inner: Arc<Inner>,
}

struct Inner {
    databases: Databases,
    config: ClmConfig,
    keyring: KeyRing,
    /// Bounds CPU-heavy work moved off the async executor.
    cpu_jobs: tokio::sync::Semaphore,
    issuers: service::certificates::IssuerCache,
    policies: service::policies::PolicyCache,
    group_commit: service::certificates::GroupCommit,
    ocsp: service::ocsp::OcspState,
}

impl std::fmt::Debug for Clm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clm")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Clm {
    /// Opens (creating when missing) both databases and applies the migrations.
    /// A wrong master key fails here with a Configuration error.
    #[tracing::instrument(skip_all, err(level = "info"))]
    pub async fn open(mut config: ClmConfig) -> Result<Clm> {
        config.security.validate()?;
        config.audit_retention.validate()?;
        if let Some(url) = &config.public_base_url {
            config.public_base_url = Some(config::check_public_base_url("public_base_url", url)?);
        }
        let source = config.master_key.clone().ok_or_else(|| {
            Error::Configuration(
                "no master key: set ClmConfig::master_key, CLM_MASTER_KEY (base64 of 32 bytes) or CLM_MASTER_KEY_FILE".into(),
            )
        })?;
        let (provider, _created) = source.resolve()?;
        let databases = db::connect(&config.database, &config.database_tls, config.pool).await?;
        let keyring = match KeyRing::load(&databases.secure, provider).await {
            Ok(keyring) => keyring,
            Err(err) => {
                databases.close().await;
                return Err(err);
            }
        };
        let cpu_jobs = tokio::sync::Semaphore::new(config.security.cpu_jobs.max(1));
        let issuers = service::cache::TtlCache::new(config.cache_ttl);
        let policies = service::cache::TtlCache::new(config.cache_ttl);
        let ocsp = service::ocsp::OcspState::new(config.cache_ttl);
        let clm = Clm {
            inner: Arc::new(Inner {
                databases,
                config,
                keyring,
                cpu_jobs,
                issuers,
                policies,
                group_commit: Default::default(),
                ocsp,
            }),
        };
        clm.seed_builtin_roles().await?;
        clm.seed_default_workflow().await?;
        Ok(clm)
    }

    pub(crate) fn issuers(&self) -> &service::certificates::IssuerCache {
        &self.inner.issuers
    }

    pub(crate) fn policies(&self) -> &service::policies::PolicyCache {
        &self.inner.policies
    }

    pub(crate) fn group_commit(&self) -> &service::certificates::GroupCommit {
        &self.inner.group_commit
    }

    pub(crate) fn ocsp_state(&self) -> &service::ocsp::OcspState {
        &self.inner.ocsp
    }

    pub(crate) fn keyring(&self) -> &KeyRing {
        &self.inner.keyring
    }

    /// A permit for one CPU-heavy job off the executor.
    pub(crate) async fn cpu_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.inner
            .cpu_jobs
            .acquire()
            .await
            .map_err(|_| Error::Closed)
    }

    /// Runs CPU-heavy work (key generation, signing, hashing, parsing) off
    /// the async executor, bounded by the CPU job semaphore.
    pub(crate) async fn run_cpu<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let _permit = self.cpu_permit().await?;
        tokio::task::spawn_blocking(job).await?
    }

    /// The host application's own actor (bootstrap, jobs): every permission.
    pub fn system_actor(&self) -> Actor {
        Actor::system()
    }

    /// Closes every pool. Later calls fail with [`Error::Closed`].
    #[tracing::instrument(skip_all)]
    pub async fn close(&self) {
        self.inner.cpu_jobs.close();
        self.inner.databases.close().await;
    }

    /// Whether [`Clm::close`] has been called on this handle or a clone of it.
    pub fn is_closed(&self) -> bool {
        self.inner.databases.secure.is_closed()
    }

    /// The open databases, for repository-level access: tests and benches
    /// only (`unstable-internals`), as it goes around authorization and audit.
    #[cfg(feature = "unstable-internals")]
    #[doc(hidden)]
    pub fn databases(&self) -> &Databases {
        &self.inner.databases
    }

    #[cfg(not(feature = "unstable-internals"))]
    pub(crate) fn databases(&self) -> &Databases {
        &self.inner.databases
    }

    /// The configuration the handle was opened with.
    pub fn config(&self) -> &ClmConfig {
        &self.inner.config
    }
}

#[cfg(test)]
mod readme_tests {
    /// The repository's README shows the crate README's program (the one
    /// compiled and run as this crate's doctest): the two must not drift.
    #[test]
    fn the_repository_readme_shows_the_doctested_program() {
        let rust_block = |text: &str| {
            let start = text.find("```rust\n").map(|at| at + "```rust\n".len());
            start.and_then(|start| {
                text[start..]
                    .find("```")
                    .map(|end| text[start..start + end].to_string())
            })
        };
        let crate_readme = rust_block(include_str!("../README.md"));
        let top = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        // The published crate has no repository README around it.
        let Ok(top) = std::fs::read_to_string(top) else {
            return;
        };
        assert!(
            crate_readme.is_some(),
            "clm-core/README.md has no rust block"
        );
        assert_eq!(
            rust_block(&top),
            crate_readme,
            "README.md's Rust program differs from clm-core/README.md's"
        );
    }
}
