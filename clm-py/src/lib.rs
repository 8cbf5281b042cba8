//! Python module `clm` (native part `clm._native`). Converts arguments and
//! results only (through the shared wire module in `bindings/wire.rs`); the
//! service API is the core's.
//!
//! Synchronous: every call blocks on one internal tokio runtime with the GIL
//! released. Records are plain dicts of the core's serde form.

use pyo3::prelude::*;

mod client;
mod convert;
mod errors;

// Each binding uses its own subset of the shared wire module.
#[allow(dead_code)]
#[path = "../../bindings/wire.rs"]
mod wire;

/// The stable error codes, as (number, name) pairs.
#[pyfunction]
fn error_codes() -> Vec<(u32, &'static str)> {
    clm::ErrorCode::ALL
        .iter()
        .map(|c| (*c as u32, c.name()))
        .collect()
}

/// The operations every binding exposes (`bindings/operations.txt`).
#[pyfunction]
fn operations() -> Vec<&'static str> {
    wire::operations()
}

#[pymodule(name = "_native")]
fn clm_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", wire::version())?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(operations, m)?)?;
    m.add_class::<client::Clm>()?;
    m.add_class::<client::Actor>()?;
    errors::register(m)?;
    Ok(())
}
