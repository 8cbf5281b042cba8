"""Record objects: what the operations return, as read-only objects with
attribute access (``cert.serial_number``), one class per record type of the
core (``clm.Certificate``, ``clm.User``, ...) and ``clm.Page`` for paginated
lists. The classes themselves are generated into ``_types.py``."""

from __future__ import annotations

from typing import Any, ClassVar, Generic, Iterator, TypeVar

T = TypeVar("T")

#: Record classes by the core's type name (filled in by ``_types.py``).
RECORDS: dict[str, type[Record]] = {}


class Record:
    """Base of every record class. Fields are attributes (read-only);
    ``to_dict()`` gives the plain JSON-shaped data back. Secret fields (a
    session token, an API key, a private key) never show in ``repr``."""

    #: The fields the core sends, in its order.
    _fields: ClassVar[tuple[str, ...]] = ()
    #: Fields holding other records: field -> the core's type text.
    _nested: ClassVar[dict[str, str]] = {}
    #: Fields shown as <redacted> by repr.
    _secret: ClassVar[frozenset[str]] = frozenset()
    #: Fields set to None when the core leaves them out (tagged unions).
    _always: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        RECORDS.setdefault(cls.__name__, cls)

    def __init__(self, **fields: Any) -> None:
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
            fields[name] = wrap(cls._nested[name], value) if name in cls._nested else value
        return cls(**fields)

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
        """The record as plain data (nested records too), as the core sent it."""
        return {name: _plain(value) for name, value in vars(self).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(item) for item in value]
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


def _split(text: str) -> tuple[str, str | None]:
    """``Page<User>`` -> (``Page``, ``User``); ``User`` -> (``User``, None)."""
    if text.endswith(">") and "<" in text:
        head, _, inner = text.partition("<")
        return head, inner[:-1]
    return text, None


def wrap(kind: str, value: Any) -> Any:
    """The Python form of `value`, which the core sent as type `kind`
    (Rust type text, no spaces): records become record objects, pages
    ``Page``, lists lists; anything else stays as it is."""
    if value is None:
        return None
    head, inner = _split(kind)
    if inner is not None:
        if head == "Page":
            return Page(
                items=[wrap(inner, item) for item in value["items"]],
                next_cursor=value.get("next_cursor"),
            )
        if head == "Vec":
            return [wrap(inner, item) for item in value]
        if head in ("Option", "Box", "Json"):
            return wrap(inner, value)
        return value
    record = RECORDS.get(head)
    if record is not None and record is not Page:
        return record._from_json(value)
    return value
