//! The handle and the actor, and the one path every operation takes:
//! [`run`] checks the C arguments, calls `clm::api::call` on the handle's
//! runtime, and writes the reply to the operation's out-pointer. The
//! per-operation functions (generated into `operations.rs`) and the generic
//! `clm_call` are thin shells over it.

use std::ffi::{c_char, c_void};
use std::sync::Mutex;

use clm::api::Reply;
use clm::{Clm, Error, Result};
use serde_json::Value;

use crate::boundary::{
    Progress, borrow, borrow_optional, check_out, clm_progress_callback, free_box, guard, json,
    take_box, text, write_box, write_box_if_wanted, write_null, write_string, write_u64,
};
use crate::clm_status;

/// An open clm: both databases, a master key, and the runtime its calls
/// block on. Opaque; from `clm_open`, freed by `clm_handle_free`. Calls on
/// one handle may come from several threads at once.
pub struct clm_handle {
    runtime: tokio::runtime::Runtime,
    inner: Mutex<Option<Clm>>,
}

/// Who performs an operation (from `clm_system_actor`,
/// `clm_validate_session`, `clm_authenticate_api_key` or
/// `clm_actor_for_user`). Opaque; freed by `clm_actor_free`.
pub struct clm_actor {
    inner: clm::Actor,
}

impl clm_handle {
    /// The open core, or Closed after `clm_close`.
    fn clm(&self) -> Result<Clm> {
        self.inner
            .lock()
            .map_err(|_| Error::Internal("the handle's lock is poisoned".into()))?
            .clone()
            .ok_or(Error::Closed)
    }

    fn close(&self) -> Result<()> {
        let taken = self
            .inner
            .lock()
            .map_err(|_| Error::Internal("the handle's lock is poisoned".into()))?
            .take();
        if let Some(clm) = taken {
            self.runtime.block_on(clm.close());
        }
        Ok(())
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("clm-ffi")
        .enable_all()
        .build()
        .map_err(|err| Error::Internal(format!("cannot start a runtime: {err}")))
}

/// Where an operation's reply goes, by what the operation returns.
pub(crate) enum Output {
    /// A record or other JSON value: JSON text.
    Json(*mut *mut c_char),
    /// `String`: the text itself.
    Text(*mut *mut c_char),
    /// `u64`: the number.
    Count(*mut u64),
    /// `()`: nothing.
    Nothing,
    /// `Actor`: a new actor handle.
    Actor(*mut *mut clm_actor),
}

impl Output {
    fn check(&self) -> Result<()> {
        match *self {
            Output::Json(out) => check_out(out, "result_json"),
            Output::Text(out) => check_out(out, "result_text"),
            Output::Count(out) => check_out(out, "result_count"),
            Output::Actor(out) => check_out(out, "result_actor"),
            Output::Nothing => Ok(()),
        }
    }

    /// # Safety
    /// The out-pointer passed [`Output::check`] and is writable.
    unsafe fn write(self, operation: &str, reply: Reply) -> Result<()> {
        let unexpected = || {
            Error::Internal(format!(
                "{operation} returned a value of an unexpected type"
            ))
        };
        match (self, reply) {
            (Output::Nothing, _) => Ok(()),
            (Output::Actor(out), Reply::Actor(actor, _)) => {
                unsafe { write_box(out, clm_actor { inner: actor }) };
                Ok(())
            }
            (Output::Actor(_), Reply::Value(_)) => Err(unexpected()),
            (Output::Json(out), reply) => unsafe {
                write_string(out, reply.into_value().to_string())
            },
            (Output::Text(out), reply) => match reply.into_value() {
                Value::String(text) => unsafe { write_string(out, text) },
                _ => Err(unexpected()),
            },
            (Output::Count(out), reply) => {
                let count = reply.into_value().as_u64().ok_or_else(unexpected)?;
                unsafe { write_u64(out, count) };
                Ok(())
            }
        }
    }
}

/// Runs `operation`: checks the handle, reads the arguments (NULL = none)
/// and calls the core. Validation of the arguments is the core's.
///
/// # Safety
/// `handle` and `actor` are NULL or live; `arguments_json` is NULL or a
/// NUL-terminated string.
unsafe fn call(
    handle: *const clm_handle,
    actor: *const clm_actor,
    operation: &str,
    arguments_json: *const c_char,
    progress: Option<Progress>,
) -> Result<Reply> {
    let handle = unsafe { borrow(handle, "clm") }?;
    let actor = unsafe { borrow_optional(actor) }.map(|actor| &actor.inner);
    let arguments = unsafe { json(arguments_json, "arguments_json") }?;
    if operation == "close" {
        // The handle's own close, so that it is the same as clm_close.
        handle.close()?;
        return Ok(Reply::Value(Value::Null));
    }
    let clm = handle.clm()?;
    let report = |value: Value| {
        if let Some(progress) = &progress {
            progress.report(value);
        }
    };
    let sink: Option<clm::api::ProgressSink<'_>> = progress.as_ref().map(|_| &report as _);
    handle
        .runtime
        .block_on(clm::api::call(&clm, actor, operation, arguments, sink))
}

/// One operation behind the panic boundary: what every generated
/// `clm_<operation>` function runs. The out-pointer is checked before
/// anything runs and written only on success.
///
/// # Safety
/// As [`call`]; the output's pointer is NULL or writable.
pub(crate) unsafe fn run(
    handle: *const clm_handle,
    actor: *const clm_actor,
    operation: &'static str,
    arguments_json: *const c_char,
    progress: Option<Progress>,
    output: Output,
) -> clm_status {
    guard(|| {
        output.check()?;
        let reply = unsafe { call(handle, actor, operation, arguments_json, progress) }?;
        unsafe { output.write(operation, reply) }
    })
}

/// Opens clm. `options_json`: `{"sqlite_dir": DIR}` or `{"secure_url": URL,
/// "core_url": URL}` (PostgreSQL), plus `"master_key"` (base64 of 32 bytes)
/// or `"master_key_file"` (with `"create_master_key": true` it is created,
/// mode 0600, when missing), optionally `"max_connections"` and
/// `"cache_ttl_ms"`.
/// `result_clm`: the new handle, freed with `clm_handle_free`.
///
/// # Safety
/// `options_json` is NULL or a NUL-terminated string; `result_clm` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_open(
    options_json: *const c_char,
    result_clm: *mut *mut clm_handle,
) -> clm_status {
    guard(|| {
        check_out(result_clm, "result_clm")?;
        unsafe { text(options_json, "options_json") }?;
        let options = unsafe { json(options_json, "options_json") }?;
        let config = clm::api::OpenOptions::parse(options)?.into_config()?;
        let runtime = runtime()?;
        let clm = runtime.block_on(Clm::open(config))?;
        let handle = clm_handle {
            runtime,
            inner: Mutex::new(Some(clm)),
        };
        unsafe { write_box(result_clm, handle) };
        Ok(())
    })
}

/// Closes both databases. Later calls on the handle fail with CLM_CLOSED;
/// closing twice is allowed. The handle still needs `clm_handle_free`.
///
/// # Safety
/// `clm` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_close(clm: *const clm_handle) -> clm_status {
    guard(|| unsafe { borrow(clm, "clm") }?.close())
}

/// Closes (when still open) and frees a handle. NULL is allowed.
///
/// # Safety
/// `clm` is NULL or a live handle, freed once; no call on it may be
/// running, and none may start.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_handle_free(clm: *mut clm_handle) {
    let _ = guard(|| {
        if let Some(handle) = unsafe { take_box(clm) } {
            let _ = handle.close();
            let clm_handle { runtime, inner } = handle;
            drop(inner);
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
        Ok(())
    });
}

/// The host application's own actor: every permission. `result_actor` is
/// freed with `clm_actor_free`.
///
/// # Safety
/// `clm` is NULL or a live handle; `result_actor` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_system_actor(
    clm: *const clm_handle,
    result_actor: *mut *mut clm_actor,
) -> clm_status {
    guard(|| {
        check_out(result_actor, "result_actor")?;
        let clm = unsafe { borrow(clm, "clm") }?.clm()?;
        let actor = clm_actor {
            inner: clm.system_actor(),
        };
        unsafe { write_box(result_actor, actor) };
        Ok(())
    })
}

/// Describes an actor as JSON: `{"kind": "user"|"api_key"|"system",
/// "user_id", "session_id", "api_key_id", "organization_ids"}`.
///
/// # Safety
/// `actor` is NULL or a live actor; `result_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_actor_json(
    actor: *const clm_actor,
    result_json: *mut *mut c_char,
) -> clm_status {
    guard(|| {
        check_out(result_json, "result_json")?;
        let actor = unsafe { borrow(actor, "actor") }?;
        let description = clm::api::describe_actor(&actor.inner).to_string();
        unsafe { write_string(result_json, description) }
    })
}

/// Frees an actor. NULL is allowed.
///
/// # Safety
/// `actor` is NULL or a live actor, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_actor_free(actor: *mut clm_actor) {
    unsafe { free_box(actor) }
}

/// Every operation as JSON, for dynamic callers: the `operations` of the
/// API description each `clm_<name>` function is generated from
/// (`bindings/api.json`): `[{"name", "module", "summary", "needs_actor",
/// "arguments": [{"name", "schema", "required", "default"?}], "result",
/// "result_kind", "progress"}]`, schemas as JSON Schema whose `$ref`s name
/// the description's types.
///
/// # Safety
/// `result_json` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_operations_json(result_json: *mut *mut c_char) -> clm_status {
    guard(|| {
        check_out(result_json, "result_json")?;
        let operations = clm::api::describe()
            .get("operations")
            .map(Value::to_string)
            .ok_or_else(|| Error::Internal("the API description lists no operations".into()))?;
        unsafe { write_string(result_json, operations) }
    })
}

/// Runs any operation by name, for dynamic callers (each also has its own
/// `clm_<name>` function). `actor` may be NULL for operations that need
/// none; `arguments_json` is a JSON object of named arguments (NULL = none);
/// `progress` (may be NULL) receives progress reports with `user_data`.
/// `result_json` receives the result as JSON (for an operation returning an
/// actor, its description). `result_actor` may be NULL; when not, it
/// receives the new actor of an operation returning one (free it with
/// `clm_actor_free`), else NULL.
///
/// # Safety
/// Handles are NULL or live; strings are NULL or NUL-terminated; out-pointers
/// are NULL or writable; `progress` and `user_data` as for
/// `clm_progress_callback`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_call(
    clm: *const clm_handle,
    actor: *const clm_actor,
    operation: *const c_char,
    arguments_json: *const c_char,
    progress: clm_progress_callback,
    user_data: *mut c_void,
    result_json: *mut *mut c_char,
    result_actor: *mut *mut clm_actor,
) -> clm_status {
    guard(|| {
        check_out(result_json, "result_json")?;
        let operation = unsafe { text(operation, "operation") }?;
        let progress = Progress::new(progress, user_data);
        let reply = unsafe { call(clm, actor, operation, arguments_json, progress) }?;
        match reply {
            Reply::Actor(actor, description) => {
                unsafe { write_string(result_json, description.to_string()) }?;
                unsafe { write_box_if_wanted(result_actor, clm_actor { inner: actor }) };
            }
            Reply::Value(value) => {
                unsafe { write_string(result_json, value.to_string()) }?;
                unsafe { write_null(result_actor) };
            }
        }
        Ok(())
    })
}
