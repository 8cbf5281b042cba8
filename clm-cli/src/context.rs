//! What every command works with: the resolved settings, the open handle,
//! the actor the command acts as, and the one way operations are called
//! (`clm::api::call`, the entry point the bindings use too: it checks
//! arguments and names the field at fault).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use clm::api::{Reply, call};
use clm::{Actor, Clm, Error};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::{CliError, CliResult, invalid};
use crate::output::Format;
use crate::settings::Settings;

/// The kept session: the token and what it belongs to.
#[derive(serde::Serialize, serde::Deserialize)]
struct SessionFile {
    token: String,
    username: String,
    store: String,
}

impl Drop for SessionFile {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.token.zeroize();
    }
}

/// Who a command acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The login session kept by `clm login`.
    Session,
    /// `--api-key-file`.
    ApiKey,
    /// `--as-system`.
    System,
}

/// A command's surroundings.
pub struct Context {
    /// The settings in force.
    pub settings: Settings,
    /// `--as-system`.
    pub as_system: bool,
    /// The output format (concrete).
    pub format: Format,
    /// Colours on.
    pub color: bool,
    clm: Option<Clm>,
    actor: Option<Actor>,
}

impl Context {
    /// A context without an open handle yet.
    pub fn new(settings: Settings, as_system: bool, format: Format, color: bool) -> Self {
        Context {
            settings,
            as_system,
            format,
            color,
            clm: None,
            actor: None,
        }
    }

    /// The session token's file.
    pub fn session_path(&self) -> PathBuf {
        self.settings.config_dir.join("session.json")
    }

    /// Opens clm (once).
    pub async fn clm(&mut self) -> CliResult<Clm> {
        if let Some(clm) = &self.clm {
            return Ok(clm.clone());
        }
        let config = self.settings.clm_config()?;
        if let Some(file) = self.settings.master_key_file()
            && !file.exists()
        {
            return Err(CliError::Clm(Error::Configuration(format!(
                "no master key file at {}: run `clm init` first, or give --master-key-file",
                file.display()
            ))));
        }
        // Only `init` creates a store: a mistyped directory must not become
        // a new, empty one.
        if !self.settings.is_postgres()
            && let Some(dir) = self.settings.get("data_dir")
            && !Path::new(dir).join("secure.db").exists()
        {
            return Err(CliError::Clm(Error::Configuration(format!(
                "no store in {dir}: run `clm init` first, or give --data-dir"
            ))));
        }
        let clm = Clm::open(config).await?;
        self.clm = Some(clm.clone());
        Ok(clm)
    }

    /// Keeps an already open handle (init opens its own).
    pub fn adopt(&mut self, clm: Clm, actor: Option<Actor>) {
        self.clm = Some(clm);
        self.actor = actor;
    }

    /// Which identity the flags and files select.
    pub fn identity(&self) -> Identity {
        if self.as_system {
            Identity::System
        } else if self.settings.get("api_key_file").is_some() {
            Identity::ApiKey
        } else {
            Identity::Session
        }
    }

    /// The actor of this command (once).
    pub async fn actor(&mut self) -> CliResult<Actor> {
        if let Some(actor) = &self.actor {
            return Ok(actor.clone());
        }
        let clm = self.clm().await?;
        let actor = match self.identity() {
            Identity::System => {
                if self.settings.master_key_file().is_none() {
                    return Err(CliError::Clm(Error::Authentication(
                        "--as-system needs the master key from a file (--master-key-file or CLM_MASTER_KEY_FILE), not CLM_MASTER_KEY".into(),
                    )));
                }
                clm.system_actor()
            }
            Identity::ApiKey => {
                let path = self.settings.get("api_key_file").unwrap_or_default();
                let key = read_secret_line(Path::new(path), "api_key_file")?;
                actor_of(
                    call(
                        &clm,
                        None,
                        "authenticate_api_key",
                        json!({"key": *key}),
                        None,
                    )
                    .await?,
                )?
            }
            Identity::Session => {
                let path = self.session_path();
                let text = match std::fs::read(&path) {
                    Ok(bytes) => Zeroizing::new(bytes),
                    Err(_) => {
                        return Err(CliError::Clm(Error::Authentication(
                            "not logged in: run `clm login` (or give --api-key-file)".into(),
                        )));
                    }
                };
                let session: SessionFile = serde_json::from_slice(&text).map_err(|_| {
                    CliError::Clm(Error::Authentication(format!(
                        "the session file {} is damaged: run `clm login`",
                        path.display()
                    )))
                })?;
                let store = self.settings.store_label();
                if session.store != store {
                    return Err(CliError::Clm(Error::Authentication(format!(
                        "the session is for {}, not {store}: run `clm login`",
                        session.store
                    ))));
                }
                let reply = call(
                    &clm,
                    None,
                    "validate_session",
                    json!({"token": session.token}),
                    None,
                )
                .await
                .map_err(|err| match err {
                    Error::Authentication(reason) => {
                        Error::Authentication(format!("{reason}: run `clm login` again"))
                    }
                    other => other,
                })?;
                actor_of(reply)?
            }
        };
        self.actor = Some(actor.clone());
        Ok(actor)
    }

    /// Runs operation `name` as this command's actor.
    pub async fn call(&mut self, name: &str, arguments: Value) -> CliResult<Value> {
        let clm = self.clm().await?;
        let actor = self.actor().await?;
        Ok(call(&clm, Some(&actor), name, arguments, None)
            .await?
            .into_value())
    }

    /// Runs operation `name`, handing its progress reports to `sink`.
    pub async fn call_with_progress(
        &mut self,
        name: &str,
        arguments: Value,
        sink: &(dyn Fn(Value) + Send + Sync),
    ) -> CliResult<Value> {
        let clm = self.clm().await?;
        let actor = self.actor().await?;
        Ok(call(&clm, Some(&actor), name, arguments, Some(sink))
            .await?
            .into_value())
    }

    /// Runs an operation that needs no actor (login).
    pub async fn call_anonymous(&mut self, name: &str, arguments: Value) -> CliResult<Value> {
        let clm = self.clm().await?;
        Ok(call(&clm, None, name, arguments, None).await?.into_value())
    }

    /// Keeps a session token (mode 0600).
    pub fn save_session(&self, token: &str, username: &str) -> CliResult<()> {
        let session = SessionFile {
            token: token.to_string(),
            username: username.to_string(),
            store: self.settings.store_label(),
        };
        let text = Zeroizing::new(serde_json::to_vec(&session).unwrap_or_default());
        std::fs::create_dir_all(&self.settings.config_dir).map_err(|err| {
            invalid(
                "CLM_CONFIG_DIR",
                format!(
                    "cannot create {}: {err}",
                    self.settings.config_dir.display()
                ),
            )
        })?;
        // Only its owner may list the directory of the token.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                &self.settings.config_dir,
                std::fs::Permissions::from_mode(0o700),
            );
        }
        write_private(&self.session_path(), &text, "session")
    }

    /// The kept session's token, if any (for logout).
    pub fn saved_token(&self) -> Option<Zeroizing<String>> {
        let bytes = Zeroizing::new(std::fs::read(self.session_path()).ok()?);
        let session: SessionFile = serde_json::from_slice(&bytes).ok()?;
        Some(Zeroizing::new(session.token.clone()))
    }

    /// Closes the handle.
    pub async fn close(&mut self) {
        if let Some(clm) = self.clm.take() {
            clm.close().await;
        }
    }
}

fn actor_of(reply: Reply) -> CliResult<Actor> {
    match reply {
        Reply::Actor(actor, _) => Ok(actor),
        Reply::Value(_) => Err(CliError::Clm(Error::Internal(
            "the operation returned no actor".into(),
        ))),
    }
}

/// Reads a file named by `field`, naming it when missing.
pub fn read_file(path: &Path, field: &str) -> CliResult<Vec<u8>> {
    std::fs::read(path)
        .map_err(|err| invalid(field, format!("cannot read {}: {err}", path.display())))
}

/// Reads a text file named by `field`.
pub fn read_text(path: &Path, field: &str) -> CliResult<String> {
    let bytes = read_file(path, field)?;
    String::from_utf8(bytes)
        .map_err(|_| invalid(field, format!("{} is not UTF-8 text", path.display())))
}

/// The first line of a secret file (a password or an API key), trimmed.
pub fn read_secret_line(path: &Path, field: &str) -> CliResult<Zeroizing<String>> {
    let bytes = Zeroizing::new(read_file(path, field)?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| invalid(field, format!("{} is not UTF-8 text", path.display())))?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err(invalid(field, format!("{} is empty", path.display())));
    }
    Ok(Zeroizing::new(line.to_string()))
}

/// Writes a file readable by its owner only (keys, tokens), replacing it.
pub fn write_private(path: &Path, contents: &[u8], field: &str) -> CliResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail =
        |err: std::io::Error| invalid(field, format!("cannot write {}: {err}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    // An existing file keeps its mode through open: narrow it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// Writes a public file (certificates, CRLs).
pub fn write_public(path: &Path, contents: &[u8], field: &str) -> CliResult<()> {
    std::fs::write(path, contents)
        .map_err(|err| invalid(field, format!("cannot write {}: {err}", path.display())))
}

/// A new password: from stdin's first line with `--password-stdin`, else
/// asked twice on the terminal without echo.
pub fn new_password(from_stdin: bool) -> CliResult<Zeroizing<String>> {
    if from_stdin {
        return stdin_password();
    }
    let first = prompt_password("New password: ")?;
    let second = prompt_password("Repeat the password: ")?;
    if *first != *second {
        return Err(invalid("password", "the two passwords differ"));
    }
    Ok(first)
}

/// An existing password: stdin's first line, or asked once without echo.
pub fn password(from_stdin: bool) -> CliResult<Zeroizing<String>> {
    if from_stdin {
        stdin_password()
    } else {
        prompt_password("Password: ")
    }
}

fn stdin_password() -> CliResult<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| invalid("password", format!("cannot read stdin: {err}")))?;
    let password = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    if password.is_empty() {
        return Err(invalid("password", "stdin gave no password"));
    }
    Ok(password)
}

fn prompt_password(prompt: &str) -> CliResult<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        return Err(invalid(
            "password",
            "stdin is not a terminal: give --password-stdin",
        ));
    }
    rpassword::prompt_password(prompt)
        .map(Zeroizing::new)
        .map_err(|err| invalid("password", format!("cannot read the password: {err}")))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static PRESSES: AtomicU8 = AtomicU8::new(0);

/// Makes Ctrl-C (and SIGTERM) a request to stop at the next safe point; a
/// second one ends the process at once.
pub fn catch_interrupts() {
    let _ = ctrlc::set_handler(|| {
        if PRESSES.fetch_add(1, Ordering::SeqCst) > 0 {
            std::process::exit(crate::error::EXIT_INTERRUPTED);
        }
        INTERRUPTED.store(true, Ordering::SeqCst);
        eprintln!("\nstopping after the current step (Ctrl-C again to quit now)");
    });
}

/// Whether Ctrl-C asked to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
