"""The ``_bulk`` sink against a local server answering as Elasticsearch's documented API does."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from credwatch.sinks.deliver import Deliverer
from credwatch.sinks.outbox import Outbox
from tests.sinks.helpers import sink, store_with, uuids
from tests.sinks.servers import BulkIndex, FakeClock, HttpReceiver, Reply


def test_create_with_uuid_ids_per_item_outcomes(tmp_path: Path) -> None:
    index = BulkIndex(reject={"uuid-000003"}, busy={"uuid-000005"})
    index.docs[(".alerts-security.alerts-default", "uuid-000001")] = {"already": True}
    rx = HttpReceiver(index.bulk).start()
    try:
        store = store_with(tmp_path / "a.db", ("es",), 8)
        clock = FakeClock(time.time())
        d = Deliverer(store, [sink("es", "elasticsearch", url=rx.url + "/", batch=500,
                                   api_key="ZXNfYXBpX2tleV9mYWtl")], clock=clock, rng=lambda: 0.0)
        report = d.drain()
        assert report.delivered == {"es": 6}  # 5 created + 1 answered 409: already there
        assert report.parked == {"es": 1} and report.retried == {"es": 1}
        req = rx.requests[0]
        assert req.path == "/_bulk"
        assert req.headers["content-type"] == "application/x-ndjson"
        assert req.headers["authorization"] == "ApiKey ZXNfYXBpX2tleV9mYWtl"
        lines = req.body.splitlines()
        assert orjson.loads(lines[0]) == {"create": {"_index": ".alerts-security.alerts-default",
                                                     "_id": "uuid-000000"}}
        assert orjson.loads(lines[1])["kibana.alert.uuid"] == "uuid-000000"
        assert Outbox(store).parked("es") == [
            ("uuid-000003", "HTTP 400: mapper_parsing_exception: failed to parse field [process.pid]")]
        clock.t = d.next_due() or 0
        assert d.drain().delivered == {"es": 1}  # the 429 item, retried alone
        d.close()
        assert {k[1] for k in index.docs} == uuids(8) - {"uuid-000003"}
        assert index.docs[(".alerts-security.alerts-default", "uuid-000001")] == {"already": True}
    finally:
        rx.stop()


def test_space_index_and_basic_auth(tmp_path: Path) -> None:
    index = BulkIndex()
    rx = HttpReceiver(index.bulk).start()
    try:
        store = store_with(tmp_path / "a.db", ("es",), 2)
        d = Deliverer(store, [sink("es", "elasticsearch", url=rx.url, space="prod",
                                   username="elastic", password="changeme-not-real")])
        d.drain()
        d.close()
        assert {k[0] for k in index.docs} == {".alerts-security.alerts-prod"}
        auth = rx.requests[0].headers["authorization"]
        assert base64.b64decode(auth.removeprefix("Basic ")) == b"elastic:changeme-not-real"
    finally:
        rx.stop()


def test_a_whole_request_refused_with_5xx_is_retried(tmp_path: Path) -> None:
    index = BulkIndex()
    answers: Iterator[Reply] = iter([(503, b'{"error":"unavailable"}', {})])
    rx = HttpReceiver(lambda req, n: next(answers, None) or index.bulk(req, n)).start()
    try:
        store = store_with(tmp_path / "a.db", ("es",), 3)
        clock = FakeClock(time.time())
        d = Deliverer(store, [sink("es", "elasticsearch", url=rx.url, batch=500)], clock=clock)
        assert d.drain().retried == {"es": 3}
        clock.t = d.next_due() or 0
        assert d.drain().delivered == {"es": 3}
        d.close()
    finally:
        rx.stop()
