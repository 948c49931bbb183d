"""Shared pieces of the live-following tests: captures, a driven clock, the scan reference."""

from __future__ import annotations

from pathlib import Path

from credwatch.engine.scan import Scanner, compile_rules
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "fixtures" / "auditd" / "enriched_workload.log"
SAMPLE = ROOT / "src" / "credwatch" / "examples" / "auditd" / "audit.log"


class FakeClock:
    """A monotonic clock the test moves by hand (``clock.now += 10``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scan_uuids(*paths: Path) -> set[str]:
    """Alert ids a one-shot scan of the same bytes produces (the reference)."""
    diag = Diagnostics()
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=diag)
    out = set()
    for p in paths:
        for alert in scanner.scan(read_records([str(p)], diag)):
            out.add(str(alert["kibana.alert.uuid"]))
    return out
