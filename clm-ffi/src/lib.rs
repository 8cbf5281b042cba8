//! C ABI over the clm service API (`libclm`). This crate holds no domain
//! logic: it converts arguments and results and catches panics at the
//! boundary. The full surface arrives with the bindings issue; today it
//! exposes the version and the stable error codes.

use std::ffi::{CStr, c_char};

use clm::ErrorCode;

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

/// The stable name of an error code (`"NOT_FOUND"`, ...), or NULL when the
/// number is not a code. Static string, never freed.
#[unsafe(no_mangle)]
pub extern "C" fn clm_error_code_name(code: u32) -> *const c_char {
    std::panic::catch_unwind(|| {
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
    fn every_code_has_its_stable_name() {
        for code in ErrorCode::ALL {
            let name = unsafe { CStr::from_ptr(clm_error_code_name(code as u32)) };
            assert_eq!(name.to_str().unwrap(), code.as_str());
        }
        assert!(clm_error_code_name(9999).is_null());
    }
}
