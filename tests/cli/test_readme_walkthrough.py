"""A newcomer following the README on an 80-column terminal: nothing wider, no placeholder ids.

tests/test_readme.py runs every ```sh command with its output piped; here the
commands whose output is meant for a person run on a real pseudo-terminal of 80
columns, as a newcomer would see them.
"""

from __future__ import annotations

import os
import pty
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.text import Text

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SH_BLOCKS = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
COMMANDS = [line.strip() for block in SH_BLOCKS for line in block.splitlines()
            if line.strip().startswith("credwatch ")]
#: Output for programs, not for a person: one JSON document or line per alert, CSV, SQL.
MACHINE = re.compile(r"--format (ndjson|json|csv|timeline)|^credwatch compile|--output|-o |--bulk")
#: The quick start's scan (its block also installs), then every README command for a person.
HUMAN = ["credwatch scan src/credwatch/examples/", *(c for c in COMMANDS if not MACHINE.search(c))]
EXAMPLE_ALERTS = ROOT / "src" / "credwatch" / "examples" / "auditd" / "audit.log"


def on_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` with its stdout on an 80-column pseudo-terminal; (exit status, what it showed)."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                              stderr=subprocess.PIPE, check=False, timeout=300)
    finally:
        os.close(slave)
        reader.join(60)
        os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("xdg")
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "XDG_DATA_HOME": str(data), "COLUMNS": "80", "LINES": "40",
           "PATH": f"{bindir}:{os.environ['PATH']}", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    subprocess.run([f"{bindir}/credwatch", "scan", "--format", "ndjson", str(EXAMPLE_ALERTS)],
                   cwd=ROOT, env=env, capture_output=True, check=False)
    return env


def test_there_are_commands_for_a_person() -> None:
    assert len(HUMAN) >= 10


@pytest.mark.parametrize("command", HUMAN)
def test_readme_command_fits_an_80_column_terminal(command: str, seeded: dict[str, str]) -> None:
    code, shown = on_terminal(shlex.split(command), seeded)
    assert code in (0, 1), shown[-2000:]
    # The terminal turns each \n into \r\n; a bare \r would make rich drop the line.
    plain = Text.from_ansi(shown.replace("\r\n", "\n")).plain
    widths = [cell_len(line) for line in plain.splitlines()]
    assert max(widths, default=0) <= 80, shown


def test_readme_ids_are_real_alert_ids_of_the_bundled_examples() -> None:
    from .helpers import run_cli

    res = run_cli("scan", "--no-store", "--format", "ndjson", str(ROOT / "src" / "credwatch" / "examples"))
    ids = {a["kibana.alert.uuid"] for a in res.alerts()}
    # Rule ids are dashed uuids (5f0fff18-f340-...); alert ids are hex strings.
    text = re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", "", "\n".join(COMMANDS))
    quoted = set(re.findall(r"\b[0-9a-f]{8,64}\b", text))
    assert quoted, "the README shows alert ids"
    for text in quoted:
        assert any(uuid.startswith(text) for uuid in ids), f"{text} is not a bundled alert's id"
