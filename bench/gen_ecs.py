"""Generate realistic ECS process-exec events as NDJSON, deterministically.

Two sensor shapes are written, per host:

* Elastic Defend (``logs-endpoint.events.process-*``): ``event.action: exec``
  with ``process.parent``, ``process.entry_leader`` and ``process.session_leader``.
* auditbeat / Auditd Manager (``auditbeat-*``, ``logs-auditd_manager.auditd-*``):
  ``event.action: executed`` with the ``auditd.*`` block, ``process.title`` and
  ``user.audit.*``.

About 0.1 % of events are planted positives for the seed rule, cycling through
every path slot and every tool clause; about 0.5 % are near-miss decoys.  A small
share of lines is written with JSON escapes (``\\/``, ``\\u00xx``, ``\\u002f``)
by post-processing or re-serialising the bytes, so the escapes are really there.

Next to the output a sidecar ``<out>.truth.json`` records what was planted: the
positive count, their ``event.id`` values and line numbers, per-slot and
per-clause counts, decoy kinds and escape modes.  Nothing in it comes from
running a matcher.

Usage::

    python bench/gen_ecs.py --count 1000000 --out bench/data/ecs-1000000.ndjson
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import scenarios
from scenarios import Exec

BASE_MS = 1_796_083_200_000  # 2026-12-01T00:00:00Z
ECS_VERSION_DEFEND = "8.11.0"
ECS_VERSION_BEATS = "8.0.0"

_OS_VARIANTS: tuple[tuple[str, str, str, str, str], ...] = (
    # platform, family, name/full, version, kernel
    ("ubuntu", "debian", "Ubuntu 22.04.4 LTS (Jammy Jellyfish)", "22.04.4 LTS (Jammy Jellyfish)", "5.15.0-1057-aws"),
    ("ubuntu", "debian", "Ubuntu 24.04.1 LTS (Noble Numbat)", "24.04.1 LTS (Noble Numbat)", "6.8.0-1016-aws"),
    ("amzn", "redhat", "Amazon Linux 2023", "2023", "6.1.112-122.189.amzn2023.x86_64"),
    ("debian", "debian", "Debian GNU/Linux 12 (bookworm)", "12 (bookworm)", "6.1.0-26-cloud-amd64"),
    ("rhel", "redhat", "Red Hat Enterprise Linux 9.4 (Plow)", "9.4 (Plow)", "5.14.0-427.37.1.el9_4.x86_64"),
)


class Host:
    """A monitored host and its sensor."""

    def __init__(self, r: random.Random, i: int) -> None:
        role = r.choice(("k8s-node", "k8s-node", "ci-runner", "web", "bastion", "db"))
        self.name = f"{role}-{i:03d}"
        self.id = format(r.getrandbits(128), "032x")
        self.sensor = r.choices(("defend", "auditd_manager", "auditbeat"), (55, 30, 15))[0]
        platform, family, full, version, kernel = r.choice(_OS_VARIANTS)
        ip = f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
        mac = "-".join(format(r.randrange(256), "02X") for _ in range(6))
        self.agent_id = f"{format(r.getrandbits(32), '08x')}-{format(r.getrandbits(16), '04x')}-4{format(r.getrandbits(12), '03x')}-a{format(r.getrandbits(12), '03x')}-{format(r.getrandbits(48), '012x')}"
        self.block: dict[str, Any] = {
            "name": self.name,
            "os": {"platform": platform, "type": "linux"},
        }
        del mac, full, version, family, kernel, ip
        self.mac_block = dict(self.block)
        self.mac_block["os"] = {"platform": "darwin", "type": "macos"}
        if self.sensor == "defend":
            self.agent: dict[str, Any] = {"id": self.agent_id, "type": "endpoint", "version": "8.15.2"}
        else:
            self.agent = {"id": self.agent_id, "type": "auditbeat", "version": "8.15.2"}
        self.seq = r.randrange(10_000, 5_000_000)
        self.pid = r.randrange(3000, 40000)
        self.ses = r.randrange(1, 400)


_DEFEND_DS = {"dataset": "endpoint.events.process", "namespace": "default", "type": "logs"}
_AM_DS = {"dataset": "auditd_manager.auditd", "namespace": "default", "type": "logs"}


def _ts(ms: int) -> str:
    sec, rem = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{rem:03d}Z"


def _uid_block(u: scenarios.User) -> dict[str, Any]:
    return {"id": str(u.uid), "name": u.name}


def _entity(r: random.Random) -> str:
    return format(r.getrandbits(96), "024x")


def defend_doc(r: random.Random, h: Host, ex: Exec, ms: int, eid: str) -> dict[str, Any]:
    """An Elastic Defend process exec document."""
    ts = _ts(ms)
    h.pid += r.randrange(1, 40)
    h.seq += r.randrange(1, 30)
    ppid = max(2, h.pid - r.randrange(1, 500))
    interactive = ex.login is not None
    action = "exec"
    if ex.kind == "wrong_action":
        action = r.choice(("fork", "end"))
    return {
        "@timestamp": ts,
        "agent": h.agent,
        "data_stream": _DEFEND_DS,
        "ecs": {"version": ECS_VERSION_DEFEND},
        "event": {
            "action": action,
            "category": ["process"],
            "id": eid,
            "ingested": _ts(ms + r.randrange(800, 4000)),
            "kind": "event",
            "type": ["start"] if action != "end" else ["end"],
        },
        "host": h.mac_block if ex.kind == "wrong_os" else h.block,
        "process": {
            "args": ex.args,
            "args_count": len(ex.args),
            "command_line": " ".join(ex.args),
            "entity_id": _entity(r)[:16],
            "entry_leader": {
                "name": "bash" if interactive else "systemd",
                "pid": h.ses * 7 + 100,
            },
            "executable": ex.executable,
            "name": ex.name,
            "parent": {
                "args": ex.parent_args,
                "executable": ex.parent_executable,
                "name": ex.parent_name,
                "pid": ppid,
            },
            "pid": h.pid,
            "session_leader": {
                "name": ex.parent_name,
                "pid": ppid,
            },
            "working_directory": ex.cwd,
        },
        "user": _uid_block(ex.user),
    }


def auditbeat_doc(r: random.Random, h: Host, ex: Exec, ms: int, eid: str) -> dict[str, Any]:
    """An auditbeat / Auditd Manager ``executed`` document (aucoalesce's ECS mapping)."""
    ts = _ts(ms)
    h.pid += r.randrange(1, 40)
    h.seq += r.randrange(1, 30)
    ppid = max(2, h.pid - r.randrange(1, 500))
    login = ex.login
    auid = str(login.uid) if login else "4294967295"
    user = ex.user
    title = " ".join(ex.args)
    doc: dict[str, Any] = {
        "@timestamp": ts,
        "agent": h.agent,
        "auditd": {
            "data": {
                "arch": "x86_64",
                "argc": str(len(ex.args)),
                "exit": "0",
                "syscall": "execve",
            },
            "message_type": "syscall",
            "session": str(h.ses) if login else "unset",
        },
        "ecs": {"version": ECS_VERSION_BEATS},
        "event": {
            "action": "executed",
            "category": ["process"],
            "id": eid,
            "kind": "event",
            "outcome": "success",
            "type": ["start"],
        },
        "host": h.block,
        "process": {
            "args": ex.args,
            "args_count": len(ex.args),
            "executable": ex.executable,
            "name": ex.name[:15],
            "parent": {"pid": ppid},
            "pid": h.pid,
            "title": title[:128],
            "working_directory": ex.cwd,
        },
        "user": {
            "audit": {"id": auid, "name": login.name} if login else {"id": auid},
            "id": str(user.uid),
            "name": user.name,
        },
    }
    if h.sensor == "auditd_manager":
        doc["data_stream"] = _AM_DS
        doc["event"]["dataset"] = "auditd_manager.auditd"
        doc["event"]["ingested"] = _ts(ms + r.randrange(800, 4000))
    if ex.kind == "wrong_os":
        doc["host"] = h.mac_block
    elif ex.kind == "wrong_action":
        # auditbeat without host metadata: no host.os.type at all
        doc["host"] = {"name": h.name, "hostname": h.name}
    return doc


def flatten(obj: dict[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested objects to flat dotted keys (arrays are kept as arrays)."""
    if out is None:
        out = {}
    for k, v in obj.items():
        key = prefix + k
        if isinstance(v, dict):
            flatten(v, key + ".", out)
        else:
            out[key] = v
    return out


ESCAPE_MODES: tuple[str, ...] = ("slash", "unicode", "u002f", "html")


def encode(doc: dict[str, Any], mode: str) -> bytes:
    """Serialise ``doc``; ``mode`` picks which JSON escapes appear in the bytes.

    ``/`` and ``<>&`` never occur outside JSON strings, so replacing them in the
    compact output only ever touches string contents, where ``\\/``,
    ``\\u002f`` and ``\\u003c`` are valid escapes of the same characters.
    """
    if mode == "unicode":
        # Non-ASCII characters become \\u00xx (and surrogate pairs beyond the BMP).
        return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode()
    raw = orjson.dumps(doc)
    if mode == "slash":
        return raw.replace(b"/", b"\\/")
    if mode == "u002f":
        return raw.replace(b"/", b"\\u002f")
    if mode == "html":
        return raw.replace(b"<", b"\\u003c").replace(b">", b"\\u003e").replace(b"&", b"\\u0026")
    return raw


def generate(
    out: Path,
    count: int,
    seed: int = 7,
    flat: bool = False,
    positive_rate: float = 0.001,
    decoy_rate: float = 0.005,
    escape_rate: float = 0.01,
) -> dict[str, Any]:
    """Write ``count`` events to ``out`` and the sidecar; return the sidecar dict."""
    r = random.Random(seed)
    hosts = [Host(r, i) for i in range(200)]
    stream = scenarios.ScenarioStream(r, positive_rate, decoy_rate)
    ms = BASE_MS
    positives: list[dict[str, Any]] = []
    decoys: Counter[str] = Counter()
    escapes: Counter[str] = Counter()
    shapes: Counter[str] = Counter()
    slots: Counter[str] = Counter()
    clauses: Counter[str] = Counter()
    nbytes = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with tmp.open("wb", buffering=1 << 20) as f:
        for line_no in range(1, count + 1):
            ex = stream.next()
            h = hosts[r.randrange(len(hosts))]
            ms += r.randrange(0, 170)
            eid = f"{format(r.getrandbits(32), '08x')}-{line_no:010d}"
            if h.sensor == "defend":
                doc = defend_doc(r, h, ex, ms, eid)
            else:
                doc = auditbeat_doc(r, h, ex, ms, eid)
            shapes[h.sensor] += 1
            mode = ""
            x = r.random()
            if ex.label == "positive":
                if x < 0.08:
                    mode = ESCAPE_MODES[len(positives) % 3]
            elif x < escape_rate:
                mode = r.choice(ESCAPE_MODES)
            elif x < 0.25 and any(not a.isascii() for a in ex.args):
                mode = "unicode"
            if flat:
                doc = flatten(doc)
            line = encode(doc, mode) + b"\n"
            f.write(line)
            nbytes += len(line)
            if mode:
                escapes[mode] += 1
            if ex.label == "positive":
                positives.append({"line": line_no, "id": eid, "slot": ex.slot, "clause": ex.clause, "escape": mode, "args": ex.args})
                slots[ex.slot] += 1
                clauses[ex.clause] += 1
            elif ex.label == "decoy":
                decoys[ex.kind] += 1
    tmp.replace(out)
    truth: dict[str, Any] = {
        "generator": "gen_ecs",
        "version": 1,
        "seed": seed,
        "count": count,
        "flat": flat,
        "bytes": nbytes,
        "positive_rate": positive_rate,
        "positives": len(positives),
        "positive_ids": [p["id"] for p in positives],
        "positive_lines": [p["line"] for p in positives],
        "positives_by_slot": dict(sorted(slots.items())),
        "positives_by_clause": dict(sorted(clauses.items())),
        "escaped_positive_ids": [p["id"] for p in positives if p["escape"]],
        "positive_detail": positives,
        "decoys": sum(decoys.values()),
        "decoys_by_kind": dict(sorted(decoys.items())),
        "escaped_lines_by_mode": dict(sorted(escapes.items())),
        "shapes": dict(sorted(shapes.items())),
    }
    sidecar_path(out).write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    return truth


def sidecar_path(out: Path) -> Path:
    """Where the truth sidecar for ``out`` lives."""
    return out.with_name(out.name + ".truth.json")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=1_000_000, help="number of events (default 1,000,000)")
    p.add_argument("--out", type=Path, default=None, help="output path (default bench/data/ecs-<count>[-flat].ndjson)")
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same bytes)")
    p.add_argument("--flat", action="store_true", help="write flat dotted keys instead of nested objects")
    p.add_argument("--positive-rate", type=float, default=0.001, help="share of planted positives (default 0.001)")
    p.add_argument("--decoy-rate", type=float, default=0.005, help="share of near-miss decoys (default 0.005)")
    p.add_argument("--escape-rate", type=float, default=0.01, help="share of lines written with JSON escapes")
    a = p.parse_args(argv)
    out = a.out or Path(__file__).parent / "data" / f"ecs-{a.count}{'-flat' if a.flat else ''}.ndjson"
    t0 = time.perf_counter()
    truth = generate(out, a.count, a.seed, a.flat, a.positive_rate, a.decoy_rate, a.escape_rate)
    dt = time.perf_counter() - t0
    sys.stderr.write(
        f"wrote {out} ({truth['count']} events, {truth['bytes'] / 1e6:.1f} MB, "
        f"{truth['bytes'] / max(1, truth['count']):.0f} B/event, {truth['positives']} positives, "
        f"{truth['decoys']} decoys) in {dt:.1f}s\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
