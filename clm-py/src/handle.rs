//! `clm._native.Handle` (an open clm; the Python `clm.Clm` wraps it) and
//! `clm.Actor` (an opaque actor).

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyType;
use serde_json::Value;

use crate::convert::{to_json, to_py};
use crate::errors::ClmErr;
use crate::runtime::block;

fn raise(err: clm::Error) -> PyErr {
    ClmErr(err).into()
}

/// Who performs an operation: from `Clm.system_actor()`,
/// `Clm.validate_session()`, `Clm.authenticate_api_key()` or
/// `Clm.actor_for_user()`. Opaque; its properties describe it.
#[pyclass(frozen, module = "clm")]
pub struct Actor {
    inner: clm::Actor,
    description: Value,
}

impl Actor {
    fn text(&self, field: &str) -> Option<String> {
        self.description[field].as_str().map(str::to_string)
    }
}

#[pymethods]
impl Actor {
    /// `"user"`, `"api_key"` or `"system"`.
    #[getter]
    fn kind(&self) -> String {
        self.text("kind").unwrap_or_default()
    }

    /// The user's id (None for the system actor).
    #[getter]
    fn user_id(&self) -> Option<String> {
        self.text("user_id")
    }

    /// The session's id when the actor comes from a session.
    #[getter]
    fn session_id(&self) -> Option<String> {
        self.text("session_id")
    }

    /// The API key's id when the actor comes from an API key.
    #[getter]
    fn api_key_id(&self) -> Option<String> {
        self.text("api_key_id")
    }

    /// The organizations the actor belongs to.
    #[getter]
    fn organization_ids(&self) -> Vec<String> {
        self.description["organization_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn __repr__(&self) -> String {
        format!("Actor({})", self.description)
    }
}

/// An open clm (the native half of `clm.Clm`).
#[pyclass(frozen, module = "clm._native")]
pub struct Handle {
    inner: Mutex<Option<clm::Clm>>,
}

impl Handle {
    fn core(&self) -> PyResult<clm::Clm> {
        self.inner
            .lock()
            .map_err(|_| raise(clm::Error::Internal("the handle's lock is poisoned".into())))?
            .clone()
            .ok_or_else(|| raise(clm::Error::Closed))
    }
}

/// Calls the Python `callback` with each progress report; an exception it
/// raises goes to `sys.unraisablehook` (the operation goes on).
fn progress_sink(callback: Py<PyAny>) -> impl Fn(Value) + Send + Sync {
    move |value: Value| {
        Python::attach(|py| {
            let callback = callback.bind(py);
            let called = to_py(py, &value).and_then(|report| callback.call1((report,)));
            if let Err(err) = called {
                err.write_unraisable(py, Some(callback));
            }
        });
    }
}

#[pymethods]
impl Handle {
    /// Opens clm with the options object of `clm::api::OpenOptions`.
    #[staticmethod]
    fn open(py: Python<'_>, options: &Bound<'_, PyAny>) -> PyResult<Handle> {
        let options = to_json("options", options)?;
        let config = clm::api::OpenOptions::parse(options)
            .and_then(clm::api::OpenOptions::into_config)
            .map_err(raise)?;
        let clm = block(py, clm::Clm::open(config))?;
        Ok(Handle {
            inner: Mutex::new(Some(clm)),
        })
    }

    /// Closes both databases; later calls raise `clm.Closed`. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .inner
            .lock()
            .map_err(|_| raise(clm::Error::Internal("the handle's lock is poisoned".into())))?
            .take();
        if let Some(clm) = taken {
            block(py, async move {
                clm.close().await;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> PyResult<bool> {
        Ok(self
            .inner
            .lock()
            .map_err(|_| raise(clm::Error::Internal("the handle's lock is poisoned".into())))?
            .is_none())
    }

    /// Runs operation `name` as `actor` with the named arguments `args` (a
    /// dict, or None). Returns the result as Python data (dicts, lists,
    /// str, int, float, bool, None) or an `Actor`. `progress` is called
    /// with each progress report (a dict).
    #[pyo3(signature = (name, actor=None, args=None, progress=None))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        actor: Option<&Bound<'py, Actor>>,
        args: Option<&Bound<'py, PyAny>>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = match args {
            Some(args) => to_json(name, args)?,
            None => Value::Null,
        };
        let clm = self.core()?;
        let actor = actor.map(|actor| actor.get().inner.clone());
        let sink = progress.map(progress_sink);
        let reply = block(py, async {
            let sink = sink
                .as_ref()
                .map(|sink| sink as &(dyn Fn(Value) + Send + Sync));
            clm::api::call(&clm, actor.as_ref(), name, input, sink).await
        })?;
        match reply {
            clm::api::Reply::Value(value) => to_py(py, &value),
            clm::api::Reply::Actor(inner, description) => {
                Ok(Bound::new(py, Actor { inner, description })?.into_any())
            }
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}
