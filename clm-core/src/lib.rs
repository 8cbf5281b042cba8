//! # clm — embeddable certificate lifecycle management
//!
//! `clm` keeps an organization's X.509 certificates, their sealed private keys,
//! CSRs, revocations and CRLs, policies, approval workflows and two append-only
//! audit trails, on SQLite (embedded default) or PostgreSQL (reference backend).
//!
//! ```no_run
//! # async fn demo() -> clm::Result<()> {
//! let clm = clm::Clm::open(clm::ClmConfig::sqlite("./clm-data")).await?;
//! clm.close().await;
//! # Ok(()) }
//! ```

pub mod config;
pub mod db;
pub mod error;
pub mod model;
pub mod store;

pub use config::ClmConfig;
pub use error::{Error, ErrorCode, Result};

use std::sync::Arc;

use db::Databases;

/// The handle a host keeps: both databases, opened and migrated.
#[derive(Clone)]
pub struct Clm {
    inner: Arc<Inner>,
}

struct Inner {
    databases: Databases,
    config: ClmConfig,
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
    pub async fn open(config: ClmConfig) -> Result<Clm> {
        let databases = db::connect(&config.database, config.pool).await?;
        Ok(Clm {
            inner: Arc::new(Inner { databases, config }),
        })
    }

    /// Closes every pool. Later calls fail with [`Error::Closed`].
    pub async fn close(&self) {
        self.inner.databases.close().await;
    }

    pub fn is_closed(&self) -> bool {
        self.inner.databases.secure.is_closed()
    }

    /// The open databases, for repository-level access.
    pub fn databases(&self) -> &Databases {
        &self.inner.databases
    }

    pub fn config(&self) -> &ClmConfig {
        &self.inner.config
    }
}
