//! Extra PostgreSQL clusters a test starts itself: `initdb` into a temporary
//! directory, a free port, started and stopped with `pg_ctl`, and stopped
//! however the test ends (the guard's `Drop`). Used for TLS, for killing the
//! server mid-run, and for a streaming replica made with `pg_basebackup -R`.
//!
//! initdb refuses root, so as root the server programs run as `postgres`
//! (`runuser`) on directories handed to that user. The programs come from
//! `CLM_TEST_PG_BIN`, else the newest /usr/lib/postgresql/*/bin, else PATH.
//! Without them a test skips with the reason ([`unavailable`]); with `CI`
//! set it fails instead.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where PostgreSQL's server programs are: `CLM_TEST_PG_BIN`, else the
/// newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH), else PATH.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLM_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Skips `test` (printing why) or, under CI, fails.
pub fn unavailable(test: &str, reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: the extra PostgreSQL cluster is unavailable and CI is set: {reason}");
    }
    eprintln!("!!! SKIPPING {test}: {reason}");
}

pub fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|err| format!("no free port: {err}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|err| format!("no free port: {err}"))
}

/// Settings every cluster gets. No fsync: the tests crash the server
/// process, never the machine, and the OS keeps what was written. Commits
/// stay synchronous (the default): an acknowledged commit must survive
/// `pg_ctl stop -m immediate`, or a killed server could lose a write its
/// caller saw succeed.
const BASE_SETTINGS: &str = "fsync = off\nfull_page_writes = off\n";

/// One cluster. Dropping it stops the server (immediate mode: the data
/// directory goes with the temporary directory anyway).
pub struct PgCluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    /// initdb refuses root: as root the server runs as `postgres`.
    as_postgres: bool,
    running: AtomicBool,
    // Last: removed after the server has stopped.
    dir: tempfile::TempDir,
}

impl PgCluster {
    /// `initdb` (trust authentication, user `postgres`), then `settings`
    /// appended to postgresql.conf (after the port, the listen address and
    /// [`BASE_SETTINGS`]) and `hba` as the whole pg_hba.conf. Not started:
    /// the caller may add files to [`PgCluster::data_dir`] first.
    pub fn init(bin: PathBuf, settings: &str, hba: &str) -> Result<PgCluster, String> {
        PgCluster::init_at(bin, None, settings, hba)
    }

    /// As [`PgCluster::init`], with the data directory in `parent` (a small
    /// filesystem, for the disk-full test) and the WAL (`initdb --waldir`)
    /// in the cluster's temporary directory: a full data directory fails
    /// the statement that needs space, where a full WAL stops the server.
    pub fn init_with_data_in(
        bin: PathBuf,
        parent: &Path,
        settings: &str,
        hba: &str,
    ) -> Result<PgCluster, String> {
        PgCluster::init_at(bin, Some(parent), settings, hba)
    }

    fn init_at(
        bin: PathBuf,
        data_parent: Option<&Path>,
        settings: &str,
        hba: &str,
    ) -> Result<PgCluster, String> {
        let dir = tempfile::tempdir().map_err(|err| format!("tempdir: {err}"))?;
        let cluster = PgCluster {
            bin,
            data: data_parent.unwrap_or(dir.path()).join("data"),
            port: free_port()?,
            as_postgres: is_root(),
            running: AtomicBool::new(false),
            dir,
        };
        cluster.give(cluster.dir.path())?;
        let data = cluster.data_arg();
        let mut args = vec!["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync"];
        let waldir = cluster.dir.path().join("wal").display().to_string();
        if let Some(parent) = data_parent {
            cluster.give(parent)?;
            args.extend(["--waldir", &waldir]);
        }
        cluster.run("initdb", &args)?;
        cluster.configure(settings, hba)?;
        Ok(cluster)
    }

    /// A streaming replica of this (running) cluster: `pg_basebackup -R`
    /// into a new directory, on its own port, started. This cluster's
    /// pg_hba.conf must allow `replication` from 127.0.0.1.
    pub fn start_replica(&self) -> Result<PgCluster, String> {
        let dir = tempfile::tempdir().map_err(|err| format!("tempdir: {err}"))?;
        let replica = PgCluster {
            bin: self.bin.clone(),
            data: dir.path().join("data"),
            port: free_port()?,
            as_postgres: self.as_postgres,
            running: AtomicBool::new(false),
            dir,
        };
        replica.give(replica.dir.path())?;
        let port = self.port.to_string();
        replica.run(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &replica.data_arg(),
                "-R",
                "-X",
                "stream",
                // An immediate checkpoint: the default (spread) waits minutes.
                "-c",
                "fast",
                "--no-sync",
            ],
        )?;
        // The copied postgresql.conf names the primary's port: the last
        // setting wins.
        replica.append_settings(&format!("port = {}\nhot_standby = on\n", replica.port))?;
        replica.start()?;
        Ok(replica)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// `postgres://user@127.0.0.1:port/db`.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    fn data_arg(&self) -> String {
        self.data.display().to_string()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn configure(&self, settings: &str, hba: &str) -> Result<(), String> {
        self.append_settings(&format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = ''\n{BASE_SETTINGS}{settings}",
            self.port
        ))?;
        std::fs::write(self.data.join("pg_hba.conf"), hba)
            .map_err(|err| format!("pg_hba.conf: {err}"))?;
        self.give(&self.data)
    }

    fn append_settings(&self, settings: &str) -> Result<(), String> {
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .and_then(|mut file| write!(file, "\n# clm test cluster\n{settings}\n"))
            .map_err(|err| format!("postgresql.conf: {err}"))
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let output = self
            .command(program)
            .args(args)
            .output()
            .map_err(|err| format!("cannot run {program}: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} {args:?} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// Hands `path` to the server's user (it must own its data and key files).
    pub fn give(&self, path: &Path) -> Result<(), String> {
        if !self.as_postgres {
            return Ok(());
        }
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .map_err(|err| format!("cannot run chown: {err}"))?;
        status
            .success()
            .then_some(())
            .ok_or_else(|| format!("chown {} failed", path.display()))
    }

    /// Starts the server and waits until it accepts connections (crash
    /// recovery included after [`PgCluster::kill`]).
    pub fn start(&self) -> Result<(), String> {
        let log = self.log_path().display().to_string();
        self.running.store(true, Ordering::SeqCst);
        self.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                &self.data_arg(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
            ],
        )
        .map_err(|err| format!("{err}\nserver log:\n{}", self.server_log()))
    }

    /// `pg_ctl stop -m immediate`: every server process ends at once, without
    /// a checkpoint, as in a crash; the next start runs crash recovery.
    pub fn kill(&self) -> Result<(), String> {
        self.running.store(false, Ordering::SeqCst);
        self.run(
            "pg_ctl",
            &["stop", "-D", &self.data_arg(), "-m", "immediate", "-w"],
        )
    }

    /// The server's log so far (for failure messages).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs `statements` as `postgres` on the database `postgres`, over a
    /// plain connection (`url_suffix` adds libpq parameters, such as
    /// `?sslmode=require`).
    pub async fn admin(&self, url_suffix: &str, statements: &[String]) {
        use sqlx::Connection as _;
        let url = format!("{}{url_suffix}", self.url("postgres", "postgres"));
        let mut conn = sqlx::PgConnection::connect(&url)
            .await
            .unwrap_or_else(|err| panic!("connect to the test cluster as postgres: {err}"));
        for statement in statements {
            sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(&mut conn)
                .await
                .unwrap_or_else(|err| panic!("{statement}: {err}"));
        }
        let _ = conn.close().await;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running.load(Ordering::SeqCst)
            && let Err(err) = self.kill()
        {
            eprintln!(
                "could not stop the test cluster on port {}: {err}",
                self.port
            );
        }
    }
}
