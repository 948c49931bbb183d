"""``credwatch setup auditd``: help, rule text, status from the real auditctl, --apply."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from credwatch.cli.commands.setup import (
    AuditStatus,
    exec_coverage,
    missing_rules,
    required_rules,
)
from credwatch.cli.env import Env
from credwatch.cli.main import program

CONSOLE = Path(sys.executable).parent / "credwatch"
AUDITCTL = shutil.which("auditctl") or shutil.which("auditctl", path="/sbin:/usr/sbin")
IS_ROOT = os.geteuid() == 0

# Real `auditctl -l` output captured on the development machine.
REAL_LISTING = [
    "-a always,exit -F arch=b64 -S execve,execveat -F key=credwatch",
    "-a always,exit -F arch=b32 -S execve -F key=other",
    "-a never,exit -F arch=b32 -S execveat",
    "-w /etc/shadow -p r -k shadow",
]


def _env(environ: dict[str, str] | None = None) -> tuple[Env, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(), stdout=out, stderr=err,
              environ=environ if environ is not None else dict(os.environ))
    return env, out, err


def test_help_in_process_and_console_script(capsys: pytest.CaptureFixture[str]) -> None:
    env, out, _ = _env()
    assert program(["setup", "auditd", "--help"], env) == 0
    # Help goes to env.stdout (or, with a plain argparse exit, to sys.stdout).
    assert "--apply" in out.getvalue() + capsys.readouterr().out
    proc = subprocess.run([str(CONSOLE), "setup", "auditd", "--help"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 and "--apply" in proc.stdout and "example" in proc.stdout


def test_required_rules_cover_execve_and_execveat_on_both_abis() -> None:
    rules = required_rules("k1")
    assert rules == ["-a always,exit -F arch=b64 -S execve,execveat -k k1",
                     "-a always,exit -F arch=b32 -S execve,execveat -k k1"]


def test_coverage_from_a_real_listing() -> None:
    cov = exec_coverage(REAL_LISTING)
    assert cov == {"b64": {"execve", "execveat"}, "b32": {"execve"}}
    status = AuditStatus(auditctl="auditctl", enabled=1, rules=REAL_LISTING)
    assert missing_rules(status) == [required_rules()[1]]
    assert exec_coverage(["-a exit,always -F arch=b32 -S all"]) == {
        "b64": set(), "b32": {"execve", "execveat"}}


def test_missing_auditctl_is_reported_not_raised(tmp_path: Path) -> None:
    env, out, err = _env({"PATH": str(tmp_path)})
    assert program(["setup", "auditd"], env) == 0
    text = out.getvalue()
    assert "auditctl -a always,exit -F arch=b64 -S execve,execveat -k credwatch" in text
    assert "auditctl not found" in text
    if IS_ROOT:
        env, out, err = _env({"PATH": str(tmp_path)})
        assert program(["setup", "auditd", "--apply"], env) == 2
        assert "auditctl not found" in err.getvalue() and "Traceback" not in err.getvalue()


def test_bad_key_is_a_clean_error() -> None:
    env, _, err = _env()
    assert program(["setup", "auditd", "--key", "bad key;rm"], env) == 2
    assert "invalid audit key" in err.getvalue()


@pytest.mark.skipif(not IS_ROOT or AUDITCTL is None, reason="needs root and auditctl")
def test_status_matches_the_kernel() -> None:
    env, out, _ = _env()
    assert program(["setup", "auditd"], env) == 0
    text = out.getvalue()
    listing = subprocess.run([AUDITCTL or "auditctl", "-l"], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    cov = exec_coverage(listing)
    for arch in ("b64", "b32"):
        want = ",".join(s for s in ("execve", "execveat") if s in cov[arch]) or "none"
        assert f"{arch} exec syscalls audited: {want}" in text
    assert "exec events captured to audit.log:" in text


@pytest.mark.skipif(not IS_ROOT, reason="needs root to drop to an unprivileged user")
@pytest.mark.parametrize("euid", [1000, 65534])
def test_apply_as_non_root_is_a_clear_error(euid: int) -> None:
    # The effective uid comes from the Env, so this holds whoever runs the tests, from any
    # checkout path and whatever its modes.
    env, out, err = _env()
    env.euid = lambda: euid
    rc = program(["setup", "auditd", "--apply"], env)
    assert rc == 2, err.getvalue()
    assert "must run as root" in err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert out.getvalue() == ""


@pytest.mark.root
@pytest.mark.skipif(not IS_ROOT or AUDITCTL is None, reason="needs root and auditctl")
def test_apply_installs_the_rules_and_restores_state() -> None:
    ctl = AUDITCTL or "auditctl"
    status = subprocess.run([ctl, "-s"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        pytest.skip(f"kernel audit unavailable: {status.stdout}{status.stderr}")
    enabled_before = next(int(ln.split()[1]) for ln in status.stdout.splitlines()
                          if ln.startswith("enabled"))
    if enabled_before == 2:
        pytest.skip("audit rules are locked (enabled 2)")
    key = "cwsetuptest"
    env, out, err = _env()
    try:
        rc = program(["setup", "auditd", "--apply", "--key", key], env)
        assert rc == 0, err.getvalue()
        listing = subprocess.run([ctl, "-l"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()
        cov = exec_coverage(listing)
        assert cov["b64"] >= {"execve", "execveat"} and cov["b32"] >= {"execve", "execveat"}
        assert "enabled" in subprocess.run([ctl, "-s"], capture_output=True, text=True,
                                           check=True).stdout
        assert "b64 exec syscalls audited: execve,execveat" in out.getvalue()
    finally:
        for rule in required_rules(key):
            subprocess.run([ctl, *rule.replace("-a ", "-d ", 1).split()], capture_output=True,
                           check=False)
        subprocess.run([ctl, "-e", str(enabled_before)], capture_output=True, check=False)
    after = subprocess.run([ctl, "-l"], capture_output=True, text=True, check=True).stdout
    assert key not in after
