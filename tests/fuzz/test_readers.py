"""Fuzz the readers: no input makes them raise, memory stays bounded, and the literal fast path
reads fuzzed files exactly as the full path does.

Targets: automatic detection plus every reader behind it (``read_records`` over stdin), the
document reader alone, the raw audit reader, and the fast path against the full path.
Inputs that once crashed a reader are kept in ``tests/fuzz/corpus/readers/``.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.workers import read_records
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.jsondoc import document_records
from tests.fuzz import corpus, fuzz

CLOCK = datetime(2026, 12, 2, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
EVENT_LINES = [line for line in (EXAMPLES / "ecs" / "auditbeat.ndjson").read_bytes().splitlines()
               if line.strip()][:12]
AUDIT_LINES = (EXAMPLES / "auditd" / "audit.log").read_bytes().splitlines()[:20]

#: Pieces that stress the splitter, the detector and the audit parser.
PIECES = [b"[", b"]", b"{", b"}", b",", b":", b'"', b"\\", b"\n", b"\r\n", b" ", b"\xef\xbb\xbf",
          b'"hits"', b'{"hits":{"hits":[', b"]}}", b"\x00", b"\xff", b'"\\ud800"', b"type=EXECVE ",
          b"msg=audit(1796124794.643:4): ", b"argc=99999999999 ", b"a1=\"/root/.kube/config\" ",
          b"----\n", b"9" * 50, b'{"process":{"args":["cat","/root/.kube/config"]}}', b"1e400"]

pieces = st.lists(st.sampled_from(PIECES) | st.binary(max_size=12), max_size=60).map(b"".join)
lines = st.lists(st.sampled_from(EVENT_LINES + AUDIT_LINES + PIECES) | pieces, max_size=40)
documents = st.one_of(st.binary(max_size=3000), pieces, lines.map(b"\n".join))


def _read_all(data: bytes, input_format: str = "auto") -> Diagnostics:
    diag = Diagnostics()
    for rec in read_records(["-"], diag, input_format=input_format, stdin=io.BytesIO(data)):
        orjson.dumps(rec.event)  # every record is an event that can be serialised
    return diag


@fuzz
@given(documents, st.sampled_from(["auto", "ndjson", "json", "auditd"]))
def test_no_input_makes_a_reader_raise(data: bytes, input_format: str) -> None:
    diag = _read_all(data, input_format)
    if data.startswith(b"\x1f\x8b"):
        # gzip's magic: the input is read as gzip, so a broken stream is a failed input,
        # reported as one line (the only way an in-memory input can fail).
        assert len(diag.failed) <= 1
        assert all("gzip" in f or "compressed" in f for f in diag.failed), diag.failed
    else:
        assert not diag.failed  # in-memory input: nothing else can fail to be read


@fuzz
@given(documents, st.integers(min_value=8, max_value=64))
def test_the_document_reader_bounds_its_units(data: bytes, limit: int) -> None:
    diag = Diagnostics()
    for rec in document_records(io.BytesIO(data), "x", diag, max_unit=limit):
        # (Re-serialised numbers may grow: 1e9 is 1000000000.0.)
        assert len(orjson.dumps(rec.event)) <= 8 * limit


@pytest.mark.parametrize("data", corpus("readers") or [b""])
def test_saved_crash_inputs_stay_fixed(data: bytes) -> None:
    _read_all(data)


def _alerts(path: Path, mode: str | None) -> tuple[list[tuple[object, ...]], Diagnostics]:
    diag = Diagnostics()
    scanner = Scanner(compile_rules([default_rule()]), clock=lambda: CLOCK, diagnostics=diag, triage=False)
    fast = None if mode is None else scanner.fast_path("always", 1)
    got: list[tuple[object, ...]] = [(a["kibana.alert.uuid"], a["credwatch.source.line"])
           for a in scanner.scan(read_records([str(path)], diag, fast=fast))]
    return got, diag


@fuzz
@given(lines)
def test_the_fast_path_reads_fuzzed_files_as_the_full_path(tmp_path_factory: pytest.TempPathFactory,
                                                            parts: list[bytes]) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "events"
    path.write_bytes(b"\n".join(parts) + b"\n")
    full, _ = _alerts(path, None)
    fast, _ = _alerts(path, "always")
    assert fast == full
