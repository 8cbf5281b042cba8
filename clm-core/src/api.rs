//! The operation table the language bindings expose, and one JSON-in,
//! JSON-out entry point for each operation.
//!
//! Python, Node and C all call [`call`] with an operation name and a JSON
//! object of named arguments; this module parses and validates the input
//! (naming the field that is wrong), runs the service operation and returns
//! the record in its `serde` form. The bindings therefore never parse input
//! themselves. [`describe`] is the API as data (`bindings/api.json`), which
//! every binding is generated from: every public operation of
//! [`Clm`] is in it (a test reads the service sources to make
//! sure), with its arguments' and result's JSON Schemas.

mod inputs;
mod operations;
mod records;

pub use inputs::OpenOptions;
pub use operations::OPERATIONS;
pub use records::{
    ActorDescription, ActorKindName, CreatedApiKey, CsrBundle, LoginResult, MfaEnrollment,
};

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Actor, Clm, Error, Result};

/// One operation as the bindings see it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Operation {
    /// The Rust name on [`Clm`] (or on the binding's handle for
    /// `open`, `close`, `version`), in `snake_case`.
    pub name: &'static str,
    /// The core module that implements it (`identity`, `issuance`, ...).
    pub module: &'static str,
    /// What it does, one line.
    pub summary: &'static str,
    /// Whether it needs an actor (every operation but login, session and
    /// API key validation, and the handle operations).
    pub needs_actor: bool,
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
    /// A record, a list, a scalar, or null for an operation that returns nothing.
    Value(Value),
    /// An actor for the binding to keep as a handle, with its description.
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

/// Receives an operation's progress records (rotation: `{"rotation_id",
/// "total", "rotated"}`; CA rollover: `RolloverProgress`).
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

/// The description of `actor` a binding shows (never its permissions).
pub fn describe_actor(actor: &Actor) -> Value {
    serde_json::to_value(ActorDescription::of(actor)).unwrap_or(Value::Null)
}

/// Where the named types of [`describe`] live, as a JSON pointer prefix.
const TYPES_PATH: &str = "/types";

/// The whole API as one JSON document, which every binding is generated
/// from (`bindings/api.json`):
///
/// - `operations`: name, module, summary, `needs_actor`, `arguments`
///   (name, JSON Schema, `required`, `default`), `result` (JSON Schema),
///   `result_kind` (`value`, `actor`, `handle` or `nothing`) and
///   `progress` (the schema of progress reports, or null);
/// - `types`: every named schema the operations refer to
///   (`{"$ref": "#/types/Certificate"}`), with `records` and `enums`
///   listing the object and the enumeration types among them;
/// - `errors`: every error code with its stable number and meaning, and
///   `error_details`, the shape of an error as the bindings pass it on.
///
/// Schemas mark secrets with `"x-secret": true` (shown once, never in a
/// `repr`) and handles with `"x-handle"`.
pub fn describe() -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = TYPES_PATH.into();
    let mut generator = settings.into_generator();
    let operations = operations::describe_operations(&mut generator);
    let error_details = generator.subschema_for::<crate::error::ErrorDetails>();
    let actor_description = generator.subschema_for::<ActorDescription>();
    let types: serde_json::Map<String, Value> = generator
        .take_definitions(true)
        .into_iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let names_where = |test: fn(&Value) -> bool| -> Vec<String> {
        types
            .iter()
            .filter(|(_, schema)| test(schema))
            .map(|(name, _)| name.clone())
            .collect()
    };
    let records = names_where(|schema| {
        schema.get("type") == Some(&Value::from("object")) && schema.get("x-handle").is_none()
    });
    let enums = names_where(|schema| schema.get("enum").is_some() || is_const_union(schema));
    let errors: Vec<Value> = crate::ErrorCode::ALL
        .iter()
        .map(|code| {
            serde_json::json!({
                "code": code.as_str(),
                "name": code.name(),
                "number": code.number(),
                "description": code.description(),
            })
        })
        .collect();
    serde_json::json!({
        "clm_version": version(),
        "operations": operations,
        "types": types,
        "records": records,
        "enums": enums,
        "errors": errors,
        "error_details": error_details,
        "actor_description": actor_description,
    })
}

/// An enumeration written as `oneOf` constants (variants with doc comments).
fn is_const_union(schema: &Value) -> bool {
    schema
        .get("oneOf")
        .and_then(Value::as_array)
        .is_some_and(|variants| variants.iter().all(|v| v.get("const").is_some()))
}

/// The summary of a table entry from its doc lines.
fn summary(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| line.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a binding hands back a result of the named schema type.
fn result_kind(schema_name: &str) -> &'static str {
    match schema_name {
        "Actor" => "actor",
        "Clm" => "handle",
        "null" => "nothing",
        _ => "value",
    }
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

fn progress_value<T: Serialize>(progress: T) -> Value {
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
        // The Rust form of `export_private_key`'s options (the operation
        // takes them as an argument).
        "export_private_key_with",
        // A chunked reader of `latest_crl` for Rust hosts: a handle that
        // lives across calls, which a JSON call cannot return.
        "open_latest_crl",
        // Any `std::io::Read` as the source: a Rust value, which a JSON
        // call cannot pass (bindings get `import_certificates_from_file`).
        "import_certificates_from_reader",
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
        let login = Operation::find("authenticate").expect("authenticate is listed");
        assert!(!login.needs_actor);
    }
}

/// `bindings/api.json`, the committed description every binding is
/// generated from, against [`describe`].
#[cfg(test)]
mod description_tests {
    use super::*;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/api.json")
    }

    /// The document as it is written to disk: pretty, with a final newline.
    fn rendered() -> String {
        let mut text =
            serde_json::to_string_pretty(&describe()).expect("the description serializes");
        text.push('\n');
        text
    }

    /// Fails when the committed description is stale;
    /// `CLM_REGENERATE=1 cargo test -p clm-core --lib description` rewrites it.
    #[test]
    fn committed_description_is_current() {
        let fresh = rendered();
        if std::env::var_os("CLM_REGENERATE").is_some() {
            std::fs::write(committed_path(), &fresh).expect("bindings/api.json is writable");
            return;
        }
        let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
        assert!(
            committed == fresh,
            "bindings/api.json is stale: run `CLM_REGENERATE=1 cargo test -p clm-core --lib description` and regenerate the bindings (bindings/generate.py)"
        );
    }

    /// Every `$ref` in the document names a type it defines.
    #[test]
    fn every_reference_resolves() {
        let document = describe();
        let types = document["types"].as_object().expect("types");
        let mut stack = vec![&document];
        let mut seen = 0;
        while let Some(value) = stack.pop() {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(reference)) = map.get("$ref") {
                        let name = reference
                            .strip_prefix("#/types/")
                            .unwrap_or_else(|| panic!("{reference} is outside #/types/"));
                        assert!(types.contains_key(name), "{reference} is not defined");
                        seen += 1;
                    }
                    stack.extend(map.values());
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
        assert!(
            seen > 100,
            "only {seen} references: the schemas are not named types"
        );
    }

    #[test]
    fn operations_carry_their_arguments_results_and_flags() {
        let document = describe();
        let operations = document["operations"].as_array().expect("operations");
        assert_eq!(operations.len(), OPERATIONS.len());
        let find = |name: &str| {
            operations
                .iter()
                .find(|op| op["name"] == name)
                .unwrap_or_else(|| panic!("{name} is described"))
        };
        let issue = find("issue_certificate");
        assert_eq!(issue["needs_actor"], true);
        assert_eq!(issue["result"]["$ref"], "#/types/IssuanceOutcome");
        assert_eq!(issue["arguments"][0]["name"], "request");
        assert_eq!(issue["arguments"][0]["required"], true);
        let list = find("list_users");
        assert_eq!(list["arguments"][1]["required"], false);
        assert_eq!(list["arguments"][1]["default"]["include_deleted"], false);
        assert_eq!(find("validate_session")["result_kind"], "actor");
        assert_eq!(find("open")["result_kind"], "handle");
        assert_eq!(find("delete_user")["result_kind"], "nothing");
        assert_eq!(find("authenticate")["needs_actor"], false);
        assert!(find("rotate_data_key")["progress"].is_object());
        assert!(find("rotate_master_key")["progress"].is_null());
        // Secrets are marked: passwords in, tokens and keys out.
        let login = &document["types"]["LoginResult"]["properties"]["token"];
        assert_eq!(login["x-secret"], true, "{login}");
        let password = &find("authenticate")["arguments"][1]["schema"];
        assert_eq!(password["writeOnly"], true, "{password}");
        let codes: Vec<u64> = document["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["number"].as_u64())
            .collect();
        assert_eq!(codes, (1..=13).collect::<Vec<u64>>());
        let records = document["records"].as_array().expect("records");
        for name in [
            "Certificate",
            "User",
            "LoginResult",
            "CreatedApiKey",
            "CsrBundle",
        ] {
            assert!(records.iter().any(|r| r == name), "{name} is a record");
        }
        let enums = document["enums"].as_array().expect("enums");
        for name in ["CertificateStatus", "RevocationReason", "AuditLogKind"] {
            assert!(enums.iter().any(|e| e == name), "{name} is an enum");
        }
    }
}
