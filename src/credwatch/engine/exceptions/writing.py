"""Writing exception lists (Kibana's export shape) and keeping them in the alert store."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credwatch.alerts.build import iso_ms
from credwatch.engine.exceptions.loading import parse_export
from credwatch.engine.exceptions.model import Entry, Event, ExceptionList
from credwatch.engine.exceptions.model import value_text as _text
from credwatch.errors import ConfigError
from credwatch.normalize.flatten import get_values


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
