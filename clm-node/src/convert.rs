//! JS values to JSON, the way `JSON.stringify` sees them, and nothing more:
//! the core checks what the JSON means.
//!
//! Objects give their own enumerable properties (an `undefined` property is
//! left out), arrays their elements, a `Date` its ISO 8601 text. Values JSON
//! has no form for (functions, symbols, BigInts, non-finite numbers, binary
//! buffers, nesting deeper than [`MAX_DEPTH`], cycles) are a `TypeError`
//! naming where they are (`field`), never a crash. Integer ranges are
//! checked before, by the generated wrapper (`runtime.js`), from the schema.

use napi::bindgen_prelude::{Array, JsObjectValue, Object, Unknown, ValueType};
use napi::{Env, JsValue, sys};
use serde_json::{Map, Number, Value};

use crate::errors::Failure;

/// Deeper nesting than any input of clm (and every cycle) is refused.
pub const MAX_DEPTH: usize = 64;

/// The JSON form of `value`; `path` names it in errors (`request.sans[0]`).
pub fn to_json(env: &Env, value: Unknown<'_>, path: &str) -> Result<Value, Failure> {
    convert(env, value, path, 0)
}

/// The named arguments of an operation: an object whose own properties
/// are converted one by one, each named by itself in errors
/// (`request.sans[0]`). A left-out (or null) argument is not passed: the
/// core applies its default, or names it as missing.
pub fn arguments_to_json(env: &Env, args: Unknown<'_>) -> Result<Value, Failure> {
    if !matches!(args.get_type(), Ok(ValueType::Object)) || args.is_array().unwrap_or(true) {
        return Err(Failure::type_error(
            "arguments",
            "must be an object of named arguments",
        ));
    }
    let object: Object = unsafe { args.cast() }.map_err(|err| napi_failure("arguments", err))?;
    let keys = Object::keys(&object).map_err(|err| napi_failure("arguments", err))?;
    let mut map = Map::new();
    for key in keys {
        let item: Unknown = object
            .get_named_property(&key)
            .map_err(|err| napi_failure(&key, err))?;
        if !is_absent(&item) {
            let value = convert(env, item, &key, 0)?;
            map.insert(key, value);
        }
    }
    Ok(Value::Object(map))
}

/// `undefined` (a left-out argument or property).
pub fn is_undefined(value: &Unknown<'_>) -> bool {
    matches!(value.get_type(), Ok(ValueType::Undefined))
}

/// `undefined` or `null`.
pub fn is_absent(value: &Unknown<'_>) -> bool {
    matches!(
        value.get_type(),
        Ok(ValueType::Undefined) | Ok(ValueType::Null)
    )
}

fn napi_failure(path: &str, err: napi::Error) -> Failure {
    Failure::type_error(path, format!("cannot be read: {}", err.reason))
}

fn convert(env: &Env, value: Unknown<'_>, path: &str, depth: usize) -> Result<Value, Failure> {
    let kind = value.get_type().map_err(|err| napi_failure(path, err))?;
    let not_json = |what: &str| Failure::type_error(path, format!("{what} has no JSON form"));
    match kind {
        ValueType::Undefined | ValueType::Null => Ok(Value::Null),
        ValueType::Boolean => {
            let b: bool = unsafe { value.cast() }.map_err(|err| napi_failure(path, err))?;
            Ok(Value::Bool(b))
        }
        ValueType::Number => {
            let n: f64 = unsafe { value.cast() }.map_err(|err| napi_failure(path, err))?;
            number(n).ok_or_else(|| not_json("a non-finite number"))
        }
        ValueType::String => {
            let s: String = unsafe { value.cast() }.map_err(|err| napi_failure(path, err))?;
            Ok(Value::String(s))
        }
        ValueType::Object => {
            if depth >= MAX_DEPTH {
                return Err(Failure::type_error(
                    path,
                    format!("nested deeper than {MAX_DEPTH} levels (or refers to itself)"),
                ));
            }
            if value.is_array().map_err(|err| napi_failure(path, err))? {
                let array: Array =
                    unsafe { value.cast() }.map_err(|err| napi_failure(path, err))?;
                let mut items = Vec::with_capacity(array.len() as usize);
                for index in 0..array.len() {
                    let item: Unknown = array
                        .get_element(index)
                        .map_err(|err| napi_failure(path, err))?;
                    items.push(convert(env, item, &format!("{path}[{index}]"), depth + 1)?);
                }
                return Ok(Value::Array(items));
            }
            if value.is_date().map_err(|err| napi_failure(path, err))? {
                return date(env, &value).ok_or_else(|| not_json("an invalid Date"));
            }
            if value.is_typedarray().unwrap_or(false)
                || value.is_arraybuffer().unwrap_or(false)
                || value.is_buffer().unwrap_or(false)
                || value.is_dataview().unwrap_or(false)
            {
                return Err(Failure::type_error(
                    path,
                    "binary data has no JSON form (give PEM text, or DER as base64 text)",
                ));
            }
            let object: Object = unsafe { value.cast() }.map_err(|err| napi_failure(path, err))?;
            let keys = Object::keys(&object).map_err(|err| napi_failure(path, err))?;
            let mut map = Map::new();
            for key in keys {
                let item: Unknown = object
                    .get_named_property(&key)
                    .map_err(|err| napi_failure(path, err))?;
                if is_undefined(&item) {
                    continue;
                }
                let item_path = format!("{path}.{key}");
                map.insert(key, convert(env, item, &item_path, depth + 1)?);
            }
            Ok(Value::Object(map))
        }
        ValueType::Function => Err(not_json("a function")),
        ValueType::Symbol => Err(not_json("a symbol")),
        ValueType::BigInt => Err(Failure::type_error(
            path,
            "a BigInt has no JSON form (give a number or a string)",
        )),
        _ => Err(not_json("a native value")),
    }
}

/// Integral numbers within the safe range as integers, others as floats.
fn number(n: f64) -> Option<Value> {
    const SAFE: f64 = 9_007_199_254_740_991.0;
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() <= SAFE {
        return Some(Value::Number(Number::from(n as i64)));
    }
    Number::from_f64(n).map(Value::Number)
}

/// A `Date` as RFC 3339 text (what the core takes for timestamps).
fn date(env: &Env, value: &Unknown<'_>) -> Option<Value> {
    let mut millis = 0f64;
    let status = unsafe { sys::napi_get_date_value(env.raw(), value.raw(), &mut millis) };
    if status != sys::Status::napi_ok || !millis.is_finite() {
        return None;
    }
    let at = chrono::DateTime::from_timestamp_millis(millis as i64)?;
    Some(Value::String(
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    ))
}
