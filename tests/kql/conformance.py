"""Loader for the KQL conformance tables in ``tests/fixtures/kql/*.toml``.

The tables are backend-neutral: every backend that evaluates KQL (the Python
evaluator, the literal prefilter, DuckDB SQL, Spark) runs the same cases with
the same expected answers. Import :func:`load_cases` / :func:`load_syntax_cases`
and parametrise over them; use :func:`event_forms` to get the three document
shapes (as written, fully flat-dotted, fully nested) that must all agree.

File format (TOML):

* ``[queries]`` maps a name to a query text; a case may use ``query_ref``
  instead of ``query`` (the seed rule is written once this way).
* ``[[case]]``: ``id`` (unique slug), ``query`` or ``query_ref``, ``event``
  (a JSON string, so nulls and empty arrays survive), ``expected`` (bool),
  optional ``field_types`` (field -> Elasticsearch type), ``why``.
* ``[[syntax]]``: ``id``, ``query`` or ``query_ref``, ``ok`` (bool), optional
  ``line`` / ``column`` of the error, optional ``same_as`` (a query that must
  parse to an equal AST), ``why``.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "kql"

_CASE_KEYS = frozenset({"id", "query", "query_ref", "event", "expected", "field_types", "why"})
_SYNTAX_KEYS = frozenset({"id", "query", "query_ref", "ok", "line", "column", "same_as", "why"})


@dataclass(frozen=True)
class Case:
    """One evaluation case: ``query`` over ``event`` must give ``expected``."""

    id: str
    query: str
    event: Any
    expected: bool
    why: str
    field_types: Mapping[str, str] | None = None
    query_ref: str | None = None
    source: str = ""


@dataclass(frozen=True)
class SyntaxCase:
    """One parser case: ``query`` parses (``ok``) or raises KqlSyntaxError."""

    id: str
    query: str
    ok: bool
    why: str
    line: int | None = None
    column: int | None = None
    same_as: str | None = None
    source: str = ""


@dataclass
class _Tables:
    queries: dict[str, str] = field(default_factory=dict)
    cases: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    syntax: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class TableError(ValueError):
    """A malformed conformance table (reported with file and case id)."""


def _read(paths: Iterable[Path]) -> _Tables:
    tables = _Tables()
    for path in sorted(paths):
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        unknown = set(data) - {"queries", "case", "syntax"}
        if unknown:
            raise TableError(f"{path.name}: unknown top-level keys {sorted(unknown)}")
        for name, text in data.get("queries", {}).items():
            if name in tables.queries:
                raise TableError(f"{path.name}: query {name!r} defined twice")
            if not isinstance(text, str):
                raise TableError(f"{path.name}: query {name!r} is not a string")
            tables.queries[name] = text
        tables.cases.extend((path.name, raw) for raw in data.get("case", []))
        tables.syntax.extend((path.name, raw) for raw in data.get("syntax", []))
    return tables


def _query_of(raw: Mapping[str, Any], queries: Mapping[str, str], where: str) -> str:
    has_query = "query" in raw
    has_ref = "query_ref" in raw
    if has_query == has_ref:
        raise TableError(f"{where}: give exactly one of query / query_ref")
    if has_ref:
        ref = raw["query_ref"]
        if ref not in queries:
            raise TableError(f"{where}: unknown query_ref {ref!r}")
        return queries[ref]
    query = raw["query"]
    if not isinstance(query, str):
        raise TableError(f"{where}: query must be a string")
    return query


def _paths(directory: Path | None) -> list[Path]:
    base = directory or FIXTURE_DIR
    found = sorted(base.glob("*.toml"))
    if not found:
        raise TableError(f"no conformance tables in {base}")
    return found


def load_cases(directory: Path | None = None) -> list[Case]:
    """Return every ``[[case]]`` of every table, in file then table order.

    Raises :class:`TableError` on duplicate ids, unknown keys, bad JSON or a
    missing ``query_ref``.
    """
    tables = _read(_paths(directory))
    out: list[Case] = []
    seen: set[str] = set()
    for source, raw in tables.cases:
        cid = raw.get("id")
        where = f"{source}: case {cid!r}"
        if not isinstance(cid, str) or not cid:
            raise TableError(f"{source}: case without id: {raw!r}")
        if cid in seen:
            raise TableError(f"{where}: duplicate id")
        seen.add(cid)
        extra = set(raw) - _CASE_KEYS
        if extra:
            raise TableError(f"{where}: unknown keys {sorted(extra)}")
        if not isinstance(raw.get("expected"), bool):
            raise TableError(f"{where}: expected must be true or false")
        if not isinstance(raw.get("why"), str) or not raw["why"]:
            raise TableError(f"{where}: every case says why")
        try:
            event = json.loads(raw["event"])
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise TableError(f"{where}: event must be a JSON string ({exc})") from exc
        if not isinstance(event, dict):
            raise TableError(f"{where}: event must be a JSON object")
        types = raw.get("field_types")
        if types is not None and not (
            isinstance(types, dict) and all(isinstance(v, str) for v in types.values())
        ):
            raise TableError(f"{where}: field_types must map field names to type names")
        out.append(Case(
            id=cid,
            query=_query_of(raw, tables.queries, where),
            event=event,
            expected=raw["expected"],
            why=raw["why"],
            field_types=dict(types) if types is not None else None,
            query_ref=raw.get("query_ref"),
            source=source,
        ))
    return out


def load_syntax_cases(directory: Path | None = None) -> list[SyntaxCase]:
    """Return every ``[[syntax]]`` case of every table."""
    tables = _read(_paths(directory))
    out: list[SyntaxCase] = []
    seen: set[str] = set()
    for source, raw in tables.syntax:
        sid = raw.get("id")
        where = f"{source}: syntax {sid!r}"
        if not isinstance(sid, str) or not sid:
            raise TableError(f"{source}: syntax case without id: {raw!r}")
        if sid in seen:
            raise TableError(f"{where}: duplicate id")
        seen.add(sid)
        extra = set(raw) - _SYNTAX_KEYS
        if extra:
            raise TableError(f"{where}: unknown keys {sorted(extra)}")
        if not isinstance(raw.get("ok"), bool):
            raise TableError(f"{where}: ok must be true or false")
        if raw["ok"] and ("line" in raw or "column" in raw):
            raise TableError(f"{where}: line/column only make sense for errors")
        if not raw["ok"] and "same_as" in raw:
            raise TableError(f"{where}: same_as only makes sense for accepted queries")
        out.append(SyntaxCase(
            id=sid,
            query=_query_of(raw, tables.queries, where),
            ok=raw["ok"],
            why=str(raw.get("why", "")),
            line=raw.get("line"),
            column=raw.get("column"),
            same_as=raw.get("same_as"),
            source=source,
        ))
    return out


# ---------------------------------------------------------------- event shapes
#
# Elasticsearch indexes {"process": {"args": [..]}}, {"process.args": [..]} and
# mixtures identically, and two spellings of one field merge into one
# multi-valued field. These helpers are deliberately independent of
# credwatch.normalize so the table checks that code rather than trusting it.


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _merge(out: dict[str, Any], key: str, value: Any) -> None:
    if key not in out:
        out[key] = value
    elif isinstance(out[key], dict) and isinstance(value, dict):
        for k, v in value.items():
            _merge(out[key], k, v)
    else:
        out[key] = _as_list(out[key]) + _as_list(value)


def _flat_value(value: Any) -> Any:
    if isinstance(value, dict):
        return flat_form(value)
    if isinstance(value, list):
        return [_flat_value(v) for v in value]
    return value


def flat_form(event: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite ``event`` with dotted keys only (``{"process.args": [...]}``).

    Objects become dotted prefixes; arrays stay arrays, and objects inside
    arrays are flattened on their own (``{"a": [{"b.c": 1}]}``), because an
    array of objects cannot be expressed with dotted keys. Two spellings of the
    same field merge into one list.
    """
    out: dict[str, Any] = {}

    def walk(obj: Mapping[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{name}.")
            else:
                _merge(out, name, _flat_value(value))

    walk(event, "")
    return out


def _nested_value(value: Any) -> Any:
    if isinstance(value, dict):
        return nested_form(value)
    if isinstance(value, list):
        return [_nested_value(v) for v in value]
    return value


def nested_form(event: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrite ``event`` with every dotted key expanded into nested objects."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        parts = key.split(".")
        node: Any = {parts[-1]: _nested_value(value)}
        for part in reversed(parts[:-1]):
            node = {part: node}
        _merge(out, parts[0], node[parts[0]])
    return out


def event_forms(event: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The three shapes every case must agree on: as written, flat, nested."""
    return {"as-written": copy.deepcopy(dict(event)), "flat": flat_form(event),
            "nested": nested_form(event)}
