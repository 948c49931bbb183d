"""Alert cost rows (issue #15 part 1): alerts/s of the broad hunt against an anchor loop, and start-up.

* ``credwatch broad hunt``: ``credwatch scan --query 'event.action:exec' --no-store
  --format ndjson`` over generated ECS events; CPU seconds of the child, alerts
  counted from its output.
* ``anchor: orjson + fixed alert fields``: a plain loop that decodes each line
  with orjson, keeps exec events, adds a fixed set of alert fields and encodes
  it again (the floor for "read, decide, write an alert" in Python).
* ``start-up``: ``credwatch scan`` of a one-event file with an empty cache folder,
  against ``python3 -c pass`` (the system interpreter), wall time, best of N.

Ratios are taken within the same run. Run alone with
``python bench/alerts_bench.py --events 100000``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SYS_PY = "/usr/bin/python3"
HUNT = "event.action:exec"
ANCHOR = "anchor: orjson + fixed alert fields"
#: Goals from issue #15.
GOAL_ALERTS_PER_S = 20_000
GOAL_STARTUP_RATIO = 3.0


def anchor(src: str, out: str) -> int:
    """The anchor loop: decode, keep exec events, add fixed alert fields, encode."""
    fixed = {"kibana.alert.rule.name": "hunt", "kibana.alert.severity": "low",
             "kibana.alert.risk_score": 21, "kibana.alert.status": "active",
             "kibana.alert.workflow_status": "open", "event.kind": "signal",
             "kibana.alert.depth": 1, "kibana.space_ids": ["default"]}
    n = 0
    with open(src, "rb") as f, open(out, "wb") as w:
        for line in f:
            doc = orjson.loads(line)
            ev = doc.get("event")
            action = ev.get("action") if isinstance(ev, dict) else doc.get("event.action")
            if action != "exec":
                continue
            doc.update(fixed)
            doc["kibana.alert.uuid"] = str(n)
            w.write(orjson.dumps(doc) + b"\n")
            n += 1
    return n


def _child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, child CPU seconds, exit code) of one subprocess run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                       check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.returncode


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def _with_source(src: str | None) -> dict[str, str] | None:
    """The environment that makes ``credwatch`` import its code from ``src`` (a checkout's src/)."""
    return None if src is None else dict(os.environ, PYTHONPATH=src)


def hunt_rows(events: int, reps: int, credwatch: list[str],
              baseline: str | None = None) -> list[dict[str, Any]]:
    """Alerts/s of the broad hunt and of the anchor loop, on the same generated file.

    ``baseline`` (another checkout's ``src``) adds the same hunt run from that
    code, interleaved with the others, for a before/after in one run.
    """
    sys.path.insert(0, str(HERE))
    import gen_ecs

    path = DATA / f"ecs-{events}-hunt.ndjson"
    if not path.exists():
        gen_ecs.generate(path, events, seed=7)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        out = Path(tmp) / "alerts.ndjson"
        hunt = [*credwatch, "scan", "--query", HUNT, "--no-store", "-q", "--format", "ndjson",
                "--output", str(out), str(path)]
        contenders: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "credwatch broad hunt": (hunt, None),
            ANCHOR: ([sys.executable, __file__, "--anchor", str(path), str(out)], None),
        }
        if baseline:
            contenders["credwatch broad hunt (baseline)"] = (hunt, _with_source(baseline))
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        alerts: dict[str, int] = {}
        for _ in range(reps):  # interleaved: a load change hits every contender alike
            for name, (cmd, env) in contenders.items():
                wall, cpu, code = _child(cmd, env)
                if code not in (0, 1):
                    raise RuntimeError(f"{name} exited {code}")
                samples[name].append((wall, cpu))
                alerts[name] = _lines(out)
        for name, runs in samples.items():
            cpu = statistics.median(c for _, c in runs)
            rows.append({"name": name, "events": events, "alerts": alerts[name],
                         "cpu_s": cpu, "wall_s": statistics.median(w for w, _ in runs),
                         "alerts_per_cpu_s": alerts[name] / cpu if cpu else None})
    base = next(r["cpu_s"] for r in rows if r["name"] == ANCHOR)
    for row in rows:
        row["x_anchor"] = row["cpu_s"] / base if base else None
    rows[0]["goal"] = f">= {GOAL_ALERTS_PER_S:,} alerts/s"
    return rows


def _compiled(cmd: list[str], env: dict[str, str]) -> None:
    """Run ``cmd`` once, untimed, letting Python write its bytecode caches.

    An installed package ships compiled; a checkout whose sources changed since
    their ``.pyc`` was written (or a shell with ``PYTHONDONTWRITEBYTECODE``) would
    otherwise compile every changed module on each timed run.
    """
    warm = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=warm, check=False)


def startup_rows(reps: int, credwatch: list[str],
                 baseline: str | None = None) -> list[dict[str, Any]]:
    """Wall time of a one-event scan with no cache, against ``python3 -c pass`` (best of ``reps``).

    Two floor rows share the run: the venv's interpreter doing nothing, and importing
    orjson (a required library, which itself imports dataclasses, inspect, enum, uuid
    and platform): no credwatch command can start faster than that.
    """
    event = {"@timestamp": "2026-12-01T00:00:00Z", "event": {"action": "exec", "category": ["process"],
             "type": ["start"]}, "host": {"os": {"type": "linux"}},
             "process": {"name": "cat", "args": ["cat", "/etc/hostname"]}}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        one = Path(tmp) / "one.ndjson"
        one.write_bytes(orjson.dumps(event) + b"\n")
        py = SYS_PY if os.path.exists(SYS_PY) else sys.executable
        scan = [*credwatch, "scan", "--no-store", "-q", "--format", "ndjson", str(one)]
        cases: dict[str, tuple[list[str], str | None]] = {
            "python3 -c pass": ([py, "-c", "pass"], None),
            "venv python -c pass": ([sys.executable, "-c", "pass"], None),
            "floor: venv python -c 'import orjson'": ([sys.executable, "-c", "import orjson"], None),
            "credwatch scan (1 event)": (scan, None)}
        if baseline:
            cases["credwatch scan (1 event, baseline)"] = (scan, baseline)
        for cmd, src in cases.values():
            _compiled(cmd, dict(_with_source(src) or os.environ))
        walls: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(reps):  # interleaved, best of reps
            for n, (name, (cmd, src)) in enumerate(cases.items()):
                env = dict(_with_source(src) or os.environ,
                           XDG_CACHE_HOME=str(Path(tmp) / f"cache-{n}-{i}"))
                walls[name].append(_child(cmd, env)[0])
        rows = [{"name": name, "wall_s": min(w), "median_s": statistics.median(w)}
                for name, w in walls.items()]
    for row in rows[1:]:
        row["x_python"] = row["wall_s"] / rows[0]["wall_s"]
        if row["name"].startswith("credwatch"):
            row["goal"] = f"<= {GOAL_STARTUP_RATIO:.0f}x python3 -c pass"
    return rows


def describe(hunt: list[dict[str, Any]], start: list[dict[str, Any]]) -> list[str]:
    """Human lines for the report."""
    out = []
    for r in hunt:
        rate = f"{r['alerts_per_cpu_s']:,.0f} alerts/CPU-s" if r["alerts_per_cpu_s"] else "-"
        out.append(f"{r['name']:40s} {r['alerts']:>8,} alerts  {r['cpu_s']:7.2f} CPU-s  {rate:>22s}"
                   f"  x{r['x_anchor']:.1f} anchor {r.get('goal', '')}")
    for r in start:
        ratio = f"x{r['x_python']:.1f} {r.get('goal', '')}" if "x_python" in r else ""
        out.append(f"{r['name']:40s} {r['wall_s'] * 1000:7.1f} ms (median "
                   f"{r['median_s'] * 1000:.1f})  {ratio}")
    return out


def run(events: int, reps: int, credwatch: list[str], baseline: str | None = None) -> dict[str, Any]:
    """Both row groups, as the report's ``alerts`` section (``baseline``: see :func:`hunt_rows`)."""
    DATA.mkdir(parents=True, exist_ok=True)
    return {"hunt": hunt_rows(events, reps, credwatch, baseline),
            "startup": startup_rows(max(reps, 5), credwatch, baseline)}


def main(argv: list[str] | None = None) -> int:
    """Run the rows alone (or the anchor loop, for the harness)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--baseline", metavar="SRC",
                   help="also run the hunt and the start-up from another checkout's src/ "
                        "(e.g. git archive <commit> src | tar -x -C /tmp/base), interleaved")
    p.add_argument("--startup-only", action="store_true",
                   help="only the start-up rows (best of --reps, at least 5)")
    p.add_argument("--anchor", nargs=2, metavar=("SRC", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.anchor:
        anchor(*args.anchor)
        return 0
    cw = [str(Path(sys.executable).parent / "credwatch")]
    if args.startup_only:
        DATA.mkdir(parents=True, exist_ok=True)
        for line in describe([], startup_rows(max(args.reps, 5), cw, args.baseline)):
            print(line)
        return 0
    res = run(args.events, args.reps, cw, args.baseline)
    for line in describe(res["hunt"], res["startup"]):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
