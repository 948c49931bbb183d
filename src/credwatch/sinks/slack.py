"""Slack incoming-webhook messages: reason, host, user and command line, without links.

Text from the alert is escaped as Slack asks (``&``, ``<``, ``>``), so a command
line cannot inject a link or a mention, and the command line is in a code
block (no auto-linking); link unfurling is off. The webhook URL is the secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from credwatch.sinks.config import SinkConfig
from credwatch.sinks.http import DeliveryError, HttpClient
from credwatch.sinks.throttle import Message, first_value
from credwatch.sinks.transport import Outcome
from credwatch.sinks.webhook import outcome, payload_doc

#: Slack truncates long messages; a command line is cut to this many characters.
MAX_FIELD = 1500


def _esc(value: Any, limit: int = 300) -> str:
    text = "" if value is None else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(config: SinkConfig, message: Message) -> dict[str, Any]:
    """The incoming-webhook JSON for one message."""
    doc = payload_doc(config, message)
    rule = first_value(doc, "kibana.alert.rule.name")
    severity = first_value(doc, "kibana.alert.severity")
    host = first_value(doc, "host.name")
    user = first_value(doc, "user.name")
    cmd = first_value(doc, "process.command_line")
    if cmd is None:
        args = first_value(doc, "process.args")
        cmd = " ".join(map(str, args)) if isinstance(args, list) else args
    head = f"*{_esc(rule)}* ({_esc(severity)}) on host `{_esc(host)}`"
    if message.count > 1:
        head = (f"*{message.count:,} alerts*: {head}, {_esc(message.first)} to "
                f"{_esc(message.last)}; the first:")
    code = _esc(cmd, MAX_FIELD).replace("`", "'")
    lines = [head, f"Reason: {_esc(first_value(doc, 'kibana.alert.reason'), 600)}",
             f"User: `{_esc(user)}`", f"Command line: ```{code}```",
             f"Alert id: {_esc(first_value(doc, 'kibana.alert.uuid'))}"]
    return {"text": "\n".join(lines), "unfurl_links": False, "unfurl_media": False}


class SlackTransport:
    """One Slack message per alert or group (Slack webhooks take one message a request)."""

    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self.http = HttpClient(config)

    async def send(self, messages: Sequence[Message]) -> list[Outcome]:
        """Post each message; report each one's outcome."""
        out: list[Outcome] = []
        assert self.config.url is not None
        for m in messages:
            body = orjson.dumps(slack_payload(self.config, m))
            try:
                answer = await self.http.post(self.config.url, body,
                                              {"Content-Type": "application/json"})
            except DeliveryError as exc:
                out.append(Outcome("retry", str(exc)))
                continue
            out.append(outcome(answer.status, answer.body, answer.retry_after))
        return out

    async def aclose(self) -> None:
        """Close connections."""
        await self.http.aclose()
