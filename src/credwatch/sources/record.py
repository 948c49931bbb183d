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
    #: Alerts already built for this record by a fast-path worker (their location is
    #: fixed up by :class:`~credwatch.engine.scan.Scanner`).
    prebuilt: list[dict[str, object]] | None = None
