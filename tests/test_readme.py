"""The README's runnable examples work, and its test command matches .ci/run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# ```sh blocks are runnable examples; ```text blocks are illustrations.
SH_BLOCKS = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
EXAMPLES = [line.strip() for block in SH_BLOCKS for line in block.splitlines()
            if line.strip().startswith("credwatch ")]


def test_quick_start_has_the_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2
    assert "credwatch scan src/credwatch/examples/" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert blocks[1].strip() in ci


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("command", EXAMPLES)
def test_readme_example_runs(command: str, tmp_path: Path) -> None:
    bindir = os.path.dirname(sys.executable)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "PATH": f"{bindir}:{os.environ['PATH']}"}
    # Seed the store so `alerts` examples have something to list.
    subprocess.run([f"{bindir}/credwatch", "scan", "--format", "ndjson",
                    "src/credwatch/examples/auditd/audit.log"], cwd=ROOT, env=env,
                   capture_output=True, check=False)
    proc = subprocess.run(shlex.split(command), cwd=ROOT, env=env, capture_output=True,
                          check=False, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr.decode()
    assert b"Traceback" not in proc.stderr
