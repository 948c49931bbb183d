"""Syslog RFC 5424 over UDP, TCP (octet counting) and a unix socket, with structured data."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from credwatch.sinks.deliver import Deliverer
from tests.sinks.helpers import alert, sink, store_with
from tests.sinks.servers import SyslogListener

_HEADER = re.compile(rb"<(\d+)>1 (\S+) (\S+) credwatch (\d+) alert \[credwatch@32473 (.*?)\] \xef\xbb\xbf(.*)",
                     re.S)


@pytest.mark.parametrize("kind", ["udp", "tcp", "unix"])
def test_each_transport_delivers_rfc5424_with_structured_data(tmp_path: Path, kind: str) -> None:
    listener = SyslogListener(kind, tmp_path / "log.sock")
    try:
        store = store_with(tmp_path / "a.db", ("syslog",), 0)
        store.insert([alert(1, cmd='cat "/root/.kube/config" ] \\ x'), alert(2)])
        d = Deliverer(store, [sink("syslog", "syslog", address=listener.address, facility="authpriv")])
        assert d.drain().delivered == {"syslog": 2}
        d.close()
        msgs = listener.wait(2)
    finally:
        listener.close()
    m = _HEADER.fullmatch(msgs[0])
    assert m is not None, msgs[0]
    assert int(m.group(1)) == 10 * 8 + 4  # authpriv, warning (medium)
    assert m.group(2) == b"2026-03-01T10:00:01.000Z"
    sd = m.group(5).decode()
    assert 'uuid="uuid-000001"' in sd and 'rule="rule r1"' in sd and 'count="1"' in sd
    assert 'command_line="cat \\"/root/.kube/config\\" \\] \\\\ x"' in sd
    assert m.group(6).startswith(b"process event with process cat")


def test_tcp_receiver_down_is_retried(tmp_path: Path) -> None:
    free = socket.socket()
    free.bind(("127.0.0.1", 0))  # a port nobody listens on
    address = f"tcp://127.0.0.1:{free.getsockname()[1]}"
    free.close()
    store = store_with(tmp_path / "a.db", ("syslog",), 1)
    d = Deliverer(store, [sink("syslog", "syslog", address=address)])
    report = d.drain()
    d.close()
    assert report.retried == {"syslog": 1}
    assert "refused" in report.errors["syslog"].lower()
