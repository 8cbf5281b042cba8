//! Python module `clm` (native part). Converts arguments and results only;
//! the whole service API arrives with the bindings issue.

use pyo3::prelude::*;

/// The stable error codes, as (number, name) pairs.
#[pyfunction]
fn error_codes() -> Vec<(u32, &'static str)> {
    clm::ErrorCode::ALL
        .iter()
        .map(|c| (*c as u32, c.name()))
        .collect()
}

#[pymodule]
fn clm_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    Ok(())
}
