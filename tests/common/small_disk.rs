//! A small filesystem of its own for the disk-full tests (SQLite in
//! tests/faults, PostgreSQL in tests/cluster): a tmpfs mounted on a
//! temporary directory (root, or CAP_SYS_ADMIN, needed; without it a test
//! skips with the reason, or fails when `CI` is set), and a filler that
//! takes every free byte of it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs of its own, unmounted when dropped.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None (after saying why) when this machine cannot mount one; CI must.
    pub fn mount(megabytes: u32, test: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match output {
            Ok(output) if output.status.success() => Some(SmallDisk { dir }),
            other => {
                let why = format!("cannot mount a tmpfs for {test}: {other:?}");
                if std::env::var("CI").is_ok_and(|v| !v.is_empty()) {
                    panic!("{why} (CI is set: it must run)");
                }
                eprintln!("SKIPPING {test}: {why}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    /// Lazily: a failed test may still hold the database files open.
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the disk holding `dir` with one file until a write fails.
pub fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let block = vec![0x5a_u8; 4096];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
    path
}
