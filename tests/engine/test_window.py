"""The streaming window reader of ``credwatch run``: bisection, fallbacks, stored positions.

The reference everywhere is the in-memory index (every record read, then
filtered by time), which is what ``run`` did before it streamed.
"""

from __future__ import annotations

import gzip
import json
import os
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credwatch.alerts.store import AlertStore
from credwatch.engine import readpos, window_reader
from credwatch.engine.eventtime import EventIndex, TimeFields
from credwatch.engine.exceptions import ExceptionFilter
from credwatch.engine.execute import RuleRunner, search
from credwatch.engine.plan import Window, to_ms
from credwatch.engine.readpos import LineCounter, Span
from credwatch.engine.runs import RunStore
from credwatch.engine.scan import CompiledRule, record_index
from credwatch.engine.window import EventSource
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records
from tests.engine.daygen import DAY, iso, make_event
from tests.engine.helpers import seed_rule

FIELDS = TimeFields("event.ingested", "@timestamp")
M = timedelta(minutes=1)
AUDIT_LOG = Path(__file__).parents[2] / "src" / "credwatch" / "examples" / "auditd" / "audit.log"


def ordered_events(n: int, *, seed: int = 1, start: datetime = DAY, step_s: float = 1.0,
                   jitter_s: float = 3.0, positive: float = 0.05) -> list[dict[str, Any]]:
    """``n`` events in time order, ``event.ingested`` trailing ``@timestamp`` by up to jitter."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        at = start + timedelta(seconds=i * step_s)
        ingested = at + timedelta(seconds=rng.uniform(0, jitter_s))
        out.append(make_event(i, at, positive=rng.random() < positive, rng=rng,
                              ingested=ingested if rng.random() > 0.1 else None))
    return out


def lines_of(events: Sequence[dict[str, Any] | str]) -> bytes:
    return b"".join((e if isinstance(e, str) else json.dumps(e)).encode() + b"\n" for e in events)


def reference(paths: Sequence[Path], span: Span, fields: TimeFields = FIELDS) -> list[tuple[str, int]]:
    """(file, line) of every event in ``span``: everything read and indexed in memory."""
    records = list(read_records([str(p) for p in paths], Diagnostics()))
    index = EventIndex(records, fields)
    got = {(ev.record.source, ev.record.line) for ev in index.window(
        datetime.fromtimestamp(span.lo / 1000, DAY.tzinfo),
        datetime.fromtimestamp(span.hi / 1000, DAY.tzinfo))}
    return sorted(got)


def streamed(src: EventSource, span: Span, fields: TimeFields = FIELDS) -> list[tuple[str, int]]:
    src.refresh()
    return sorted({(ev.record.source, ev.record.line) for ev, _ in src.events(fields, span)})


def span_at(t: datetime, minutes: int = 9) -> Span:
    return Span(to_ms(t - minutes * M), to_ms(t))


# --- ordered files: bisection ---------------------------------------------------------------

def test_an_ordered_file_is_searched_by_offset_and_gives_the_window_exactly(tmp_path: Path) -> None:
    path = tmp_path / "ordered.ndjson"
    path.write_bytes(lines_of(ordered_events(20_000)))
    src = EventSource([str(path)], bisect_min_bytes=0)
    span = span_at(DAY + timedelta(hours=3))
    assert streamed(src, span) == reference([path], span)
    assert len(reference([path], span)) > 500
    # 9 minutes plus the tolerance on both sides, out of 20,000 lines
    assert src.lines_read < 600 + 2 * 30 + 20


def test_bisection_survives_garbage_and_over_long_lines_near_the_split(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(window_reader, "PROBE_LINE_BYTES", 512)  # a probe skips lines longer than this
    monkeypatch.setattr("credwatch.sources.inputs.MAX_LINE_BYTES", 4096)  # and the reader these
    events: list[dict[str, Any] | str] = list(ordered_events(6000, seed=3))
    rng = random.Random(9)
    for at in sorted(rng.sample(range(100, 5900), 400), reverse=True):
        events.insert(at, rng.choice([
            "not json at all", "{\"truncated\": ", "", "[1, 2, 3]", "{\"no\": \"time\"}",
            json.dumps({"@timestamp": "garbage", "event": {"ingested": "also garbage"}}),
            json.dumps({"pad": "x" * 2000}),  # long for a probe only
            "x" * 9000,  # too long for the reader as well
        ]))
    path = tmp_path / "messy.ndjson"
    path.write_bytes(lines_of(events))
    size = path.stat().st_size
    for minute in (9, 17, 30, 50, 75, 99):
        src = EventSource([str(path)], bisect_min_bytes=0)
        span = span_at(DAY + timedelta(minutes=minute))
        assert streamed(src, span) == reference([path], span), minute
        assert src.lines_read < len(events) // 2
    assert size == path.stat().st_size


def test_windows_before_and_after_the_data_find_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ordered.ndjson"
    path.write_bytes(lines_of(ordered_events(3000)))
    src = EventSource([str(path)], bisect_min_bytes=0)
    assert streamed(src, span_at(DAY - timedelta(hours=1))) == []
    assert streamed(src, span_at(DAY + timedelta(hours=5))) == []
    assert src.lines_read < 100


def test_an_out_of_order_line_inside_the_window_makes_the_whole_file_read(tmp_path: Path) -> None:
    events = ordered_events(6000, seed=5)
    at = DAY + timedelta(minutes=60)
    # Far from the window's part of the file, but inside the window by time.
    events[300]["event"]["ingested"] = iso(at - 2 * M)
    # Inside the window's part of the file, but an hour older: the order is broken there.
    events[3500]["event"]["ingested"] = iso(at - 60 * M)
    path = tmp_path / "stray.ndjson"
    path.write_bytes(lines_of(events))
    with AlertStore(tmp_path / "a.db") as store:
        runs = RunStore(store)
        src = EventSource([str(path)], positions=runs, bisect_min_bytes=0)
        span = span_at(at)
        got = streamed(src, span)
        assert got == reference([path], span) and (str(path), 301) in got
        state = runs.input_state(os.path.realpath(path), FIELDS.key())
        assert state is not None and state.ordered == 0
        # Known to be out of order: the next execution reads it in full straight away.
        later = span_at(at + 5 * M)
        assert streamed(src, later) == reference([path], later)


def test_an_unordered_file_is_read_in_full_and_gives_the_window_exactly(tmp_path: Path) -> None:
    events = ordered_events(5000, seed=7)
    random.Random(2).shuffle(events)
    path = tmp_path / "shuffled.ndjson"
    path.write_bytes(lines_of(events))
    src = EventSource([str(path)], bisect_min_bytes=0)
    span = span_at(DAY + timedelta(minutes=40))
    assert streamed(src, span) == reference([path], span)
    assert src.lines_read == 5000


# --- positions kept between executions -----------------------------------------------------

def test_positions_are_stored_and_the_next_execution_counts_lines_from_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ordered.ndjson"
    path.write_bytes(lines_of(ordered_events(20_000)))
    counted: list[tuple[int, int]] = []
    real = readpos.count_lines

    def spy(fh: Any, start: int, end: int) -> int:
        counted.append((start, end))
        return real(fh, start, end)

    monkeypatch.setattr(readpos, "count_lines", spy)
    with AlertStore(tmp_path / "a.db") as store:
        runs = RunStore(store)
        first = EventSource([str(path)], positions=runs, bisect_min_bytes=0)
        span = span_at(DAY + timedelta(hours=2))
        assert streamed(first, span) == reference([path], span)
        state = runs.input_state(os.path.realpath(path), FIELDS.key())
        assert state is not None and state.ordered == 1 and state.mark_offset > 0
        assert counted[-1] == (0, state.mark_offset)
        # A new process: the line numbers of the next window are counted from the mark.
        second = EventSource([str(path)], positions=runs, bisect_min_bytes=0)
        later = span_at(DAY + timedelta(hours=2, minutes=5))
        assert streamed(second, later) == reference([path], later)
        assert counted[-1][0] == state.mark_offset


def test_a_rotated_or_truncated_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "log.ndjson"
    path.write_bytes(lines_of(ordered_events(8000, seed=11)))
    at = DAY + timedelta(hours=1)
    with AlertStore(tmp_path / "a.db") as store:
        runs = RunStore(store)
        src = EventSource([str(path)], positions=runs, bisect_min_bytes=0)
        assert streamed(src, span_at(at)) == reference([path], span_at(at))
        # Rotated: a new file (new inode) with other lines under the same name.
        rotated = ordered_events(9000, seed=12, start=DAY + timedelta(minutes=30))
        tmp = tmp_path / "log.new"
        tmp.write_bytes(lines_of(rotated[:5000]))
        tmp.replace(path)
        assert streamed(src, span_at(at + 5 * M)) == reference([path], span_at(at + 5 * M))
        # Truncated in place and rewritten: same inode, other content.
        with path.open("r+b") as fh:
            fh.truncate(0)
            fh.write(lines_of(ordered_events(7000, seed=13, start=DAY + timedelta(minutes=7))))
        assert streamed(src, span_at(at + 10 * M)) == reference([path], span_at(at + 10 * M))


def test_an_unchanged_file_outside_the_window_is_not_read_again(tmp_path: Path) -> None:
    old = tmp_path / "old.ndjson.gz"
    old.write_bytes(gzip.compress(lines_of(ordered_events(2000, seed=4))))
    with AlertStore(tmp_path / "a.db") as store:
        src = EventSource([str(old)], positions=RunStore(store))
        streamed(src, span_at(DAY + timedelta(minutes=10)))
        assert src.lines_read == 2000
        assert streamed(src, span_at(DAY + timedelta(hours=5))) == []
        assert src.lines_read == 2000  # its time span was kept: not read


def test_an_appended_unordered_file_reads_only_its_new_tail(tmp_path: Path) -> None:
    events = ordered_events(3000, seed=6)
    random.Random(1).shuffle(events)
    path = tmp_path / "grows.ndjson"
    path.write_bytes(lines_of(events))
    with AlertStore(tmp_path / "a.db") as store:
        src = EventSource([str(path)], positions=RunStore(store), bisect_min_bytes=1 << 30)
        streamed(src, span_at(DAY + timedelta(minutes=30)))
        late = ordered_events(50, seed=8, start=DAY + timedelta(hours=3))
        for i, ev in enumerate(late):
            ev["labels"]["seq"] = 10_000 + i
        with path.open("ab") as fh:
            fh.write(lines_of(late))
        before = src.lines_read
        span = span_at(DAY + timedelta(hours=3, minutes=5))
        assert streamed(src, span) == reference([path], span)
        assert src.lines_read - before == 50


# --- inputs that cannot be read -----------------------------------------------------------

def test_a_partly_written_gzip_is_reported_and_read_again_next_time(tmp_path: Path) -> None:
    data = gzip.compress(lines_of(ordered_events(3000, seed=2)))
    path = tmp_path / "rotated.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])
    good = tmp_path / "live.ndjson"
    good.write_bytes(lines_of(ordered_events(100, seed=3, start=DAY + timedelta(minutes=20))))
    at = DAY + timedelta(minutes=25)
    with AlertStore(tmp_path / "a.db") as store:
        runs = RunStore(store)
        src = EventSource([str(tmp_path)], positions=runs)
        got = streamed(src, span_at(at))
        assert [f.split(": ")[0] for f in src.failures] == [str(path)]
        assert {source for source, _ in got} >= {str(good)}  # the other input was still read
        assert runs.input_state(os.path.realpath(path), FIELDS.key()) is None
        path.write_bytes(data)  # the writer finished
        assert streamed(src, span_at(at)) == reference([good, path], span_at(at))
        assert src.failures == []


def test_a_missing_input_is_a_failure_and_the_others_are_still_read(tmp_path: Path) -> None:
    good = tmp_path / "e.ndjson"
    good.write_bytes(lines_of(ordered_events(100)))
    src = EventSource([str(tmp_path / "gone.ndjson"), str(good)])
    assert streamed(src, span_at(DAY + timedelta(minutes=1)))
    assert src.failures == [f"{tmp_path / 'gone.ndjson'}: no such file or folder"]


def test_standard_input_is_kept_for_every_execution(tmp_path: Path) -> None:
    import io

    data = lines_of(ordered_events(500))
    src = EventSource(["-"], stdin=io.BytesIO(data))
    try:
        first = streamed(src, span_at(DAY + timedelta(minutes=5)))
        second = streamed(src, span_at(DAY + timedelta(minutes=8)))
    finally:
        src.close()
    assert first and second and {s for s, _ in first} == {"<stdin>"}
    assert len(first) == len([1 for _ in first]) and second[-1][1] > first[-1][1]


# --- the differential test: old in-memory search vs streaming -----------------------------

def _reference_search(paths: Sequence[Path], runner: RuleRunner, windows: Sequence[Window],
                      now: datetime) -> tuple[int, int, int, list[list[tuple[str, int]]]]:
    """What ``execute`` did before it streamed: index every record, query each window."""
    index = EventIndex(read_records([str(p) for p in paths], Diagnostics()), TimeFields.of(runner.rule))
    exceptions = runner.exceptions.active(now)
    searched: set[int] = set()
    matched: set[int] = set()
    excluded: set[int] = set()
    kept_all = []
    for w in windows:
        kept = []
        for ev in index.window(w.start, w.end):
            searched.add(id(ev))
            idx = record_index(ev.record)
            if idx is not None and not runner.crule.selector.selects(idx):
                continue
            if not runner.crule.matcher.matches(ev.event):
                continue
            if exceptions.excluded_by(ev.event) is not None:
                excluded.add(id(ev))
                continue
            matched.add(id(ev))
            kept.append((ev.record.source, ev.record.line))
        kept_all.append(kept)
    return len(searched), len(matched), len(excluded), kept_all


def test_streaming_search_equals_the_in_memory_search(tmp_path: Path) -> None:
    """Ordered, shuffled, gzip and audit inputs together, over several executions."""
    folder = tmp_path / "in"
    folder.mkdir()
    base = ordered_events(12_000, seed=21, step_s=0.7, positive=0.08)
    (folder / "a-ordered.ndjson").write_bytes(lines_of(base[:6000]))
    shuffled = base[6000:9000]
    random.Random(4).shuffle(shuffled)
    (folder / "b-shuffled.ndjson").write_bytes(lines_of(shuffled))
    (folder / "c.ndjson.gz").write_bytes(gzip.compress(lines_of(base[9000:])))
    (folder / "d-audit.log").write_bytes(AUDIT_LOG.read_bytes())
    paths = sorted(folder.iterdir())
    runner = RuleRunner(CompiledRule.compile(seed_rule()), ExceptionFilter(()))
    with AlertStore(tmp_path / "a.db") as store:
        src = EventSource([str(folder)], positions=RunStore(store), bisect_min_bytes=0)
        src.refresh()
        checked = 0
        for now in [DAY + timedelta(minutes=m) for m in range(5, 150, 10)] + \
                [datetime(2026, 12, 1, 11, 35, tzinfo=DAY.tzinfo)]:
            windows = [Window(now - 14 * M, now - 5 * M, 100), Window(now - 9 * M, now, 100)]
            got = search(runner, src, windows, now)
            want = _reference_search(paths, runner, windows, now)
            kept = [[(ev.record.source, ev.record.line) for ev in k] for k in got.kept]
            assert (got.searched, got.matched, got.excluded, kept) == want, now
            checked += got.searched
        assert checked > 5000


# --- pieces -------------------------------------------------------------------------------

def test_the_line_counter_in_a_child_process_counts_like_in_place(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"a\n" * 1000 + b"bb\n" * 500 + b"tail")
    forked = LineCounter(str(path), 2, 1, path.stat().st_size - 4, fork_min=0)
    in_place = LineCounter(str(path), 2, 1, path.stat().st_size - 4, fork_min=1 << 40)
    assert in_place.ready and not forked.ready  # the child counts until asked
    assert forked.result() == in_place.result() == 1500


def test_the_literal_filter_passes_lines_that_may_spell_a_literal_with_escapes() -> None:
    from credwatch.engine.window import LineFilter

    lf = LineFilter(frozenset({"/.aws/"}))
    assert lf.could_match(b'{"args": ["cat", "/root/.aws/credentials"]}')
    assert lf.could_match(b'{"args": ["cat", "\\/root\\/.aws\\/credentials"]}')
    assert not lf.could_match(b'{"args": ["cat", "/etc/hosts"]}')
    assert LineFilter(None).could_match(b"{}")


# --- raw audit logs ---------------------------------------------------------------------

def _audit_log(path: Path, events: int) -> Path:
    import sys

    bench = Path(__file__).resolve().parents[2] / "bench"
    if str(bench) not in sys.path:
        sys.path.insert(0, str(bench))
    import gen_audit

    gen_audit.generate(path, events, 5)
    return path


def test_an_ordered_audit_log_is_searched_by_offset(tmp_path: Path) -> None:
    path = _audit_log(tmp_path / "audit.log", 3000)
    records = list(read_records([str(path)], Diagnostics()))
    first = to_ms(datetime.fromisoformat(records[0].event["@timestamp"].replace("Z", "+00:00")))
    for offset_s in (40, 130, 200, 400):
        lo = first + offset_s * 1000
        span = Span(lo, lo + 30_000)
        src = EventSource([str(path)], bisect_min_bytes=0)
        assert streamed(src, span) == reference([path], span), offset_s
        assert src.lines_read < len(records) // 2


def test_an_audit_log_out_of_order_is_read_whole(tmp_path: Path) -> None:
    path = _audit_log(tmp_path / "audit.log", 1500)
    lines = path.read_bytes().splitlines(keepends=True)
    # Swap two far-apart blocks of lines: stamps go back by minutes in the middle.
    third = len(lines) // 3
    path.write_bytes(b"".join(lines[2 * third:] + lines[third: 2 * third] + lines[:third]))
    records = list(read_records([str(path)], Diagnostics()))
    stamps = sorted(to_ms(datetime.fromisoformat(r.event["@timestamp"].replace("Z", "+00:00")))
                    for r in records)
    span = Span(stamps[len(stamps) // 2], stamps[len(stamps) // 2] + 20_000)
    with AlertStore(tmp_path / "a.db") as store:
        runs = RunStore(store)
        src = EventSource([str(path)], positions=runs, bisect_min_bytes=0)
        assert streamed(src, span) == reference([path], span)
        state = runs.input_state(os.path.realpath(path), FIELDS.key())
        assert state is not None and state.ordered == 0
