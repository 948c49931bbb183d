"""One rule execution with Kibana's semantics: search the windows, dedup, cap, suppress.

* **Search**: the events whose time (:class:`~credwatch.engine.eventtime.TimeFields`)
  is in one of the execution's windows are streamed from the inputs
  (:meth:`~credwatch.engine.window.EventSource.events`); each is counted once in
  ``events_searched`` however many windows hold it. Only the events that match
  and are not excluded are kept, per window, to be sorted.
* **max_signals** (per window): events already alerted on (same deterministic
  id, found in the store) are dropped first, as Kibana's persistence layer
  drops them before truncating; beyond the cap the rest are dropped and the
  execution records Kibana's warning.
* **Status**: ``failed`` when there is an error (the gap), else ``partial
  failure`` when there are warnings (an input that could not be read is one),
  else ``succeeded``.

Nothing is committed here: :func:`commit` stores the execution atomically.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from credwatch.alerts.build import EventOrigin, build_alert, iso_ms
from credwatch.alerts.ids import EventIdentity
from credwatch.alerts.store import AlertStore
from credwatch.backends.deriving import alert_fields
from credwatch.backends.prefilter import derive_literals
from credwatch.engine.eventtime import TimedEvent, TimeFields
from credwatch.engine.exceptions import ExceptionFilter
from credwatch.engine.plan import (
    MAX_SIGNALS_WARNING,
    Window,
    WindowPlan,
    plan_windows,
    to_ms,
    truncate_ms,
)
from credwatch.engine.runs import RunRecord, RunStore
from credwatch.engine.scan import CompiledRule, record_identity, rules_for
from credwatch.engine.suppression import ExistingAlert, HistoryEntry, Suppressor
from credwatch.engine.window import EventSource, Span
from credwatch.rules.defaults import DEFAULT_SPACE
from credwatch.rules.model import Rule
from credwatch.rules.schedule_math import parse_duration

__all__ = ["Execution", "RuleRunner", "commit", "execute", "execution_uuid"]

SUCCESS_MESSAGE = "Rule execution completed successfully"
_MS = timedelta(milliseconds=1)
_EXEC_NS = uuid.UUID("6f1c0e52-5a35-4d4e-9a57-2f0b9c3c1d11")


@dataclass
class RuleRunner:
    """A rule ready to be scheduled: compiled query, exceptions and options."""

    crule: CompiledRule
    exceptions: ExceptionFilter = field(default_factory=lambda: ExceptionFilter(()))
    all_indices: bool = False
    space: str = DEFAULT_SPACE
    #: The rule's literals (``None``: every event in the windows goes to the matcher).
    literals: frozenset[str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.literals = derive_literals(self.crule.matcher.ast)

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
    #: ``path: reason`` of each input that could not be read (evaluated without it).
    input_errors: list[str] = field(default_factory=list)


def execution_uuid(rule_uuid: str, started_at: datetime, n: int) -> str:
    """A deterministic execution id, so a re-run after a crash builds identical alerts."""
    return str(uuid.uuid5(_EXEC_NS, f"{rule_uuid}|{iso_ms(started_at)}|{n}"))


def _status(errors: Sequence[str], warnings: Sequence[str]) -> tuple[str, str]:
    if errors:
        return "failed", ", ".join(errors)
    if warnings:
        return "partial failure", ", ".join(warnings)
    return "succeeded", SUCCESS_MESSAGE


@dataclass
class Search:
    """What the windows of one execution hold: counts over all of them, kept events per window."""

    kept: list[list[TimedEvent]]
    searched: int = 0
    matched: int = 0
    excluded: int = 0


def search(runner: RuleRunner, source: EventSource, windows: Sequence[Window],
           now: datetime) -> Search:
    """Stream the events of ``windows`` and keep, per window, those that match and are not excluded.

    An event held by several (overlapping) windows is counted and evaluated once.
    """
    bounds = [(to_ms(w.start), to_ms(w.end)) for w in windows]
    result = Search([[] for _ in windows])
    if not bounds:
        return result
    span = Span(min(lo for lo, _ in bounds), max(hi for _, hi in bounds))
    crule, exceptions = runner.crule, runner.exceptions.active(now)
    for ev, could_match in source.events(TimeFields.of(runner.rule), span, runner.literals):
        inside = [i for i, (lo, hi) in enumerate(bounds) if Span(lo, hi).holds_any(ev.points)]
        if not inside:
            continue
        result.searched += 1
        if not could_match:
            continue  # the literal prefilter: no literal of the rule in its line
        if not rules_for((crule,), ev.record, runner.all_indices):
            continue  # Kibana's index selection: the event's index is not the rule's
        if not crule.matcher.matches(ev.event):
            continue
        if exceptions.excluded_by(ev.event) is not None:
            result.excluded += 1
            continue
        result.matched += 1
        for i in inside:
            result.kept[i].append(ev)
    for kept in result.kept:
        kept.sort(key=TimedEvent.sort_key)
    return result


class _Creator:
    """Builds the alerts of one execution, dropping events already alerted on."""

    def __init__(self, runner: RuleRunner, store: AlertStore, now: datetime, exec_id: str) -> None:
        self.runner, self.store, self.now, self.exec_id = runner, store, now, exec_id
        self.created: list[dict[str, Any]] = []
        self.created_ids: set[str] = set()

    def build(self, ev: TimedEvent) -> tuple[dict[str, Any], EventIdentity]:
        """The alert document for ``ev`` and the event's identity."""
        rule = self.runner.rule
        ident = record_identity(ev.record)
        doc = build_alert(ev.event, rule, now=self.now, identity=ident,
                          hits=self.runner.crule.matcher.explain(ev.event),
                          origin=EventOrigin(ev.record.source, ev.record.line),
                          space=self.runner.space, execution_uuid=self.exec_id)
        doc.update(alert_fields(self.runner.crule.matcher, ev.event))
        return doc, ident

    def is_new(self, uid: str) -> bool:
        """True when no alert with this id exists yet (here or in the store)."""
        return uid not in self.created_ids and not self.store.contains(uid)

    def plain(self, events: Sequence[TimedEvent], limit: int) -> bool:
        """Alerts for events (sorted), dropping known ones first; True if truncated."""
        rule = self.runner.rule
        fresh: list[TimedEvent] = []
        ids: list[str] = []
        for ev in events:
            uid = record_identity(ev.record).alert_id(rule.uuid, self.runner.space)
            if uid in ids or not self.is_new(uid):
                continue
            fresh.append(ev)
            ids.append(uid)
        for ev, uid in zip(fresh[:limit], ids[:limit], strict=True):
            self.created.append(self.build(ev)[0])
            self.created_ids.add(uid)
        return len(fresh) > limit

    def adopt(self, doc: dict[str, Any]) -> None:
        """Take an alert built elsewhere (by suppression)."""
        self.created.append(doc)
        self.created_ids.add(str(doc["kibana.alert.uuid"]))


def _suppressor(runner: RuleRunner, creator: _Creator, store: AlertStore, runs: RunStore,
                history_json: list[dict[str, Any]]) -> Suppressor | None:
    rule = runner.rule
    if rule.alert_suppression is None:
        return None
    now = creator.now
    suppressor: Suppressor | None = None

    def lookup(iid: str) -> ExistingAlert | None:
        assert suppressor is not None and suppressor.duration is not None
        found = runs.latest_instance(iid, now - suppressor.duration)
        if found is None:
            return None
        doc = store.get(found[0])
        return ExistingAlert(doc, found[1]) if doc is not None else None

    suppressor = Suppressor(rule.alert_suppression, rule_uuid=rule.uuid, space=runner.space,
                            now=now, execution_uuid=creator.exec_id,
                            history=[HistoryEntry.from_json(h) for h in history_json],
                            build=creator.build, exists=lambda uid: not creator.is_new(uid),
                            lookup=lookup)
    return suppressor


def _create(creator: _Creator, suppressor: Suppressor | None, windows: Sequence[Window],
            found: Search, warnings: list[str]) -> None:
    """Alerts of every window, oldest first (max_signals and suppression per window)."""
    for window, kept in zip(windows, found.kept, strict=True):
        if suppressor is None:
            if creator.plain(kept, window.max_signals):
                warnings.append(MAX_SIGNALS_WARNING)
            continue
        outcome = suppressor.process_window(kept, to_ms(window.start), to_ms(window.end),
                                            window.max_signals, MAX_SIGNALS_WARNING)
        if (outcome.unsuppressed and outcome.unsuppressed_limit > 0
                and creator.plain(outcome.unsuppressed, outcome.unsuppressed_limit)
                and MAX_SIGNALS_WARNING not in warnings):
            warnings.append(MAX_SIGNALS_WARNING)
        for doc in outcome.created:
            creator.adopt(doc)
        warnings.extend(w for w in outcome.warnings if w not in warnings)


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
    found = search(runner, source, plan.windows, now)
    input_errors = list(source.failures)
    warnings.extend(input_errors)
    creator = _Creator(runner, store, now, exec_id)
    suppressor = _suppressor(runner, creator, store, runs, state.bucket_history if state else [])
    _create(creator, suppressor, plan.windows, found, warnings)
    status, message = _status(errors, warnings)
    elapsed_ms = int((monotonic() - t0) * 1000)
    record = RunRecord(
        execution_uuid=exec_id, rule_uuid=rule.uuid, rule_id=rule.rule_id, rule_name=rule.name,
        started_at=now, finished_at=now + elapsed_ms * _MS, windows=[w.to_json() for w in plan.windows],
        status=status, message=message, warnings=warnings, errors=errors,
        events_searched=found.searched, events_matched=found.matched,
        events_excluded=found.excluded, alerts_created=len(creator.created),
        alerts_updated=len(suppressor.updated) if suppressor else 0,
        suppressed=suppressor.suppressed_events if suppressor else 0,
        gap_ms=max(int(plan.gap / _MS), 0),
        duration_ms=elapsed_ms, read=source.read_report())
    return Execution(
        record=record, plan=plan, created=creator.created,
        updated=list(suppressor.updated.values()) if suppressor else [],
        instances=list(suppressor.instances) if suppressor else [],
        bucket_history=[h.to_json() for h in suppressor.history] if suppressor else [],
        input_errors=input_errors)


def commit(execution: Execution, runs: RunStore) -> Execution:
    """Store the execution atomically (alerts, updates, run row, state)."""
    execution.new_flags = runs.commit(
        execution.record, created=execution.created, updated=execution.updated,
        instances=execution.instances, bucket_history=execution.bucket_history)
    return execution
