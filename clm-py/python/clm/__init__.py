"""clm: embeddable certificate lifecycle management.

    import clm

    with clm.Clm.open(sqlite_dir="./clm-data", master_key_file="./master.key",
                      create_master_key=True) as c:
        system = c.system_actor()
        root = c.create_root_ca(system, {"subject": {"common_name": "Example Root CA"}})
        print(root.certificate.serial_number)

Every operation of the core is a method of ``Clm`` (``clm.operations()``
lists them), with the core's arguments in its order; the first one is the
acting ``Actor`` when the operation needs one. ``clm.aio.Clm`` has the same
methods as coroutines. Argument objects are dicts (see the ``TypedDict``s
such as ``clm.IssueInput``); results are read-only record objects
(``clm.Certificate``, ``clm.UserPage``, ...) whose ids are ``uuid.UUID``
and timestamps UTC ``datetime``s.

Calls are synchronous and release the GIL while they wait. Every failure of
clm raises a subclass of ``ClmError`` named after its error code
(``clm.NotFound``, ``clm.InvalidInput``, ...) carrying ``code``, ``field``,
``violations`` and ``entity``; each also subclasses the builtin of its
nature (``InvalidInput`` is a ``ValueError``, ``NotFound`` a
``LookupError``, ``PermissionDenied`` a ``PermissionError``; see
``_errors.py``). An argument of the wrong Python type raises ``TypeError``.
"""

from __future__ import annotations

import atexit as _atexit
import datetime as _datetime
import logging as _logging
import os as _os
import uuid as _uuid
from collections.abc import Mapping as _Mapping
from types import TracebackType
from typing import Any, Callable

from . import _native
from ._errors import *  # noqa: F403
from ._errors import CLASSES as _ERROR_CLASSES
from ._errors import ERROR_CODES as _ERROR_CODES
from ._errors import ClmError
from ._native import Actor, __version__
from ._operations import OPEN_OPTIONS as _OPEN_OPTIONS
from ._operations import OPERATIONS as _OPERATIONS
from ._operations import Operations
from ._record import Page, Record, wrap
from ._types import *  # noqa: F403
from ._types import __all__ as _types_all

# Before the interpreter finalizes, clm's runtime threads stop calling into
# Python (one attached during finalization would abort the process).
_atexit.register(_native.shutdown)

#: What each check of the generated table accepts: (types, text).
_ACCEPTS: dict[str, tuple[tuple[type, ...], str]] = {
    "bool": ((bool,), "bool"),
    "int": ((int,), "int"),
    "float": ((int, float), "float"),
    "str": ((str,), "str"),
    "uuid": ((str, _uuid.UUID), "str or UUID"),
    "datetime": ((str, _datetime.datetime), "str or datetime"),
    "list": ((list, tuple), "list"),
    "dict": ((_Mapping, Record), "dict"),
    "path": ((str, _os.PathLike), "str or os.PathLike"),
}


def error_codes() -> list[tuple[int, str]]:
    """The stable error codes, as (number, class name) pairs."""
    return list(_ERROR_CODES)


def operations() -> list[dict[str, Any]]:
    """The operation table: name, module, summary, needs_actor and
    arguments ([{name, required}]), in the core's order."""
    return [
        {
            "name": op.name,
            "module": op.module,
            "summary": op.summary,
            "needs_actor": op.needs_actor,
            "arguments": [{"name": name, "required": required} for name, required, _ in op.arguments],
        }
        for op in _OPERATIONS.values()
    ]


def set_log_level(level: int | str | None) -> None:
    """Forwards clm's log records at ``level`` and above (``logging.DEBUG``
    or ``"DEBUG"``, ...; 5 or ``"TRACE"`` adds every SQL statement) to
    :mod:`logging`; ``None`` stops. Records go to the logger named after
    their origin under ``clm`` (``clm.service.identity``, ``clm.db``,
    ``clm.sqlx.query``): operation spans closing with their outcome and
    duration, transactions, policy refusals, denials, slow statements.
    They never hold a secret. The default, set at import, is WARNING.
    Raises ``clm.Configuration`` when another Rust library of the process
    installed its own tracing subscriber first."""
    if isinstance(level, str):
        name = level.strip().upper()
        named = 5 if name == "TRACE" else _logging.getLevelName(name)
        if not isinstance(named, int):
            raise ValueError(f"unknown log level {level!r}")
        level = named
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
        raise TypeError(f"level must be an int, a level name or None, not {type(level).__name__}")
    _native.forward_logs(level)


try:
    set_log_level(_logging.WARNING)
except ClmError:  # another tracing subscriber owns the process's records
    pass


def _check(operation: str, name: str, check: str | None, value: Any) -> None:
    if check is None:
        return
    types, text = _ACCEPTS[check]
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        raise TypeError(f"{operation}() argument '{name}' must be {text}, not {type(value).__name__}")


def _open_options(given: dict[str, Any]) -> dict[str, Any]:
    """`Clm.open`'s keyword arguments, checked, without the unset ones."""
    options = {name: value for name, value in given.items() if value is not None}
    for name, value in options.items():
        _check("open", name, _OPEN_OPTIONS[name], value)
    return options


def _prepare(name: str, actor: Any, args: dict[str, Any], progress: Any) -> dict[str, Any]:
    """The named arguments of operation `name` as the native call takes
    them, after the checks a wrong Python type fails."""
    operation = _OPERATIONS[name]
    if operation.needs_actor and not isinstance(actor, Actor):
        raise TypeError(f"{name}() argument 'actor' must be a clm.Actor, not {type(actor).__name__}")
    given = {}
    for argument, required, check in operation.arguments:
        value = args.get(argument)
        if value is None:
            if required:
                raise TypeError(f"{name}() argument '{argument}' must not be None")
            continue
        _check(name, argument, check, value)
        # A record taken back (an audit checkpoint) goes as the JSON it came as.
        given[argument] = value.to_dict() if isinstance(value, Record) else value
    if progress is not None and not callable(progress):
        raise TypeError(f"{name}() argument 'progress' must be callable")
    return given


def _report(name: str, progress: Callable[[Any], object]) -> Callable[[Any], None]:
    """The native progress callback: each report as its record."""
    spec = _OPERATIONS[name].progress

    def report(value: Any) -> None:
        progress(wrap(spec, value))

    return report


def _finish(name: str, result: Any) -> Any:
    """The native result of operation `name` as its Python record."""
    operation = _OPERATIONS[name]
    if operation.result_kind != "value":
        return result
    return wrap(operation.result, result)


class Clm(Operations):
    """An open clm. ``Clm.open(...)`` opens it; ``close()`` (or leaving a
    ``with`` block) closes it, after which every call raises ``clm.Closed``."""

    __slots__ = ("_handle",)

    def __init__(self, handle: Any) -> None:
        if not isinstance(handle, _native.Handle):
            raise TypeError("use Clm.open(...) to open clm")
        self._handle = handle

    @classmethod
    def _open(cls, options: dict[str, Any]) -> Clm:
        return cls(_native.Handle.open(_open_options(options)))

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
        given = _prepare(name, actor, args, progress)
        report = _report(name, progress) if progress is not None else None
        return _finish(name, self._handle.call(name, actor, given, report))


__all__ = [
    "Actor",
    "Clm",
    "ClmError",
    "Page",
    "Record",
    "__version__",
    "error_codes",
    "operations",
    "set_log_level",
    *_ERROR_CLASSES,
    *_types_all,
]
