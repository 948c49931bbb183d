"""Engine rows (issue #14): the seed rule over the same 1M events on each engine.

Rows, each a ``credwatch scan --no-store --format ndjson`` child: wall time (median
of ``--reps`` rounds, every row once per round; Spark one run fewer) and its alerts:

* ``in-process NDJSON``: ``--engine python`` (the default) over the NDJSON file;
* ``DuckDB NDJSON``: ``--engine duckdb`` over the same file;
* ``DuckDB Parquet``: ``--engine duckdb`` over the file converted once with
  ``credwatch convert --to parquet`` (the conversion is timed once, as a note);
* ``Spark local Parquet``: ``--engine spark --spark-master local[*]`` over that Parquet
  (JVM start included: that is what a user waits for).

Anchor: ``grep -cF`` of the rule's most selective literal over the NDJSON file, in
the same run. Every row must give the same alerts (uuids compared); a row that
does not is marked. Run alone with ``python bench/engines_bench.py --events 1000000``;
``bench/run.py`` runs it too unless ``--no-engines``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
LITERAL = "/.aws/credentials"
#: Goal from issue #14: DuckDB over Parquet faster than in-process over NDJSON.
GOAL = ("DuckDB Parquet", "in-process NDJSON")


def _child(cmd: list[str], timeout: float = 1800.0) -> tuple[float, bytes]:
    """Run ``cmd``; wall seconds and stdout."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           f"{proc.stderr.decode(errors='replace')[-600:]}")
    return wall, proc.stdout


def _uuids(stdout: bytes) -> set[str]:
    return {orjson.loads(x)["kibana.alert.uuid"] for x in stdout.splitlines() if x.strip()}


def ensure_parquet(ndjson: Path, cw: list[str]) -> tuple[Path, float | None]:
    """The Parquet conversion of ``ndjson`` (made once; its time when made now)."""
    out = ndjson.with_suffix(".parquet")
    if out.exists() and out.stat().st_mtime >= ndjson.stat().st_mtime:
        return out, None
    tmp = out.with_suffix(".parquet.tmp")
    tmp.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run([*cw, "convert", str(ndjson), "--to", "parquet", str(tmp)],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"convert failed: {proc.stderr.decode(errors='replace')[-600:]}")
    os.replace(tmp, out)
    return out, time.perf_counter() - t0


def rows(ndjson: Path, parquet: Path, reps: int, cw: list[str], spark: bool = True,
         more: bool = False) -> list[dict[str, Any]]:
    """Time every row (see the module docstring); ratios are added by :func:`describe`.

    ``more`` adds the other engine/format pairs (in-process Parquet, Spark NDJSON): the
    same-alerts check of issue #14's acceptance on every engine and format.
    """
    scan = [*cw, "scan", "--no-store", "--format", "ndjson", "--quiet"]
    contenders: list[tuple[str, list[str], int]] = [
        ("grep -cF (1 literal)", ["grep", "-cF", LITERAL, str(ndjson)], reps),
        ("in-process NDJSON", [*scan, str(ndjson)], reps),
        ("DuckDB NDJSON", [*scan, "--engine", "duckdb", str(ndjson)], reps),
        ("DuckDB Parquet", [*scan, "--engine", "duckdb", str(parquet)], reps),
    ]
    if more:
        contenders.append(("in-process Parquet", [*scan, str(parquet)], reps))
    if spark and more:
        contenders.append(("Spark local NDJSON", [*scan, "--engine", "spark", "--spark-master", "local[*]",
                                                  str(ndjson)], max(1, reps - 1)))
    if spark:
        contenders.append(("Spark local Parquet", [*scan, "--engine", "spark", "--spark-master", "local[*]",
                                                   str(parquet)], max(1, reps - 1)))
    # Interleaved (one run of every row per round): on a shared machine, load drifts over
    # minutes, and a row measured in one burst would carry the drift alone.
    walls: dict[str, list[float]] = {name: [] for name, _cmd, _n in contenders}
    alerts: dict[str, set[str]] = {}
    for rnd in range(reps):
        for name, cmd, n in contenders:
            if rnd >= n:
                continue
            wall, stdout = _child(cmd)
            walls[name].append(wall)
            if not name.startswith("grep"):
                got = _uuids(stdout)
                if name in alerts and got != alerts[name]:
                    # The tree changed under the benchmark, or a row is not deterministic.
                    raise RuntimeError(f"{name}: round {rnd + 1} gave {len(got)} alerts, "
                                       f"round 1 gave {len(alerts[name])}")
                alerts[name] = got
            print(f"  round {rnd + 1}: {name}: {wall:.2f}s", file=sys.stderr)
    out: list[dict[str, Any]] = []
    for name, _cmd, _n in contenders:
        row: dict[str, Any] = {"name": name, "median_s": statistics.median(walls[name]), "runs": walls[name]}
        if name in alerts:
            row["alerts"] = len(alerts[name])
            row["uuids"] = alerts[name]
        out.append(row)
    return out


def describe(results: list[dict[str, Any]]) -> list[str]:
    """Table lines with ratios against grep and against the in-process row; alert sets compared."""
    by = {r["name"]: r for r in results}
    grep = by.get("grep -cF (1 literal)", {}).get("median_s")
    ref = by.get("in-process NDJSON")
    lines = [f"{'row':24} {'wall s':>8} {'x grep':>8} {'x in-proc':>10} {'alerts':>7}  same alerts"]
    for r in results:
        same = "" if "uuids" not in r or ref is None else ("yes" if r["uuids"] == ref["uuids"] else "NO")
        xg = f"{r['median_s'] / grep:.1f}" if grep else "-"
        xp = f"{r['median_s'] / ref['median_s']:.2f}" if ref else "-"
        lines.append(f"{r['name']:24} {r['median_s']:8.2f} {xg:>8} {xp:>10} {r.get('alerts', '-')!s:>7}  {same}")
    fast, slow = (by.get(n) for n in GOAL)
    if fast and slow:
        verdict = "met" if fast["median_s"] < slow["median_s"] else "NOT met"
        lines.append(f"goal {GOAL[0]} < {GOAL[1]}: {verdict} (x{fast['median_s'] / slow['median_s']:.2f})")
    return lines


def run(events: int, reps: int, cw: list[str], seed: int = 7, spark: bool = True,
        more: bool = False) -> dict[str, Any]:
    """Generate/convert as needed, time the rows, return them (uuids dropped) with the conversion time."""
    sys.path.insert(0, str(HERE))
    import run as bench_run  # the generator and its cache live there

    ndjson, _truth = bench_run.ensure_ecs(events, seed)
    parquet, convert_s = ensure_parquet(ndjson, cw)
    res = rows(ndjson, parquet, reps, cw, spark, more)
    for line in describe(res):
        print(line)
    same = all(r["uuids"] == res[1]["uuids"] for r in res if "uuids" in r)
    for r in res:
        r.pop("uuids", None)
    return {"file": ndjson.name, "bytes": ndjson.stat().st_size, "parquet_bytes": parquet.stat().st_size,
            "convert_s": convert_s, "same_alerts": same, "rows": res}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-spark", action="store_true", help="skip the Spark row")
    p.add_argument("--more", action="store_true",
                   help="also in-process over Parquet and Spark over NDJSON (same-alerts check on every pair)")
    p.add_argument("--credwatch", default=None, help="credwatch command (default: the venv's)")
    args = p.parse_args(argv)
    cw = args.credwatch.split() if args.credwatch else [str(Path(sys.executable).parent / "credwatch")]
    report = run(args.events, args.reps, cw, args.seed, not args.no_spark, args.more)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-engines-{args.events}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))
    print(f"results written to {RESULTS / name}")
    return 0 if report["same_alerts"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
