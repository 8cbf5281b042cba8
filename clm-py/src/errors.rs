//! `ClmError` and one subclass per `clm::ErrorCode` (named by
//! `ErrorCode::name()`, with the stable string as class attribute `code`),
//! and the one conversion from `clm::Error`.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

/// `ClmError` first, then one class per `ErrorCode::ALL`, in that order.
static CLASSES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    CLASSES.get_or_try_init(py, || {
        let base = PyErr::new_type(
            py,
            c"clm.ClmError",
            Some(c"Every clm failure; `code` is the stable error code string."),
            Some(&py.get_type::<PyException>()),
            None,
        )?;
        base.bind(py).setattr("code", py.None())?;
        let mut classes = vec![base.clone_ref(py)];
        for code in clm::ErrorCode::ALL {
            let name = std::ffi::CString::new(format!("clm.{}", code.name()))
                .map_err(|err| pyo3::exceptions::PyValueError::new_err(err.to_string()))?;
            let class = PyErr::new_type(py, &name, None, Some(base.bind(py)), None)?;
            class.bind(py).setattr("code", code.as_str())?;
            classes.push(class);
        }
        Ok(classes)
    })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let classes = classes(py)?;
    m.add("ClmError", classes[0].bind(py))?;
    for (code, class) in clm::ErrorCode::ALL.iter().zip(&classes[1..]) {
        m.add(code.name(), class.bind(py))?;
    }
    Ok(())
}

/// A `clm::Error` on its way to Python (`?` converts through it).
#[derive(Debug)]
pub struct ClmErr(pub clm::Error);

impl From<clm::Error> for ClmErr {
    fn from(err: clm::Error) -> Self {
        ClmErr(err)
    }
}

impl From<ClmErr> for PyErr {
    fn from(ClmErr(err): ClmErr) -> PyErr {
        Python::attach(|py| {
            let classes = match classes(py) {
                Ok(classes) => classes,
                Err(err) => return err,
            };
            let index = clm::ErrorCode::ALL
                .iter()
                .position(|c| *c == err.code())
                .map_or(0, |i| i + 1);
            PyErr::from_type(classes[index].bind(py).clone(), err.to_string())
        })
    }
}
