"""The JSON webhook against a real local HTTP(S) server: batching, TLS, retries, parking."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from credwatch.errors import ConfigError
from credwatch.sinks.deliver import Deliverer
from credwatch.sinks.outbox import Outbox
from tests.sinks.helpers import alert, sink, store_with, uuids
from tests.sinks.servers import FakeClock, HttpReceiver, Reply, Request, make_tls

TOKEN = "whk_test_0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_tls(tmp_path_factory.mktemp("tls"))


def test_one_post_per_alert_with_the_bearer_token(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        store = store_with(tmp_path / "a.db", ("hook",), 3)
        cfg = sink("hook", "webhook", url=rx.url + "/alerts", token=TOKEN)
        d = Deliverer(store, [cfg])
        report = d.drain()
        d.close()
        assert report.delivered == {"hook": 3}
        assert [b["kibana.alert.uuid"] for b in rx.bodies()] == sorted(uuids(3))
        assert {r.headers["authorization"] for r in rx.requests} == {f"Bearer {TOKEN}"}
        assert {r.path for r in rx.requests} == {"/alerts"}
        assert Outbox(store).status()["hook"].delivered == 3
        assert d.next_due() is None  # nothing pending: a second drain sends nothing
    finally:
        rx.stop()


def test_batches_are_json_arrays(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        store = store_with(tmp_path / "a.db", ("hook",), 250)
        d = Deliverer(store, [sink("hook", "webhook", url=rx.url, batch=100)])
        d.drain()
        d.close()
        assert [len(b) for b in rx.bodies()] == [100, 100, 50]
        assert {a["kibana.alert.uuid"] for b in rx.bodies() for a in b} == uuids(250)
    finally:
        rx.stop()


def test_tls_with_the_test_ca_and_refused_without_it(tmp_path: Path,
                                                      tls: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls
    rx = HttpReceiver(tls=(cert, key)).start()
    try:
        store = store_with(tmp_path / "a.db", ("a", "b"), 2)
        clock = FakeClock(time.time())
        d = Deliverer(store, [sink("a", "webhook", url=rx.url, ca_file=str(ca)),
                              sink("b", "webhook", url=rx.url)], clock=clock, rng=lambda: 0.0)
        report = d.drain()
        d.close()
        assert report.delivered == {"a": 2}
        # Verification is on by default: the system CAs do not know the test CA.
        assert report.retried == {"b": 1}  # the second is not tried after the first failed
        assert "CERTIFICATE_VERIFY_FAILED" in report.errors["b"] or "certificate" in report.errors["b"]
        assert Outbox(store).status()["b"].failing == 1
        assert Outbox(store).status()["b"].pending == 2
    finally:
        rx.stop()


def test_5xx_and_429_retry_with_backoff_and_jitter(tmp_path: Path) -> None:
    answers: list[Reply] = [(503, b"busy", {}), (429, b"slow down", {"Retry-After": "30"})]

    def respond(req: Request, n: int) -> Reply:
        return answers[n - 1] if n <= len(answers) else (200, b"", {})

    rx = HttpReceiver(respond).start()
    try:
        store = store_with(tmp_path / "a.db", ("hook",), 1)
        clock = FakeClock(time.time())
        d = Deliverer(store, [sink("hook", "webhook", url=rx.url, backoff=2.0)], clock=clock,
                      rng=lambda: 0.5)
        assert d.drain().retried == {"hook": 1}
        due = d.next_due()
        assert due is not None
        # first failure: 2 s * 2**0 * (0.5 + 0.5/2)
        assert due == pytest.approx(clock.t + 1.5)
        assert d.drain().retried == {}  # not due yet: nothing sent
        clock.t = due
        assert d.drain().retried == {"hook": 1}  # 429: Retry-After (30 s) beats 2*2*0.75 = 3 s
        due2 = d.next_due()
        assert due2 is not None
        assert due2 == pytest.approx(clock.t + 30)
        clock.t = due2
        assert d.drain().delivered == {"hook": 1}
        d.close()
        assert len(rx.requests) == 3
    finally:
        rx.stop()


def test_a_poisoned_alert_in_a_batch_is_parked_alone(tmp_path: Path) -> None:
    def respond(req: Request, n: int) -> Reply:
        return (422, b"field process.pid: not an integer", {}) if b"uuid-000002" in req.body \
            else (202, b"", {})

    rx = HttpReceiver(respond).start()
    try:
        store = store_with(tmp_path / "a.db", ("hook",), 5)
        d = Deliverer(store, [sink("hook", "webhook", url=rx.url, batch=5)])
        report = d.drain()
        d.close()
        assert report.delivered == {"hook": 4} and report.parked == {"hook": 1}
        assert Outbox(store).parked("hook") == [("uuid-000002",
                                                 "HTTP 422: field process.pid: not an integer")]
        assert d.next_due() is None  # parked: never retried
    finally:
        rx.stop()


def test_secrets_are_redacted_unless_no_redact(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        store = store_with(tmp_path / "a.db", ("red", "raw"), 0)
        store.insert([alert(1, cmd="curl -H 'Authorization: Bearer abcdefghijklmnop1234' "
                                    "https://10.0.0.1/api")])
        d = Deliverer(store, [sink("red", "webhook", url=rx.url + "/red"),
                              sink("raw", "webhook", url=rx.url + "/raw", no_redact=True)])
        d.drain()
        d.close()
        by_path = {r.path: r.body for r in rx.requests}
        assert b"abcdefghijklmnop1234" not in by_path["/red"]
        assert b"[REDACTED:authorization]" in by_path["/red"]
        assert b"abcdefghijklmnop1234" in by_path["/raw"]
    finally:
        rx.stop()


def test_the_rate_limit_spaces_requests_through_the_injected_sleep(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        store = store_with(tmp_path / "a.db", ("hook",), 6)
        clock = FakeClock(time.time())
        d = Deliverer(store, [sink("hook", "webhook", url=rx.url, rate=2.0)], clock=clock,
                      sleep=clock.sleep)
        start = clock.t
        assert d.drain().delivered == {"hook": 6}
        d.close()
        # A burst of 2 (one second's worth), then one request every 0.5 s.
        assert clock.slept == pytest.approx([0.5, 0.5, 0.5, 0.5])
        assert clock.t - start == pytest.approx(2.0)
    finally:
        rx.stop()


def test_http2_enabled_falls_back_to_http1_with_a_tls_receiver_without_h2(
        tmp_path: Path, tls: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls
    rx = HttpReceiver(tls=(cert, key)).start()
    try:
        store = store_with(tmp_path / "a.db", ("a",), 1)
        d = Deliverer(store, [sink("a", "webhook", url=rx.url, ca_file=str(ca), http2=True)])
        assert d.drain().delivered == {"a": 1}
        d.close()
    finally:
        rx.stop()


def test_a_ca_file_that_is_not_a_certificate_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    store = store_with(tmp_path / "a.db", ("a",), 1)
    d = Deliverer(store, [sink("a", "webhook", url="https://127.0.0.1:9", ca_file=str(bad))])
    with pytest.raises(ConfigError, match=r"sink a: ca_file .*ca.pem: cannot load it"):
        d.drain()
    d.close()
