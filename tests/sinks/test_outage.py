"""Nothing lost: a receiver killed mid-delivery and restarted, a deliverer that crashes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from credwatch.alerts.store import AlertStore
from credwatch.sinks.deliver import Deliverer, DeliveryThread
from credwatch.sinks.outbox import Outbox
from tests.sinks.helpers import sink, store_with, uuids
from tests.sinks.servers import BulkIndex, FakeClock, HttpReceiver, Reply, Request

CREDWATCH = Path(sys.executable).parent / "credwatch"


def _crashing_receiver(crash_at: int) -> tuple[HttpReceiver, threading.Event]:
    """A receiver that takes the ``crash_at``-th request in and dies before answering."""
    crashed = threading.Event()
    holder: list[HttpReceiver] = []

    def respond(req: Request, n: int) -> Reply:
        if n == crash_at:
            crashed.set()
            threading.Thread(target=holder[0].stop).start()  # the process dies
            return None
        return (200, b"", {})

    rx = HttpReceiver(respond)
    holder.append(rx)
    return rx, crashed


def test_webhook_receiver_killed_mid_delivery_then_restarted(tmp_path: Path) -> None:
    rx, crashed = _crashing_receiver(crash_at=4)
    rx.start()
    n = 40
    store = store_with(tmp_path / "a.db", ("hook",), n)
    clock = FakeClock(time.time())
    d = Deliverer(store, [sink("hook", "webhook", url=rx.url, batch=5, timeout=5)],
                  clock=clock, rng=lambda: 0.0)
    first = d.drain()
    assert crashed.is_set()
    # Batches 1-3 delivered; batch 4 reached the receiver but got no answer; the rest was not
    # tried, and waits for batch 4's next attempt.
    assert first.delivered == {"hook": 15}
    assert first.retried == {"hook": 5}
    assert Outbox(store).status()["hook"].pending == 25
    with rx.cond:
        assert rx.cond.wait_for(lambda: rx.server is None, 10)
    rx.respond = lambda req, k: (200, b"", {})
    rx.start()  # back on the same port
    due = d.next_due()
    assert due is not None
    clock.t = due
    second = d.drain()
    d.close()
    assert second.delivered == {"hook": 25}
    got = [a["kibana.alert.uuid"] for b in rx.bodies() for a in b]
    # A receiver that deduplicates by uuid has every alert exactly once...
    assert set(got) == uuids(n)
    # ...one that does not has them at least once: batch 4 arrived twice.
    assert len(got) == n + 5
    assert Outbox(store).status()["hook"].delivered == n


def test_bulk_receiver_killed_mid_delivery_indexes_each_alert_once(tmp_path: Path) -> None:
    index = BulkIndex()
    holder: list[HttpReceiver] = []
    crashed = threading.Event()

    def respond(req: Request, k: int) -> Reply:
        reply = index.bulk(req, k)  # it indexes the batch, then dies before answering
        if k == 2:
            crashed.set()
            threading.Thread(target=holder[0].stop).start()
            return None
        return reply

    rx = HttpReceiver(respond)
    holder.append(rx)
    rx.start()
    store = store_with(tmp_path / "a.db", ("es",), 30)
    clock = FakeClock(time.time())
    d = Deliverer(store, [sink("es", "elasticsearch", url=rx.url, batch=10, timeout=5)],
                  clock=clock, rng=lambda: 0.0)
    d.drain()
    assert crashed.is_set()
    with rx.cond:
        assert rx.cond.wait_for(lambda: rx.server is None, 10)
    rx.respond = index.bulk
    rx.start()
    clock.t = d.next_due() or clock.t
    report = d.drain()
    d.close()
    assert report.delivered == {"es": 20}  # 10 answered 409 "already there", 10 created
    assert {k[1] for k in index.docs} == uuids(30)
    assert index.creates == 40
    assert Outbox(store).status()["es"].delivered == 30


def test_a_crashed_deliverer_leaves_claims_that_expire(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        path = tmp_path / "a.db"
        store_with(path, ("hook",), 7).close()
        clock = FakeClock(time.time())
        with AlertStore(path) as crashed:
            # The crashed process claimed everything and never marked anything.
            assert len(Outbox(crashed).claim("hook", clock.t, 100, lease=60)) == 7
        with AlertStore(path) as store:
            d = Deliverer(store, [sink("hook", "webhook", url=rx.url)], clock=clock)
            assert d.drain().delivered == {}  # still leased: no double send meanwhile
            clock.t += 60
            assert d.drain().delivered == {"hook": 7}
            d.close()
        assert {b["kibana.alert.uuid"] for b in rx.bodies()} == uuids(7)
        assert len(rx.requests) == 7
    finally:
        rx.stop()


def test_a_down_receiver_is_tried_once_per_drain_not_once_per_batch(tmp_path: Path) -> None:
    rx = HttpReceiver(lambda req, n: (503, b"", {})).start()
    try:
        store = store_with(tmp_path / "a.db", ("hook",), 300)
        clock = FakeClock(time.time())
        d = Deliverer(store, [sink("hook", "webhook", url=rx.url, batch=10)], clock=clock,
                      rng=lambda: 0.0)
        assert d.drain().retried == {"hook": 10}
        assert len(rx.requests) == 1
        # Everything waits for the same next attempt, and then goes out together.
        assert d.next_due() == clock.t + 0.5
        rx.respond = lambda req, n: (200, b"", {})
        clock.t += 0.5
        assert d.drain().delivered == {"hook": 300}
        d.close()
    finally:
        rx.stop()


def test_a_deliverer_killed_mid_request_resumes_where_it_stopped(tmp_path: Path) -> None:
    release = threading.Event()

    def respond(req: Request, n: int) -> Reply:
        if n == 2:
            release.wait(30)  # hold the second batch until the sender is dead
        return (200, b"", {})

    rx = HttpReceiver(respond).start()
    try:
        db = tmp_path / "a.db"
        store_with(db, ("hook",), 30).close()
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[sinks.hook]\ntype = "webhook"\nurl = "{rx.url}"\nbatch = 10\n')
        os.chmod(cfg, 0o600)
        argv = [str(CREDWATCH), "sinks", "deliver", "--db", str(db), "--config", str(cfg)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with rx.cond:
            assert rx.cond.wait_for(lambda: len(rx.requests) >= 2, 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        release.set()
        with AlertStore(db) as store:
            st = Outbox(store).status()["hook"]
            assert (st.delivered, st.pending) == (10, 20)  # batch 1 marked; 2 and 3 still claimed
        done = subprocess.run([*argv, "--all"], capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0, done.stderr
        got = [a["kibana.alert.uuid"] for b in rx.bodies() for a in b]
        assert set(got) == uuids(30) and len(got) == 40  # batch 2 twice, nothing lost
    finally:
        release.set()
        rx.stop()


def test_a_delivery_thread_that_cannot_start_says_so(tmp_path: Path) -> None:
    errors: list[str] = []
    thread = DeliveryThread(tmp_path / "missing" / "a.db", [sink("hook", "webhook", url="http://x")],
                            on_error=errors.append).start()
    report = thread.stop()
    assert report.delivered == {}
    assert len(errors) == 1 and "delivery stopped: ConfigError" in errors[0]
    assert "folder does not exist" in errors[0]
