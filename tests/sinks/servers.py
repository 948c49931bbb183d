"""Real local receivers for the sink tests: HTTP(S), an Elasticsearch-``_bulk``-like server, syslog.

Everything listens on 127.0.0.1 (or a unix socket in the test's folder) and
runs in a thread; tests wait on conditions, never on sleeps.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

#: (status, body, headers) or None to close the connection without an answer.
Reply = tuple[int, bytes, dict[str, str]] | None


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class FakeClock:
    """A clock the deliverer reads and a sleep that advances it (no real waiting)."""

    def __init__(self, start: float) -> None:
        self.t = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1/localhost it signed: (ca, cert, key)."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=credwatch test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


class HttpReceiver:
    """An HTTP(S) server in a thread that records requests and answers through ``respond``.

    ``stop()`` closes the listening socket (the receiver is down: connections
    are refused); ``start()`` again listens on the same port.
    """

    def __init__(self, respond: Callable[[Request, int], Reply] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self.respond = respond or (lambda req, n: (200, b'{"ok":true}', {}))
        self.tls = tls
        self.requests: list[Request] = []
        self.cond = threading.Condition()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver.cond:
                    receiver.requests.append(req)
                    n = len(receiver.requests)
                    receiver.cond.notify_all()
                reply = receiver.respond(req, n)
                with receiver.cond:
                    receiver.cond.notify_all()
                if reply is None:  # crash before answering
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, data, headers = reply
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def start(self) -> HttpReceiver:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            with self.cond:
                self.server = None
                self.cond.notify_all()

    def bodies(self) -> list[Any]:
        with self.cond:
            return [orjson.loads(r.body) for r in self.requests]


@dataclass
class BulkIndex:
    """An index that behaves as Elasticsearch's documented ``_bulk`` API does for ``create``.

    Per item: 201 created, 409 version_conflict_engine_exception when the id
    exists; ids in ``reject`` answer 400 mapper_parsing_exception, ids in
    ``busy`` answer 429 es_rejected_execution_exception (once each).
    """

    docs: dict[tuple[str, str], Any] = field(default_factory=dict)
    reject: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    creates: int = 0

    def bulk(self, req: Request, n: int) -> Reply:
        lines = [ln for ln in req.body.split(b"\n") if ln.strip()]
        items: list[dict[str, Any]] = []
        errors = False
        for action_line, doc_line in zip(lines[0::2], lines[1::2], strict=True):
            action = orjson.loads(action_line)["create"]
            _id, index = action["_id"], action["_index"]
            self.creates += 1
            item: dict[str, Any]
            if _id in self.reject:
                item = {"status": 400, "error": {"type": "mapper_parsing_exception",
                                                 "reason": "failed to parse field [process.pid]"}}
            elif _id in self.busy:
                self.busy.discard(_id)
                item = {"status": 429, "error": {"type": "es_rejected_execution_exception",
                                                 "reason": "rejected execution"}}
            elif (index, _id) in self.docs:
                item = {"status": 409, "error": {"type": "version_conflict_engine_exception",
                                                 "reason": f"[{_id}]: version conflict, document already exists"}}
            else:
                self.docs[(index, _id)] = orjson.loads(doc_line)
                item = {"status": 201, "result": "created"}
            errors = errors or item["status"] >= 300
            items.append({"create": {"_index": index, "_id": _id, **item}})
        return 200, orjson.dumps({"took": 1, "errors": errors, "items": items}), \
            {"Content-Type": "application/json"}


class SyslogListener:
    """A syslog receiver on UDP, TCP (octet-counted frames) or a unix datagram socket."""

    def __init__(self, kind: str, path: Path | None = None) -> None:
        self.kind = kind
        self.messages: list[bytes] = []
        self.cond = threading.Condition()
        if kind == "unix":
            assert path is not None
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(str(path))
            self.address = f"unix://{path}"
        else:
            st = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
            self.sock = socket.socket(socket.AF_INET, st)
            self.sock.bind(("127.0.0.1", 0))
            self.address = f"{kind}://127.0.0.1:{self.sock.getsockname()[1]}"
            if kind == "tcp":
                self.sock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _add(self, msg: bytes) -> None:
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            if self.kind != "tcp":
                while True:
                    self._add(self.sock.recv(65536))
            conn, _ = self.sock.accept()
            buf = b""
            while chunk := conn.recv(65536):
                buf += chunk
                while b" " in buf:
                    size, _, rest = buf.partition(b" ")
                    if len(rest) < int(size):
                        break
                    self._add(rest[:int(size)])
                    buf = rest[int(size):]

    def wait(self, n: int, timeout: float = 10) -> list[bytes]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.messages) >= n, timeout)
            return list(self.messages)

    def close(self) -> None:
        # shutdown wakes a thread blocked in accept(); close alone would leave it listening.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)
