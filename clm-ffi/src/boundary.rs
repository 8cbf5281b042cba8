//! The one module that touches raw pointers: NULL checks, UTF-8 checks,
//! boxing and unboxing handles, strings handed to C, the progress callback,
//! the last error message, and the panic boundary every exported body runs
//! inside.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use clm::Error;
use serde_json::Value;
use zeroize::Zeroize;

use crate::clm_status;

/// The last failure on a thread, in the two forms C reads it in.
struct LastError {
    message: CString,
    json: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// Keeps `error` as this thread's last error (None: the call succeeded).
fn set_last_error(error: Option<&Error>) {
    let last = error.map(|error| {
        let message = error.to_string().replace('\0', "\\0");
        // ErrorDetails is text, numbers and lists, so serializing cannot
        // fail ("null" would keep the promise of JSON text if it did);
        // serde_json escapes control characters, so the text has no NUL.
        let json = serde_json::to_string(&error.details()).unwrap_or_else(|_| "null".into());
        LastError {
            message: CString::new(message).unwrap_or_else(|_| c"error".to_owned()),
            json: CString::new(json).unwrap_or_else(|_| c"null".to_owned()),
        }
    });
    LAST_ERROR.with(|slot| *slot.borrow_mut() = last);
}

/// A pointer into this thread's last error, or NULL when there is none.
fn last_error(part: fn(&LastError) -> &CStr) -> *const c_char {
    catch_unwind(|| {
        LAST_ERROR.with(|slot| {
            slot.borrow()
                .as_ref()
                .map_or(std::ptr::null(), |last| part(last).as_ptr())
        })
    })
    .unwrap_or(std::ptr::null())
}

/// The message of the last failure on this thread, or NULL when the last
/// call succeeded. The string belongs to the library and stays valid until
/// the next clm call on this thread; do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn clm_last_error_message() -> *const c_char {
    last_error(|last| &last.message)
}

/// The last failure on this thread as JSON text, or NULL when the last call
/// succeeded: `{"code": "POLICY_VIOLATION", "number": 4, "name":
/// "PolicyViolation", "message", "field", "violations": [{"rule",
/// "message"}, ...], "entity"}`. `code`, `number` and `name` are the
/// status's (`clm_error_code_name` gives the same `code`); `field` names the
/// argument or field at fault (InvalidInput, AlreadyExists: a path such as
/// `"request.validity_days"`) or is null; `violations` lists every policy
/// rule a PolicyViolation broke (empty otherwise); `entity` is the kind of
/// row concerned (NotFound, AlreadyExists, PermissionDenied) or null. It
/// holds no secrets.
///
/// The string belongs to the library, like `clm_last_error_message`: it
/// stays valid until the next clm call on this thread; do not free it (copy
/// it to keep it).
#[unsafe(no_mangle)]
pub extern "C" fn clm_last_error_json() -> *const c_char {
    last_error(|last| &last.json)
}

/// Frees a string returned by the library, overwriting its bytes first
/// (results may hold tokens, API keys or private keys). NULL is allowed.
///
/// # Safety
/// `text` is NULL or a string this library returned, freed at most once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn clm_string_free(text: *mut c_char) {
    if text.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller passes a pointer from CString::into_raw.
        let mut bytes = unsafe { CString::from_raw(text) }.into_bytes();
        bytes.zeroize();
    }));
}

/// Runs an exported body: its error becomes a status code and the last
/// error message; a panic becomes `CLM_INTERNAL`, never an abort in the host.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Error>) -> clm_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error(None);
            clm_status::CLM_OK
        }
        Ok(Err(err)) => {
            set_last_error(Some(&err));
            clm_status::from(err.code())
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(Some(&Error::Internal(format!("panic in libclm: {what}"))));
            clm_status::CLM_INTERNAL
        }
    }
}

/// A required string argument: not NULL, valid UTF-8.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, Error> {
    if ptr.is_null() {
        return Err(Error::invalid(name, "is NULL"));
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Error::invalid(name, "is not valid UTF-8"))
}

/// A JSON text argument, parsed; NULL is JSON null (no arguments).
///
/// # Safety
/// As [`text`].
pub(crate) unsafe fn json(ptr: *const c_char, name: &str) -> Result<Value, Error> {
    if ptr.is_null() {
        return Ok(Value::Null);
    }
    let text = unsafe { text(ptr, name) }?;
    serde_json::from_str(text).map_err(|err| Error::invalid(name, format!("is not JSON: {err}")))
}

/// A reference behind a handle pointer, or InvalidInput for NULL.
///
/// # Safety
/// `ptr` is NULL or a live handle this library returned.
pub(crate) unsafe fn borrow<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, Error> {
    if ptr.is_null() {
        return Err(Error::invalid(name, "is NULL"));
    }
    // SAFETY: the caller passes a live pointer from Box::into_raw.
    Ok(unsafe { &*ptr })
}

/// A reference behind a handle pointer that may be NULL.
///
/// # Safety
/// As [`borrow`].
pub(crate) unsafe fn borrow_optional<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: NULL or a live pointer from Box::into_raw.
    unsafe { ptr.as_ref() }
}

/// Checks an out-pointer before any work is done.
pub(crate) fn check_out<T>(out: *mut T, name: &str) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::invalid(name, "is NULL"));
    }
    Ok(())
}

/// Moves a value into a new box and writes it to `out`.
///
/// # Safety
/// `out` was checked with [`check_out`] and is writable.
pub(crate) unsafe fn write_box<T>(out: *mut *mut T, value: T) {
    // SAFETY: checked non-NULL; the caller owns the box from here on.
    unsafe { *out = Box::into_raw(Box::new(value)) };
}

/// Moves a value into a new box and writes it to `out`, or drops it when
/// `out` is NULL (an optional out-pointer).
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn write_box_if_wanted<T>(out: *mut *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write_box(out, value) };
    }
}

/// Writes NULL to an out-pointer that may itself be NULL.
///
/// # Safety
/// `out` is NULL or writable.
pub(crate) unsafe fn write_null<T>(out: *mut *mut T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { *out = std::ptr::null_mut() };
    }
}

/// Writes a number to `out`.
///
/// # Safety
/// `out` was checked with [`check_out`] and is writable.
pub(crate) unsafe fn write_u64(out: *mut u64, value: u64) {
    // SAFETY: checked non-NULL by the caller.
    unsafe { *out = value };
}

/// Writes a string to `out` as a library-owned C string.
///
/// # Safety
/// As [`write_box`].
pub(crate) unsafe fn write_string(out: *mut *mut c_char, value: String) -> Result<(), Error> {
    let text = CString::new(value)
        .map_err(|_| Error::Internal("a returned string contains a NUL byte".into()))?;
    // SAFETY: checked non-NULL; freed by clm_string_free.
    unsafe { *out = text.into_raw() };
    Ok(())
}

/// Drops a boxed handle. NULL is allowed.
///
/// # Safety
/// `ptr` is NULL or from [`write_box`], freed at most once.
pub(crate) unsafe fn free_box<T>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: from Box::into_raw, freed once by the caller's contract.
        drop(unsafe { Box::from_raw(ptr) });
    }));
}

/// Takes a boxed handle back. None for NULL.
///
/// # Safety
/// As [`free_box`].
pub(crate) unsafe fn take_box<T>(ptr: *mut T) -> Option<T> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: from Box::into_raw, handed back once by the caller's contract.
    Some(*unsafe { Box::from_raw(ptr) })
}

/// Receives progress of a long operation: `progress_json` is a JSON object
/// (for `clm_rotate_data_key`: `{"rotation_id", "total", "rotated"}`),
/// valid only during the call; `user_data` is what the caller passed along.
/// Called during the operation, possibly from a library thread, never
/// after the operation returns. It must not call back into the same handle.
pub type clm_progress_callback =
    Option<unsafe extern "C" fn(progress_json: *const c_char, user_data: *mut c_void)>;

/// A C progress callback and its user data, callable as the core's progress
/// sink.
pub(crate) struct Progress {
    callback: unsafe extern "C" fn(*const c_char, *mut c_void),
    user_data: *mut c_void,
}

// SAFETY: the caller's contract (documented on clm_progress_callback) is
// that the callback may run on a library thread during the call; the
// pointers are used only while the exported function has not returned.
unsafe impl Send for Progress {}
// SAFETY: as for Send; calls are sequential within one operation.
unsafe impl Sync for Progress {}

impl Progress {
    /// None when no callback was given.
    pub(crate) fn new(callback: clm_progress_callback, user_data: *mut c_void) -> Option<Self> {
        callback.map(|callback| Progress {
            callback,
            user_data,
        })
    }

    pub(crate) fn report(&self, progress: Value) {
        if let Ok(text) = CString::new(progress.to_string()) {
            // SAFETY: a callback the caller gave for the duration of the
            // call, with the caller's own user_data.
            unsafe { (self.callback)(text.as_ptr(), self.user_data) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clm::error::Violation;

    fn last(read: extern "C" fn() -> *const c_char) -> Option<String> {
        let text = read();
        (!text.is_null()).then(|| {
            // SAFETY: a library-owned string, valid until the next call.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        })
    }

    fn last_json() -> Value {
        let text = last(clm_last_error_json).expect("an error was left");
        serde_json::from_str(&text).expect("the last error is JSON")
    }

    /// A failure leaves its message and its structure; a success clears
    /// both; a panic is INTERNAL in both forms.
    #[test]
    fn the_last_error_keeps_its_structure() {
        let status = guard(|| {
            Err(Error::PolicyViolation {
                violations: vec![
                    Violation::new("max_validity_days", "900 > 397"),
                    Violation::new(
                        "allowed_domains",
                        "evil.example.net not within [example.com]",
                    ),
                ],
            })
        });
        assert_eq!(status, clm_status::CLM_POLICY_VIOLATION);
        let error = last_json();
        assert_eq!(error["code"], "POLICY_VIOLATION");
        assert_eq!(error["number"], clm_status::CLM_POLICY_VIOLATION as u32);
        assert_eq!(error["name"], "PolicyViolation");
        let rules: Vec<&str> = error["violations"]
            .as_array()
            .expect("violations is a list")
            .iter()
            .filter_map(|violation| violation["rule"].as_str())
            .collect();
        assert_eq!(rules, ["max_validity_days", "allowed_domains"]);
        assert_eq!(
            error["message"].as_str(),
            last(clm_last_error_message).as_deref()
        );

        assert_eq!(
            guard(|| Err(Error::invalid("request.validity_days", "out of range"))),
            clm_status::CLM_INVALID_INPUT
        );
        assert_eq!(last_json()["field"], "request.validity_days");

        assert_eq!(guard(|| Ok(())), clm_status::CLM_OK);
        assert!(last(clm_last_error_message).is_none() && last(clm_last_error_json).is_none());

        let status = guard(|| panic!("boom"));
        assert_eq!(status, clm_status::CLM_INTERNAL);
        let error = last_json();
        assert_eq!(error["code"], "INTERNAL");
        assert_eq!(error["message"], "internal error: panic in libclm: boom");
    }
}
