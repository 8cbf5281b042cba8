//! Native part of the Python package `clm` (imported as `clm._native`).
//!
//! It holds no per-operation code: [`operations`] hands Python the core's
//! operation table (`clm::api::OPERATIONS`) as data, and
//! [`handle::Handle::call`] runs any operation through `clm::api::call`
//! with its named arguments converted to JSON. The Python package
//! (`python/clm`) turns the table into one method per operation and the
//! results into record classes; `generate.py` writes that code from the
//! table and the tests check it against this module.
//!
//! Synchronous: every call blocks on one internal tokio runtime (rebuilt
//! after `fork()`) with the GIL released.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

mod convert;
mod errors;
mod handle;
mod runtime;

/// The stable error codes, as (number, name) pairs.
#[pyfunction]
fn error_codes() -> Vec<(u32, &'static str)> {
    clm::ErrorCode::ALL
        .iter()
        .map(|c| (*c as u32, c.name()))
        .collect()
}

/// Rust type text without spaces (`stringify!` puts some in).
fn compact(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The operation table of the core, in its order: a list of dicts
/// `{name, module, summary, needs_actor, params: [{name, kind, optional}],
/// returns}` (kinds and returns are Rust type text without spaces).
#[pyfunction]
fn operations(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let list = PyList::empty(py);
    for operation in clm::api::OPERATIONS {
        let params = PyList::empty(py);
        for param in operation.params {
            let entry = PyDict::new(py);
            entry.set_item("name", param.name)?;
            entry.set_item("kind", compact(param.kind))?;
            entry.set_item("optional", param.optional)?;
            params.append(entry)?;
        }
        let entry = PyDict::new(py);
        entry.set_item("name", operation.name)?;
        entry.set_item("module", operation.module)?;
        entry.set_item("summary", operation.summary.trim())?;
        entry.set_item("needs_actor", operation.needs_actor)?;
        entry.set_item("params", params)?;
        entry.set_item("returns", compact(operation.returns))?;
        list.append(entry)?;
    }
    Ok(list)
}

#[pymodule(name = "_native")]
fn clm_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", clm::api::version())?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(operations, m)?)?;
    m.add_class::<handle::Handle>()?;
    m.add_class::<handle::Actor>()?;
    errors::register(m)?;
    Ok(())
}
