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
    res = run_cli("scan", "--no-store", "--engine", "spark", str(EXAMPLES / "auditd"))
    assert res.code == 2 and "not supported by --engine spark" in res.err and "Traceback" not in res.err
    assert "credwatch convert" in res.err


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for k, v in value.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
    return out


def test_spark_over_ndjson_nested_and_flat_gives_the_python_alerts(tmp_path: Path) -> None:
    """NDJSON read by Spark (scalars as their JSON text): same alerts, uuids, file:line as python."""
    ecs = EXAMPLES / "ecs"
    lines = [json.loads(x) for f in sorted(ecs.glob("*.ndjson")) for x in f.read_text().splitlines()
             if x.strip()]
    flat = tmp_path / "flat.ndjson"
    # A blank line and a number where others have text: line numbers and keyword text still agree.
    flat.write_text("\n" + "".join(json.dumps(_flat(e)) + "\n" for e in lines), encoding="utf-8")
    for inputs in ([str(p) for p in sorted(ecs.glob("*.ndjson"))], [str(flat)]):
        py = run_cli("scan", "--no-store", "--format", "ndjson", *inputs)
        sp = run_cli("scan", "--no-store", "--format", "ndjson", "--engine", "spark",
                     "--spark-master", "local[2]", *inputs)
        assert sp.code == py.code == 0, sp.err
        assert _by_uuid(sp.alerts()) == _by_uuid(py.alerts()) and len(py.alerts()) > 10
        assert py.err.split("events read")[0].split()[-1] == sp.err.split("events read")[0].split()[-1]


def test_missing_pyspark_names_the_install_command(parquet: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # what `import pyspark.sql` sees when absent
    res = run_cli("scan", "--no-store", "--engine", "spark", str(parquet))
    assert res.code == 2 and "pip install 'credwatch[spark]'" in res.err


def test_the_packaged_job_runs_run_too(parquet: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """`spark_job.py run ...` is `credwatch run --engine spark ...` (one tick here)."""
    from credwatch.cli import spark_job

    code = spark_job.run(["run", "--once", "--now", "2026-12-01T12:05:00Z", "--db", str(tmp_path / "a.db"),
                          "--format", "ndjson", "--spark-master", "local[2]", str(parquet)])
    err = capsys.readouterr().err
    assert code in (0, 1), err
    assert "(spark: 1 file(s) read" in err and "execution at 2026-12-01T12:05:00.000Z" in err
