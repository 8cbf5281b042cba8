"""Record objects: what the operations return, as read-only objects with
attribute access (``cert.serial_number``), one class per record type of the
core (``clm.Certificate``, ``clm.User``, ...); pages (``clm.UserPage``, ...)
are ``clm.Page``s. The classes themselves are generated into ``_types.py``
with, per field, how its JSON value becomes Python (``_decode``): ids
``uuid.UUID``, timestamps UTC ``datetime``, nested records their class."""

from __future__ import annotations

import datetime as _datetime
import re
import uuid as _uuid
from typing import Any, ClassVar, Generic, Iterator, TypeVar

T = TypeVar("T")

#: Record classes by the core's type name (filled in by ``_types.py``).
RECORDS: dict[str, type[Record]] = {}


class Record:
    """Base of every record class. Fields are attributes (read-only);
    ``to_dict()`` gives the JSON data back exactly as the core sent it.
    Secret fields (a session token, an API key, a private key) never show
    in ``repr``."""

    # The JSON the record came from (a slot, so not among the fields).
    __slots__ = ("_json", "__dict__")

    #: The fields the core sends, in its order.
    _fields: ClassVar[tuple[str, ...]] = ()
    #: How a field's JSON value becomes Python (see `wrap`).
    _decode: ClassVar[dict[str, Any]] = {}
    #: Fields shown as <redacted> by repr.
    _secret: ClassVar[frozenset[str]] = frozenset()
    #: Fields set to None when the core leaves them out (tagged unions).
    _always: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        RECORDS.setdefault(cls.__name__, cls)

    def __init__(self, **fields: Any) -> None:
        object.__setattr__(self, "_json", None)
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @classmethod
    def _from_json(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}: expected an object from clm, got {type(data).__name__}")
        # The declared order first (the core's), then anything newer.
        order = [name for name in cls._fields if name in data or name in cls._always]
        order += [name for name in data if name not in cls._fields]
        fields = {}
        for name in order:
            value = data.get(name)
            spec = cls._decode.get(name)
            fields[name] = value if spec is None else wrap(spec, value)
        record = cls(**fields)
        object.__setattr__(record, "_json", data)
        return record

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} records are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} records are read-only")

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}=<redacted>" if name in self._secret else f"{name}={value!r}"
            for name, value in vars(self).items()
        )
        return f"{type(self).__name__}({shown})"

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON-ready data (nested records too): the
        values the core sent (ids and timestamps as text, exact)."""
        sent = self._json if isinstance(self._json, dict) else {}
        return {
            name: _copy(sent[name]) if name in sent else _plain(value)
            for name, value in vars(self).items()
        }


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, _datetime.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, _uuid.UUID):
        return str(value)
    return value


class Page(Record, Generic[T]):
    """One page of a list: ``items`` and ``next_cursor`` (None on the last
    page; pass it as ``page={"cursor": ...}`` for the next one). Iterating a
    page iterates its items."""

    _fields = ("items", "next_cursor")
    items: list[T]
    next_cursor: str | None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


# RFC 3339 as the core writes it: up to nine fraction digits (Python keeps
# six) and `Z` or an offset.
_TIMESTAMP = re.compile(
    r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:?\d\d)$"
)


def parse_timestamp(text: str) -> _datetime.datetime:
    """A UTC-aware datetime of the core's timestamp text."""
    match = _TIMESTAMP.match(text)
    if match is None:
        raise ValueError(f"clm sent a timestamp Python cannot read: {text!r}")
    date, time, fraction, zone = match.groups()
    fraction = (fraction or "")[:6].ljust(6, "0")
    zone = "+00:00" if zone in ("Z", "z") else zone
    parsed = _datetime.datetime.fromisoformat(f"{date}T{time}.{fraction}{zone}")
    return parsed.astimezone(_datetime.timezone.utc)


def wrap(spec: Any, value: Any) -> Any:
    """The Python form of `value`, which the core sent as `spec` (from the
    generated tables): None leaves it as it is, ``"uuid"`` and
    ``"datetime"`` convert text, a record name builds that record,
    ``("list", spec)`` and ``("map", spec)`` convert each item."""
    if value is None or spec is None:
        return value
    if spec == "uuid":
        return _uuid.UUID(value)
    if spec == "datetime":
        return parse_timestamp(value)
    if isinstance(spec, tuple):
        kind, inner = spec
        if kind == "list":
            return [wrap(inner, item) for item in value]
        return {key: wrap(inner, item) for key, item in value.items()}
    record = RECORDS.get(spec)
    if record is None:
        raise TypeError(f"clm sent a {spec} this package has no class for (regenerate it)")
    return record._from_json(value)
