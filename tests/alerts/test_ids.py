"""Alert ids as Kibana's generateId computes them, and stable ids for file events."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

from credwatch.alerts.ids import content_id, event_identity, kibana_alert_id

CASES = [
    (".ds-logs-endpoint.events.process-default-2026.11.20-000001", "aBc123", None, "rule-uuid",
     "default"),
    ("auditbeat-8.15.0-2026.11.20", "Xy_9", 3, "5f0fff18-f340-444b-9a98-c49ade766ff4", "secops"),
    ("idx", "id", 2.0, "r", "default"),
    ("idx", "id", True, "r", "default"),
    ("ïdx", "日本", None, "r", "default"),
]

# Known answers from an independent implementation: Node.js running Kibana's own expression,
#   createHash('sha256').update(index.concat(id, String(version), `${space}:${rule}`)).digest('hex')
# (None is passed as `undefined`). They pin what JavaScript makes of a missing version
# ("undefined"), a float 2.0 ("2"), a boolean ("true") and non-ASCII text (UTF-8 bytes).
KIBANA_IDS = [
    "77d5299c6efb5b6eb7abc84f59c234f0c8f1eb1428668ef8a9c3dbc3ca404501",
    "6b0008b2e0c9f493029e812766ef838ea701c7a41fdac4539425a044fe0d1b7d",
    "9a0f4efee90c4fa463d0261e8872693850be1ed23c4ec2638fa93ec488e89a2a",
    "85aece2ed05636a83526906bc60a7c0acc77f8993da7f37c3de9b1fd6b09f9b3",
    "e85461ce3cb683329bbc9432df4eb32e7deb766a45584f7e351f7ab8862f3388",
]


@pytest.mark.parametrize(("case", "expected"), list(zip(CASES, KIBANA_IDS, strict=True)))
def test_ids_equal_kibanas_known_answers(case: tuple[str, str, object, str, str],
                                         expected: str) -> None:
    assert kibana_alert_id(*case) == expected


def test_id_is_the_digest_of_the_plain_concatenation() -> None:
    # Spelled out by hand: nothing between the parts, "space:rule" last.
    text = "auditbeat-8.15.0-2026.11.20" + "Xy_9" + "3" + "secops:" + "r"
    assert kibana_alert_id("auditbeat-8.15.0-2026.11.20", "Xy_9", 3, "r", "secops") == \
        hashlib.sha256(text.encode()).hexdigest()
    # Moving a character from one part to the next changes nothing, as in Kibana.
    assert kibana_alert_id("ab", "c", None, "r") == kibana_alert_id("a", "bc", None, "r")


@pytest.mark.skipif(shutil.which("node") is None, reason="node.js not installed")
@pytest.mark.parametrize(("index", "doc_id", "version", "rule", "space"), CASES)
def test_same_id_as_nodejs_crypto(index: str, doc_id: str, version: object, rule: str,
                                  space: str) -> None:
    # Kibana: createHash('sha256').update(index.concat(id, String(version), `${space}:${rule}`))
    script = ("const c=require('crypto');const a=JSON.parse(process.argv[1]);"
              "const v=a[2]===null?undefined:a[2];"
              "process.stdout.write(c.createHash('sha256').update(a[0].concat(a[1],String(v),"
              "`${a[4]}:${a[3]}`)).digest('hex'))")
    out = subprocess.run(["node", "-e", script, json.dumps([index, doc_id, version, rule, space])],
                         capture_output=True, text=True, check=True).stdout
    assert kibana_alert_id(index, doc_id, version, rule, space) == out


def test_content_id_ignores_shape_and_key_order() -> None:
    nested = {"process": {"name": "cat", "args": ["cat", "/etc/shadow"]}, "host": {"name": "h"}}
    flat = {"host.name": "h", "process.args": ["cat", "/etc/shadow"], "process.name": "cat"}
    mixed = {"process": {"args": ["cat", "/etc/shadow"]}, "process.name": ["cat"],
             "host": {"name": "h"}}
    assert content_id(nested) == content_id(flat) == content_id(mixed)
    assert content_id(nested) != content_id({**flat, "process.args": ["cat", "/etc/shadow2"]})
    # argument order is meaningful
    assert content_id(nested) != content_id({**flat, "process.args": ["/etc/shadow", "cat"]})


def test_event_identity_real_and_derived() -> None:
    ev = {"data_stream": {"type": "logs", "dataset": "endpoint.events.process",
                          "namespace": "default"}, "process": {"name": "cat"}}
    derived = event_identity(ev)
    assert derived.derived and derived.index == "logs-endpoint.events.process-default"
    assert derived.id == content_id(ev)
    real = event_identity(ev, index="my-index", doc_id="abc", version=1)
    assert not real.derived and (real.index, real.id, real.version) == ("my-index", "abc", 1)
    assert real.alert_id("r") == kibana_alert_id("my-index", "abc", 1, "r", "default")
    assert event_identity({"process": {"name": "cat"}}).index == ""
