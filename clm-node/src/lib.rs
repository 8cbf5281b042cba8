//! Node.js addon for clm. Converts arguments and results only (through the
//! shared wire module in `bindings/wire.rs`); the service API is the core's.
//!
//! Every operation returns a Promise and runs on napi's tokio runtime (the
//! core moves key generation and password hashing to blocking threads, so
//! the main thread never does CPU-heavy work). Records are plain objects of
//! the core's serde form; a failure rejects with an `Error` whose `code` is
//! the stable error code string (`"NOT_FOUND"`, ...).

use napi_derive::napi;

mod client;
mod errors;

// Each binding uses its own subset of the shared wire module.
#[allow(dead_code)]
#[path = "../../bindings/wire.rs"]
mod wire;

/// The library version.
#[napi]
pub fn version() -> String {
    wire::version().to_string()
}

/// The stable error code strings (`NOT_FOUND`, ...), in numeric order.
#[napi]
pub fn error_codes() -> Vec<String> {
    clm::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect()
}

/// The operations every binding exposes (`bindings/operations.txt`).
#[napi]
pub fn operations() -> Vec<String> {
    wire::operations().into_iter().map(String::from).collect()
}
