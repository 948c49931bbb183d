"""``scan --engine spark`` (local mode, and once through spark-submit): the alerts of ``--engine python``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pyspark")
pytest.importorskip("pyarrow")

from tests.cli.helpers import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
JOB = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "cli" / "spark_job.py"


@pytest.fixture(scope="module")
def parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lake") / "ex.parquet"
    res = run_cli("convert", str(EXAMPLES), "--to", "parquet", str(out))
    assert res.code == 0, res.err
    return out


def _by_uuid(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["kibana.alert.uuid"]: a for a in alerts}


def test_spark_local_gives_the_alerts_of_the_originals(parquet: Path) -> None:
    original = run_cli("scan", "--no-store", "--format", "ndjson", str(EXAMPLES))
    spark = run_cli("scan", "--no-store", "--format", "ndjson", "--engine", "spark",
                    "--spark-master", "local[2]", str(parquet))
    assert spark.code == original.code == 0, spark.err
    assert len(original.alerts()) == 98
    # Same uuids and, with the CLI's fixed clock, the same documents.
    assert _by_uuid(spark.alerts()) == _by_uuid(original.alerts())
    assert "225 events read" in spark.err


def test_spark_submit_runs_the_packaged_job(parquet: Path, tmp_path: Path) -> None:
    out = tmp_path / "alerts.ndjson"
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(bindir / "spark-submit"), "--master", "local[2]", str(JOB), str(parquet),
         "--no-store", "--format", "ndjson", "--output", str(out)],
        env=env, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout.decode()[-2000:] + proc.stderr.decode()[-2000:]
    got = {json.loads(x)["kibana.alert.uuid"] for x in out.read_text().splitlines()}
    want = {a["kibana.alert.uuid"]
            for a in run_cli("scan", "--no-store", "--format", "ndjson", str(EXAMPLES)).alerts()}
    assert got == want and len(got) == 98


def test_spark_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    res = run_cli("scan", "--no-store", "--engine", "spark", str(EXAMPLES / "ecs" / "defend.ndjson"))
    assert res.code == 2 and "Parquet only for now" in res.err and "Traceback" not in res.err


def test_missing_pyspark_names_the_install_command(parquet: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # what `import pyspark.sql` sees when absent
    res = run_cli("scan", "--no-store", "--engine", "spark", str(parquet))
    assert res.code == 2 and "pip install 'credwatch[spark]'" in res.err
