"""HTTP for the sinks: httpx, TLS verified, HTTP/2 when ``h2`` is installed, everything bounded.

A receiver is not trusted to behave: every request has connect/read/write
timeouts *and* an overall deadline (a server that dribbles one byte a second
never trips a read timeout), the answer is read up to a size cap, compression
is refused (``Accept-Encoding: identity``: no decompression bombs) and
redirects are not followed (they would carry the token elsewhere). Errors
name the sink and the receiver's scheme, host and port, never the full URL
(a Slack webhook URL is a secret) nor any configured secret.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from credwatch import __version__
from credwatch.errors import ConfigError
from credwatch.sinks.config import SinkConfig
from credwatch.sinks.transport import scrub

HAVE_H2 = importlib.util.find_spec("h2") is not None


class DeliveryError(Exception):
    """A request that got no usable answer (refused, reset, timed out, too large)."""


@dataclass(slots=True, frozen=True)
class Answer:
    """A receiver's answer: status, body (at most the cap) and its Retry-After in seconds."""

    status: int
    body: bytes
    retry_after: float | None


def safe_origin(url: str) -> str:
    """``scheme://host:port`` of ``url``: safe to print (no path, query or credentials)."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or '?'}{port}"
    except ValueError:
        return "<url>"


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit() or len(value) > 9:
        return None
    return float(value.strip())


class HttpClient:
    """One sink's HTTP client (created inside the event loop that uses it)."""

    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        verify: ssl.SSLContext | bool = True
        if config.ca_file:
            try:
                verify = ssl.create_default_context(cafile=config.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"sink {config.name}: ca_file {config.ca_file}: cannot load "
                                  f"it: {getattr(exc, 'strerror', None) or exc}") from None
        elif not config.verify:
            verify = False
        t = config.timeout
        self.client = httpx.AsyncClient(
            verify=verify, http2=bool(config.http2 and HAVE_H2), follow_redirects=False,
            timeout=httpx.Timeout(t, connect=t), trust_env=False,
            limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
            headers={"User-Agent": f"credwatch/{__version__}", "Accept-Encoding": "identity"})

    def _error(self, what: str) -> DeliveryError:
        url = self.config.url or ""
        return DeliveryError(scrub(f"{safe_origin(url)}: {what}", self.config.secret_values))

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST ``body``; raise :class:`DeliveryError` on no answer within the deadline."""
        deadline = self.config.timeout * 3
        try:
            return await asyncio.wait_for(self._post(url, body, headers), deadline)
        except TimeoutError:
            raise self._error(f"no complete answer within {deadline:g} s") from None
        except httpx.HTTPError as exc:
            raise self._error(f"{type(exc).__name__}: {str(exc)[:200] or 'request failed'}") from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise self._error(f"{type(exc).__name__}: {str(exc)[:200]}") from None

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        cap = self.config.max_response_bytes
        async with self.client.stream("POST", url, content=body, headers=headers) as resp:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_raw():
                size += len(chunk)
                if size > cap:
                    # The status is known: a huge error page still says "retry" or "park".
                    return Answer(resp.status_code, b"".join(chunks),
                                  _retry_after(resp.headers.get("retry-after")))
                chunks.append(chunk)
            return Answer(resp.status_code, b"".join(chunks),
                          _retry_after(resp.headers.get("retry-after")))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()
