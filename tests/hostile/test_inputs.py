"""Hostile and broken inputs: each is reported as ``path: reason`` (or ``file:line``), never stops
the other inputs, never hangs, and keeps time and memory bounded (issue #12, classes 2-5, 8, 13).

Cases that could hang or blow up run ``credwatch scan`` in a subprocess with a timeout (a failure
guard only) and an address-space limit, and measure its peak RSS.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records
from tests.cli.helpers import Result, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
AUDITBEAT = EXAMPLES / "ecs" / "auditbeat.ndjson"
DEFEND = EXAMPLES / "ecs" / "defend.ndjson"
AUDIT_LOG = EXAMPLES / "auditd" / "audit.log"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "auditd"
REAL_AUDIT = sorted(FIXTURES.glob("*.log"))
#: Peak RSS allowed to a scan of a hostile input (issue #12, class 8).
RSS_LIMIT_MB = 256

# Peak RSS of the scan itself: VmHWM belongs to the process's own memory map, while Linux
# carries RUSAGE_SELF's maxrss across exec (a child forked from a big pytest would report
# pytest's peak). Forked workers are measured with RUSAGE_CHILDREN.
_WRAPPER = (
    "import resource, sys\n"
    "from credwatch.cli.main import program\n"
    "code = program(sys.argv[1:])\n"
    "own = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
    "peak = max(own + [resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss])\n"
    "sys.stderr.write(f'\\nPEAK-RSS-KB {peak}\\n')\n"
    "sys.exit(code)\n"
)


def scan(*args: str) -> Result:
    return run_cli("scan", "--no-store", "--format", "ndjson", *args)


def uuids(res: Result) -> list[str]:
    return sorted(a["kibana.alert.uuid"] for a in res.alerts())


def run_scan(*args: str, timeout: float = 90, address_space: int = 4 << 30,
             user: int | None = None) -> tuple[int, str, float]:
    """``credwatch scan`` in a subprocess: exit code, stderr, peak RSS in MB (self and workers)."""

    def limits() -> None:
        # A guard for the machine, should a regression allocate without bound.
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        if user is not None:
            os.setgid(user)
            os.setuid(user)

    python, env = _python_for(user)
    proc = subprocess.run(
        [python, "-c", _WRAPPER, "scan", "--no-store", "--format", "ndjson", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout, preexec_fn=limits,
        env=env, check=False)
    err = proc.stderr.decode("utf-8", "replace")
    peak = [line for line in err.splitlines() if line.startswith("PEAK-RSS-KB ")]
    rss = int(peak[-1].split()[1]) / 1024 if peak else float("inf")
    return proc.returncode, err, rss


def _runnable_by_others(path: str) -> bool:
    real = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & 0o001 for p in [real, *real.parents])


def _python_for(user: int | None) -> tuple[str, dict[str, str]]:
    """An interpreter that ``user`` may run, and its environment.

    When root drops to nobody and this interpreter lives under a private home (pyenv in
    /root), the system python of the same version runs credwatch from its source folder
    and the virtualenv's site-packages instead.
    """
    env = {**os.environ, "HOME": tempfile.gettempdir()}
    if user is None or _runnable_by_others(sys.executable):
        return sys.executable, env
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (shutil.which(version, path="/usr/bin:/usr/local/bin"), "/usr/bin/python3"):
        if candidate and _runnable_by_others(candidate):
            import credwatch

            src = str(Path(credwatch.__file__).resolve().parents[1])
            site = [p for p in sys.path if p.endswith("site-packages") and _runnable_by_others(p)]
            env["PYTHONPATH"] = os.pathsep.join([src, *site])
            return candidate, env
    pytest.skip("no interpreter that an unprivileged user may run")


@pytest.fixture(scope="module")
def baseline() -> Result:
    res = scan(str(AUDITBEAT))
    assert res.code == 0 and res.alerts()
    return res


# --- class 2: one bad input must not stop the others -----------------------------------------

def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_gzip_is_reported_and_the_other_inputs_are_evaluated(
        tmp_path: Path, baseline: Result, damage: str) -> None:
    packed = _gz(AUDITBEAT.read_bytes() * 3)
    if damage == "truncated":
        bad = packed[: len(packed) // 2]
    else:
        body = bytearray(packed)
        for i in range(40, 60):
            body[i] ^= 0xFF
        bad = bytes(body)
    (tmp_path / "bad.ndjson.gz").write_bytes(bad)
    res = scan(str(tmp_path / "bad.ndjson.gz"), str(AUDITBEAT))
    assert res.code == 3, res.err
    assert f"{tmp_path / 'bad.ndjson.gz'}: " in res.err and "gzip" in res.err
    assert "Traceback" not in res.err and "internal error" not in res.err
    assert set(uuids(baseline)) <= set(uuids(res))


def test_dangling_symlink_and_socket_are_reported_and_skipped(tmp_path: Path, baseline: Result) -> None:
    (tmp_path / "dangling.ndjson").symlink_to(tmp_path / "gone.ndjson")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s"))
        res = scan(str(tmp_path / "dangling.ndjson"), str(tmp_path / "s"), str(AUDITBEAT))
    finally:
        sock.close()
    assert res.code == 3, res.err
    assert f"{tmp_path / 'dangling.ndjson'}: dangling symbolic link" in res.err
    assert f"{tmp_path / 's'}: a socket" in res.err
    assert uuids(res) == uuids(baseline)


def test_a_fifo_inside_a_folder_never_hangs_the_scan(tmp_path: Path, baseline: Result) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    shutil.copy(AUDITBEAT, folder / "events.ndjson")
    os.mkfifo(folder / "pipe.ndjson")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock"))
    try:
        code, err, _rss = run_scan(str(folder), timeout=60)
    finally:
        sock.close()
    assert code == 3, err
    assert f"{folder / 'pipe.ndjson'}: a FIFO in a folder, skipped" in err
    assert f"{folder / 'sock'}: a socket in a folder, skipped" in err
    assert f"{len(baseline.alerts())} alert(s)" in err


def test_an_unreadable_file_and_subfolder_are_reported(baseline: Result) -> None:
    # Permission bits do not stop root: then the scan runs as nobody (65534).
    user = 65534 if os.geteuid() == 0 else None
    top = Path(tempfile.mkdtemp(prefix="credwatch-perm-"))
    try:
        top.chmod(0o755)
        shutil.copy(AUDITBEAT, top / "ok.ndjson")
        (top / "ok.ndjson").chmod(0o644)
        (top / "secret.ndjson").write_bytes(AUDITBEAT.read_bytes())
        (top / "secret.ndjson").chmod(0)
        (top / "locked").mkdir()
        (top / "locked" / "more.ndjson").write_bytes(AUDITBEAT.read_bytes())
        (top / "locked").chmod(0)
        code, err, _rss = run_scan(str(top), str(top / "secret.ndjson"), user=user, timeout=60)
    finally:
        (top / "locked").chmod(0o755)
        shutil.rmtree(top)
    assert code == 3, err
    assert f"{top / 'secret.ndjson'}: cannot open: permission denied" in err
    assert f"{top / 'locked'}: folder not readable (permission denied)" in err
    assert f"{len(baseline.alerts())} alert(s)" in err


def test_a_file_that_shrinks_while_read_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "growing.ndjson"
    path.write_bytes(AUDITBEAT.read_bytes() * 40)  # larger than one read
    size = path.stat().st_size
    diag = Diagnostics()
    records = read_records([str(path), str(AUDITBEAT)], diag)
    next(records)
    with path.open("r+b") as fh:
        fh.truncate(1000)
    rest = list(records)
    assert diag.failed == [f"{path}: file shrank while being read ({size} -> 1000 bytes); "
                           "its end was not read"]
    assert sum(1 for r in rest if r.source == str(AUDITBEAT)) == 89


# --- class 3: exit codes never lie -------------------------------------------------------------

def test_a_failed_input_beside_alerts_exits_partial_not_ok(tmp_path: Path) -> None:
    res = scan(str(tmp_path / "missing.ndjson"), str(AUDITBEAT))
    assert res.code == 3 and res.alerts()
    assert f"{tmp_path / 'missing.ndjson'}: no such file or directory" in res.err
    quiet = scan("--quiet", str(tmp_path / "missing.ndjson"), str(AUDITBEAT))
    assert quiet.code == 3 and "missing.ndjson: no such file" in quiet.err


def test_a_failed_input_without_alerts_is_not_no_alerts(tmp_path: Path) -> None:
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    res = scan("--query", "process.name:none-such", str(tmp_path / "bad.gz"), str(AUDITBEAT))
    assert res.code == 3, res.err


# --- class 5: a bad first line must not lose a file ----------------------------------------------

def _events() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in AUDITBEAT.read_bytes().splitlines() if line.strip()]


def _ndjson() -> bytes:
    return AUDITBEAT.read_bytes()


FIRST_LINES: dict[str, Callable[[], bytes]] = {
    "empty array first": lambda: b"[]\n" + _ndjson(),
    "truncated object first": lambda: b'{"process": {"name": "cat",\n' + _ndjson(),
    "BOM before an array": lambda: b"\xef\xbb\xbf" + json.dumps(_events()).encode(),
    "lone surrogate first": lambda: b'{"message": "\\ud800"}\n' + _ndjson(),
    "jq-pretty concatenated objects": lambda: b"".join(
        json.dumps(e, indent=2).encode() + b"\n" for e in _events()),
    "array followed by garbage": lambda: json.dumps(_events()).encode() + b"\n]garbage\x00\n",
    "blank lines beyond the look-ahead": lambda: b"\n" * 100_000 + _ndjson(),
    "garbage then pretty array": lambda: b"# exported by hand\n" + json.dumps(_events(), indent=1).encode(),
}


@pytest.mark.parametrize("case", sorted(FIRST_LINES))
def test_a_bad_first_line_does_not_lose_the_file(tmp_path: Path, baseline: Result, case: str) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(FIRST_LINES[case]())
    res = scan(str(path))
    assert res.code == 0, res.err
    assert uuids(res) == uuids(baseline), res.err
    assert "Traceback" not in res.err


def test_a_single_line_search_response_larger_than_the_line_limit(tmp_path: Path) -> None:
    hits = [{"_index": "logs-endpoint.events.process-default", "_id": f"id-{n}-{i}", "_source": e}
            for n in range(64) for i, e in enumerate(_events())]
    response = {"took": 3, "timed_out": False, "hits": {"total": {"value": len(hits)}, "hits": hits}}
    one_line = tmp_path / "search.json"
    one_line.write_bytes(orjson.dumps(response))
    assert one_line.stat().st_size > 16 * 1024 * 1024
    pretty = tmp_path / "pretty.json"
    pretty.write_bytes(orjson.dumps(response, option=orjson.OPT_INDENT_2))
    res, want = scan(str(one_line)), scan(str(pretty))
    assert res.code == 0, res.err
    assert len(res.alerts()) == 64 * len(scan(str(AUDITBEAT)).alerts())
    assert uuids(res) == uuids(want)


# --- class 4: values out of range ---------------------------------------------------------------

SYSCALL = (b'type=SYSCALL msg=audit(%s:%s): arch=c000003e syscall=59 success=yes exit=0 ppid=1 '
           b'pid=%s auid=0 uid=0 gid=0 euid=0 comm="cat" exe="/usr/bin/cat" key="k"\n')
EXECVE = b'type=EXECVE msg=audit(%s:%s): argc=%s a0="cat" %s="/root/.kube/config"\n'


def _bad_event(stamp: bytes, serial: bytes, pid: bytes = b"7", argc: bytes = b"2",
               index: bytes = b"a1") -> bytes:
    return SYSCALL % (stamp, serial, pid) + EXECVE % (stamp, serial, argc, index)


def test_values_out_of_range_are_bounded_not_raised(tmp_path: Path) -> None:
    digits = b"9" * 5000
    bad = b"".join([
        _bad_event(b"99999999999999.000", b"1"),  # an epoch beyond year 9999
        _bad_event(b"1796124794.643", digits),  # a serial of 5000 digits
        _bad_event(b"1796124795.643", b"2", pid=digits, argc=digits, index=b"a" + digits),
        _bad_event(b"1796124796.643", b"3", argc=b"999999999999"),  # argc claims 10^12 arguments
    ])
    path = tmp_path / "audit.log"
    path.write_bytes(bad + AUDIT_LOG.read_bytes())
    clean = scan(str(AUDIT_LOG))
    code, err, rss = run_scan(str(path), address_space=2 << 30)
    assert code == 0, err
    assert "internal error" not in err and "Traceback" not in err
    assert f"{len(clean.alerts()) + 1} alert(s)" in err  # the argc=10^12 exec still alerts
    assert f"{path}:1: bad-header" in err
    assert rss < RSS_LIMIT_MB


def test_huge_numbers_in_ecs_events_are_reported_not_raised(tmp_path: Path, baseline: Result) -> None:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b'{"process": {"pid": ' + b"9" * 5000 + b'}}\n'
                     + b'{"process": {"pid": 1e400, "args_count": 999999999999999999999}}\n' + _ndjson())
    res = scan(str(path))
    assert res.code == 0, res.err
    assert uuids(res) == uuids(baseline)


# --- class 8: fast-path blow-ups ----------------------------------------------------------------

def _gzip_of_one_string(path: Path, prefix: bytes, size: int) -> None:
    pack = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunk = b"x" * (1 << 20)
    with path.open("wb") as fh:
        fh.write(pack.compress(prefix))
        for _ in range(size // len(chunk)):
            fh.write(pack.compress(chunk))
        fh.write(pack.flush())


BLOWUPS: dict[str, Callable[[Path], list[str]]] = {
    "8 MiB of bare newlines after an event, fast path": lambda d: [
        "--prefilter", "always", _write(d / "nl.ndjson", b"{}\n" + b"\n" * (8 << 20))],
    "8 MiB of CRLF after an event, fast path": lambda d: [
        "--prefilter", "always", _write(d / "crlf.ndjson", b"{}\n" + b"\r\n" * (4 << 20))],
    "30 MB [{},{},...]": lambda d: [_write(d / "arr.json", b"[" + b",".join([b"{}"] * 10_000_000) + b"]")],
}


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("case", sorted(BLOWUPS))
def test_blowups_stay_linear_and_under_the_memory_limit(tmp_path: Path, case: str) -> None:
    args = BLOWUPS[case](tmp_path)
    code, err, rss = run_scan(*args, timeout=90)
    assert code == 1, err
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MB"


def test_a_gzip_inflating_to_one_huge_string_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.json.gz"
    _gzip_of_one_string(path, b'["', 2 << 30)  # an array holding one 2 GiB string
    code, err, rss = run_scan(str(path), str(AUDITBEAT), timeout=120)
    assert code == 0, err
    assert rss < RSS_LIMIT_MB, f"peak RSS {rss:.0f} MB"
    assert any(why in err for why in ("value-too-large", "line-too-long", "truncated")), err


# --- class 13: EOE and other valid non-exec records are not garbage ------------------------------

NON_EXEC = b"""\
type=PROCTITLE msg=audit(1796124900.001:900): proctitle=2F62696E2F7368
type=CWD msg=audit(1796124900.002:901): cwd="/root"
type=PATH msg=audit(1796124900.003:902): item=0 name="/etc/hosts" inode=1 dev=08:01 mode=0100644 nametype=NORMAL
type=SOCKADDR msg=audit(1796124900.004:903): saddr=0200
type=BPRM_FCAPS msg=audit(1796124900.005:904): fver=0 fp=0 fi=0 fe=0 old_pp=0 old_pi=0 old_pe=0
type=CONFIG_CHANGE msg=audit(1796124900.006:905): auid=0 ses=1 op=add_rule key="k" list=4 res=1
type=USER_LOGIN msg=audit(1796124900.007:906): pid=1 uid=0 auid=0 ses=1 msg='op=login acct="root" res=success'
type=SERVICE_START msg=audit(1796124900.008:907): pid=1 uid=0 auid=4294967295 msg='unit=cron res=success'
type=USER_CMD msg=audit(1796124900.009:908): pid=2 uid=0 auid=0 msg='cwd="/" cmd=6C73 res=success'
type=EOE msg=audit(1796124900.010:909):
"""


def _with_eoe(log: bytes) -> bytes:
    """The log with an EOE record after the last record of every event (as auditd writes)."""
    out: list[bytes] = []
    lines = log.splitlines(keepends=True)
    for i, line in enumerate(lines):
        out.append(line)
        stamp = line.split(b"audit(", 1)[-1].split(b")", 1)[0]
        later = b"".join(lines[i + 1:])
        if b"audit(" + stamp + b")" not in later:
            out.append(b"type=EOE msg=audit(" + stamp + b"): \n")
    return b"".join(out)


def test_eoe_and_records_without_exec_data_are_not_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(_with_eoe(AUDIT_LOG.read_bytes()) + NON_EXEC)
    clean = scan(str(AUDIT_LOG))
    res = scan(str(path))
    assert res.code == 0, res.err
    assert uuids(res) == uuids(clean)
    summary = res.err.strip().splitlines()[-1]
    assert "0 skipped" in summary and "audit-" not in summary, summary
    assert "warning" not in res.err


# --- acceptance: garbage interleaved at random lines gives exactly the clean corpus's alerts ------

GARBAGE = [b"[]", b'{"a":', b"not json at all", b"\x00\x01\x02binary\xff", b"]", b"}", b'"a string"',
           b"123", b'{"message": "\\ud800"}', b"[", b"{", b'"unterminated', b"type=", b"----garbage",
           b"\xef\xbb\xbf", b'{"hits": 3}']


def _interleave(data: bytes, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = data.splitlines(keepends=True)
    out = [rng.choice(GARBAGE) + b"\n"]  # line 1 is always garbage
    for line in lines:
        out.append(line)
        if rng.random() < 0.2:
            out.append(rng.choice(GARBAGE) + b"\n")
    return b"".join(out)


def _corpora() -> Iterator[Path]:
    yield AUDITBEAT
    yield DEFEND
    yield AUDIT_LOG
    yield from REAL_AUDIT


@pytest.mark.parametrize("corpus", list(_corpora()), ids=lambda p: p.name)
def test_garbage_interleaved_at_random_lines_changes_no_alert(tmp_path: Path, corpus: Path) -> None:
    clean = scan(str(corpus))
    for seed in range(4):
        dirty = tmp_path / f"{seed}-{corpus.name}"
        dirty.write_bytes(_interleave(corpus.read_bytes(), seed))
        res = scan(str(dirty))
        assert res.code == clean.code, (seed, res.err)
        assert uuids(res) == uuids(clean), (seed, res.err)
        assert "Traceback" not in res.err
