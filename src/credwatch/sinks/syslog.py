"""Syslog (RFC 5424) over UDP, TCP (octet-counted framing, RFC 6587) or a unix socket.

One message per alert (or group)::

    <PRI>1 TIMESTAMP HOST credwatch PID alert [credwatch@32473 uuid="…" rule="…" …] BOM reason

The structured data carries the alert id, rule, severity, host, user, command
line (redacted unless ``no_redact``) and the group count; SD values escape
``"``, ``\\`` and ``]`` as RFC 5424 requires. 32473 is the private enterprise
number RFC 5612 reserves for documentation. UDP and unix datagrams give no
acknowledgement: a message sent is a message delivered.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence
from typing import Any

from credwatch.errors import ConfigError
from credwatch.sinks.config import SinkConfig
from credwatch.sinks.throttle import Message, first_value
from credwatch.sinks.transport import OK, Outcome, scrub
from credwatch.sinks.webhook import payload_doc

FACILITIES = {"kern": 0, "user": 1, "daemon": 3, "auth": 4, "syslog": 5, "authpriv": 10,
              "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
              "local5": 21, "local6": 22, "local7": 23}
_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5}
#: A datagram is cut to this size (RFC 5426 asks receivers for at least 2048).
MAX_DATAGRAM = 8192
#: A TCP frame is cut to this size.
MAX_FRAME = 64 * 1024
SD_ID = "credwatch@32473"


def _sd_value(value: Any, limit: int = 1024) -> str:
    text = "" if value is None else str(value)[:limit]
    text = "".join(c if c.isprintable() else " " for c in text)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_token(value: str, limit: int) -> str:
    """A header field: printable ASCII without spaces, or ``-`` (RFC 5424 NILVALUE)."""
    text = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return text or "-"


def format_message(config: SinkConfig, message: Message, hostname: str, limit: int) -> bytes:
    """The RFC 5424 message for one alert or group, at most ``limit`` bytes."""
    doc = payload_doc(config, message)
    severity = _SEVERITY.get(str(first_value(doc, "kibana.alert.severity")), 4)
    pri = FACILITIES[config.facility] * 8 + severity
    ts = first_value(doc, "@timestamp") or "-"
    cmd = first_value(doc, "process.command_line")
    params = [("uuid", first_value(doc, "kibana.alert.uuid")),
              ("rule", first_value(doc, "kibana.alert.rule.name")),
              ("rule_id", first_value(doc, "kibana.alert.rule.rule_id")),
              ("severity", first_value(doc, "kibana.alert.severity")),
              ("host", first_value(doc, "host.name")), ("user", first_value(doc, "user.name")),
              ("command_line", cmd), ("count", message.count)]
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_value(v)}"' for k, v in params if v is not None) + "]"
    head = (f"<{pri}>1 {_header_token(str(ts), 64)} {_header_token(hostname, 255)} "
            f"{_header_token(config.app_name, 48)} {os.getpid()} alert {sd} ")
    reason = str(first_value(doc, "kibana.alert.reason") or "")
    text = " ".join(reason.split())
    if message.count > 1:
        text = f"{message.count} alerts, the first: {text}"
    data = head.encode("utf-8", "replace") + b"\xef\xbb\xbf" + text.encode("utf-8", "replace")
    return data[:limit]


class SyslogTransport:
    """Send to ``udp://HOST:PORT``, ``tcp://HOST:PORT`` or ``unix:///PATH``."""

    def __init__(self, config: SinkConfig) -> None:
        if config.facility not in FACILITIES:
            raise ConfigError(f"sink {config.name}: unknown syslog facility {config.facility!r}")
        self.config = config
        assert config.address is not None
        self.scheme, _, rest = config.address.partition("://")
        self.target: Any = rest
        if self.scheme in ("udp", "tcp"):
            host, _, port = rest.rpartition(":")
            self.target = (host.strip("[]"), int(port))
        self.sock: socket.socket | None = None
        self.stream = self.scheme == "tcp"
        self.hostname = socket.gethostname()

    def _connect(self) -> socket.socket:
        if self.sock is not None:
            return self.sock
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.settimeout(self.config.timeout)
            try:
                sock.connect(self.target)
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EPROTOTYPE:  # a stream socket (syslog-ng's default)
                    raise
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.config.timeout)
                sock.connect(self.target)
                self.stream = True
        else:
            kind = socket.SOCK_STREAM if self.scheme == "tcp" else socket.SOCK_DGRAM
            info = socket.getaddrinfo(self.target[0], self.target[1], type=kind)[0]
            sock = socket.socket(info[0], kind)
            sock.settimeout(self.config.timeout)
            sock.connect(info[4])
        self.sock = sock
        return sock

    def _send_one(self, message: Message) -> None:
        sock = self._connect()
        if self.stream:
            data = format_message(self.config, message, self.hostname, MAX_FRAME)
            sock.sendall(str(len(data)).encode() + b" " + data)
        else:
            sock.send(format_message(self.config, message, self.hostname, MAX_DATAGRAM))

    async def send(self, messages: Sequence[Message]) -> list[Outcome]:
        """Send each message; a socket error drops the connection and retries that message."""
        out: list[Outcome] = []
        for m in messages:
            try:
                self._send_one(m)
                out.append(OK)
            except OSError as exc:
                self._drop()
                where = scrub(self.config.address or "", self.config.secret_values)
                out.append(Outcome("retry", f"{where}: {exc.strerror or exc}"))
        return out

    def _drop(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    async def aclose(self) -> None:
        """Close the socket."""
        self._drop()
