"""NDJSON and JSON-array sinks: full alert documents, one per line or as one array."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS


class NdjsonSink:
    """Write each alert as one JSON line."""

    def __init__(self, stream: IO[str], *, owns: bool = False) -> None:
        self.stream = stream
        self.owns = owns
        self.count = 0

    def write(self, alert: Mapping[str, Any]) -> None:
        self.stream.write(orjson.dumps(alert, option=_OPTS).decode("utf-8"))
        self.stream.write("\n")
        self.count += 1

    def close(self) -> None:
        self.stream.flush()
        if self.owns:
            self.stream.close()


class JsonArraySink:
    """Write all alerts as one pretty-printed JSON array (buffered until close)."""

    def __init__(self, stream: IO[str], *, owns: bool = False) -> None:
        self.stream = stream
        self.owns = owns
        self.alerts: list[Mapping[str, Any]] = []

    def write(self, alert: Mapping[str, Any]) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        data = orjson.dumps(self.alerts, option=_OPTS | orjson.OPT_INDENT_2)
        self.stream.write(data.decode("utf-8") + "\n")
        self.stream.flush()
        if self.owns:
            self.stream.close()
