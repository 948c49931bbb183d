"""Deterministic alert ids (``kibana.alert.uuid``), computed as Kibana computes them.

Kibana's query rules call ``generateId(_index, _id, String(_version),
"<space>:<rule saved-object id>")``, which is the hex SHA-256 of the four
strings concatenated with nothing between them (``wrap_hits_factory.ts`` and
``utils.ts`` in the security_solution plugin). Its rule searches do not ask for
versions, so ``_version`` is normally absent and contributes the text
``undefined``; credwatch does the same, so for a real Elasticsearch hit (same
index, id, space and rule saved-object id) the id equals Kibana's.

Events read from files rarely have ``_index`` and ``_id``. For those,
:func:`event_identity` derives the id from the event's *content*: a SHA-256 of
the event flattened ES-style (nested and flat-dotted keys give the same
fields) and serialised canonically. Re-scanning the same data, in any order,
from renamed or rotated files, gives the same ids, so alerts are not
duplicated. Two byte-for-byte identical events collapse into one alert, which
is what a duplicated log line deserves. The index of such an event is taken
from its ``data_stream.*`` fields when present, else left empty.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from credwatch.normalize.flatten import get_values
from credwatch.rules.defaults import DEFAULT_SPACE


def _js_string(value: object) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def kibana_alert_id(index: str, doc_id: str, version: object, rule_uuid: str,
                    space: str = DEFAULT_SPACE) -> str:
    """Kibana's ``generateId``: sha256(index + _id + String(_version) + "space:rule")."""
    data = f"{index}{doc_id}{_js_string(version)}{space}:{rule_uuid}"
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class FieldIndex:
    """An event flattened once: ``{dotted field: [values]}``, shared by the id and the triage.

    ``unique`` is True when every field has one spelling in the event (no dotted
    key, or only top-level dotted keys and no nested object): then
    ``flat[field]`` is exactly ``get_values(event, field)``, in the same order,
    because both walk the document depth-first. Mixed events (dotted keys and
    nested objects) must use ``get_values``, which orders spellings its own way.
    """

    event: Mapping[str, Any]
    flat: dict[str, list[Any]]
    unique: bool
    #: A value other than text, a whole number or a boolean: a float (orjson and ``json``
    #: spell some floats differently; NaN and infinity encode as null) or a non-JSON type
    #: (a datetime from a Parquet column, for instance). Such events take the slow paths.
    floats: bool = False


#: The last event indexed: alert building and triage read the same event in a row.
#: The event itself is kept, so its id cannot be reused by another object meanwhile.
_LAST: FieldIndex | None = None


def field_index(event: Mapping[str, Any]) -> FieldIndex:
    """The :class:`FieldIndex` of ``event`` (reused while the same event is asked for).

    Events are never modified after they are read, so the index stays valid.
    """
    global _LAST
    last = _LAST
    if last is not None and last.event is event:
        return last
    flat: dict[str, list[Any]] = {}
    # flags[0]: a dotted key below the top level; flags[1]: an object below the top level;
    # flags[2]: a value that is not exactly str, int or bool.
    flags = [False, False, False]
    dotted_top = False
    for key, value in event.items():
        if not isinstance(key, str) or not key:
            # get_values never finds a non-text key, and flatten drops an empty one
            # from the name ({"": {"a": 1}} flattens to "a"): no index for these.
            flags[0] = True
        elif "." in key:
            dotted_top = True
        _leaves(key, value, flat, flags)
    unique = not flags[0] and not (dotted_top and flags[1])
    _LAST = FieldIndex(event, flat, unique, flags[2])
    return _LAST


def _leaves(name: str, value: Any, out: dict[str, list[Any]], flags: list[bool]) -> None:
    """:func:`credwatch.normalize.flatten.flatten`'s walk, without generators (same result).

    Scalars inside an object or array are stored inline rather than through
    another call: most leaves are, and this walk runs once per alert.
    """
    if isinstance(value, dict):
        flags[1] = True
        for key, sub in value.items():
            if type(key) is not str or not key or "." in key:
                flags[0] = True
            full = f"{name}.{key}" if name else key
            kind = type(sub)
            if kind is str or kind is int or kind is bool:
                # _store, inlined for the common leaf
                found = out.get(full)
                if found is None:
                    out[full] = [sub]
                else:
                    found.append(sub)
            elif isinstance(sub, (dict, list)):
                _leaves(full, sub, out, flags)
            elif sub is not None:
                _store(full, sub, out, flags)
    elif isinstance(value, list):
        for item in value:
            kind = type(item)
            if kind is str or kind is int or kind is bool:
                found = out.get(name)
                if found is None:
                    out[name] = [item]
                else:
                    found.append(item)
            elif isinstance(item, (dict, list)):
                _leaves(name, item, out, flags)
            elif item is not None:
                _store(name, item, out, flags)
    elif value is not None:
        _store(name, value, out, flags)


def _store(name: str, value: Any, out: dict[str, list[Any]], flags: list[bool]) -> None:
    kind = type(value)
    if kind is not str and kind is not int and kind is not bool:
        flags[2] = True
    found = out.get(name)
    if found is None:
        out[name] = [value]
    else:
        found.append(value)


def content_id(event: Mapping[str, Any]) -> str:
    """A stable id for an event without ``_id``: SHA-256 of its canonical flattened form.

    The canonical form is ``json.dumps(sorted(flat.items()), ensure_ascii=False,
    separators=(",", ":"), default=str)``. orjson writes the same bytes for
    strings, integers, booleans and null, so it is used unless a float (``1e+16``
    vs ``1e16``), a value orjson refuses (huge integers) or one it spells its own
    way (datetimes, UUIDs, enums) is present.
    """
    index = field_index(event)
    items = sorted(index.flat.items())
    data: bytes | None = None
    if not index.floats:
        try:
            data = orjson.dumps(items)
        except (TypeError, orjson.JSONEncodeError):
            data = None
    if data is None:
        data = json.dumps(items, ensure_ascii=False, separators=(",", ":"),
                          default=str).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


_DS_PARTS = ("type", "dataset", "namespace")
_DS_FLAT = tuple(f"data_stream.{k}" for k in _DS_PARTS)


def data_stream_index(event: Mapping[str, Any]) -> str | None:
    """``<type>-<dataset>-<namespace>`` from the event's ``data_stream.*`` fields, if complete."""
    # Every event's index is asked for (index selection), so the two usual shapes are
    # read directly: a two-part field has only these spellings, one object or flat keys.
    nested = event.get("data_stream")
    flat = [event.get(k) for k in _DS_FLAT]
    if nested is None and flat == [None, None, None]:
        return None
    if type(nested) is dict and flat == [None, None, None]:
        found = [nested.get(k) for k in _DS_PARTS]
    elif nested is None:
        found = flat
    else:
        found = []
    if found and all(type(v) is str for v in found):
        return "-".join(str(v) for v in found) if all(found) else None
    if found and all(v is None or type(v) is str for v in found):
        return None
    return _data_stream_index(event)


def _data_stream_index(event: Mapping[str, Any]) -> str | None:
    parts = [get_values(event, f"data_stream.{k}") for k in ("type", "dataset", "namespace")]
    if all(len(p) == 1 and isinstance(p[0], str) and p[0] for p in parts):
        return "-".join(str(p[0]) for p in parts)
    return None


@dataclass(frozen=True, slots=True)
class EventIdentity:
    """Where an event lives, as Kibana would name it: ``_index``, ``_id``, ``_version``."""

    index: str
    id: str
    version: int | str | None = None
    derived: bool = False  #: True when ``id`` is a content hash, not a real ``_id``

    def alert_id(self, rule_uuid: str, space: str = DEFAULT_SPACE) -> str:
        """The alert id for this event under rule ``rule_uuid``."""
        return kibana_alert_id(self.index, self.id, self.version, rule_uuid, space)


def event_identity(event: Mapping[str, Any], index: str | None = None,
                   doc_id: str | None = None, version: int | str | None = None) -> EventIdentity:
    """The identity of ``event``: real ``_index``/``_id`` when known, else derived (see module)."""
    idx = index if index is not None else (data_stream_index(event) or "")
    if doc_id is not None:
        return EventIdentity(idx, doc_id, version)
    return EventIdentity(idx, content_id(event), version, derived=True)
