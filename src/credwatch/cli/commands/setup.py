"""``credwatch setup auditd``: the audit rules the seed rule needs, and their state.

The seed rule reads ``process.args``/``process.executable`` of exec events, so
the kernel must audit ``execve`` and ``execveat`` for both ABIs (a 32-bit
binary on a 64-bit kernel goes through the b32 table). This command prints
those rules, reports whether auditd is running and whether exec events are
captured (from ``auditctl -s`` and ``auditctl -l``), and with ``--apply``
installs the missing rules (root only).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from credwatch.cli.env import Env, ExitStatus
from credwatch.errors import ConfigError

DEFAULT_KEY = "credwatch"
ARCHES = ("b64", "b32")
EXEC_SYSCALLS = ("execve", "execveat")
PERSIST_HINT = "/etc/audit/rules.d/credwatch.rules"


def required_rules(key: str = DEFAULT_KEY) -> list[str]:
    """The auditctl rule specs (without the ``auditctl`` word) the seed rule needs."""
    return [f"-a always,exit -F arch={a} -S {','.join(EXEC_SYSCALLS)} -k {key}" for a in ARCHES]


@dataclass
class AuditStatus:
    """What ``auditctl -s`` and ``auditctl -l`` say (or why they could not be asked)."""

    auditctl: str | None
    enabled: int | None = None
    daemon_pid: int | None = None
    daemon_running: bool = False
    rules: list[str] = field(default_factory=list)
    error: str | None = None

    def covered(self) -> dict[str, set[str]]:
        """Per arch, which exec syscalls an ``always,exit`` rule audits."""
        return exec_coverage(self.rules)


def exec_coverage(rules: Sequence[str]) -> dict[str, set[str]]:
    """Read ``auditctl -l`` lines and return, per arch (b64/b32), the exec syscalls audited.

    A rule counts when its action is ``always`` on the ``exit`` list and its
    ``-S`` list names the syscall (or ``all``). A rule without ``-F arch=``
    audits the native table only, which ``auditctl`` reports as b64 on 64-bit
    machines; such rules are counted as b64.
    """
    out: dict[str, set[str]] = {a: set() for a in ARCHES}
    for line in rules:
        tokens = line.split()
        if "-a" not in tokens:
            continue
        action = tokens[tokens.index("-a") + 1] if tokens.index("-a") + 1 < len(tokens) else ""
        if set(action.split(",")) != {"always", "exit"}:
            continue
        arch = "b64"
        m = re.search(r"-F arch=(b32|b64)", line)
        if m:
            arch = m.group(1)
        syscalls: set[str] = set()
        for i, tok in enumerate(tokens):
            if tok == "-S" and i + 1 < len(tokens):
                syscalls.update(tokens[i + 1].split(","))
        if "all" in syscalls:
            syscalls.update(EXEC_SYSCALLS)
        out[arch].update(s for s in syscalls if s in EXEC_SYSCALLS)
    return out


def _run(argv: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def query_status(auditctl: str | None) -> AuditStatus:
    """Ask the kernel (through ``auditctl``) for its audit state and rules."""
    status = AuditStatus(auditctl=auditctl)
    if auditctl is None:
        status.error = "auditctl not found (install the 'auditd' package)"
        return status
    rc, out = _run([auditctl, "-s"])
    if rc != 0:
        status.error = out or f"auditctl -s exited with {rc}"
        return status
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            if parts[0] == "enabled":
                status.enabled = int(parts[1])
            elif parts[0] == "pid":
                status.daemon_pid = int(parts[1])
    if status.daemon_pid:
        status.daemon_running = os.path.exists(f"/proc/{status.daemon_pid}")
    rc, out = _run([auditctl, "-l"])
    if rc != 0:
        status.error = out or f"auditctl -l exited with {rc}"
        return status
    status.rules = [ln for ln in out.splitlines() if ln.startswith("-")]
    return status


def missing_rules(status: AuditStatus, key: str = DEFAULT_KEY) -> list[str]:
    """The required rules whose arch does not yet audit both exec syscalls."""
    cov = status.covered()
    return [r for a, r in zip(ARCHES, required_rules(key), strict=True)
            if not set(EXEC_SYSCALLS) <= cov[a]]


def _report(status: AuditStatus, key: str, env: Env) -> None:
    w = env.stdout.write
    w(f"Audit rules the seed rule needs (key '{key}'):\n")
    for r in required_rules(key):
        w(f"  auditctl {r}\n")
    w(f"To keep them across reboots, put the lines (without 'auditctl') in {PERSIST_HINT}\n"
      "and run 'augenrules --load'.\n\nStatus:\n")
    if status.auditctl is None or status.error:
        w(f"  cannot query the audit system: {status.error}\n")
        return
    enabled = {0: "disabled", 1: "enabled", 2: "enabled and locked (rules cannot change)"}
    w(f"  kernel auditing: {enabled.get(status.enabled or 0, str(status.enabled))}\n")
    if status.daemon_running:
        w(f"  auditd: running (pid {status.daemon_pid}), writing the audit log\n")
    else:
        w("  auditd: not running (records go to the kernel log, not to audit.log)\n")
    cov = status.covered()
    for a in ARCHES:
        have = ",".join(s for s in EXEC_SYSCALLS if s in cov[a]) or "none"
        w(f"  {a} exec syscalls audited: {have}\n")
    missing = missing_rules(status, key)
    capturing = bool(status.enabled) and status.daemon_running and not missing
    w(f"  exec events captured to audit.log: {'yes' if capturing else 'no'}\n")


def run(args: argparse.Namespace, env: Env) -> int:
    """Entry point of ``credwatch setup auditd``."""
    key: str = args.key
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,31}", key):
        raise ConfigError(f"invalid audit key {key!r}: use up to 31 letters, digits, '_', '.', ':' or '-'")
    auditctl = shutil.which("auditctl", path=env.environ.get("PATH", os.defpath))
    if args.apply:
        return _apply(auditctl, key, env)
    status = query_status(auditctl)
    _report(status, key, env)
    return ExitStatus.OK


def _apply(auditctl: str | None, key: str, env: Env) -> int:
    if env.euid() != 0:
        raise ConfigError("'setup auditd --apply' changes kernel audit rules and must run as root "
                          "(try: sudo credwatch setup auditd --apply)")
    if auditctl is None:
        raise ConfigError("auditctl not found: install the 'auditd' package first")
    status = query_status(auditctl)
    if status.error:
        raise ConfigError(f"cannot query the audit system: {status.error}")
    if status.enabled == 2:
        raise ConfigError("audit rules are locked (enabled 2) until reboot; add the rules to "
                          f"{PERSIST_HINT} instead")
    failed = False
    for rule in missing_rules(status, key):
        rc, out = _run([auditctl, *rule.split()])
        if rc == 0:
            env.stdout.write(f"added: {rule}\n")
        else:
            failed = True
            env.stderr.write(f"credwatch: could not add '{rule}': {out}\n")
    if status.enabled == 0:
        rc, out = _run([auditctl, "-e", "1"])
        if rc == 0:
            env.stdout.write("enabled kernel auditing (auditctl -e 1)\n")
        else:
            failed = True
            env.stderr.write(f"credwatch: could not enable auditing: {out}\n")
    _report(query_status(auditctl), key, env)
    return ExitStatus.ERROR if failed else ExitStatus.OK


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``setup`` (with its ``auditd`` target) to the CLI."""
    parser = subparsers.add_parser(
        "setup", help="prepare a data source (auditd: exec audit rules)",
        description="Prepare a telemetry source for credwatch.")
    targets = parser.add_subparsers(dest="target", metavar="TARGET")
    targets.required = True
    aud = targets.add_parser(
        "auditd", help="print/check/install the execve audit rules the seed rule needs",
        description="Print the audit rules the seed rule needs (execve and execveat, b64 and "
        "b32), report whether auditd runs and exec events are captured, and with --apply "
        "install missing rules (root only).",
        epilog="example:\n  credwatch setup auditd\n  sudo credwatch setup auditd --apply",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    aud.add_argument("--apply", action="store_true",
                     help="install the missing rules now with auditctl (root only)")
    aud.add_argument("--key", default=DEFAULT_KEY,
                     help=f"audit rule key to tag events with (default: {DEFAULT_KEY})")
    aud.set_defaults(func=run)
