"""Slack messages and per-sink throttling: 10,000 hits in a minute are one message."""

from __future__ import annotations

import time
from pathlib import Path

from credwatch.sinks.deliver import Deliverer
from credwatch.sinks.outbox import Item, Outbox
from credwatch.sinks.slack import slack_payload
from credwatch.sinks.throttle import Message, single
from tests.sinks.helpers import alert, sink, store_with
from tests.sinks.servers import FakeClock, HttpReceiver

SLACK_URL_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


def test_ten_thousand_hits_in_a_minute_are_one_message_saying_so(tmp_path: Path) -> None:
    rx = HttpReceiver(lambda req, n: (200, b"ok", {})).start()
    try:
        store = store_with(tmp_path / "a.db", ("slack",), 10_000)
        store.insert([alert(20_000 + i, host="node-2") for i in range(3)])
        clock = FakeClock(time.time())
        d = Deliverer(store, [sink("slack", "slack", url=rx.url + SLACK_URL_PATH)], clock=clock)
        assert d.drain().delivered == {}  # the window (60 s) is still open
        clock.t += 60
        report = d.drain()
        d.close()
        assert report.delivered == {"slack": 10_003}
        texts = sorted(b["text"] for b in rx.bodies())
        assert len(texts) == 2  # one per (rule, host)
        assert texts[0].startswith("*10,000 alerts*: *rule r1* (medium) on host `node-1`")
        assert texts[1].startswith("*3 alerts*: *rule r1* (medium) on host `node-2`")
        assert Outbox(store).status()["slack"].delivered == 10_003
        assert all(r.path == SLACK_URL_PATH for r in rx.requests)
    finally:
        rx.stop()


def test_a_forced_drain_sends_open_groups(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        store = store_with(tmp_path / "a.db", ("slack",), 2)
        d = Deliverer(store, [sink("slack", "slack", url=rx.url)])
        assert d.drain(force=True).delivered == {"slack": 2}
        d.close()
        assert len(rx.requests) == 1
    finally:
        rx.stop()


def test_text_from_the_alert_cannot_make_links_or_mentions() -> None:
    doc = alert(1, cmd="curl <https://evil.example|click here> <!channel> `x` && cat ~/.aws/credentials")
    msg = Message([Item(1, "uuid-000001", doc, 0)], doc)
    text = slack_payload(sink("s", "slack", url="https://hooks.slack.com/x"), msg)["text"]
    assert "<" not in text and ">" not in text.replace("&gt;", "")
    assert "&lt;https://evil.example|click here&gt; &lt;!channel&gt; 'x' &amp;&amp; cat" in text
    assert slack_payload(sink("s", "slack", url="u"), single(Item(1, "u", doc, 0)))["unfurl_links"] is False
