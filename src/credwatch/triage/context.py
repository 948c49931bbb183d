"""What the event itself says about a credential read: command line, chain, identity, place.

Each function reads one aspect of an ECS process event (nested or flat-dotted,
Elastic Defend or auditd shape) and returns plain JSON-able data. Nothing here
looks at other events; :mod:`credwatch.triage.correlate` does that.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from credwatch.alerts.ids import FieldIndex, field_index
from credwatch.normalize.flatten import get_values

#: ``auid``/``ses`` value meaning "never set": the process has no login session.
AUDIT_UNSET = "4294967295"

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "fish", "busybox"})
#: Commands that run their arguments as another command.
WRAPPERS = frozenset({"sudo", "doas", "env", "nohup", "nice", "ionice", "timeout", "xargs",
                      "stdbuf", "setsid", "chroot", "nsenter", "busybox", "runuser", "su"})
ENCODERS = frozenset({"base64", "base32", "basenc", "xxd", "od", "hexdump", "uuencode", "gpg"})
COMPRESSORS = frozenset({"gzip", "bzip2", "xz", "zstd", "lz4", "pigz", "compress"})
NETCATS = frozenset({"nc", "ncat", "netcat", "socat", "telnet"})
REMOTE_COPY = frozenset({"scp", "rsync", "sftp"})
SCRIPTERS = re.compile(r"^(?:python[\d.]*|perl[\d.]*|ruby[\d.]*|node|nodejs|php[\d.]*|lua[\d.]*)$")
_SCRIPT_NET = re.compile(
    r"socket|requests\.|urllib|http\.client|httplib|IO::Socket|LWP|HTTP::Tiny|Net::HTTP|"
    r"TCPSocket|net\.connect|https?\.request|fetch\(|fsockopen|curl_exec|paramiko|smtplib|ftplib")
_REMOTE_SPEC = re.compile(r"^(?:[\w.-]+@)?[\w.-]+:(?!//)")  # user@host:path / host:path
_CURL_UPLOAD = frozenset({"-d", "--data", "--data-binary", "--data-raw", "--data-urlencode",
                          "--data-ascii", "-T", "--upload-file", "-F", "--form", "--form-string",
                          "--json"})
_WGET_UPLOAD = ("--post-file", "--post-data", "--body-file", "--body-data", "--method=PUT",
                "--method=POST")

#: Parents/ancestors whose credential reads are normally expected (guide's false positives).
BENIGN_AUTOMATION: dict[str, str] = {
    "kubelet": "kubelet", "containerd-shim": "container runtime shim",
    "containerd-shim-runc-v2": "container runtime shim", "runc": "container runtime",
    "crio": "container runtime", "conmon": "container runtime",
    "cloud-init": "cloud-init bootstrap", "ansible": "Ansible", "ansible-playbook": "Ansible",
    "salt-minion": "Salt", "salt-call": "Salt", "puppet": "Puppet", "chef-client": "Chef",
    "gitlab-runner": "GitLab runner", "Runner.Worker": "GitHub Actions runner",
    "Runner.Listener": "GitHub Actions runner", "jenkins-agent": "Jenkins agent",
    "restic": "restic backup", "borg": "Borg backup", "velero": "Velero backup",
    "kube-bench": "kube-bench compliance scan", "lynis": "Lynis audit",
    "trivy": "Trivy scanner", "falco-driver-loader": "Falco driver loader",
}
#: Prefix and substring forms (``containerd-shim-*``, ``ansible-*``, Jenkins' agent.jar).
_BENIGN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^containerd-shim"), "container runtime shim"),
    (re.compile(r"^ansible"), "Ansible"),
    (re.compile(r"(?:^|/)agent\.jar$|jenkins"), "Jenkins agent"),
    (re.compile(r"^Runner\.(?:Worker|Listener)$"), "GitHub Actions runner"),
)
_SCRATCH = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/", "/home/")

_JUMP = re.compile(r"bastion|jump|jmp|gateway", re.I)
_CONTROL = re.compile(r"control-?plane|master|(?:^|[-_.])cp\d*(?:$|[-_.])|apiserver", re.I)
_NODE = re.compile(r"node|worker|kube|k8s|k3s|eks|aks|gke", re.I)


#: The field index of the event being triaged while :func:`memoized` is active.
_INDEX: FieldIndex | None = None


@contextmanager
def memoized(event: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Within the block, fields of ``event`` are read from its flattened index.

    Triage reads about 70 fields per alert, many of them several times; the
    event is flattened once (:func:`credwatch.alerts.ids.field_index`, shared
    with the alert id) and each read is a dictionary lookup. Events whose
    fields have more than one spelling fall back to :func:`get_values`.
    The events must not change inside the block.
    """
    global _INDEX
    outer = _INDEX
    if event is not None:
        index = field_index(event)
        _INDEX = index if index.unique else None
    try:
        yield
    finally:
        _INDEX = outer


def values(event: Mapping[str, Any], field: str) -> list[Any]:
    """Every non-null scalar value of ``field`` (nested or dotted); see :func:`get_values`."""
    index = _INDEX
    if index is not None and index.event is event:
        return index.flat.get(field) or []
    return get_values(event, field)


def first(event: Mapping[str, Any], field: str) -> Any:
    """The first non-null value of ``field`` (nested or dotted), or None."""
    index = _INDEX
    if index is not None and index.event is event:
        vals = index.flat.get(field)
    else:
        vals = get_values(event, field)
    return vals[0] if vals else None


def text(event: Mapping[str, Any], field: str) -> str | None:
    """The first value of ``field`` as a string, or None."""
    # first() inlined: triage reads ~50 fields per alert through here.
    index = _INDEX
    if index is not None and index.event is event:
        vals = index.flat.get(field)
    else:
        vals = get_values(event, field)
    if not vals:
        return None
    v = vals[0]
    return v if type(v) is str else str(v)


def args_of(event: Mapping[str, Any]) -> list[str]:
    """``process.args`` as strings (non-strings converted)."""
    return [a if isinstance(a, str) else str(a) for a in values(event, "process.args")]


def basename(word: str) -> str:
    """The program name of an argv[0]-like word."""
    return word.rstrip("/").rsplit("/", 1)[-1]


# -- command line ---------------------------------------------------------------------------

def command_lines(event: Mapping[str, Any]) -> dict[str, Any]:
    """The reconstructed command line (shell-quoted args) and the event's own forms."""
    args = args_of(event)
    out: dict[str, Any] = {"reconstructed": shlex.join(args) if args else None}
    for field in ("process.command_line", "process.title"):
        v = text(event, field)
        if v is not None:
            out[field.split(".", 1)[1]] = v
    out["args_count"] = first(event, "process.args_count")
    return {k: v for k, v in out.items() if v is not None}


def _split_shell(script: str) -> list[list[str]]:
    """Simple commands of a shell script: split on ``| ; & && ||`` and newlines, then words."""
    cmds: list[list[str]] = []
    for part in re.split(r"\|\|?|&&?|;|\n", script):
        try:
            words = shlex.split(part, posix=True)
        except ValueError:
            words = part.split()
        if words:
            cmds.append(words)
    return cmds


#: Wrapper options that take a separate value (``sudo -u root``, ``nice -n 5``).
_VALUE_OPTS = {"sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"},
               "doas": {"-u", "-C"}, "env": {"-u", "-C", "-S"}, "nice": {"-n"},
               "ionice": {"-c", "-n", "-p"}, "timeout": {"-s", "-k"}, "xargs": {"-I", "-n", "-P",
               "-L", "-d", "-E", "-s", "-a"}, "runuser": {"-u", "-g", "-G"},
               "su": {"-c", "-s", "-g", "-G"}, "nsenter": {"-t", "-S", "-G"},
               "stdbuf": {"-i", "-o", "-e"}}


def _strip_wrappers(words: list[str]) -> list[str]:
    """Drop ``sudo -u x``/``env VAR=x``/``timeout 5``/``busybox`` so the real tool is first."""
    i = 0
    while i < len(words):
        name = basename(words[i])
        if name in WRAPPERS:
            takes = _VALUE_OPTS.get(name, set())
            i += 1
            while i < len(words) and (words[i].startswith("-") or "=" in words[i]
                                      or words[i].replace(".", "").isdigit()):
                i += 2 if words[i] in takes else 1
            continue
        break
    return words[i:]


@dataclass(frozen=True, slots=True)
class Indicator:
    """One sign of piping, encoding or exfiltration in a command."""

    type: str
    tool: str
    evidence: str
    #: True when the command itself moves data off the host.
    exfil: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"type": self.type, "tool": self.tool, "evidence": self.evidence,
                "exfil": self.exfil}


def _cut(s: str, n: int = 160) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


# Complexity: one flat branch per tool family (encoders, network clients, archivers, shells,
# interpreters), read as the table of indicators the investigation guide asks for.
def command_indicators(words: Sequence[str]) -> list[Indicator]:  # noqa: C901
    """Indicators of one simple command (argv), wrappers skipped."""
    words = _strip_wrappers(list(words))
    if not words:
        return []
    tool = basename(words[0])
    rest = list(words[1:])
    joined = _cut(shlex.join(words))
    out: list[Indicator] = []
    if tool in ENCODERS and not (tool in {"base64", "base32"} and
                                 any(a in {"-d", "--decode"} for a in rest)):
        out.append(Indicator("encoding", tool, joined, False))
    if tool == "openssl" and rest and rest[0] in {"enc", "base64", "smime", "cms", "rsautl",
                                                  "pkeyutl"}:
        out.append(Indicator("encoding", "openssl " + rest[0], joined, False))
    if tool == "openssl" and rest and rest[0] == "s_client":
        out.append(Indicator("network-tool", "openssl s_client", joined, True))
    if tool in COMPRESSORS and any(a in {"-c", "--stdout", "--to-stdout"} or
                                   (a.startswith("-") and not a.startswith("--") and "c" in a)
                                   for a in rest):
        out.append(Indicator("archive-stdout", tool, joined, False))
    if tool == "tar" and _tar_to_stdout(rest):
        out.append(Indicator("archive-stdout", tool, joined, False))
    if tool == "zip" and "-" in rest[:2]:
        out.append(Indicator("archive-stdout", tool, joined, False))
    curl_up = tool == "curl" and any(
        a in _CURL_UPLOAD or a.startswith(("--data", "--upload-file=", "--form", "-d@", "-T", "-F"))
        for a in rest)
    wget_up = tool == "wget" and any(a.startswith(_WGET_UPLOAD) for a in rest)
    if curl_up or wget_up:
        out.append(Indicator("upload", tool, joined, True))
    elif tool in {"curl", "wget"}:
        out.append(Indicator("network-tool", tool, joined, False))
    if tool in NETCATS:
        out.append(Indicator("netcat", tool, joined, True))
    if tool in REMOTE_COPY:
        remote = any(_REMOTE_SPEC.match(a) for a in rest if not a.startswith("-")) or \
            (tool == "rsync" and any(a.startswith("rsync://") for a in rest))
        out.append(Indicator("remote-copy" if remote else "network-tool", tool, joined, remote))
    if tool == "ssh":
        out.append(Indicator("network-tool", tool, joined, False))
    if SCRIPTERS.match(tool):
        for i, a in enumerate(rest[:-1]):
            if a in {"-c", "-e", "-E", "-r", "--eval"} and _SCRIPT_NET.search(rest[i + 1]):
                out.append(Indicator("script-network", tool, _cut(rest[i + 1]), True))
                break
    for a in rest:
        if a.startswith("of=/dev/tcp/") or a.startswith("of=/dev/udp/"):
            out.append(Indicator("dev-tcp", tool, a, True))
    return out


def _tar_to_stdout(rest: Sequence[str]) -> bool:
    for i, a in enumerate(rest):
        if a in {"-f", "--file"} and i + 1 < len(rest) and rest[i + 1] == "-":
            return True
        if a in {"--file=-", "-f-"}:
            return True
        # bundled: `tar czf - path` / `tar -czf - path`
        if i == 0 and "f" in a.lstrip("-") and not a.startswith("--") and len(rest) > 1 \
                and rest[1] == "-":
            return True
    return False


def shell_scripts(args: Sequence[str]) -> list[str]:
    """Scripts passed to a shell with ``-c`` (``sh -c "…"``, ``bash -lc "…"``)."""
    words = _strip_wrappers(list(args))
    if not words or basename(words[0]) not in SHELLS:
        return []
    rest = words[1:]
    if basename(words[0]) == "busybox" and rest and basename(rest[0]) in SHELLS:
        rest = rest[1:]
    for i, a in enumerate(rest):
        if a.startswith("-") and not a.startswith("--") and "c" in a and i + 1 < len(rest):
            return [rest[i + 1]]
    return []


#: Command lines up to this many characters are analysed once and remembered (a hunt
#: sees the same commands again and again); the cache holds a bounded number of them.
_CACHED_COMMAND = 2048


def indicators(event: Mapping[str, Any]) -> list[Indicator]:
    """Piping, encoding and exfiltration indicators in the event's command line."""
    args = tuple(args_of(event))
    line = text(event, "process.command_line")
    if sum(map(len, args)) + len(line or "") <= _CACHED_COMMAND:
        return list(_indicators_cached(args, line))
    return _indicators(args, line)


@functools.lru_cache(maxsize=8192)
def _indicators_cached(args: tuple[str, ...], line: str | None) -> tuple[Indicator, ...]:
    return tuple(_indicators(args, line))


def _indicators(args: Sequence[str], line: str | None) -> list[Indicator]:
    out = command_indicators(list(args))
    for script in shell_scripts(args):
        cmds = _split_shell(script)
        for cmd in cmds:
            out.extend(command_indicators(cmd))
        if re.search(r"(?<!\|)\|(?!\|)", script):
            out.append(Indicator("pipe", "sh", _cut(script), False))
        for m in re.finditer(r"(?<![<0-9&])>>?\s*(?!&|\s*/dev/null)(\S+)", script):
            if m.group(1).startswith(("/dev/tcp/", "/dev/udp/")):
                continue
            out.append(Indicator("redirect", "sh", _cut(m.group(0)), False))
    texts = list(args) + [v for v in (line,) if v]
    for t in texts:
        dev = re.search(r"/dev/(?:tcp|udp)/[^\s'\"]+", t)
        if dev and not any(i.type == "dev-tcp" for i in out):
            out.append(Indicator("dev-tcp", "sh", dev.group(0), True))
    # De-duplicate (the same command can appear through argv and a -c script).
    seen: set[tuple[str, str, str]] = set()
    uniq: list[Indicator] = []
    for ind in out:
        key = (ind.type, ind.tool, ind.evidence)
        if key not in seen:
            seen.add(key)
            uniq.append(ind)
    return uniq


# -- parent chain and identity --------------------------------------------------------------

_CHAIN_ROLES = (("parent", "process.parent"), ("group_leader", "process.group_leader"),
                ("session_leader", "process.session_leader"),
                ("entry_leader", "process.entry_leader"),
                ("grandparent", "process.parent.parent"))


#: Per role: the role, its name/executable/pid/entity_id fields and its args field.
_CHAIN_FIELDS = tuple(
    (role, tuple((key, f"{prefix}.{key}") for key in ("name", "executable", "pid", "entity_id")),
     f"{prefix}.args") for role, prefix in _CHAIN_ROLES)


def parent_chain(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ancestors the event names: parent, group/session/entry leaders (Defend), ppid (auditd)."""
    chain: list[dict[str, Any]] = []
    index = _INDEX
    flat = index.flat if index is not None and index.event is event else None
    for role, keyed, args_field in _CHAIN_FIELDS:
        item: dict[str, Any] = {"role": role}
        for key, field in keyed:
            # first(), inlined on the indexed event: 25 reads per alert
            if flat is not None:
                found = flat.get(field)
                v = found[0] if found else None
            else:
                v = first(event, field)
            if v is not None:
                item[key] = v
        pargs = values(event, args_field)
        if pargs:
            item["command_line"] = _joined(tuple(str(a) for a in pargs))
        if role == "entry_leader":
            etype = text(event, "process.entry_leader.entry_meta.type")
            if etype:
                item["entry_type"] = etype
            src = text(event, "process.entry_leader.entry_meta.source.ip")
            if src:
                item["source_ip"] = src
        if len(item) > 1:
            chain.append(item)
    return chain


def _joined(args: tuple[str, ...]) -> str:
    """An ancestor's command line, shell-quoted and cut (remembered: ancestors repeat)."""
    if sum(map(len, args)) <= _CACHED_COMMAND:
        return _joined_cached(args)
    return _cut(shlex.join(args), 200)


@functools.lru_cache(maxsize=4096)
def _joined_cached(args: tuple[str, ...]) -> str:
    return _cut(shlex.join(args), 200)


def user_identity(event: Mapping[str, Any]) -> dict[str, Any]:
    """Who ran it: user, effective user, audit (login) user and whether a login session exists."""
    out: dict[str, Any] = {}
    for key, field in (("name", "user.name"), ("id", "user.id"),
                       ("effective_name", "user.effective.name"),
                       ("effective_id", "user.effective.id"),
                       ("audit_name", "user.audit.name"), ("audit_id", "user.audit.id"),
                       ("session", "auditd.session")):
        v = text(event, field)
        if v is not None:
            out[key] = v
    auid = out.get("audit_id")
    ses = out.get("session")
    etype = text(event, "process.entry_leader.entry_meta.type")
    if auid == AUDIT_UNSET or (auid is None and ses == AUDIT_UNSET):
        out["login_session"] = False
        out["session_kind"] = "daemon or service (audit uid unset: no login session)"
    elif auid is not None:
        out["login_session"] = True
        out["session_kind"] = f"login session of audit uid {out.get('audit_name') or auid}"
    elif etype:
        interactive = etype in {"sshd", "terminal", "console", "ssm", "teleport"}
        out["login_session"] = interactive
        out["session_kind"] = f"{etype} entry ({'interactive' if interactive else 'non-interactive'})"
    return out


# -- expected automation --------------------------------------------------------------------

def benign_label(name: str) -> str | None:
    """The automation a program name belongs to (exact name, then name patterns), or None."""
    if len(name) <= 256:
        return _benign_label_cached(name)
    return _benign_label(name)


@functools.lru_cache(maxsize=4096)
def _benign_label_cached(name: str) -> str | None:
    return _benign_label(name)


def _benign_label(name: str) -> str | None:
    if name in BENIGN_AUTOMATION:
        return BENIGN_AUTOMATION[name]
    for rx, label in _BENIGN_PATTERNS:
        if rx.search(name):
            return label
    return None


def benign_automation(event: Mapping[str, Any], extra: Mapping[str, str] | None = None,
                      ancestors: Iterable[str] = ()) -> list[str]:
    """Reasons the read looks like expected automation (empty when none).

    Looks at the parent and leaders named in the event, further ``ancestors``
    names (from the correlator), and the container image (tuning by image, as
    the rule's false-positive note suggests).
    """
    table = {**BENIGN_AUTOMATION, **(extra or {})}
    reasons: list[str] = []
    names: list[tuple[str, str]] = []
    for role, prefix in _CHAIN_ROLES:
        for key in ("name", "executable"):
            v = text(event, f"{prefix}.{key}")
            if v:
                names.append((role, basename(v)))
        for a in values(event, f"{prefix}.args")[:3]:
            if isinstance(a, str):
                names.append((role, basename(a)))
    names.extend(("ancestor", basename(a)) for a in ancestors)
    for role, name in names:
        label = table.get(name) or benign_label(name)
        if label:
            reason = f"{role} {name} ({label})"
            if reason not in reasons:
                reasons.append(reason)
    image = text(event, "container.image.name")
    if image:
        img = basename(image.split("@", 1)[0].split(":", 1)[0])
        label = table.get(img) or benign_label(img)
        if label:
            reasons.append(f"container image {image} ({label})")
    return reasons


def scratch_executable(event: Mapping[str, Any]) -> str | None:
    """The executable when it runs from a scratch or home directory (rule's third branch)."""
    exe = text(event, "process.executable")
    if exe and exe.startswith(_SCRATCH):
        return exe
    return None


# -- workload and location ------------------------------------------------------------------

_WORKLOAD_FIELDS = (
    ("host", "host.name"), ("hostname", "host.hostname"), ("container_id", "container.id"),
    ("container_name", "container.name"), ("image", "container.image.name"),
    ("runtime", "container.runtime"), ("cluster", "orchestrator.cluster.name"),
    ("namespace", "orchestrator.namespace"), ("pod", "orchestrator.resource.name"),
    ("resource_type", "orchestrator.resource.type"), ("namespace", "kubernetes.namespace"),
    ("pod", "kubernetes.pod.name"), ("pod_uid", "kubernetes.pod.uid"),
    ("node", "kubernetes.node.name"), ("cloud_provider", "cloud.provider"),
    ("cloud_account", "cloud.account.id"), ("instance_id", "cloud.instance.id"),
)
_CGROUP_FIELDS = ("process.cgroup.path", "cgroup.path", "process.Ext.cgroup")
_KUBEPODS = re.compile(r"kubepods[^\s]*?(?:pod([0-9a-f_-]{36}))?", re.I)


def workload(event: Mapping[str, Any], kinds_scopes: Sequence[str]) -> dict[str, Any]:
    """Where the read happened: host, container/pod, and a location class.

    ``location`` is one of ``control-plane``, ``jump-host``, ``pod``, ``node`` or
    ``host``; ``location_reasons`` says why. ``kinds_scopes`` are the scopes of
    the credentials read (a pod SA token means a pod, ``/etc/kubernetes`` a
    control-plane node).
    """
    out: dict[str, Any] = {}
    for key, field in _WORKLOAD_FIELDS:
        v = text(event, field)
        if v is not None and key not in out:
            out[key] = v
    for field in _CGROUP_FIELDS:
        v = text(event, field)
        if v and _KUBEPODS.search(v):
            out["cgroup_hint"] = _cut(v, 200)
            break
    host = out.get("host") or out.get("hostname") or ""
    reasons: list[str] = []
    if "control-plane" in kinds_scopes:
        reasons.append("control-plane credential (/etc/kubernetes or k3s admin)")
    if _CONTROL.search(host):
        reasons.append(f"host name {host!r} looks like a control-plane node")
    if reasons:
        location = "control-plane"
    elif _JUMP.search(host):
        location = "jump-host"
        reasons.append(f"host name {host!r} looks like a jump host / bastion")
    elif "pod" in kinds_scopes or "pod" in out or "cgroup_hint" in out:
        location = "pod"
        if "pod" in kinds_scopes:
            reasons.append("mounted service-account token path (/var/run/secrets) implies a pod")
        if "pod" in out:
            reasons.append(f"pod {out['pod']} in the event")
        if "cgroup_hint" in out:
            reasons.append("kubepods cgroup")
    elif "node" in kinds_scopes or _NODE.search(host):
        location = "node"
        reasons.append("kubelet or node credential" if "node" in kinds_scopes
                       else f"host name {host!r} looks like a Kubernetes node")
    else:
        location = "host"
    if "container_id" in out and location != "pod":
        reasons.append(f"inside container {out['container_id'][:12]}")
    out["location"] = location
    out["location_reasons"] = reasons
    return out
