"""Scheduled detection with Kibana's semantics: windows, gaps, time order, caps, dedup.

Behaviour follows Kibana's security detection engine
(``security_solution/server/lib/detection_engine/rule_types/``); the parts live in:

* :mod:`credwatch.engine.plan`: the windows of an execution (``getRuleRangeTuples``),
  gaps, catch-up windows and Kibana's gap message;
* :mod:`credwatch.engine.eventtime`: an event's time under ``timestamp_override``
  with the ``@timestamp`` fallback, and Kibana's sort order;
* :mod:`credwatch.engine.window`: the inputs, streamed per execution (time-ordered
  files searched by offset, positions kept in the store);
* :mod:`credwatch.engine.execute`: one execution (dedup, max_signals, suppression,
  exceptions) and its atomic commit;
* :mod:`credwatch.engine.clocks`: real and simulated time.

This module runs executions on each rule's interval (:class:`Scheduler`) and
re-exports the names above for callers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from credwatch.alerts.store import AlertStore
from credwatch.engine.clocks import Clock, SimulatedClock, SystemClock
from credwatch.engine.eventtime import EventIndex, TimedEvent, TimeFields
from credwatch.engine.execute import Execution, RuleRunner, commit, execute, execution_uuid
from credwatch.engine.plan import (
    ALERTING_MAX_ALERTS,
    MAX_RULE_GAP_RATIO,
    MAX_SIGNALS_WARNING,
    Window,
    WindowPlan,
    from_ms,
    gap_message,
    humanize_ms,
    plan_windows,
    to_ms,
    truncate_ms,
)
from credwatch.engine.runs import RunStore
from credwatch.engine.window import EventSource
from credwatch.timemath import evaluating_at

__all__ = [
    "ALERTING_MAX_ALERTS",
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
    "commit",
    "execute",
    "execution_uuid",
    "from_ms",
    "gap_message",
    "humanize_ms",
    "plan_windows",
    "to_ms",
    "truncate_ms",
]


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

    def __post_init__(self) -> None:
        if self.source.positions is None:
            self.source.positions = self.runs  # where each input was read up to, between ticks

    def run_once(self) -> list[Execution]:
        """One execution of every rule at the current time."""
        self.source.refresh()
        now = self.clock.now()
        return [self._run(r, now) for r in self.runners]

    def _run(self, runner: RuleRunner, now: datetime) -> Execution:
        # Date math in the query (`now-1d/d`) resolves against this tick's time.
        with evaluating_at(now):
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
