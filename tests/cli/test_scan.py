"""End-to-end tests of `credwatch scan` through its real entry point, with real files."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from credwatch.normalize.flatten import flatten, get_values

from .helpers import run_cli, stable, write_ndjson

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
AUDITBEAT = EXAMPLES / "ecs" / "auditbeat.ndjson"
DEFEND = EXAMPLES / "ecs" / "defend.ndjson"
SEARCH = EXAMPLES / "ecs" / "search_response.json"
AUDIT_LOG = EXAMPLES / "auditd" / "audit.log"
SEED_ID = "5f0fff18-f340-444b-9a98-c49ade766ff4"


def events(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def flat_form(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v if len(v) > 1 else v[0] for k, v in flatten(event).items()}


def scan(*args: str, **kw: Any) -> Any:
    return run_cli("scan", "--no-store", "--format", "ndjson", *args, **kw)


def uuids(result: Any) -> list[str]:
    return sorted(a["kibana.alert.uuid"] for a in result.alerts())


@pytest.fixture(scope="module")
def baseline() -> Any:
    res = scan(str(AUDITBEAT))
    assert res.code == 0, res.err
    return res


def test_default_rule_is_the_seed_rule_one_alert_per_matching_event(baseline: Any) -> None:
    alerts = baseline.alerts()
    assert alerts, "the bundled auditbeat sample has positives"
    assert {a["kibana.alert.rule.rule_id"] for a in alerts} == {SEED_ID}
    # one alert per matching event: every alert points at a distinct source line
    lines = [a["credwatch.source.line"] for a in alerts]
    assert len(lines) == len(set(lines))
    # every alert really carries a credential path among its arguments
    for a in alerts:
        assert any(h["field"] == "process.args" for h in a["credwatch.explain"])
        assert a["event.kind"] == "signal"


def test_flat_and_nested_events_give_identical_alerts(tmp_path: Path, baseline: Any) -> None:
    flat = write_ndjson(tmp_path / "flat.ndjson", [flat_form(e) for e in events(AUDITBEAT)])
    res = scan(str(flat))
    assert res.code == 0
    assert uuids(res) == uuids(baseline)
    assert [stable(a)["kibana.alert.reason"] for a in res.alerts()] == [
        stable(a)["kibana.alert.reason"] for a in baseline.alerts()]


def test_garbage_lines_change_nothing_but_the_error_counts(tmp_path: Path, baseline: Any) -> None:
    good = AUDITBEAT.read_bytes().splitlines()
    junk = [b"not json at all", b"{\"truncated\": ", b"\xff\xfe\xfa invalid utf8 \xc3\x28",
            b"\x00\x01\x02\x03binary", b"[1, 2", b"42", b"{\"process\": {\"args\": {\"x\": 1}}}",
            b"{\"process\": {\"pid\": \"not-a-number\"}}", b""]
    mixed: list[bytes] = []
    for i, line in enumerate(good):
        mixed.append(line)
        mixed.append(junk[i % len(junk)])
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(mixed) + b"\n")
    res = scan(str(path))
    assert res.code == 0
    assert uuids(res) == uuids(baseline)
    summary = res.err.strip().splitlines()[-1]
    assert f"{len(good)} events read" in summary
    for reason in ("malformed-json", "invalid-utf8", "binary", "not-an-object", "wrong-type"):
        assert reason in summary, summary
    assert f"{path}:2: malformed-json" in res.err  # file:line of the first bad line


def test_fifty_megabyte_line_and_empty_file_are_reported(tmp_path: Path, baseline: Any) -> None:
    big = tmp_path / "big.ndjson"
    with open(big, "wb") as fh:
        fh.write(b'{"message": "' + b"A" * (50 * 1024 * 1024) + b'"}\n')
        fh.write(AUDITBEAT.read_bytes())
    empty = tmp_path / "empty.ndjson"
    empty.write_bytes(b"")
    res = scan(str(big), str(empty))
    assert uuids(res) == uuids(baseline)
    # A first line too long to look at whole goes to the document reader, which walks it
    # without keeping it (it could be one huge _search response): reported as a value.
    assert "1 value-too-large" in res.err and "1 empty-file" in res.err
    assert f"{big}:1: value-too-large" in res.err


def test_strict_makes_the_first_bad_line_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_bytes(AUDITBEAT.read_bytes().splitlines()[0] + b"\nnope\n")
    res = scan("--strict", str(path))
    assert res.code == 2
    assert f"{path}:2" in res.err and "Traceback" not in res.err


@pytest.mark.parametrize("shape", ["array", "hits", "search", "discover"])
def test_json_array_search_response_and_hits(tmp_path: Path, shape: str) -> None:
    response = orjson.loads(SEARCH.read_bytes())
    hits = response["hits"]["hits"]
    path = tmp_path / f"{shape}.json"
    if shape == "array":
        path.write_bytes(orjson.dumps([h["_source"] for h in hits], option=orjson.OPT_INDENT_2))
    elif shape == "hits":
        path.write_bytes(orjson.dumps(hits))
    elif shape == "search":
        path.write_bytes(SEARCH.read_bytes())
    else:  # Discover/Kibana NDJSON export: one hit per line
        write_ndjson(path, hits)
    res = scan(str(path))
    expected = scan(str(SEARCH))
    assert res.code == 0
    if shape == "array":
        # Without _index/_id the alert ids are derived from content, so compare what matched.
        def key(a: dict[str, Any]) -> str:
            return str(a["process"]["entity_id"])

        assert sorted(map(key, res.alerts())) == sorted(map(key, expected.alerts()))
    else:
        assert uuids(res) == uuids(expected)
        # with a real _index/_id the ancestors point at the Elasticsearch document
        a = res.alerts()[0]
        assert a["kibana.alert.ancestors"][0]["index"].startswith(".ds-logs-endpoint.events.process")
        assert a["kibana.alert.ancestors"][0]["id"].startswith("ep-")


def test_search_hits_with_fields_instead_of_source(tmp_path: Path) -> None:
    response = orjson.loads(SEARCH.read_bytes())
    for hit in response["hits"]["hits"]:
        src = hit.pop("_source")
        hit["fields"] = {k: v for k, v in flatten(src).items()}
    path = tmp_path / "fields.json"
    path.write_bytes(orjson.dumps(response))
    assert uuids(scan(str(path))) == uuids(scan(str(SEARCH)))


def test_gzip_stdin_and_folders(tmp_path: Path, baseline: Any) -> None:
    gz = tmp_path / "sub" / "events.ndjson.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(AUDITBEAT.read_bytes()))
    (tmp_path / "sub" / "notes.txt").write_text("ignored by --glob\n")
    assert uuids(scan(str(gz))) == uuids(baseline)
    assert uuids(scan("-", stdin=AUDITBEAT.read_bytes())) == uuids(baseline)
    assert uuids(scan("-", stdin=gz.read_bytes())) == uuids(baseline)
    res = scan("--glob", "*.gz", str(tmp_path))
    assert uuids(res) == uuids(baseline) and "1 input(s)" in res.err


def test_raw_audit_log_is_detected(baseline: Any) -> None:
    res = scan(str(AUDIT_LOG))
    assert res.code == 0
    args = [get_values(a, "process.args") for a in res.alerts()]
    assert ["cat", "/root/.aws/credentials"] in args


def test_index_patterns_are_applied_as_kibana_does(tmp_path: Path) -> None:
    response = orjson.loads(SEARCH.read_bytes())
    base = len(scan(str(SEARCH)).alerts())
    for hit in response["hits"]["hits"]:
        hit["_index"] = "winlogbeat-2026.12.01"
    other = tmp_path / "other.json"
    other.write_bytes(orjson.dumps(response))
    assert scan(str(other)).alerts() == []
    assert len(scan("--all-indices", str(other)).alerts()) == base


def test_rescanning_does_not_duplicate_alerts_in_the_store(tmp_path: Path) -> None:
    db = tmp_path / "alerts.db"
    first = run_cli("scan", "--db", str(db), "--format", "ndjson", str(AUDITBEAT))
    second = run_cli("scan", "--db", str(db), "--format", "ndjson", str(AUDITBEAT))
    n = len(first.alerts())
    assert f"{n} new in store, 0 already stored" in first.err
    assert f"0 new in store, {n} already stored" in second.err
    listed = run_cli("alerts", "--db", str(db), "list", "--format", "ndjson", "--limit", "1000")
    assert len(listed.alerts()) == n


def test_alerts_show_and_ack(tmp_path: Path) -> None:
    db = tmp_path / "alerts.db"
    res = run_cli("scan", "--db", str(db), "--format", "ndjson", str(AUDIT_LOG))
    uuid = res.alerts()[0]["kibana.alert.uuid"]
    shown = run_cli("alerts", "--db", str(db), "show", uuid[:12])
    assert shown.code == 0 and "why it matched" in shown.out and "process.args" in shown.out
    assert run_cli("alerts", "--db", str(db), "ack", uuid, "--status", "closed").code == 0
    closed = run_cli("alerts", "--db", str(db), "list", "--status", "closed", "--format", "ndjson")
    assert [a["kibana.alert.uuid"] for a in closed.alerts()] == [uuid]
    missing = run_cli("alerts", "--db", str(db), "show", "0" * 64)
    assert missing.code == 2 and "no alert" in missing.err


def test_query_hunting_and_exit_codes(tmp_path: Path) -> None:
    res = scan("--query", "process.name:base64", str(AUDITBEAT))
    assert res.code == 0 and all(get_values(a, "process.name") == ["base64"] for a in res.alerts())
    none = scan("--query", "process.name:does-not-exist", str(AUDITBEAT))
    assert none.code == 1 and none.out == ""
    bad = scan("--query", "process.name:(cat", str(AUDITBEAT))
    assert bad.code == 2 and "^" in bad.err and "Traceback" not in bad.err
    missing = scan(str(tmp_path / "nope.ndjson"), str(AUDITBEAT))
    # A missing input does not stop the others, and the exit status says the scan is partial.
    assert missing.code == 3 and "nope.ndjson: no such file" in missing.err
    assert missing.alerts(), "the other input is still evaluated"


def test_table_output_shows_the_triage_columns() -> None:
    res = run_cli("scan", "--no-store", "--format", "table", str(AUDIT_LOG))
    assert res.code == 0
    # Not a terminal: the wide table (160 columns) adds the event time, the parent and the id.
    for col in ("prio", "time", "host", "user", "process", "matched", "reason", "parent", "id"):
        assert col in res.out
    assert "/root/.aws/credentials" in res.out


def test_bulk_file_is_loadable_ndjson(tmp_path: Path) -> None:
    bulk = tmp_path / "alerts.bulk"
    res = scan("--bulk", str(bulk), str(AUDIT_LOG))
    lines = bulk.read_bytes().splitlines()
    assert len(lines) == 2 * len(res.alerts())
    action = orjson.loads(lines[0])
    assert action["create"]["_index"] == ".alerts-security.alerts-default"
    assert action["create"]["_id"] == orjson.loads(lines[1])["kibana.alert.uuid"]


def test_real_console_script_with_default_store(tmp_path: Path) -> None:
    exe = shutil.which("credwatch", path=os.path.dirname(sys.executable))
    assert exe, "the console script is installed"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    proc = subprocess.run([exe, "scan", "--format", "ndjson", str(AUDIT_LOG)], env=env,
                          capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "credwatch" / "alerts.db").exists()
    assert len(proc.stdout.splitlines()) >= 1
