"""``credwatch convert``: ECS events of any input as Parquet/NDJSON, read back to the same alerts."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from .helpers import run_cli  # noqa: E402 - after the optional-extra skip

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"


def _event(day: str, args: list[str], **extra: object) -> dict[str, object]:
    return {"@timestamp": f"{day}T10:00:00.000Z", "host": {"os": {"type": "linux"}},
            "event": {"category": ["process"], "action": "exec"},
            "process": {"name": "cat", "args": args}, **extra}


def _write(path: Path, events: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def test_examples_to_parquet_keep_every_event_and_schema(tmp_path: Path) -> None:
    """Raw audit.log and ECS inputs become one file, 0600, with the nested ECS schema."""
    out = tmp_path / "ex.parquet"
    res = run_cli("convert", str(EXAMPLES), "--to", "parquet", str(out))
    assert res.code == 0, res.err
    scanned = run_cli("scan", "--no-store", "--prefilter", "never", "--format", "ndjson", str(EXAMPLES))
    read = int(scanned.err.split("credwatch: ", 1)[1].split(" events read")[0])
    table = pq.read_table(out)
    assert table.num_rows == read == 225
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    process = table.schema.field("process").type
    assert pa.types.is_struct(process)
    assert process.field("args").type == pa.list_(pa.string())
    # Flat-dotted (defend.ndjson) and nested (auditbeat.ndjson) land in the same struct columns.
    rows = table.select(["_cw_source", "process"]).to_pylist()
    sources = {Path(r["_cw_source"]).name for r in rows if r["process"]["args"]}
    assert {"defend.ndjson", "auditbeat.ndjson", "audit.log"} <= sources


def test_partition_by_day(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.ndjson", [_event("2026-12-01", ["cat", "/etc/shadow"]),
                                          _event("2026-12-02", ["cat", "a"]),
                                          _event("2026-12-01", ["cat", "b"]),
                                          {"message": "no timestamp"}])
    out = tmp_path / "lake"
    res = run_cli("convert", str(src), "--to", "parquet", "--partition-by", "day", str(out))
    assert res.code == 0, res.err
    counts = {p.parent.name: pq.read_table(p).num_rows for p in out.rglob("*.parquet")}
    assert counts == {"day=2026-12-01": 2, "day=2026-12-02": 1, "day=unknown": 1}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in out.rglob("*.parquet"))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in out.rglob("day=*"))


def test_mixed_scalar_types_become_keyword_text(tmp_path: Path) -> None:
    """A field that is a number in one event and a string in another is kept as text, like a keyword."""
    src = _write(tmp_path / "in.ndjson", [{"a": 1, "b": 2, "c": [1, 2.5]}, {"a": "x", "b": 3, "c": 4}])
    out = tmp_path / "o.parquet"
    assert run_cli("convert", str(src), "--to", "parquet", str(out)).code == 0
    table = pq.read_table(out)
    assert table.schema.field("a").type == pa.string()
    assert table.schema.field("b").type == pa.int64()
    assert table.schema.field("c").type == pa.list_(pa.float64())
    assert table.column("a").to_pylist() == ["1", "x"]
    assert table.column("c").to_pylist() == [[1.0, 2.5], [4.0]]


def test_ndjson_output_scans_to_the_same_alerts(tmp_path: Path) -> None:
    """audit.log → NDJSON → scan gives the alerts (uuids) of scanning the audit.log itself."""
    out = tmp_path / "audit.ndjson"
    log = EXAMPLES / "auditd" / "audit.log"
    assert run_cli("convert", "--to", "ndjson", str(log), str(out)).code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    before = run_cli("scan", "--no-store", "--format", "ndjson", str(log)).alerts()
    after = run_cli("scan", "--no-store", "--format", "ndjson", str(out)).alerts()
    assert before
    assert [a["kibana.alert.uuid"] for a in after] == [a["kibana.alert.uuid"] for a in before]


def test_output_over_an_input_is_refused(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.ndjson", [_event("2026-12-01", ["cat", "x"])])
    before = src.read_bytes()
    res = run_cli("convert", str(src), "--to", "ndjson", str(src))
    assert res.code == 2 and "refusing to overwrite an input" in res.err
    assert src.read_bytes() == before


def test_missing_out_is_a_usage_error(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.ndjson", [])
    res = run_cli("convert", str(src), "--to", "parquet")
    assert res.code == 2 and "IN... OUT" in res.err and "Traceback" not in res.err


def test_unreadable_input_is_partial_and_the_rest_is_written(tmp_path: Path) -> None:
    good = _write(tmp_path / "in.ndjson", [_event("2026-12-01", ["cat", "x"])])
    out = tmp_path / "o.parquet"
    res = run_cli("convert", str(good), str(tmp_path / "gone.ndjson"), "--to", "parquet", str(out))
    assert res.code == 3 and "gone.ndjson: no such file" in res.err
    assert pq.read_table(out).num_rows == 1
    (tmp_path / "bad.ndjson.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    res = run_cli("convert", str(good), str(tmp_path / "bad.ndjson.gz"), "--to", "parquet", str(out))
    assert res.code == 3 and "bad.ndjson.gz" in res.err
    assert pq.read_table(out).num_rows == 1


def test_missing_pyarrow_names_the_install_command(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = _write(tmp_path / "in.ndjson", [_event("2026-12-01", ["cat", "x"])])
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what `import pyarrow` sees when absent
    res = run_cli("convert", str(src), "--to", "parquet", str(tmp_path / "o.parquet"))
    assert res.code == 2 and "pip install 'credwatch[lake]'" in res.err
    assert "Traceback" not in res.err
