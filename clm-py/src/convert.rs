//! Python values <-> JSON values (the arguments and results of
//! `clm::api::call`).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::{Map, Number, Value};

static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PATH_LIKE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Whether `value` is an instance of `module.class`.
fn is_instance(
    value: &Bound<'_, PyAny>,
    cell: &PyOnceLock<Py<PyType>>,
    module: &str,
    class: &str,
) -> PyResult<bool> {
    let class = cell.import(value.py(), module, class)?;
    value.is_instance(class)
}

/// A dict/list/tuple/str/int/float/bool/None tree as JSON, with
/// `datetime`/`date` as ISO 8601 text and `uuid.UUID`/`os.PathLike` as
/// their text; anything else is a TypeError naming `what`.
pub fn to_json(what: &str, value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = value.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            Ok(Value::from(i))
        } else {
            Ok(Value::from(value.extract::<u64>()?))
        }
    } else if let Ok(f) = value.cast::<PyFloat>() {
        Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| {
                PyTypeError::new_err(format!("{what}: NaN and infinity are not allowed"))
            })
    } else if let Ok(s) = value.cast::<PyString>() {
        Ok(Value::String(s.to_str()?.to_string()))
    } else if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            let key = key
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("{what}: keys must be str")))?;
            map.insert(key.to_str()?.to_string(), to_json(what, &item)?);
        }
        Ok(Value::Object(map))
    } else if let Ok(list) = value.cast::<PyList>() {
        list.iter().map(|item| to_json(what, &item)).collect()
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        tuple.iter().map(|item| to_json(what, &item)).collect()
    } else if is_instance(value, &DATETIME, "datetime", "datetime")?
        || is_instance(value, &DATE, "datetime", "date")?
    {
        Ok(Value::String(value.call_method0("isoformat")?.extract()?))
    } else if is_instance(value, &UUID, "uuid", "UUID")? {
        Ok(Value::String(value.str()?.to_str()?.to_string()))
    } else if is_instance(value, &PATH_LIKE, "os", "PathLike")? {
        let path = value.call_method0("__fspath__")?;
        to_json(what, &path)
    } else {
        Err(PyTypeError::new_err(format!(
            "{what}: {} is not a dict, list, str, int, float, bool or None",
            value.get_type().name()?
        )))
    }
}

/// A JSON value as Python objects (dicts, lists, str, int, float, bool, None).
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}
