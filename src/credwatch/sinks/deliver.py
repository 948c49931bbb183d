"""The sender: drains the outbox with retries, exponential backoff with jitter and a rate limit.

:meth:`Deliverer.drain` sends every due alert of every sink once: what the
receiver accepts is marked delivered, what it refuses for good is parked with
the reason, and what fails for now (no answer, 408, 429, 5xx) is due again
after ``backoff * 2**attempts`` seconds (at most ``max_backoff``, at least the
receiver's Retry-After), scaled by a random factor in [0.5, 1) so that many
nodes do not retry in step. The clock, the sleep used by the rate limit and
the random source are injectable, so tests run without waiting.

:class:`DeliveryThread` runs drains in the background for ``run`` and
``watch``, on its own connection to the store.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from credwatch.alerts.store import AlertStore
from credwatch.errors import CredwatchError
from credwatch.sinks.config import SinkConfig
from credwatch.sinks.elasticsearch import ElasticsearchTransport
from credwatch.sinks.outbox import LEASE_S, Outbox
from credwatch.sinks.slack import SlackTransport
from credwatch.sinks.syslog import SyslogTransport
from credwatch.sinks.throttle import Message, claim_groups, single
from credwatch.sinks.transport import Outcome, Transport, scrub
from credwatch.sinks.webhook import WebhookTransport

#: Messages claimed per round of a drain (then sent in the sink's batches).
PAGE = 1000
#: A drain stops after this many rounds per sink, so a flood never starves the others.
MAX_ROUNDS = 100


def make_transport(config: SinkConfig) -> Transport:
    """The transport for a sink's kind (created inside the event loop that will use it)."""
    if config.kind == "webhook":
        return WebhookTransport(config)
    if config.kind == "slack":
        return SlackTransport(config)
    if config.kind == "syslog":
        return SyslogTransport(config)
    return ElasticsearchTransport(config)


@dataclass(slots=True)
class DrainReport:
    """What one drain did, per sink: delivered, retried and parked counts."""

    delivered: dict[str, int] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)
    parked: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, sink: str, outcome: Outcome, n: int) -> None:
        """Count ``n`` alerts with ``outcome``."""
        table = {"ok": self.delivered, "retry": self.retried, "park": self.parked}[outcome.verdict]
        table[sink] = table.get(sink, 0) + n
        if outcome.verdict != "ok":
            self.errors[sink] = outcome.reason


class RateLimit:
    """A token bucket: ``rate`` requests a second, bursts of up to one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.tokens = max(rate, 1.0)
        self.stamp = clock()

    def take(self) -> None:
        """Wait (through the injected sleep) until a request may go."""
        if self.rate <= 0:
            return
        now = self.clock()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            self.sleep((1.0 - self.tokens) / self.rate)
            self.tokens = 1.0
            self.stamp = self.clock()
        self.tokens -= 1.0


class Deliverer:
    """Deliver ``configs``' pending alerts from ``store``'s outbox. Close it when done."""

    def __init__(self, store: AlertStore, configs: Sequence[SinkConfig], *,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random, lease: float = LEASE_S) -> None:
        self.store = store
        self.outbox = Outbox(store)
        self.configs = list(configs)
        self.clock = clock
        self.rng = rng
        self.lease = lease
        self.limits = {c.name: RateLimit(c.rate, clock, sleep) for c in configs}
        self.loop = asyncio.new_event_loop()
        self.transports: dict[str, Transport] = {}

    def backoff(self, config: SinkConfig, attempts: int, retry_after: float | None) -> float:
        """Seconds until the next attempt after ``attempts`` failed ones (jittered, capped)."""
        delay = min(config.max_backoff, config.backoff * 2.0 ** min(attempts, 40))
        delay *= 0.5 + self.rng() / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, config.max_backoff))
        return delay

    def drain(self, *, force: bool = False) -> DrainReport:
        """Send every due alert once; ``force`` sends throttled groups before their window ends."""
        report = DrainReport()
        self.loop.run_until_complete(self._drain(report, force))
        return report

    async def _drain(self, report: DrainReport, force: bool) -> None:
        for config in self.configs:
            if config.name not in self.transports:
                self.transports[config.name] = make_transport(config)
            for _ in range(MAX_ROUNDS):
                messages = self._claim(config, force)
                if not messages:
                    break
                if not await self._send(config, messages, report):
                    break  # the receiver is failing: the rest waits for the next attempt

    def _claim(self, config: SinkConfig, force: bool) -> list[Message]:
        now = self.clock()
        if config.throttle > 0:
            return claim_groups(self.store, config.name, now, config.throttle, force=force,
                                lease=self.lease)
        return [single(i) for i in self.outbox.claim(config.name, now, PAGE, self.lease)]

    async def _send(self, config: SinkConfig, messages: list[Message], report: DrainReport) -> bool:
        """Send claimed messages in batches; False when a batch failed for now.

        After a failure the batches not sent yet are given back, due with the failed
        one's next attempt (without counting an attempt of their own): a receiver
        that is down or timing out is not asked again for every batch of the drain.
        """
        transport = self.transports[config.name]
        for start in range(0, len(messages), config.batch):
            batch = messages[start:start + config.batch]
            self.limits[config.name].take()
            outcomes = await transport.send(batch)
            retry_at = self._mark(config, batch, outcomes, report)
            if retry_at is not None:
                rest = [r for m in messages[start + config.batch:] for r in m.rowids]
                if rest:
                    self.outbox.release(rest, retry_at)
                return False
        return True

    def _mark(self, config: SinkConfig, batch: list[Message], outcomes: list[Outcome],
              report: DrainReport) -> float | None:
        """Record outcomes; the time of the next attempt when some are to retry, else None."""
        now = self.clock()
        done: list[int] = []
        # One backoff for the batch: its alerts stay together for the next attempt.
        attempts = max(i.attempts for m in batch for i in m.items)
        hint = max((o.retry_after for o in outcomes if o.retry_after is not None), default=None)
        at = now + self.backoff(config, attempts, hint)
        retried = False
        for message, result in zip(batch, outcomes, strict=True):
            reason = scrub(result.reason, config.secret_values)
            result = Outcome(result.verdict, reason, result.retry_after)
            report.add(config.name, result, len(message.items))
            if result.verdict == "ok":
                done += message.rowids
            elif result.verdict == "park":
                self.outbox.park(message.rowids, reason, now)
            else:
                retried = True
                self.outbox.retry(message.rowids, reason, at)
        if done:
            self.outbox.delivered(done, now)
        return at if retried else None

    def next_due(self) -> float | None:
        """The earliest time any sink has an alert due, or None when nothing is pending."""
        times = [t for c in self.configs if (t := self.outbox.next_due(c.name)) is not None]
        return min(times) if times else None

    def close(self) -> None:
        """Close every transport and the event loop."""
        for transport in self.transports.values():
            self.loop.run_until_complete(transport.aclose())
        self.transports.clear()
        self.loop.close()


class DeliveryThread:
    """Drain in the background (for ``run`` and ``watch``) until :meth:`stop`.

    The thread opens its own connection to the store at ``db_path``. Each pass
    drains what is due, then waits until the next alert is due (at most
    ``interval`` seconds, so new alerts go out within it) or until stopped.
    Errors are handed to ``on_error`` once per change of message.
    """

    def __init__(self, db_path: str | Path, configs: Sequence[SinkConfig], *,
                 interval: float = 1.0, on_error: Callable[[str], None] | None = None) -> None:
        self.db_path = db_path
        self.configs = list(configs)
        self.interval = interval
        self.on_error = on_error
        self.stopping = threading.Event()
        self.report = DrainReport()
        self.thread = threading.Thread(target=self._main, name="credwatch-delivery", daemon=True)
        self._last_errors: dict[str, str] = {}

    def start(self) -> DeliveryThread:
        """Start the thread."""
        self.thread.start()
        return self

    def _merge(self, part: DrainReport) -> None:
        for mine, theirs in ((self.report.delivered, part.delivered),
                             (self.report.retried, part.retried), (self.report.parked, part.parked)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for sink, err in part.errors.items():
            if self.on_error and self._last_errors.get(sink) != err:
                self.on_error(f"sink {sink}: {err}")
            self._last_errors[sink] = err
        self.report.errors.update(part.errors)

    def _main(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a dead thread must say so: its alerts wait in the outbox
            if self.on_error:
                self.on_error(f"delivery stopped: {type(exc).__name__}: {exc}")

    def _loop(self) -> None:
        with AlertStore(self.db_path) as store:
            deliverer = Deliverer(store, self.configs)
            try:
                while True:
                    stopping = self.stopping.is_set()
                    try:
                        self._merge(deliverer.drain())
                    except (CredwatchError, sqlite3.Error, OSError) as exc:
                        # The outbox keeps every alert: report, and try again next pass.
                        self._merge(DrainReport(errors={"*": f"{type(exc).__name__}: {exc}"}))
                    if stopping:
                        return
                    # Still due right after a drain means waiting for a throttle window:
                    # look again at the next interval rather than spinning.
                    due = deliverer.next_due()
                    now = time.time()
                    wait = self.interval if due is None or due <= now else due - now
                    self.stopping.wait(min(max(wait, 0.02), self.interval))
            finally:
                deliverer.close()

    def stop(self) -> DrainReport:
        """Ask for a last drain, wait for it, and return what the thread delivered."""
        self.stopping.set()
        self.thread.join()
        return self.report
