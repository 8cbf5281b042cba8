//! Python values <-> JSON values (the arguments and results of
//! `clm::api::call`).

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::{Map, Number, Value};

use crate::errors::ClmErr;

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
/// their text. Anything else is a TypeError naming `what` (the operation)
/// and the path to the value (`request.sans[0].value`); an int no 64-bit
/// integer holds is `clm.InvalidInput` with that path as its field (the
/// core's own range checks name fields the same way).
pub fn to_json(what: &str, value: &Bound<'_, PyAny>) -> PyResult<Value> {
    let mut path = String::new();
    convert(what, &mut path, value)
}

fn type_error(what: &str, path: &str, text: String) -> PyErr {
    if path.is_empty() {
        PyTypeError::new_err(format!("{what}: {text}"))
    } else {
        PyTypeError::new_err(format!("{what}: {path}: {text}"))
    }
}

/// Runs `inner` with `segment` appended to `path` (removed after).
fn nested<T>(path: &mut String, segment: &str, inner: impl FnOnce(&mut String) -> T) -> T {
    let length = path.len();
    path.push_str(segment);
    let result = inner(path);
    path.truncate(length);
    result
}

fn convert(what: &str, path: &mut String, value: &Bound<'_, PyAny>) -> PyResult<Value> {
    if value.is_none() {
        Ok(Value::Null)
    } else if let Ok(b) = value.cast::<PyBool>() {
        Ok(Value::Bool(b.is_true()))
    } else if value.is_instance_of::<PyInt>() {
        if let Ok(i) = value.extract::<i64>() {
            Ok(Value::from(i))
        } else if let Ok(u) = value.extract::<u64>() {
            Ok(Value::from(u))
        } else {
            let field = if path.is_empty() { what } else { path.as_str() };
            Err(ClmErr(clm::Error::invalid(
                field,
                format!(
                    "{} is out of range (no 64-bit integer holds it)",
                    value.str()?
                ),
            ))
            .into())
        }
    } else if let Ok(f) = value.cast::<PyFloat>() {
        Number::from_f64(f.value())
            .map(Value::Number)
            .ok_or_else(|| type_error(what, path, "NaN and infinity are not allowed".into()))
    } else if let Ok(s) = value.cast::<PyString>() {
        Ok(Value::String(s.to_str()?.to_string()))
    } else if let Ok(dict) = value.cast::<PyDict>() {
        let mut map = Map::new();
        for (key, item) in dict.iter() {
            let key = key
                .cast::<PyString>()
                .map_err(|_| type_error(what, path, "keys must be str".into()))?
                .to_str()?
                .to_string();
            let segment = if path.is_empty() {
                key.clone()
            } else {
                format!(".{key}")
            };
            let item = nested(path, &segment, |path| convert(what, path, &item))?;
            map.insert(key, item);
        }
        Ok(Value::Object(map))
    } else if let Ok(list) = value.cast::<PyList>() {
        sequence(what, path, list.iter())
    } else if let Ok(tuple) = value.cast::<PyTuple>() {
        sequence(what, path, tuple.iter())
    } else if is_instance(value, &DATETIME, "datetime", "datetime")?
        || is_instance(value, &DATE, "datetime", "date")?
    {
        Ok(Value::String(value.call_method0("isoformat")?.extract()?))
    } else if is_instance(value, &UUID, "uuid", "UUID")? {
        Ok(Value::String(value.str()?.to_str()?.to_string()))
    } else if is_instance(value, &PATH_LIKE, "os", "PathLike")? {
        let fspath = value.call_method0("__fspath__")?;
        convert(what, path, &fspath)
    } else {
        Err(type_error(
            what,
            path,
            format!(
                "{} is not a dict, list, str, int, float, bool or None",
                value.get_type().name()?
            ),
        ))
    }
}

fn sequence<'py>(
    what: &str,
    path: &mut String,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Value> {
    items
        .enumerate()
        .map(|(index, item)| {
            nested(path, &format!("[{index}]"), |path| {
                convert(what, path, &item)
            })
        })
        .collect()
}

/// `uuid.UUID(text)`.
pub fn uuid<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    UUID.import(py, "uuid", "UUID")?.call1((text,))
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
