//! Node.js addon for clm. Converts arguments and results only; the whole
//! service API arrives with the bindings issue.

use napi_derive::napi;

/// The library version.
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The stable error code strings (`NOT_FOUND`, ...), in numeric order.
#[napi]
pub fn error_codes() -> Vec<String> {
    clm::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect()
}
