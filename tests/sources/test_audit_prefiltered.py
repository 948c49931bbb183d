"""The audit fast path reassembles only candidate events, and gives the full path's alerts.

The differential runs over the benchmark's audit generator at high positive,
decoy and interleaving rates (hex-encoded arguments, arguments split over
``aN[k]`` records, records of one event far apart) and over the real captures
in ``tests/fixtures/auditd``, with blocks of a few hundred bytes so that events
straddle block boundaries everywhere.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from credwatch.engine import audit_workers
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.workers import read_records
from credwatch.rules.loader import default_rule
from credwatch.sources import audit_prefiltered, prefiltered
from credwatch.sources.diagnostics import Diagnostics

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "auditd"
BENCH = Path(__file__).resolve().parents[2] / "bench"
CLOCK = datetime(2026, 12, 2, tzinfo=UTC)


def _scan(path: Path, mode: str | None, workers: int = 1) -> tuple[list[tuple[Any, ...]], Diagnostics]:
    diag = Diagnostics()
    scanner = Scanner(compile_rules([default_rule()]), clock=lambda: CLOCK, diagnostics=diag, triage=False)
    fast = None if mode is None else scanner.fast_path(mode, workers)  # type: ignore[arg-type]
    records = read_records([str(path)], diag, input_format="auditd", fast=fast)
    alerts = [(a["kibana.alert.uuid"], a["credwatch.source.line"]) for a in scanner.scan(records)]
    return alerts, diag


@pytest.fixture(params=[2048, 1 << 20])
def block_bytes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Small blocks, and a join window that still spans the generator's interleaving."""
    monkeypatch.setattr(prefiltered, "BLOCK_BYTES", request.param)
    monkeypatch.setattr(audit_prefiltered, "WINDOW_BYTES", 128 << 10)
    monkeypatch.setattr(audit_workers, "RANGE_BYTES", 200_003)  # several ranges per file
    return int(request.param)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(BENCH))
    try:
        import gen_audit
    finally:
        sys.path.remove(str(BENCH))
    out = tmp_path_factory.mktemp("audit") / "audit.log"
    count = 30_000 if os.environ.get("CREDWATCH_FULL_DIFFERENTIAL") else 3000
    gen_audit.generate(out, count, seed=3, positive_rate=0.05, decoy_rate=0.1, interleave_rate=0.3)
    return out


@pytest.mark.parametrize("workers", [1, 3])
def test_differential_generated_log(generated: Path, block_bytes: int, workers: int) -> None:
    full, fdiag = _scan(generated, None)
    fast, diag = _scan(generated, "always", workers)
    assert len(full) > 100
    assert generated.stat().st_size > 3 * audit_workers.RANGE_BYTES  # several ranges
    assert fast == full
    assert diag.events == fdiag.events
    assert diag.prefiltered > fdiag.events // 2
    assert diag.skipped == fdiag.skipped


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.log")))
def test_real_captures(name: str, block_bytes: int) -> None:
    full, fdiag = _scan(FIXTURES / name, None)
    fast, diag = _scan(FIXTURES / name, "always")
    assert fast == full
    assert diag.events == fdiag.events
    assert diag.skipped == fdiag.skipped


def test_odd_lines_are_still_reported(tmp_path: Path, block_bytes: int) -> None:
    lines = (FIXTURES / "raw_node.log").read_bytes().splitlines(keepends=True)
    lines.insert(3, b"garbage: this is not an audit record\n")
    lines.insert(9, b"SYSCALL msg=audit(1.2:3): x=1\n")
    path = tmp_path / "audit.log"
    path.write_bytes(b"".join(lines))
    full, fdiag = _scan(path, None)
    fast, diag = _scan(path, "always")
    assert fast == full
    assert diag.skipped == fdiag.skipped
    assert sum(diag.skipped.values()) == 2
    assert [s.split(": ")[0] for s in diag.samples] == [s.split(": ")[0] for s in fdiag.samples]


def test_without_hyperscan_the_regex_fallback_agrees(monkeypatch: pytest.MonkeyPatch,
                                                     generated: Path) -> None:
    monkeypatch.setitem(sys.modules, "hyperscan", None)  # `import hyperscan` raises ImportError
    monkeypatch.setattr(audit_prefiltered, "WINDOW_BYTES", 128 << 10)
    full, fdiag = _scan(generated, None)
    fast, diag = _scan(generated, "always")
    assert fast == full and diag.events == fdiag.events


def _dies(job: tuple[str, int, int, int]) -> object:
    os._exit(9)  # as if killed: no result, no exception


def test_an_audit_worker_that_dies_is_a_failed_input_not_a_hang(
        generated: Path, block_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # With multiprocessing's pool the parent waited for the lost result for ever.
    monkeypatch.setattr(audit_workers, "_pick_range", _dies)
    alerts, diag = _scan(generated, "always", workers=2)
    assert alerts == []
    assert diag.failed == [f"{generated}: a worker process ended before sending its result"]
