//! Node.js addon for clm: every operation of `clm::api::OPERATIONS` as a
//! Promise-returning method of `Clm` (camelCase), run through
//! `clm::api::call`.
//!
//! The addon converts arguments to JSON and results back, nothing else: the
//! core parses and validates every input. Operations run on napi's tokio
//! runtime (the core moves key generation, password hashing and bulk
//! parsing to blocking threads), so the JS thread only converts values.
//! Records are plain objects of the core's serde form; a failure rejects
//! with an `Error` whose `code` is the stable error code string
//! (`"NOT_FOUND"`, ...), or a `TypeError` (code `INVALID_INPUT`) when a JS
//! value has no JSON form or an actor argument is not an `Actor`.

use napi_derive::napi;
use serde_json::Value;

mod client;
mod convert;
mod errors;

/// The library version.
#[napi]
pub fn version() -> String {
    clm::api::version().to_string()
}

/// The stable error code strings (`NOT_FOUND`, ...), in numeric order.
#[napi(ts_return_type = "ErrorCode[]")]
pub fn error_codes() -> Vec<String> {
    clm::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect()
}

/// The operation table of the core (`clm::api::OPERATIONS`): every
/// operation this binding exposes as a method of `Clm` (`jsName`).
#[napi(ts_return_type = "Operation[]")]
pub fn operations() -> Value {
    Value::Array(
        clm::api::OPERATIONS
            .iter()
            .map(|operation| {
                let mut entry = serde_json::to_value(operation).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut entry {
                    map.insert("js_name".into(), Value::String(camel(operation.name)));
                }
                entry
            })
            .collect(),
    )
}

/// `snake_case` to `camelCase`, as napi names the methods.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
