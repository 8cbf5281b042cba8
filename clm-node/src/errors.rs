//! The one conversion from `clm::Error` to a JS `Error` carrying the stable
//! `code` (`ErrorCode::as_str()`), and the bridge from core futures to
//! Promises that uses it.

use std::future::Future;

use napi::bindgen_prelude::JsObjectValue;
use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::{Env, JsValue, Status};

/// A JS `Error` with `message` = the error's text and `code` = its code.
pub fn js_error(env: &Env, err: clm::Error) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let mut object =
            env.create_error(napi::Error::new(Status::GenericFailure, err.to_string()))?;
        object.set_named_property("code", err.code().as_str())?;
        Ok(napi::Error::from(object.to_unknown()))
    };
    build().unwrap_or_else(|fallback| fallback)
}

/// Runs a core future on napi's tokio runtime; the Promise resolves with its
/// value or rejects with [`js_error`].
pub fn promise<'env, T, F>(env: &'env Env, future: F) -> napi::Result<PromiseRaw<'env, T>>
where
    T: 'static + Send + ToNapiValue,
    F: 'static + Send + Future<Output = clm::Result<T>>,
{
    env.spawn_future_with_callback(async move { Ok(future.await) }, |env, outcome| {
        outcome.map_err(|err| js_error(env, err))
    })
}

/// Throws (synchronously) a clm error with its code.
pub fn throw(env: &Env, err: clm::Error) -> napi::Error {
    js_error(env, err)
}
