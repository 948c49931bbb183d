"""credwatch quality, and the hardened rule's acceptance bars on the real audited corpus (issue #16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from credwatch.backends.python import compile_query
from credwatch.engine.quality import (
    Counts,
    Label,
    all_selectors,
    load_labels,
    measure,
    parse_label,
    record_selectors,
    scan_corpus,
)
from credwatch.engine.scan import CompiledRule, Scanner
from credwatch.errors import SourceError
from credwatch.normalize.paths import add_derived_fields
from credwatch.rules import DEFAULT_RULE_ID, load_rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records
from credwatch.sources.record import Record
from tests.cli.helpers import run_cli

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "quality" / "host_execs"
LOG, LABELS = f"{CORPUS}.log", f"{CORPUS}.labels.jsonl"
HARDENED = "credwatch-credential-path-hardened"
#: The acceptance bars of issue #16.
MIN_EVASION_RECALL = 0.95


def _records() -> list[Record]:
    diag = Diagnostics()
    records = list(read_records([LOG], diag))
    assert not diag.failed
    return records


@pytest.fixture(scope="module")
def corpus() -> tuple[list[Label], list[Record]]:
    return load_labels(LABELS), _records()


@pytest.fixture(scope="module")
def verdicts(corpus: tuple[list[Label], list[Record]]) -> dict[str, set[str]]:
    """Per rule: the names of the labelled cases it flags."""
    labels, records = corpus
    crules = [CompiledRule.compile(load_rule(r)) for r in (HARDENED, DEFAULT_RULE_ID)]
    seen, flagged = scan_corpus(crules, records, all_selectors(labels))
    reports = [measure(c, labels, seen, f) for c, f in zip(crules, flagged, strict=True)]
    for report in reports:
        assert not report.unresolved, [lb.name for lb in report.unresolved]
    return {r.rule_id: {lb.name for lb in r.detected} for r in reports}


def test_corpus_is_big_enough(corpus: tuple[list[Label], list[Record]]) -> None:
    labels, _ = corpus
    evasions = [lb for lb in labels if lb.expected and lb.group != "plain"]
    benign = [lb for lb in labels if not lb.expected]
    assert len(evasions) >= 100 and len(benign) >= 100
    groups = {lb.group for lb in evasions}
    assert {"spelling", "embedded", "tools", "files"} <= groups


def test_hardened_catches_evasions_without_false_positives(
        corpus: tuple[list[Label], list[Record]], verdicts: dict[str, set[str]]) -> None:
    labels, _ = corpus
    flagged = verdicts[HARDENED]
    evasions = [lb for lb in labels if lb.expected and lb.group != "plain"]
    caught = [lb for lb in evasions if lb.name in flagged]
    assert len(caught) / len(evasions) >= MIN_EVASION_RECALL, \
        [f"{lb.name}: {lb.command}" for lb in evasions if lb.name not in flagged]
    false_positives = [f"{lb.name}: {lb.command}" for lb in labels if not lb.expected and lb.name in flagged]
    assert false_positives == []


def test_hardened_catches_every_read_the_faithful_rule_catches(
        corpus: tuple[list[Label], list[Record]], verdicts: dict[str, set[str]]) -> None:
    labels, _ = corpus
    positives = {lb.name for lb in labels if lb.expected}
    faithful_hits = verdicts[DEFAULT_RULE_ID] & positives
    assert faithful_hits, "the faithful rule should still see the plain reads"
    assert faithful_hits <= verdicts[HARDENED], faithful_hits - verdicts[HARDENED]


def test_faithful_verdicts_do_not_depend_on_the_derived_fields(
        corpus: tuple[list[Label], list[Record]]) -> None:
    _, records = corpus
    faithful = load_rule(DEFAULT_RULE_ID)
    plain = compile_query(faithful.query)
    scanner = Scanner([CompiledRule.compile(faithful)], all_indices=True, triage=False)
    for rec in records:
        expected = plain.matches(rec.event)
        assert scanner.would_alert(rec) is expected
        assert plain.matches(add_derived_fields(dict(rec.event))) is expected


def test_quality_command_prints_the_figures_and_holds_the_bars() -> None:
    res = run_cli("quality", LOG, "--labels", LABELS, "--rule", HARDENED,
                  "--min-recall", str(MIN_EVASION_RECALL), "--min-precision", "1")
    assert res.code == 0, res.out + res.err
    assert "overall" in res.out and "precision" in res.out and "BELOW BAR" not in res.out
    res = run_cli("quality", LOG, "--labels", LABELS, "--rule", HARDENED, "--format", "json")
    data = json.loads(res.out)
    assert data["rule_id"] == HARDENED and data["overall"]["fp"] == 0
    assert data["overall"]["recall"] >= MIN_EVASION_RECALL and data["false_positives"] == []
    assert set(data["groups"]) >= {"spelling", "embedded", "tools", "files", "metadata"}


def test_quality_command_fails_below_a_bar() -> None:
    res = run_cli("quality", LOG, "--labels", LABELS, "--min-recall", "0.95")  # the faithful rule
    assert res.code == 1
    assert "BELOW BAR: recall" in res.out and "missed:" in res.out and "false positives:" in res.out
    assert "cd /root/.aws && cat credentials" in res.out  # a miss is listed with its command


def test_unresolved_labels_make_the_run_partial(tmp_path: Path) -> None:
    labels = tmp_path / "l.jsonl"
    labels.write_text(Path(LABELS).read_text() + json.dumps(
        {"selector": "audit:cwq-node:1.000:1", "expected": True, "case": "ghost"}) + "\n")
    res = run_cli("quality", LOG, "--labels", str(labels), "--rule", HARDENED, "--format", "json")
    assert res.code == 3
    assert [u["case"] for u in json.loads(res.out)["unresolved"]] == ["ghost"]


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "not a JSON object"),
    ('["a"]', "not a JSON object"),
    ('{"selector": "id:1"}', "expected must be true or false"),
    ('{"expected": true}', "no event selector"),
    ('{"selector": "pid:1", "expected": true}', "unknown selector"),
    ('{"selectors": "id:1", "expected": true}', "selectors must be a list"),
    ('{"selector": 1.5, "expected": true}', "selector must be a string"),
    ('{"selector": "' + "x" * 600 + '", "expected": true}', "1 to 512 characters"),
    ("[" * 60_000, "not a JSON object"),
    ("[" * 70_000, "line longer than"),
])
def test_bad_labels_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    labels = tmp_path / "bad.jsonl"
    labels.write_text('{"event.id": "a", "expected": true}\n' + line + "\n")
    with pytest.raises(SourceError, match=message) as err:
        load_labels(labels)
    assert err.value.line == 2
    res = run_cli("quality", LOG, "--labels", str(labels))
    assert res.code == 2 and f"{labels}:2" in res.err and "Traceback" not in res.err


def test_selectors_by_event_id_and_line_over_ndjson(tmp_path: Path) -> None:
    events = [
        {"event": {"id": "e1", "category": ["process"], "action": "exec"}, "host": {"os": {"type": "linux"}},
         "process": {"name": "sh", "args": ["sh", "-c", "cat /etc/shadow"], "working_directory": "/"}},
        {"event": {"id": "e2", "category": ["process"], "action": "exec"}, "host": {"os": {"type": "linux"}},
         "process": {"name": "ls", "executable": "/usr/bin/ls", "args": ["ls", "-l", "/etc/shadow"]}},
        {"event": {"category": ["process"], "action": "exec"}, "host": {"os": {"type": "linux"}},
         "process": {"name": "tac", "args": ["tac", "/etc/hostname"]}},
    ]
    data = tmp_path / "e.ndjson"
    data.write_text("".join(json.dumps(e) + "\n" for e in events))
    labels = tmp_path / "l.jsonl"
    labels.write_text("\n".join(json.dumps(x) for x in [
        {"event.id": "e1", "expected": True, "group": "evasion"},
        {"event.id": "e2", "expected": False, "group": "benign"},
        {"source.line": 3, "expected": True, "group": "evasion"},  # a wrong label: counted as a miss
    ]) + "\n")
    res = run_cli("quality", str(data), "--labels", str(labels), "--rule", HARDENED, "--format", "json")
    out = json.loads(res.out)
    assert out["overall"] == {"tp": 1, "fp": 0, "fn": 1, "tn": 1, "precision": 1.0, "recall": 0.5}
    assert out["groups"]["benign"]["tn"] == 1 and [m["labels_line"] for m in out["missed"]] == [3]
    assert res.code == 0


def test_record_selectors_of_an_audit_event(corpus: tuple[list[Label], list[Record]]) -> None:
    _, records = corpus
    sels = record_selectors(records[0])
    assert any(s.startswith("audit:cwq-node:") for s in sels)
    assert f"line:{records[0].line}" in sels


def test_counts() -> None:
    c = Counts()
    assert c.precision is None and c.recall is None
    for expected, predicted in [(True, True), (True, False), (False, True), (False, False), (True, True)]:
        c.add(expected, predicted)
    assert (c.tp, c.fn, c.fp, c.tn) == (2, 1, 1, 1)
    assert c.precision == pytest.approx(2 / 3) and c.recall == pytest.approx(2 / 3)
    assert parse_label('{"event.id": 7, "expected": false}').selectors == ("id:7",)
