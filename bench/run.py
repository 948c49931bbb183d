"""One command for the whole benchmark: generate (cached) data, time every contender, report.

    python bench/run.py --events 1000000      # the full run
    python bench/run.py --quick               # ~50k events, CI smoke

Every contender runs as its own subprocess; wall time is measured around it and
peak RSS comes from ``os.wait4``'s rusage for that child alone.  Each is run
``--reps`` times after one warm-up read of the file; the table shows medians.
Ratios are against ``grep -cF`` and the plain orjson loop measured in the same
run.  Results are also written as JSON to ``bench/results/``.

credwatch is a pluggable contender: if ``credwatch`` is missing or fails, it is
skipped with the reason, and the rest still runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gen_audit
import gen_ecs
import seedrule
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
PY = sys.executable
SYS_PY = "/usr/bin/python3"
ANCHORS = str(HERE / "anchors.py")
_ID_RE = re.compile(rb'"([0-9a-f]{8}-[0-9]{10})"')


@dataclass
class Run:
    """One timed subprocess run."""

    wall: float
    rss_mb: float
    cpu: float | None
    exit_code: int
    stdout: bytes
    stderr: str
    timed_out: bool = False


@dataclass
class Result:
    """A contender's medians over its repetitions, and its correctness check."""

    name: str
    dataset: str
    events: int
    times: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    count: int | None = None
    check: str = ""
    skipped: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float | None:
        """Median wall time in seconds."""
        return statistics.median(self.times) if self.times else None

    @property
    def median_cpu(self) -> float | None:
        """Median CPU seconds (user + system) of the child."""
        return statistics.median(self.cpu) if self.cpu else None

    @property
    def peak_rss(self) -> float | None:
        """Largest peak RSS over the repetitions, in MB."""
        return max(self.rss_mb) if self.rss_mb else None


TIME_BIN = "/usr/bin/time"


def timed(cmd: Sequence[str], timeout: float) -> Run:
    """Run ``cmd``; measure wall time and the child's own peak RSS.

    Peak RSS comes from GNU ``/usr/bin/time -f %M``: a child forked straight from
    this Python process would inherit its high-water mark in ``ru_maxrss`` and
    every contender would look at least as large as the harness.  Without
    ``/usr/bin/time`` the harness falls back to ``os.wait4`` (an upper bound).
    """
    use_time = os.access(TIME_BIN, os.X_OK)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = [TIME_BIN, "-f", "%M %U %S", "-o", tf.name, *cmd] if use_time else list(cmd)
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                # kill the whole child (time + contender)
                proc.kill()
                with contextlib.suppress(OSError):
                    subprocess.run(["pkill", "-KILL", "-P", str(proc.pid)], check=False)
                pid, status, ru = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        rss_kb = float(ru.ru_maxrss)
        cpu: float | None = ru.ru_utime + ru.ru_stime
        if use_time:
            text = tf.read().strip().splitlines()
            parts = text[-1].split() if text else []
            if len(parts) == 3 and parts[0].isdigit():
                rss_kb = float(parts[0])
                cpu = float(parts[1]) + float(parts[2])
        out.seek(0)
        err.seek(0)
        return Run(wall, rss_kb / 1024.0, cpu, proc.returncode, out.read(),
                   err.read().decode("utf-8", "replace")[-2000:], timed_out)


def repeat(res: Result, cmd: Sequence[str], reps: int, timeout: float) -> Run | None:
    """Run ``cmd`` ``reps`` times into ``res``; return the last run (None if it failed)."""
    last: Run | None = None
    for _ in range(reps):
        res.load.append(os.getloadavg()[0])
        run = timed(cmd, timeout)
        if run.timed_out:
            res.skipped = f"timed out after {timeout:.0f}s"
            return None
        if run.exit_code not in (0, 1):
            res.skipped = f"exit {run.exit_code}: {run.stderr.strip()[-300:] or '(no stderr)'}"
            return None
        res.times.append(run.wall)
        res.rss_mb.append(run.rss_mb)
        if run.cpu is not None:
            res.cpu.append(run.cpu)
        last = run
    return last


def compare_ids(got: Sequence[Any], want: Sequence[Any]) -> str:
    """``ok`` or a short description of the difference."""
    g, w = set(got), set(want)
    if g == w and len(got) == len(want):
        return "ok"
    return f"MISMATCH: {len(w - g)} missing, {len(g - w)} extra, {len(got)} reported"


# ---------------------------------------------------------------------------
# data


def ensure_ecs(n: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Generate (or reuse) the ECS file for ``n`` events."""
    path = DATA / f"ecs-{n}-s{seed}.ndjson"
    side = gen_ecs.sidecar_path(path)
    if path.exists() and side.exists():
        truth: dict[str, Any] = json.loads(side.read_bytes())
        if truth.get("count") == n and truth.get("seed") == seed and truth.get("version") == gen_ecs.VERSION:
            return path, truth
    t0 = time.perf_counter()
    truth = gen_ecs.generate(path, n, seed)
    print(f"generated {path.name}: {truth['bytes'] / 1e6:.0f} MB in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return path, truth


def ensure_audit(n: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Generate (or reuse) the raw audit log for ``n`` exec events."""
    path = DATA / f"audit-{n}-s{seed}.log"
    side = gen_audit.sidecar_path(path)
    if path.exists() and side.exists():
        truth: dict[str, Any] = json.loads(side.read_bytes())
        if truth.get("count") == n and truth.get("seed") == seed and truth.get("version") == gen_audit.VERSION:
            return path, truth
    t0 = time.perf_counter()
    truth = gen_audit.generate(path, n, seed)
    print(f"generated {path.name}: {truth['bytes'] / 1e6:.0f} MB in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return path, truth


def write_variant_rules(folder: Path, n: int) -> list[str]:
    """Write ``n`` detection-rules TOML variants of the seed rule; return their queries.

    Each variant keeps the seed rule's shape (OS, category, action, a tool group
    and a path group) but watches one real credential path plus synthetic ones,
    so together they resemble a rule pack rather than 50 copies of one rule.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tools = sorted(seedrule.NAME_EXACT)
    slots = seedrule.PATH_SLOTS
    queries: list[str] = []
    for i in range(n):
        slot = slots[i % len(slots)]
        real = f'"{slot}"' if not slot.startswith("*") else slot
        fake = " or ".join(f'"/opt/vendor-{i}/secret-{j}.pem"' for j in range(4))
        names = " or ".join(tools[(i + k) % len(tools)] for k in range(12))
        q = (
            "host.os.type:linux and event.category:process and event.action:(exec or executed) and "
            f"(process.name:({names} or python*) or process.executable:(/tmp/* or /dev/shm/*)) and "
            f"process.args:({real} or {fake})"
        )
        queries.append(q)
        body = (
            "[metadata]\ncreation_date = \"2026/12/01\"\nmaturity = \"development\"\nupdated_date = \"2026/12/01\"\n\n"
            "[rule]\nauthor = [\"credwatch bench\"]\n"
            f"description = \"Benchmark variant {i} of the credential-path rule.\"\n"
            "from = \"now-9m\"\n"
            "index = [\"auditbeat-*\", \"logs-auditd_manager.auditd-*\", \"logs-endpoint.events.process*\"]\n"
            "interval = \"5m\"\nlanguage = \"kuery\"\nlicense = \"Apache-2.0\"\n"
            f"name = \"Bench variant {i:02d}\"\nrisk_score = 47\n"
            f"rule_id = \"00000000-0000-4000-8000-{i:012d}\"\nseverity = \"medium\"\ntype = \"query\"\n"
            f"query = '''\n{q}\n'''\n"
        )
        (folder / f"variant_{i:02d}.toml").write_text(body)
    return queries


# ---------------------------------------------------------------------------
# credwatch


def credwatch_cmd(arg: str | None) -> list[str]:
    """The credwatch executable to use."""
    if arg:
        return arg.split()
    venv = Path(sys.executable).parent / "credwatch"
    if venv.exists():
        return [str(venv)]
    found = shutil.which("credwatch")
    return [found] if found else ["credwatch"]


def credwatch_available(cw: list[str]) -> str:
    """Empty string when ``credwatch scan`` can be run, else the reason it cannot."""
    try:
        p = subprocess.run([*cw, "scan", "--help"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"credwatch not runnable: {exc}"
    if p.returncode != 0:
        return f"`credwatch scan --help` exited {p.returncode}: {p.stderr.decode(errors='replace').strip()[-200:]}"
    return ""


def alert_ids(stdout: bytes) -> list[str]:
    """Event ids of the source events, one per alert line (ids are unique per event)."""
    ids: list[str] = []
    for line in stdout.splitlines():
        found = {m.decode() for m in _ID_RE.findall(line)}
        ids.extend(sorted(found)[:1] if len(found) == 1 else sorted(found))
    return ids


def audit_alert_serials(stdout: bytes) -> list[int]:
    """Best-effort audit serials from alert lines (looks for ``auditd.sequence``-like keys)."""
    out: list[int] = []
    for line in stdout.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        seq = _find_key(doc, ("sequence", "serial"))
        if isinstance(seq, int):
            out.append(seq)
        elif isinstance(seq, str) and seq.isdigit():
            out.append(int(seq))
    return out


def _find_key(doc: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(doc, dict):
        aud = doc.get("auditd")
        if isinstance(aud, dict):
            for k in keys:
                if k in aud:
                    return aud[k]
        for k in keys:
            if f"auditd.{k}" in doc:
                return doc[f"auditd.{k}"]
    return None


# ---------------------------------------------------------------------------
# suites


def ecs_suite(path: Path, truth: dict[str, Any], reps: int, timeout: float, literal: str, cw: list[str], cw_reason: str,
              baseline: str | None = None) -> list[Result]:
    """Time every ECS contender over ``path`` (and the scan from another ``src/``, ``baseline``)."""
    n = truth["count"]
    want = truth["positive_ids"]
    ds = path.name
    out: list[Result] = []
    timed([PY, ANCHORS, "lines", str(path)], timeout)  # warm the page cache

    env_c = ["env", "LC_ALL=C"]
    r = Result("grep -cF (1 literal)", ds, n, extra={"literal": literal})
    run = repeat(r, [*env_c, "grep", "-cF", literal, str(path)], reps, timeout)
    if run:
        r.count = int(run.stdout.strip() or 0)
        r.check = "lines with the literal"
    out.append(r)

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as lf:
        lf.write("\n".join(seedrule.LITERAL_FRAGMENTS) + "\n")
        lit_file = lf.name
    r = Result(f"grep -c -F -f ({len(seedrule.LITERAL_FRAGMENTS)} literals)", ds, n)
    run = repeat(r, [*env_c, "grep", "-c", "-F", "-f", lit_file, str(path)], reps, timeout)
    if run:
        r.count = int(run.stdout.strip() or 0)
        r.check = "prefilter candidates (escapes not decoded)"
    out.append(r)
    os.unlink(lit_file)

    for name, label in (("lines", "python for-line loop"), ("orjson", "orjson loop + predicate"),
                        ("msgspec", "msgspec needed fields + predicate"), ("duckdb", "DuckDB read_ndjson SQL (2 threads)")):
        r = Result(label, ds, n)
        run = repeat(r, [PY, ANCHORS, name, str(path)], reps, timeout)
        if run:
            doc = json.loads(run.stdout)
            r.count = doc["count"]
            r.check = "line count" if name == "lines" else compare_ids(doc.get("ids", []), want)
        out.append(r)

    scans: list[tuple[str, list[str]]] = [("credwatch scan", [])]
    if baseline:  # the same command with another checkout's code, for a before/after in one run
        scans.append((f"credwatch scan, baseline {baseline}", ["env", f"PYTHONPATH={baseline}"]))
    for label, prefix in scans:
        r = Result(label, ds, n)
        if cw_reason:
            r.skipped = cw_reason
        else:
            run = repeat(r, [*prefix, *cw, "scan", "--format", "ndjson", "--no-store", "--quiet", str(path)], reps, timeout)
            if run:
                got = alert_ids(run.stdout)
                r.count = len(run.stdout.splitlines())
                r.check = compare_ids(got, want)
        out.append(r)
    return out


#: ``run --once`` acts at this time: mid-file for the generator's 1M events (00:00 to ~23:36).
RUN_ONCE_NOW_MS = gen_ecs.BASE_MS + 12 * 3_600_000
RUN_ONCE_LOOKBACK_MS = 9 * 60_000


def _run_once_expected(path: Path, truth: dict[str, Any], now_ms: int) -> list[str]:
    """Planted positives whose event.ingested (else @timestamp) is in [now-9m, now]."""
    wanted = set(truth["positive_lines"])
    lo, hi = now_ms - RUN_ONCE_LOOKBACK_MS, now_ms
    out: list[str] = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if n not in wanted:
                continue
            doc = json.loads(line)
            ev = doc.get("event") if isinstance(doc.get("event"), dict) else {}
            stamp = ev.get("ingested") or doc.get("event.ingested") or doc.get("@timestamp")
            t = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            if lo <= int(t.timestamp() * 1000) <= hi:
                out.append(str(doc.get("event", {}).get("id") or doc.get("event.id")))
    return out


def run_once_row(path: Path, truth: dict[str, Any], reps: int, timeout: float, cw: list[str],
                 cw_reason: str) -> Result:
    """``credwatch run --once`` (the seed rule's 9-minute window mid-file) on a fresh store.

    Each repetition starts from an empty store, so it is a first execution: it
    searches the file for the window by offset and counts the lines before it.
    """
    r = Result("credwatch run --once (9m window)", path.name, truth["count"])
    if cw_reason:
        r.skipped = cw_reason
        return r
    now = datetime.fromtimestamp(RUN_ONCE_NOW_MS / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "run.db")
        clean = f'rm -f "{db}" "{db}-wal" "{db}-shm"; exec "$@"'
        cmd = ["sh", "-c", clean, "sh", *cw, "run", "--once", "--now", now, "--db", db,
               "--format", "ndjson", "--quiet", str(path)]
        run = repeat(r, cmd, reps, timeout)
    if run:
        got = alert_ids(run.stdout)
        r.count = len(got)
        r.check = compare_ids(got, _run_once_expected(path, truth, RUN_ONCE_NOW_MS))
    return r


def audit_suite(path: Path, truth: dict[str, Any], reps: int, timeout: float, cw: list[str], cw_reason: str) -> list[Result]:
    """Time raw-audit contenders over ``path``."""
    n = truth["count"]
    ds = path.name
    want = truth["positive_serials"]
    out: list[Result] = []
    timed([PY, ANCHORS, "lines", str(path)], timeout)

    r = Result("grep -cF type=EXECVE", ds, n)
    run = repeat(r, ["env", "LC_ALL=C", "grep", "-cF", "type=EXECVE", str(path)], reps, timeout)
    if run:
        r.count = int(run.stdout.strip() or 0)
        r.check = "EXECVE records"
    out.append(r)

    r = Result("python for-line loop", ds, n)
    run = repeat(r, [PY, ANCHORS, "lines", str(path)], reps, timeout)
    if run:
        r.count = json.loads(run.stdout)["count"]
        r.check = "line count"
    out.append(r)

    r = Result("auparse (python3-audit)", ds, n)
    probe = subprocess.run([SYS_PY, "-c", "import auparse"], capture_output=True, check=False) if Path(SYS_PY).exists() else None
    if probe is None or probe.returncode != 0:
        r.skipped = "python3-audit not importable from /usr/bin/python3 (apt-get install -y python3-audit)"
    else:
        run = repeat(r, [SYS_PY, ANCHORS, "auparse", str(path)], reps, timeout)
        if run:
            doc = json.loads(run.stdout)
            r.count = doc["count"]
            digest_ok = doc["args_digest"] == truth["args_digest"]
            r.check = compare_ids(doc["ids"], want) + ("; decoded args identical to truth" if digest_ok else "; DECODED ARGS DIFFER from truth")
            r.extra["args_digest_ok"] = digest_ok
    out.append(r)

    r = Result("credwatch scan", ds, n)
    if cw_reason:
        r.skipped = cw_reason
    else:
        run = repeat(r, [*cw, "scan", "--format", "ndjson", "--no-store", "--quiet", str(path)], reps, timeout)
        if run:
            r.count = len(run.stdout.splitlines())
            serials = audit_alert_serials(run.stdout)
            if serials and len(serials) == r.count:
                r.check = compare_ids(serials, want)
            else:
                r.check = "ok (count)" if r.count == len(want) else f"MISMATCH: {r.count} alerts, {len(want)} planted"
    out.append(r)
    return out


def scaling_checks(args: argparse.Namespace, cw: list[str], cw_reason: str, timeout: float) -> list[Result]:
    """credwatch: peak RSS at N/10 vs N events, and 50 rules vs 1 rule."""
    out: list[Result] = []
    if cw_reason:
        r = Result("credwatch scaling checks", "-", 0, skipped=cw_reason)
        return [r]
    n = args.events
    for size in (max(1000, n // 10), n):
        path, truth = ensure_ecs(size, args.seed)
        r = Result(f"credwatch RSS @ {size:,}", path.name, size)
        run = repeat(r, [*cw, "scan", "--format", "ndjson", "--no-store", "--quiet", str(path)], 1, timeout)
        if run:
            r.count = len(run.stdout.splitlines())
            r.check = compare_ids(alert_ids(run.stdout), truth["positive_ids"])
        out.append(r)

    size = min(n, args.multi_rule_events)
    path, truth = ensure_ecs(size, args.seed)
    r1 = Result("credwatch 1 rule", path.name, size)
    run = repeat(r1, [*cw, "scan", "--format", "ndjson", "--no-store", "--quiet", str(path)], args.reps, timeout)
    if run:
        r1.count = len(run.stdout.splitlines())
    out.append(r1)
    rules_dir = DATA / "rules50"
    queries = write_variant_rules(rules_dir, 50)
    r50 = Result("credwatch 50 rules (TOML)", path.name, size)
    run = repeat(r50, [*cw, "scan", "--format", "ndjson", "--no-store", "--quiet", "--rules", str(rules_dir), str(path)], args.reps, timeout)
    if run is None and not r50.skipped.startswith("timed out"):
        reason = r50.skipped
        r50 = Result("credwatch 50 rules (--query)", path.name, size, extra={"toml_failed": reason})
        qargs = [a for q in queries for a in ("--query", q)]
        run = repeat(r50, [*cw, "scan", "--format", "ndjson", "--no-store", "--quiet", *qargs, str(path)], args.reps, timeout)
    if run:
        r50.count = len(run.stdout.splitlines())
    out.append(r50)
    return out


def differential(console: Console, timeout: float) -> dict[str, Any]:
    """Run the fast-path differential tests at full size (100k ECS, 30k audit events).

    CI runs the same tests at 3,000 events; ``CREDWATCH_FULL_DIFFERENTIAL=1``
    scales them up. The verdict goes in the results file and on the console.
    """
    tests = ["tests/sources/test_prefiltered.py", "tests/sources/test_audit_prefiltered.py",
             "tests/backends/test_prefilter.py"]
    cmd = [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "differential", *tests]
    env = {**os.environ, "CREDWATCH_FULL_DIFFERENTIAL": "1"}
    start = time.perf_counter()
    try:
        run = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True,
                             timeout=timeout, check=False)
        tail = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
        ok = run.returncode == 0
    except subprocess.TimeoutExpired:
        tail, ok = f"timed out after {timeout:.0f} s", False
    took = time.perf_counter() - start
    colour = "green" if ok else "red"
    console.print(f"differential (fast path == full path, full size): [{colour}]{tail}[/] in {took:.0f} s")
    return {"ok": ok, "summary": tail, "seconds": took}


# ---------------------------------------------------------------------------
# report


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(title: str, results: list[Result], anchors: dict[str, float | None]) -> Table:
    """A rich table with time, events/s, RSS and ratios."""
    t = Table(title=title, title_justify="left")
    t.add_column("contender")
    t.add_column("median s", justify="right")
    t.add_column("CPU s", justify="right")
    t.add_column("events/s", justify="right")
    t.add_column("peak RSS MB", justify="right")
    for a in anchors:
        t.add_column(f"x {a}", justify="right")
    t.add_column("count", justify="right")
    t.add_column("check")
    for r in results:
        if r.skipped:
            t.add_row(r.name, "-", "-", "-", "-", *["-" for _ in anchors], "-", f"[yellow]skipped: {r.skipped}[/]")
            continue
        med = r.median
        eps = r.events / med if med else None
        ratios = [_fmt(med / base, ".2f") if med and base else "-" for base in anchors.values()]
        check = r.check if "MISMATCH" not in r.check and "DIFFER" not in r.check else f"[red]{r.check}[/]"
        t.add_row(r.name, _fmt(med, ".3f"), _fmt(r.median_cpu, ".2f"), _fmt(eps, ",.0f"), _fmt(r.peak_rss, ".1f"), *ratios,
                  "-" if r.count is None else f"{r.count:,}", check)
    return t


def machine() -> dict[str, Any]:
    """Facts about the machine and tool versions, for the results file."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        mem = Path("/proc/meminfo").read_text().split()
        info["mem_gb"] = round(int(mem[1]) / 1024 / 1024, 1)
    for mod in ("orjson", "msgspec", "duckdb"):
        with contextlib.suppress(Exception):
            info[mod] = __import__(mod).__version__
    with contextlib.suppress(Exception):
        info["grep"] = subprocess.run(["grep", "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
    return info


def sinks_rows(console: Console, *, quick: bool) -> list[dict[str, Any]]:
    """The sink delivery rows (bench/sinks_bench.py): watch at 5,000 alerts/min, outbox drain."""
    import sinks_bench

    rows = sinks_bench.run(seconds=20.0 if quick else 60.0)
    for line in sinks_bench.describe(rows):
        console.print(line)
    return rows


def alerts_rows(console: Console, *, events: int, reps: int, cw: list[str]) -> dict[str, Any]:
    """Alert cost rows (bench/alerts_bench.py): broad hunt vs anchor loop, start-up vs python3."""
    import alerts_bench

    res = alerts_bench.run(min(events, 100_000), reps, cw)
    for line in alerts_bench.describe(res["hunt"], res["startup"]):
        console.print(line)
    return res


def watch_rows(console: Console, *, quick: bool) -> list[dict[str, Any]]:
    """Live-mode rows (bench/watch_bench.py): write-to-alert latency, lost alerts, RSS of watch."""
    import watch_bench

    rows = watch_bench.run(seconds=8.0 if quick else 30.0)
    for line in watch_bench.describe(rows):
        console.print(line)
    return rows


def engines_rows(console: Console, *, events: int, reps: int, cw: list[str], seed: int) -> dict[str, Any]:
    """Engine rows (bench/engines_bench.py): in-process vs DuckDB NDJSON/Parquet vs Spark local Parquet."""
    import engines_bench

    res = engines_bench.run(events, reps, cw, seed)
    console.print(f"engines: {res['file']} ({res['bytes'] / 1e6:.0f} MB NDJSON, "
                  f"{res['parquet_bytes'] / 1e6:.0f} MB Parquet); same alerts on every engine: {res['same_alerts']}")
    return res


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description="credwatch benchmark: contenders vs anchors, medians and peak RSS.")
    p.add_argument("--events", type=int, default=1_000_000, help="events per dataset (default 1,000,000)")
    p.add_argument("--quick", action="store_true", help="CI smoke: 50,000 events, 2 repetitions, no scaling checks")
    p.add_argument("--reps", type=int, default=None, help="repetitions per contender (default 3; 2 with --quick)")
    p.add_argument("--seed", type=int, default=7, help="generator seed")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before one run is abandoned")
    p.add_argument("--literal", default="/.aws/credentials", help="literal for the grep -cF anchor")
    p.add_argument("--credwatch", default=None, help="credwatch command (default: the venv's console script)")
    p.add_argument("--only", choices=("ecs", "audit"), default=None, help="run one suite only")
    p.add_argument("--baseline", metavar="SRC", default=None,
                   help="also time the ECS scan with another checkout's src/ on PYTHONPATH (before/after in one run)")
    p.add_argument("--no-scaling", action="store_true", help="skip the RSS-at-10x and 50-rules checks")
    p.add_argument("--no-differential", action="store_true",
                   help="skip the full-size differential tests (fast path == full path)")
    p.add_argument("--no-sinks", action="store_true",
                   help="skip the sink delivery row (watch at 5,000 alerts/min, 50 ms webhook)")
    p.add_argument("--no-engines", action="store_true",
                   help="skip the engine rows (DuckDB NDJSON/Parquet, Spark local Parquet vs in-process)")
    p.add_argument("--no-alerts", action="store_true",
                   help="skip the alert cost rows (broad hunt alerts/s, start-up)")
    p.add_argument("--no-watch", action="store_true",
                   help="skip the live-mode rows (watch following a writer: audit 5k/20k exec/s, NDJSON 20k/100k/s)")
    p.add_argument("--multi-rule-events", type=int, default=200_000, help="file size for the 50-rules check (capped at --events)")
    args = p.parse_args(argv)
    if args.quick:
        args.events = 50_000
        args.reps = args.reps or 2
        args.no_scaling = True
        args.no_differential = True
    args.reps = args.reps or 3

    console = Console(width=None if sys.stdout.isatty() else 200)
    cw = credwatch_cmd(args.credwatch)
    cw_reason = credwatch_available(cw)
    if cw_reason:
        console.print(f"[yellow]credwatch will be skipped: {cw_reason}[/]")
    info = machine()
    console.print(f"machine: {info.get('cpu', '?')}, {info['cpus']} CPUs, {info.get('mem_gb', '?')} GB; "
                  f"{args.events:,} events, {args.reps} repetitions (medians)")
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": info,
                              "events": args.events, "reps": args.reps, "seed": args.seed, "suites": {}}

    if args.only in (None, "ecs"):
        path, truth = ensure_ecs(args.events, args.seed)
        res = ecs_suite(path, truth, args.reps, args.timeout, args.literal, cw, cw_reason, args.baseline)
        res.append(run_once_row(path, truth, args.reps, args.timeout, cw, cw_reason))
        by = {r.name: r.median for r in res}
        anchors = {"grep -cF": by.get("grep -cF (1 literal)"), "orjson": by.get("orjson loop + predicate")}
        console.print(table(f"ECS NDJSON: {path.name} ({truth['bytes'] / 1e6:.0f} MB, {truth['positives']} planted positives)", res, anchors))
        report["suites"]["ecs"] = {"file": path.name, "bytes": truth["bytes"], "positives": truth["positives"],
                                   "results": [asdict(r) | {"median": r.median, "median_cpu": r.median_cpu, "peak_rss": r.peak_rss} for r in res]}
    if args.only in (None, "audit"):
        path, truth = ensure_audit(args.events, args.seed)
        res = audit_suite(path, truth, args.reps, args.timeout, cw, cw_reason)
        by = {r.name: r.median for r in res}
        anchors = {"grep -cF": by.get("grep -cF type=EXECVE"), "auparse": by.get("auparse (python3-audit)")}
        console.print(table(f"raw audit.log: {path.name} ({truth['bytes'] / 1e6:.0f} MB, {truth['positives']} planted positives)", res, anchors))
        report["suites"]["audit"] = {"file": path.name, "bytes": truth["bytes"], "positives": truth["positives"],
                                     "results": [asdict(r) | {"median": r.median, "median_cpu": r.median_cpu, "peak_rss": r.peak_rss} for r in res]}
    if not args.no_scaling and args.only in (None, "ecs"):
        res = scaling_checks(args, cw, cw_reason, args.timeout)
        console.print(table("credwatch scaling", res, {}))
        by_name = {r.name: r for r in res}
        small, big = (by_name.get(f"credwatch RSS @ {s:,}") for s in (max(1000, args.events // 10), args.events))
        summary: dict[str, Any] = {}
        if small and big and small.peak_rss and big.peak_rss:
            summary["rss_growth_10x"] = big.peak_rss / small.peak_rss
            console.print(f"peak RSS {small.peak_rss:.1f} MB → {big.peak_rss:.1f} MB for 10x the input (x{summary['rss_growth_10x']:.2f})")
        one = by_name.get("credwatch 1 rule")
        fifty = next((r for r in res if r.name.startswith("credwatch 50 rules")), None)
        if one and fifty and one.median and fifty.median:
            summary["fifty_vs_one"] = fifty.median / one.median
            console.print(f"50 rules / 1 rule wall time: x{summary['fifty_vs_one']:.2f}")
        report["suites"]["scaling"] = {"summary": summary, "results": [asdict(r) | {"median": r.median, "median_cpu": r.median_cpu, "peak_rss": r.peak_rss} for r in res]}

    if not args.no_differential:
        report["differential"] = differential(console, args.timeout * 4)
    if not args.no_alerts and not cw_reason:
        report["alerts"] = alerts_rows(console, events=args.events, reps=args.reps, cw=cw)
    if not args.no_engines and not cw_reason and args.only in (None, "ecs"):
        report["engines"] = engines_rows(console, events=args.events, reps=args.reps, cw=cw, seed=args.seed)
    if not args.no_sinks:
        report["sinks"] = sinks_rows(console, quick=args.quick)
    if not args.no_watch and not cw_reason:
        report["watch"] = watch_rows(console, quick=args.quick)

    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{args.events}.json"
    for suite in report["suites"].values():
        for r in suite.get("results", []):
            r.pop("stdout", None)
    (RESULTS / name).write_text(json.dumps(report, indent=2, default=str))
    console.print(f"results written to {RESULTS / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
