"""Output formats cost nothing until used: the output layer loads no terminal library at import.

(run and watch import httpx for their sinks, which itself loads rich; scan does not.)
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest


@pytest.mark.parametrize("module", ["credwatch.cli.commands.scan", "credwatch.cli.common",
                                    "credwatch.cli.filters"])
def test_importing_loads_neither_rich_nor_the_linter(module: str) -> None:
    probe = (f"import {module}\nimport sys, orjson\n"
             "sys.stdout.buffer.write(orjson.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True).stdout
    loaded = set(orjson.loads(out))
    assert not {m for m in loaded if m == "rich" or m.startswith("rich.")}
    assert "credwatch.kql.lint" not in loaded
