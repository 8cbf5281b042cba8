#!/usr/bin/env python3
"""Writes the generated part of the Python package from the core:

  python/clm/_operations.py  one method of ``clm.Clm`` per operation of
                             ``clm::api::OPERATIONS`` (read from the built
                             native module), parameters in the table's order
  python/clm/_types.py       the record classes (``clm.Certificate``, ...),
                             input ``TypedDict``s and enum ``Literal``s, from
                             the struct definitions under clm-core/src
  python/clm/__init__.pyi    the type stubs of the whole package

    python clm-py/generate.py           rewrite the three files
    python clm-py/generate.py --check   exit 1 with a diff when they are stale

It needs the native module of the same sources installed (``pip install``
the wheel; scripts/dist builds it). tests/test_generated.py runs --check, so
an operation added to the core fails the Python suite until this is rerun.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.machinery
import importlib.util
import keyword
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
CORE = HERE.parent / "clm-core" / "src"
PACKAGE = HERE / "python" / "clm"

# ------------------------------------------------------------ what we know
# The few facts the table and the structs do not carry.

#: Results the core builds with `json!` in api/operations.rs (not structs):
#: (field, Rust type, secret).
COMPOSITES: dict[str, list[tuple[str, str, bool]]] = {
    "LoginResult": [("token", "String", True), ("session", "Session", False), ("user", "User", False)],
    "CreatedApiKey": [("key", "String", True), ("api_key", "ApiKey", False)],
    "MfaEnrollment": [("secret_base32", "String", True), ("provisioning_uri", "String", True)],
    "CsrBundle": [("csr_pem", "String", False), ("private_key_pem", "String", True)],
    # `#[serde(tag = "outcome")]` enum: Issued{certificate} | Pending{request};
    # the absent one is None.
    "IssuanceOutcome": [
        ("outcome", "IssuanceOutcomeKind", False),
        ("certificate", "Option<Certificate>", False),
        ("request", "Option<CertificateRequest>", False),
    ],
}
ALWAYS = {"IssuanceOutcome": ("certificate", "request")}
DOCS = {
    "LoginResult": "A successful login: the session token (shown this once), the session and the user.",
    "CreatedApiKey": "A new API key: the key itself (shown this once) and its record.",
    "MfaEnrollment": "TOTP enrollment: the secret (shown once) and its otpauth:// URI.",
    "CsrBundle": "A PKCS#10 CSR and its new private key (PKCS#8 PEM).",
    "IssuanceOutcome": "What issuance did: `outcome` \"issued\" with `certificate`, or \"pending\" "
    "with the `request` that waits for approval.",
    "RotationProgress": "Progress of rotate_data_key, reported after each committed batch.",
}
#: Operations that report progress, and the record type of each report.
PROGRESS = {"rotate_data_key": "RotationProgress"}
#: Extra records (not returned directly by an operation).
EXTRA_RECORDS = ["RotationProgress"]
#: Literal types the core defines outside model/status.rs.
EXTRA_ENUMS = {
    "AuditLogName": ["secure", "core"],
    "IssuanceOutcomeKind": ["issued", "pending"],
}
#: JSON documents (permissions, policy rules, workflow definitions): dicts.
DOCUMENTS = {"Permissions", "PolicyRules", "WorkflowDefinition", "Map", "serde_json::Map"}
#: Struct files scanned for records and inputs.
SOURCES = [
    "model/records.rs",
    "store.rs",
    "crypto/name.rs",
    "api/inputs.rs",
    *sorted(str(p.relative_to(CORE)) for p in (CORE / "service").glob("*.rs")),
]
#: Handle operations written by hand in clm/__init__.py.
HAND_WRITTEN = {"open", "close"}

INTS = {"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "usize"}


# ------------------------------------------------------------ Rust parsing


class Field:
    def __init__(self, name: str, rust: str, optional: bool, doc: str) -> None:
        self.name, self.rust, self.optional, self.doc = name, rust, optional, doc


class Struct:
    def __init__(self, name: str, doc: str, fields: list[Field], serialize: bool) -> None:
        self.name, self.doc, self.fields, self.serialize = name, doc, fields, serialize


def parse_structs() -> dict[str, Struct]:
    """Every `struct Name { field: Type, ... }` of SOURCES, with `#[serde(skip)]`
    fields left out and `#[serde(flatten)]` fields inlined."""
    structs: dict[str, Struct] = {}
    flattened: dict[str, list[str]] = {}
    for source in SOURCES:
        lines = (CORE / source).read_text().splitlines()
        index = 0
        while index < len(lines):
            match = re.match(r"(pub )?struct (\w+)(<[^>]*>)? \{$", lines[index])
            if not match:
                index += 1
                continue
            name = match.group(2)
            attrs, docs = [], []
            back = index - 1
            while back >= 0 and (lines[back].startswith("#[") or lines[back].startswith("///")):
                (docs if lines[back].startswith("///") else attrs).insert(0, lines[back])
                back -= 1
            serialize = any("Serialize" in a for a in attrs)
            struct_default = any(re.search(r"#\[serde\([^)]*\bdefault\b", a) for a in attrs)
            fields: list[Field] = []
            field_attrs: list[str] = []
            field_docs: list[str] = []
            index += 1
            while lines[index] != "}":
                line = lines[index].strip()
                index += 1
                if line.startswith("#["):
                    field_attrs.append(line)
                    continue
                if line.startswith("///"):
                    field_docs.append(line[3:].strip())
                    continue
                fm = re.match(r"(?:pub(?:\([\w:]+\))? )?(\w+): (.+),$", line)
                if fm:
                    fname, rust = fm.group(1), fm.group(2)
                    skip = any(re.search(r"\bskip\b", a) for a in field_attrs)
                    default = struct_default or any(re.search(r"\bdefault\b", a) for a in field_attrs)
                    if any("flatten" in a for a in field_attrs):
                        flattened.setdefault(name, []).append(rust)
                    elif not skip:
                        fields.append(
                            Field(fname, rust.replace(" ", ""), default or rust.startswith("Option<"),
                                  " ".join(field_docs))
                        )
                field_attrs, field_docs = [], []
            doc = " ".join(d[3:].strip() for d in docs)
            structs.setdefault(name, Struct(name, doc, fields, serialize))
    for name, inner in flattened.items():
        for rust in inner:
            structs[name].fields.extend(structs[rust].fields)
    # MasterKeyInput's fields are all optional in practice (exactly one of
    # master_key / master_key_file): the core says which are missing.
    for field in structs.get("OpenOptions", Struct("", "", [], False)).fields:
        field.optional = True
    return structs


def parse_enums() -> dict[str, list[str]]:
    """The string enums of model/status.rs: name -> values."""
    text = (CORE / "model" / "status.rs").read_text()
    enums = {}
    for match in re.finditer(r"string_enum!\(\s*(?:///[^\n]*\n\s*)*(\w+) \{(.*?)\}\s*\);", text, re.S):
        enums[match.group(1)] = re.findall(r'=> "([^"]+)"', match.group(2))
    enums.update(EXTRA_ENUMS)
    return enums


def split_type(rust: str) -> tuple[str, list[str]]:
    """`Option<Vec<X>>` -> ("Option", ["Vec<X>"]); `(A,B)` -> ("tuple", [A, B])."""
    rust = rust.replace(" ", "")
    if rust.startswith("&'static"):
        rust = rust[len("&'static"):]
    if rust.startswith("(") and rust.endswith(")"):
        return "tuple", split_args(rust[1:-1])
    if rust.endswith(">") and "<" in rust:
        head, _, inner = rust.partition("<")
        return head.split("::")[-1], split_args(inner[:-1])
    return rust.split("::")[-1], []


def split_args(text: str) -> list[str]:
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i])
            start = i + 1
    if text[start:]:
        args.append(text[start:])
    return args


class Types:
    """Maps Rust type text to Python annotations."""

    def __init__(self, structs: dict[str, Struct], enums: dict[str, list[str]]) -> None:
        self.structs, self.enums = structs, enums
        self.records: list[str] = []  # record classes, dependency-closed
        self.inputs: list[str] = []  # TypedDicts
        self.used_enums: set[str] = set()
        self.unknown: set[str] = set()

    def output(self, rust: str) -> str:
        head, args = split_type(rust)
        if head == "Option":
            return f"{self.output(args[0])} | None"
        if head == "Vec":
            return f"list[{self.output(args[0])}]"
        if head == "Page":
            return f"Page[{self.output(args[0])}]"
        if head in ("Box", "Json"):
            return self.output(args[0])
        if head == "tuple":
            return "list[Any]"
        if head in ("Value", "serde_json::Value"):
            return "Any"
        if head in DOCUMENTS:
            return "dict[str, Any]"
        if head == "SubjectAlternativeName":
            return "SubjectAlternativeName"
        if head in self.enums:
            self.used_enums.add(head)
            return head
        if head in COMPOSITES or (head in self.structs and self.structs[head].serialize):
            self.record(head)
            return head
        return self.scalar(head)

    def scalar(self, head: str) -> str:
        if head in ("String", "str"):
            return "str"
        if head in INTS:
            return "int"
        if head in ("f32", "f64"):
            return "float"
        if head == "bool":
            return "bool"
        if head in ("DateTime", "Timestamp"):
            return "str"
        if head.endswith("Id"):
            return "str"
        if head == "Actor":
            return "Actor"
        if head == "()":
            return "None"
        self.unknown.add(head)
        return "Any"

    def record(self, name: str) -> None:
        if name in self.records:
            return
        self.records.append(name)
        for _, rust, _ in self.record_fields(name):
            self.output(rust)

    def record_fields(self, name: str) -> list[tuple[str, str, bool]]:
        if name in COMPOSITES:
            return COMPOSITES[name]
        return [(f.name, f.rust, False) for f in self.structs[name].fields]

    def nested(self, rust: str) -> str | None:
        """The type text `wrap` needs for a field holding records, or None."""
        head, args = split_type(rust)
        if head in ("Option", "Vec", "Box", "Json", "Page"):
            inner = self.nested(args[0])
            if inner is None:
                return None
            return inner if head in ("Box", "Json") else f"{head}<{inner}>"
        return head if head in self.records else None

    def param(self, rust: str) -> str:
        """The annotation of an argument."""
        head, args = split_type(rust)
        if head == "Option":
            return self.param(args[0])
        if head == "Vec":
            return f"Sequence[{self.param(args[0])}]"
        if head in ("Value", "serde_json::Value"):
            return "Any"
        if head in ("DateTime", "Timestamp"):
            return "str | datetime"
        if head.endswith("Id"):
            return "str | UUID"
        if head == "SubjectAlternativeName":
            return "SubjectAlternativeName"
        if head == "KeyAlgorithmName":
            return "str"
        if head in self.enums:
            self.used_enums.add(head)
            return head
        if head in self.structs and head not in self.records:
            self.input(head)
            return head
        return self.scalar(head)

    def input(self, name: str) -> None:
        if name in self.inputs:
            return
        self.inputs.append(name)
        for field in self.structs[name].fields:
            self.param(field.rust)


# ------------------------------------------------------------ writing

HEADER = "# Generated by clm-py/generate.py from the core; do not edit.\n"


def docstring(text: str, indent: str) -> str:
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()
    return f'{indent}"""{text}"""\n'


def build(operations: list[dict]) -> dict[str, str]:
    structs = parse_structs()
    types = Types(structs, parse_enums())
    for name in EXTRA_RECORDS:
        types.record(name)
    methods = []  # (name, summary, params [(name, annotation, optional)], returns, needs_actor, progress)
    for op in operations:
        for param in op["params"]:
            assert not keyword.iskeyword(param["name"]), param["name"]
        if op["name"] in HAND_WRITTEN:
            continue
        returns = types.output(op["returns"]) if op["returns"] != "()" else "None"
        params = []
        seen_optional = False
        for param in op["params"]:
            if param["optional"]:
                seen_optional = True
            else:
                assert not seen_optional, f"{op['name']}: a required parameter after an optional one"
            annotation = types.param(param["kind"])
            params.append((param["name"], annotation, param["optional"]))
        methods.append((op["name"], op["summary"], params, returns, op["needs_actor"], PROGRESS.get(op["name"])))
    open_fields = [
        (f.name, "str | PathLike[str]" if f.name.endswith(("_dir", "_file")) else types.param(f.rust))
        for f in structs["OpenOptions"].fields
    ]
    if types.unknown:
        print(f"generate.py: typed as Any (unknown Rust types): {sorted(types.unknown)}", file=sys.stderr)

    # ---- _types.py and the type part of the stub (same text)
    typedefs = []
    for name in sorted(types.used_enums):
        values = ", ".join(f'"{v}"' for v in types.enums[name])
        typedefs.append(f"{name} = Literal[{values}]\n")
    typedefs.append("\n\nclass SubjectAlternativeName(TypedDict):\n"
                    '    """A subject alternative name: `{"type": "DNS", "value": "example.com"}`."""\n\n'
                    '    type: Literal["DNS", "IP", "EMAIL", "URI"]\n    value: str\n')
    input_defs = []
    for name in sorted(types.inputs):
        struct = structs[name]
        lines = [f"\n\nclass {name}(TypedDict, total=False):\n"]
        lines.append(docstring(struct.doc or f"The `{name}` argument object.", "    ") + "\n")
        for field in struct.fields:
            annotation = types.param(field.rust)
            if field.optional:
                lines.append(f"    {field.name}: {annotation} | None\n")
            else:
                lines.append(f"    {field.name}: Required[{annotation}]\n")
        input_defs.append("".join(lines))
    record_defs, record_stubs = [], []
    for name in sorted(types.records):
        fields = types.record_fields(name)
        doc = DOCS.get(name) or (structs[name].doc if name in structs else "") or f"A `{name}` record."
        lines = [f"\n\nclass {name}(Record):\n", docstring(doc, "    "), "\n"]
        lines.append(f"    _fields = ({''.join(repr(f) + ', ' for f, _, _ in fields).rstrip()})\n")
        nested = {f: types.nested(rust) for f, rust, _ in fields}
        nested = {f: n for f, n in nested.items() if n}
        if nested:
            lines.append(f"    _nested = {nested!r}\n")
        secret = sorted(f for f, _, s in fields if s)
        if secret:
            lines.append(f"    _secret = frozenset({secret!r})\n")
        if name in ALWAYS:
            lines.append(f"    _always = {ALWAYS[name]!r}\n")
        lines.append("\n")
        annotations = [f"    {field}: {types.output(rust)}\n" for field, rust, _ in fields]
        record_defs.append("".join(lines + annotations))
        record_stubs.append(f"\nclass {name}(Record):\n" + "".join(annotations))
    type_names = sorted(types.used_enums) + ["SubjectAlternativeName"] + sorted(types.inputs) + sorted(types.records)

    types_py = (
        HEADER
        + '"""Record classes, argument objects (TypedDicts) and enum values of clm."""\n\n'
        + "from __future__ import annotations\n\n"
        + "from typing import TYPE_CHECKING, Any, Literal, Sequence, TypedDict\n\n"
        + "from ._native import Actor\n"
        + "from ._record import Page, Record\n\n"
        + "if TYPE_CHECKING:\n"
        + "    from datetime import datetime\n"
        + "    from uuid import UUID\n\n"
        + "    from typing_extensions import Required\n\n"
        + "".join(typedefs)
        + "".join(input_defs)
        + "".join(record_defs)
        + "\n\n#: Argument kinds that are text (enums) and objects (dicts).\n"
        + f"_ENUM_NAMES = frozenset({sorted(types.used_enums)!r})\n"
        + f"_DICT_NAMES = frozenset({sorted(types.inputs)!r})\n"
        + "\n__all__ = [\n"
        + "".join(f'    "{n}",\n' for n in type_names)
        + "]\n"
    )

    # ---- _operations.py
    ops = [
        HEADER,
        '"""The operations of clm, one method each (mixed into `clm.Clm`)."""\n\n',
        "from __future__ import annotations\n\n",
        "from typing import TYPE_CHECKING, Any, Callable, Sequence\n\n",
        "if TYPE_CHECKING:\n",
        "    from datetime import datetime\n    from uuid import UUID\n\n",
        "    from ._native import Actor\n",
        "    from ._types import *  # noqa: F403\n\n\n",
        "class Operations:\n",
        '    """Every operation of `clm::api::OPERATIONS`, in its order."""\n\n',
        "    def _call(self, name: str, actor: Any, args: dict[str, Any], progress: Any = None) -> Any:\n",
        "        raise NotImplementedError\n",
    ]
    stub_methods = []
    for name, summary, params, returns, needs_actor, progress in methods:
        signature = ["self"]
        if needs_actor:
            signature.append("actor: Actor")
        for pname, annotation, optional in params:
            signature.append(f"{pname}: {annotation} | None = None" if optional else f"{pname}: {annotation}")
        if progress:
            signature += ["*", f"progress: Callable[[{progress}], object] | None = None"]
        sig = ", ".join(signature)
        head = f"    def {name}({sig}) -> {returns}:\n"
        if len(head) > 100:
            head = f"    def {name}(\n" + "".join(f"        {s},\n" for s in signature) + f"    ) -> {returns}:\n"
        args = "{" + ", ".join(f'"{p}": {p}' for p, _, _ in params) + "}"
        call = f'self._call("{name}", {"actor" if needs_actor else "None"}, {args}'
        call += ", progress)" if progress else ")"
        ops.append("\n" + head + docstring(summary, "        ") + f"        return {call}  # type: ignore[no-any-return]\n")
        stub_methods.append(head[:-2] + ": ...\n")

    open_sig = ["cls", "*"] + [f"{n}: {a} | None = None" for n, a in open_fields]
    stub = (
        HEADER
        + "# Type stubs of the package; tests/test_stubs.py checks them against the module.\n"
        + "from datetime import datetime\n"
        + "from os import PathLike\n"
        + "from types import TracebackType\n"
        + "from typing import Any, Callable, ClassVar, Generic, Iterator, Literal, Sequence, TypedDict, TypeVar\n"
        + "from uuid import UUID\n\n"
        + "from typing_extensions import Required\n\n"
        + "__version__: str\n\n"
        + "def error_codes() -> list[tuple[int, str]]: ...\n"
        + "def operations() -> list[dict[str, Any]]: ...\n\n"
        + "class ClmError(Exception):\n    code: ClassVar[str | None]\n\n"
        + "".join(f"class {n}(ClmError): ...\n" for n in ERROR_CLASSES)
        + "\nclass Actor:\n"
        + "    @property\n    def kind(self) -> Literal[\"user\", \"api_key\", \"system\"]: ...\n"
        + "    @property\n    def user_id(self) -> str | None: ...\n"
        + "    @property\n    def session_id(self) -> str | None: ...\n"
        + "    @property\n    def api_key_id(self) -> str | None: ...\n"
        + "    @property\n    def organization_ids(self) -> list[str]: ...\n\n"
        + "_T = TypeVar(\"_T\")\n\n"
        + "class Record:\n"
        + "    def to_dict(self) -> dict[str, Any]: ...\n\n"
        + "class Page(Record, Generic[_T]):\n"
        + "    items: list[_T]\n    next_cursor: str | None\n"
        + "    def __iter__(self) -> Iterator[_T]: ...\n    def __len__(self) -> int: ...\n\n"
        + "".join(typedefs)
        + "".join(input_defs)
        + "".join(record_stubs)
        + "\n\nclass Clm:\n"
        + "    @classmethod\n"
        + "    def open(\n" + "".join(f"        {s},\n" for s in open_sig) + "    ) -> Clm: ...\n"
        + "    def close(self) -> None: ...\n"
        + "    @property\n    def closed(self) -> bool: ...\n"
        + "    def __enter__(self) -> Clm: ...\n"
        + "    def __exit__(\n        self,\n        exc_type: type[BaseException] | None,\n"
        + "        exc: BaseException | None,\n        traceback: TracebackType | None,\n    ) -> None: ...\n"
        + "".join(stub_methods)
    )
    return {
        "_types.py": types_py,
        "_operations.py": "".join(ops),
        "__init__.pyi": stub,
    }


ERROR_CLASSES: list[str] = []


def load_native():
    """The installed `clm._native`, loaded without running clm/__init__.py
    (which imports the files this script writes)."""
    spec = importlib.util.find_spec("clm")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("generate.py: install the clm wheel first (scripts/dist builds it)")
    for location in spec.submodule_search_locations:
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = pathlib.Path(location) / f"_native{suffix}"
            if path.exists():
                native_spec = importlib.util.spec_from_file_location("clm._native", path)
                module = importlib.util.module_from_spec(native_spec)
                native_spec.loader.exec_module(module)
                return module
    sys.exit("generate.py: the installed clm package has no _native extension")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    options = parser.parse_args()
    native = load_native()
    ERROR_CLASSES.extend(name for _, name in native.error_codes())
    files = build(native.operations())
    stale = 0
    for name, text in files.items():
        path = PACKAGE / name
        old = path.read_text() if path.exists() else ""
        if old == text:
            continue
        if options.check:
            stale += 1
            sys.stdout.writelines(
                difflib.unified_diff(old.splitlines(True), text.splitlines(True), f"{path} (committed)", f"{path} (generated)")
            )
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"\n{stale} generated file(s) are stale: run python clm-py/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
