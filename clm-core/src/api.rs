//! The operation table the language bindings expose, and one JSON-in,
//! JSON-out entry point for each operation.
//!
//! Python, Node and C all call [`call`] with an operation name and a JSON
//! object of named arguments; this module parses and validates the input
//! (naming the field that is wrong), runs the service operation and returns
//! the record in its `serde` form. The bindings therefore never parse input
//! themselves, and [`OPERATIONS`] is the one list a binding is checked
//! against: every public operation of [`Clm`](crate::Clm) is in it (a test
//! reads the service sources to make sure), and every binding's parity test
//! compares what it exposes with it.

mod inputs;
mod operations;

pub use inputs::OpenOptions;
pub use operations::OPERATIONS;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::service::rotation::RotationProgress;
use crate::{Actor, Clm, Error, Result};

/// One operation as the bindings see it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Operation {
    /// The Rust name on [`Clm`](crate::Clm) (or on the binding's handle for
    /// `open`, `close`, `version`), in `snake_case`.
    pub name: &'static str,
    /// The core module that implements it (`identity`, `issuance`, ...).
    pub module: &'static str,
    /// What it does, one line.
    pub summary: &'static str,
    /// Whether it needs an actor (every operation but login, session and
    /// API key validation, and the handle operations).
    pub needs_actor: bool,
    /// Its named arguments, in order.
    pub params: &'static [Param],
    /// What it returns, in the bindings' type notation: a record name
    /// (`Certificate`), `Page<Record>`, `List<Record>`, `Actor`, `Count`,
    /// `Text`, `Bool` or `Nothing`.
    pub returns: &'static str,
}

/// One named argument of an [`Operation`].
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Param {
    pub name: &'static str,
    /// The argument's type in the bindings' notation: `Text`, `Int`,
    /// `Bool`, `Timestamp` (RFC 3339 text), an id type (`CertificateId`,
    /// text), an input object (`IssueInput`), `List<T>`, `Json`.
    pub kind: &'static str,
    /// Whether it may be left out (Option, or a documented default).
    pub optional: bool,
}

impl Operation {
    /// The operation named `name`.
    pub fn find(name: &str) -> Option<&'static Operation> {
        OPERATIONS.iter().find(|operation| operation.name == name)
    }
}

/// The names of every operation, in table order.
pub fn operation_names() -> impl Iterator<Item = &'static str> {
    OPERATIONS.iter().map(|operation| operation.name)
}

/// What an operation produced: a record in its JSON form, or an actor (the
/// bindings keep actors as opaque handles).
pub enum Reply {
    Value(Value),
    Actor(Actor, Value),
}

impl Reply {
    /// The JSON form (for an actor, its description).
    pub fn into_value(self) -> Value {
        match self {
            Reply::Value(value) | Reply::Actor(_, value) => value,
        }
    }
}

/// Receives rotation progress as `{"rotation_id", "total", "rotated"}`.
pub type ProgressSink<'a> = &'a (dyn Fn(Value) + Send + Sync);

/// Runs operation `name` with the named arguments in `input` (a JSON object,
/// or null for none) as `actor`.
///
/// An unknown operation, a missing actor where one is needed, an unknown or
/// missing argument, or an argument of the wrong shape is InvalidInput
/// naming it; nothing is run then.
///
/// The future is boxed and `Send`, so a binding can run it on any runtime
/// thread (an `async fn` this large would otherwise leave `Send` unproven
/// for every lifetime at the binding's call site).
pub fn call<'a>(
    clm: &'a Clm,
    actor: Option<&'a Actor>,
    name: &'a str,
    input: Value,
    progress: Option<ProgressSink<'a>>,
) -> Pin<Box<dyn Future<Output = Result<Reply>> + Send + 'a>> {
    Box::pin(async move {
        let Some(operation) = Operation::find(name) else {
            return Err(Error::invalid(
                "operation",
                format!("{name:?} is not an operation of clm"),
            ));
        };
        if operation.needs_actor && actor.is_none() {
            return Err(Error::invalid(
                "actor",
                format!(
                    "{name} needs an actor (from system_actor, validate_session or authenticate_api_key)"
                ),
            ));
        }
        operations::dispatch(clm, actor, name, input, progress).await
    })
}

/// The description of `actor` a binding shows: `{"kind", "user_id",
/// "session_id", "api_key_id", "organization_ids"}`; never its permissions
/// as something to edit.
pub fn describe_actor(actor: &Actor) -> Value {
    let kind = match actor.kind {
        crate::ActorKind::User(_) => "user",
        crate::ActorKind::ApiKey { .. } => "api_key",
        crate::ActorKind::System => "system",
    };
    serde_json::json!({
        "kind": kind,
        "user_id": actor.user_id(),
        "session_id": actor.session_id,
        "api_key_id": actor.api_key_id(),
        "organization_ids": actor.organization_ids(),
    })
}

/// The library version.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Parses the arguments object of operation `name`; null means none.
fn arguments<T: DeserializeOwned>(name: &str, input: Value) -> Result<T> {
    let input = match input {
        Value::Null => Value::Object(serde_json::Map::new()),
        Value::Object(map) => Value::Object(map),
        other => {
            return Err(Error::invalid(
                name,
                format!(
                    "arguments must be an object of named arguments, not {}",
                    json_kind(&other)
                ),
            ));
        }
    };
    serde_path_to_error::deserialize(input).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." || path.is_empty() {
            name.to_string()
        } else {
            path
        };
        Error::invalid(field, err.into_inner().to_string())
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A record in its JSON form.
fn record<T: Serialize>(value: &T) -> Result<Reply> {
    serde_json::to_value(value)
        .map(Reply::Value)
        .map_err(|err| Error::Internal(format!("cannot serialize a record: {err}")))
}

fn progress_value(progress: RotationProgress) -> Value {
    serde_json::to_value(progress).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Methods that are not operations a binding exposes: the permission
    /// guards (the operations call them) and Rust-side accessors of the
    /// handle (`close` and errors tell a binding what `is_closed` would;
    /// every binding's `close` runs `Clm::close`).
    const NOT_OPERATIONS: &[&str] = &[
        "authorize",
        "authorize_visible",
        "is_closed",
        "databases",
        "config",
    ];

    /// The `pub` methods of every `impl Clm` block under `src/`.
    fn public_clm_methods() -> BTreeSet<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![root.join("lib.rs")];
        for entry in std::fs::read_dir(root.join("service")).expect("src/service is readable") {
            files.push(entry.expect("a directory entry").path());
        }
        let mut methods = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a source file is readable");
            let mut in_clm_impl = false;
            for line in text.lines() {
                if line.starts_with("impl Clm {") {
                    in_clm_impl = true;
                } else if line == "}" {
                    in_clm_impl = false;
                } else if in_clm_impl {
                    let trimmed = line.trim_start();
                    let rest = trimmed
                        .strip_prefix("pub async fn ")
                        .or_else(|| trimmed.strip_prefix("pub fn "));
                    if let Some(rest) = rest {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        methods.insert(name);
                    }
                }
            }
        }
        methods
    }

    #[test]
    fn every_public_operation_of_clm_is_in_the_table() {
        let methods = public_clm_methods();
        assert!(
            methods.contains("issue_certificate") && methods.len() > 60,
            "the source scan found too few methods: {methods:?}"
        );
        let names: BTreeSet<&str> = operation_names().collect();
        let missing: Vec<&String> = methods
            .iter()
            .filter(|name| {
                !names.contains(name.as_str()) && !NOT_OPERATIONS.contains(&name.as_str())
            })
            .collect();
        assert!(missing.is_empty(), "not in api::OPERATIONS: {missing:?}");
    }

    #[test]
    fn operation_names_are_unique_and_documented() {
        let mut seen = BTreeSet::new();
        for operation in OPERATIONS {
            assert!(seen.insert(operation.name), "{} twice", operation.name);
            assert!(!operation.summary.trim().is_empty(), "{}", operation.name);
        }
        let issue = Operation::find("issue_certificate").expect("issue_certificate is listed");
        assert!(issue.needs_actor);
        assert_eq!(issue.params[0].name, "request");
        assert!(!issue.params[0].optional);
        let list = Operation::find("list_users").expect("list_users is listed");
        assert!(list.params.iter().all(|param| param.optional));
        assert_eq!(list.returns.replace(' ', ""), "Page<User>");
    }
}
