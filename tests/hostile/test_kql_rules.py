"""Hostile queries, rule files and exception lists (issue #12, items 6 and 7).

Each case goes through the real command line in-process: deep nesting must
give a clear error with its position and exit 2, fast, never a RecursionError
or a traceback; long arguments against many-star patterns must cost time
linear in the argument.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from credwatch.backends.duckdb import show_sql
from credwatch.backends.esdsl import compile_esdsl
from credwatch.backends.prefilter import derive_literals
from credwatch.backends.python import compile_query
from credwatch.cli.commands.compile import assumed_schema
from credwatch.cli.env import ExitStatus
from credwatch.kql.lint import lint
from credwatch.kql.parser import MAX_NESTING, parse
from credwatch.kql.printer import to_kql
from credwatch.rules.loader import default_rule
from credwatch.rules.toml_format import dumps_toml
from tests.cli.helpers import FIXED_NOW, run_cli

DEEP = 100_000


def _elapsed(func: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = func()
    return out, time.perf_counter() - start


def _event(args: list[str], **extra: Any) -> dict[str, Any]:
    return {"@timestamp": FIXED_NOW.isoformat().replace("+00:00", "Z"),
            "event": {"category": ["process"], "type": ["start"], "action": "exec"},
            "host": {"os": {"type": "linux"}, "name": "n1"},
            "process": {"name": args[0], "args": args, "executable": f"/usr/bin/{args[0]}"},
            **extra}


# ------------------------------------------------------------------------ deep nesting

def test_scan_query_with_100k_parentheses_is_a_caret_error(tmp_path: Path) -> None:
    events = tmp_path / "e.ndjson"
    events.write_text(json.dumps(_event(["cat", "/etc/shadow"])) + "\n")
    result, seconds = _elapsed(lambda: run_cli("scan", "--query", "(" * DEEP + "a:b",
                                               "--no-store", str(events)))
    assert result.code == ExitStatus.ERROR
    assert "nested too deeply" in result.err and "Traceback" not in result.err
    assert f"line 1, column {MAX_NESTING + 1}" in result.err
    assert result.err.splitlines()[-1] == " " * MAX_NESTING + "^"
    assert seconds < 1


def test_rules_lint_of_a_toml_rule_with_100k_parentheses(tmp_path: Path) -> None:
    from dataclasses import replace

    rule = replace(default_rule(), query="(" * DEEP + "process.name:cat" + ")" * DEEP)
    path = tmp_path / "deep.toml"
    path.write_text(dumps_toml(rule))
    result, seconds = _elapsed(lambda: run_cli("rules", "lint", str(path)))
    assert result.code == ExitStatus.ERROR
    assert f"{path}:" in result.out + result.err
    assert "nested too deeply" in result.out + result.err
    assert "Traceback" not in result.out + result.err
    assert seconds < 1


@pytest.mark.parametrize("shape", ["array", "object"])
def test_rule_ndjson_nested_100k_deep_names_file_and_line(tmp_path: Path, shape: str) -> None:
    deep = ("[" * DEEP + "]" * DEEP) if shape == "array" else (
        '{"a":' * DEEP + "1" + "}" * DEEP)
    path = tmp_path / "rules.ndjson"
    path.write_text('{"exported_count":0}\n' + '{"rule_id":"x","meta":' + deep + "}\n")
    result = run_cli("rules", "lint", str(path))
    text = result.out + result.err
    assert result.code == ExitStatus.ERROR
    assert str(path) in text and "line 2" in text and "nested deeper than 100" in text
    assert "Traceback" not in text and "RecursionError" not in text


def test_deep_toml_inline_tables_and_arrays_are_rule_errors(tmp_path: Path) -> None:
    for name, value in (("arrays", "[" * DEEP + "]" * DEEP), ("tables", "{a=" * DEEP + "1"
                                                                        + "}" * DEEP)):
        path = tmp_path / f"{name}.toml"
        path.write_text(f'[rule]\nname = "x"\nextra = {value}\n')
        result = run_cli("rules", "lint", str(path))
        text = result.out + result.err
        assert result.code == ExitStatus.ERROR, text
        assert str(path) in text and "nested deeper than 100" in text
        assert "Traceback" not in text


def test_exception_ndjson_nested_100k_deep_names_file_and_line(tmp_path: Path) -> None:
    events = tmp_path / "e.ndjson"
    events.write_text(json.dumps(_event(["cat", "/etc/shadow"])) + "\n")
    exc = tmp_path / "exc.ndjson"
    exc.write_text('{"list_id":"l","type":"detection"}\n'
                   '{"list_id":"l","item_id":"i","entries":' + "[" * DEEP + "]" * DEEP + "}\n")
    result = run_cli("run", "--once", "--quiet", "--db",
                     str(tmp_path / "db.sqlite"), "--exceptions", str(exc), str(events))
    assert result.code == ExitStatus.ERROR, result.err
    assert f"{exc}:2: nested deeper than 100" in result.err
    assert "Traceback" not in result.err


_PASSES: dict[str, Callable[[Any], object]] = {
    "print": lambda a: parse(to_kql(a)) == a,
    "lint": lambda a: lint(to_kql(a)),
    "python": lambda a: (m := compile_query(a)).matches({"process": {"args": ["a"]}})
    or m.explain({"process": {"args": ["a"], "name": "a"}, "items": [{"name": "a"}]}),
    "esdsl": compile_esdsl,
    "prefilter": derive_literals,
    "duckdb": lambda a: show_sql(a, assumed_schema(a)),
}


def _deepest(kind: str) -> str:
    """The deepest accepted query of each shape (4 tree levels per brace, 3 per paren)."""
    q = "name:x" if kind == "braces" else "process.name:x" if kind == "parens" else "x"
    for _ in range(MAX_NESTING if kind != "parens" else MAX_NESTING // 2):
        if kind == "braces":
            q = f"name:a or name:b and not items:{{ {q} }}"
        elif kind == "parens":
            q = f"process.args:a or (process.name:b and not ({q}))"
        else:
            q = f"a or b and not ({q})"
    return q if kind != "values" else f"process.args:{q}"


@pytest.mark.parametrize("kind", ["braces", "parens", "values"])
@pytest.mark.parametrize("name", sorted(_PASSES))
def test_every_pass_survives_the_deepest_accepted_query(kind: str, name: str) -> None:
    """With 200 frames already in use, as a CLI command's stack would have."""
    query = _deepest(kind)
    ast = parse(query)
    with pytest.raises(Exception, match="nested too deeply"):
        parse("(" + query + ")" if kind != "braces" else f"items:{{ {query} }}")

    def at_depth(n: int) -> object:
        return _PASSES[name](ast) if n == 0 else at_depth(n - 1)

    assert sys.getrecursionlimit() >= 1000
    at_depth(200)


# ------------------------------------------------------------------------ linear matching

def _run_with_exception(tmp_path: Path, pattern: str, query: str,
                        arg: str) -> tuple[Any, float]:
    events = tmp_path / "e.ndjson"
    events.write_text(json.dumps(_event(["cat", arg])) + "\n")
    exc = tmp_path / "exc.ndjson"
    exc.write_text(json.dumps({"list_id": "l", "item_id": "i", "type": "simple",
                               "entries": [{"field": "process.args", "type": "wildcard",
                                            "operator": "included", "value": pattern}]}) + "\n")
    return _elapsed(lambda: run_cli("run", "--once", "--now", FIXED_NOW.isoformat(), "--quiet",
                                    "--format", "ndjson", "--db", str(tmp_path / "db.sqlite"),
                                    "--exceptions", str(exc), "--query", query, str(events)))


def test_one_megabyte_argument_against_20_star_exception_and_query(tmp_path: Path) -> None:
    """1 MB arguments vs a 20-star exception wildcard and a 20-star KQL wildcard.

    Both patterns match all but their end, so each is scanned over the whole
    argument; the old exception regex took 10 s on a 30-character argument.
    """
    arg = "a" * 1_000_000
    exception = "*a?a" * 19 + "*a?b*"  # never matches: the event is kept
    query = "process.args:" + "*a" * 19 + "*"  # matches after scanning the argument
    result, seconds = _run_with_exception(tmp_path, exception, query, arg)
    assert result.code == ExitStatus.OK, result.err
    assert len(result.alerts()) == 1
    assert seconds < 5, seconds
    # The same run where the exception does match: the alert is suppressed.
    second = tmp_path / "second"
    second.mkdir()
    result2, seconds2 = _run_with_exception(second, "*a?a" * 19 + "*", query, arg)
    assert result2.code == ExitStatus.NO_ALERTS, result2.err
    assert seconds2 < 5, seconds2
