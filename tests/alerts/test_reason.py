"""kibana.alert.reason in Kibana's exact format (reason_formatters.ts)."""

from __future__ import annotations

from typing import Any

import pytest

from credwatch.alerts.reason import build_reason

NAME = "Kubernetes and Cloud Credential Path Access via Process Arguments"
FULL = {"event": {"category": ["process"]}, "process": {"name": "cat", "parent": {"name": "bash"}},
        "user": {"name": "root"}, "host": {"name": "node-1"}}


def without(doc: dict[str, Any], *paths: str) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(doc)
    for path in paths:
        *parents, last = path.split(".")
        cur = out
        for p in parents:
            cur = cur[p]
        del cur[last]
    return out


@pytest.mark.parametrize(("doc", "expected"), [
    (FULL, f"process event with process cat, parent process bash, by root on node-1 "
           f"created high alert {NAME}."),
    (without(FULL, "process.parent"),
     f"process event with process cat, by root on node-1 created high alert {NAME}."),
    (without(FULL, "user"),
     f"process event with process cat, parent process bash, on node-1 created high alert {NAME}."),
    (without(FULL, "host"),
     f"process event with process cat, parent process bash, by root created high alert {NAME}."),
    (without(FULL, "process.parent", "user", "host"),
     f"process event with process cat, created high alert {NAME}."),
    # no field of interest: no "with"; user and host alone do not bring it
    (without(FULL, "process"), f"process event by root on node-1 created high alert {NAME}."),
    ({}, f"event created high alert {NAME}."),
])
def test_reason_with_and_without_parent_user_host(doc: dict[str, Any], expected: str) -> None:
    assert build_reason(doc, NAME, "high") == expected


def test_flat_dotted_source_gives_the_same_sentence() -> None:
    flat = {"event.category": ["process"], "process.name": "cat", "process.parent.name": "bash",
            "user.name": "root", "host.name": "node-1"}
    assert build_reason(flat, NAME, "high") == build_reason(FULL, NAME, "high")


def test_network_and_file_parts_and_quirks() -> None:
    doc = {"event": {"category": ["network", "process"]}, "file": {"name": "id_rsa"},
           "source": {"ip": "10.0.0.1", "port": ["4242"]},
           "destination": {"ip": ["1.2.3.4", "5.6.7.8"], "port": 443}}
    # arrays are joined with ", "; a bare numeric port has no .length in JS and is left out
    assert build_reason(doc, "R", "low") == (
        "network, process event with file id_rsa, source 10.0.0.1:4242, "
        "destination 1.2.3.4, 5.6.7.8 created low alert R.")


@pytest.mark.parametrize("value", [None, "", "-", ["-"], [], 7, True, {"x": 1}])
def test_empty_dash_and_non_string_values_are_left_out(value: object) -> None:
    assert build_reason({"user": {"name": value}}, "R", "medium") == \
        "event created medium alert R."


def test_text_null_is_dropped_like_icu_select_does() -> None:
    assert build_reason({"process": {"name": "null"}, "user": {"name": "null"}}, "R", "low") == \
        "event with created low alert R."
