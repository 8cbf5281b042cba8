//! Native part of the Python package `clm` (imported as `clm._native`).
//!
//! It holds no per-operation code: [`handle::Handle::call`] runs any
//! operation through `clm::api::call` with its named arguments converted to
//! JSON. The Python package (`python/clm`) has one method per operation and
//! the record classes, generated from `bindings/api.json` by
//! `bindings/gen/python.py`; errors become its generated exception classes
//! ([`errors`]).
//!
//! One internal tokio runtime (rebuilt after `fork()`) runs every call:
//! `call` blocks on it with the GIL released; `call_async` (for `clm.aio`)
//! spawns on it and reports the outcome to a Python callback.

use pyo3::prelude::*;

mod convert;
mod errors;
mod handle;
mod logging;
mod runtime;

#[pymodule(name = "_native")]
fn clm_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", clm::api::version())?;
    m.add_class::<handle::Handle>()?;
    m.add_class::<handle::Actor>()?;
    m.add_function(wrap_pyfunction!(runtime::shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(logging::forward_logs, m)?)?;
    Ok(())
}
