"""Live: a real auditd writes a real exec, and follower + reassembler + mapper see it.

Runs only as root, where ``/sbin/auditd`` exists and no other audit daemon is
registered with the kernel. It starts its own auditd on a private config
directory and log file, adds one keyed rule, and restores the audit state
(rule, enabled flag, daemon) whatever happens.

Nothing sleeps: waits are on what can be observed, with a deadline only as a
failure guard. The daemon's start is waited for on its log folder (inotify) and
on the process itself; the exec's records on the log's writes; and the event is
closed when its PROCTITLE record (the last one the kernel writes for an exec)
has been read, not after an idle time.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from credwatch.normalize.auditd import to_ecs
from credwatch.sources.auditd import Reassembler, feed_lines
from credwatch.sources.follow import FollowedLine, Follower

AUDITD = shutil.which("auditd", path="/sbin:/usr/sbin")
AUDITCTL = shutil.which("auditctl", path="/sbin:/usr/sbin")

CONF = """\
local_events = yes
write_logs = yes
log_file = {log}
log_group = root
log_format = ENRICHED
flush = INCREMENTAL_ASYNC
freq = 50
max_log_file = 8
num_logs = 5
priority_boost = 4
name_format = NONE
max_log_file_action = ROTATE
space_left = 75
space_left_action = SYSLOG
admin_space_left = 50
admin_space_left_action = SUSPEND
disk_full_action = SUSPEND
disk_error_action = SUSPEND
use_libwrap = no
tcp_listen_queue = 5
tcp_max_per_addr = 1
tcp_client_max_idle = 0
transport = TCP
distribute_network = no
q_depth = 2000
overflow_action = SYSLOG
max_restarts = 10
plugin_dir = {plugins}
end_of_event_timeout = 2
"""


_IN_MODIFY, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x80, 0x100
_PROCTITLE = re.compile(rb"type=PROCTITLE msg=(audit\([^)]*\))")


class FolderWrites:
    """inotify on a folder: :meth:`wait` returns when a file in it is created or written."""

    def __init__(self, folder: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if self.fd < 0:
            pytest.skip(f"inotify unavailable: {os.strerror(ctypes.get_errno())}")
        if libc.inotify_add_watch(self.fd, os.fsencode(folder), _IN_MODIFY | _IN_MOVED_TO | _IN_CREATE) < 0:
            os.close(self.fd)
            pytest.skip(f"cannot watch {folder}: {os.strerror(ctypes.get_errno())}")

    def wait(self, timeout: float) -> bool:
        """Block until something in the folder was written (True) or ``timeout`` passed."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 1 << 16):
                pass
        return bool(ready)

    def close(self) -> None:
        os.close(self.fd)


def _closed_at_proctitle(batch: Iterable[FollowedLine]) -> Iterator[tuple[int, bytes]]:
    """The lines, each PROCTITLE record followed by an EOE for its event.

    The kernel writes PROCTITLE last for an exec, so the reassembler can close
    the event there instead of after an idle time; a real EOE later is ignored.
    """
    for fl in batch:
        yield fl.start, fl.line
        m = _PROCTITLE.search(fl.line)
        if m is not None:
            yield fl.start, b"type=EOE msg=" + m.group(1) + b": \n"


def _ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AUDITCTL or "auditctl", *args], capture_output=True, text=True,
                          check=False)


def _status() -> dict[str, int]:
    out = _ctl("-s").stdout
    return {p[0]: int(p[1]) for p in (ln.split() for ln in out.splitlines())
            if len(p) == 2 and p[1].lstrip("-").isdigit()}


@contextlib.contextmanager
def _audit_lock() -> Iterator[None]:
    """One live-auditd test at a time on this machine, across concurrent test runs.

    The kernel's audit state is global: two runs that each read it, start a daemon
    and restore it would restore each other's changes.
    """
    folder = "/run" if os.access("/run", os.W_OK) else tempfile.gettempdir()
    fd = os.open(os.path.join(folder, "credwatch-live-auditd.lock"),
                 os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits for the other run's test to finish
        yield
    finally:
        os.close(fd)


@pytest.fixture
def live_auditd(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    with _audit_lock():
        yield from _live_auditd(tmp_path)


def _live_auditd(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    if os.geteuid() != 0 or AUDITD is None or AUDITCTL is None:
        pytest.skip("needs root, auditd and auditctl")
    before = _status()
    if not before:
        pytest.skip(f"kernel audit unavailable: {_ctl('-s').stderr.strip()}")
    if before.get("pid", 0) != 0:
        pytest.skip(f"another audit daemon (pid {before['pid']}) is registered")
    if before.get("enabled") == 2:
        pytest.skip("audit configuration is locked (enabled 2)")
    confdir = tmp_path / "conf"
    (confdir / "plugins").mkdir(parents=True)
    log = tmp_path / "log" / "audit.log"
    log.parent.mkdir()
    (confdir / "auditd.conf").write_text(CONF.format(log=log, plugins=confdir / "plugins"))
    key = f"cwlive{os.getpid()}"
    rule = ["always,exit", "-F", "arch=b64", "-S", "execve,execveat", "-k", key]
    writes = FolderWrites(log.parent)
    proc = subprocess.Popen([AUDITD, "-n", "-c", str(confdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10  # a failure guard, not a wait
        # Registration is seen in the kernel's status; auditd creates and writes its log
        # around it (DAEMON_START), so each log write, or the daemon's exit, wakes the check.
        while _status().get("pid") != proc.pid:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.skip(f"auditd did not start: {err.strip()}")
            writes.wait(min(0.2, deadline - time.monotonic()))
        writes.close()
        added = _ctl("-a", *rule)
        if added.returncode != 0:
            pytest.skip(f"cannot add an audit rule: {added.stderr.strip()}")
        yield log, key
    finally:
        _ctl("-d", *rule)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        _ctl("-e", str(before.get("enabled", 0)))
        if "backlog_limit" in before:
            _ctl("-b", str(before["backlog_limit"]))
        assert key not in _ctl("-l").stdout


@pytest.mark.root
def test_live_exec_is_read_reassembled_and_mapped_within_a_second(
        live_auditd: tuple[Path, str], tmp_path: Path) -> None:
    log, key = live_auditd
    secret = tmp_path / "home" / ".aws" / "credentials"
    secret.parent.mkdir(parents=True)
    secret.write_text("[default]\naws_secret_access_key = FAKE-NOT-A-SECRET\n")
    follower = Follower(log, start="beginning")
    reasm = Reassembler()
    writes = FolderWrites(log.parent)
    follower.poll()
    subprocess.run(["/bin/cat", str(secret)], capture_output=True, check=True)
    ran_at = time.monotonic()
    found: list[dict[str, Any]] = []
    deadline = ran_at + 10  # a failure guard: the assertion below wants under a second
    while not found and time.monotonic() < deadline:
        batch = follower.poll()
        for ev in feed_lines(_closed_at_proctitle(batch), reasm, path=str(log)):
            doc = to_ecs(ev)
            if doc and doc.get("tags") == [key] and doc["process"]["args"] == ["/bin/cat", str(secret)]:
                found.append(doc)
        if not batch and not found:
            writes.wait(deadline - time.monotonic())  # until auditd writes again
    seen_after = time.monotonic() - ran_at
    writes.close()
    follower.close()
    assert len(found) == 1
    doc = found[0]
    assert doc["process"]["name"] == "cat"
    assert doc["process"]["executable"] in ("/usr/bin/cat", "/bin/cat")
    assert doc["event"]["action"] == "executed" and doc["event"]["outcome"] == "success"
    assert seen_after < 1.0, f"mapped {seen_after:.2f}s after the exec"
