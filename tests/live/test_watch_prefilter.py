"""watch's literal prefilter: the same growing file followed with it on and off gives the same alerts.

Each example writes the same bytes in the same pieces (cut anywhere, half lines
included), with the same clock moves between them, to two files followed by two
watchers: one with the prefilter, one decoding everything. The alert documents
(built with one fixed clock) must be equal, in the same order; and the prefilter
must have passed over events without decoding them. Driven poll by poll: no
waiting.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from credwatch.alerts.store import AlertStore
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.watch import Watcher
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics
from tests.live.helpers import CAPTURE, FakeClock

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))  # the bench's generators, as tests/bench does

import gen_audit  # noqa: E402
import gen_ecs  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "auditd"
EXAMPLES = ROOT / "src" / "credwatch" / "examples" / "ecs"
AUDIT_INPUTS = [CAPTURE, FIXTURES / "raw_node.log", FIXTURES / "ausearch_interpreted.log",
                FIXTURES / "enriched_node_sample.log"]
WHEN = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
#: Lines an NDJSON writer may also produce: blank, broken, escaped literals, arrays, binary.
ODD_NDJSON = (b'\n{"broken": \n[{"process": {"args": ["cat", "/root/.aws/credentials"]}}]\n'
              b'{"event": {"category": ["process"], "type": ["start"], "action": "exec"}, '
              b'"process": {"name": "cat", "args": ["cat", "\\/root\\/.aws\\/credentials"]}}\n'
              b'\x00\x01garbage\n\r\n')


def _watcher(path: Path, db: Path, clock: FakeClock, fmt: str, prefilter: bool,
             alerts: list[dict[str, Any]], quiet_records: int = 50) -> Watcher:
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics(), clock=lambda: WHEN)
    return Watcher(str(path), scanner, AlertStore(db), [], input_format=fmt,  # type: ignore[arg-type]
                   start="beginning", idle_seconds=2.0, quiet_records=quiet_records, clock=clock,
                   prefilter=prefilter, max_poll_bytes=1 << 14, status_every=3600.0,
                   on_alert=lambda a: alerts.append(dict(a)))


def follow_both(tmp: Path, data: bytes, fmt: str, cuts: list[int], moves: list[float],
                quiet_records: int = 50) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Watcher]:
    """Write ``data`` in pieces to two files, each followed with and without the prefilter."""
    clock = FakeClock()
    results: list[list[dict[str, Any]]] = [[], []]
    watchers = []
    for i, prefilter in enumerate((True, False)):
        log = tmp / f"{i}" / "input.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        watchers.append((log, _watcher(log, tmp / f"{i}" / "a.db", clock, fmt, prefilter, results[i],
                                       quiet_records)))
    bounds = [0, *sorted(set(cuts)), len(data)]
    for k, (lo, hi) in enumerate(pairwise(bounds)):
        for log, w in watchers:
            with open(log, "ab") as fh:
                fh.write(data[lo:hi])
            w.step()
        clock.now += moves[k % len(moves)] if moves else 0.0
    clock.now += 100
    for _log, w in watchers:
        while w.step() or w.lag.bytes:  # the poll budget is small: read the rest
            pass
        w.store.close()
    for (log, _w), found in zip(watchers, results, strict=True):
        for alert in found:  # the two files differ by their folder only
            assert alert["credwatch.source.path"] == str(log)
            alert["credwatch.source.path"] = "input.log"
    return results[0], results[1], watchers[0][1]


def _cuts(size: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, size), max_size=12)


# No shrinking: a failing example is already small enough to read, and shrinking
# examples that follow whole files would take minutes.
_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                     phases=[Phase.explicit, Phase.reuse, Phase.generate],
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])


@_SETTINGS
@given(which=st.sampled_from(range(len(AUDIT_INPUTS))), data=st.data(),
       moves=st.lists(st.sampled_from([0.0, 0.5, 2.5]), max_size=5))
def test_audit_alerts_are_the_same_with_and_without_the_prefilter(
        tmp_path_factory: Any, which: int, data: st.DataObject, moves: list[float]) -> None:
    raw = AUDIT_INPUTS[which].read_bytes()
    cuts = data.draw(_cuts(len(raw)))
    on, off, w = follow_both(tmp_path_factory.mktemp("audit"), raw, "auditd", cuts, moves)
    assert on == off
    assert w.stats.prefiltered > 0 and w.audit.dropped > 0  # events were passed over unparsed


def test_audit_prefilter_on_generated_positives_and_decoys(tmp_path: Path) -> None:
    """Planted positives (hex arguments, split arguments, decoys) of the bench generator."""
    gen = tmp_path / "gen.log"
    truth = gen_audit.generate(gen, 3000, seed=11, positive_rate=0.02, decoy_rate=0.05)
    on, off, w = follow_both(tmp_path / "run", gen.read_bytes(), "auditd", [777, 50_000, 400_001],
                             [0.5, 2.5])
    assert on == off
    assert len(on) >= len(truth["positive_detail"]) > 0
    assert w.audit.dropped > 2000


@_SETTINGS
@given(data=st.data(), moves=st.lists(st.sampled_from([0.0, 2.5]), max_size=3))
def test_ndjson_alerts_are_the_same_with_and_without_the_prefilter(
        tmp_path_factory: Any, data: st.DataObject, moves: list[float]) -> None:
    tmp = tmp_path_factory.mktemp("ndjson")
    raw = (EXAMPLES / "auditbeat.ndjson").read_bytes() + ODD_NDJSON + (EXAMPLES / "defend.ndjson").read_bytes()
    cuts = data.draw(_cuts(len(raw)))
    on, off, w = follow_both(tmp, raw, "ndjson", cuts, moves)
    assert on == off and on
    assert w.stats.prefiltered > 0


def test_ndjson_prefilter_on_generated_escapes_and_decoys(tmp_path: Path) -> None:
    gen = tmp_path / "gen.ndjson"
    gen_ecs.generate(gen, 4000, seed=5, positive_rate=0.02, decoy_rate=0.05, escape_rate=0.05)
    on, off, w = follow_both(tmp_path / "run", gen.read_bytes(), "ndjson", [1, 99_999, 300_000], [])
    assert on == off and len(on) > 40
    assert w.stats.prefiltered > 3000
    assert w.stats.events == 4000


def _records(serial: int, positive: bool, eoe: bool) -> list[bytes]:
    """One exec event's records as auditd writes them (a credential read when ``positive``)."""
    stamp = b"audit(1796124800.%03d:%d)" % (serial % 1000, serial)
    target = b"/root/.aws/credentials" if positive else b"/etc/hostname"
    recs = [b"type=SYSCALL msg=" + stamp + b": arch=c000003e syscall=59 success=yes exit=0 items=2 "
            b'ppid=1 pid=%d auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 '
            b'comm="cat" exe="/usr/bin/cat" key="exec"' % (100 + serial),
            b"type=EXECVE msg=" + stamp + b': argc=2 a0="cat" a1="' + target + b'"',
            b"type=CWD msg=" + stamp + b': cwd="/root"',
            b"type=PATH msg=" + stamp + b': item=0 name="/usr/bin/cat" inode=1 dev=fe:00 mode=0100755',
            b"type=PROCTITLE msg=" + stamp + b": proctitle=" + b"cat\0".hex().upper().encode()
            + target.hex().upper().encode()]
    if eoe:
        recs.append(b"type=EOE msg=" + stamp + b": ")
    return recs


@st.composite
def _interleaved(draw: st.DrawFn) -> bytes:
    """Records of a few events shuffled (some far apart), with EOEs, late copies, a syslog prefix."""
    lines: list[bytes] = []
    for serial in range(draw(st.integers(2, 8))):
        recs = _records(serial + 1, draw(st.booleans()), draw(st.booleans()))
        if draw(st.booleans()):  # a header that is not plain: parsed in full, never kept aside
            i = draw(st.integers(0, len(recs) - 1))
            recs[i] = b"Dec  4 12:00:00 node1 audispd: " + recs[i]
        lines.extend(recs)
    order = draw(st.permutations(range(len(lines))))
    out = [lines[i] for i in order]
    for _ in range(draw(st.integers(0, 3))):  # late copies of some records
        out.append(draw(st.sampled_from(lines)))
    if draw(st.booleans()):
        out.insert(draw(st.integers(0, len(out))), b"garbage that is no record")
    return b"\n".join(out) + b"\n"


@_SETTINGS
@given(data=_interleaved(), quiet=st.integers(1, 12), cuts=st.lists(st.integers(0, 4000), max_size=6),
       moves=st.lists(st.sampled_from([0.0, 0.5, 2.5]), max_size=4))
def test_audit_events_kept_aside_close_as_in_the_full_path(
        tmp_path_factory: Any, data: bytes, quiet: int, cuts: list[int], moves: list[float]) -> None:
    """Quiet-record closes, EOE, idle closes, late records and promotions of kept-aside events."""
    tmp = tmp_path_factory.mktemp("aside")
    cuts = [c for c in cuts if c < len(data)]
    on, off, _w = follow_both(tmp, data, "auditd", cuts, moves, quiet_records=quiet)
    assert on == off
