"""Triage over a real auditd capture (tests/fixtures/auditd), read by the real source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from credwatch.engine.scan import Scanner, compile_rules
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records
from credwatch.triage.enrich import Triage

LOG = Path(__file__).resolve().parents[1] / "fixtures" / "auditd" / "enriched_workload.log"


@pytest.fixture(scope="module")
def triaged() -> tuple[list[dict[str, Any]], list[str]]:
    scanner = Scanner(compile_rules([default_rule()]), all_indices=True, triage=False)
    plain: list[str] = []
    triage = Triage(window=120)
    out: list[dict[str, Any]] = []
    for rec in read_records([str(LOG)], Diagnostics()):
        out += triage.observe(rec.event)
        for alert in scanner.alerts_for(rec):
            plain.append(str(alert["kibana.alert.uuid"]))
            out += triage.add_alert(alert, rec.event)
    out += triage.drain(final=True)
    return out, plain


def _one(alerts: list[dict[str, Any]], *args: str) -> dict[str, Any]:
    found = [a for a in alerts if a["process"]["args"][: len(args)] == list(args)]
    assert found, args
    return found[0]


def test_every_alert_once_in_scan_order(triaged: tuple[list[dict[str, Any]], list[str]]) -> None:
    alerts, plain = triaged
    assert len(plain) > 20
    assert [a["kibana.alert.uuid"] for a in alerts] == plain
    assert all(a["credwatch.triage.version"] == 1 for a in alerts)


def test_real_capture_facts(triaged: tuple[list[dict[str, Any]], list[str]]) -> None:
    alerts, _ = triaged
    b64 = _one(alerts, "base64")
    assert [i["type"] for i in b64["credwatch.triage.indicators"]] == ["encoding"]
    assert b64["credwatch.triage.kinds"] == ["gcloud-adc"]
    kitty = _one(alerts, "/tmp/cwcap/kitty")
    assert kitty["credwatch.triage.scratch_executable"] == "/tmp/cwcap/kitty"
    dd = _one(alerts, "dd")
    assert dd["credwatch.triage.credentials"][0]["path"] == "/root/.ssh/id_rsa"
    sa = _one(alerts, "grep")
    assert sa["credwatch.triage.workload"]["location"] == "pod"
    for a in alerts:
        user = a["credwatch.triage.user"]
        # The workload ran with loginuid 0 in audit session 1..3 (see the fixture README).
        assert user["audit_id"] == "0" and user["login_session"] is True
    # Commands run directly by the workload script (bash, pid 4479, whose exec is in the
    # log) get it as their nearest ancestor; those from forked subshells (no exec) do not.
    direct = [a for a in alerts if a["process"]["parent"]["pid"] == 4479]
    assert len(direct) >= 10
    for a in direct:
        anc = a["credwatch.triage.correlation"]["ancestors"]
        assert anc[0]["name"] == "bash" and "workload_full.sh" in anc[0]["args"]


def test_shell_child_chain_is_rebuilt_from_observed_execs(
        triaged: tuple[list[dict[str, Any]], list[str]]) -> None:
    alerts, _ = triaged
    shadow = [a for a in alerts if a["process"]["args"] == ["cat", "/etc/shadow"]]
    chains = [[x["name"] for x in a["credwatch.triage.correlation"]["ancestors"]]
              for a in shadow]
    # `sh -c "cat /etc/shadow"` forks cat under sh, which the workload's bash started.
    assert ["sh", "bash"] in chains
    assert any("sh (pid" in a["credwatch.triage.summary"] for a in shadow)
