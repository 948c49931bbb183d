"""Where a scheduler's current time comes from: the real clock, or a simulated one for replay."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SimulatedClock", "SystemClock"]


class Clock(Protocol):
    """The current time, and a way to wait."""

    def now(self) -> datetime:
        """The current time (UTC)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """Real time, optionally shifted so that it starts at ``start`` (``--now`` without replay)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._offset = (start - datetime.now(UTC)) if start else timedelta(0)

    def now(self) -> datetime:
        """Real time plus the offset."""
        return datetime.now(UTC) + self._offset

    def sleep(self, seconds: float) -> None:
        """Really sleep."""
        time.sleep(max(seconds, 0.0))


class SimulatedClock:
    """A clock that only moves when told to: sleeping advances it instantly (replay)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self) -> datetime:
        """The simulated time."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the simulated time."""
        self._now += timedelta(seconds=max(seconds, 0.0))

    def set(self, t: datetime) -> None:
        """Jump to ``t`` (e.g. to skip executions in tests)."""
        self._now = t
