"""Reading exception lists: Kibana's NDJSON export and value-list files.

Every line of an export is checked for its nesting depth before it is
parsed, so a hostile file gets an error naming ``path:line``, never a
``RecursionError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from credwatch.alerts.build import parse_event_time
from credwatch.engine.exceptions.model import (
    ENTRY_TYPES,
    LIST_TYPES,
    NESTED_ENTRY_TYPES,
    OPERATORS,
    SUMMARY_KEYS,
    Entry,
    ExceptionItem,
    ExceptionList,
    ExceptionListError,
)
from credwatch.errors import ConfigError
from credwatch.rules.limits import DepthError, check_json_depth


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
    # split on "\n" only: splitlines() would also cut JSON strings holding a raw U+2028 or U+0085
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            check_json_depth(line)
            obj = json.loads(line)
        except DepthError as exc:
            raise ExceptionListError(f"{where}: {exc}") from None
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
