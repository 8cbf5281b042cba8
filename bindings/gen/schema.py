"""Reading the API description: operations, named types and the JSON
Schemas that describe arguments and results.

Every language generator walks schemas through :func:`type_of` with its own
:class:`TypeMapper`, so the rules of the description (references, nullable
types, tagged unions, secrets, handles) are read in one place.
"""

from __future__ import annotations

import json
import pathlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

TYPES_PREFIX = "#/types/"


@dataclass
class Argument:
    name: str
    schema: Schema
    required: bool
    has_default: bool
    default: Any


@dataclass
class Operation:
    name: str
    module: str
    summary: str
    needs_actor: bool
    arguments: list[Argument]
    result: Schema
    #: "value", "actor", "handle" or "nothing"
    result_kind: str
    #: The schema of progress reports, or None when the operation has none.
    progress: Schema | None

    @property
    def is_handle_operation(self) -> bool:
        """`open`, `close`, `version`, `system_actor`: the handle's own."""
        return self.module == "handle"


@dataclass
class ErrorCode:
    code: str
    name: str
    number: int
    description: str


@dataclass
class Api:
    version: str
    operations: list[Operation]
    types: dict[str, Schema]
    records: list[str]
    enums: list[str]
    errors: list[ErrorCode]
    error_details: Schema
    actor_description: Schema
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    def operation(self, name: str) -> Operation:
        for operation in self.operations:
            if operation.name == name:
                return operation
        raise KeyError(name)

    def resolve(self, schema: Schema) -> Schema:
        """The schema a `$ref` points to (any other schema as it is)."""
        name = ref_name(schema)
        return self.types[name] if name is not None else schema


def load(path: pathlib.Path) -> Api:
    raw = json.loads(path.read_text())
    operations = [
        Operation(
            name=op["name"],
            module=op["module"],
            summary=op["summary"],
            needs_actor=op["needs_actor"],
            arguments=[
                Argument(
                    name=arg["name"],
                    schema=arg["schema"],
                    required=arg["required"],
                    has_default="default" in arg,
                    default=arg.get("default"),
                )
                for arg in op["arguments"]
            ],
            result=op["result"],
            result_kind=op["result_kind"],
            progress=op.get("progress"),
        )
        for op in raw["operations"]
    ]
    errors = [ErrorCode(e["code"], e["name"], e["number"], e["description"]) for e in raw["errors"]]
    return Api(
        version=raw["clm_version"],
        operations=operations,
        types=raw["types"],
        records=raw["records"],
        enums=raw["enums"],
        errors=errors,
        error_details=raw["error_details"],
        actor_description=raw["actor_description"],
        raw=raw,
    )


def ref_name(schema: Schema) -> str | None:
    """`Certificate` for `{"$ref": "#/types/Certificate"}`, else None."""
    reference = schema.get("$ref")
    if reference is None:
        return None
    if not reference.startswith(TYPES_PREFIX):
        raise ValueError(f"reference {reference!r} is outside {TYPES_PREFIX}")
    return reference[len(TYPES_PREFIX) :]


def split_nullable(schema: Schema) -> tuple[Schema, bool]:
    """`(inner, True)` for a schema that also allows null (`Option<T>`):
    `{"type": ["string", "null"]}` or `{"anyOf": [T, {"type": "null"}]}`."""
    kinds = schema.get("type")
    if isinstance(kinds, list) and "null" in kinds:
        rest = [k for k in kinds if k != "null"]
        inner = dict(schema)
        inner["type"] = rest[0] if len(rest) == 1 else rest
        return inner, True
    for key in ("anyOf", "oneOf"):
        variants = schema.get(key)
        if isinstance(variants, list) and any(v == {"type": "null"} for v in variants):
            rest = [v for v in variants if v != {"type": "null"}]
            if len(rest) == 1:
                return rest[0], True
            inner = {k: v for k, v in schema.items() if k != key}
            inner[key] = rest
            return inner, True
    return schema, False


def is_secret(schema: Schema) -> bool:
    """Shown once and never in a `repr` (`"x-secret": true`)."""
    return bool(schema.get("x-secret"))


def handle_kind(schema: Schema) -> str | None:
    """`"actor"` or `"clm"` for the opaque handles, else None."""
    value = schema.get("x-handle")
    return value if isinstance(value, str) else None


def enum_values(schema: Schema) -> list[Any] | None:
    """The allowed values of an enumeration (`enum`, or `oneOf` constants)."""
    if "enum" in schema:
        return list(schema["enum"])
    variants = schema.get("oneOf")
    if isinstance(variants, list) and variants and all("const" in v for v in variants):
        return [v["const"] for v in variants]
    return None


def properties(schema: Schema) -> list[tuple[str, Schema, bool]]:
    """`(name, schema, required)` of an object schema's fields, in order."""
    required = set(schema.get("required", []))
    return [(name, prop, name in required) for name, prop in schema.get("properties", {}).items()]


def integer_range(schema: Schema) -> tuple[int | None, int | None]:
    """The bounds of an integer schema from its `format` and limits
    (`uint32` is 0..4294967295), so bindings can refuse out-of-range
    numbers by name before they reach the core."""
    formats = {
        "int8": (-(2**7), 2**7 - 1),
        "uint8": (0, 2**8 - 1),
        "int16": (-(2**15), 2**15 - 1),
        "uint16": (0, 2**16 - 1),
        "int32": (-(2**31), 2**31 - 1),
        "uint32": (0, 2**32 - 1),
        "int64": (-(2**63), 2**63 - 1),
        "uint64": (0, 2**64 - 1),
        "uint": (0, 2**64 - 1),
        "int": (-(2**63), 2**63 - 1),
    }
    low, high = formats.get(schema.get("format", ""), (None, None))
    if "minimum" in schema:
        low = schema["minimum"] if low is None else max(low, schema["minimum"])
    if "maximum" in schema:
        high = schema["maximum"] if high is None else min(high, schema["maximum"])
    return low, high


class TypeMapper(ABC):
    """How one language spells the types a schema describes. Each method
    returns that language's type expression."""

    @abstractmethod
    def primitive(self, kind: str, schema: Schema) -> str:  # string, integer, number, boolean, null
        ...

    @abstractmethod
    def array(self, item: str, schema: Schema) -> str:
        ...

    @abstractmethod
    def mapping(self, value: str, schema: Schema) -> str:
        ...

    @abstractmethod
    def reference(self, name: str) -> str:
        ...

    @abstractmethod
    def nullable(self, inner: str) -> str:
        ...

    @abstractmethod
    def union(self, parts: list[str]) -> str:
        ...

    @abstractmethod
    def literal(self, values: list[Any]) -> str:
        ...

    @abstractmethod
    def anything(self) -> str:
        ...

    def object(self, schema: Schema) -> str:
        """An inline object with properties (rare: named types are refs)."""
        return self.mapping(self.anything(), schema)


def type_of(schema: Schema, mapper: TypeMapper) -> str:
    """The type expression of `schema` in the mapper's language."""
    if schema is True or schema == {}:
        return mapper.anything()
    inner, nullable = split_nullable(schema)
    if nullable:
        return mapper.nullable(type_of(inner, mapper))
    name = ref_name(schema)
    if name is not None:
        return mapper.reference(name)
    if "const" in schema:
        return mapper.literal([schema["const"]])
    values = enum_values(schema)
    if values is not None:
        return mapper.literal(values)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return mapper.union([type_of(variant, mapper) for variant in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return mapper.union([type_of({**schema, "type": k}, mapper) for k in kind])
    if kind == "array":
        return mapper.array(type_of(schema.get("items", {}), mapper), schema)
    if kind == "object":
        if "properties" in schema:
            return mapper.object(schema)
        extra = schema.get("additionalProperties", {})
        return mapper.mapping(type_of(extra if isinstance(extra, dict) else {}, mapper), schema)
    if kind in ("string", "integer", "number", "boolean", "null"):
        return mapper.primitive(kind, schema)
    return mapper.anything()
