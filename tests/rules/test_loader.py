"""Loading by reference, file and folder; unsupported rules are named, never silently skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomli_w

from credwatch.errors import RuleLoadError
from credwatch.rules import default_rule, load_file, load_folder, load_paths, load_rule
from credwatch.rules.toml_format import dumps_toml

BASE = {"rule_id": "r-1", "name": "Rule one", "description": "d", "type": "query",
        "language": "kuery", "query": "host.name:x", "severity": "low", "risk_score": 21}


def write_rule(path: Path, **changes: object) -> Path:
    rule = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    path.write_text(tomli_w.dumps({"metadata": {"maturity": "production"}, "rule": rule}))
    return path


@pytest.mark.parametrize("rule_type", ["eql", "esql", "threshold", "new_terms",
                                       "machine_learning", "threat_match"])
def test_unsupported_types_name_type_and_file(tmp_path: Path, rule_type: str) -> None:
    path = write_rule(tmp_path / f"{rule_type}.toml", type=rule_type)
    with pytest.raises(RuleLoadError) as info:
        load_file(path)
    text = info.value.render()
    assert f"unsupported rule type {rule_type!r}" in text
    assert str(path) in text and info.value.field == "rule.type"


def test_unknown_type_and_lucene_language(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError, match=r"unknown rule type 'sigma'"):
        load_file(write_rule(tmp_path / "a.toml", type="sigma"))
    with pytest.raises(RuleLoadError) as info:
        load_file(write_rule(tmp_path / "b.toml", language="lucene"))
    assert "unsupported query language 'lucene'" in str(info.value)
    assert info.value.field == "rule.language" and str(tmp_path / "b.toml") in str(info.value)


def test_bad_query_shows_kql_line_column_and_caret(tmp_path: Path) -> None:
    path = write_rule(tmp_path / "q.toml", query="host.name:x and\n  process.name:(cat or")
    with pytest.raises(RuleLoadError) as info:
        load_file(path)
    err = info.value
    assert err.field == "rule.query" and err.path == str(path)
    assert "invalid KQL at query line 2, column" in err.message
    assert err.detail is not None and err.detail.splitlines()[-1].strip() == "^"
    assert "^" in err.render() and "process.name:(cat or" in err.render()


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"interval": "5 minutes"}, "rule.interval", "invalid duration"),
    ({"interval": "0m"}, "rule.interval", "greater than zero"),
    ({"from": "yesterday"}, "rule.from", "relative to 'now'"),
    ({"from": "now-1x"}, "rule.from", "invalid date math"),
    ({"from": "now+5m"}, "rule.from", "must be earlier than 'to'"),
])
def test_schedule_errors_name_the_field(tmp_path: Path, changes: dict[str, object], field: str,
                                        words: str) -> None:
    with pytest.raises(RuleLoadError) as info:
        load_file(write_rule(tmp_path / "s.toml", **changes))
    assert info.value.field == field and words in str(info.value)


def test_folder_reports_every_skipped_file(tmp_path: Path) -> None:
    write_rule(tmp_path / "good.toml")
    (tmp_path / "sub").mkdir()
    write_rule(tmp_path / "sub" / "eql.toml", type="eql", rule_id="r-eql")
    (tmp_path / "README.md").write_text("# my rules\n")
    (tmp_path / "broken.toml").write_text("[rule\n")
    export = [
        {**BASE, "rule_id": "r-2", "name": "Two"},
        {**BASE, "rule_id": "r-3", "name": "Three", "type": "threshold"},
        {"exported_count": 2, "missing_rules": []},
    ]
    (tmp_path / "export.ndjson").write_text("".join(json.dumps(x) + "\n" for x in export))
    (tmp_path / "dup.toml").write_text((tmp_path / "good.toml").read_text())

    result = load_folder(tmp_path)
    assert sorted(r.rule_id for r in result.rules) == ["r-1", "r-2"]
    skipped = {Path(s.path.split(":")[0]).name + (":" + s.path.split(":")[1]
               if s.path.count(":") else ""): s.reason for s in result.skipped}
    assert "README.md" in skipped and "not a rule file" in skipped["README.md"]
    assert "not valid TOML" in skipped["broken.toml"]
    assert "unsupported rule type 'eql'" in skipped["eql.toml"]
    assert "unsupported rule type 'threshold'" in skipped["export.ndjson:2"]
    assert any("duplicate rule_id r-1" in reason for reason in skipped.values())
    assert len(result.skipped) == 5


def test_load_rule_by_id_name_path_and_default(tmp_path: Path) -> None:
    seed = default_rule()
    assert load_rule(None) == seed
    assert load_rule(seed.rule_id) == seed
    assert load_rule(seed.name.upper()) == seed
    path = tmp_path / "copy.toml"
    path.write_text(dumps_toml(seed))
    assert load_rule(str(path)) == seed
    with pytest.raises(RuleLoadError, match="no such rule"):
        load_rule("no-such-rule")
    result = load_paths([path, tmp_path])
    assert [r.rule_id for r in result.rules] == [seed.rule_id]
    assert "duplicate rule_id" in result.skipped[0].reason


def test_json_file_with_a_list_of_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([BASE, {**BASE, "rule_id": "r-9"}]))
    assert [r.rule_id for r in load_file(path)] == ["r-1", "r-9"]


def test_adhoc_rule_for_query_hunting() -> None:
    from credwatch.rules import adhoc_rule

    a = adhoc_rule("process.name:cat")
    assert a == adhoc_rule("process.name:cat") and a.rule_id != adhoc_rule("process.name:ls").rule_id
    assert (a.type, a.language, a.interval, a.from_) == ("query", "kuery", "5m", "now-6m")
    with pytest.raises(RuleLoadError) as info:
        adhoc_rule("process.name:(cat")
    assert info.value.field == "query" and info.value.path == "<query>"
