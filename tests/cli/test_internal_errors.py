"""An unexpected failure is one line and exit 70, never a traceback and never exit 1."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from credwatch.cli import main as cli_main
from credwatch.cli.env import Env, ExitStatus


def _env() -> tuple[Env, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Env(stdin=io.BytesIO(), stdout=out, stderr=err, environ={}), out, err


def _boom(*_args: object) -> int:
    raise ZeroDivisionError("boom in a command")


@pytest.mark.parametrize("flag_first", [True, False])
def test_unexpected_exception_is_one_line_and_exit_70(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag_first: bool
) -> None:
    from credwatch.cli.commands import rules

    # A real command whose library call fails in a way nobody planned for.
    monkeypatch.setattr(rules, "run_list", _boom)
    env, _, err = _env()
    code = cli_main.program(["rules", "list"], env)
    assert code == ExitStatus.INTERNAL
    assert "Traceback" not in err.getvalue()
    assert "internal error: ZeroDivisionError: boom in a command" in err.getvalue()
    assert "--debug" in err.getvalue()

    env, _, err = _env()
    argv = ["--debug", "rules", "list"] if flag_first else ["rules", "list", "--debug"]
    code = cli_main.program(argv, env)
    assert code == ExitStatus.INTERNAL
    assert "Traceback (most recent call last)" in err.getvalue()


def test_exit_codes_are_distinct() -> None:
    codes = [int(s) for s in ExitStatus]
    assert len(codes) == len(set(codes))
    assert int(ExitStatus.NO_ALERTS) == 1 and int(ExitStatus.INTERNAL) != 1 and int(ExitStatus.PARTIAL) != 1
