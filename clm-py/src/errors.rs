//! The one conversion from `clm::Error` to a Python exception: an instance
//! of the generated class of its code (`clm._errors`, from api.json's
//! `errors`) built from `clm::Error::details()`, so `code`, `field`,
//! `violations` and `entity` reach Python as they are.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyModule;

use crate::convert::to_py;

static ERRORS: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// A `clm::Error` on its way to Python (`?` converts through it).
#[derive(Debug)]
pub struct ClmErr(pub clm::Error);

impl From<clm::Error> for ClmErr {
    fn from(err: clm::Error) -> Self {
        ClmErr(err)
    }
}

/// The exception object of `err` (an instance of `clm.<Name>`).
fn exception(py: Python<'_>, err: &clm::Error) -> PyResult<PyErr> {
    let details = err.details();
    let module = ERRORS.get_or_try_init(py, || {
        py.import("clm._errors").map(|module| module.unbind())
    })?;
    let class = module.bind(py).getattr(details.name)?;
    let as_json = serde_json::to_value(&details).map_err(|serialize| {
        PyRuntimeError::new_err(format!("cannot pass on a clm error ({serialize}): {err}"))
    })?;
    let instance = class.call1((details.message.as_str(), to_py(py, &as_json)?))?;
    Ok(PyErr::from_value(instance))
}

impl From<ClmErr> for PyErr {
    fn from(ClmErr(err): ClmErr) -> PyErr {
        // Failing to build the exception raises why (the import error, ...).
        Python::attach(|py| exception(py, &err).unwrap_or_else(|failed| failed))
    }
}
