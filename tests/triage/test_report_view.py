"""The HTML report's layout: size per alert, guides and steps once, labels, chart, script data."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from typing import Any

import pytest
from markupsafe import escape

from credwatch.timemath import datetime_to_ms, parse_datetime
from credwatch.triage.report import render_report
from credwatch.triage.report_chart import timeline_chart
from credwatch.triage.report_text import NO_HOST, code_spans, host_label

from ..cli.helpers import FIXED_NOW
from .helpers import defend, example, run_triage

BREAKOUT = "</script><script>alert(1)</script><!--"


@pytest.fixture(scope="module")
def bundled() -> list[dict[str, Any]]:
    """The alerts of the bundled ECS examples (Elastic Defend and auditbeat captures)."""
    return run_triage(example("defend.ndjson")) + run_triage(example("auditbeat.ndjson"))


def _size(alerts: list[dict[str, Any]]) -> int:
    return len(render_report(alerts, generated=FIXED_NOW).encode("utf-8"))


def _copy(alert: dict[str, Any], n: int) -> dict[str, Any]:
    """Another alert like ``alert`` (its own uuid)."""
    return {**alert, "kibana.alert.uuid": f"{n:04x}" + alert["kibana.alert.uuid"][4:]}


def test_the_report_weighs_at_most_1_5_kb_per_alert_beyond_a_fixed_base(
        bundled: list[dict[str, Any]]) -> None:
    n = len(bundled)
    assert n >= 60
    one, two = _size(bundled), _size(bundled + [_copy(a, i) for i, a in enumerate(bundled)])
    per_alert = (two - one) / n
    assert per_alert <= 1536, per_alert
    # Also when every new alert comes from a new host (a hunt over a fleet): the summary
    # lists the top hosts, the filter has them all.
    fleet = [{**{k: v for k, v in _copy(a, i).items() if k != "host"},  # auditbeat: nested
              "host.name": f"fleet-node-{i:05d}"} for i, a in enumerate(bundled)]
    page = render_report(bundled + fleet, generated=FIXED_NOW)
    assert (len(page.encode("utf-8")) - one) / n <= 1536
    assert f"… {n + 1 - 25} more hosts (all in the host filter)" in page


def _body_text(page: str) -> str:
    """The page's text outside tags (entities decoded), roughly what a reader sees."""
    body = page.split("</head>", 1)[1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_response_steps_and_guides_are_shown_once_and_referenced(
        bundled: list[dict[str, Any]]) -> None:
    page = render_report(bundled, generated=FIXED_NOW)
    steps = {s for a in bundled for c in a["credwatch.triage.credentials"]
             for s in c["response"] + c["review"]}
    assert steps
    shared = [s for s in steps
              if sum(s in a["credwatch.triage.next_steps"] for a in bundled) > 1]
    assert shared  # the same step applies to many alerts, and still appears once
    for step in steps:
        # Once per credential category it belongs to (a review step can apply to several).
        kinds = {c["kind"] for a in bundled for c in a["credwatch.triage.credentials"]
                 if step in c["response"] + c["review"]}
        assert page.count(str(escape(step))) == len(kinds), step
    # The rule's guide is rendered once (one rule), not per alert.
    assert page.count("Possible investigation steps") == 1
    # Each alert links its credentials to their category's response.
    assert page.count('<a href="#k-') >= len(bundled)


def test_guide_markdown_is_rendered_without_backticks(bundled: list[dict[str, Any]]) -> None:
    page = render_report(bundled, generated=FIXED_NOW)
    guide = page.split('<section id="guides">', 1)[1].split("</section>", 1)[0]
    assert "<h2>Triage and analysis</h2>" in guide and "<li>" in guide and "<code>" in guide
    assert "`" not in _body_text(page) and "## " not in _body_text(page)


def test_a_hostile_guide_renders_as_text_with_only_web_links() -> None:
    [alert] = run_triage([defend(["cat", "/root/.aws/credentials"])])
    alert["kibana.alert.rule.note"] = (
        "Use `kubectl get pods` and **stop**.\n\n<script>alert(1)</script> <b>raw</b>\n\n"
        "[docs](https://example.com/guide) [js](javascript:alert(1)) [rel](/etc/passwd) "
        "<data:text/html,x> ![img](http://example.com/x.png) &#x202e;gnp.exe")
    page = render_report([alert], generated=FIXED_NOW)
    guide = page.split('<section id="guides">', 1)[1].split("</section>", 1)[0]
    assert "<code>kubectl get pods</code>" in guide and "<strong>stop</strong>" in guide
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in guide and "&lt;b&gt;raw&lt;/b&gt;" in guide
    assert '<a href="https://example.com/guide" rel="noreferrer noopener">docs</a>' in guide
    # Only the http(s) links are links (an image is shown as a link to it, never loaded).
    assert re.findall(r'<a href="([^"]*)"', guide) == ["https://example.com/guide",
                                                      "http://example.com/x.png"]
    assert "<img" not in guide and "javascript:" not in guide.split("[js]")[0]
    assert "\u202e" not in page and "\\u202egnp.exe" in guide


def test_booleans_read_yes_and_no() -> None:
    [alert] = run_triage([defend(["cat", "/root/.aws/credentials"])])
    assert alert["credwatch.triage.user"]["login_session"] is True
    assert alert["credwatch.triage.likely_benign"] is False
    page = render_report([alert], generated=FIXED_NOW)
    assert "login_session <b>yes</b>" in page and "likely benign <b>no</b>" in page
    assert not re.search(r">(True|False)<", page)


def test_one_label_per_host_everywhere() -> None:
    events = [defend(["cat", "/root/.aws/credentials"], host="node-a", t=0),
              defend(["cat", "/root/.ssh/id_rsa"], host="node-a", t=5),
              defend(["cat", "/root/.kube/config"], host="", t=9,
                     **{"host.hostname": "fallback-name"}),
              defend(["cat", "/root/.docker/config.json"], host="", t=12,
                     **{"host.hostname": None})]
    alerts = run_triage(events)
    assert [host_label(a) for a in alerts].count("node-a") == 2
    assert {host_label(a) for a in alerts} == {"node-a", "fallback-name", NO_HOST}
    page = render_report(alerts, generated=FIXED_NOW)
    data = json.loads(re.findall(r'<script type="application/json" id="cw-data">(.*?)</script>',
                                 page, re.S)[0])
    summary = re.findall(r'<a href="#f/host=(\d+)">([^<]*)</a>', page)
    cells = re.findall(r'<tr class=r tabindex=0><td>[^<]*<td><b class="P\d">P\d</b><td>[^<]*<td>([^<]*)<td>',
                       page)
    # The summary, the filter's options and every row name each host the same way.
    assert sorted(label for _, label in summary) == sorted(data["hosts"])
    assert {data["hosts"][int(i)]: label for i, label in summary} == {
        h: h for h in data["hosts"]}
    assert sorted(cells) == sorted(host_label(a) for a in alerts)
    assert set(cells) == set(data["hosts"])


def test_summary_groups_by_host_and_category_link_to_the_filtered_table(
        bundled: list[dict[str, Any]]) -> None:
    page = render_report(bundled, generated=FIXED_NOW)
    rows = re.findall(r'<a href="#f/cat=(\d+)">([^<]*)</a> <a class=muted href="#k-\1">'
                      r'\(response\)</a></td><td class=n>(\d+)</td>', page)
    kinds: dict[str, int] = {}
    for a in bundled:
        for label in {c["label"] for c in a["credwatch.triage.credentials"]}:
            kinds[html.escape(label)] = kinds.get(html.escape(label), 0) + 1
    assert {label: int(n) for _, label, n in rows} == kinds
    for i, _, _ in rows:  # every category's rows carry its index for the filter
        assert re.search(rf'data-c="(?:\d+ )*{i}(?: \d+)*"', page)


def _ms(text: str) -> int:
    t = parse_datetime(text)
    assert t is not None
    return datetime_to_ms(t)


def test_timeline_chart_has_time_and_count_axes() -> None:
    times = ["2026-12-01T11:33:14.651Z", "2026-12-01T11:33:14.700Z", "2026-12-01T11:33:40.000Z",
             "2026-12-01T11:33:55.763Z"]
    chart = timeline_chart([(_ms(t), p) for t, p in zip(times, ["P1", "P2", "P2", "P3"],
                                                         strict=True)])
    assert chart is not None
    assert chart["bucket"] == "1 s"  # 42 s of data: one bar per second
    labels = [t["label"] for t in chart["xticks"]]
    assert labels == ["11:33:20", "11:33:30", "11:33:40", "11:33:50"]
    assert chart["xticks"][0]["date"] == "2026-12-01" and not chart["xticks"][1]["date"]
    assert [t["label"] for t in chart["yticks"]] == [0, 1, 2]
    tall = max(chart["bars"], key=lambda b: len(b["segments"]))
    assert [s["cls"] for s in tall["segments"]] == ["P2", "P1"]  # P1 stacked on top
    assert "2 alert(s) (P1 1, P2 1)" in tall["title"]
    assert tall["href"] == "#f/from=2026-12-01T11:33:14&to=2026-12-01T11:33:14.999"
    # Over days the ticks are dates; the extremes of datetime do not overflow.
    wide = timeline_chart([(_ms("0001-01-01T00:00:00Z"), "P4"), (_ms("9999-12-31T23:59:59Z"),
                                                                   "P4")])
    assert wide is not None
    years = [t["label"] for t in wide["xticks"]]
    assert len(years) >= 4 and all(re.fullmatch(r"\d{4}", y) for y in years)
    assert years == sorted(years) and wide["bars"][0]["title"].startswith("0001-01-01T00:00:00")
    assert timeline_chart([]) is None


def test_the_page_draws_the_timeline_as_svg_with_labelled_axes(
        bundled: list[dict[str, Any]]) -> None:
    page = render_report(bundled, generated=FIXED_NOW)
    svg = page.split('<svg class=chart', 1)[1].split("</svg>", 1)[0]
    assert re.search(r"event time \(UTC\); one bar per \d+ m?s<", svg)
    assert ">alerts</text>" in svg
    assert len(re.findall(r"<text class=xt", svg)) >= 4
    assert len(re.findall(r"<text class=yt", svg)) >= 3
    assert "<tspan" in svg and "2026-12-01" in svg


def test_script_data_cannot_break_out_of_its_element() -> None:
    alerts = run_triage([defend(["cat", "/root/.aws/credentials", BREAKOUT],
                                host="node" + BREAKOUT)])
    page = render_report(alerts, generated=FIXED_NOW)
    assert page.count("</script>") == 2 and page.lower().count("<script") == 2
    assert "<!--" not in page
    [blob] = re.findall(r'<script type="application/json" id="cw-data">(.*?)</script>', page,
                        re.S)
    assert "<" not in blob and ">" not in blob
    assert json.loads(blob)["hosts"] == ["node" + BREAKOUT]


def test_script_data_reads_as_the_table_does() -> None:
    [alert] = run_triage([defend(["cat", "/root/.aws/credentials"], host="node\u202e-1")])
    alert["kibana.alert.severity"] = "high\u2066"
    alert["credwatch.triage.credentials"][0]["label"] = "AWS\u202e file"
    page = render_report([alert], generated=FIXED_NOW)
    [blob] = re.findall(r'<script type="application/json" id="cw-data">(.*?)</script>', page,
                        re.S)
    data = json.loads(blob)
    # The option labels a script makes from the data show invisible characters as the
    # table cells do: escaped, never raw.
    assert data["hosts"] == ["node\\u202e-1"] and data["cats"] == ["AWS\\u202e file"]
    assert data["sevs"] == ["high\\u2066"]
    assert 'data-s="high\\u2066"' in page and "<td>node\\u202e-1<td>" in page


def test_csp_allows_exactly_the_inline_script_and_style() -> None:
    page = render_report([], generated=FIXED_NOW)
    [csp] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    csp = html.unescape(csp)
    [script] = re.findall(r"<script>(.*?)</script>", page, re.S)
    [style] = re.findall(r"<style>(.*?)</style>", page, re.S)

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert f"script-src {sha(script)};" in csp and f"style-src {sha(style)};" in csp
    assert "unsafe" not in csp and "default-src 'none'" in csp
    assert not re.search(r"\sstyle=", page)  # inline style attributes would be blocked


def test_steps_show_the_command_as_code() -> None:
    assert code_spans("Command line `cat `id` x`: done") == [
        (False, "Command line "), (True, "cat `id` x"), (False, ": done")]
    assert code_spans("no code") == [(False, "no code")]
    assert code_spans("one ` tick") == [(False, "one ` tick")]
