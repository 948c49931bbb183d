"""Parsed JSON → records: events, Elasticsearch hits and ``_search`` responses, with ECS type checks.

Shared by the line reader (:mod:`credwatch.sources.ndjson`) and the document reader
(:mod:`credwatch.sources.jsondoc`), so both turn the same JSON into the same records and
the same diagnostics.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from credwatch.kql.fields import ECS_FIELD_TYPES, NUMERIC_TYPES, field_type
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.record import Record

_BOM = b"\xef\xbb\xbf"


def hit_to_record(hit: Mapping[str, Any], source: str, line: int) -> Record | None:
    src = hit.get("_source")
    if isinstance(src, dict):
        event: dict[str, Any] = src
    elif isinstance(hit.get("fields"), dict):
        # `fields` is flat-dotted with array values, which the evaluator reads as is.
        event = dict(hit["fields"])
    else:
        return None
    index = hit.get("_index")
    doc_id = hit.get("_id")
    return Record(event, source, line, index if isinstance(index, str) else None,
                  str(doc_id) if doc_id is not None else None, hit.get("_version"))


def _is_hit(doc: Mapping[str, Any]) -> bool:
    return ("_source" in doc or "fields" in doc) and ("_id" in doc or "_index" in doc)


def documents_to_records(doc: Any, source: str, line: int, diag: Diagnostics) -> Iterator[Record]:
    """Turn one parsed JSON document (event, hit, ``_search`` response, array) into records."""
    if isinstance(doc, list):
        for item in doc:
            yield from documents_to_records(item, source, line, diag)
        return
    if not isinstance(doc, dict):
        diag.skip("not-an-object", source, line, f"JSON {type(doc).__name__}, expected an event object")
        return
    hits = doc.get("hits")
    if isinstance(hits, dict) and isinstance(hits.get("hits"), list):
        for hit in hits["hits"]:
            if isinstance(hit, dict) and (rec := hit_to_record(hit, source, line)) is not None:
                yield rec
            else:
                diag.skip("bad-hit", source, line, "hit without _source or fields")
        return
    if _is_hit(doc):
        rec = hit_to_record(doc, source, line)
        if rec is None:
            diag.skip("bad-hit", source, line, "hit without _source or fields")
        else:
            yield rec
        return
    yield Record(doc, source, line)


def check_types(rec: Record, diag: Diagnostics) -> bool:
    """Reject what Elasticsearch's ECS mapping would reject; note what it would coerce.

    An object where a keyword/number is mapped, or a non-numeric string in a
    numeric field, makes Elasticsearch refuse the whole document, so it is
    skipped. A single string where ECS usually has an array (``process.args``,
    ``event.category``) is indexed fine by Elasticsearch; it is counted as a
    warning and evaluated.
    """
    event = rec.event
    proc = event.get("process")
    args: Any = proc.get("args") if isinstance(proc, dict) else event.get("process.args")
    if isinstance(args, str):
        diag.warn("string-for-array", rec.source, rec.line, "process.args is a string, read as one value")
    elif isinstance(args, dict):
        diag.skip("wrong-type", rec.source, rec.line, "process.args is an object")
        return False
    bad = _non_numeric_string(event, _NUMERIC_TRIE, "")
    if bad is not None:
        name, value = bad
        diag.skip("wrong-type", rec.source, rec.line,
                  f"{name} is {field_type(name)}, got {value[:40]!r}")
        return False
    return True


#: ECS fields mapped to a numeric type (a string there must parse as a number), as a
#: trie of their dotted parts; the key ``None`` marks a field's end (no key of an
#: event can collide with it, not even an empty one). Walking an event along the trie
#: skips every subtree that holds no numeric field (``process.args``, ``user.*``).
_NUMERIC_TRIE: dict[str | None, Any] = {}
for _name, _ftype in ECS_FIELD_TYPES.items():
    if _ftype in NUMERIC_TYPES:
        _node = _NUMERIC_TRIE
        for _part in _name.split("."):
            _node = _node.setdefault(_part, {})
        _node[None] = True


def _non_numeric_string(obj: Mapping[str, Any], trie: dict[str | None, Any], path: str
                        ) -> tuple[str, str] | None:
    """The first ``(field, value)``, in document order, of a non-numeric string in a numeric field.

    Keys may be dotted (``{"process.pid": "x"}``) or nested, or both.
    """
    for key, value in obj.items():
        node = trie.get(key)
        if node is None:
            if "." not in key:
                continue
            node = trie
            for part in key.split("."):
                node = node.get(part)
                if node is None:
                    break
            if node is None:
                continue
        found = _check_value(value, node, f"{path}{key}")
        if found is not None:
            return found
    return None


def _check_value(value: Any, node: dict[str | None, Any], name: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        if None in node:
            try:
                float(value)
            except ValueError:
                return name, value
        return None
    if isinstance(value, dict):
        return _non_numeric_string(value, node, name + ".")
    if isinstance(value, list):
        for item in value:
            found = _check_value(item, node, name)
            if found is not None:
                return found
    return None


def line_records(raw: bytes, source: str, lineno: int, diag: Diagnostics) -> Iterator[Record]:
    """Records of one NDJSON line (none for a blank line; a bad line is counted in ``diag``)."""
    if not raw.strip():
        return
    try:
        doc = orjson.loads(raw.removeprefix(_BOM))
    except orjson.JSONDecodeError as exc:
        skip_undecodable(raw, exc, source, lineno, diag)
        return
    yield from documents_to_records(doc, source, lineno, diag)


def skip_undecodable(raw: bytes, exc: orjson.JSONDecodeError, source: str, lineno: int,
                     diag: Diagnostics) -> None:
    """Count ``raw`` (which orjson rejected) under the most telling reason."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        diag.skip("invalid-utf8", source, lineno)
        return
    reason = "binary" if b"\x00" in raw else "malformed-json"
    diag.skip(reason, source, lineno, str(exc).split(":")[0])


def line_records_checked(raw: bytes, source: str, lineno: int, diag: Diagnostics) -> Iterator[Record]:
    """:func:`line_records` without the events Elasticsearch's mapping would reject."""
    for rec in line_records(raw, source, lineno, diag):
        if check_types(rec, diag):
            yield rec
