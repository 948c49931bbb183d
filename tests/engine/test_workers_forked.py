"""The NDJSON range workers: forked processes without a pool's helper threads.

Results come back in job order whatever the number of workers; a worker's error
is the parent's; a worker that dies is an input failure, not a hang; a consumer
that stops early leaves no process behind.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import pytest

from credwatch.engine import workers as engine_workers
from credwatch.engine.forked import forked_results
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.workers import LineJudge, read_records
from credwatch.rules.loader import default_rule
from credwatch.sources import prefiltered
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.record import MatchedRecord, Record
from tests.sources.test_prefiltered import _lines, _run


def _square(job: int) -> tuple[int, int, int]:
    return job, job * job, os.getpid()


def _children() -> set[int]:
    """This process's children, running or not yet reaped (read from /proc: Linux)."""
    me = os.getpid()
    out: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # ended meanwhile
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
        if int(stat[stat.rindex(b")") + 2:].split()[1]) == me:
            out.add(int(entry))
    return out


def _no_children_left(before: set[int]) -> bool:
    """No child of this process beyond those it had before (other tests' may live on: Spark's JVM)."""
    return _children() <= before


@pytest.mark.parametrize(("jobs", "workers"), [(1, 1), (7, 2), (10, 3), (2, 4)])
def test_results_come_back_in_job_order_from_every_worker(jobs: int, workers: int) -> None:
    before = _children()
    got = list(forked_results(_square, list(range(jobs)), workers))
    assert [(j, sq) for j, sq, _pid in got] == [(j, j * j) for j in range(jobs)]
    pids = {pid for _j, _sq, pid in got}
    assert os.getpid() not in pids
    assert len(pids) == min(jobs, workers)
    assert _no_children_left(before)


def _fails_on_three(job: int) -> int:
    if job == 3:
        raise OSError(5, "Input/output error")
    return job


def test_a_worker_error_is_raised_in_the_parent_after_the_results_before_it() -> None:
    before = _children()
    results = forked_results(_fails_on_three, list(range(6)), 2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(OSError, match="Input/output error"):
        next(results)
    assert _no_children_left(before)


def test_a_consumer_that_stops_early_leaves_no_worker_behind() -> None:
    before = _children()
    results = forked_results(_square, list(range(1000)), 2)
    assert next(results)[0] == 0
    results.close()
    assert _no_children_left(before)


def _dies(job: tuple[str, int, int]) -> NoReturn:
    os._exit(9)  # as if killed: no result, no exception


def test_a_worker_that_dies_is_a_failed_input_not_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _children()
    monkeypatch.setattr(prefiltered, "BLOCK_BYTES", 997)
    monkeypatch.setattr(engine_workers, "RANGE_BYTES", 7919)
    monkeypatch.setattr(engine_workers, "_scan_range", _dies)
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(_lines(300, seed=2)) + b"\n")
    _alerts, diag = _run(path, [default_rule()], "always", 2)
    assert diag.failed == [f"{path}: a worker process ended before sending its result"]
    assert _no_children_left(before)


def test_a_matching_line_is_evaluated_once_not_tested_then_evaluated() -> None:
    scanner = Scanner(compile_rules([default_rule()]), triage=False)
    fast = scanner.fast_path("always")
    assert fast is not None and fast.evaluate is not None
    calls: list[str] = []

    def keep(rec: Record) -> bool:
        calls.append("keep")
        return scanner.would_alert(rec)

    def evaluate(rec: Record) -> Sequence[object]:
        calls.append("evaluate")
        return scanner.evaluate(rec)

    judge = LineJudge(dataclasses.replace(fast, keep=keep, evaluate=evaluate))
    positive = (b'{"host": {"os": {"type": "linux"}}, "event": {"category": "process", "action": "exec"},'
                b' "process": {"name": "cat", "args": ["cat", "/etc/shadow"]}}')
    events, records = judge.judge(positive)
    assert events is None and isinstance(records, list) and len(records) == 1
    assert isinstance(records[0], MatchedRecord) and records[0].matches
    assert judge.judge(positive.replace(b"linux", b"windows")) == (1, None)
    assert calls == ["evaluate", "evaluate"]


@pytest.mark.parametrize("workers", [1, 2])
def test_past_the_budget_matching_lines_come_back_evaluated_not_to_evaluate_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    monkeypatch.setattr(engine_workers, "EVALUATED_PER_BLOCK", 2)
    monkeypatch.setattr(prefiltered, "BLOCK_BYTES", 4093)
    monkeypatch.setattr(engine_workers, "RANGE_BYTES", 7919)
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(_lines(400, seed=5)) + b"\n")
    hunt = dataclasses.replace(default_rule(), query="event.action:exec", rule_id="hunt")
    rules = [default_rule(), hunt]
    scanner = Scanner(compile_rules(rules), triage=False)
    fast = scanner.fast_path("always", workers)
    assert fast is not None and fast.literals is not None  # "exec" and the seed rule's paths
    diag = Diagnostics()
    matched = list(read_records([str(path)], diag, fast=fast))
    # Every record that reaches the engine was evaluated once, in the worker (old code:
    # past 2 records per block the reader decoded the line and the engine evaluated it again).
    assert len(matched) > 20
    for rec in matched:
        assert isinstance(rec, MatchedRecord)
        assert list(rec.matches) == scanner.evaluate(Record(rec.event, rec.source, rec.line))
    # ... and the alerts are the full path's, line for line.
    full, full_diag = _run(path, rules, None)
    fast_alerts, fast_diag = _run(path, rules, "always", workers)
    assert fast_alerts == full
    assert (fast_diag.events, fast_diag.skipped) == (full_diag.events, full_diag.skipped)
