"""Elasticsearch ``_bulk``: ``create`` with ``_id`` = ``kibana.alert.uuid``, per-item outcomes.

A retried ``create`` of an alert already indexed answers 409 for that item,
which counts as delivered, so a retry is idempotent. Per item: 200/201/409
delivered; 429 and 5xx retried; any other status parked with its error type
and reason. The default index is ``.alerts-security.alerts-<space>``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from credwatch.sinks.config import SinkConfig
from credwatch.sinks.http import DeliveryError, HttpClient
from credwatch.sinks.throttle import Message
from credwatch.sinks.transport import OK, Outcome, verdict_for_status
from credwatch.sinks.webhook import outcome, payload_doc


def _item_outcome(item: Any) -> Outcome:
    body = item.get("create") if isinstance(item, dict) else None
    status = body.get("status") if isinstance(body, dict) else None
    if not isinstance(status, int):
        return Outcome("retry", "the _bulk answer has no status for this item")
    verdict = verdict_for_status(status)
    if verdict == "ok":
        return OK
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        reason = f"{err.get('type', '')}: {err.get('reason', '')}"
    else:
        reason = str(err or "")
    return Outcome(verdict, f"HTTP {status}: {reason[:300]}")


class ElasticsearchTransport:
    """POST batches to ``<url>/_bulk``."""

    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self.http = HttpClient(config)
        self.index = config.index or f".alerts-security.alerts-{config.space}"
        self.endpoint = (config.url or "").rstrip("/") + "/_bulk"
        self.headers = {"Content-Type": "application/x-ndjson"}
        if config.api_key:
            self.headers["Authorization"] = f"ApiKey {config.api_key}"
        elif config.username is not None and config.password is not None:
            pair = base64.b64encode(f"{config.username}:{config.password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {pair}"

    def body(self, messages: Sequence[Message]) -> bytes:
        """The NDJSON body: an action line and a document per alert."""
        lines: list[bytes] = []
        for m in messages:
            uuid = m.items[0].uuid
            lines.append(orjson.dumps({"create": {"_index": self.index, "_id": uuid}}))
            lines.append(orjson.dumps(payload_doc(self.config, m), option=orjson.OPT_NON_STR_KEYS))
        return b"\n".join(lines) + b"\n"

    async def send(self, messages: Sequence[Message]) -> list[Outcome]:
        """One ``_bulk`` request; the answer's items decide each alert's fate."""
        try:
            answer = await self.http.post(self.endpoint, self.body(messages), self.headers)
        except DeliveryError as exc:
            return [Outcome("retry", str(exc))] * len(messages)
        if answer.status != 200:
            result = outcome(answer.status, answer.body, answer.retry_after)
            if result.verdict == "park" and answer.status == 413 and len(messages) > 1:
                half = len(messages) // 2  # too large: split until it fits
                return await self.send(messages[:half]) + await self.send(messages[half:])
            return [result] * len(messages)
        try:
            items = orjson.loads(answer.body).get("items")
        except (orjson.JSONDecodeError, AttributeError):
            items = None
        if not isinstance(items, list) or len(items) != len(messages):
            return [Outcome("retry", "the _bulk answer does not list one item per alert")] * len(messages)
        return [_item_outcome(i) for i in items]

    async def aclose(self) -> None:
        """Close connections."""
        await self.http.aclose()
