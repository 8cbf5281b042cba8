//! The conversion of failures to JS errors. Every error carries the core's
//! structure (`clm::Error::details()`): `code` (`"POLICY_VIOLATION"`),
//! `number` (C's `clm_status`), `field` (or null), `violations`
//! (`[{rule, message}]`, empty unless a policy refused) and `entity` (or
//! null). A JS value the binding cannot hand to the core is a `TypeError`
//! with the same fields and code `INVALID_INPUT`.

use napi::bindgen_prelude::{JsObjectValue, Object};
use napi::{Env, JsError, JsTypeError, JsValue, Status};

/// Why a call failed.
pub enum Failure {
    /// The core refused or failed.
    Core(clm::Error),
    /// A JS value of the wrong type (no JSON form, not an `Actor`, ...):
    /// the argument or field at fault, and what is wrong with it.
    Type { field: String, message: String },
}

impl From<clm::Error> for Failure {
    fn from(err: clm::Error) -> Self {
        Failure::Core(err)
    }
}

impl Failure {
    pub fn type_error(field: impl Into<String>, message: impl Into<String>) -> Self {
        Failure::Type {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The JS error to reject or throw with.
    pub fn into_js(self, env: &Env) -> napi::Error {
        match self {
            Failure::Core(err) => js_error(env, err),
            Failure::Type { field, message } => type_error(env, field, message),
        }
    }
}

/// A JS `Error` carrying the core error's details.
pub fn js_error(env: &Env, err: clm::Error) -> napi::Error {
    let details = err.details();
    let fallback = format!("{} [{}]", details.message, details.code.as_str());
    let build = || -> napi::Result<napi::Error> {
        let value = JsError::from(napi::Error::new(Status::GenericFailure, &details.message))
            .into_unknown(*env);
        let object: Object = unsafe { value.cast()? };
        decorate(env, object, &details)
    };
    build().unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, fallback))
}

/// A JS `TypeError`, code `INVALID_INPUT`, naming `field`.
fn type_error(env: &Env, field: String, message: String) -> napi::Error {
    let details = clm::Error::invalid(field, message).details();
    let build = || -> napi::Result<napi::Error> {
        let value = JsTypeError::from(napi::Error::new(Status::InvalidArg, &details.message))
            .into_unknown(*env);
        let object: Object = unsafe { value.cast()? };
        decorate(env, object, &details)
    };
    build().unwrap_or_else(|_| napi::Error::new(Status::InvalidArg, details.message.clone()))
}

/// Sets the details' fields on the error object. The message is already
/// the error's own; `name` stays the JS class's (`Error`, `TypeError`).
fn decorate(
    env: &Env,
    mut object: Object<'_>,
    details: &clm::error::ErrorDetails,
) -> napi::Result<napi::Error> {
    object.set_named_property("code", details.code.as_str())?;
    object.set_named_property("number", details.number)?;
    object.set_named_property("field", details.field.as_deref())?;
    object.set_named_property("entity", details.entity.as_deref())?;
    let mut violations = env.create_array(0)?;
    for violation in &details.violations {
        let mut entry = Object::new(env)?;
        entry.set_named_property("rule", violation.rule.as_str())?;
        entry.set_named_property("message", violation.message.as_str())?;
        violations.insert(entry)?;
    }
    object.set_named_property("violations", violations)?;
    Ok(napi::Error::from(object.to_unknown()))
}
