//! The one tokio runtime of the process: blocking on it with the GIL
//! released, or spawning on it for asyncio.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::errors::ClmErr;

/// One runtime for the process, rebuilt in a child after `fork()` (the
/// parent's worker threads do not exist there; its runtime is leaked).
static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);

fn runtime() -> clm::Result<Arc<tokio::runtime::Runtime>> {
    let mut slot = RUNTIME
        .lock()
        .map_err(|_| clm::Error::Internal("the runtime lock is poisoned".into()))?;
    let pid = std::process::id();
    if let Some((owner, runtime)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(runtime.clone());
    }
    if let Some((_, stale)) = slot.take() {
        std::mem::forget(stale);
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("clm-py")
            .enable_all()
            .build()
            .map_err(|err| clm::Error::Internal(format!("cannot start a runtime: {err}")))?,
    );
    *slot = Some((pid, runtime.clone()));
    Ok(runtime)
}

/// Runs a core future to completion with the GIL released.
pub fn block<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = clm::Result<T>> + Send,
{
    py.detach(|| runtime()?.block_on(future))
        .map_err(|err| ClmErr(err).into())
}

/// Runs `future` on the runtime without waiting for it (`clm.aio`).
pub fn spawn<F>(future: F) -> PyResult<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime()
        .map_err(|err| PyErr::from(ClmErr(err)))?
        .spawn(future);
    Ok(())
}

/// Set by [`shutdown`] (at interpreter exit): runtime threads no longer
/// enter Python.
static EXITING: AtomicBool = AtomicBool::new(false);
/// Runtime threads inside [`with_python`] right now.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` attached to Python from a runtime thread (a completion or a
/// progress report), or not at all once the interpreter is exiting. A
/// thread still attached when finalization starts aborts the process, so
/// [`shutdown`] waits for those inside here to leave.
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> Option<R> {
    // Counted before the flag is read, so `shutdown` (flag, then count)
    // either sees this thread or this thread sees the flag.
    IN_PYTHON.fetch_add(1, Ordering::SeqCst);
    let result = if EXITING.load(Ordering::SeqCst) {
        None
    } else {
        Python::try_attach(f)
    };
    IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Registered with `atexit` by the package: stops runtime threads from
/// entering Python and waits (GIL released, at most five seconds) for
/// those inside to leave. Operations still running finish unobserved.
#[pyfunction]
pub fn shutdown(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while IN_PYTHON.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
