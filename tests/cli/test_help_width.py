"""Every --help fits the terminal it is printed on (a newcomer's first screen)."""

from __future__ import annotations

import pytest

from .helpers import run_cli
from .test_help import COMMANDS


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "credwatch")
def test_help_fits_the_terminal(command: tuple[str, ...], columns: int,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    # argparse reads the width from the process environment (shutil.get_terminal_size).
    monkeypatch.setenv("COLUMNS", str(columns))
    res = run_cli(*command, "--help")
    assert res.code == 0
    wide = [line for line in res.out.splitlines() if len(line) > columns]
    assert not wide, "\n".join(wide)


def test_a_folded_example_stays_one_shell_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    lines = run_cli("watch", "--help").out.splitlines()
    i = next(n for n, line in enumerate(lines) if "process.ndjson" in line)
    assert lines[i].endswith(" \\") and lines[i + 1].startswith("      ")
    assert "--from" in lines[i] + lines[i + 1] and "beginning" in lines[i] + lines[i + 1]
