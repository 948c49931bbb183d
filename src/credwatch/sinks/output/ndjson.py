"""NDJSON and JSON-array sinks: full alert documents, one per line or as one array."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import orjson

_OPTS = orjson.OPT_NON_STR_KEYS


class NdjsonSink:
    """Write each alert as one JSON line.

    orjson's bytes go straight to the text stream's binary buffer when it has
    one (no decode and re-encode of ~6 KB per alert); a line-buffered stream (a
    terminal) still gets each line at once.
    """

    def __init__(self, stream: IO[str], *, owns: bool = False) -> None:
        self.stream = stream
        self.owns = owns
        self.count = 0
        binary = getattr(stream, "buffer", None)
        self._binary: IO[bytes] | None = binary if callable(getattr(binary, "write", None)) else None
        self._each_line = bool(getattr(stream, "line_buffering", False))
        if self._binary is not None:
            stream.flush()  # whatever was written as text comes first

    def write(self, alert: Mapping[str, Any]) -> None:
        data = orjson.dumps(alert, option=_OPTS | orjson.OPT_APPEND_NEWLINE)
        if self._binary is None:
            self.stream.write(data.decode("utf-8"))
        else:
            self._binary.write(data)
            if self._each_line:
                self._binary.flush()
        self.count += 1

    def flush(self) -> None:
        """Hand what was written to the operating system (``watch`` calls this per batch)."""
        if self._binary is not None:
            self._binary.flush()
        self.stream.flush()

    def close(self) -> None:
        self.flush()
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
