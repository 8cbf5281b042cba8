//! Generates, from `clm::api::OPERATIONS`:
//! - `src/operations.rs`: one exported function `clm_<name>` per operation
//!   (the handle's own `open`, `close`, `version`, `system_actor` are
//!   written by hand), each documented with the operation's summary, its
//!   named arguments and its result, so `include/clm.h` documents them;
//! - `tests/operations.inc`: the same list as an X-macro, which the C tests
//!   use to call every function with bad pointers.
//!
//! The test below fails when a committed file differs from a fresh
//! generation; `CLM_FFI_REGENERATE=1 cargo test -p clm-ffi --lib codegen`
//! rewrites them (then rebuild and copy the header, see
//! `scripts/test-bindings`). cbindgen does not expand macros, hence plain
//! generated source.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clm::api::{OPERATIONS, Operation, Param};

/// Operations written by hand (handle.rs, lib.rs) with their own signatures.
const HANDLE_OPERATIONS: &[&str] = &["open", "close", "version", "system_actor"];

/// Operations that report progress (the table does not say which do).
const PROGRESS_OPERATIONS: &[&str] = &["rotate_data_key"];

/// How an operation hands back its result in C.
#[derive(Clone, Copy, PartialEq)]
enum Output {
    Json,
    Text,
    Count,
    Nothing,
    Actor,
}

impl Output {
    fn of(operation: &Operation) -> Output {
        match compact(operation.returns).as_str() {
            "()" => Output::Nothing,
            "Actor" => Output::Actor,
            "String" => Output::Text,
            "u64" => Output::Count,
            _ => Output::Json,
        }
    }

    /// The out-parameter: (name, C-side Rust type, Output variant).
    fn parameter(self) -> Option<(&'static str, &'static str, &'static str)> {
        match self {
            Output::Json => Some(("result_json", "*mut *mut c_char", "Json")),
            Output::Text => Some(("result_text", "*mut *mut c_char", "Text")),
            Output::Count => Some(("result_count", "*mut u64", "Count")),
            Output::Actor => Some(("result_actor", "*mut *mut clm_actor", "Actor")),
            Output::Nothing => None,
        }
    }

    fn macro_name(self) -> &'static str {
        match self {
            Output::Json => "JSON",
            Output::Text => "TEXT",
            Output::Count => "COUNT",
            Output::Nothing => "NOTHING",
            Output::Actor => "ACTOR",
        }
    }
}

/// Rust type text without the spaces `stringify!` puts in.
fn compact(rust_type: &str) -> String {
    rust_type.chars().filter(|c| !c.is_whitespace()).collect()
}

fn strip<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.strip_prefix(prefix)?.strip_suffix('>')
}

/// The doc comments of the input objects in the core's `api/inputs.rs`,
/// by type name (each documents its JSON shape).
fn input_docs() -> BTreeMap<String, String> {
    let path = crate_dir().join("../clm-core/src/api/inputs.rs");
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let mut docs = BTreeMap::new();
    let mut pending: Vec<&str> = Vec::new();
    for line in source.lines() {
        let trimmed = line.trim_start();
        if let Some(doc) = trimmed.strip_prefix("///") {
            pending.push(doc.trim());
        } else if trimmed.starts_with("#[") {
            continue;
        } else {
            let name = trimmed
                .strip_prefix("pub struct ")
                .or_else(|| trimmed.strip_prefix("pub enum "))
                .map(|rest| {
                    rest.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                });
            if let Some(name) = name
                && !pending.is_empty()
            {
                docs.insert(name, pending.join(" "));
            }
            pending.clear();
        }
    }
    docs
}

fn quoted(values: impl Iterator<Item = &'static str>) -> String {
    values
        .map(|value| format!("\"{value}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the JSON of an argument of Rust type `kind` looks like.
fn kind_doc(kind: &str, inputs: &BTreeMap<String, String>) -> String {
    if let Some(inner) = strip(kind, "Option<") {
        return kind_doc(inner, inputs);
    }
    if let Some(inner) = strip(kind, "Vec<") {
        return format!("an array of {}", kind_doc(inner, inputs));
    }
    match kind {
        "String" => "text".into(),
        "u8" | "u32" | "u64" => "a whole number".into(),
        "bool" => "true or false".into(),
        "Value" => "a JSON value".into(),
        "DateTime<Utc>" => "RFC 3339 time text".into(),
        "PageRequest" => "`{\"limit\"?, \"cursor\"?, \"include_deleted\"?}`".into(),
        "DistinguishedName" => "`{\"common_name\"?, \"organization\"?, \
                                \"organizational_unit\"?, \"country\"?, \"state\"?, \
                                \"locality\"?, \"email\"?}`"
            .into(),
        "SubjectAlternativeName" => {
            "`{\"type\": \"DNS\"|\"IP\"|\"EMAIL\"|\"URI\", \"value\"}`".into()
        }
        "RevocationReason" => format!(
            "one of {}",
            quoted(
                clm::model::RevocationReason::ALL
                    .iter()
                    .map(|reason| reason.as_str())
            )
        ),
        "OrganizationStatus" => format!(
            "one of {}",
            quoted(
                clm::model::OrganizationStatus::ALL
                    .iter()
                    .map(|status| status.as_str())
            )
        ),
        id if id.ends_with("Id") => "UUID text".into(),
        other => match inputs.get(other) {
            Some(doc) => doc.clone(),
            None => format!("`{other}` as JSON"),
        },
    }
}

/// What the result of Rust type `returns` looks like.
fn returns_doc(returns: &str) -> String {
    if let Some(inner) = strip(returns, "Page<") {
        return format!(
            "a page `{{\"items\": [{inner}, ...], \"next_cursor\"}}` \
             (pass `next_cursor` as `page.cursor` for the next page)"
        );
    }
    if let Some(inner) = strip(returns, "Vec<") {
        return format!("an array `[{inner}, ...]`");
    }
    match returns {
        "LoginResult" => {
            "`{\"token\", \"session\", \"user\"}` (the session token is shown this once)".into()
        }
        "CreatedApiKey" => "`{\"key\", \"api_key\"}` (the key is shown this once)".into(),
        "MfaEnrollment" => "`{\"secret_base32\", \"provisioning_uri\"}`".into(),
        "CsrBundle" => "`{\"csr_pem\", \"private_key_pem\"}`".into(),
        record => format!("the `{record}` record"),
    }
}

/// Words of `text` in lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn doc_paragraph(out: &mut String, text: &str, indent: &str) {
    let text = text.replace("*/", "* /");
    for (index, line) in wrap(&text, 74).into_iter().enumerate() {
        let lead = if index == 0 { "" } else { indent };
        let _ = writeln!(out, "/// {lead}{line}");
    }
}

fn param_doc(param: &Param, inputs: &BTreeMap<String, String>) -> String {
    let kind = compact(param.kind);
    let shown = strip(&kind, "Option<").unwrap_or(&kind).to_string();
    format!(
        "- `{}` (`{}`{}): {}",
        param.name,
        shown,
        if param.optional { ", optional" } else { "" },
        kind_doc(&kind, inputs)
    )
}

fn function(out: &mut String, operation: &Operation, inputs: &BTreeMap<String, String>) {
    let name = operation.name;
    let output = Output::of(operation);
    let progress = PROGRESS_OPERATIONS.contains(&name);
    let returns = compact(operation.returns);

    doc_paragraph(out, operation.summary, "");
    out.push_str("///\n");
    doc_paragraph(
        out,
        &format!(
            "Operation `{name}` ({}). `arguments_json`: {}",
            operation.module,
            if operation.params.is_empty() {
                "none; pass NULL.".to_string()
            } else if operation.params.iter().all(|param| param.optional) {
                "a JSON object of these named arguments, all optional (NULL: none):".to_string()
            } else {
                "a JSON object of these named arguments:".to_string()
            }
        ),
        "",
    );
    for param in operation.params {
        doc_paragraph(out, &param_doc(param, inputs), "  ");
    }
    out.push_str("///\n");
    if operation.needs_actor {
        doc_paragraph(out, "`actor`: who performs it (not NULL).", "");
    }
    if progress {
        doc_paragraph(
            out,
            "`progress` (may be NULL) is called with `user_data` and the progress as \
             JSON `{\"rotation_id\", \"total\", \"rotated\"}` after each batch.",
            "",
        );
    }
    let result = match output {
        Output::Json => format!(
            "`result_json`: {} as JSON text; free it with `clm_string_free`.",
            returns_doc(&returns)
        ),
        Output::Text => {
            "`result_text`: the text itself (not JSON); free it with `clm_string_free`.".into()
        }
        Output::Count => "`result_count`: the number.".into(),
        Output::Actor => "`result_actor`: a new actor; free it with `clm_actor_free`.".into(),
        Output::Nothing => "No result besides the status.".into(),
    };
    doc_paragraph(out, &result, "");
    out.push_str("///\n/// # Safety\n");
    let mut safety = String::from("`clm`");
    if operation.needs_actor {
        safety.push_str(" and `actor` are NULL or live handles;");
    } else {
        safety.push_str(" is NULL or a live handle;");
    }
    safety.push_str(" `arguments_json` is NULL or a NUL-terminated string");
    match output.parameter() {
        Some((out_name, _, _)) => {
            let _ = write!(safety, "; `{out_name}` is NULL or writable.");
        }
        None => safety.push('.'),
    }
    if progress {
        safety.push_str(" `progress` and `user_data` as for `clm_progress_callback`.");
    }
    doc_paragraph(out, &safety, "");

    out.push_str("#[unsafe(no_mangle)]\n");
    let _ = writeln!(out, "pub unsafe extern \"C\" fn clm_{name}(");
    out.push_str("    clm: *const clm_handle,\n");
    if operation.needs_actor {
        out.push_str("    actor: *const clm_actor,\n");
    }
    out.push_str("    arguments_json: *const c_char,\n");
    if progress {
        out.push_str("    progress: clm_progress_callback,\n");
        out.push_str("    user_data: *mut c_void,\n");
    }
    let output_expr = match output.parameter() {
        Some((out_name, out_type, variant)) => {
            let _ = writeln!(out, "    {out_name}: {out_type},");
            format!("Output::{variant}({out_name})")
        }
        None => "Output::Nothing".to_string(),
    };
    out.push_str(") -> clm_status {\n");
    let actor = if operation.needs_actor {
        "actor"
    } else {
        "std::ptr::null()"
    };
    let progress_expr = if progress {
        "Progress::new(progress, user_data)"
    } else {
        "None"
    };
    let _ = writeln!(
        out,
        "    unsafe {{ run(clm, {actor}, \"{name}\", arguments_json, {progress_expr}, {output_expr}) }}"
    );
    out.push_str("}\n");
}

fn bound() -> impl Iterator<Item = &'static Operation> {
    OPERATIONS
        .iter()
        .filter(|operation| !HANDLE_OPERATIONS.contains(&operation.name))
}

/// The text of `src/operations.rs`.
fn operations_rs() -> String {
    let inputs = input_docs();
    let mut out = String::from(
        "//! One C function per operation of `clm::api::OPERATIONS` but the\n\
         //! handle's own (`open`, `close`, `version`, `system_actor`, written by\n\
         //! hand). Each hands its JSON arguments to `clm::api::call` through\n\
         //! `handle::run`.\n\
         //!\n\
         //! GENERATED by `src/codegen.rs` from the operation table: do not edit.\n\
         //! Regenerate with `CLM_FFI_REGENERATE=1 cargo test -p clm-ffi --lib codegen`.\n\
         \n\
         // A C function takes the arguments it takes.\n\
         #![allow(clippy::too_many_arguments)]\n\
         \n",
    );
    let any_progress = bound().any(|op| PROGRESS_OPERATIONS.contains(&op.name));
    if any_progress {
        out.push_str("use std::ffi::{c_char, c_void};\n\n");
        out.push_str("use crate::boundary::{Progress, clm_progress_callback};\n");
    } else {
        out.push_str("use std::ffi::c_char;\n\n");
    }
    out.push_str("use crate::clm_status;\n");
    out.push_str("use crate::handle::{Output, clm_actor, clm_handle, run};\n");
    let mut module = "";
    for operation in bound() {
        if operation.module != module {
            module = operation.module;
            let _ = write!(out, "\n// ---- {module} ");
            out.push_str(&"-".repeat(70usize.saturating_sub(module.len())));
            out.push('\n');
        }
        out.push('\n');
        function(&mut out, operation, &inputs);
    }
    out
}

/// The text of `tests/operations.inc`.
fn operations_inc() -> String {
    let mut out = String::from(
        "/* GENERATED by clm-ffi/src/codegen.rs from clm::api::OPERATIONS: do not edit.\n\
         * Every clm_<name> operation function but the handle's own (open, close,\n\
         * version, system_actor), as an X-macro for the C tests:\n\
         *   CLM_OPERATION(name, output, needs_actor, progress)\n\
         * output: JSON (char **result_json), TEXT (char **result_text),\n\
         * COUNT (uint64_t *result_count), ACTOR (clm_actor **result_actor) or\n\
         * NOTHING; needs_actor 1: a const clm_actor *actor argument; progress 1:\n\
         * clm_progress_callback progress, void *user_data arguments. */\n",
    );
    for operation in bound() {
        let _ = writeln!(
            out,
            "CLM_OPERATION({}, {}, {}, {})",
            operation.name,
            Output::of(operation).macro_name(),
            u8::from(operation.needs_actor),
            u8::from(PROGRESS_OPERATIONS.contains(&operation.name))
        );
    }
    out
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check_or_write(path: &Path, fresh: &str, stale: &mut Vec<String>) {
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed == fresh {
        return;
    }
    if std::env::var_os("CLM_FFI_REGENERATE").is_some() {
        std::fs::write(path, fresh)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    } else {
        stale.push(path.display().to_string());
    }
}

#[test]
fn generated_files_are_fresh() {
    let mut stale = Vec::new();
    check_or_write(
        &crate_dir().join("src/operations.rs"),
        &operations_rs(),
        &mut stale,
    );
    check_or_write(
        &crate_dir().join("tests/operations.inc"),
        &operations_inc(),
        &mut stale,
    );
    assert!(
        stale.is_empty(),
        "{stale:?} differ from a fresh generation from clm::api::OPERATIONS; run \
         `CLM_FFI_REGENERATE=1 cargo test -p clm-ffi --lib codegen`, then regenerate include/clm.h"
    );
}

#[test]
fn every_input_object_is_documented() {
    let inputs = input_docs();
    for operation in OPERATIONS {
        for param in operation.params {
            let doc = kind_doc(&compact(param.kind), &inputs);
            assert!(
                !doc.ends_with("` as JSON"),
                "{}.{}: no documentation for {doc}",
                operation.name,
                param.name
            );
        }
    }
}
