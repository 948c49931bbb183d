"""Sink delivery benchmark: ``credwatch watch`` at 5,000 alerts/min against a 50 ms webhook.

    python bench/sinks_bench.py                 # 60 s of feeding
    python bench/sinks_bench.py --seconds 20    # shorter

A local webhook receiver answers every request after 50 ms. A real
``credwatch watch --sink hook`` (batch = 200) follows an NDJSON file that this
script appends credential-access events to at the target rate. Reported: alerts
delivered (all, each uuid once), latency from the event's write to its
receipt (p50/p95/max), requests made, and whether delivery kept up (every alert
delivered, and the last tenth's latency no worse than 2 s above the first
tenth's: no growing backlog). Then the outbox's drain rate: 20,000 queued
alerts through ``credwatch sinks deliver`` against the same receiver.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CREDWATCH = str(Path(sys.executable).parent / "credwatch")


class Receiver:
    """A webhook receiver that answers after ``latency`` seconds and records receipt times."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.received: dict[str, float] = {}
        self.copies = 0
        self.requests = 0
        self.lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(rx.latency)  # the receiver's own processing time
                now = time.time()
                docs = json.loads(body)
                with rx.lock:
                    rx.requests += 1
                    for d in docs if isinstance(docs, list) else [docs]:
                        rx.copies += 1
                        rx.received.setdefault(d["kibana.alert.uuid"], now)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def event(pid: int) -> bytes:
    """One credential-access exec event (the seed rule alerts on it), unique by pid."""
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{pid % 1000:03d}Z"
    return json.dumps({
        "@timestamp": ts, "event": {"kind": "event", "category": ["process"], "type": ["start"],
                                    "action": "exec"},
        "process": {"pid": pid, "name": "cat", "args": ["cat", "/root/.kube/config"],
                    "command_line": "cat /root/.kube/config", "executable": "/usr/bin/cat"},
        "host": {"name": "bench-node", "os": {"type": "linux"}}, "user": {"name": "root"}},
        separators=(",", ":")).encode() + b"\n"


def _config(folder: Path, url: str) -> Path:
    cfg = folder / "config.toml"
    cfg.write_text(f'[sinks.hook]\ntype = "webhook"\nurl = "{url}"\nbatch = 200\ntimeout = 10\n')
    os.chmod(cfg, 0o600)
    return cfg


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def watch_row(seconds: float, per_minute: int, latency: float) -> dict[str, Any]:
    """Feed ``credwatch watch --sink`` at ``per_minute`` alerts for ``seconds``; measure delivery."""
    rx = Receiver(latency)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log = folder / "events.ndjson"
        log.touch()
        cfg = _config(folder, rx.url)
        proc = subprocess.Popen([CREDWATCH, "watch", str(log), "--input-format", "ndjson",
                                 "--from", "beginning", "--db", str(folder / "a.db"),
                                 "--sink", "hook", "--config", str(cfg), "--output", os.devnull,
                                 "--quiet"], stderr=subprocess.PIPE, text=True)
        written: dict[int, float] = {}
        interval = 60.0 / per_minute
        start = time.time()
        pid = 1000
        with open(log, "ab", buffering=0) as out:
            while (now := time.time()) - start < seconds:
                due = int((now - start) / interval) + 1
                chunk = []
                while len(written) < due:
                    pid += 1
                    written[pid] = time.time()
                    chunk.append(event(pid))
                out.write(b"".join(chunk))
                time.sleep(0.05)  # pacing the producer, not waiting for a result
        deadline = time.time() + 60
        while rx.count() < len(written) and time.time() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        rx.server.shutdown()
        uuids_by_pid = _pids(folder / "a.db")
    lat = [rx.received[u] - written[p] for p, u in uuids_by_pid.items() if u in rx.received]
    tenth = max(1, len(lat) // 10)
    kept_up = (rx.count() == len(written) and len(lat) == len(written)
               and statistics.median(lat[-tenth:]) <= statistics.median(lat[:tenth]) + 2.0)
    return {"name": f"watch --sink webhook @ {per_minute:,}/min, {latency * 1000:.0f} ms receiver",
            "seconds": seconds, "alerts": len(written), "delivered": rx.count(),
            "copies": rx.copies, "requests": rx.requests,
            "latency_p50_s": statistics.median(lat) if lat else None,
            "latency_p95_s": _pct(lat, 95) if lat else None, "latency_max_s": max(lat, default=None),
            "kept_up": kept_up, "exit": proc.returncode, "stderr_tail": err[-300:]}


def _pids(db: Path) -> dict[int, str]:
    import sqlite3
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT uuid, doc FROM alerts").fetchall()
    conn.close()
    return {json.loads(doc)["process"]["pid"]: uuid for uuid, doc in rows}


def drain_row(alerts: int, latency: float) -> dict[str, Any]:
    """Time ``credwatch sinks deliver`` of ``alerts`` queued alerts (batch 200)."""
    sys.path.insert(0, str(HERE.parent / "src"))
    from credwatch.alerts.store import AlertStore
    rx = Receiver(latency)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg = _config(folder, rx.url)
        with AlertStore(folder / "a.db") as store:
            store.insert([{"@timestamp": "2026-03-01T00:00:00.000Z", "kibana.alert.uuid": f"u{i}",
                           "kibana.alert.rule.rule_id": "r", "kibana.alert.rule.name": "r",
                           "process": {"command_line": "cat /root/.kube/config"}}
                          for i in range(alerts)], outbox=["hook"])
        t0 = time.perf_counter()
        proc = subprocess.run([CREDWATCH, "sinks", "deliver", "--db", str(folder / "a.db"),
                               "--config", str(cfg)], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
    rx.server.shutdown()
    return {"name": f"sinks deliver {alerts:,} queued, {latency * 1000:.0f} ms receiver",
            "alerts": alerts, "delivered": rx.count(), "requests": rx.requests, "wall_s": wall,
            "alerts_per_s": rx.count() / wall, "exit": proc.returncode}


def run(seconds: float = 60.0, per_minute: int = 5000, latency: float = 0.05,
        drain_alerts: int = 20_000) -> list[dict[str, Any]]:
    """Both rows."""
    return [watch_row(seconds, per_minute, latency), drain_row(drain_alerts, latency)]


def describe(rows: list[dict[str, Any]]) -> list[str]:
    """One line per row, for the console."""
    lines = []
    for r in rows:
        if "latency_p50_s" in r:
            lines.append(f"{r['name']}: {r['delivered']:,}/{r['alerts']:,} delivered "
                         f"({r['copies']:,} copies, {r['requests']} requests) in {r['seconds']:.0f} s; "
                         f"latency p50 {r['latency_p50_s']:.2f} s, p95 {r['latency_p95_s']:.2f} s, "
                         f"max {r['latency_max_s']:.2f} s; kept up: {r['kept_up']}")
        else:
            lines.append(f"{r['name']}: {r['delivered']:,} delivered in {r['wall_s']:.2f} s "
                         f"({r['alerts_per_s']:,.0f} alerts/s, {r['requests']} requests)")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--rate", type=int, default=5000, help="alerts per minute")
    p.add_argument("--latency", type=float, default=0.05, help="receiver answer time (s)")
    p.add_argument("--drain-alerts", type=int, default=20_000)
    args = p.parse_args(argv)
    rows = run(args.seconds, args.rate, args.latency, args.drain_alerts)
    for line in describe(rows):
        print(line)
    print(json.dumps(rows, indent=2))
    return 0 if rows[0]["kept_up"] else 1


if __name__ == "__main__":
    sys.exit(main())
