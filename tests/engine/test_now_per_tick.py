"""`now` in a query is the time of the run tick that evaluates it, not of start-up."""

from __future__ import annotations

import io
import json
import random
from datetime import timedelta
from pathlib import Path

from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.main import program
from tests.engine.daygen import DAY, iso, make_event, write_ndjson

#: Start of the run (T). An ad-hoc --query rule runs every 5m over [now-6m, now].
T = DAY.replace(hour=10)
CAT = ("cat", "/usr/bin/cat", ["cat", "/root/.aws/credentials"])


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(b""), stdout=out, stderr=err, environ={"HOME": "/nonexistent"},
              stdout_isatty=False, stderr_isatty=False)
    return program(list(argv), env), out.getvalue(), err.getvalue()


def test_run_started_at_t_evaluates_the_t_plus_10m_tick_with_that_now(tmp_path: Path) -> None:
    rng = random.Random(7)
    # Both events fall only in the window of the tick at T+10m ([T+4m, T+10m]).
    late = make_event(1, T + timedelta(minutes=9, seconds=30), positive=True, rng=rng,
                      ingested=None, spec=CAT)
    early = make_event(2, T + timedelta(minutes=6), positive=True, rng=rng, ingested=None,
                       spec=CAT)
    src = write_ndjson(tmp_path / "e.ndjson", [early, late])
    code, out, err = _cli(
        "run", "--now", iso(T), "--until", iso(T + timedelta(minutes=10)),
        "--query", "process.name:cat and @timestamp >= now-1m",
        "--db", str(tmp_path / "a.db"), "--format", "ndjson", str(src))
    assert code == ExitStatus.OK, err
    got = [json.loads(line) for line in out.splitlines() if line.strip()]
    # now = T+10m: now-1m = T+9m keeps the late event only. A `now` frozen at start-up (T)
    # would let the early one through too; the wall clock (today) would drop both.
    assert [a["kibana.alert.original_time"] for a in got] == [late["@timestamp"]]
    assert got[0]["@timestamp"] == iso(T + timedelta(minutes=10))
