"""Live: a real auditd writes a real exec, and follower + reassembler + mapper see it.

Runs only as root, where ``/sbin/auditd`` exists and no other audit daemon is
registered with the kernel. It starts its own auditd on a private config
directory and log file, adds one keyed rule, and restores the audit state
(rule, enabled flag, daemon) whatever happens.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from credwatch.normalize.auditd import to_ecs
from credwatch.sources.auditd import Reassembler, feed_lines
from credwatch.sources.follow import Follower

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
    proc = subprocess.Popen([AUDITD, "-n", "-c", str(confdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while _status().get("pid") != proc.pid:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.skip(f"auditd did not start: {err.strip()}")
            time.sleep(0.1)
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
    follower = Follower(log, start="beginning", poll_interval=0.1)
    reasm = Reassembler(idle_seconds=0.3)
    follower.poll()
    subprocess.run(["/bin/cat", str(secret)], capture_output=True, check=True)
    ran_at = time.monotonic()
    found: list[dict[str, Any]] = []
    deadline = ran_at + 10
    while not found and time.monotonic() < deadline:
        batch = follower.poll()
        events = list(feed_lines(((x.start, x.line) for x in batch), reasm, path=str(log)))
        events += reasm.flush_idle()
        for ev in events:
            doc = to_ecs(ev)
            if doc and doc.get("tags") == [key] and doc["process"]["args"] == ["/bin/cat", str(secret)]:
                found.append(doc)
        if not batch:
            time.sleep(follower.poll_interval)
    seen_after = time.monotonic() - ran_at
    follower.close()
    assert len(found) == 1
    doc = found[0]
    assert doc["process"]["name"] == "cat"
    assert doc["process"]["executable"] in ("/usr/bin/cat", "/bin/cat")
    assert doc["event"]["action"] == "executed" and doc["event"]["outcome"] == "success"
    assert seen_after < 1.0, f"mapped {seen_after:.2f}s after the exec"
