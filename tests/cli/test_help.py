"""Every command and sub-command has --help, and every command has a README example."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from credwatch.cli.main import build_parser

from .helpers import run_cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _commands() -> list[tuple[str, ...]]:
    parser = build_parser()
    out: list[tuple[str, ...]] = []

    def walk(p: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    out.append((*prefix, name))
                    walk(sub, (*prefix, name))

    walk(parser, ())
    return out


COMMANDS = _commands()


def test_expected_commands_exist() -> None:
    top = {c[0] for c in COMMANDS}
    assert {"scan", "alerts", "rules", "setup"} <= top


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command: tuple[str, ...]) -> None:
    res = run_cli(*command, "--help")
    assert res.code == 0, res.err
    assert res.out.startswith("usage: credwatch " + " ".join(command))


def test_top_level_help_lists_exit_codes() -> None:
    res = run_cli("--help")
    assert res.code == 0 and "exit status" in res.out


@pytest.mark.parametrize("name", sorted({c[0] for c in COMMANDS}))
def test_every_command_has_a_readme_example(name: str) -> None:
    assert f"credwatch {name}" in README


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    res = run_cli("frobnicate")
    assert res.code == 2 and "invalid choice" in res.err and "Traceback" not in res.err
