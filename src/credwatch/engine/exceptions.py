"""Kibana exception lists: import, evaluate and write them.

Semantics follow Kibana's ``build_exception_filter.ts`` (lists plugin), where
the exception items of a rule become one negated filter of the rule's search:

* an item's ``entries`` are ANDed, the items of all attached lists are ORed, and
  an event that matches any item is excluded (before ``max_signals`` applies,
  because the filter is part of the query);
* ``match`` is a ``match_phrase`` (exact, case-sensitive on keyword fields),
  ``match_any`` ORs several of those, ``wildcard`` is an Elasticsearch
  ``wildcard`` query (``*`` and ``?``, anchored, case-sensitive, ``\\`` escapes),
  ``exists`` is an ``exists`` query, ``list`` is a ``terms`` query over a value
  list (``ip_range`` lists also take ``a-b`` ranges and CIDRs; ``ip`` lists take
  addresses and CIDRs), and ``nested`` evaluates its inner entries against each
  object under the nested path separately;
* operator ``excluded`` negates the entry (so it is true when the field is missing);
* an item with ``os_types`` also needs ``host.os.type`` (or Endpoint's
  ``host.os.name.caseless``) to equal one of them;
* items whose ``expire_time`` is before the rule execution are ignored.

Kibana exports exception lists as NDJSON: list containers (``list_id``,
``type``, ``namespace_type`` …), items (``item_id``, ``list_id``, ``entries``,
``type: simple`` …) and one summary line (``exported_exception_list_count`` …).
:func:`load_export` reads that shape and :func:`write_export` writes it, so a
file credwatch writes imports into Kibana.

Value lists (``list`` entries) are files with one value per line, as Kibana's
value-list import takes them; a list's id is the file name, as in Kibana.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credwatch.alerts.build import iso_ms, parse_event_time
from credwatch.errors import ConfigError
from credwatch.normalize.flatten import get_objects, get_values

__all__ = [
    "ENTRY_TYPES",
    "Entry",
    "ExceptionFilter",
    "ExceptionItem",
    "ExceptionList",
    "ExceptionListError",
    "ExceptionSet",
    "ValueLists",
    "entries_from_alert",
    "load_export",
    "new_item",
    "parse_export",
    "write_export",
]

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


# --- model ---------------------------------------------------------------------------------

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


# --- parsing -------------------------------------------------------------------------------

def _err(where: str, list_id: str | None, item_id: str | None, fld: str | None,
         message: str) -> ExceptionListError:
    parts = [where]
    if list_id is not None:
        parts.append(f"list {list_id!r}")
    if item_id is not None:
        parts.append(f"item {item_id!r}")
    if fld is not None:
        parts.append(f"field {fld!r}")
    return ExceptionListError(", ".join(parts) + f": {message}")


def _parse_entry(obj: Any, where: str, list_id: str, item_id: str, *, nested: bool = False) -> Entry:
    if not isinstance(obj, Mapping):
        raise _err(where, list_id, item_id, None, f"an entry must be an object, not {obj!r}")
    fld = obj.get("field")
    if not isinstance(fld, str) or not fld.strip():
        raise _err(where, list_id, item_id, None if fld is None else str(fld),
                   "an entry needs a non-empty 'field'")

    def bad(message: str) -> ExceptionListError:
        return _err(where, list_id, item_id, fld, message)

    etype = obj.get("type")
    allowed = NESTED_ENTRY_TYPES if nested else ENTRY_TYPES
    if etype not in allowed:
        raise bad(f"entry type {etype!r} is not one of {', '.join(allowed)}"
                  + (" (inside a nested entry)" if nested else ""))
    if etype == "nested":
        inner = obj.get("entries")
        if not isinstance(inner, list) or not inner:
            raise bad("a nested entry needs a non-empty 'entries' list")
        return Entry(field=fld, type="nested", entries=tuple(
            _parse_entry(e, where, list_id, item_id, nested=True) for e in inner))
    operator = obj.get("operator")
    if operator not in OPERATORS:
        raise bad(f"operator {operator!r} is not 'included' or 'excluded'")
    value = obj.get("value")
    if etype in ("match", "wildcard"):
        if not isinstance(value, str) or not value:
            raise bad(f"a {etype} entry needs a non-empty string 'value', not {value!r}")
        return Entry(field=fld, type=etype, operator=operator, value=value)
    if etype == "match_any":
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, str) and v for v in value)):
            raise bad(f"a match_any entry needs a non-empty list of strings, not {value!r}")
        return Entry(field=fld, type=etype, operator=operator, value=tuple(value))
    if etype == "exists":
        return Entry(field=fld, type=etype, operator=operator)
    lst = obj.get("list")
    if not isinstance(lst, Mapping) or not isinstance(lst.get("id"), str) or not lst.get("id"):
        raise bad("a list entry needs 'list': {\"id\": …, \"type\": …}")
    ltype = lst.get("type")
    if ltype not in LIST_TYPES:
        raise bad(f"value list type {ltype!r} is not supported (use {', '.join(LIST_TYPES)})")
    return Entry(field=fld, type="list", operator=operator, list_id=str(lst["id"]),
                 list_type=str(ltype))


def _parse_item(obj: Mapping[str, Any], where: str) -> ExceptionItem:
    list_id = obj.get("list_id")
    item_id = obj.get("item_id")
    if not isinstance(list_id, str) or not list_id:
        raise _err(where, None, str(item_id) if item_id else None, None,
                   "an exception item needs a 'list_id'")
    if not isinstance(item_id, str) or not item_id:
        raise _err(where, list_id, None, None, "an exception item needs an 'item_id'")
    if obj.get("type", "simple") != "simple":
        raise _err(where, list_id, item_id, None,
                   f"item type {obj.get('type')!r} is not supported (only 'simple')")
    entries = obj.get("entries")
    if not isinstance(entries, list) or not entries:
        raise _err(where, list_id, item_id, None, "an exception item needs a non-empty 'entries' list")
    os_types = obj.get("os_types") or []
    if not isinstance(os_types, list) or not all(isinstance(o, str) for o in os_types):
        raise _err(where, list_id, item_id, "os_types", "os_types must be a list of strings")
    expire: datetime | None = None
    if obj.get("expire_time"):
        expire = parse_event_time(obj["expire_time"])
        if expire is None:
            raise _err(where, list_id, item_id, "expire_time",
                       f"invalid date {obj['expire_time']!r}")
    namespace = obj.get("namespace_type", "single")
    if namespace not in ("single", "agnostic"):
        raise _err(where, list_id, item_id, "namespace_type",
                   f"{namespace!r} is not 'single' or 'agnostic'")
    return ExceptionItem(
        item_id=item_id, list_id=list_id,
        entries=tuple(_parse_entry(e, where, list_id, item_id) for e in entries),
        name=str(obj.get("name") or ""), namespace_type=namespace, os_types=tuple(os_types),
        expire_time=expire, raw=dict(obj), source=where)


def parse_export(text: str, source: str = "<exceptions>") -> list[ExceptionList]:
    """Parse Kibana's exception-list NDJSON export (lists, items and the summary line)."""
    containers: dict[tuple[str, str], dict[str, Any]] = {}
    items: dict[tuple[str, str], list[ExceptionItem]] = {}
    order: list[tuple[str, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExceptionListError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ExceptionListError(f"{where}: expected a JSON object per line")
        if any(k in obj for k in SUMMARY_KEYS) and "list_id" not in obj:
            continue  # the export summary line
        if "item_id" in obj or "entries" in obj:
            item = _parse_item(obj, where)
            key = (item.list_id, item.namespace_type)
            if key not in items:
                items[key] = []
                if key not in containers:
                    order.append(key)
            items[key].append(item)
            continue
        list_id = obj.get("list_id")
        if not isinstance(list_id, str) or not list_id:
            raise ExceptionListError(f"{where}: neither an exception list (list_id) nor an item "
                                     "(item_id, entries) nor the export summary")
        key = (list_id, str(obj.get("namespace_type", "single")))
        if key not in containers and key not in items:
            order.append(key)
        containers[key] = {**obj, "_where": where}
    out: list[ExceptionList] = []
    for key in order:
        raw = dict(containers.get(key, {}))
        where = str(raw.pop("_where", source))
        out.append(ExceptionList(list_id=key[0], namespace_type=key[1],
                                 name=str(raw.get("name") or key[0]),
                                 type=str(raw.get("type") or "detection"),
                                 items=tuple(items.get(key, ())), raw=raw, source=where))
    return out


def load_export(path: str | os.PathLike[str]) -> list[ExceptionList]:
    """Read an exception-list export file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read exception list file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"exception list file {path} is not UTF-8 text") from None
    return parse_export(text, str(path))


# --- writing -------------------------------------------------------------------------------

def _now_iso() -> str:
    return iso_ms(datetime.now(UTC))


def list_container(list_id: str, name: str | None = None, *,
                   description: str = "Exceptions written by credwatch") -> dict[str, Any]:
    """A new list container object (Kibana's shape)."""
    now = _now_iso()
    return {"_version": None, "created_at": now, "created_by": "credwatch",
            "description": description, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, list_id)),
            "immutable": False, "list_id": list_id, "name": name or list_id,
            "namespace_type": "single", "os_types": [], "tags": [],
            "tie_breaker_id": str(uuid.uuid4()), "type": "detection", "updated_at": now,
            "updated_by": "credwatch", "version": 1}


def new_item(list_id: str, entries: Sequence[Entry], *, name: str, description: str = "",
             comment: str | None = None) -> dict[str, Any]:
    """A new exception item object (Kibana's shape); ``item_id`` is derived from the entries."""
    body = json.dumps([e.to_json() for e in entries], sort_keys=True)
    item_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{list_id}\n{body}"))
    now = _now_iso()
    comments = [{"comment": comment, "created_at": now, "created_by": "credwatch",
                 "id": str(uuid.uuid4())}] if comment else []
    return {"_version": None, "comments": comments, "created_at": now, "created_by": "credwatch",
            "description": description or name, "entries": [e.to_json() for e in entries],
            "id": str(uuid.uuid4()), "item_id": item_id, "list_id": list_id, "name": name,
            "namespace_type": "single", "os_types": [], "tags": [],
            "tie_breaker_id": str(uuid.uuid4()), "type": "simple", "updated_at": now,
            "updated_by": "credwatch"}


def write_export(path: str | os.PathLike[str], lists: Sequence[Mapping[str, Any]],
                 items: Sequence[Mapping[str, Any]]) -> None:
    """Write lists and items as a Kibana export (with its summary line), atomically."""
    summary = {"exported_exception_list_count": len(lists),
               "exported_exception_list_item_count": len(items),
               "missing_exception_list_item_count": 0, "missing_exception_list_items": [],
               "missing_exception_lists": [], "missing_exception_lists_count": 0}
    lines = [json.dumps(o, separators=(",", ":")) for o in [*lists, *items, summary]]
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def entries_from_alert(alert: Event, fields: Sequence[str]) -> list[Entry]:
    """Entries that describe ``alert``'s event on ``fields`` (the tuning loop).

    A single value becomes a ``match`` entry; each value of a multi-valued
    field (``process.args``) becomes its own ``match`` entry, so the item
    requires every one of those values, not just any of them.
    """
    out: list[Entry] = []
    for fld in fields:
        values = get_values(alert, fld)
        if not values:
            raise ConfigError(f"the alert has no value for {fld!r}; pick fields it has")
        seen: set[str] = set()
        for v in values:
            text = _text(v)
            if text not in seen:
                seen.add(text)
                out.append(Entry(field=fld, type="match", operator="included", value=text))
    return out


# --- value lists ---------------------------------------------------------------------------

class ValueLists:
    """Value lists read from files; a list's id is its file name (as in Kibana)."""

    def __init__(self) -> None:
        self._paths: dict[str, Path] = {}
        self._values: dict[str, tuple[str, ...]] = {}

    def add_path(self, path: str | os.PathLike[str]) -> None:
        """Register a value-list file, or every file of a folder."""
        p = Path(path)
        if p.is_dir():
            for child in sorted(p.iterdir()):
                if child.is_file():
                    self._paths[child.name] = child
        elif p.is_file():
            self._paths[p.name] = p
        else:
            raise ConfigError(f"value list {path} does not exist")

    def values(self, list_id: str) -> tuple[str, ...] | None:
        """The values of list ``list_id`` (one per non-empty line), or None if unknown."""
        if list_id in self._values:
            return self._values[list_id]
        path = self._paths.get(list_id)
        if path is None:
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read value list {path}: {exc}") from None
        vals = tuple(v.strip() for v in text.splitlines() if v.strip())
        self._values[list_id] = vals
        return vals


# --- evaluation ----------------------------------------------------------------------------

def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _ip_test(values: Sequence[str], with_ranges: bool, where: str) -> Callable[[Any], bool]:
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    ranges: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address,
                       ipaddress.IPv4Address | ipaddress.IPv6Address]] = []
    for raw in values:
        try:
            if with_ranges and "-" in raw:
                lo, hi = raw.split("-", 1)
                ranges.append((ipaddress.ip_address(lo.strip()), ipaddress.ip_address(hi.strip())))
            else:
                nets.append(ipaddress.ip_network(raw, strict=False))
        except ValueError:
            raise ExceptionListError(f"{where}: value list entry {raw!r} is not an IP, CIDR"
                                     + (" or range" if with_ranges else "")) from None

    def test(v: Any) -> bool:
        try:
            ip = ipaddress.ip_address(str(v))
        except ValueError:
            return False
        if any(ip.version == n.version and ip in n for n in nets):
            return True
        return any(lo.version == ip.version and lo <= ip <= hi for lo, hi in ranges)  # type: ignore[operator]
    return test


def _compile_entry(entry: Entry, prefix: str, value_lists: ValueLists, where: str) -> Predicate:
    path = f"{prefix}{entry.field}"
    positive: Predicate
    if entry.type == "nested":
        inner = [_compile_entry(e, "", value_lists, where) for e in entry.entries]

        def nested(ev: Event) -> bool:
            return any(all(p(obj) for p in inner) for obj in get_objects(ev, path))
        return nested
    if entry.type == "match":
        wanted = str(entry.value)

        def positive(ev: Event) -> bool:
            return any(_text(v) == wanted for v in get_values(ev, path))
    elif entry.type == "match_any":
        wanted_set = frozenset(entry.value or ())

        def positive(ev: Event) -> bool:
            return any(_text(v) in wanted_set for v in get_values(ev, path))
    elif entry.type == "wildcard":
        rx = _wildcard_regex(str(entry.value))

        def positive(ev: Event) -> bool:
            return any(rx.fullmatch(_text(v)) is not None for v in get_values(ev, path))
    elif entry.type == "exists":
        def positive(ev: Event) -> bool:
            return bool(get_values(ev, path))
    else:
        values = value_lists.values(str(entry.list_id))
        if values is None:
            raise ExceptionListError(
                f"{where}, field {entry.field!r}: value list {entry.list_id!r} was not found; "
                "give its file with --value-list")
        if entry.list_type in ("ip", "ip_range"):
            ip_test = _ip_test(values, entry.list_type == "ip_range", where)

            def positive(ev: Event) -> bool:
                return any(ip_test(v) for v in get_values(ev, path))
        else:
            members = frozenset(values)

            def positive(ev: Event) -> bool:
                return any(_text(v) in members for v in get_values(ev, path))
    if entry.operator == "excluded":
        return lambda ev: not positive(ev)
    return positive


@dataclass(frozen=True, slots=True)
class _CompiledItem:
    item: ExceptionItem
    tests: tuple[Predicate, ...]

    def matches(self, event: Event) -> bool:
        if self.item.os_types:
            os_vals = {_text(v) for f in ("host.os.type", "host.os.name.caseless")
                       for v in get_values(event, f)}
            if not os_vals.intersection(self.item.os_types):
                return False
        return all(t(event) for t in self.tests)


class ExceptionFilter:
    """The compiled exceptions of one rule: :meth:`excluded_by` finds the matching item."""

    def __init__(self, items: Iterable[ExceptionItem], value_lists: ValueLists | None = None) -> None:
        vl = value_lists or ValueLists()
        compiled: list[_CompiledItem] = []
        self.expired = 0
        for item in items:
            where = f"{item.source or '<exceptions>'}, list {item.list_id!r}, item {item.item_id!r}"
            compiled.append(_CompiledItem(item, tuple(
                _compile_entry(e, "", vl, where) for e in item.entries)))
        self._items = compiled

    def __len__(self) -> int:
        return len(self._items)

    def active(self, now: datetime) -> ExceptionFilter:
        """This filter without the items that expired before ``now`` (Kibana drops them)."""
        clone = ExceptionFilter.__new__(ExceptionFilter)
        clone._items = [c for c in self._items
                        if c.item.expire_time is None or c.item.expire_time >= now]
        clone.expired = len(self._items) - len(clone._items)
        return clone

    def excluded_by(self, event: Event) -> ExceptionItem | None:
        """The first item that excludes ``event``, or None when the event stays."""
        for c in self._items:
            if c.matches(event):
                return c.item
        return None


@dataclass
class ExceptionSet:
    """Exception lists known to a run, and which rules they attach to."""

    lists: dict[tuple[str, str], ExceptionList] = field(default_factory=dict)
    #: Lists attached to every rule (``--exceptions FILE`` on the command line).
    global_keys: list[tuple[str, str]] = field(default_factory=list)
    value_lists: ValueLists = field(default_factory=ValueLists)

    def add(self, lists: Iterable[ExceptionList], *, attach_to_all: bool = False) -> None:
        """Register lists (later ones with the same key replace earlier ones)."""
        for lst in lists:
            self.lists[lst.key] = lst
            if attach_to_all and lst.key not in self.global_keys:
                self.global_keys.append(lst.key)

    def for_rule(self, refs: Iterable[tuple[str, str]]) -> tuple[ExceptionFilter, list[str]]:
        """The filter for a rule referencing ``refs`` plus the global lists, and warnings."""
        keys: list[tuple[str, str]] = []
        warnings: list[str] = []
        for key in [*refs, *self.global_keys]:
            if key in keys:
                continue
            if key not in self.lists:
                warnings.append(f"exception list {key[0]!r} ({key[1]}) referenced by the rule "
                                "was not found; import it or pass it with --exceptions")
                continue
            keys.append(key)
        items = [item for k in keys for item in self.lists[k].items]
        return ExceptionFilter(items, self.value_lists), warnings


# --- lists imported into the alert store ---------------------------------------------------

_STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS credwatch_schema (
    component TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS exception_lists (
    list_id        TEXT NOT NULL,
    namespace_type TEXT NOT NULL,
    doc            TEXT NOT NULL,
    PRIMARY KEY (list_id, namespace_type)
);
CREATE TABLE IF NOT EXISTS exception_items (
    item_id        TEXT NOT NULL,
    namespace_type TEXT NOT NULL,
    list_id        TEXT NOT NULL,
    doc            TEXT NOT NULL,
    PRIMARY KEY (item_id, namespace_type)
);
"""


class ExceptionStore:
    """Exception lists imported into the alert store's database (``credwatch exceptions import``)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        conn.executescript(_STORE_SCHEMA)
        conn.execute("INSERT OR IGNORE INTO credwatch_schema VALUES ('exceptions', 1)")

    def import_lists(self, lists: Iterable[ExceptionList]) -> tuple[int, int]:
        """Store lists and their items (same ids are overwritten); returns (lists, items)."""
        n_lists = n_items = 0
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for lst in lists:
                raw = dict(lst.raw) or list_container(lst.list_id, lst.name)
                self.conn.execute("INSERT OR REPLACE INTO exception_lists VALUES (?, ?, ?)",
                                  (lst.list_id, lst.namespace_type, json.dumps(raw)))
                n_lists += 1
                for item in lst.items:
                    self.conn.execute("INSERT OR REPLACE INTO exception_items VALUES (?, ?, ?, ?)",
                                      (item.item_id, item.namespace_type, item.list_id,
                                       json.dumps(dict(item.raw))))
                    n_items += 1
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return n_lists, n_items

    def lists(self) -> list[ExceptionList]:
        """Every stored list with its items (parsed and validated again)."""
        lines = [row[0] for row in self.conn.execute(
            "SELECT doc FROM exception_lists ORDER BY list_id, namespace_type")]
        lines += [row[0] for row in self.conn.execute(
            "SELECT doc FROM exception_items ORDER BY list_id, item_id")]
        return parse_export("\n".join(lines), "<alert store>")
