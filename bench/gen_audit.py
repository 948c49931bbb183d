"""Generate a realistic raw ``audit.log`` (ENRICHED format) of execve events, deterministically.

Records imitate the real captures in ``tests/fixtures/auditd/`` (kernel 6.x,
auditd 3.0.9, no LSM so no ``subj=``): each exec is ``SYSCALL`` (with the
``0x1d``-separated interpreted fields), ``BPRM_FCAPS`` for root, ``EXECVE``,
``CWD``, two ``PATH`` records and ``PROCTITLE``.

``EXECVE`` records follow the kernel's ``audit_log_execve_info`` algorithm:
arguments containing a quote, space, control or non-ASCII byte are written as
uppercase hex; arguments that do not fit the ~7500-byte record budget are split
as ``aN_len=`` / ``aN[k]=`` across several ``EXECVE`` records (continuation
records have no ``argc`` and start with two spaces), and arguments longer than
the budget are forced to hex.

Events from concurrent processes interleave: sometimes an event's ``PROCTITLE``
lands after the next event, sometimes two events' records alternate.  Non-exec
noise (PAM ``USER_*``/``CRED_*`` records, ``LOGIN`` with its ``SYSCALL``) is mixed in.

About 0.1 % of exec events are planted positives (cycling through every path
slot and tool clause, including ones whose credential argument is hex-encoded,
sits behind a split argument, straddles a record boundary, or is itself a split
hex argument); about 0.5 % are near-miss decoys.  The sidecar
``<out>.truth.json`` lists positive serials with their decoded args and a digest
of the decoded arguments of every exec event, so parsers can be checked for
identical decoding.

Usage::

    python bench/gen_audit.py --count 1000000 --out bench/data/audit-1000000.log
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import scenarios
import seedrule
from scenarios import Exec

BASE_MS = 1_796_083_200_000  # 2026-12-01T00:00:00Z
MAX_EXECVE_AUDIT_LEN = 7500  # kernel/auditsc.c
_ABUF = 96  # size of the kernel's scratch buffer for " aN_len=... aN[k]=" text
MAX_PROCTITLE_AUDIT_LEN = 128
GS = "\x1d"

#: Decoy kinds that make sense for raw audit (no action / OS to get wrong), plus
#: one audit-only kind: a long hex ``sh -c`` script that contains a credential path.
AUDIT_DECOY_KINDS: tuple[str, ...] = (
    *(k for k in scenarios.DECOY_KINDS if k not in ("wrong_action", "wrong_os")),
)
SPECIAL_VARIANTS: tuple[str, ...] = ("long_arg_before", "straddle", "split_hex_path")


def needs_hex(b: bytes) -> bool:
    """The kernel's ``audit_string_contains_control``: quote, <0x21 or >0x7e."""
    return any(c == 0x22 or c < 0x21 or c > 0x7E for c in b)


def untrusted(b: bytes) -> str:
    """``audit_log_untrustedstring``: quoted, or uppercase hex when it must be."""
    if needs_hex(b):
        return b.hex().upper()
    return '"' + b.decode("ascii") + '"'


def execve_bodies(argv: list[bytes]) -> list[str]:
    """Bodies of the EXECVE record(s) for ``argv``, following the kernel's algorithm.

    The first body starts with ``argc=N``; every further record starts with the
    text of its first argument (``" aN=..."``), hence the double space after
    ``msg=audit(...):`` in real logs.
    """
    len_max = MAX_EXECVE_AUDIT_LEN
    bodies: list[str] = []
    cur: list[str] = [f"argc={len(argv)}"]
    len_rem = len_max
    for arg_no, arg in enumerate(argv):
        pos = 0  # bytes of ``arg`` consumed into ``buf``
        buf = b""
        require_data = True
        encode = False
        len_full = len(arg)
        it = 0
        while True:
            if require_data:
                want = len_max - len(buf)
                chunk = arg[pos : pos + want]
                if len(arg) - pos >= want:
                    # does not fit the scratch buffer: force hex for consistency
                    require_data = True
                    encode = True
                    len_full *= 2
                    pos += want
                else:
                    require_data = False
                    if not encode:
                        encode = needs_hex(chunk)
                    if len_full < len_max:
                        len_full = len(chunk) * 2 if encode else len(chunk)
                    pos += len(chunk)
                buf += chunk
                len_abuf = len(buf) * 2 if encode else len(buf) + 2
            if _ABUF + 8 > len_rem:
                bodies.append("".join(cur))
                cur = [""]
                len_rem = len_max
            if require_data or it > 0 or len_abuf + _ABUF > len_rem:
                head = f" a{arg_no}_len={len_full}" if it == 0 else ""
                head += f" a{arg_no}[{it}]="
                it += 1
            else:
                head = f" a{arg_no}="
            cur.append(head)
            len_rem -= len(head)
            n = len(buf)
            if encode:
                if len_abuf > len_rem:
                    n = len_rem // 2
                cur.append(buf[:n].hex().upper())
                len_rem -= n * 2
                len_abuf -= n * 2
            else:
                if len_abuf > len_rem:
                    n = len_rem - 2
                cur.append('"' + buf[:n].decode("ascii") + '"')
                len_rem -= n + 2
                len_abuf -= n
            buf = buf[n:]
            if not buf and not require_data:
                break
    bodies.append("".join(cur))
    return bodies


def proctitle(argv: list[bytes]) -> str:
    """``PROCTITLE`` value: argv joined by NUL, at most 128 bytes, hex when needed."""
    raw = b"\x00".join(argv)[:MAX_PROCTITLE_AUDIT_LEN]
    return untrusted(raw)


_BPRM = "fver=0 fp=0 fi=0 fe=0 old_pp=000001fffeffffff old_pi=0 old_pe=000001fffeffffff old_pa=0 pp=000001fffeffffff pi=0 pe=000001fffeffffff pa=0 frootid=0"
_PATH_TAIL = "dev=fe:00 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0" + GS + 'OUID="root" OGID="root"'
_LD = '"/lib64/ld-linux-x86-64.so.2" inode=338944 '
UNSET = 4294967295


class AuditHost:
    """Per-host counters for pids, sessions and inode numbers."""

    def __init__(self, r: random.Random) -> None:
        self.pid = r.randrange(3000, 40000)
        self.ses = r.randrange(1, 400)


def _uid_names(u: scenarios.User) -> str:
    n = u.name
    g = u.group
    return f'UID="{n}" GID="{g}" EUID="{n}" SUID="{n}" FSUID="{n}" EGID="{g}" SGID="{g}" FSGID="{g}"'


def exec_records(r: random.Random, ex: Exec, stamp: str, pid: int, ppid: int, ses: int, inode: int) -> list[str]:
    """All records of one exec event (without node= prefix)."""
    argv = [a.encode() for a in ex.args]
    hdr = f"msg=audit({stamp}): "
    u = ex.user
    auid = ex.login.uid if ex.login else UNSET
    auid_name = ex.login.name if ex.login else "unset"
    sesn = ses if ex.login else UNSET
    tty = "pts0" if ex.login else "(none)"
    comm = untrusted(ex.name.encode()[:15])
    exe = untrusted(ex.executable.encode())
    a = [r.getrandbits(44) | 0x550000000000 for _ in range(3)]
    recs = [
        f"type=SYSCALL {hdr}arch=c000003e syscall=59 success=yes exit=0 a0={a[0]:x} a1={a[1]:x} a2={a[2]:x} a3={r.getrandbits(64):x} items=2 ppid={ppid} pid={pid} auid={auid} uid={u.uid} gid={u.gid} euid={u.uid} suid={u.uid} fsuid={u.uid} egid={u.gid} sgid={u.gid} fsgid={u.gid} tty={tty} ses={sesn} comm={comm} exe={exe} key=\"credwatch\"{GS}ARCH=x86_64 SYSCALL=execve AUID=\"{auid_name}\" {_uid_names(u)}"
    ]
    if u.uid == 0:
        recs.append(f"type=BPRM_FCAPS {hdr}{_BPRM}")
    recs.extend(f"type=EXECVE {hdr}{body}" for body in execve_bodies(argv))
    recs.append(f"type=CWD {hdr}cwd={untrusted(ex.cwd.encode())}")
    recs.append(f"type=PATH {hdr}item=0 name={exe} inode={inode} {_PATH_TAIL}")
    recs.append(f"type=PATH {hdr}item=1 name={_LD}{_PATH_TAIL}")
    recs.append(f"type=PROCTITLE {hdr}proctitle={proctitle(argv)}")
    return recs


def noise_records(r: random.Random, stamp: str, pid: int) -> list[str]:
    """A non-exec event: PAM records from cron/sshd/sudo, or LOGIN with its SYSCALL."""
    hdr = f"msg=audit({stamp}): "
    kind = r.randrange(4)
    if kind == 0:
        return [
            f"type=LOGIN {hdr}pid={pid} uid=0 old-auid={UNSET} auid=0 tty=(none) old-ses={UNSET} ses={r.randrange(1, 900)} res=1{GS}UID=\"root\" OLD-AUID=\"unset\" AUID=\"root\"",
            f"type=SYSCALL {hdr}arch=c000003e syscall=1 success=yes exit=1 a0=8 a1=7ffd3c2e1a10 a2=1 a3=0 items=0 ppid=1 pid={pid} auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm=\"cron\" exe=\"/usr/sbin/cron\" key=(null){GS}ARCH=x86_64 SYSCALL=write AUID=\"root\" UID=\"root\" GID=\"root\" EUID=\"root\" SUID=\"root\" FSUID=\"root\" EGID=\"root\" SGID=\"root\" FSGID=\"root\"",
            f"type=PROCTITLE {hdr}proctitle=2F7573722F7362696E2F43524F4E002D66002D50",
        ]
    typ, op = r.choice((
        ("USER_ACCT", "PAM:accounting grantors=pam_permit"),
        ("CRED_ACQ", "PAM:setcred grantors=pam_permit,pam_cap"),
        ("USER_START", "PAM:session_open grantors=pam_loginuid,pam_env,pam_limits,pam_unix"),
        ("USER_END", "PAM:session_close grantors=pam_loginuid,pam_env,pam_limits,pam_unix"),
        ("CRED_DISP", "PAM:setcred grantors=pam_permit"),
    ))
    exe, term = r.choice((('"/usr/sbin/cron"', "cron"), ('"/usr/bin/sudo"', "/dev/pts/0"), ('"/usr/sbin/sshd"', "ssh")))
    return [
        f"type={typ} {hdr}pid={pid} uid=0 auid={UNSET} ses={UNSET} msg='op={op} acct=\"root\" exe={exe} hostname=? addr=? terminal={term} res=success'{GS}UID=\"root\" AUID=\"unset\""
    ]


def _deep_prefix(r: random.Random, n: int) -> str:
    parts = ["/var/lib/jenkins/workspace"]
    while sum(len(p) + 1 for p in parts) < n:
        parts.append(f"job-{scenarios._hexid(r, 8)}")
    return "/".join(parts)


def special_positive(r: random.Random, ex: Exec, variant: str) -> Exec:
    """Rewrite a positive so its arguments stress hex/split decoding."""
    suffixes = [s for s in seedrule.SUFFIX_PATTERNS if s != "/root/.ssh/id_ed25519"]
    suffix = suffixes[r.randrange(len(suffixes))]
    ex.slot = "*" + suffix
    ex.clause = "name"
    ex.kind = variant
    ex.name, ex.executable = "grep", "/usr/bin/grep"
    if variant == "long_arg_before":
        # A long pattern argument (forced hex, split over several records) before the path.
        ex.args = ["grep", "-c", "".join(r.choice("abcdefgh ") for _ in range(r.randrange(8000, 16000))), "/root" + suffix]
    elif variant == "split_hex_path":
        # The credential argument itself is longer than one record: hex and split.
        ex.args = ["grep", "-c", "token", "/" + "./" * r.randrange(3800, 5000) + "root" + suffix]
    else:
        # A ~150-300 byte deep path placed so the kernel splits it across two records.
        path = _deep_prefix(r, r.randrange(150, 300)) + suffix
        ex.args = _straddle(["grep", "-l", "AKIA"], path, suffix)
    return ex


def _straddle(head: list[str], path: str, literal: str) -> list[str]:
    """Pad ``head`` with file arguments so that ``path`` straddles an EXECVE record boundary
    with ``literal`` cut between the two chunks."""
    # Each filler costs about 33 bytes of record budget; leave roughly the path's
    # length free and let a variable-length pad argument fine-tune the cut point.
    fillers = [f"/srv/data/part-{i:05d}.csv" for i in range((MAX_EXECVE_AUDIT_LEN - 400) // 33)]
    for pad in range(0, 600):
        argv = [*head, "/srv/data/" + "p" * pad, *fillers, path]
        bodies = execve_bodies([a.encode() for a in argv])
        idx = len(argv) - 1
        tag = f" a{idx}[1]="
        for b_prev, b in zip(bodies, bodies[1:], strict=False):
            if b.startswith(tag):
                first = b_prev.rsplit(f" a{idx}[0]=", 1)[1].strip('"')
                if path.find(literal) < len(first) < path.find(literal) + len(literal):
                    return argv
    raise AssertionError("could not place a straddling argument")


def _events(
    r: random.Random, count: int, positive_rate: float, decoy_rate: float, truth: dict[str, Any]
) -> Iterator[list[str]]:
    """Yield each event's records, with stamps and serials assigned in order."""
    stream = scenarios.ScenarioStream(r, positive_rate, decoy_rate, AUDIT_DECOY_KINDS)
    hosts = [AuditHost(r) for _ in range(8)]
    ms = BASE_MS
    serial = 1000
    digest = hashlib.sha256()
    positives: list[dict[str, Any]] = truth["positive_detail"]
    slots: Counter[str] = Counter()
    clauses: Counter[str] = Counter()
    variants: Counter[str] = Counter()
    decoys: Counter[str] = Counter()
    hexed = split = 0
    for _ in range(count):
        ms += r.randrange(0, 170)
        stamp_base = f"{ms // 1000}.{ms % 1000:03d}"
        if r.random() < 0.02:
            serial += 1
            yield noise_records(r, f"{stamp_base}:{serial}", r.randrange(300, 40000))
        serial += 1
        ex = stream.next()
        if ex.label == "positive" and stream.n_pos % 20 in (6, 11, 16):
            ex = special_positive(r, ex, SPECIAL_VARIANTS[(stream.n_pos % 20) // 5 - 1])
        h = hosts[r.randrange(len(hosts))]
        h.pid += r.randrange(1, 40)
        recs = exec_records(r, ex, f"{stamp_base}:{serial}", h.pid, h.pid - r.randrange(1, 300), h.ses, 260000 + r.randrange(20000))
        argv_b = [a.encode() for a in ex.args]
        if any(needs_hex(a) for a in argv_b):
            hexed += 1
        if any("_len=" in x for x in recs if x.startswith("type=EXECVE")):
            split += 1
        digest.update(f"{serial}".encode() + b"\x00" + b"\x00".join(argv_b) + b"\x01")
        if ex.label == "positive":
            positives.append({"serial": serial, "slot": ex.slot, "clause": ex.clause, "variant": ex.kind, "args": ex.args if sum(map(len, ex.args)) < 2000 else None, "args_sha256": hashlib.sha256(b"\x00".join(argv_b)).hexdigest()})
            slots[ex.slot] += 1
            clauses[ex.clause] += 1
            if ex.kind:
                variants[ex.kind] += 1
        elif ex.label == "decoy":
            decoys[ex.kind] += 1
        yield recs
    truth.update(
        exec_events=count,
        args_digest=digest.hexdigest(),
        positives_by_slot=dict(sorted(slots.items())),
        positives_by_clause=dict(sorted(clauses.items())),
        positive_variants=dict(sorted(variants.items())),
        decoys=sum(decoys.values()),
        decoys_by_kind=dict(sorted(decoys.items())),
        events_with_hex_args=hexed,
        events_with_split_args=split,
    )


def generate(
    out: Path,
    count: int,
    seed: int = 7,
    positive_rate: float = 0.001,
    decoy_rate: float = 0.005,
    node: str | None = None,
    interleave_rate: float = 0.08,
) -> dict[str, Any]:
    """Write ``count`` exec events (plus noise) to ``out`` and the sidecar; return the sidecar."""
    r = random.Random(seed)
    truth: dict[str, Any] = {"generator": "gen_audit", "version": 1, "seed": seed, "count": count, "node": node, "positive_rate": positive_rate, "positive_detail": []}
    prefix = f"node={node} " if node else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    nbytes = 0
    interleaved = Counter[str]()
    held: list[str] = []  # records deferred until after the next event
    with tmp.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as f:

        def put(recs: list[str]) -> None:
            nonlocal nbytes
            text = "".join(prefix + x + "\n" for x in recs)
            nbytes += len(text.encode()) if not text.isascii() else len(text)
            f.write(text)

        pending: list[str] | None = None  # an event whose records alternate with the next
        for recs in _events(r, count, positive_rate, decoy_rate, truth):
            if pending is not None:
                merged: list[str] = []
                for i in range(max(len(pending), len(recs))):
                    merged.extend(pending[i : i + 1])
                    merged.extend(recs[i : i + 1])
                put(merged)
                pending = None
                interleaved["alternating"] += 1
            elif len(recs) > 3 and (x := r.random()) < interleave_rate:
                if x < interleave_rate * 0.3:
                    pending = recs
                    continue
                # Late PROCTITLE (and sometimes the PATHs): they arrive after the next event.
                cut = -1 if x < interleave_rate * 0.8 else -3
                put(recs[:cut])
                put(held)
                held = recs[cut:]
                interleaved["late_tail"] += 1
                continue
            else:
                put(recs)
            if held:
                put(held)
                held = []
        if pending is not None:
            put(pending)
        put(held)
    tmp.replace(out)
    det = truth["positive_detail"]
    truth.update(
        bytes=nbytes,
        positives=len(det),
        positive_serials=[p["serial"] for p in det],
        interleaved=dict(interleaved),
    )
    # keep the big list last so the summary is readable at the top of the file
    truth["positive_detail"] = truth.pop("positive_detail")
    sidecar_path(out).write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2))
    return truth


def sidecar_path(out: Path) -> Path:
    """Where the truth sidecar for ``out`` lives."""
    return out.with_name(out.name + ".truth.json")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=1_000_000, help="number of exec events (default 1,000,000)")
    p.add_argument("--out", type=Path, default=None, help="output path (default bench/data/audit-<count>.log)")
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same bytes)")
    p.add_argument("--node", default=None, help="prefix every line with node=NAME")
    p.add_argument("--positive-rate", type=float, default=0.001, help="share of planted positives (default 0.001)")
    p.add_argument("--decoy-rate", type=float, default=0.005, help="share of near-miss decoys (default 0.005)")
    p.add_argument("--interleave-rate", type=float, default=0.08, help="share of events whose records interleave with the next")
    a = p.parse_args(argv)
    out = a.out or Path(__file__).parent / "data" / f"audit-{a.count}.log"
    t0 = time.perf_counter()
    truth = generate(out, a.count, a.seed, a.positive_rate, a.decoy_rate, a.node, a.interleave_rate)
    dt = time.perf_counter() - t0
    sys.stderr.write(
        f"wrote {out} ({truth['count']} exec events, {truth['bytes'] / 1e6:.1f} MB, {truth['positives']} positives, "
        f"{truth['decoys']} decoys, {truth['events_with_hex_args']} with hex args, "
        f"{truth['events_with_split_args']} with split args) in {dt:.1f}s\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
