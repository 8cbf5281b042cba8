//! C ABI over the clm service API (`libclm`). This crate holds no domain
//! logic: it converts arguments and results (through the shared wire module
//! in `bindings/wire.rs`) and catches panics at the boundary.
//!
//! Conventions (see the header comment of `include/clm.h`): every fallible
//! function returns a [`clm_status`] (`CLM_OK` or an error code number),
//! writes its out-pointer only on success, and leaves a message for
//! [`clm_last_error_message`]. Records cross as JSON text.

#![allow(non_camel_case_types)]

use std::ffi::{CStr, c_char};

use clm::ErrorCode;

mod boundary;
mod client;

// Each binding uses its own subset of the shared wire module.
#[allow(dead_code)]
#[path = "../../bindings/wire.rs"]
mod wire;

pub use boundary::{clm_last_error_message, clm_string_free};
pub use client::*;

/// The result of every fallible function: `CLM_OK` or the number of a clm
/// error code (the numbers of `clm::ErrorCode`, stable, never reused).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum clm_status {
    CLM_OK = 0,
    CLM_NOT_FOUND = 1,
    CLM_ALREADY_EXISTS = 2,
    CLM_INVALID_INPUT = 3,
    CLM_POLICY_VIOLATION = 4,
    CLM_PERMISSION_DENIED = 5,
    CLM_CONFLICT = 6,
    CLM_CRYPTO = 7,
    CLM_DATABASE = 8,
    CLM_AUTHENTICATION = 9,
    CLM_CONFIGURATION = 10,
    CLM_CLOSED = 11,
    CLM_INTERNAL = 12,
}

impl From<ErrorCode> for clm_status {
    /// The one conversion from the core's codes (checked against
    /// `ErrorCode::ALL` by a test, so a new code cannot be forgotten).
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::NotFound => clm_status::CLM_NOT_FOUND,
            ErrorCode::AlreadyExists => clm_status::CLM_ALREADY_EXISTS,
            ErrorCode::InvalidInput => clm_status::CLM_INVALID_INPUT,
            ErrorCode::PolicyViolation => clm_status::CLM_POLICY_VIOLATION,
            ErrorCode::PermissionDenied => clm_status::CLM_PERMISSION_DENIED,
            ErrorCode::Conflict => clm_status::CLM_CONFLICT,
            ErrorCode::Crypto => clm_status::CLM_CRYPTO,
            ErrorCode::Database => clm_status::CLM_DATABASE,
            ErrorCode::Authentication => clm_status::CLM_AUTHENTICATION,
            ErrorCode::Configuration => clm_status::CLM_CONFIGURATION,
            ErrorCode::Closed => clm_status::CLM_CLOSED,
            ErrorCode::Internal => clm_status::CLM_INTERNAL,
            _ => clm_status::CLM_INTERNAL,
        }
    }
}

/// The library version as a static NUL-terminated string (never freed).
#[unsafe(no_mangle)]
pub extern "C" fn clm_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// The stable name of a status (`"NOT_FOUND"`, ..., `"OK"` for 0), or NULL
/// when the number is not a status. Static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn clm_error_code_name(code: u32) -> *const c_char {
    std::panic::catch_unwind(|| {
        if code == 0 {
            return c"OK".as_ptr();
        }
        ErrorCode::ALL
            .iter()
            .find(|c| **c as u32 == code)
            .map(|c| code_cstr(*c).as_ptr())
            .unwrap_or(std::ptr::null())
    })
    .unwrap_or(std::ptr::null())
}

fn code_cstr(code: ErrorCode) -> &'static CStr {
    match code {
        ErrorCode::NotFound => c"NOT_FOUND",
        ErrorCode::AlreadyExists => c"ALREADY_EXISTS",
        ErrorCode::InvalidInput => c"INVALID_INPUT",
        ErrorCode::PolicyViolation => c"POLICY_VIOLATION",
        ErrorCode::PermissionDenied => c"PERMISSION_DENIED",
        ErrorCode::Conflict => c"CONFLICT",
        ErrorCode::Crypto => c"CRYPTO",
        ErrorCode::Database => c"DATABASE",
        ErrorCode::Authentication => c"AUTHENTICATION",
        ErrorCode::Configuration => c"CONFIGURATION",
        ErrorCode::Closed => c"CLOSED",
        ErrorCode::Internal => c"INTERNAL",
        _ => c"UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_stable_name_and_number() {
        for code in ErrorCode::ALL {
            let name = unsafe { CStr::from_ptr(clm_error_code_name(code as u32)) };
            assert_eq!(name.to_str().unwrap(), code.as_str());
            assert_eq!(clm_status::from(code) as u32, code as u32, "{code}");
        }
        assert!(clm_error_code_name(9999).is_null());
    }

    /// Parity: the operations of `bindings/operations.txt` are exactly the
    /// header's functions, less the C-only helpers (frees, error text).
    #[test]
    fn the_header_exposes_exactly_the_operations() {
        const HELPERS: &[&str] = &[
            "error_code_name",
            "last_error_message",
            "string_free",
            "handle_free",
            "actor_json",
            "actor_free",
        ];
        let header = include_str!("../include/clm.h");
        let mut exposed: Vec<&str> = header
            .lines()
            .filter(|line| !line.starts_with(' '))
            .filter_map(|line| line.split_once(" clm_").or(line.split_once("*clm_")))
            .filter_map(|(_, rest)| rest.split_once('(').map(|(name, _)| name))
            .filter(|name| !HELPERS.contains(name))
            .collect();
        let mut expected = wire::operations();
        exposed.sort_unstable();
        expected.sort_unstable();
        assert_eq!(exposed, expected);
    }
}
