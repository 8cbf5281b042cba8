//! clm's log records to Python's `logging` (through `clm::logging`, the one
//! forwarder every binding uses): each record goes to the logger named
//! after where it comes from, under `clm` (`clm.service.identity`,
//! `clm.db`, `clm.sqlx.query`), at the matching level (TRACE is 5).

use std::sync::Arc;

use clm::logging::{Level, LogRecord, LogSink};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::errors::ClmErr;
use crate::runtime::with_python;

/// Python's number for a level (`logging.DEBUG` is 10; TRACE, which
/// `logging` lacks, is 5).
fn python_level(level: Level) -> u32 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        _ => 5,
    }
}

/// The least severe clm level that a Python level lets through.
fn clm_level(python: i64) -> Level {
    match python {
        40.. => Level::ERROR,
        30..=39 => Level::WARN,
        20..=29 => Level::INFO,
        10..=19 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// `clm::service::identity` -> `clm.service.identity`; another crate's
/// target goes under `clm` (`sqlx::query` -> `clm.sqlx.query`).
fn logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    if dotted == "clm" || dotted.starts_with("clm.") {
        dotted
    } else {
        format!("clm.{dotted}")
    }
}

static GET_LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Hands one record to `logging` (attached to the interpreter; nothing once
/// it is exiting). A failing handler is reported as unraisable: the
/// operation that logged goes on.
fn deliver(record: &LogRecord<'_>) {
    with_python(|py| {
        let logged = GET_LOGGER
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(py.import("logging")?.getattr("getLogger")?.unbind())
            })
            .and_then(|get_logger| {
                let logger = get_logger.call1(py, (logger_name(record.target),))?;
                logger.call_method1(py, "log", (python_level(record.level), record.message))
            });
        if let Err(err) = logged {
            err.write_unraisable(py, None);
        }
    });
}

/// Forwards clm's records at Python level `level` and above (`logging.DEBUG`,
/// ...; below 10 includes every SQL statement) to `logging`; None stops.
#[pyfunction]
#[pyo3(signature = (level))]
pub fn forward_logs(level: Option<i64>) -> PyResult<()> {
    let Some(level) = level else {
        clm::logging::stop_forwarding();
        return Ok(());
    };
    let sink: LogSink = Arc::new(deliver);
    clm::logging::forward_to(sink, clm_level(level)).map_err(|err| ClmErr(err).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_become_loggers_under_clm_and_levels_match() {
        assert_eq!(
            logger_name("clm::service::identity"),
            "clm.service.identity"
        );
        assert_eq!(logger_name("clm"), "clm");
        assert_eq!(logger_name("sqlx::query"), "clm.sqlx.query");
        assert_eq!(clm_level(20), Level::INFO);
        assert_eq!(clm_level(50), Level::ERROR);
        assert_eq!(clm_level(5), Level::TRACE);
        assert_eq!(python_level(clm_level(30)), 30);
    }
}
