"""Scheduled detection with Kibana's semantics: windows, gaps, time order, caps, dedup.

Behaviour follows Kibana's security detection engine
(``security_solution/server/lib/detection_engine/rule_types/``):

* **Windows** (``getRuleRangeTuples``): an execution started at ``now``
  searches ``[now+from, now+to]`` (``now-9m``..``now`` for the seed rule), so
  consecutive executions overlap by the additional look-back.
* **Gaps**: ``gap = (start - previous start) - (to - from)``. When positive,
  ``min(ceil(gap / interval), 4)`` catch-up windows are added, each one the
  previous window shifted back one interval; windows run oldest first. What
  they still leave uncovered fails the execution with Kibana's message
  ``"<humanized> (<ms>ms) were not queried between this rule execution and the
  last execution, so signals may have been missed. Consider increasing your
  look behind time or adding more Kibana instances"``; the windows are still
  searched.
* **Time field** (``build_events_query.ts``): the rule's
  ``timestamp_override`` (else ``@timestamp``). With an override and the
  fallback enabled, an event is in a window if the override is in it, or the
  override is missing and ``@timestamp`` is in it. Bounds are inclusive, at
  millisecond precision. Events are taken in ascending order of the override,
  then ``@timestamp`` (events without the override sort last, as
  Elasticsearch sorts missing values).
* **max_signals** (per window): events already alerted on (same
  deterministic id, found in the store) are dropped first, as Kibana's
  persistence layer drops them before truncating; beyond the cap the rest are
  dropped and the execution records Kibana's warning.
* **Status**: ``failed`` when there is an error (the gap), else ``partial
  failure`` when there are warnings, else ``succeeded``.

The current time comes from a :class:`Clock`, so a recorded day can be
replayed in seconds (:class:`SimulatedClock`).
"""

from __future__ import annotations

import bisect
import math
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any, Protocol

from credwatch.alerts.build import EventOrigin, build_alert, iso_ms, parse_event_time
from credwatch.alerts.ids import EventIdentity
from credwatch.alerts.store import AlertStore
from credwatch.engine.exceptions import ExceptionFilter
from credwatch.engine.runs import RunRecord, RunStore
from credwatch.engine.scan import CompiledRule, record_identity, record_index
from credwatch.engine.suppression import ExistingAlert, HistoryEntry, Suppressor
from credwatch.normalize.flatten import get_values
from credwatch.rules.defaults import DEFAULT_SPACE
from credwatch.rules.model import Rule
from credwatch.rules.schedule_math import parse_date_math, parse_duration
from credwatch.sources.ecs import Diagnostics, Record, expand_paths, read_records

__all__ = [
    "MAX_RULE_GAP_RATIO",
    "MAX_SIGNALS_WARNING",
    "Clock",
    "EventIndex",
    "EventSource",
    "Execution",
    "RuleRunner",
    "Scheduler",
    "SimulatedClock",
    "SystemClock",
    "TimeFields",
    "TimedEvent",
    "Window",
    "WindowPlan",
    "execute",
    "gap_message",
    "humanize_ms",
    "plan_windows",
]

#: At most this many catch-up windows per execution (Kibana's ``MAX_RULE_GAP_RATIO``).
MAX_RULE_GAP_RATIO = 4
#: Kibana's default ``xpack.alerting.rules.run.alerts.max``.
ALERTING_MAX_ALERTS = 1000
MAX_SIGNALS_WARNING = ("This rule reached the maximum alert limit for the rule execution. "
                       "Some alerts were not created.")
GAP_MESSAGE_TAIL = ("were not queried between this rule execution and the last execution, so "
                    "signals may have been missed. Consider increasing your look behind time or "
                    "adding more Kibana instances")
SUCCESS_MESSAGE = "Rule execution completed successfully"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_EXEC_NS = uuid.UUID("6f1c0e52-5a35-4d4e-9a57-2f0b9c3c1d11")


def to_ms(t: datetime) -> int:
    """Epoch milliseconds (floor), the precision of Elasticsearch ``date`` fields."""
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return (t - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Inverse of :func:`to_ms`."""
    return _EPOCH + ms * _MS


def truncate_ms(t: datetime) -> datetime:
    """``t`` in UTC at millisecond precision (JavaScript ``Date``)."""
    return from_ms(to_ms(t))


# --- moment's humanize ---------------------------------------------------------------------

def _js_round(x: float) -> int:
    return math.floor(x + 0.5)


def humanize_ms(ms: int) -> str:
    """``moment.duration(ms).humanize()`` in English (thresholds s 45, m 45, h 22, d 26, M 11)."""
    ms = abs(ms)
    days_f = ms / 86_400_000
    seconds, minutes = _js_round(ms / 1000), _js_round(ms / 60_000)
    hours, days = _js_round(ms / 3_600_000), _js_round(days_f)
    months_f = days_f * 4800 / 146097
    months, years = _js_round(months_f), _js_round(months_f / 12)
    if seconds <= 44:
        return "a few seconds"
    if minutes <= 1:
        return "a minute"
    if minutes < 45:
        return f"{minutes} minutes"
    if hours <= 1:
        return "an hour"
    if hours < 22:
        return f"{hours} hours"
    if days <= 1:
        return "a day"
    if days < 26:
        return f"{days} days"
    if months <= 1:
        return "a month"
    if months < 11:
        return f"{months} months"
    if years <= 1:
        return "a year"
    return f"{years} years"


def gap_message(remaining: timedelta) -> str:
    """Kibana's failure message for a gap that catch-up windows could not cover."""
    ms = int(remaining / _MS)
    return f"{humanize_ms(ms)} ({ms}ms) {GAP_MESSAGE_TAIL}"


# --- windows -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Window:
    """One search range of an execution (Kibana's rule range tuple)."""

    start: datetime
    end: datetime
    max_signals: int

    def to_json(self) -> dict[str, Any]:
        """JSON form for the run history."""
        return {"from": iso_ms(self.start), "to": iso_ms(self.end), "max_signals": self.max_signals}


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """The windows of one execution and the gap that led to them."""

    windows: tuple[Window, ...]  #: oldest first, the order Kibana searches them
    gap: timedelta  #: (start - previous start) - (to - from); zero on the first execution
    catchup: int  #: number of catch-up windows added
    remaining_gap: timedelta  #: what the windows still leave uncovered
    gap_range: tuple[datetime, datetime] | None  #: where the uncovered time starts
    warning: str | None = None  #: max_signals above the alerting limit

    @property
    def error(self) -> str | None:
        """The gap failure message, if any time is left uncovered."""
        return gap_message(self.remaining_gap) if self.remaining_gap > timedelta(0) else None


def plan_windows(rule: Rule, started_at: datetime, previous_started_at: datetime | None, *,
                 max_alerts_allowed: int = ALERTING_MAX_ALERTS) -> WindowPlan:
    """Kibana's ``getRuleRangeTuples`` for an execution starting at ``started_at``."""
    now = truncate_ms(started_at)
    start = truncate_ms(parse_date_math(rule.from_).resolve(now))
    end = truncate_ms(parse_date_math(rule.to).resolve(now))
    max_signals = rule.max_signals
    warning = None
    if max_signals > max_alerts_allowed:
        warning = (f"The rule's max alerts per run setting ({max_signals}) is greater than the "
                   f"Kibana alerting limit ({max_alerts_allowed}). The rule will only write a "
                   f"maximum of {max_alerts_allowed} alerts per rule run.")
        max_signals = max_alerts_allowed
    windows = [Window(start, end, max_signals)]
    interval = parse_duration(rule.interval)
    if previous_started_at is None:
        gap = timedelta(0)
    else:
        gap = (now - truncate_ms(previous_started_at)) - (end - start)
    catchup = 0
    if gap > timedelta(0) and interval > timedelta(0):
        catchup = min(math.ceil(gap / interval), MAX_RULE_GAP_RATIO)
    cur_start, cur_end = start, end
    for _ in range(catchup):
        cur_start, cur_end = cur_start - interval, cur_end - interval
        windows.append(Window(cur_start, cur_end, max_signals))
    remaining = max(gap - catchup * interval, timedelta(0))
    gap_range = None
    if remaining > timedelta(0) and previous_started_at is not None:
        prev = truncate_ms(previous_started_at)
        gap_range = (prev, prev + remaining)
    return WindowPlan(tuple(reversed(windows)), gap, catchup, remaining, gap_range, warning)


# --- event time ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TimeFields:
    """Where an event's time comes from: primary field, and the fallback (or None)."""

    primary: str = "@timestamp"
    secondary: str | None = None

    @classmethod
    def of(cls, rule: Rule) -> TimeFields:
        """Kibana's primary/secondary timestamp for ``rule``."""
        override = rule.timestamp_override
        if not override:
            return cls()
        if override == "@timestamp" or rule.timestamp_override_fallback_disabled:
            return cls(override, None)
        return cls(override, "@timestamp")


def _times(event: Any, fld: str) -> tuple[int, ...]:
    out: list[int] = []
    for v in get_values(event, fld):
        t = parse_event_time(v)
        if t is not None:
            out.append(to_ms(t))
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """A record with its parsed time fields (epoch ms)."""

    record: Record
    primary: tuple[int, ...]
    secondary: tuple[int, ...]
    seq: int

    @property
    def event(self) -> dict[str, Any]:
        """The event document."""
        return self.record.event

    @property
    def time_ms(self) -> int:
        """The event time: the override when present, else the fallback (Kibana's combined time)."""
        return self.primary[0] if self.primary else self.secondary[0]

    def sort_key(self) -> tuple[int, int, int, int, int]:
        """Ascending by primary then secondary; missing values last (Elasticsearch's default)."""
        p, s = self.primary, self.secondary
        return (0 if p else 1, p[0] if p else 0, 0 if s else 1, s[0] if s else 0, self.seq)


class EventIndex:
    """Events ordered by time for window queries under one :class:`TimeFields`."""

    def __init__(self, records: Iterable[Record], fields: TimeFields) -> None:
        self.fields = fields
        self.events: list[TimedEvent] = []
        keys: list[tuple[int, int]] = []
        self.untimed = 0
        for seq, rec in enumerate(records):
            primary = _times(rec.event, fields.primary)
            secondary = _times(rec.event, fields.secondary) if fields.secondary else ()
            # Only the fallback of an event *without* the override counts for ranges.
            points = primary if primary else secondary
            if not points:
                self.untimed += 1
                continue
            idx = len(self.events)
            self.events.append(TimedEvent(rec, primary, secondary, seq))
            keys.extend((t, idx) for t in points)
        keys.sort()
        self._keys = keys

    def window(self, start: datetime, end: datetime) -> list[TimedEvent]:
        """Events whose time is in ``[start, end]`` (inclusive), in Kibana's sort order."""
        lo, hi = to_ms(start), to_ms(end)
        i = bisect.bisect_left(self._keys, (lo, -1))
        j = bisect.bisect_right(self._keys, (hi, len(self.events)))
        picked = {idx for _, idx in self._keys[i:j]}
        return sorted((self.events[k] for k in picked), key=TimedEvent.sort_key)


class EventSource:
    """Events from files and folders (any format ``scan`` reads), re-read when they change.

    Files are re-read only when their size, mtime or inode changed since the
    last :meth:`refresh`, so a long-running scheduler follows growing and
    rotating logs without re-parsing everything each execution.
    """

    def __init__(self, paths: Sequence[str], *, input_format: str = "auto",
                 glob: str | None = None, stdin: IO[bytes] | None = None) -> None:
        self.paths = list(paths)
        self.input_format = input_format
        self.glob = glob
        self.stdin = stdin
        self._files: dict[str, tuple[tuple[int, ...], list[Record], Diagnostics]] = {}
        self._indexes: dict[TimeFields, EventIndex] = {}
        self._stdin_done = False

    def refresh(self) -> bool:
        """Re-read changed inputs; True if anything changed."""
        changed = False
        seen: set[str] = set()
        for path in expand_paths(self.paths, self.glob):
            seen.add(path)
            if path == "-":
                if self._stdin_done:
                    continue
                self._stdin_done = True
                stamp = (0, 0, 0, 0)
            else:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                old = self._files.get(path)
                if old is not None and old[0] == stamp:
                    continue
            diag = Diagnostics()
            recs = list(read_records([path], diag, input_format=self.input_format,
                                     stdin=self.stdin))
            self._files[path] = (stamp, recs, diag)
            changed = True
        for gone in set(self._files) - seen - {"-"}:
            del self._files[gone]
            changed = True
        if changed:
            self._indexes.clear()
        return changed

    def records(self) -> Iterator[Record]:
        """Every record, file by file in path order."""
        for path in sorted(self._files):
            yield from self._files[path][1]

    def diagnostics(self) -> Diagnostics:
        """Counts over the current contents of every input."""
        total = Diagnostics()
        for _, recs, diag in self._files.values():
            total.files += 1
            total.events += len(recs)
            total.skipped.update(diag.skipped)
            total.warnings.update(diag.warnings)
            total.samples.extend(diag.samples[:5])
        return total

    def index(self, fields: TimeFields) -> EventIndex:
        """The time index for ``fields`` (built once per content change)."""
        idx = self._indexes.get(fields)
        if idx is None:
            idx = self._indexes[fields] = EventIndex(self.records(), fields)
        return idx


# --- executing a rule ----------------------------------------------------------------------

@dataclass
class RuleRunner:
    """A rule ready to be scheduled: compiled query, exceptions and options."""

    crule: CompiledRule
    exceptions: ExceptionFilter = field(default_factory=lambda: ExceptionFilter(()))
    all_indices: bool = False
    space: str = DEFAULT_SPACE

    @property
    def rule(self) -> Rule:
        """The rule."""
        return self.crule.rule

    @property
    def interval(self) -> timedelta:
        """The rule's schedule interval."""
        return parse_duration(self.rule.interval)


@dataclass
class Execution:
    """The outcome of one execution, before and after its commit."""

    record: RunRecord
    plan: WindowPlan
    created: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    instances: list[tuple[str, str, str]] = field(default_factory=list)
    bucket_history: list[dict[str, Any]] = field(default_factory=list)
    new_flags: list[bool] = field(default_factory=list)


def execution_uuid(rule_uuid: str, started_at: datetime, n: int) -> str:
    """A deterministic execution id, so a re-run after a crash builds identical alerts."""
    return str(uuid.uuid5(_EXEC_NS, f"{rule_uuid}|{iso_ms(started_at)}|{n}"))


def _status(errors: Sequence[str], warnings: Sequence[str]) -> tuple[str, str]:
    if errors:
        return "failed", ", ".join(errors)
    if warnings:
        return "partial failure", ", ".join(warnings)
    return "succeeded", SUCCESS_MESSAGE


def execute(runner: RuleRunner, source: EventSource, store: AlertStore, runs: RunStore,
            started_at: datetime, *, monotonic: Callable[[], float] = time.monotonic) -> Execution:
    """Run one execution of ``runner`` at ``started_at`` (nothing is committed here)."""
    t0 = monotonic()
    rule = runner.rule
    now = truncate_ms(started_at)
    state = runs.state(rule.uuid)
    plan = plan_windows(rule, now, state.last_started_at if state else None)
    exec_id = execution_uuid(rule.uuid, now, runs.runs_at(rule.uuid, now))
    warnings = [w for w in (plan.warning,) if w]
    errors = [e for e in (plan.error,) if e]
    exceptions = runner.exceptions.active(now)
    index = source.index(TimeFields.of(rule))
    crule = runner.crule

    def build(ev: TimedEvent) -> tuple[dict[str, Any], EventIdentity]:
        ident = record_identity(ev.record)
        doc = build_alert(ev.event, rule, now=now, identity=ident,
                          hits=crule.matcher.explain(ev.event),
                          origin=EventOrigin(ev.record.source, ev.record.line),
                          space=runner.space, execution_uuid=exec_id)
        return doc, ident

    created: list[dict[str, Any]] = []
    created_ids: set[str] = set()
    searched: set[int] = set()
    matched: set[int] = set()
    excluded: set[int] = set()

    def is_new(uid: str) -> bool:
        return uid not in created_ids and not store.contains(uid)

    def create_plain(events: Sequence[TimedEvent], limit: int) -> bool:
        """Alerts for events (sorted), dropping known ones first; True if truncated."""
        fresh: list[TimedEvent] = []
        ids: list[str] = []
        for ev in events:
            uid = record_identity(ev.record).alert_id(rule.uuid, runner.space)
            if uid in ids or not is_new(uid):
                continue
            fresh.append(ev)
            ids.append(uid)
        truncated = len(fresh) > limit
        for ev, uid in zip(fresh[:limit], ids[:limit], strict=True):
            created.append(build(ev)[0])
            created_ids.add(uid)
        return truncated

    suppressor: Suppressor | None = None
    if rule.alert_suppression is not None:
        history = [HistoryEntry.from_json(h) for h in (state.bucket_history if state else [])]

        def lookup(iid: str) -> ExistingAlert | None:
            assert suppressor is not None and suppressor.duration is not None
            found = runs.latest_instance(iid, now - suppressor.duration)
            if found is None:
                return None
            doc = store.get(found[0])
            return ExistingAlert(doc, found[1]) if doc is not None else None

        suppressor = Suppressor(rule.alert_suppression, rule_uuid=rule.uuid, space=runner.space,
                                now=now, execution_uuid=exec_id, history=history, build=build,
                                exists=lambda uid: not is_new(uid), lookup=lookup)

    for window in plan.windows:
        kept: list[TimedEvent] = []
        for ev in index.window(window.start, window.end):
            key = id(ev)
            searched.add(key)
            if not runner.all_indices:
                idx_name = record_index(ev.record)
                if idx_name is not None and not crule.selector.selects(idx_name):
                    continue
            if not crule.matcher.matches(ev.event):
                continue
            if exceptions.excluded_by(ev.event) is not None:
                excluded.add(key)
                continue
            matched.add(key)
            kept.append(ev)
        if suppressor is None:
            if create_plain(kept, window.max_signals):
                warnings.append(MAX_SIGNALS_WARNING)
            continue
        outcome = suppressor.process_window(kept, to_ms(window.start), to_ms(window.end),
                                            window.max_signals, MAX_SIGNALS_WARNING)
        if (outcome.unsuppressed and outcome.unsuppressed_limit > 0
                and create_plain(outcome.unsuppressed, outcome.unsuppressed_limit)
                and MAX_SIGNALS_WARNING not in warnings):
            warnings.append(MAX_SIGNALS_WARNING)
        for doc in outcome.created:
            created.append(doc)
            created_ids.add(str(doc["kibana.alert.uuid"]))
        warnings.extend(w for w in outcome.warnings if w not in warnings)

    status, message = _status(errors, warnings)
    elapsed_ms = int((monotonic() - t0) * 1000)
    record = RunRecord(
        execution_uuid=exec_id, rule_uuid=rule.uuid, rule_id=rule.rule_id, rule_name=rule.name,
        started_at=now, finished_at=now + elapsed_ms * _MS, windows=[w.to_json() for w in plan.windows],
        status=status, message=message, warnings=warnings, errors=errors,
        events_searched=len(searched), events_matched=len(matched),
        events_excluded=len(excluded), alerts_created=len(created),
        alerts_updated=len(suppressor.updated) if suppressor else 0,
        suppressed=suppressor.suppressed_events if suppressor else 0,
        gap_ms=max(int(plan.gap / _MS), 0),
        duration_ms=elapsed_ms)
    return Execution(
        record=record, plan=plan, created=created,
        updated=list(suppressor.updated.values()) if suppressor else [],
        instances=list(suppressor.instances) if suppressor else [],
        bucket_history=[h.to_json() for h in suppressor.history] if suppressor else [])


def commit(execution: Execution, runs: RunStore) -> Execution:
    """Store the execution atomically (alerts, updates, run row, state)."""
    execution.new_flags = runs.commit(
        execution.record, created=execution.created, updated=execution.updated,
        instances=execution.instances, bucket_history=execution.bucket_history)
    return execution


# --- clocks and the scheduler loop ---------------------------------------------------------

class Clock(Protocol):
    """The current time, and a way to wait."""

    def now(self) -> datetime:
        """The current time (UTC)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """Real time, optionally shifted so that it starts at ``start`` (``--now`` without replay)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = (start - datetime.now(UTC)) if start else timedelta(0)

    def now(self) -> datetime:
        """Real time plus the offset."""
        return datetime.now(UTC) + self._offset

    def sleep(self, seconds: float) -> None:
        """Really sleep."""
        time.sleep(max(seconds, 0.0))


class SimulatedClock:
    """A clock that only moves when told to: sleeping advances it instantly (replay)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        """The simulated time."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the simulated time."""
        self._now += timedelta(seconds=max(seconds, 0.0))

    def set(self, t: datetime) -> None:
        """Jump to ``t`` (e.g. to skip executions in tests)."""
        self._now = t


@dataclass
class Scheduler:
    """Runs each rule on its own interval, committing every execution atomically.

    The next execution of a rule is due one interval after its last start
    (read from the run store, so a restart resumes where the previous process
    stopped); a rule that never ran is due immediately. An execution that is
    overdue (the process was down) runs at the current time, and the gap logic
    decides how much catch-up it does.
    """

    runners: list[RuleRunner]
    source: EventSource
    store: AlertStore
    runs: RunStore
    clock: Clock
    on_execution: Callable[[Execution], None] = lambda _e: None

    def run_once(self) -> list[Execution]:
        """One execution of every rule at the current time."""
        self.source.refresh()
        now = self.clock.now()
        return [self._run(r, now) for r in self.runners]

    def _run(self, runner: RuleRunner, now: datetime) -> Execution:
        execution = commit(execute(runner, self.source, self.store, self.runs, now), self.runs)
        self.on_execution(execution)
        return execution

    def run(self, until: datetime | None = None, max_executions: int | None = None) -> int:
        """Run the schedule until ``until`` (inclusive) or forever; returns executions done."""
        due: dict[int, datetime] = {}
        start = self.clock.now()
        for i, runner in enumerate(self.runners):
            state = self.runs.state(runner.rule.uuid)
            due[i] = state.last_started_at + runner.interval if state else start
        done = 0
        while due and (max_executions is None or done < max_executions):
            i = min(due, key=lambda k: (due[k], k))
            at = due[i]
            if until is not None and at > until:
                break
            now = self.clock.now()
            if at > now:
                if isinstance(self.clock, SimulatedClock):
                    self.clock.set(at)  # exact, no float round-trip
                else:
                    self.clock.sleep((at - now).total_seconds())
                now = self.clock.now()
            self.source.refresh()
            started = truncate_ms(now)
            self._run(self.runners[i], started)
            done += 1
            due[i] = started + self.runners[i].interval
        return done
