//! The conversion of failures to JS errors: a `clm::Error` becomes an
//! `Error` carrying the stable `code` (`ErrorCode::as_str()`); a JS value the
//! binding cannot hand to the core becomes a `TypeError` with code
//! `INVALID_INPUT`.

use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::{Env, JsTypeError, JsValue, Status};

/// Why a call failed.
pub enum Failure {
    /// The core refused or failed (carries its code).
    Core(clm::Error),
    /// A JS value of the wrong type (no JSON form, not an `Actor`, ...).
    Type(String),
}

impl From<clm::Error> for Failure {
    fn from(err: clm::Error) -> Self {
        Failure::Core(err)
    }
}

impl Failure {
    /// The JS error to reject or throw with.
    pub fn into_js(self, env: &Env) -> napi::Error {
        match self {
            Failure::Core(err) => js_error(env, err),
            Failure::Type(message) => type_error(env, message),
        }
    }
}

/// A JS `Error` with `message` = the error's text and `code` = its code.
pub fn js_error(env: &Env, err: clm::Error) -> napi::Error {
    let code = err.code().as_str();
    let message = err.to_string();
    let build = || -> napi::Result<napi::Error> {
        let mut object = env.create_error(napi::Error::new(Status::GenericFailure, &message))?;
        object.set_named_property("code", code)?;
        Ok(napi::Error::from(object.to_unknown()))
    };
    build()
        .unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, format!("{message} [{code}]")))
}

/// A JS `TypeError` with code `INVALID_INPUT`.
pub fn type_error(env: &Env, message: String) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let value =
            JsTypeError::from(napi::Error::new(Status::InvalidArg, &message)).into_unknown(*env);
        let mut object: Object = unsafe { value.cast()? };
        object.set_named_property("code", "INVALID_INPUT")?;
        Ok(napi::Error::from(object.to_unknown()))
    };
    build().unwrap_or_else(|_| napi::Error::new(Status::InvalidArg, message.clone()))
}
