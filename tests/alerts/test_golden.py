"""Golden identity: alert documents stay byte-identical while alert building is optimised.

The fixtures in ``tests/alerts/golden/`` were written by ``python
tests/alerts/test_golden.py --write`` from the code *before* the alert-cost work
of issue #15: a frozen generated corpus (``corpus.ndjson.gz``, so later changes
to the benchmark generator do not move it) plus the bundled examples, scanned
with the broad hunt ``event.action:exec`` and with the seed rule. Each expected
document is the NDJSON line credwatch printed, minus the alert's creation
times, which depend on the clock. Key order is part of the comparison.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from credwatch.cli.env import Env
from credwatch.cli.main import program

HERE = Path(__file__).resolve().parent / "golden"
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
#: Creation times: they come from the clock, not from the event or the rule.
CLOCK_FIELDS = ("@timestamp", "kibana.alert.start", "kibana.alert.last_detected",
                "kibana.alert.intended_timestamp")
CASES = {"hunt": ["--query", "event.action:exec"], "seed": []}


def _inputs(folder: Path) -> list[str]:
    return [str(folder / "corpus.ndjson.gz"), str(EXAMPLES)]


def scan_documents(args: list[str], inputs: list[str], out: Path) -> list[bytes]:
    """Run ``credwatch scan`` in-process; the alert lines without their clock fields."""
    code = program(["scan", *args, "--format", "ndjson", "--no-store", "-q",
                    "--output", str(out), *inputs], Env())
    assert code == 0
    lines: list[bytes] = []
    for raw in out.read_bytes().splitlines():
        doc: dict[str, Any] = orjson.loads(raw)
        for key in CLOCK_FIELDS:
            assert key in doc
            del doc[key]
        # The input's path is where the checkout is: keep it relative to the repository.
        source = doc.get("credwatch.source.path")
        if isinstance(source, str) and source.startswith(f"{REPO}/"):
            doc["credwatch.source.path"] = source[len(REPO) + 1:]
        lines.append(orjson.dumps(doc))
    return lines


REPO = str(Path(__file__).resolve().parents[2])


def _first_difference(got: bytes, want: bytes) -> str:
    g, w = orjson.loads(got), orjson.loads(want)
    if list(g) != list(w):
        return f"key order/set differs: {sorted(set(g) ^ set(w))[:10]}"
    for key in w:
        if g[key] != w[key]:
            return f"{key}: {g[key]!r} != {w[key]!r}"
    return "same values, different bytes"


@pytest.mark.parametrize("case", sorted(CASES))
def test_alert_documents_are_byte_identical_to_the_reference(case: str, tmp_path: Path) -> None:
    got = scan_documents(CASES[case], _inputs(HERE), tmp_path / "out.ndjson")
    with gzip.open(HERE / f"{case}.ndjson.gz", "rb") as f:
        want = f.read().splitlines()
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"alert {i}: {_first_difference(g, w)}"


def _write() -> None:  # pragma: no cover - run by hand to (re)create the reference
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import gen_ecs

    HERE.mkdir(exist_ok=True)
    tmp = HERE / "tmp"
    tmp.mkdir(exist_ok=True)
    gen_ecs.generate(tmp / "nested.ndjson", 700, seed=15, positive_rate=0.15, decoy_rate=0.1)
    gen_ecs.generate(tmp / "flat.ndjson", 300, seed=16, flat=True, positive_rate=0.15,
                     decoy_rate=0.1)
    data = (tmp / "nested.ndjson").read_bytes() + (tmp / "flat.ndjson").read_bytes()
    with gzip.GzipFile(HERE / "corpus.ndjson.gz", "wb", mtime=0) as f:
        f.write(data)
    for case, args in CASES.items():
        docs = scan_documents(args, _inputs(HERE), tmp / "out.ndjson")
        with gzip.GzipFile(HERE / f"{case}.ndjson.gz", "wb", mtime=0) as f:
            f.write(b"".join(d + b"\n" for d in docs))
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--write"]:
        _write()
