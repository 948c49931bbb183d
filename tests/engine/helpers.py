"""Builders shared by the scheduler tests: a store, a source file and a scheduler."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from credwatch.alerts.store import AlertStore
from credwatch.engine.exceptions import ExceptionFilter
from credwatch.engine.runs import RunStore
from credwatch.engine.scan import CompiledRule
from credwatch.engine.schedule import EventSource, Execution, RuleRunner, Scheduler, SimulatedClock
from credwatch.rules.loader import default_rule
from credwatch.rules.model import Rule
from tests.engine.daygen import DAY, write_ndjson


def seed_rule(**changes: Any) -> Rule:
    """The built-in seed rule, optionally changed."""
    return dataclasses.replace(default_rule(), **changes)


@dataclass
class Rig:
    """A scheduler over one NDJSON file with a simulated clock."""

    scheduler: Scheduler
    clock: SimulatedClock
    store: AlertStore
    runs: RunStore
    executions: list[Execution]
    path: Path

    def at(self, when: datetime) -> Execution:
        """Run one execution of the (single) rule at ``when``."""
        self.clock.set(when)
        return self.scheduler.run_once()[0]

    def seqs(self) -> list[int]:
        """``labels.seq`` of every stored alert (one per alert)."""
        return sorted(int(a["labels"]["seq"]) for a in self.store.select()[0])


def rig(tmp_path: Path, events: Sequence[dict[str, Any]], rule: Rule | None = None, *,
        exceptions: ExceptionFilter | None = None, start: datetime = DAY,
        db: Path | None = None) -> Rig:
    """Build a :class:`Rig` for ``events`` and ``rule`` (default: the seed rule)."""
    path = write_ndjson(tmp_path / "events.ndjson", list(events))
    store = AlertStore(db or tmp_path / "alerts.db")
    runs = RunStore(store)
    crule = CompiledRule.compile(rule or seed_rule())
    runner = RuleRunner(crule, exceptions or ExceptionFilter(()))
    clock = SimulatedClock(start)
    executions: list[Execution] = []
    sched = Scheduler([runner], EventSource([str(path)]), store, runs, clock,
                      on_execution=executions.append)
    return Rig(sched, clock, store, runs, executions, path)
