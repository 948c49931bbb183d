"""ECS mapping of real audit events, checked against the raw records and the seed rule."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from credwatch.normalize.audit_values import TRUNCATED_ARGS_TEMPLATE
from credwatch.normalize.auditd import NormalizeStats, iter_ecs, to_ecs
from tests.sources._auditd import (
    ECHO_MANY,
    ENRICHED,
    LONG_ALPHA,
    RAW_NODE,
    SAMPLE,
    TAIL_MANY,
    by_args,
    ecs_of,
    events_of,
    lines_of,
)


def _event_lines(lines: list[bytes], pred: bytes) -> tuple[bytes, list[bytes]]:
    """The stamp of the first EXECVE line containing ``pred`` and all lines of that event."""
    line = next(ln for ln in lines if b"type=EXECVE" in ln and pred in ln)
    stamp = re.search(rb"audit\(([^)]*)\)", line).group(1)  # type: ignore[union-attr]
    return stamp, [ln for ln in lines if b"audit(" + stamp + b")" in ln]


def _field(line: bytes, key: str) -> str:
    m = re.search(rb"(?:^| )" + key.encode() + rb'=("[^"]*"|\S+)', line.split(b"\x1d")[0])
    assert m, key
    return m.group(1).strip(b'"').decode()


def _only(docs: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(docs) == 1, docs
    return docs[0]


def test_exec_event_maps_every_table_field() -> None:
    stamp, ev_lines = _event_lines(lines_of(ENRICHED), b'a0="head" a1="-n1"')
    sc = next(ln for ln in ev_lines if b"type=SYSCALL" in ln)
    doc = _only(ecs_of(ev_lines))
    sec, rest = stamp.decode().split(".")
    ms, serial = rest.split(":")
    assert doc["@timestamp"] == datetime.fromtimestamp(int(sec), UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.") + ms + "Z"
    assert doc["event"]["category"] == ["process"]
    assert doc["event"]["type"] == ["start"]
    assert doc["event"]["action"] == "executed"
    assert doc["event"]["kind"] == "event"
    assert doc["event"]["outcome"] == "success"
    p = doc["process"]
    assert p["name"] == _field(sc, "comm") == "head"
    assert p["executable"] == _field(sc, "exe")
    assert p["args"] == ["head", "-n1", "/root/.kube/config"]
    assert p["args_count"] == 3
    assert p["title"] == "head -n1 /root/.kube/config"
    assert p["working_directory"] == "/root"
    assert p["pid"] == int(_field(sc, "pid"))
    assert p["parent"]["pid"] == int(_field(sc, "ppid"))
    assert doc["user"]["id"] == _field(sc, "uid")
    assert doc["user"]["name"] == "root"  # from the ENRICHED UID="root"
    assert doc["user"]["audit"] == {"id": _field(sc, "auid"), "name": "root"}
    assert doc["user"]["group"] == {"id": _field(sc, "gid"), "name": "root"}
    assert "effective" not in doc["user"]  # equal to user: dropped as Auditbeat does
    assert doc["auditd"]["session"] == _field(sc, "ses")
    assert doc["auditd"]["sequence"] == int(serial)
    assert doc["auditd"]["data"]["syscall"] == "execve"
    assert doc["auditd"]["data"]["key"] == "credwatch"
    assert doc["auditd"]["data"]["arch"] == "x86_64"
    assert doc["tags"] == ["credwatch"]
    assert doc["host"] == {"os": {"type": "linux"}}
    assert doc["file"]["path"] == _field(sc, "exe")
    # event.original: the records, without the ENRICHED suffix.
    assert doc["event"]["original"] == [ln.split(b"\x1d")[0].rstrip(b"\n").decode()
                                        for ln in ev_lines]


def test_execveat_event() -> None:
    lines = lines_of(ENRICHED)
    sc = next(ln for ln in lines if b"syscall=322" in ln)
    stamp = re.search(rb"audit\(([^)]*)\)", sc).group(1)  # type: ignore[union-attr]
    doc = _only(ecs_of([ln for ln in lines if b"audit(" + stamp + b")" in ln]))
    assert doc["auditd"]["data"]["syscall"] == "execveat"
    assert doc["process"]["args"] == ["cat", "/root/.aws/credentials"]
    assert doc["process"]["executable"] == "/usr/bin/cat"
    assert doc["event"]["action"] == "executed"


def test_unset_auid_and_session_are_left_out() -> None:
    _, ev_lines = _event_lines(lines_of(ENRICHED), b'a0="auditctl" a1="-l"')
    assert b"auid=4294967295" in ev_lines[0] and b"ses=4294967295" in ev_lines[0]
    doc = _only(ecs_of(ev_lines))
    assert "audit" not in doc["user"]
    assert "session" not in doc["auditd"]
    assert doc["auditd"]["summary"]["actor"]["primary"] == "unset"


def test_effective_user_kept_when_different() -> None:
    _, ev_lines = _event_lines(lines_of(ENRICHED), b'a0="id"')
    changed = [re.sub(rb" euid=0 ", b" euid=1000 ", ln.split(b"\x1d")[0]) + b"\n" for ln in ev_lines]
    doc = _only(ecs_of(changed))
    assert doc["user"]["effective"] == {"id": "1000", "group": {"id": "0"}}
    assert "name" not in doc["user"]


def test_node_becomes_host_name() -> None:
    assert {d["host"]["name"] for d in ecs_of(lines_of(RAW_NODE))} == {"vm"}
    assert {d["host"]["name"] for d in ecs_of(lines_of(SAMPLE))} == {"k8s-node-1"}


def test_non_exec_events_are_counted_and_skipped() -> None:
    lines = lines_of(ENRICHED)
    stats = NormalizeStats()
    docs = list(iter_ecs(events_of(lines), stats=stats))
    execs = [ln for ln in lines if b"type=SYSCALL" in ln and re.search(rb" syscall=(59|322) ", ln)]
    assert stats.exec_events == len(docs) == len(execs)
    assert stats.skipped["daemon_start"] == 1 and stats.skipped["daemon_end"] == 1
    assert stats.skipped["syscall:sendto"] >= 2  # auditctl talking to the kernel
    assert stats.skipped["syscall:write"] == 1  # the loginuid write (with its LOGIN record)
    for d in docs:
        orjson.dumps(d)


def test_lost_head_of_argument_list_gets_elastic_placeholder() -> None:
    _, ev_lines = _event_lines(lines_of(ENRICHED), b'a0="/bin/echo" a1="1" a2="2"')
    execve = [ln for ln in ev_lines if b"type=EXECVE" in ln]
    assert len(execve) > 2 and b"argc=" in execve[0]
    first_kept = int(re.search(rb"\sa(\d+)=", execve[1]).group(1))  # type: ignore[union-attr]
    doc = _only(ecs_of([ln for ln in ev_lines if ln is not execve[0]]))
    args = doc["process"]["args"]
    assert args[0] == TRUNCATED_ARGS_TEMPLATE.format(n=first_kept)
    assert args[0] == f"[... {first_kept} truncated arguments ...]"
    assert args[1:] == ECHO_MANY[first_kept:]
    assert doc["process"]["args_count"] == len(args)  # no argc left: count what is there


def test_argc_larger_than_the_arguments_present_keeps_argc() -> None:
    _, ev_lines = _event_lines(lines_of(ENRICHED), b'a0="tail" a1="-q"')
    execve = [ln for ln in ev_lines if b"type=EXECVE" in ln]
    doc = _only(ecs_of([ln for ln in ev_lines if ln is not execve[-1]]))
    assert doc["process"]["args_count"] == len(TAIL_MANY) == 3004
    assert doc["process"]["args"] == TAIL_MANY[:len(doc["process"]["args"])]
    assert len(doc["process"]["args"]) < 3004


def test_lost_syscall_record_still_maps_the_exec() -> None:
    _, ev_lines = _event_lines(lines_of(ENRICHED), b'a0="grep" a1="-c"')
    doc = _only(ecs_of([ln for ln in ev_lines if b"type=SYSCALL" not in ln]))
    assert doc["process"]["args"] == ["grep", "-c", LONG_ALPHA, "/root/.aws/credentials"]
    assert "outcome" not in doc["event"] and "pid" not in doc["process"]


def test_failed_exec_and_null_argument() -> None:
    _, ev_lines = _event_lines(lines_of(ENRICHED), b'a0="date"')
    failed = [ln.replace(b"success=yes exit=0", b"success=no exit=-2")
              for ln in ev_lines if b"type=EXECVE" not in ln]
    doc = _only(ecs_of(failed))
    assert doc["event"]["outcome"] == "failure" and doc["auditd"]["result"] == "fail"
    assert "args" not in doc["process"]
    _, ev_lines = _event_lines(lines_of(ENRICHED), b'a0="ls" a1="/tmp"')
    nulled = [ln.replace(b'a1="/tmp"', b"a1=(null)") for ln in ev_lines]
    assert _only(ecs_of(nulled))["process"]["args"] == ["ls", ""]


def test_to_ecs_returns_none_for_non_exec() -> None:
    ev = next(e for e in events_of(lines_of(ENRICHED)) if e.first("SYSCALL") is None)
    assert to_ecs(ev) is None


def test_seed_rule_over_the_real_capture() -> None:
    from credwatch.backends.python import compile_query
    from credwatch.rules.loader import default_rule

    matcher = compile_query(default_rule().query)
    docs = ecs_of(lines_of(ENRICHED))
    hits = sorted(tuple(d["process"]["args"][:4]) for d in docs if matcher.matches(d))
    expected = sorted([
        ("cat", "/root/.aws/credentials"), ("cat", "/root/.aws/credentials"),  # execve, cwd w/ space
        ("cat", "/root/.aws/credentials"),  # through execveat (fexecve)
        ("head", "-n1", "/root/.kube/config"), ("tail", "-n1", "/root/.ssh/id_rsa"),
        ("grep", "FAKE", "/var/run/secrets/kubernetes.io/serviceaccount/token"),
        ("cp", "/root/.docker/config.json", "/tmp/cwcap/copied-config.json"),
        ("base64", "/root/.config/gcloud/application_default_credentials.json"),
        ("tar", "-cf", "/tmp/cwcap/creds.tar", "/root/.aws/credentials"),
        ("/usr/bin/python3", "-c", "import sys; print(open(sys.argv[1]).read())",
         "/root/.aws/credentials"),
        ("/tmp/cwcap/kitty", "/root/.kube/config"),  # a copy of cat run from /tmp
        ("dd", "if=/root/.ssh/id_rsa", "of=/dev/null", "status=none"),
        ("find", "/root/.kube/config"),
        ("cat", "/etc/shadow"), ("cat", "/etc/shadow"),  # direct, and the child of sh -c
        ("grep", "-c", LONG_ALPHA, "/root/.aws/credentials"),
        tuple(TAIL_MANY[:4]),
        *[("cat", "/root/.aws/credentials", f"/nonexistent/concurrent-{n}") for n in range(1, 25)],
    ])
    assert hits == expected
    near_misses = by_args(docs)
    for args in [("cat", "/root/.aws/config"), ("cat", "/root/.ssh/id_rsa.pub"),
                 ("/bin/sh", "-c", "cat /etc/shadow"), ("ls", "/root/.aws"),
                 ("/bin/echo", "/root/.aws/credentials")]:
        assert not matcher.matches(near_misses[args][0]), args


def test_bundled_example_has_positives_and_negatives() -> None:
    from pathlib import Path

    import credwatch
    from credwatch.backends.python import compile_query
    from credwatch.rules.loader import default_rule

    example = Path(credwatch.__file__).parent / "examples" / "auditd" / "audit.log"
    docs = ecs_of(lines_of(example))
    matcher = compile_query(default_rule().query)
    hits = [d["process"]["args"] for d in docs if matcher.matches(d)]
    assert ["cat", "/root/.aws/credentials"] in hits and ["cat", "/etc/shadow"] in hits
    assert len(hits) < len(docs)
