"""Alert suppression for query rules, as Kibana's ``group_and_bulk_create.ts`` does it.

For each search window of an execution:

* matching events (after exceptions) are grouped by the rule's ``group_by``
  fields (1 to 3), like Elasticsearch's ``composite`` aggregation: a
  multi-valued field puts the event in one group per value, groups come in
  ascending key order, and an event missing a field either joins a group whose
  key holds ``null`` there (``missing_fields_strategy: suppress``) or is not
  grouped at all and alerts on its own (``doNotSuppress``);
* each group yields one alert, built from its earliest event, carrying
  ``kibana.alert.suppression.terms`` (``[{field, value}]``), ``.start`` and
  ``.end`` (earliest and latest event time) and ``.docs_count`` (events beyond
  the first);
* at most ``max_signals`` groups become alerts; more groups add Kibana's
  max-signals warning;
* a *bucket history* (kept in the scheduler state) remembers, per group key,
  the latest event time already alerted on, so an overlapping later window
  never counts an event twice;
* with a ``duration``, a group whose key already has a non-closed alert created
  within the duration *updates* that alert (start/end widened, docs_count
  increased, ``kibana.alert.last_detected`` set) instead of creating a new one.
  Without one, suppression is per execution: each execution creates its own
  alert per group.

Alert ids: Kibana hashes ``[index, id, version, "space:rule", terms, start,
end]`` with the ``object-hash`` library; credwatch hashes the same components
with SHA-256 over canonical JSON. Ids are deterministic (restarts do not
duplicate) but differ from Kibana's for suppressed alerts.
``kibana.alert.instance.id`` likewise hashes ``[terms, rule, space]``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from credwatch.alerts.build import iso_ms
from credwatch.alerts.ids import EventIdentity
from credwatch.normalize.flatten import get_values
from credwatch.rules.model import AlertSuppression

__all__ = [
    "MAX_COMBINATIONS",
    "Bucket",
    "ExistingAlert",
    "HistoryEntry",
    "SuppressionOutcome",
    "Suppressor",
    "duration_of",
    "instance_id",
    "suppressed_alert_id",
]

#: Cap on the groups one multi-valued event can fall into (composite buckets).
MAX_COMBINATIONS = 1000

Key = tuple[Any, ...]

_UNITS = {"s": timedelta(seconds=1), "m": timedelta(minutes=1), "h": timedelta(hours=1)}


def duration_of(cfg: AlertSuppression) -> timedelta | None:
    """The suppression duration as a timedelta, or None for per-execution suppression."""
    if cfg.duration is None:
        return None
    return cfg.duration.value * _UNITS.get(cfg.duration.unit, timedelta(minutes=1))


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A group key already alerted on, up to (and including) event time ``end_ms``."""

    key: Key
    end_ms: int

    def to_json(self) -> dict[str, Any]:
        """JSON form for the scheduler state."""
        return {"key": list(self.key), "end": self.end_ms}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> HistoryEntry:
        """Inverse of :meth:`to_json`."""
        return cls(tuple(obj["key"]), int(obj["end"]))


@dataclass
class Bucket:
    """One group of events sharing a key."""

    key: Key
    events: list[Any] = field(default_factory=list)

    @property
    def top(self) -> Any:
        """The earliest event (Kibana's ``top_hits`` sorted by time ascending)."""
        return min(self.events, key=lambda e: (e.time_ms, e.seq))

    @property
    def start_ms(self) -> int:
        """Earliest event time."""
        return int(min(e.time_ms for e in self.events))

    @property
    def end_ms(self) -> int:
        """Latest event time."""
        return int(max(e.time_ms for e in self.events))


@dataclass
class ExistingAlert:
    """A stored (or earlier in this execution) suppressed alert that may absorb a group."""

    doc: dict[str, Any]
    execution_uuid: str | None
    created_now: bool = False  #: created by this execution and not yet committed


@dataclass
class SuppressionOutcome:
    """What one window's suppression produced."""

    created: list[dict[str, Any]] = field(default_factory=list)
    unsuppressed: list[Any] = field(default_factory=list)
    unsuppressed_limit: int = 0
    warnings: list[str] = field(default_factory=list)


def _sort_token(v: Any) -> tuple[int, str, Any]:
    # composite buckets: ascending, missing ("null") last; mixed types never compare
    if v is None:
        return (1, "", "")
    if isinstance(v, bool):
        return (0, "bool", int(v))
    if isinstance(v, (int, float)):
        return (0, "num", v)
    return (0, "str", str(v))


def _scalars(event: Mapping[str, Any], fld: str) -> list[Any]:
    out: list[Any] = []
    for v in get_values(event, fld):
        if v not in out:
            out.append(v)
    return out


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def terms_of(fields: Sequence[str], key: Key) -> list[dict[str, Any]]:
    """``kibana.alert.suppression.terms`` for a group key."""
    return [{"field": f, "value": v} for f, v in zip(fields, key, strict=True)]


def instance_id(terms: list[dict[str, Any]], rule_uuid: str, space: str) -> str:
    """``kibana.alert.instance.id``: one per (group terms, rule, space)."""
    return hashlib.sha256(_canonical([terms, rule_uuid, space])).hexdigest()


def suppressed_alert_id(ident: EventIdentity, rule_uuid: str, space: str,
                        terms: list[dict[str, Any]], start: str, end: str) -> str:
    """The id of a suppressed alert (same components as Kibana's, see the module doc)."""
    version = "undefined" if ident.version is None else str(ident.version)
    return hashlib.sha256(_canonical([ident.index, ident.id, version, f"{space}:{rule_uuid}",
                                      terms, start, end])).hexdigest()


def _ms_iso(ms: int) -> str:
    return iso_ms(datetime.fromtimestamp(ms / 1000, tz=UTC))


class Suppressor:
    """Per-execution suppression state for one rule.

    ``build(event)`` builds the plain alert document of an event and returns
    it with the event's identity; ``lookup(instance_id)`` returns the newest
    stored, non-closed alert of that instance created at or after ``now -
    duration`` (only called with a duration).
    """

    def __init__(self, cfg: AlertSuppression, *, rule_uuid: str, space: str, now: datetime,
                 execution_uuid: str, history: Sequence[HistoryEntry],
                 build: Callable[[Any], tuple[dict[str, Any], EventIdentity]],
                 exists: Callable[[str], bool],
                 lookup: Callable[[str], ExistingAlert | None]) -> None:
        self.cfg = cfg
        self.fields = tuple(cfg.group_by)
        self.duration = duration_of(cfg)
        self.rule_uuid = rule_uuid
        self.space = space
        self.now = now
        self.execution_uuid = execution_uuid
        self.history: list[HistoryEntry] = list(history)
        self._build = build
        self._exists = exists
        self._lookup = lookup
        #: Alerts of this execution by instance id (created, or stored ones it updated).
        self.current: dict[str, ExistingAlert] = {}
        #: Stored alerts updated by this execution, by uuid.
        self.updated: dict[str, dict[str, Any]] = {}
        #: Rows for the instance index: (instance id, alert uuid, alert time).
        self.instances: list[tuple[str, str, str]] = []
        self.suppressed_events = 0

    # -- grouping ---------------------------------------------------------------------------
    def _keys(self, event: Mapping[str, Any]) -> list[Key] | None:
        per_field: list[list[Any]] = []
        for fld in self.fields:
            vals = _scalars(event, fld)
            if not vals:
                if self.cfg.missing_fields_strategy == "doNotSuppress":
                    return None
                vals = [None]
            per_field.append(vals)
        return list(itertools.islice(itertools.product(*per_field), MAX_COMBINATIONS))

    def _in_history(self, ev: Any, window_from_ms: int) -> bool:
        for h in self.history:
            if not window_from_ms <= ev.time_ms <= h.end_ms:
                continue
            ok = True
            for fld, want in zip(self.fields, h.key, strict=True):
                vals = _scalars(ev.event, fld)
                if (want is None and vals) or (want is not None and want not in vals):
                    ok = False
                    break
            if ok:
                return True
        return False

    def process_window(self, events: Sequence[Any], window_from_ms: int, window_to_ms: int,
                       max_signals: int, max_signals_warning: str) -> SuppressionOutcome:
        """Group one window's kept events (sorted) into alerts and updates."""
        out = SuppressionOutcome()
        # Kibana keeps only history that can still overlap this window.
        self.history = [h for h in self.history if h.end_ms > window_from_ms]
        groups: dict[Key, Bucket] = {}
        missing: list[Any] = []
        for ev in events:
            if self._in_history(ev, window_from_ms):
                continue
            keys = self._keys(ev.event)
            if keys is None:
                missing.append(ev)
                continue
            for key in keys:
                groups.setdefault(key, Bucket(key)).events.append(ev)
        ordered = sorted(groups.values(), key=lambda b: tuple(_sort_token(v) for v in b.key))
        # composite size is max_signals + 1: one extra bucket tells that more exist
        page = ordered[:max_signals + 1]
        if missing:
            out.unsuppressed = missing
            out.unsuppressed_limit = max(max_signals - len(page), 0)
        if len(page) > max_signals:
            out.warnings.append(max_signals_warning)
        for bucket in page[:max_signals]:
            self._alert_for(bucket, out)
        for bucket in page:
            self.history.append(HistoryEntry(bucket.key, bucket.end_ms))
        return out

    # -- alerts -----------------------------------------------------------------------------
    def _alert_for(self, bucket: Bucket, out: SuppressionOutcome) -> None:
        terms = terms_of(self.fields, bucket.key)
        start, end = _ms_iso(bucket.start_ms), _ms_iso(bucket.end_ms)
        iid = instance_id(terms, self.rule_uuid, self.space)
        doc, ident = self._build(bucket.top)
        uuid = suppressed_alert_id(ident, self.rule_uuid, self.space, terms, start, end)
        doc["kibana.alert.uuid"] = uuid
        doc["kibana.alert.instance.id"] = iid
        doc["kibana.alert.suppression.terms"] = terms
        doc["kibana.alert.suppression.start"] = start
        doc["kibana.alert.suppression.end"] = end
        doc["kibana.alert.suppression.docs_count"] = len(bucket.events) - 1
        if self.duration is not None:
            existing = self.current.get(iid) or self._lookup(iid)
            if existing is not None:
                self._absorb(existing, doc, iid)
                return
        if self._exists(uuid) or any(a.doc.get("kibana.alert.uuid") == uuid
                                     for a in self.current.values() if a.created_now):
            return
        self.suppressed_events += len(bucket.events) - 1
        out.created.append(doc)
        self.current[iid] = ExistingAlert(doc, self.execution_uuid, created_now=True)
        self.instances.append((iid, uuid, str(doc.get("@timestamp"))))

    def _absorb(self, existing: ExistingAlert, new: dict[str, Any], iid: str) -> None:
        old = existing.doc
        old_end = str(old.get("kibana.alert.suppression.end") or "")
        new_end = str(new["kibana.alert.suppression.end"])
        if existing.execution_uuid != self.execution_uuid and old_end >= new_end:
            return  # these events were already counted by the existing alert
        doc = old if existing.created_now else copy.deepcopy(old)
        old_start = str(doc.get("kibana.alert.suppression.start") or new_end)
        doc["kibana.alert.suppression.start"] = min(old_start, str(new["kibana.alert.suppression.start"]))
        doc["kibana.alert.suppression.end"] = max(old_end, new_end)
        doc["kibana.alert.last_detected"] = iso_ms(self.now)
        added = int(new["kibana.alert.suppression.docs_count"]) + 1
        doc["kibana.alert.suppression.docs_count"] = int(
            doc.get("kibana.alert.suppression.docs_count") or 0) + added
        self.suppressed_events += added
        if not existing.created_now:
            self.updated[str(doc["kibana.alert.uuid"])] = doc
        self.current[iid] = ExistingAlert(doc, self.execution_uuid, existing.created_now)
