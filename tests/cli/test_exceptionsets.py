"""A hunt loads the exception engine only when some list can apply, and says the same either way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from credwatch.cli.exceptionsets import exceptions_apply
from credwatch.engine.scan import compile_rules
from credwatch.rules.builtin import default_rule
from credwatch.rules.model import ExceptionListRef
from credwatch.rules.toml_format import dumps_toml

from .helpers import run_cli, write_ndjson

ENDPOINT = ExceptionListRef(id="endpoint_list", list_id="endpoint_list", type="endpoint",
                            namespace_type="agnostic")
MISSING = ExceptionListRef(id="x", list_id="not-imported")
EVENT = {"@timestamp": "2026-12-01T00:00:00Z", "host": {"os": {"type": "linux"}},
         "event": {"category": ["process"], "action": "exec", "type": ["start"]},
         "process": {"name": "cat", "args": ["cat", "/etc/shadow"], "pid": 7}}


@pytest.mark.parametrize(("refs", "files", "value_lists", "expected"), [
    ((), (), (), False),
    ((ENDPOINT,), (), (), False),  # enforced by Elastic Defend on the host, not by rules
    ((MISSING,), (), (), True),
    ((), ("tuning.ndjson",), (), True),
    ((), (), ("values/",), True),
])
def test_exceptions_apply(refs: tuple[ExceptionListRef, ...], files: tuple[str, ...],
                          value_lists: tuple[str, ...], expected: bool) -> None:
    rules = compile_rules([dataclasses.replace(default_rule(), exceptions_list=refs)])
    assert exceptions_apply(rules, files=files, value_lists=value_lists) is expected


def test_a_missing_referenced_list_is_still_reported_without_a_store(tmp_path: Path) -> None:
    rule = tmp_path / "rule.toml"
    rule.write_text(dumps_toml(dataclasses.replace(default_rule(),
                                                   exceptions_list=(MISSING, ENDPOINT))))
    events = write_ndjson(tmp_path / "e.ndjson", [EVENT])
    res = run_cli("scan", "--no-store", "--format", "ndjson", "--rule", str(rule), str(events))
    assert res.code == 0 and len(res.alerts()) == 1
    assert "exception list 'not-imported' (single) referenced by the rule was not found" in res.err
    assert "endpoint_list" not in res.err
