//! Node.js addon for clm: the native half of the `clm` package.
//!
//! The package's `Clm` class (`index.js`, with `index.d.ts`, generated
//! from `bindings/api.json` by `bindings/gen/node.py`) has one camelCase
//! method per operation; each checks integer ranges from the schema
//! (`runtime.js`) and calls [`client::Handle`] with the operation's name
//! and its named arguments. The addon converts JS values to JSON and
//! results back, nothing else: the core parses and validates every input
//! (`clm::api::call`). Operations run on napi's tokio runtime, so the JS
//! thread only converts values. A failure rejects with an `Error` carrying
//! the core's error details (`code`, `number`, `field`, `violations`,
//! `entity`), or a `TypeError` (code `INVALID_INPUT`) when a JS value has no
//! JSON form or an actor argument is not an `Actor`.

use napi_derive::napi;

mod client;
mod convert;
mod errors;
mod logging;

pub use logging::set_logger;

/// The library version.
#[napi]
pub fn version() -> String {
    clm::api::version().to_string()
}
