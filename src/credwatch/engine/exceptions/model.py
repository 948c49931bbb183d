"""The exception-list model: entries, items, lists, and the error they raise."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credwatch.errors import ConfigError

ENTRY_TYPES = ("match", "match_any", "wildcard", "exists", "list", "nested")
OPERATORS = ("included", "excluded")
#: Entry types allowed inside a ``nested`` entry (Kibana's schema).
NESTED_ENTRY_TYPES = ("match", "match_any", "exists")
#: Value-list types credwatch evaluates.
LIST_TYPES = ("keyword", "text", "ip", "ip_range")
SUMMARY_KEYS = ("exported_exception_list_count", "exported_exception_list_item_count")

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]


class ExceptionListError(ConfigError):
    """A malformed exception list, item or entry; names the list, the item and the field."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One exception entry (``nested`` entries hold inner ``entries``)."""

    field: str
    type: str
    operator: str = "included"
    value: str | tuple[str, ...] | None = None
    list_id: str | None = None
    list_type: str | None = None
    entries: tuple[Entry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Kibana's JSON form of the entry."""
        if self.type == "nested":
            return {"field": self.field, "type": "nested",
                    "entries": [e.to_json() for e in self.entries]}
        out: dict[str, Any] = {"field": self.field, "operator": self.operator, "type": self.type}
        if self.type == "list":
            out["list"] = {"id": self.list_id, "type": self.list_type}
        elif self.type == "match_any":
            out["value"] = list(self.value or ())
        elif self.type != "exists":
            out["value"] = self.value
        return out

    def describe(self) -> str:
        """Human form, e.g. ``process.executable is "/usr/bin/kubectl"``."""
        neg = " not" if self.operator == "excluded" else ""
        if self.type == "match":
            return f'{self.field} is{neg} "{self.value}"'
        if self.type == "match_any":
            vals = ", ".join(f'"{v}"' for v in (self.value or ()))
            return f"{self.field} is{neg} one of {vals}"
        if self.type == "wildcard":
            return f'{self.field}{" does not" if neg else ""} {"match" if neg else "matches"} "{self.value}"'
        if self.type == "exists":
            return f"{self.field}{' does not' if neg else ''} {'exist' if neg else 'exists'}"
        if self.type == "list":
            return f"{self.field} is{neg} in list {self.list_id} ({self.list_type})"
        inner = " AND ".join(e.describe() for e in self.entries)
        return f"{self.field} has an object where {{{inner}}}"


@dataclass(frozen=True, slots=True)
class ExceptionItem:
    """One exception item: entries ANDed, plus optional ``os_types`` and ``expire_time``."""

    item_id: str
    list_id: str
    entries: tuple[Entry, ...]
    name: str = ""
    namespace_type: str = "single"
    os_types: tuple[str, ...] = ()
    expire_time: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    source: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ExceptionList:
    """A list container and its items."""

    list_id: str
    namespace_type: str = "single"
    name: str = ""
    type: str = "detection"
    items: tuple[ExceptionItem, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)
    source: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """``(list_id, namespace_type)``: how rules reference a list."""
        return (self.list_id, self.namespace_type)


def value_text(v: Any) -> str:
    """The string an event value is compared as (``true``, ``5`` for ``5.0``)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)
