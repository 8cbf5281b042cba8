//! What the fuzz targets share: a SQLite store opened once per fuzzing
//! process, and the rule every target checks on the errors it gets.
//!
//! The store lives in a directory under `TMPDIR`; `scripts/fuzz` points
//! `TMPDIR` at a directory of its own and removes it afterwards (libFuzzer
//! ends the process with `exit`, so nothing here gets to clean up).

use std::path::PathBuf;

use base64::Engine as _;
use clm::{Clm, ClmConfig, ErrorCode, MasterKeySource};

/// A store opened for the whole fuzzing run, with the runtime that drives it.
pub struct Store {
    /// Current-thread runtime: libFuzzer calls the target from one thread.
    pub runtime: tokio::runtime::Runtime,
    /// The handle every input is run against.
    pub clm: Clm,
    /// The store's directory (also where `archive_audit_events` may write).
    pub dir: PathBuf,
}

impl Store {
    /// Opens a new SQLite store in a fresh directory under `TMPDIR`.
    ///
    /// Panics when it cannot: a fuzzing run without its store is pointless.
    pub fn open(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("clm-fuzz-{name}-{}", std::process::id()));
        // A directory left by an earlier process with the same id is stale.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the store directory");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let master_key = base64::engine::general_purpose::STANDARD.encode([0x42u8; 32]);
        let config = ClmConfig::sqlite(dir.join("data"))
            .with_master_key(MasterKeySource::Base64(master_key))
            .with_max_connections(2);
        let clm = runtime
            .block_on(Clm::open(config))
            .expect("open the SQLite store");
        Store { runtime, clm, dir }
    }
}

/// Fails the run (a libFuzzer crash) on an error that input must never
/// cause: `Internal` is a bug by definition, and `Database` means a write
/// reached the database that validation should have refused with an
/// InvalidInput naming the field (on a healthy local SQLite store nothing
/// else makes it).
pub fn check_error(what: &str, err: &clm::Error) {
    let code = err.code();
    assert!(
        !matches!(code, ErrorCode::Internal | ErrorCode::Database),
        "{what}: input caused a {code} error: {err}"
    );
}

/// `name` as clm means it: empty strings count as absent
/// (`DistinguishedName`'s rule), so `Some("")` and `None` compare equal.
pub fn without_empty(name: &clm::crypto::DistinguishedName) -> clm::crypto::DistinguishedName {
    let keep = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    clm::crypto::DistinguishedName {
        common_name: keep(&name.common_name),
        organization: keep(&name.organization),
        organizational_unit: keep(&name.organizational_unit),
        country: keep(&name.country),
        state: keep(&name.state),
        locality: keep(&name.locality),
        email: keep(&name.email),
    }
}
