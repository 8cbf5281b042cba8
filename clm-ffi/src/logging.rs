//! `clm_set_log_callback`: clm's spans and events handed to a C function
//! (through `clm::logging`, the one forwarder every binding uses).

use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

use clm::Error;
use clm::logging::{Level, LogRecord, LogSink};

use crate::boundary::guard;
use crate::clm_status;

/// The level of a log record, and the least severe level a callback wants.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum clm_log_level {
    CLM_LOG_ERROR = 1,
    CLM_LOG_WARN = 2,
    CLM_LOG_INFO = 3,
    CLM_LOG_DEBUG = 4,
    CLM_LOG_TRACE = 5,
}

impl clm_log_level {
    fn of(level: Level) -> clm_log_level {
        match level {
            Level::ERROR => clm_log_level::CLM_LOG_ERROR,
            Level::WARN => clm_log_level::CLM_LOG_WARN,
            Level::INFO => clm_log_level::CLM_LOG_INFO,
            Level::DEBUG => clm_log_level::CLM_LOG_DEBUG,
            _ => clm_log_level::CLM_LOG_TRACE,
        }
    }

    fn tracing_level(number: u32) -> Option<Level> {
        Some(match number {
            1 => Level::ERROR,
            2 => Level::WARN,
            3 => Level::INFO,
            4 => Level::DEBUG,
            5 => Level::TRACE,
            _ => return None,
        })
    }
}

/// Receives one log record: its level, where it comes from (`target`, e.g.
/// `"clm::service::identity"` or `"sqlx::query"`) and the record on one
/// line (the message, its fields, the spans it happened in; a closed
/// operation span reads `name{actor=... organization=...}: finished
/// outcome=ok duration_ms=1.2`). Both strings are valid only during the
/// call. It runs on whichever thread emitted the record (a runtime worker
/// or the caller's thread), so it must be thread-safe and quick; records
/// emitted while it runs on the same thread are dropped (it may call clm).
pub type clm_log_callback = Option<
    unsafe extern "C" fn(
        level: clm_log_level,
        target: *const c_char,
        message: *const c_char,
        user_data: *mut c_void,
    ),
>;

/// The C side of a sink: its function and the pointer it gets back.
struct CallbackSink {
    callback: unsafe extern "C" fn(clm_log_level, *const c_char, *const c_char, *mut c_void),
    user_data: *mut c_void,
}

// SAFETY: clm_set_log_callback's contract: the callback may be called from
// any thread, with this user_data, until it is replaced or unset.
unsafe impl Send for CallbackSink {}
unsafe impl Sync for CallbackSink {}

/// Text for C: an interior NUL (never in clm's own records) becomes `\0`.
fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).unwrap_or_default()
}

impl CallbackSink {
    fn deliver(&self, record: &LogRecord<'_>) {
        let target = c_text(record.target);
        let message = c_text(record.message);
        // SAFETY: the host registered this function for exactly this call;
        // the strings outlive it.
        unsafe {
            (self.callback)(
                clm_log_level::of(record.level),
                target.as_ptr(),
                message.as_ptr(),
                self.user_data,
            )
        };
    }
}

/// Sends clm's log records at `min_level` (a `clm_log_level`: 1 = errors
/// only ... 5 = every statement) or more severe to `callback`, with
/// `user_data` passed back. Records carry operation names, actor kinds,
/// organizations, outcomes, durations and SQL text, never a secret or a
/// bound value. A NULL `callback` stops forwarding (and `min_level` is
/// ignored); a new callback replaces the previous one. Fails with
/// CLM_INVALID_INPUT for a level out of range, and CLM_CONFIGURATION when
/// the process already has another `tracing` subscriber (a Rust host's).
///
/// # Safety
/// `callback`, when not NULL, must be callable from any thread with
/// `user_data` until it is replaced or unset.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_set_log_callback(
    callback: clm_log_callback,
    user_data: *mut c_void,
    min_level: u32,
) -> clm_status {
    guard(|| {
        let Some(callback) = callback else {
            clm::logging::stop_forwarding();
            return Ok(());
        };
        let level = clm_log_level::tracing_level(min_level).ok_or_else(|| {
            Error::invalid(
                "min_level",
                format!("must be CLM_LOG_ERROR (1) to CLM_LOG_TRACE (5), got {min_level}"),
            )
        })?;
        let sink = CallbackSink {
            callback,
            user_data,
        };
        let sink: LogSink = Arc::new(move |record: &LogRecord<'_>| sink.deliver(record));
        clm::logging::forward_to(sink, level)
    })
}
