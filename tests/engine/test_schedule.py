"""Windows, gaps, time order, max_signals and dedup, driven by a simulated clock."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credwatch.engine.schedule import (
    MAX_SIGNALS_WARNING,
    EventIndex,
    TimeFields,
    gap_message,
    humanize_ms,
    plan_windows,
    to_ms,
)
from credwatch.sources.record import Record
from tests.engine.daygen import DAY, generate_day, iso, make_event
from tests.engine.helpers import rig, seed_rule

GAP_TAIL = ("were not queried between this rule execution and the last execution, so signals "
            "may have been missed. Consider increasing your look behind time or adding more "
            "Kibana instances")
M = timedelta(minutes=1)


def t(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


# --- window planning ----------------------------------------------------------------------

def test_first_execution_has_one_window_with_the_look_back() -> None:
    plan = plan_windows(seed_rule(), t(10, 0), None)
    assert [(w.start, w.end) for w in plan.windows] == [(t(9, 51), t(10, 0))]
    assert plan.gap == timedelta(0) and plan.error is None


def test_consecutive_executions_overlap_by_four_minutes_and_have_no_gap() -> None:
    plan = plan_windows(seed_rule(), t(10, 5), t(10, 0))
    assert [(w.start, w.end) for w in plan.windows] == [(t(9, 56), t(10, 5))]
    assert plan.gap == -4 * M and plan.catchup == 0 and plan.error is None


def test_one_skipped_execution_adds_one_catch_up_window_oldest_first() -> None:
    plan = plan_windows(seed_rule(), t(10, 10), t(10, 0))
    assert plan.gap == M and plan.catchup == 1 and plan.remaining_gap == timedelta(0)
    assert [(w.start, w.end) for w in plan.windows] == [(t(9, 56), t(10, 5)),
                                                        (t(10, 1), t(10, 10))]


def test_long_outage_caps_catch_up_at_four_and_reports_the_rest() -> None:
    plan = plan_windows(seed_rule(), t(11, 0), t(10, 0))
    assert plan.gap == 51 * M and plan.catchup == 4
    assert (plan.windows[0].start, plan.windows[0].end) == (t(10, 31), t(10, 40))
    assert len(plan.windows) == 5 and plan.windows[-1].end == t(11, 0)
    assert plan.remaining_gap == 31 * M
    assert plan.gap_range == (t(10, 0), t(10, 31))
    assert plan.error == f"31 minutes (1860000ms) {GAP_TAIL}"


@pytest.mark.parametrize(("ms", "text"), [
    (244_689, "4 minutes"),        # Kibana's own integration test expects this
    (51_658_063, "14 hours"),
    (30_000, "a few seconds"), (44_499, "a few seconds"), (44_500, "a minute"),
    (90_000, "2 minutes"), (44 * 60_000, "44 minutes"), (45 * 60_000, "an hour"),
    (3 * 3_600_000, "3 hours"), (22 * 3_600_000, "a day"), (3 * 86_400_000, "3 days"),
    (26 * 86_400_000, "a month"), (400 * 86_400_000, "a year"),
])
def test_gap_duration_is_humanized_like_moment(ms: int, text: str) -> None:
    assert humanize_ms(ms) == text


def test_gap_message_format() -> None:
    assert gap_message(timedelta(milliseconds=244_689)) == f"4 minutes (244689ms) {GAP_TAIL}"


def test_max_signals_above_the_alerting_limit_warns_and_is_lowered() -> None:
    plan = plan_windows(seed_rule(max_signals=5000), t(10, 0), None)
    assert plan.windows[0].max_signals == 1000
    assert plan.warning is not None and "(5000) is greater than the Kibana alerting limit (1000)" \
        in plan.warning


# --- event time and order ---------------------------------------------------------------

def _rec(event: dict[str, Any], line: int) -> Record:
    return Record(event=event, source="mem", line=line)


def test_time_fields_follow_timestamp_override_and_fallback() -> None:
    assert TimeFields.of(seed_rule()) == TimeFields("event.ingested", "@timestamp")
    assert TimeFields.of(seed_rule(timestamp_override=None)) == TimeFields("@timestamp", None)
    assert TimeFields.of(seed_rule(timestamp_override_fallback_disabled=True)) == \
        TimeFields("event.ingested", None)


def test_window_membership_uses_override_then_fallback_inclusively() -> None:
    events: list[dict[str, Any]] = [
        {"@timestamp": iso(t(9, 0)), "event": {"ingested": iso(t(10, 0))}, "n": "in-by-ingested"},
        {"@timestamp": iso(t(10, 0)), "event": {"ingested": iso(t(11, 0))}, "n": "out-by-ingested"},
        {"@timestamp": iso(t(10, 0)), "n": "in-by-fallback"},
        {"@timestamp": iso(t(9, 55)), "event": {"ingested": iso(t(9, 55))}, "n": "at-start"},
        {"@timestamp": iso(t(10, 5)), "event": {"ingested": "2026-03-01T10:05:00.000999Z"},
         "n": "at-end-sub-ms"},
        {"@timestamp": iso(t(10, 5)), "event": {"ingested": "2026-03-01T10:05:00.001Z"},
         "n": "after-end"},
        {"n": "no-time"},
    ]
    index = EventIndex([_rec(e, i) for i, e in enumerate(events)], TimeFields.of(seed_rule()))
    got = [ev.event["n"] for ev in index.window(t(9, 55), t(10, 5))]
    assert got == ["at-start", "in-by-ingested", "at-end-sub-ms", "in-by-fallback"]
    assert index.untimed == 1
    # without the fallback, the event without event.ingested is never searched
    strict = EventIndex([_rec(e, i) for i, e in enumerate(events)],
                        TimeFields("event.ingested", None))
    assert "in-by-fallback" not in [ev.event["n"] for ev in strict.window(t(9, 0), t(11, 0))]


def test_events_are_sorted_by_override_then_timestamp_with_missing_override_last() -> None:
    events: list[dict[str, Any]] = [
        {"@timestamp": iso(t(10, 1)), "n": "fallback-late"},
        {"@timestamp": iso(t(10, 3)), "event": {"ingested": iso(t(10, 4))}, "n": "b"},
        {"@timestamp": iso(t(10, 0)), "n": "fallback-early"},
        {"@timestamp": iso(t(10, 2)), "event": {"ingested": iso(t(10, 4))}, "n": "a"},
        {"@timestamp": iso(t(10, 0)), "event": {"ingested": iso(t(10, 2))}, "n": "first"},
    ]
    index = EventIndex([_rec(e, i) for i, e in enumerate(events)], TimeFields.of(seed_rule()))
    assert [ev.event["n"] for ev in index.window(t(9, 0), t(11, 0))] == \
        ["first", "a", "b", "fallback-early", "fallback-late"]


# --- a recorded day -----------------------------------------------------------------------

def test_a_day_replayed_every_five_minutes_alerts_once_per_matching_event(tmp_path: Path) -> None:
    day = generate_day(seed=11, events=1200)
    positives = sorted(e["labels"]["seq"] for e in day if e["labels"]["truth"] == "positive")
    r = rig(tmp_path, day)
    done = r.scheduler.run(until=DAY + timedelta(days=1))
    assert done == 24 * 12 + 1
    assert r.seqs() == positives  # every positive once, no negative
    assert sum(e.record.alerts_created for e in r.executions) == len(positives)
    assert {e.record.status for e in r.executions} == {"succeeded"}
    starts = [e.record.started_at for e in r.executions]
    assert all(b - a == 5 * M for a, b in itertools.pairwise(starts))
    # overlapping windows saw most positives twice; the store kept them once
    assert sum(e.record.events_matched for e in r.executions) > len(positives)
    # a second pass over the same day (new scheduler, same store) adds nothing
    again = rig(tmp_path, day, db=tmp_path / "alerts.db")
    again.clock.set(DAY)
    assert again.runs.state(seed_rule().uuid) is not None
    again.scheduler.run(until=DAY + timedelta(days=1))
    assert again.executions == [] and again.seqs() == positives


def test_alert_documents_carry_the_execution_time_and_rule_window(tmp_path: Path) -> None:
    rng = random.Random(1)
    ev = make_event(1, t(10, 2), positive=True, rng=rng, ingested=t(10, 3))
    r = rig(tmp_path, [ev])
    e = r.at(t(10, 5))
    (alert,) = e.created
    assert alert["@timestamp"] == "2026-03-01T10:05:00.000Z"
    assert alert["kibana.alert.original_time"] == "2026-03-01T10:02:00.000Z"
    assert alert["kibana.alert.rule.execution.uuid"] == e.record.execution_uuid
    assert e.record.windows == [{"from": "2026-03-01T09:56:00.000Z",
                                 "to": "2026-03-01T10:05:00.000Z", "max_signals": 100}]


def test_skipped_execution_is_covered_by_catch_up(tmp_path: Path) -> None:
    rng = random.Random(2)
    # ingested at 10:00:30: after the 10:00 execution, before the 10:10 window [10:01, 10:10]
    in_gap = make_event(1, t(10, 0), positive=True, rng=rng, ingested=t(10, 0, 30))
    later = make_event(2, t(10, 8), positive=True, rng=rng, ingested=t(10, 8))
    r = rig(tmp_path, [in_gap, later])
    assert r.at(t(10, 0)).created == []
    e = r.at(t(10, 10))  # the 10:05 execution never happened
    assert len(e.plan.windows) == 2 and e.record.status == "succeeded"
    assert r.seqs() == [1, 2]


def test_long_outage_fails_with_the_gap_message_but_still_searches(tmp_path: Path) -> None:
    rng = random.Random(3)
    lost = make_event(1, t(10, 10), positive=True, rng=rng, ingested=t(10, 10))
    caught = make_event(2, t(10, 40), positive=True, rng=rng, ingested=t(10, 40))
    r = rig(tmp_path, [lost, caught])
    r.at(t(10, 0))
    e = r.at(t(11, 0))
    assert e.record.status == "failed"
    assert e.record.message == f"31 minutes (1860000ms) {GAP_TAIL}"
    assert e.record.errors == [e.record.message] and e.record.gap_ms == 51 * 60_000
    assert r.seqs() == [2]  # 10:10 was never queried; 10:40 was, by catch-up
    (row,) = [x for x in r.runs.history() if x.status == "failed"]
    assert row.message == e.record.message and len(row.windows) == 5


def test_burst_over_max_signals_caps_warns_and_the_next_execution_continues(
        tmp_path: Path) -> None:
    rng = random.Random(4)
    burst = [make_event(i, t(10, 1), positive=True, rng=rng,
                        ingested=t(10, 1) + timedelta(milliseconds=300 * i)) for i in range(150)]
    rng.shuffle(burst)
    r = rig(tmp_path, burst)
    first = r.at(t(10, 5))
    assert first.record.alerts_created == 100
    assert first.record.status == "partial failure"
    assert first.record.warnings == [MAX_SIGNALS_WARNING]
    assert first.record.message == MAX_SIGNALS_WARNING
    assert r.seqs() == list(range(100))  # the earliest 100 by event.ingested
    second = r.at(t(10, 10))  # still inside [10:01, 10:10]
    assert second.record.alerts_created == 50 and second.record.status == "succeeded"
    assert r.seqs() == list(range(150))


def test_known_alerts_do_not_count_against_max_signals(tmp_path: Path) -> None:
    rng = random.Random(5)
    events = [make_event(i, t(10, 1), positive=True, rng=rng,
                         ingested=t(10, 1) + timedelta(seconds=i)) for i in range(3)]
    r = rig(tmp_path, events, seed_rule(max_signals=2))
    assert r.at(t(10, 5)).record.warnings == [MAX_SIGNALS_WARNING]
    e = r.at(t(10, 6))
    assert e.record.alerts_created == 1 and e.record.warnings == []


def test_each_catch_up_window_has_its_own_cap(tmp_path: Path) -> None:
    rng = random.Random(6)
    # ingested after the 10:00 execution, before the main window [10:01, 10:10] starts
    early = [make_event(i, t(10, 0), positive=True, rng=rng,
                        ingested=t(10, 0, 30) + timedelta(seconds=i)) for i in range(3)]
    late = [make_event(10 + i, t(10, 9), positive=True, rng=rng,
                       ingested=t(10, 9) + timedelta(seconds=i)) for i in range(3)]
    r = rig(tmp_path, early + late, seed_rule(max_signals=2))
    r.at(t(10, 0))
    e = r.at(t(10, 10))  # windows [9:56, 10:05] and [10:01, 10:10]
    assert len(e.plan.windows) == 2
    assert r.seqs() == [0, 1, 10, 11]
    assert e.record.warnings == [MAX_SIGNALS_WARNING, MAX_SIGNALS_WARNING]


def test_index_patterns_still_apply(tmp_path: Path) -> None:
    rng = random.Random(7)
    inside = make_event(1, t(10, 1), positive=True, rng=rng, ingested=t(10, 1))
    inside["data_stream"] = {"type": "logs", "dataset": "endpoint.events.process",
                             "namespace": "default"}
    outside = make_event(2, t(10, 1), positive=True, rng=rng, ingested=t(10, 2))
    outside["data_stream"] = {"type": "logs", "dataset": "nginx.access", "namespace": "default"}
    r = rig(tmp_path, [inside, outside])
    r.at(t(10, 5))
    assert r.seqs() == [1]


def test_repeated_once_at_the_same_time_gets_distinct_execution_ids(tmp_path: Path) -> None:
    r = rig(tmp_path, [])
    a, b = r.at(t(10, 0)), r.at(t(10, 0))
    assert a.record.execution_uuid != b.record.execution_uuid
    assert len(r.runs.history()) == 2


def test_started_at_is_truncated_to_milliseconds(tmp_path: Path) -> None:
    r = rig(tmp_path, [])
    e = r.at(datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC))
    assert e.record.started_at == datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)


def test_a_day_with_skipped_executions_and_an_outage_misses_only_the_gap(
        tmp_path: Path) -> None:
    """Skips are caught up; only events inside the reported uncovered range are missed."""
    day = generate_day(seed=31, events=1500)
    r = rig(tmp_path, day)
    skipped = {t(3, 5), t(7, 5), t(7, 10), t(7, 15)}
    outage = (t(12, 0), t(14, 0))  # no execution strictly between these
    at = DAY
    while at <= DAY + timedelta(days=1):
        if at not in skipped and not outage[0] < at < outage[1]:
            r.at(at)
        at += 5 * M
    failed = [e for e in r.executions if e.record.status == "failed"]
    assert [e.record.started_at for e in failed] == [t(14, 0)]
    assert failed[0].plan.gap_range == (t(12, 0), t(13, 31))
    caught_up = {e.record.started_at: len(e.plan.windows) for e in r.executions
                 if len(e.plan.windows) > 1}
    assert caught_up == {t(3, 10): 2, t(7, 20): 4, t(14, 0): 5}

    def event_time(e: dict[str, Any]) -> datetime:
        text = e["event"].get("ingested") or e["@timestamp"]
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    lo, hi = failed[0].plan.gap_range
    expected = sorted(e["labels"]["seq"] for e in day if e["labels"]["truth"] == "positive"
                      and not lo < event_time(e) < hi)
    missed = [e for e in day if e["labels"]["truth"] == "positive" and lo < event_time(e) < hi]
    assert missed  # the outage really lost something
    assert r.seqs() == expected


def test_event_source_rereads_files_that_grow_and_forgets_removed_ones(tmp_path: Path) -> None:
    from credwatch.engine.schedule import EventSource
    from credwatch.engine.window import Span

    folder = tmp_path / "logs"
    folder.mkdir()
    rng = random.Random(12)
    first = folder / "a.ndjson"
    first.write_text(json.dumps(make_event(1, t(10, 0), positive=True, rng=rng,
                                           ingested=t(10, 0))) + "\n")
    src = EventSource([str(folder)])
    fields = TimeFields.of(seed_rule())
    span = Span(to_ms(t(9, 0)), to_ms(t(11, 0)))

    def seqs() -> list[int]:
        return [ev.event["labels"]["seq"] for ev, _ in src.events(fields, span)]

    assert src.refresh() and seqs() == [1]
    assert not src.refresh()  # unchanged
    with first.open("a") as fh:
        fh.write(json.dumps(make_event(2, t(10, 1), positive=True, rng=rng,
                                       ingested=t(10, 1))) + "\n")
    second = folder / "b.ndjson"
    second.write_text(json.dumps(make_event(3, t(10, 2), positive=True, rng=rng,
                                            ingested=t(10, 2))) + "\n")
    assert src.refresh()
    assert seqs() == [1, 2, 3]
    first.unlink()
    assert src.refresh()
    assert seqs() == [3]
