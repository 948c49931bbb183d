"""What every delivery transport provides, and how an answer becomes an outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from credwatch.sinks.config import SinkConfig
from credwatch.sinks.throttle import Message

Verdict = Literal["ok", "retry", "park"]


@dataclass(slots=True, frozen=True)
class Outcome:
    """The fate of one message: delivered, to retry (after ``retry_after`` s at least), parked."""

    verdict: Verdict
    reason: str = ""
    retry_after: float | None = None


OK = Outcome("ok")


class Transport(Protocol):
    """A sink's sender. ``send`` answers one outcome per message, in order."""

    config: SinkConfig

    async def send(self, messages: Sequence[Message]) -> list[Outcome]:
        """Send ``messages`` (at most ``config.batch`` of them) and report each one's fate."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every configured secret value replaced (for messages and the outbox)."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "[secret]")
    return text


def verdict_for_status(status: int) -> Verdict:
    """2xx and 409 (already there) deliver; 408, 429 and 5xx retry; any other answer parks."""
    if 200 <= status < 300 or status == 409:
        return "ok"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "park"
