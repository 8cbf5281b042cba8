"""The C binding (clm-ffi) from the API description.

Writes, from ``bindings/api.json``:

- ``clm-ffi/src/operations.rs``: one exported function ``clm_<name>`` per
  operation but the handle's own (``open``, ``close``, ``version``,
  ``system_actor``, written by hand in ``handle.rs``), each documented with
  its summary, every argument (name, type, required or default, the fields
  of input objects, enumeration values), the types those refer to, and the
  result, so that cbindgen carries it all into ``include/clm.h``;
- ``clm-ffi/src/status.rs``: the ``clm_status`` enum from ``errors``
  (numbers, names, descriptions) and its name table;
- ``clm-ffi/tests/operations.inc``: the operation functions as an X-macro
  for the C tests.

The header itself is cbindgen's (``clm-ffi/build.rs``); rebuild clm-ffi and
copy it after regenerating (see ``scripts/test-bindings``). cbindgen does not
expand macros, hence plain generated Rust.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

from . import schema
from .schema import Api, Operation, Schema

OPERATIONS_RS = pathlib.Path("clm-ffi/src/operations.rs")
STATUS_RS = pathlib.Path("clm-ffi/src/status.rs")
OPERATIONS_INC = pathlib.Path("clm-ffi/tests/operations.inc")

REGENERATE = "python3 bindings/generate.py --only c"

#: Width of a doc line after `/// `.
WIDTH = 74

#: How C receives a result: the out-parameter's name and Rust type, the
#: `handle::Output` variant and the X-macro's word.
OUTPUTS = {
    "json": ("result_json", "*mut *mut c_char", "Json", "JSON"),
    "text": ("result_text", "*mut *mut c_char", "Text", "TEXT"),
    "count": ("result_count", "*mut u64", "Count", "COUNT"),
    "actor": ("result_actor", "*mut *mut clm_actor", "Actor", "ACTOR"),
    "nothing": (None, None, "Nothing", "NOTHING"),
}


def outputs(api: Api) -> dict[pathlib.Path, str]:
    return {
        OPERATIONS_RS: operations_rs(api),
        STATUS_RS: status_rs(api),
        OPERATIONS_INC: operations_inc(api),
    }


def bound(api: Api) -> list[Operation]:
    """The operations with a generated function (not the handle's own)."""
    return [operation for operation in api.operations if not operation.is_handle_operation]


def output_of(api: Api, operation: Operation) -> str:
    """`json`, `text`, `count`, `actor` or `nothing`: a plain string result
    is the text itself, a non-negative whole number a `uint64_t`."""
    if operation.result_kind in ("actor", "nothing"):
        return operation.result_kind
    result = api.resolve(operation.result)
    if result.get("type") == "string":
        return "text"
    if result.get("type") == "integer":
        low, high = schema.integer_range(result)
        if low is not None and low >= 0 and high is not None and high <= 2**64 - 1:
            return "count"
    return "json"


# ---- words for schemas -------------------------------------------------------


def clean(text: str) -> str:
    """A description's first paragraph on one line, as a C comment can hold
    it (rustdoc links `[`X`]` lose their brackets)."""
    first = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
    first = re.sub(r"\[(`[^`]+`)\]", r"\1", first)
    first = " ".join(first.split())
    return first.replace("*/", "* /").replace("/*", "/ *")


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


class Words(schema.TypeMapper):
    """Spells a schema in the words of the C documentation. Ids and
    enumerations are spelled out in place; other named types (input
    objects, unions) by name, collected in `referenced` so the function's
    documentation can describe each once."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.referenced: list[str] = []

    def of(self, value: Schema) -> str:
        return schema.type_of(value, self)

    def primitive(self, kind: str, value: Schema) -> str:
        if kind == "string":
            words = {"date-time": "RFC 3339 time text", "uuid": "UUID text", "ip": "IP address text"}
            text = words.get(value.get("format", ""), "text")
            if schema.is_secret(value) or value.get("writeOnly"):
                text = "secret " + text
            return text
        if kind == "integer":
            low, high = schema.integer_range(value)
            if low is None and high is None:
                return "integer"
            return f"integer {'' if low is None else low}..{'' if high is None else high}"
        return {"number": "number", "boolean": "true or false", "null": "null"}[kind]

    def array(self, item: str, value: Schema) -> str:
        return f"[{item}, ...]"

    def mapping(self, value: str, whole: Schema) -> str:
        return f'{{"<name>": {value}, ...}}'

    def reference(self, name: str) -> str:
        target = self.api.types[name]
        if target.get("format") == "uuid":
            return f"`{name}` UUID"
        values = schema.enum_values(target)
        if values is not None:
            return self.literal(values)
        if name not in self.referenced:
            self.referenced.append(name)
        return f"`{name}`"

    def nullable(self, inner: str) -> str:
        return f"{inner} or null"

    def union(self, parts: list[str]) -> str:
        return " | ".join(parts)

    def literal(self, values: list[Any]) -> str:
        return " | ".join(compact_json(value) for value in values)

    def anything(self) -> str:
        return "any JSON value"

    def object(self, value: Schema) -> str:
        fields = [f'"{name}"{"" if required else "?"}: {self.of(field)}' for name, field, required in fields_of(value)]
        return "{" + ", ".join(fields) + "}"


def fields_of(value: Schema) -> list[tuple[str, Schema, bool]]:
    """An object's fields, the required ones first (a field of any value,
    `true` in JSON Schema, as `{}`)."""
    fields = [(name, field if isinstance(field, dict) else {}, required) for name, field, required in schema.properties(value)]
    return [field for field in fields if field[2]] + [field for field in fields if not field[2]]


def requirement(api: Api, required: bool, value: Schema, has_default: bool, default: Any) -> str:
    if required:
        return "required"
    if not has_default and "default" in value:
        has_default, default = True, value["default"]
    if not has_default:
        return "optional"
    if isinstance(default, dict) and default and defaults_only(api.resolve(value), default):
        return "optional; every field defaults"
    return f"optional, default {compact_json(default)}"


def defaults_only(target: Schema, value: dict[str, Any]) -> bool:
    """Whether an object value is what the object's fields default to (an
    optional field without a default being null)."""
    for name, field, required in fields_of(target):
        if required:
            return False
        expected = field.get("default")
        if name in value and value[name] != expected:
            return False
    return True


def field_lines(words: Words, value: Schema, indent: str) -> list[str]:
    """One bullet per field of an object schema."""
    lines = []
    for name, field, required in fields_of(value):
        text = f"{indent}- `{name}` ({words.of(field)}; {requirement(words.api, required, field, False, None)})"
        description = field.get("description")
        if description:
            text += f": {clean(description)}"
        lines.append(text)
    return lines


def expanded(words: Words, name: str, indent: str) -> tuple[str, list[str]]:
    """What a named type is: a sentence, and bullets for an object's fields."""
    target = words.api.types[name]
    description = clean(target.get("description", ""))
    sentence = description
    bullets: list[str] = []
    if target.get("type") == "object" and "properties" in target:
        sentence = f"{description} An object:".strip()
        bullets = field_lines(words, target, indent)
    elif "oneOf" in target and schema.enum_values(target) is None:
        variants = [words.of(variant) for variant in target["oneOf"]]
        sentence = f"{description} One of:".strip()
        bullets = [f"{indent}- {variant}" for variant in variants]
    elif "examples" in target:
        shown = ", ".join(compact_json(example) for example in target["examples"])
        sentence = f"{description} ({words.of({k: v for k, v in target.items() if k != 'examples'})}, e.g. {shown})"
    else:
        sentence = f"{description} ({words.of(target)})".strip()
    return sentence, bullets


# ---- documentation -------------------------------------------------------------


def wrap(text: str, first: str, rest: str) -> list[str]:
    """`text` in doc lines of at most WIDTH characters; the first line
    starts with `first`, the others with `rest`."""
    lines: list[str] = []
    line = first
    fresh = True
    for word in text.split():
        if not fresh and len(line) + 1 + len(word) > WIDTH:
            lines.append(line)
            line, fresh = rest, True
        line = line + word if fresh else line + " " + word
        fresh = False
    lines.append(line)
    return lines


def bullet(text: str) -> list[str]:
    """A `- ` bullet (indented by its leading spaces), wrapped under itself."""
    indent = text[: len(text) - len(text.lstrip(" "))]
    return wrap(text.strip()[2:], indent + "- ", indent + "  ")


def argument_lines(api: Api, words: Words, operation: Operation) -> list[str]:
    if not operation.arguments:
        return wrap("`arguments_json`: none; pass NULL.", "", "")
    optional = all(not argument.required for argument in operation.arguments)
    lines = wrap(
        "`arguments_json`: a JSON object of these named arguments"
        + (", all optional (NULL: none):" if optional else ":"),
        "",
        "",
    )
    for argument in operation.arguments:
        name = schema.ref_name(argument.schema)
        target = api.types.get(name, {}) if name else {}
        is_object = target.get("type") == "object" and "properties" in target
        kind = f"`{name}` object" if is_object else words.of(argument.schema)
        head = f"- `{argument.name}` ({kind}; "
        head += requirement(api, argument.required, argument.schema, argument.has_default, argument.default) + ")"
        if is_object and name is not None:
            sentence, fields = expanded(words, name, "  ")
            lines += bullet(f"{head}: {sentence}")
            for field in fields:
                lines += bullet(field)
        else:
            description = argument.schema.get("description")
            lines += bullet(f"{head}: {clean(description)}" if description else head)
    return lines


def where_lines(words: Words) -> list[str]:
    """Each named type the arguments refer to, once (and the ones those
    refer to)."""
    lines: list[str] = []
    done = 0
    while done < len(words.referenced):
        name = words.referenced[done]
        done += 1
        sentence, fields = expanded(words, name, "  ")
        lines += bullet(f"- `{name}`: {sentence}")
        for field in fields:
            lines += bullet(field)
    return (["", "Where:"] + lines) if lines else []


def field_names(value: Schema) -> str:
    """`{"outcome": "issued", "id", "name"?, ...}`: constant fields with their
    value first, then the required fields, then the optional ones."""
    constants, names = [], []
    for name, field, required in fields_of(value):
        if "const" in field:
            constants.append(f'"{name}": {compact_json(field["const"])}')
            continue
        names.append(f'"{name}"' + ("" if required else "?"))
    return "{" + ", ".join(constants + names) + "}"


def result_words(api: Api, result: Schema) -> str:
    """What a JSON result is: the record and its fields, a page, a list, a
    union of shapes."""
    words = Words(api)
    name = schema.ref_name(result)
    if name is None:
        return f"`{words.of(result)}`"
    target = api.types[name]
    props = dict((field, value) for field, value, _ in schema.properties(target))
    if set(props) == {"items", "next_cursor"}:
        item_schema = props["items"].get("items", {})
        item = schema.ref_name(item_schema) or words.of(item_schema)
        return (
            f'a page `{name}` `{{"items": [{item}, ...], "next_cursor"}}` (pass `next_cursor` '
            "as `page.cursor` for the next page; null on the last page)"
        )
    if props:
        secrets = [field for field, value in props.items() if schema.is_secret(schema.split_nullable(value)[0])]
        text = f"the `{name}` record `{field_names(target)}`"
        if secrets:
            shown = ", ".join(f"`{field}`" for field in secrets)
            text += f" ({shown} secret: shown this once, wiped by `clm_string_free`)"
        return text
    if "oneOf" in target:
        variants = " or ".join(f"`{field_names(variant)}`" for variant in target["oneOf"])
        return f"`{name}`: {clean(target.get('description', ''))} One of {variants}"
    return f"`{name}` ({words.of(target)})"


def result_lines(api: Api, operation: Operation, output: str) -> list[str]:
    if output == "json":
        text = f"`result_json`: {result_words(api, operation.result)} as JSON text; free it with `clm_string_free`."
    elif output == "text":
        secret = schema.is_secret(operation.result)
        text = "`result_text`: the text itself (not JSON)" + (
            ", secret: wiped by `clm_string_free`, which frees it." if secret else "; free it with `clm_string_free`."
        )
    elif output == "count":
        text = "`result_count`: the number."
    elif output == "actor":
        text = "`result_actor`: a new actor; free it with `clm_actor_free`."
    else:
        text = "No result besides the status."
    return wrap(text, "", "")


def doc(api: Api, operation: Operation, output: str) -> list[str]:
    lines = wrap(clean(operation.summary), "", "")
    lines += ["", *wrap(f"Operation `{operation.name}` ({operation.module}).", "", "")]
    words = Words(api)
    lines += argument_lines(api, words, operation)
    lines += where_lines(words)
    lines.append("")
    if operation.needs_actor:
        lines += wrap("`actor`: who performs it (not NULL).", "", "")
    if operation.progress is not None:
        shape = result_words(api, operation.progress)
        lines += wrap(
            f"`progress` (may be NULL) is called with `user_data` and {shape} as JSON text while the operation runs.",
            "",
            "",
        )
    lines += result_lines(api, operation, output)
    lines += ["", "# Safety"]
    safety = "`clm` and `actor` are NULL or live handles;" if operation.needs_actor else "`clm` is NULL or a live handle;"
    safety += " `arguments_json` is NULL or a NUL-terminated string"
    out_name = OUTPUTS[output][0]
    safety += f"; `{out_name}` is NULL or writable." if out_name else "."
    if operation.progress is not None:
        safety += " `progress` and `user_data` as for `clm_progress_callback`."
    lines += wrap(safety, "", "")
    return [f"/// {line}".rstrip() for line in lines]


# ---- operations.rs ----------------------------------------------------------------


def function(api: Api, operation: Operation) -> list[str]:
    output = output_of(api, operation)
    out_name, out_type, variant, _ = OUTPUTS[output]
    lines = doc(api, operation, output)
    lines += ["#[unsafe(no_mangle)]", f'pub unsafe extern "C" fn clm_{operation.name}(', "    clm: *const clm_handle,"]
    if operation.needs_actor:
        lines.append("    actor: *const clm_actor,")
    lines.append("    arguments_json: *const c_char,")
    if operation.progress is not None:
        lines += ["    progress: clm_progress_callback,", "    user_data: *mut c_void,"]
    if out_name:
        lines.append(f"    {out_name}: {out_type},")
    lines.append(") -> clm_status {")
    actor = "actor" if operation.needs_actor else "std::ptr::null()"
    progress = "Progress::new(progress, user_data)" if operation.progress is not None else "None"
    target = f"Output::{variant}({out_name})" if out_name else "Output::Nothing"
    lines.append(f'    unsafe {{ run(clm, {actor}, "{operation.name}", arguments_json, {progress}, {target}) }}')
    lines.append("}")
    return lines


def operations_rs(api: Api) -> str:
    operations = bound(api)
    any_progress = any(operation.progress is not None for operation in operations)
    lines = [
        "//! One C function per operation of the API description but the handle's",
        "//! own (`open`, `close`, `version`, `system_actor`, written by hand in",
        "//! `handle.rs`). Each hands its JSON arguments to `clm::api::call`",
        "//! through `handle::run`.",
        "//!",
        "//! GENERATED by `bindings/gen/c.py` from `bindings/api.json`: do not edit.",
        f"//! Regenerate with `{REGENERATE}`,",
        "//! then rebuild clm-ffi and copy `include/clm.h` (see `scripts/test-bindings`).",
        "",
        "// A C function takes the arguments it takes.",
        "#![allow(clippy::too_many_arguments)]",
        "",
    ]
    if any_progress:
        lines += ["use std::ffi::{c_char, c_void};", "", "use crate::boundary::{Progress, clm_progress_callback};"]
    else:
        lines += ["use std::ffi::c_char;", ""]
    lines += ["use crate::clm_status;", "use crate::handle::{Output, clm_actor, clm_handle, run};"]
    module = None
    for operation in operations:
        if operation.module != module:
            module = operation.module
            lines += ["", f"// ---- {module} " + "-" * max(0, 70 - len(module))]
        lines.append("")
        lines += function(api, operation)
    return "\n".join(lines) + "\n"


# ---- status.rs -------------------------------------------------------------------


def status_rs(api: Api) -> str:
    errors = sorted(api.errors, key=lambda error: error.number)
    lines = [
        "//! `clm_status`: the status every fallible function returns, one value",
        "//! per error code of the core (`clm::ErrorCode`, its only definition).",
        "//!",
        "//! GENERATED by `bindings/gen/c.py` from `bindings/api.json` (`errors`): do",
        f"//! not edit. Regenerate with `{REGENERATE}`.",
        "",
        "use std::ffi::CStr;",
        "",
        "/// The result of every fallible function: `CLM_OK` (0) or the number of a",
        "/// clm error code (stable, never reused). After a failure,",
        "/// `clm_last_error_message` and `clm_last_error_json` tell what went wrong.",
        "#[repr(u32)]",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub enum clm_status {",
        "    /// Success.",
        "    CLM_OK = 0,",
    ]
    for error in errors:
        lines += [f"    /// {line}" for line in wrap(f"`{error.code}`: {clean(error.description)}", "", "")]
        lines.append(f"    CLM_{error.code} = {error.number},")
    lines += [
        "}",
        "",
        "impl clm_status {",
        "    /// The status numbered `number`, or None when no status has it.",
        "    pub(crate) fn from_number(number: u32) -> Option<clm_status> {",
        "        match number {",
        "            0 => Some(clm_status::CLM_OK),",
    ]
    lines += [f"            {error.number} => Some(clm_status::CLM_{error.code})," for error in errors]
    lines += [
        "            _ => None,",
        "        }",
        "    }",
        "",
        '    /// The stable name: `"OK"`, or the error code (`"NOT_FOUND"`).',
        "    pub(crate) fn name(self) -> &'static CStr {",
        "        match self {",
        '            clm_status::CLM_OK => c"OK",',
    ]
    lines += [f'            clm_status::CLM_{error.code} => c"{error.code}",' for error in errors]
    lines += ["        }", "    }", "}"]
    return "\n".join(lines) + "\n"


# ---- operations.inc -----------------------------------------------------------------


def operations_inc(api: Api) -> str:
    lines = [
        "/* GENERATED by bindings/gen/c.py from bindings/api.json: do not edit.",
        f" * Regenerate with `{REGENERATE}`.",
        " * Every clm_<name> operation function but the handle's own (open, close,",
        " * version, system_actor), as an X-macro for the C tests:",
        " *   CLM_OPERATION(name, output, needs_actor, progress)",
        " * output: JSON (char **result_json), TEXT (char **result_text),",
        " * COUNT (uint64_t *result_count), ACTOR (clm_actor **result_actor) or",
        " * NOTHING; needs_actor 1: a const clm_actor *actor argument; progress 1:",
        " * clm_progress_callback progress, void *user_data arguments. */",
    ]
    for operation in bound(api):
        macro = OUTPUTS[output_of(api, operation)][3]
        lines.append(
            f"CLM_OPERATION({operation.name}, {macro}, {int(operation.needs_actor)}, {int(operation.progress is not None)})"
        )
    return "\n".join(lines) + "\n"
