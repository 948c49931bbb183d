"""The seed rule's v1 query: parses, round-trips, and each clause works on its own."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from credwatch.backends.python import compile_query
from credwatch.kql import parse, to_kql
from credwatch.kql.lint import lint

SEED = (Path(__file__).parent.parent / "fixtures" / "seed_v1.kql").read_text()
MATCHER = compile_query(SEED)

PATHS = [
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
    "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    "/var/run/secrets/azure/tokens/azure-identity-token",
    "/var/run/secrets/tokens/azure-identity-token",
    "/var/lib/kubelet/kubeconfig",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/pki/ca.key",
    "/etc/kubernetes/pki/apiserver-kubelet-client.key",
    "/var/lib/kubelet/pki/kubelet-client-current.pem",
    "/etc/rancher/k3s/k3s.yaml",
    "/etc/shadow",
    "/home/dev/.ssh/id_rsa",
    "/root/.ssh/id_ed25519",
    "/home/dev/.ssh/id_ecdsa",
    "/root/.aws/credentials",
    "/root/.aws/cli/cache/0123abcd.json",
    "/home/dev/.aws/sso/cache/token.json",
    "/root/.azure/accessTokens.json",
    "/root/.azure/azureProfile.json",
    "/root/.azure/msal_token_cache.json",
    "/root/.config/gcloud/application_default_credentials.json",
    "/root/.config/gcloud/credentials.db",
    "/root/.config/gcloud/access_tokens.db",
    "/root/.config/gcloud/legacy_credentials",
    "/home/dev/.kube/config",
    "/root/.docker/config.json",
]
TOOLS = ["busybox", "cat", "head", "tail", "more", "less", "sed", "awk", "find", "grep", "ls",
         "whereis", "cp", "mv", "ln", "curl", "wget", "scp", "rsync", "tar", "zip", "gzip",
         "base64", "xxd", "od", "dd", "tee", "strings", "xargs", "jq", "yq", "openssl", "ssh",
         "sftp", "nc", "ncat", "netcat", "socat", "python3", "perl5.36", "ruby3.1", "node",
         "php8.2", "lua5.4", ".hidden"]
ARG_TOOLS = ["cat", "head", "tail", "more", "less", "sed", "awk", "find", "grep", "cp", "mv",
             "curl", "wget", "base64", "tar", "scp", "dd", "strings", "xargs"]
SCRATCH = ["/tmp/x", "/var/tmp/x", "/dev/shm/x", "/home/dev/x", "/run/user/0/x"]


def event(name: str = "cat", args: list[str] | None = None, exe: str = "/usr/bin/cat",
          action: str = "exec") -> dict[str, Any]:
    return {
        "host": {"os": {"type": "linux"}, "name": "node-1"},
        "event": {"category": ["process"], "action": action, "type": ["start"]},
        "process": {"name": name, "executable": exe,
                    "args": args if args is not None else [name, "/etc/shadow"]},
    }


def test_parses_prints_and_reparses_to_the_same_ast() -> None:
    ast = parse(SEED)
    assert parse(to_kql(ast)) == ast


def test_linter_is_silent_on_the_seed_query() -> None:
    assert lint(SEED) == []


@pytest.mark.parametrize("path", PATHS)
def test_every_path_matches(path: str) -> None:
    assert MATCHER.matches(event(args=["cat", path]))


@pytest.mark.parametrize("tool", TOOLS)
def test_every_process_name_clause(tool: str) -> None:
    # args[0] is not a tool name and the executable is not in a scratch dir,
    # so only the process.name clause can satisfy the tool group.
    assert MATCHER.matches(event(name=tool, args=["x", "/etc/shadow"], exe="/usr/bin/x"))


@pytest.mark.parametrize("tool", ARG_TOOLS)
def test_every_process_args_tool_clause(tool: str) -> None:
    assert MATCHER.matches(event(name="sudo", args=["sudo", tool, "/etc/shadow"], exe="/usr/bin/sudo"))


@pytest.mark.parametrize("exe", SCRATCH)
def test_every_scratch_executable_clause(exe: str) -> None:
    assert MATCHER.matches(event(name="x", args=["x", "/etc/shadow"], exe=exe))


def test_auditbeat_executed_action_and_flat_dotted_form() -> None:
    flat = {"host.os.type": "linux", "event.category": "process", "event.action": "executed",
            "process.name": "cat", "process.args": ["cat", "/root/.kube/config"]}
    assert MATCHER.matches(flat)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e["process"].update(args=["cat", "/root/.ssh/id_rsa.pub"]),
        lambda e: e["process"].update(args=["cat", "/root/.aws/config"]),
        lambda e: e["process"].update(args=["cat", "/root/.aws/credentials.bak"]),
        lambda e: e["process"].update(args=["cat", "/run/secrets/kubernetes.io/serviceaccount/token"]),
        lambda e: e["process"].update(args=["cat", "/ETC/SHADOW"]),
        lambda e: e["process"].update(name="sh", args=["sh", "-c", "cat /etc/shadow"], executable="/bin/sh"),
        lambda e: e["process"].update(name="CAT", args=["CAT", "/etc/shadow"], executable="/usr/bin/CAT"),
        lambda e: e["process"].update(name="vim", args=["vim", "/etc/shadow"], executable="/usr/bin/vim"),
        lambda e: e["host"]["os"].update(type="windows"),
        lambda e: e["host"].pop("os"),
        lambda e: e["event"].update(action="fork"),
        lambda e: e["event"].update(category=["file"]),
        lambda e: e["process"].update(args=["cat", "/home/dev/.ssh/id_ed25519"]),
    ],
)
def test_near_misses_do_not_match(mutate: Any) -> None:
    ev = copy.deepcopy(event())
    mutate(ev)
    assert not MATCHER.matches(ev)


def test_explain_names_the_clauses_and_values() -> None:
    hits = MATCHER.explain(event(args=["cat", "/root/.aws/credentials"]))
    as_pairs = {(h.clause, h.value, h.index) for h in hits}
    assert ("process.args:*/.aws/credentials", "/root/.aws/credentials", 1) in as_pairs
    assert ("process.name:cat", "cat", None) in as_pairs
