"""Elasticsearch ``_bulk`` NDJSON: alerts ready to load into Kibana's alerts index.

Each alert becomes two lines, a ``create`` action with the alert's id and the
document::

    {"create":{"_index":".alerts-security.alerts-default","_id":"<kibana.alert.uuid>"}}
    {...alert...}

``create`` (not ``index``) means loading the same file twice adds nothing:
Elasticsearch answers 409 for ids it already holds, which Kibana's own bulk
writer ignores too. Load with::

    curl -H 'Content-Type: application/x-ndjson' --data-binary @alerts.bulk \\
         http://localhost:9200/_bulk

The file ends with a newline, as ``_bulk`` requires.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import IO, Any

from credwatch.privatefile import open_private_text
from credwatch.rules.defaults import DEFAULT_ALERTS_INDEX


def bulk_lines(alert: Mapping[str, Any], index: str = DEFAULT_ALERTS_INDEX) -> str:
    """The two ``_bulk`` lines (action and document, each newline-terminated) for ``alert``."""
    action: dict[str, Any] = {"_index": index}
    alert_id = alert.get("kibana.alert.uuid")
    if isinstance(alert_id, str):
        action["_id"] = alert_id
    head = json.dumps({"create": action}, separators=(",", ":"))
    body = json.dumps(alert, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"{head}\n{body}\n"


class BulkSink:
    """Write alerts as ``_bulk`` NDJSON to a path or an open text stream.

    A path is created as a private file (0600, not through a symbolic link): the
    documents hold full command lines. ``owns`` makes the sink close a stream it
    was given.
    """

    def __init__(self, target: str | IO[str], index: str = DEFAULT_ALERTS_INDEX, *,
                 owns: bool = False) -> None:
        self.index = index
        self._owned = isinstance(target, str) or owns
        self._out: IO[str] = open_private_text(target) if isinstance(target, str) else target
        self.count = 0

    def write(self, alert: Mapping[str, Any]) -> None:
        """Append one alert as a create action plus its document."""
        self._out.write(bulk_lines(alert, self.index))
        self.count += 1

    def close(self) -> None:
        """Flush; close the file if this sink opened it."""
        self._out.flush()
        if self._owned:
            self._out.close()
