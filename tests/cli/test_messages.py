"""Messages a new user meets: a KQL error once with its caret, lint warnings, short id prefixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import run_cli

AUDIT_LOG = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples" / "auditd" / "audit.log"


@pytest.mark.parametrize("command", [("scan", "--no-store"), ("run", "--once")])
def test_a_kql_error_is_printed_once_with_line_column_and_caret(command: tuple[str, ...],
                                                                tmp_path: Path) -> None:
    res = run_cli(*command, "--db", str(tmp_path / "a.db"), "--query", "process.name:(cat",
                  str(AUDIT_LOG))
    assert res.code == 2
    assert res.err.count('Expected ")"') == 1, res.err
    assert "line 1, column 18" in res.err
    assert "process.name:(cat\n                 ^" in res.err


@pytest.mark.parametrize(("query", "code", "words"), [
    ("process.name:cat and", "KQL008", "dangling 'and'"),
    ("process.name:(cat or)", "KQL008", "dangling 'or'"),
    ("process.name:process.executable", "KQL009", "looks like a field name"),
])
def test_likely_mistakes_kibana_accepts_get_a_lint_warning(query: str, code: str,
                                                           words: str) -> None:
    res = run_cli("scan", "--no-store", "--format", "ndjson", "--query", query, str(AUDIT_LOG))
    assert res.code == 1  # evaluated as Kibana would: it matches nothing here
    assert f"warning[{code}]" in res.err and words in res.err
    assert "^" in res.err


def test_a_sound_query_gets_no_warning() -> None:
    res = run_cli("scan", "--no-store", "--format", "ndjson", "--query",
                  "process.name:cat and process.args:*/.aws/credentials", str(AUDIT_LOG))
    assert res.code == 0 and "warning" not in res.err


@pytest.mark.parametrize("argv", [("alerts", "show"), ("alerts", "ack"), ("exceptions", "add")])
def test_an_alert_id_prefix_shorter_than_8_characters_says_so(argv: tuple[str, ...],
                                                              tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    run_cli("scan", "--db", db, "--format", "ndjson", str(AUDIT_LOG))
    extra = ("--file", str(tmp_path / "t.ndjson")) if argv[0] == "exceptions" else ()
    res = run_cli(argv[0], "--db", db, argv[1], "9426f9", *extra)
    assert res.code == 2
    assert "alert id prefix '9426f9' is 6 character(s) long; give at least 8" in res.err


def test_exceptions_list_shows_names_from_a_file_escaped(tmp_path: Path) -> None:
    export = tmp_path / "evil.ndjson"
    export.write_text('{"list_id":"evil\\u001b[2Jlist","name":"n\\u001b]0;x\\u0007",'
                      '"type":"detection","namespace_type":"single"}\n')
    res = run_cli("exceptions", "list", str(export))
    assert res.code == 0, res.err
    assert "\x1b" not in res.out and "\x07" not in res.out
    assert "evil\\x1b[2Jlist" in res.out
