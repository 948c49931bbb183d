"""``scan --engine duckdb``: the same alerts as ``--engine python``, with the filter run in DuckDB.

Differential tests: the same inputs (bundled examples as NDJSON, converted to Parquet,
re-shaped nested/flat-dotted) scanned on both engines give identical alert documents,
uuids included (the CLI clock is fixed, so even creation timestamps agree).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from credwatch.engine.convert import leaves
from tests.cli.helpers import Result, run_cli

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
ECS = EXAMPLES / "ecs"


def scan(*argv: str) -> Result:
    return run_cli("scan", "--no-store", "--format", "ndjson", *argv)


def both(*argv: str) -> tuple[Result, Result]:
    py, dk = scan("--engine", "python", *argv), scan("--engine", "duckdb", *argv)
    assert py.code in (0, 1), py.err
    assert dk.code == py.code, dk.err
    return py, dk


def _summary(res: Result) -> str:
    """The counts line without the literal prefilter's note (a Python-engine detail)."""
    line = next(x for x in res.err.splitlines() if "events read" in x)
    return line.split(" (", 1)[0] + line.split(")", 1)[-1] if "prefilter" in line else line


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def _flat(event: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value, listed in leaves(event):
        if listed:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out


def _event(args: list[str], **extra: Any) -> dict[str, Any]:
    return {"@timestamp": "2026-12-01T10:00:00.000Z", "host": {"os": {"type": "linux"}},
            "event": {"category": ["process"], "action": "exec"},
            "process": {"name": "cat", "args": args, "executable": "/usr/bin/cat"}, **extra}


def test_ecs_examples_same_alerts_on_both_engines() -> None:
    py, dk = both(str(ECS / "auditbeat.ndjson"), str(ECS / "defend.ndjson"))
    assert len(py.alerts()) == 78
    assert dk.alerts() == py.alerts()
    assert _summary(dk) == _summary(py)


def test_converted_examples_give_the_alerts_of_the_originals(tmp_path: Path) -> None:
    """All the bundled examples (raw audit.log included) → Parquet → duckdb = python on the originals."""
    out = tmp_path / "ex.parquet"
    assert run_cli("convert", str(EXAMPLES), "--to", "parquet", str(out)).code == 0
    original = scan(str(EXAMPLES))
    on_parquet = scan("--engine", "duckdb", str(out))
    assert original.code == on_parquet.code == 0, on_parquet.err
    assert len(original.alerts()) == 98
    assert on_parquet.alerts() == original.alerts()


def test_day_partitioned_parquet_folder(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert run_cli("convert", str(ECS), "--to", "parquet", "--partition-by", "day", str(lake)).code == 0
    py, dk = scan(str(ECS)), scan("--engine", "duckdb", str(lake))
    assert dk.code == 0, dk.err
    assert {a["kibana.alert.uuid"] for a in dk.alerts()} == {a["kibana.alert.uuid"] for a in py.alerts()}


def test_nested_flat_and_mixed_ndjson(tmp_path: Path) -> None:
    """The same events nested, flat-dotted and both in one file: each engine pair agrees."""
    events = [json.loads(x) for x in (ECS / "auditbeat.ndjson").read_text().splitlines() if x.strip()]
    nested = _write(tmp_path / "nested.ndjson", events)
    flat = _write(tmp_path / "flat.ndjson", [_flat(e) for e in events])
    mixed = _write(tmp_path / "mixed.ndjson",
                   [_flat(e) if i % 2 else e for i, e in enumerate(events)])
    counts = set()
    for path in (nested, flat, mixed):
        py, dk = both(str(path))
        assert dk.alerts() == py.alerts()
        counts.add(len(py.alerts()))
    assert len(counts) == 1 and counts.pop() > 0


def test_like_wildcards_escape_underscore_and_percent(tmp_path: Path) -> None:
    """`id_rsa` in the rule is literal: `id-rsa` and `id%rsa` do not match on either engine."""
    path = _write(tmp_path / "e.ndjson", [_event(["cat", "/root/.ssh/id-rsa"]),
                                          _event(["cat", "/root/.ssh/id%rsa"]),
                                          _event(["cat", "/root/.ssh/id_rsa"])])
    py, dk = both(str(path))
    assert [a["process"]["args"][1] for a in dk.alerts()] == ["/root/.ssh/id_rsa"]
    assert dk.alerts() == py.alerts()


def test_index_patterns_apply_on_duckdb(tmp_path: Path) -> None:
    """An event whose data stream is outside the rule's patterns never alerts, unless --all-indices."""
    ds = {"data_stream": {"type": "logs", "dataset": "nginx.access", "namespace": "default"}}
    path = _write(tmp_path / "e.ndjson", [_event(["cat", "/etc/shadow"], **ds)])
    py, dk = both(str(path))
    assert dk.code == 1 and dk.alerts() == [] == py.alerts()
    py, dk = both("--all-indices", str(path))
    assert len(dk.alerts()) == 1 and dk.alerts() == py.alerts()


def test_foreign_parquet_is_read_from_its_columns(tmp_path: Path) -> None:
    """Parquet not written by credwatch: its non-null columns become the event."""
    rows = [_event(["cat", "/etc/shadow"]), _event(["cat", "/etc/motd"])]
    path = tmp_path / "theirs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    nd = _write(tmp_path / "same.ndjson", rows)
    dk, py = scan("--engine", "duckdb", str(path)), scan(str(nd))
    assert dk.code == 0, dk.err
    strip = ("credwatch.source.", "kibana.alert.original_event")
    got = [{k: v for k, v in a.items() if not k.startswith(strip)} for a in dk.alerts()]
    want = [{k: v for k, v in a.items() if not k.startswith(strip)} for a in py.alerts()]
    assert got == want and len(got) == 1


def test_bad_line_fails_that_input_only(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps(_event(["cat", "/etc/shadow"])) + "\n{not json\n", encoding="utf-8")
    good = _write(tmp_path / "good.ndjson", [_event(["cat", "/etc/shadow"])])
    dk = scan("--engine", "duckdb", str(bad), str(good), str(tmp_path / "gone.ndjson"))
    assert dk.code == 3
    assert f"{bad}: DuckDB could not read it" in dk.err and "gone.ndjson: no such file" in dk.err
    assert len(dk.alerts()) == 1


@pytest.mark.parametrize(("argv", "message"), [
    ((str(EXAMPLES / "auditd" / "audit.log"),), "auditd input is not supported by --engine duckdb"),
    ((str(ECS / "search_response.json"),), "not supported by --engine duckdb"),
    (("-",), "not standard input"),
    (("--strict", str(ECS / "defend.ndjson")), "--strict applies to --engine python"),
    (("--workers", "2", str(ECS / "defend.ndjson")), "duckdb uses its own threads"),
    (("--query", "credwatch.normalized.path:*shadow", str(ECS / "defend.ndjson")),
     "only the Python engine derives"),
])
def test_unsupported_is_an_error_not_a_silent_skip(argv: tuple[str, ...], message: str,
                                                   tmp_path: Path) -> None:
    out = tmp_path / "alerts.ndjson"
    res = run_cli("scan", "--no-store", "--engine", "duckdb", "--output", str(out), *argv)
    assert res.code == 2 and message in res.err, res.err
    assert "Traceback" not in res.err
    assert not out.exists()  # refused before any output was opened


def test_kibana_hits_ndjson_is_unsupported(tmp_path: Path) -> None:
    path = _write(tmp_path / "hits.ndjson", [{"_index": "auditbeat-1", "_id": "a",
                                              "_source": _event(["cat", "/etc/shadow"])}])
    res = scan("--engine", "duckdb", str(path))
    assert res.code == 2 and "Elasticsearch hits are not supported" in res.err


def test_only_matching_rows_reach_python(tmp_path: Path) -> None:
    """The filter runs in DuckDB: a non-matching line is never decoded by Python.

    The Python engine decodes every line and counts one whose type Elasticsearch would
    reject (`process.pid: "abc"`); on duckdb that line is filtered out before Python sees
    it, so it is read but not diagnosed (a known, documented difference).
    """
    path = _write(tmp_path / "e.ndjson", [_event(["cat", "/etc/motd"], **{"process.pid": "abc"}),
                                          _event(["cat", "/etc/shadow"])])
    py, dk = both(str(path))
    assert dk.alerts() == py.alerts() and len(dk.alerts()) == 1
    assert "1 skipped" in _summary(py)
    assert "2 events read" in _summary(dk) and "0 skipped" in _summary(dk)


def test_input_failure_is_one_line_even_for_an_empty_duckdb_message() -> None:
    import duckdb

    from credwatch.engine.lake import input_failure

    # An empty message once raised IndexError in the except clause, which lost the whole scan.
    assert input_failure(duckdb.Error("")) == "DuckDB could not read it: Error"
    assert input_failure(duckdb.IOException("first\nsecond")) == "DuckDB could not read it: first"
