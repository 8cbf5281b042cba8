"""clm: embeddable certificate lifecycle management.

    import clm

    with clm.Clm.open(sqlite_dir="./clm-data", master_key_file="./master.key",
                      create_master_key=True) as c:
        system = c.system_actor()
        root = c.create_root_ca(system, {"subject": {"common_name": "Example Root CA"}})
        print(root.certificate.serial_number)

Every operation of the core is a method of ``Clm`` (``clm.operations()``
lists them), with the core's parameters in its order; the first one is the
acting ``Actor`` when the operation needs one. Argument objects are dicts
(see the ``TypedDict``s such as ``clm.IssueInput``); results are read-only
record objects (``clm.Certificate``, ``clm.Page``, ...).

Calls are synchronous and release the GIL while they wait. Every failure of
clm raises a subclass of ``ClmError`` named after its error code
(``clm.NotFound``, ``clm.InvalidInput``, ...) with the stable code string as
``code``; an argument of the wrong Python type raises ``TypeError``.
"""

from __future__ import annotations

import datetime as _datetime
import os as _os
import uuid as _uuid
from collections.abc import Mapping as _Mapping
from types import TracebackType
from typing import Any

from . import _native
from ._native import (
    Actor,
    AlreadyExists,
    Authentication,
    ClmError,
    Closed,
    Configuration,
    Conflict,
    Crypto,
    Database,
    Internal,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    __version__,
    error_codes,
    operations,
)
from ._operations import Operations
from ._record import Page, Record, wrap
from ._types import *  # noqa: F403
from ._types import _DICT_NAMES, _ENUM_NAMES
from ._types import __all__ as _types_all

#: The operation table, by name (from the native library).
_TABLE = {operation["name"]: operation for operation in operations()}

_INTS = {"u8", "u16", "u32", "u64", "i32", "i64"}


def _expected(kind: str) -> tuple[tuple[type, ...], str] | None:
    """The Python types an argument of Rust type `kind` may have (what
    converts to the JSON the core parses), or None for any JSON value."""
    if kind.startswith("Option<"):
        kind = kind[len("Option<") : -1]
    if kind == "bool":
        return (bool,), "bool"
    if kind in _INTS:
        return (int,), "int"
    if kind.startswith("Vec<"):
        return (list, tuple), "list"
    if kind.startswith("DateTime<"):
        return (str, _datetime.datetime), "str or datetime"
    if kind.endswith("Id"):
        return (str, _uuid.UUID), "str or UUID"
    if kind == "String" or kind in _ENUM_NAMES:
        return (str,), "str"
    if kind in _DICT_NAMES:
        return (_Mapping,), "dict"
    return None


def _check(operation: str, name: str, kind: str, value: Any) -> None:
    expected = _expected(kind)
    if expected is None:
        return
    types, text = expected
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types) or (text == "str" and isinstance(value, _os.PathLike))
    if not ok:
        raise TypeError(
            f"{operation}() argument '{name}' must be {text} ({kind}), not {type(value).__name__}"
        )


class Clm(Operations):
    """An open clm. ``Clm.open(...)`` opens it; ``close()`` (or leaving a
    ``with`` block) closes it, after which every call raises ``clm.Closed``."""

    __slots__ = ("_handle",)

    def __init__(self, handle: Any) -> None:
        if not isinstance(handle, _native.Handle):
            raise TypeError("use Clm.open(...) to open clm")
        self._handle = handle

    @classmethod
    def open(
        cls,
        *,
        sqlite_dir: str | _os.PathLike[str] | None = None,
        secure_url: str | None = None,
        core_url: str | None = None,
        master_key: str | None = None,
        master_key_file: str | _os.PathLike[str] | None = None,
        create_master_key: bool | None = None,
        max_connections: int | None = None,
        cache_ttl_ms: int | None = None,
    ) -> Clm:
        """Opens clm on a SQLite directory (``sqlite_dir``) or two
        PostgreSQL databases (``secure_url``, ``core_url``) with a master
        key: ``master_key`` (base64 of 32 bytes) or ``master_key_file``
        (created when missing with ``create_master_key=True``).
        ``cache_ttl_ms``: how long issuers and policies stay cached in this
        process (default 1000; 0 turns the caches off)."""
        given = {
            "sqlite_dir": sqlite_dir,
            "secure_url": secure_url,
            "core_url": core_url,
            "master_key": master_key,
            "master_key_file": master_key_file,
            "create_master_key": create_master_key,
            "max_connections": max_connections,
            "cache_ttl_ms": cache_ttl_ms,
        }
        options = {name: value for name, value in given.items() if value is not None}
        for name, value in options.items():
            _check("open", name, _OPEN_KINDS[name], value)
        return cls(_native.Handle.open(options))

    def close(self) -> None:
        """Closes both databases; later calls raise ``clm.Closed``. Idempotent."""
        self._handle.close()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return bool(self._handle.closed)

    def __enter__(self) -> Clm:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<clm.Clm {'closed' if self.closed else 'open'}>"

    def _call(self, name: str, actor: Any, args: dict[str, Any], progress: Any = None) -> Any:
        operation = _TABLE.get(name)
        if operation is None:
            raise NotImplementedError(f"the native library has no operation {name!r}")
        if operation["needs_actor"] and not isinstance(actor, Actor):
            raise TypeError(
                f"{name}() argument 'actor' must be a clm.Actor, not {type(actor).__name__}"
            )
        given = {}
        for param in operation["params"]:
            value = args.get(param["name"])
            if value is None:
                if not param["optional"]:
                    raise TypeError(f"{name}() argument '{param['name']}' must not be None")
                continue
            _check(name, param["name"], param["kind"], value)
            given[param["name"]] = value
        report = None
        if progress is not None:
            if not callable(progress):
                raise TypeError(f"{name}() argument 'progress' must be callable")
            record = _PROGRESS_RECORD

            def report(value: Any) -> None:
                progress(wrap(record, value))

        result = self._handle.call(name, actor, given, report)
        return wrap(operation["returns"], result)


_PROGRESS_RECORD = "RotationProgress"
_OPEN_KINDS = {
    "sqlite_dir": "String",
    "secure_url": "String",
    "core_url": "String",
    "master_key": "String",
    "master_key_file": "String",
    "create_master_key": "bool",
    "max_connections": "u32",
    "cache_ttl_ms": "u64",
}

__all__ = [
    "Actor",
    "AlreadyExists",
    "Authentication",
    "Clm",
    "ClmError",
    "Closed",
    "Configuration",
    "Conflict",
    "Crypto",
    "Database",
    "Internal",
    "InvalidInput",
    "NotFound",
    "Page",
    "PermissionDenied",
    "PolicyViolation",
    "Record",
    "__version__",
    "error_codes",
    "operations",
    *_types_all,
]
