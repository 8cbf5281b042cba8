//! `setLogger(callback, level)`: clm's log records handed to a JS function
//! (through `clm::logging`, the one forwarder every binding uses).

use std::sync::Arc;

use clm::logging::{LogRecord, LogSink};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::{Value, json};

use crate::convert::is_absent;
use crate::errors::Failure;

/// Weak: a registered logger never keeps the process alive.
type LogCallback = ThreadsafeFunction<Value, Unknown<'static>, Value, napi::Status, false, true>;

fn level_name(level: clm::logging::Level) -> &'static str {
    match level {
        clm::logging::Level::ERROR => "error",
        clm::logging::Level::WARN => "warn",
        clm::logging::Level::INFO => "info",
        clm::logging::Level::DEBUG => "debug",
        _ => "trace",
    }
}

fn install(callback: Unknown<'_>, level: Option<String>) -> std::result::Result<(), Failure> {
    if is_absent(&callback) {
        clm::logging::stop_forwarding();
        return Ok(());
    }
    if !matches!(callback.get_type(), Ok(ValueType::Function)) {
        return Err(Failure::type_error(
            "callback",
            "must be a function or null",
        ));
    }
    let level = clm::logging::parse_level(level.as_deref().unwrap_or("info"))?;
    let build = || -> napi::Result<LogCallback> {
        let function: Function<'_, Value, Unknown<'static>> = unsafe { callback.cast()? };
        function
            .build_threadsafe_function::<Value>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()
    };
    let function = build().map_err(|err| {
        Failure::type_error("callback", format!("cannot be called: {}", err.reason))
    })?;
    let sink: LogSink = Arc::new(move |record: &LogRecord<'_>| {
        // NonBlocking: the records queue for the JS thread; the thread that
        // logged never waits for it.
        let _ = function.call_with_return_value(
            json!({
                "level": level_name(record.level),
                "target": record.target,
                "message": record.message,
            }),
            ThreadsafeFunctionCallMode::NonBlocking,
            |_returned, _env| Ok(()),
        );
    });
    clm::logging::forward_to(sink, level)?;
    Ok(())
}

/// Sends clm's log records at `level` (`error`, `warn`, `info` (default),
/// `debug`, `trace`) or more severe to `callback({level, target,
/// message})`, on the JS thread; null stops. Records never hold a secret.
#[napi(js_name = "setLogger")]
pub fn set_logger<'env>(
    env: &'env Env,
    callback: Unknown<'env>,
    level: Option<String>,
) -> napi::Result<()> {
    install(callback, level).map_err(|failure| failure.into_js(env))
}
