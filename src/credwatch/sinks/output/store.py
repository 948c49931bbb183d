"""Sink into the embedded SQLite alert store (deduplicated by alert uuid)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credwatch.alerts.store import AlertStore


class StoreSink:
    """Insert alerts into an :class:`AlertStore`, counting new and already-known ones."""

    def __init__(self, store: AlertStore, batch: int = 500) -> None:
        self.store = store
        self.batch = batch
        self.pending: list[Mapping[str, Any]] = []
        self.new = 0
        self.duplicates = 0

    def write(self, alert: Mapping[str, Any]) -> None:
        self.pending.append(alert)
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Write buffered alerts in one transaction."""
        if not self.pending:
            return
        results = self.store.insert(self.pending)
        self.new += sum(results)
        self.duplicates += len(results) - sum(results)
        self.pending = []

    def close(self) -> None:
        self.flush()
