//! `clm._native.Handle` (an open clm; the Python `clm.Clm` wraps it) and
//! `clm.Actor` (an opaque actor).

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyType;
use serde_json::Value;

use crate::convert::{to_json, to_py, uuid};
use crate::errors::ClmErr;
use crate::runtime::{block, spawn, with_python};

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
    fn text(&self, field: &str) -> Option<&str> {
        self.description[field].as_str()
    }

    /// The id in `field` as a `uuid.UUID` (None when absent).
    fn id<'py>(&self, py: Python<'py>, field: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.text(field).map(|text| uuid(py, text)).transpose()
    }
}

#[pymethods]
impl Actor {
    /// `"user"`, `"api_key"` or `"system"`.
    #[getter]
    fn kind(&self) -> String {
        self.text("kind").unwrap_or_default().to_string()
    }

    /// The user's id (None for the system actor).
    #[getter]
    fn user_id<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.id(py, "user_id")
    }

    /// The session's id when the actor comes from a session.
    #[getter]
    fn session_id<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.id(py, "session_id")
    }

    /// The API key's id when the actor comes from an API key.
    #[getter]
    fn api_key_id<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.id(py, "api_key_id")
    }

    /// The organizations the actor belongs to.
    #[getter]
    fn organization_ids<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        self.description["organization_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(|id| uuid(py, id))
                    .collect()
            })
            .unwrap_or_else(|| Ok(Vec::new()))
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
        with_python(|py| {
            let callback = callback.bind(py);
            let called = to_py(py, &value).and_then(|report| callback.call1((report,)));
            if let Err(err) = called {
                err.write_unraisable(py, Some(callback));
            }
        });
    }
}

/// A reply of `clm::api::call` as Python data or an `Actor`.
fn reply_to_py(py: Python<'_>, reply: clm::api::Reply) -> PyResult<Bound<'_, PyAny>> {
    match reply {
        clm::api::Reply::Value(value) => to_py(py, &value),
        clm::api::Reply::Actor(inner, description) => {
            Ok(Bound::new(py, Actor { inner, description })?.into_any())
        }
    }
}

/// Hands the outcome of a spawned call to its Python callback `done`, as
/// `done(True, result)` or `done(False, exception)`, from the runtime's
/// thread. Nothing is called when the interpreter is shutting down.
fn complete(
    done: Py<PyAny>,
    outcome: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>>,
) {
    // `move`: `done` is released here, attached, not later without the GIL.
    with_python(move |py| {
        let called = match outcome(py) {
            Ok(value) => done.call1(py, (true, value)),
            Err(err) => done.call1(py, (false, err.into_value(py))),
        };
        if let Err(err) = called {
            err.write_unraisable(py, Some(done.bind(py)));
        }
    });
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
        reply_to_py(py, reply)
    }

    /// `open` for asyncio: checks `options` now, opens on the runtime and
    /// calls `done(True, handle)` or `done(False, exception)`.
    #[staticmethod]
    fn open_async(options: &Bound<'_, PyAny>, done: Py<PyAny>) -> PyResult<()> {
        let options = to_json("options", options)?;
        let config = clm::api::OpenOptions::parse(options)
            .and_then(clm::api::OpenOptions::into_config)
            .map_err(raise)?;
        spawn(async move {
            let opened = clm::Clm::open(config).await;
            complete(done, |py| {
                let clm = opened.map_err(raise)?;
                Ok(Bound::new(
                    py,
                    Handle {
                        inner: Mutex::new(Some(clm)),
                    },
                )?
                .into_any())
            });
        })
    }

    /// `close` for asyncio: `done(True, None)` once both databases closed.
    fn close_async(&self, done: Py<PyAny>) -> PyResult<()> {
        let taken = self
            .inner
            .lock()
            .map_err(|_| raise(clm::Error::Internal("the handle's lock is poisoned".into())))?
            .take();
        spawn(async move {
            if let Some(clm) = taken {
                clm.close().await;
            }
            complete(done, |py| Ok(py.None().into_bound(py)));
        })
    }

    /// `call` for asyncio: converts the arguments now (raising what `call`
    /// raises), runs the operation on the runtime and calls
    /// `done(True, result)` or `done(False, exception)` from its thread.
    #[pyo3(signature = (name, actor, args, progress, done))]
    fn call_async(
        &self,
        name: String,
        actor: Option<&Bound<'_, Actor>>,
        args: Option<&Bound<'_, PyAny>>,
        progress: Option<Py<PyAny>>,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        let input = match args {
            Some(args) => to_json(&name, args)?,
            None => Value::Null,
        };
        let clm = self.core()?;
        let actor = actor.map(|actor| actor.get().inner.clone());
        let sink = progress.map(progress_sink);
        spawn(async move {
            let sink = sink
                .as_ref()
                .map(|sink| sink as &(dyn Fn(Value) + Send + Sync));
            let reply = clm::api::call(&clm, actor.as_ref(), &name, input, sink).await;
            complete(done, |py| reply_to_py(py, reply.map_err(raise)?));
        })
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
