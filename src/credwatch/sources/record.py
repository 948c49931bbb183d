"""The unit every reader produces: one event and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Record:
    """One event and where it came from (file and line; the Elasticsearch identity if known)."""

    event: dict[str, Any]
    source: str
    line: int
    index: str | None = None
    id: str | None = None
    version: int | str | None = None


@dataclass(slots=True)
class MatchedRecord(Record):
    """A record the engine already evaluated where it was read (in a fast-path worker).

    ``matches`` is the engine's answer (which rules matched, and why), opaque to the
    readers that carry it back; the engine builds the alerts, in one place.
    """

    matches: tuple[object, ...] = ()
