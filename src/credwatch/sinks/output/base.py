"""The interface every alert sink follows (table, ndjson, sqlite, bulk, …)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Sink(Protocol):
    """Somewhere alerts go. ``write`` is called once per alert, then ``close`` once.

    A sink owns any file it opened and must flush it on ``close``; a sink
    given a stream it did not open flushes but does not close it.
    """

    def write(self, alert: Mapping[str, Any]) -> None:
        """Accept one alert document (as built by :func:`credwatch.alerts.build.build_alert`)."""
        ...

    def close(self) -> None:
        """Flush and release resources. Called exactly once, after the last write."""
        ...
