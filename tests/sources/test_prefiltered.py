"""The literal fast path gives exactly the alerts of the full path.

* a scan-level differential: generated events with near-miss mutations
  (escaped slashes, ``\\u002f``, ``ensure_ascii``, flat and nested shapes,
  paths split over array elements), plus blank, truncated, non-JSON, binary,
  CRLF, ``_search``-response and unterminated lines, read through the full path
  and through the fast path in one process and in forked workers with tiny
  blocks and ranges so that every boundary case is crossed; alerts (uuid,
  rule, file:line) and counts must be equal;
* unit tests of the escape decoder, the two line finders and long lines.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from credwatch.engine import workers as engine_workers
from credwatch.engine.forked import split_ranges
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.workers import read_records
from credwatch.rules.loader import default_rule
from credwatch.rules.model import Rule
from credwatch.sources import prefiltered
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.prefiltered import (
    _HyperscanFinder,
    _RegexFinder,
    json_unescape,
)
from tests.backends.test_prefilter import _event

CLOCK = datetime(2026, 12, 2, tzinfo=UTC)
#: Events in the scan-level differential: 3,000 in CI; 100,000 with CREDWATCH_FULL_DIFFERENTIAL=1
#: (which `bench/run.py` sets for its differential step).
DIFFERENTIAL_EVENTS = 100_000 if os.environ.get("CREDWATCH_FULL_DIFFERENTIAL") else 3000


def _escape_slashes(line: bytes, how: bytes) -> bytes:
    # `/` occurs only inside strings in these events, so the line stays valid JSON.
    return line.replace(b"/", how)


def _lines(n: int, seed: int) -> list[bytes]:
    r = random.Random(seed)
    out: list[bytes] = []
    for i in range(n):
        event = _event(r)
        kind = i % 6
        if kind == 0:
            line = orjson.dumps(event)
        elif kind == 1:
            line = _escape_slashes(orjson.dumps(event), b"\\/")
        elif kind == 2:
            line = _escape_slashes(orjson.dumps(event), b"\\u002f")
        elif kind == 3:
            event["user"] = {"name": "jürgen-é"}
            line = json.dumps(event, ensure_ascii=True).encode()
        elif kind == 4:
            event["user"] = {"name": "jürgen-é"}
            line = json.dumps(event, ensure_ascii=False).encode()
        else:
            line = orjson.dumps(event) + b"\r"  # a CRLF line
        out.append(line)
    positive = {"host": {"os": {"type": "linux"}}, "event": {"category": "process", "action": "exec"},
                "process": {"name": "cat", "args": ["cat", "/etc/shadow"]}}
    garbage = [
        b"",
        b"   ",
        b"not json at all /etc/shadow",
        b'{"process": {"name": "cat", "args": ["cat", "/etc/shadow"]',
        b'[{"a": 1}]',
        b'[1, 2]',
        b'{"a": "\x00\x01 binary"}',
        b'{"a": "\xff\xfe not utf-8 /etc/shadow"}',
        orjson.dumps({"hits": {"hits": [{"_index": "logs-x", "_id": "h1", "_source": positive}]}}),
        b'  {"host.os.type": "linux", "event.category": "process", "event.action": "exec",'
        b' "process.name": "cat", "process.args": ["cat", "/etc/shadow"]}',
    ]
    for i, junk in enumerate(garbage):
        out.insert((i * 97) % len(out), junk)
    return out


def _run(path: Path, rules: list[Rule], mode: str | None, workers: int = 1
         ) -> tuple[list[tuple[Any, ...]], Diagnostics]:
    diag = Diagnostics()
    scanner = Scanner(compile_rules(rules), clock=lambda: CLOCK, diagnostics=diag, triage=False)
    fast = None if mode is None else scanner.fast_path(mode, workers)  # type: ignore[arg-type]
    if mode is not None:
        assert fast is not None
    records = read_records([str(path)], diag, fast=fast)
    alerts = [(a["kibana.alert.uuid"], a["kibana.alert.rule.rule_id"], a["credwatch.source.line"])
              for a in scanner.scan(records)]
    return alerts, diag


@pytest.fixture
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks and ranges of a few lines, so reads and ranges cut lines everywhere."""
    monkeypatch.setattr(prefiltered, "BLOCK_BYTES", 997)
    monkeypatch.setattr(engine_workers, "RANGE_BYTES", 7919)


@pytest.mark.parametrize("terminated", [True, False])
def test_differential_fast_path_gives_the_full_path_alerts(tmp_path: Path, tiny_blocks: None, terminated: bool) -> None:
    lines = _lines(DIFFERENTIAL_EVENTS, seed=11)
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + (b"\n" if terminated else b""))
    rules = [default_rule()]
    full, fdiag = _run(path, rules, None)
    assert len(full) > 100  # the generator does plant positives
    for workers in (1, 3):
        fast, diag = _run(path, rules, "always", workers)
        assert fast == full
        assert diag.events == fdiag.events
        assert diag.skipped == fdiag.skipped
        assert diag.prefiltered > len(lines) // 2  # and most lines were never decoded
    # The garbage is reported with its file:line either way.
    assert {"malformed-json", "binary", "invalid-utf8", "not-an-object"} <= set(fdiag.skipped)


def test_fast_path_with_several_rules(tmp_path: Path, tiny_blocks: None) -> None:
    base = default_rule()
    other = dataclasses.replace(base, rule_id="00000000-0000-4000-8000-000000000001",
                                query='process.args:"/home/u/.ssh/id_rsa.pub" or process.name:CAT')
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(_lines(1500, seed=5)) + b"\n")
    full, _ = _run(path, [base, other], None)
    assert {rule for _u, rule, _l in full} == {base.rule_id, other.rule_id}
    assert _run(path, [base, other], "always", 2)[0] == full


def test_a_rule_without_literals_decodes_every_line() -> None:
    base = default_rule()
    broad = dataclasses.replace(base, rule_id="x", query="not process.name:bash")
    fast = Scanner(compile_rules([base, broad])).fast_path("always")
    assert fast is not None and fast.literals is None
    never = Scanner(compile_rules([base])).fast_path("never")
    assert never is not None and never.literals is None and never.audit_needles is None
    # Decoding every line pays only with workers on a large file.
    assert not fast.engages(1 << 20) and not fast.engages(None)


@pytest.mark.parametrize("workers", [2, 3])
def test_decoding_every_line_in_workers_is_the_full_path(tmp_path: Path, tiny_blocks: None,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        workers: int) -> None:
    monkeypatch.setattr(engine_workers, "AUTO_MIN_BYTES", 0)
    lines = _lines(2000, seed=29)
    # Diagnostics the fast path would not see: a warning and a wrong type on lines without literals.
    lines.insert(5, orjson.dumps({"process": {"args": "cat /etc/hosts", "pid": 1}}))
    lines.insert(50, orjson.dumps({"process": {"pid": "not-a-number"}}))
    lines.insert(70, b'{"a": "\xff invalid utf-8"}')
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    broad = dataclasses.replace(default_rule(), rule_id="y",
                                query="process.name:cat and not process.args:x")
    for rules in ([default_rule()], [default_rule(), broad]):
        full, fdiag = _run(path, rules, None)
        fast, diag = _run(path, rules, "never", workers)
        assert fast == full
        assert (diag.events, diag.skipped, diag.warnings) == (fdiag.events, fdiag.skipped, fdiag.warnings)
        assert diag.samples == fdiag.samples
        assert diag.prefiltered == 0
        assert fdiag.skipped["wrong-type"] == 1 and fdiag.warnings["string-for-array"] == 1


def test_auto_engages_only_for_large_regular_files() -> None:
    fast = Scanner(compile_rules([default_rule()])).fast_path("auto")
    assert fast is not None
    assert not fast.engages(None) and not fast.engages(1 << 20)
    assert fast.engages(engine_workers.AUTO_MIN_BYTES)


def test_too_long_line_is_reported_not_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from credwatch.sources import inputs

    monkeypatch.setattr(inputs, "MAX_LINE_BYTES", 5000)
    monkeypatch.setattr(prefiltered, "BLOCK_BYTES", 1024)
    good = orjson.dumps({"host": {"os": {"type": "linux"}}, "event": {"category": "process", "action": "exec"},
                         "process": {"name": "cat", "args": ["cat", "/etc/shadow"]}})
    path = tmp_path / "long.ndjson"
    path.write_bytes(good + b"\n" + b'{"m": "' + b"A" * 20000 + b'"}\n' + good + b"\n")
    alerts, diag = _run(path, [default_rule()], "always")
    assert [line for _u, _r, line in alerts] == [1, 3]
    assert diag.skipped["line-too-long"] == 1
    assert any(s.endswith(":2: line-too-long (over 5000 bytes)") for s in diag.samples)


@pytest.mark.parametrize(("raw", "want"), [
    (rb'{"a": "\/etc\/shadow"}', '{"a": "/etc/shadow"}'),
    (rb'{"a": "\u002fetc\u002Fshadow"}', '{"a": "/etc/shadow"}'),
    (rb'{"a": "\\u002f"}', '{"a": "\\u002f"}'),  # an escaped backslash, then text
    (rb'{"a": "\ud83d\ude00 \u00e9 \"q\" \t"}', '{"a": "\U0001f600 \u00e9 "q" \t"}'),
])
def test_json_unescape(raw: bytes, want: str) -> None:
    assert json_unescape(raw) == want


def test_json_unescape_rejects_invalid_utf8() -> None:
    assert json_unescape(b'"\xff\\/"') is None


def test_finders_agree() -> None:
    pytest.importorskip("hyperscan")
    literals = frozenset({"/etc/shadow", "/.kube/config"})
    lines = [b'{"a": "/etc/shadow"}', b'{"a": "x"}', b"", b'{"b": "\\/"}', b"junk", b'{"c": 1}\r',
             b'{"d": "\x01"}', b'{"e": "/.kube/config"} ', b'{"hits": []}', b'{"f": 2}']
    buf = b"\n".join(lines) + b"\n"
    hs = _HyperscanFinder(literals).scan(buf, 0, len(buf))
    rx = _RegexFinder(literals).scan(buf, 0, len(buf))
    assert hs == rx
    ends = [e for e, _k in hs]
    flagged = {buf[: e - 1].rsplit(b"\n", 1)[-1] for e in ends}
    # The blank line (2) is no candidate: it holds no event (millions of them must stay cheap).
    # Nor is the escaped slash (3) that spells no literal.
    assert flagged == {lines[i] for i in (0, 4, 6, 7, 8)}


def test_split_ranges_start_at_line_starts(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    data = b"".join(b'{"n": %d}\n' % i for i in range(1000))
    path.write_bytes(data)
    ranges = split_ranges(str(path), len(data), unit=333)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(data[lo - 1: lo] == b"\n" for lo, _hi in ranges[1:])


def test_without_hyperscan_the_regex_fallback_agrees(tmp_path: Path, tiny_blocks: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hyperscan", None)  # `import hyperscan` raises ImportError
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(_lines(2000, seed=23)) + b"\n")
    full, fdiag = _run(path, [default_rule()], None)
    fast, diag = _run(path, [default_rule()], "always", 2)
    assert fast == full
    assert (diag.events, diag.skipped) == (fdiag.events, fdiag.skipped)


def test_progress_counts_events_the_fast_path_never_decodes(tmp_path: Path, tiny_blocks: None) -> None:
    import io

    from credwatch.cli.env import Env
    from credwatch.cli.main import program

    path = tmp_path / "events.ndjson"
    lines = _lines(1500, seed=31)
    path.write_bytes(b"\n".join(lines) + b"\n")
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(b""), stdout=out, stderr=err, environ={}, clock=lambda: CLOCK,
              stdout_isatty=False, stderr_isatty=True)
    code = program(["scan", "--no-store", "--format", "ndjson", "--prefilter", "always",
                    "--workers", "2", str(path)], env)
    assert code == 0
    shown = [int(m.replace(",", "")) for m in re.findall(r"([\d,]+) events ", err.getvalue())]
    # The bar counted the lines that were never decoded too, up to every event read.
    # The summary is the last message; on a terminal it wraps onto indented lines.
    summary = " ".join(err.getvalue().strip().rsplit("credwatch: ", 1)[-1].split())
    total = int(re.search(r"(\d+) events read", summary).group(1))  # type: ignore[union-attr]
    assert shown and max(shown) == total
    assert "ruled out by the literal prefilter" in summary


def _failing_range(job: tuple[str, int, int]) -> Any:
    raise OSError(5, "Input/output error")


def test_a_worker_read_error_is_a_failed_input_not_an_exception(
        tmp_path: Path, tiny_blocks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_workers, "_scan_range", _failing_range)
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(_lines(300, seed=2)) + b"\n")
    _alerts, diag = _run(path, [default_rule()], "always", 2)
    assert diag.failed == [f"{path}: input/output error"]


def test_a_reader_reads_a_byte_range_through_the_literal_filter_without_evaluating(tmp_path: Path) -> None:
    # The reader only reads: it hands back candidate lines of a byte range (numbered
    # within the range) and counts the events it passed over; deciding what a
    # candidate holds is the engine's job (no rule, no evaluation callback here).
    lines = [b'{"n": %d, "a": "/bin/true"}' % i for i in range(40)]
    lines[23] = b'{"a": "/etc/shadow"}'
    lines[25] = b'{"a": "\\/etc\\/shadow"}'  # escaped: the literal only after decoding
    lines[27] = b'{"a": "\\/bin\\/ls"}'  # escaped, but no literal behind the escapes
    lines[31] = b"not json"
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / "events.ndjson"
    path.write_bytes(data)
    lo = len(b"\n".join(lines[:20])) + 1  # the range starts at line 21
    hi = len(b"\n".join(lines[:35])) + 1
    scanner = prefiltered.RangeScanner(frozenset({"/etc/shadow"}))
    with open(path, "rb") as fh:
        fh.seek(lo)
        blocks = list(scanner.scan_stream(fh, hi - lo))
    candidates, before = [], 0
    for b in blocks:  # candidates are numbered within their block
        candidates += [(before + n, line) for n, line in b.candidates]
        before += b.lines
    assert candidates == [(4, lines[23]), (6, lines[25]), (12, lines[31])]
    assert sum(b.lines for b in blocks) == 15
    assert sum(b.passed for b in blocks) == 12  # the other lines of the range, one event each
