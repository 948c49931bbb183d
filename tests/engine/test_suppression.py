"""Alert suppression: per execution and per duration, both missing-field strategies."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from credwatch.engine.schedule import MAX_SIGNALS_WARNING
from credwatch.rules.model import AlertSuppression, SuppressionDuration
from tests.engine.daygen import DAY, make_event
from tests.engine.helpers import Rig, rig, seed_rule


def t(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


def ev(seq: int, at: datetime, host: str | None, **kw: Any) -> dict[str, Any]:
    e = make_event(seq, at, positive=True, rng=random.Random(seq), ingested=at, host=host or "x",
                   **kw)
    if host is None:
        del e["host"]["name"]
    return e


def suppressed(r: Rig) -> dict[str | None, dict[str, Any]]:
    """Stored alerts by their host term (None for the missing-field group)."""
    out: dict[str | None, dict[str, Any]] = {}
    for a in r.store.select()[0]:
        if "kibana.alert.suppression.terms" in a:
            out[a["kibana.alert.suppression.terms"][0]["value"]] = a
    return out


def plain(r: Rig) -> list[int]:
    return sorted(a["labels"]["seq"] for a in r.store.select()[0]
                  if "kibana.alert.suppression.terms" not in a)


def rule(strategy: str = "suppress", duration: SuppressionDuration | None = None,
         **kw: Any) -> Any:
    return seed_rule(alert_suppression=AlertSuppression(
        group_by=("host.name",), duration=duration, missing_fields_strategy=strategy), **kw)


BASE = [ev(1, t(10, 1), "node-1"), ev(2, t(10, 2), "node-1"), ev(3, t(10, 3), "node-1"),
        ev(4, t(10, 2), "node-2"), ev(5, t(10, 2), None), ev(6, t(10, 4), None)]


def test_per_execution_groups_events_and_marks_the_kept_alert(tmp_path: Path) -> None:
    r = rig(tmp_path, BASE, rule())
    e = r.at(t(10, 5))
    assert [a["kibana.alert.suppression.terms"] for a in e.created] == [
        [{"field": "host.name", "value": "node-1"}], [{"field": "host.name", "value": "node-2"}],
        [{"field": "host.name", "value": None}]]  # composite order: missing last
    groups = suppressed(r)
    n1 = groups["node-1"]
    assert n1["kibana.alert.suppression.docs_count"] == 2
    assert n1["kibana.alert.suppression.start"] == "2026-03-01T10:01:00.000Z"
    assert n1["kibana.alert.suppression.end"] == "2026-03-01T10:03:00.000Z"
    assert n1["labels"]["seq"] == 1  # built from the earliest event
    assert groups["node-2"]["kibana.alert.suppression.docs_count"] == 0
    assert groups[None]["kibana.alert.suppression.docs_count"] == 1  # missing fields: suppressed
    assert n1["kibana.alert.instance.id"] != groups["node-2"]["kibana.alert.instance.id"]
    assert e.record.suppressed == 3 and e.record.alerts_created == 3


def test_do_not_suppress_alerts_on_events_missing_a_field_one_by_one(tmp_path: Path) -> None:
    r = rig(tmp_path, BASE, rule("doNotSuppress"))
    r.at(t(10, 5))
    assert sorted(k for k in suppressed(r) if k) == ["node-1", "node-2"]
    assert None not in suppressed(r)
    assert plain(r) == [5, 6]


def test_overlapping_executions_do_not_recount_and_each_execution_alerts_anew(
        tmp_path: Path) -> None:
    r = rig(tmp_path, [*BASE, ev(7, t(10, 7), "node-1")], rule())
    r.at(t(10, 5))
    e = r.at(t(10, 10))  # window [10:01, 10:10] still holds events 1-6
    (new,) = e.created
    assert new["kibana.alert.suppression.terms"][0]["value"] == "node-1"
    assert new["kibana.alert.suppression.start"] == "2026-03-01T10:07:00.000Z"
    assert new["kibana.alert.suppression.docs_count"] == 0
    assert r.store.count() == 4
    assert r.at(t(10, 15)).created == []  # nothing new


def test_duration_updates_the_open_alert_instead_of_creating_one(tmp_path: Path) -> None:
    events = [*BASE, ev(7, t(10, 7), "node-1"), ev(8, t(10, 8), "node-1"),
              ev(9, t(10, 42), "node-1")]
    r = rig(tmp_path, events, rule(duration=SuppressionDuration(value=30, unit="m")))
    r.at(t(10, 5))
    uuid = suppressed(r)["node-1"]["kibana.alert.uuid"]
    e = r.at(t(10, 10))
    assert e.created == [] and e.record.alerts_updated == 1
    n1 = r.store.get(uuid)
    assert n1 is not None
    assert n1["kibana.alert.suppression.docs_count"] == 4  # 2 + the two new events
    assert n1["kibana.alert.suppression.start"] == "2026-03-01T10:01:00.000Z"
    assert n1["kibana.alert.suppression.end"] == "2026-03-01T10:08:00.000Z"
    assert n1["kibana.alert.last_detected"] == "2026-03-01T10:10:00.000Z"
    assert n1["@timestamp"] == "2026-03-01T10:05:00.000Z"
    # 10:45: the alert was created at 10:05, before now-30m, so the group alerts afresh
    r.scheduler.run(until=t(10, 45))
    node1 = [a for a in r.store.select()[0]
             if a.get("kibana.alert.suppression.terms", [{}])[0].get("value") == "node-1"]
    assert len(node1) == 2
    assert r.store.get(uuid)["kibana.alert.suppression.docs_count"] == 4  # type: ignore[index]


def test_duration_does_not_update_a_closed_alert(tmp_path: Path) -> None:
    events = [*BASE, ev(7, t(10, 7), "node-1")]
    r = rig(tmp_path, events, rule(duration=SuppressionDuration(value=1, unit="h")))
    r.at(t(10, 5))
    uuid = suppressed(r)["node-1"]["kibana.alert.uuid"]
    assert r.store.set_status(uuid, "closed")
    e = r.at(t(10, 10))
    (new,) = e.created
    assert new["kibana.alert.suppression.start"] == "2026-03-01T10:07:00.000Z"
    assert r.store.get(uuid)["kibana.alert.suppression.docs_count"] == 2  # type: ignore[index]


def test_duration_with_do_not_suppress(tmp_path: Path) -> None:
    events = [*BASE, ev(7, t(10, 7), None), ev(8, t(10, 7), "node-2")]
    r = rig(tmp_path, events, rule("doNotSuppress", SuppressionDuration(value=1, unit="h")))
    r.at(t(10, 5))
    r.at(t(10, 10))
    assert plain(r) == [5, 6, 7]
    assert suppressed(r)["node-2"]["kibana.alert.suppression.docs_count"] == 1


def test_more_groups_than_max_signals_warns(tmp_path: Path) -> None:
    events = [ev(i, t(10, 1) + timedelta(seconds=i), f"node-{i}") for i in range(1, 5)]
    r = rig(tmp_path, events, rule(max_signals=2))
    e = r.at(t(10, 5))
    assert [a["host"]["name"] for a in e.created] == ["node-1", "node-2"]
    assert e.record.warnings == [MAX_SIGNALS_WARNING] and e.record.status == "partial failure"


def test_multi_valued_group_field_and_up_to_three_fields(tmp_path: Path) -> None:
    e1 = ev(1, t(10, 1), "node-1", user="root")
    e1["process"]["args"] = ["cat", "/root/.aws/credentials", "/etc/shadow"]
    e2 = ev(2, t(10, 2), "node-1", user="root")
    e2["process"]["args"] = ["cat", "/etc/shadow"]
    sup = AlertSuppression(group_by=("host.name", "user.name", "process.args"))
    r = rig(tmp_path, [e1, e2], seed_rule(alert_suppression=sup))
    e = r.at(t(10, 5))
    terms = [[x["value"] for x in a["kibana.alert.suppression.terms"]] for a in e.created]
    assert terms == [["node-1", "root", "/etc/shadow"],
                     ["node-1", "root", "/root/.aws/credentials"], ["node-1", "root", "cat"]]
    assert [a["kibana.alert.suppression.docs_count"] for a in e.created] == [1, 0, 1]
