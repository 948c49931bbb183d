"""The generic JSON webhook: one POST per alert (``batch = 1``) or a JSON array per batch.

Each alert is sent as its (redacted) Elastic alert document; a grouped alert
(a throttled sink) carries ``credwatch.group = {count, first, last}``. The
token, if any, is sent as ``Authorization: Bearer``. A refused batch is sent
again alert by alert, so one poisoned alert is parked alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from credwatch.sinks.config import SinkConfig
from credwatch.sinks.http import DeliveryError, HttpClient
from credwatch.sinks.redact import redact_doc
from credwatch.sinks.throttle import Message
from credwatch.sinks.transport import OK, Outcome, verdict_for_status


def payload_doc(config: SinkConfig, message: Message) -> dict[str, Any]:
    """The document sent for ``message``: redacted unless ``no_redact``, with the group."""
    doc: dict[str, Any] = dict(message.doc) if config.no_redact else redact_doc(message.doc)
    if message.count > 1:
        doc["credwatch.group"] = {"count": message.count, "first": message.first,
                                  "last": message.last}
    return doc


def outcome(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """The outcome of an HTTP answer (the body's start is kept as the reason)."""
    verdict = verdict_for_status(status)
    if verdict == "ok":
        return OK
    text = body[:200].decode("utf-8", "replace").replace("\n", " ")
    return Outcome(verdict, f"HTTP {status}: {text}".rstrip(": "), retry_after)


class WebhookTransport:
    """POST alerts as JSON to ``config.url``."""

    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self.http = HttpClient(config)
        self.headers = {"Content-Type": "application/json"}
        if config.token:
            self.headers["Authorization"] = f"Bearer {config.token}"

    def body(self, messages: Sequence[Message]) -> bytes:
        """The request body: one document, or an array of them when batching."""
        docs: list[Mapping[str, Any]] = [payload_doc(self.config, m) for m in messages]
        return orjson.dumps(docs[0] if self.config.batch == 1 else docs,
                            option=orjson.OPT_NON_STR_KEYS)

    async def _post(self, messages: Sequence[Message]) -> Outcome:
        assert self.config.url is not None
        try:
            answer = await self.http.post(self.config.url, self.body(messages), self.headers)
        except DeliveryError as exc:
            return Outcome("retry", str(exc))
        return outcome(answer.status, answer.body, answer.retry_after)

    async def send(self, messages: Sequence[Message]) -> list[Outcome]:
        """Send the batch; a parked batch of several is retried alert by alert."""
        result = await self._post(messages)
        if result.verdict != "park" or len(messages) == 1:
            return [result] * len(messages)
        return [await self._post([m]) for m in messages]

    async def aclose(self) -> None:
        """Close connections."""
        await self.http.aclose()
