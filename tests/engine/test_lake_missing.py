"""A missing engine (duckdb, pyspark, Java) is one clear line naming the install command, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.helpers import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
DEFEND = EXAMPLES / "ecs" / "defend.ndjson"
BINDIR = Path(sys.executable).parent


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", ["scan", "run"])
def test_missing_duckdb_names_the_install_command(command: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # what `import duckdb` sees when absent
    extra = ["--no-store"] if command == "scan" else ["--once", "--db", str(tmp_path / "a.db")]
    res = run_cli(command, *extra, "--engine", "duckdb", str(DEFEND))
    assert res.code == 2 and "pip install duckdb" in _one_line(res.err)


def test_missing_pyspark_names_the_install_command_for_run(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    (tmp_path / "in").mkdir()
    res = run_cli("run", "--once", "--db", str(tmp_path / "a.db"), "--engine", "spark", str(tmp_path / "in"))
    assert res.code == 2 and "pip install 'credwatch[spark]'" in _one_line(res.err)


@pytest.mark.parametrize("command", ["scan", "run"])
@pytest.mark.parametrize("java_home", ["/nonexistent/jdk", None])
def test_missing_java_is_one_line_naming_the_install(command: str, java_home: str | None,
                                                     tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    env = {"PATH": str(BINDIR), "HOME": str(tmp_path), "LC_ALL": "C.UTF-8"}  # no java on this PATH
    if java_home is not None:
        env["JAVA_HOME"] = java_home
    extra = ["--no-store"] if command == "scan" else ["--once", "--db", str(tmp_path / "a.db")]
    (tmp_path / "in").mkdir()
    proc = subprocess.run([str(BINDIR / "credwatch"), command, *extra, "--engine", "spark",
                           str(tmp_path / "in")],
                          env=env, capture_output=True, timeout=120, check=False, cwd=tmp_path)
    line = _one_line(proc.stderr.decode())
    assert proc.returncode == 2, line
    assert "needs Java" in line and "openjdk-17-jre-headless" in line
    assert (java_home or "JAVA_HOME is not set") in line
