"""Hostile receivers and secrets (issue #17): garbage, huge and slow answers are bounded;
a config others can read is refused; a token is never in argv, output or errors."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from credwatch.cli.main import build_parser
from credwatch.sinks.deliver import Deliverer
from credwatch.sinks.outbox import Outbox
from tests.sinks.helpers import sink, store_with

TOKEN = "cw-hostile-token-5d2c8e1f9a7b3c4d6e0f"
CREDWATCH = Path(sys.executable).parent / "credwatch"


@contextlib.contextmanager
def raw_server(behave: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A TCP server whose every connection is handled by ``behave`` until the test ends."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=_handle, args=(conn,), daemon=True).start()

    def _handle(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            conn.recv(65536)
            behave(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def garbage(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"\x00\xff SSH-2.0-not-http \r\n\r\n" * 10)


def huge(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
    chunk = b"A" * 65536
    while not stop.is_set():
        conn.sendall(chunk)


def slow_headers(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.wait(0.1):  # one byte every 100 ms: never trips a read timeout
        conn.sendall(b"X")


def slow_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    while not stop.wait(0.1):
        conn.sendall(b"x")


@pytest.mark.parametrize(("behave", "reason"), [
    (garbage, "RemoteProtocolError"),
    (slow_headers, "no complete answer within 1.5 s"),
    (slow_body, "no complete answer within 1.5 s"),
])
def test_bad_receivers_are_retried_within_the_deadline(tmp_path: Path, behave: Callable[..., None],
                                                        reason: str) -> None:
    with raw_server(behave) as url:
        store = store_with(tmp_path / "a.db", ("hook",), 1)
        d = Deliverer(store, [sink("hook", "webhook", url=url, timeout=0.5, token=TOKEN)])
        start = time.monotonic()
        report = d.drain()
        elapsed = time.monotonic() - start
        d.close()
    assert report.retried == {"hook": 1}
    assert reason in report.errors["hook"] and TOKEN not in report.errors["hook"]
    assert elapsed < 5
    assert Outbox(store).status()["hook"].failing == 1


def test_a_huge_answer_is_read_up_to_the_cap(tmp_path: Path) -> None:
    with raw_server(huge) as url:
        store = store_with(tmp_path / "a.db", ("hook",), 1)
        d = Deliverer(store, [sink("hook", "webhook", url=url, timeout=2,
                                   max_response_bytes=256 * 1024)])
        start = time.monotonic()
        report = d.drain()
        elapsed = time.monotonic() - start
        d.close()
    assert report.delivered == {"hook": 1}  # a 200: the status is known, the rest is not read
    assert elapsed < 5


def test_no_command_takes_a_secret_on_the_command_line() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    secretive = ("token", "password", "passwd", "secret", "api-key", "apikey", "url")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        for action in command._actions:
            for opt in action.option_strings:
                assert not any(s in opt.lower() for s in secretive), (name, opt)


def test_a_failing_sink_never_shows_its_token_anywhere(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[sinks.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
                   'token_env = "HOOK_TOKEN"\ntimeout = 1\n')
    os.chmod(cfg, 0o600)
    env = {**os.environ, "HOOK_TOKEN": TOKEN, "XDG_DATA_HOME": str(tmp_path)}
    argv = [str(CREDWATCH), "sinks", "test", "hook", "--config", str(cfg)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    with contextlib.suppress(FileNotFoundError):
        assert TOKEN.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert b"not delivered" in err and TOKEN.encode() not in out + err
    # The delivery-error path of `sinks deliver` and the outbox's stored reasons too.
    (tmp_path / "credwatch").mkdir()
    store_with(tmp_path / "credwatch" / "alerts.db", ("hook",), 2).close()
    proc2 = subprocess.run([str(CREDWATCH), "sinks", "deliver", "--config", str(cfg)], env=env,
                           capture_output=True, timeout=60, check=False)
    assert proc2.returncode == 3 and TOKEN.encode() not in proc2.stdout + proc2.stderr
    db = (tmp_path / "credwatch" / "alerts.db").read_bytes()
    assert TOKEN.encode() not in db


def test_a_config_others_can_read_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[sinks.hook]\ntype = "webhook"\nurl = "https://x.test"\ntoken = "{TOKEN}"\n')
    os.chmod(cfg, 0o644)
    proc = subprocess.run([str(CREDWATCH), "sinks", "test", "hook", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert f"chmod 600 {cfg}" in proc.stderr and TOKEN not in proc.stderr
    assert "Traceback" not in proc.stderr
