"""``credwatch sinks test|status|deliver`` and ``run --sink`` through the CLI entry point."""

from __future__ import annotations

import io
import os
from pathlib import Path

from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.main import program
from tests.sinks.helpers import store_with
from tests.sinks.servers import HttpReceiver, Reply, Request

TOKEN = "cw-fake-token-7f3a9c2e5b1d4f6a8c0e"


def cli(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(b""), stdout=out, stderr=err,
              environ={"HOME": "/nonexistent", **(environ or {})},
              stdout_isatty=False, stderr_isatty=False)
    code = program(list(argv), env)
    return code, out.getvalue(), err.getvalue()


def write_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[sinks.hook]\ntype = "webhook"\nurl = "{url}"\ntoken_env = "HOOK_TOKEN"\n'
                    f"batch = 50\n{extra}")
    os.chmod(path, 0o600)
    return path


def test_sinks_test_sends_a_test_alert(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        cfg = write_config(tmp_path, rx.url)
        code, out, err = cli("sinks", "test", "hook", "--config", str(cfg),
                             environ={"HOOK_TOKEN": TOKEN})
        assert code == ExitStatus.OK, err
        assert "test alert credwatch-test-" in out and "delivered" in out
        [body] = rx.bodies()
        assert body[0]["credwatch.test"] is True
        assert rx.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    finally:
        rx.stop()


def test_a_refused_test_never_shows_the_token(tmp_path: Path) -> None:
    def respond(req: Request, n: int) -> Reply:
        # A receiver echoing the request's credentials back in its error page.
        return 401, f"bad token {req.headers['authorization']}".encode(), {}

    rx = HttpReceiver(respond).start()
    try:
        cfg = write_config(tmp_path, rx.url)
        code, out, err = cli("sinks", "test", "hook", "--config", str(cfg),
                             environ={"HOOK_TOKEN": TOKEN})
        assert code == ExitStatus.PARTIAL
        assert "HTTP 401" in err and TOKEN not in err + out
    finally:
        rx.stop()


def test_unknown_sink_and_private_config(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, "https://x.test")
    code, _, err = cli("sinks", "test", "nope", "--config", str(cfg), environ={"HOOK_TOKEN": "t"})
    assert code == ExitStatus.ERROR and "no sink of that name" in err and "declared: hook" in err
    os.chmod(cfg, 0o644)
    code, _, err = cli("sinks", "test", "hook", "--config", str(cfg), environ={"HOOK_TOKEN": "t"})
    assert code == ExitStatus.ERROR and f"chmod 600 {cfg}" in err and "Traceback" not in err


def test_status_and_deliver(tmp_path: Path) -> None:
    fail = {"on": True}
    rx = HttpReceiver(lambda req, n: (503, b"down", {}) if fail["on"] else (200, b"", {})).start()
    try:
        cfg = write_config(tmp_path, rx.url)
        db = tmp_path / "a.db"
        store_with(db, ("hook",), 120).close()
        code, out, _ = cli("sinks", "status", "--db", str(db), "--format", "json")
        assert code == 0 and '"pending": 120' in out and '"delivered": 0' in out
        env = {"HOOK_TOKEN": TOKEN}
        code, _, err = cli("sinks", "deliver", "--db", str(db), "--config", str(cfg), environ=env)
        assert code == ExitStatus.PARTIAL and "HTTP 503: down" in err and TOKEN not in err
        code, out, _ = cli("sinks", "status", "--db", str(db))
        # The first batch failed; the other 70 were not tried against a failing receiver.
        assert out.splitlines()[1].split()[:5] == ["hook", "120", "50", "0", "0"]
        fail["on"] = False
        code, _, err = cli("sinks", "deliver", "--db", str(db), "--config", str(cfg), environ=env)
        assert code == ExitStatus.NO_ALERTS and "0 delivered" in err  # waiting for the backoff
        code, _, err = cli("sinks", "deliver", "--all", "--db", str(db), "--config", str(cfg),
                           environ=env)
        assert code == ExitStatus.OK and "120 delivered" in err
        code, out, _ = cli("sinks", "status", "--db", str(db))
        assert out.splitlines()[1].split()[:5] == ["hook", "0", "0", "120", "0"]
        code, _, _ = cli("sinks", "deliver", "--db", str(db), "--config", str(cfg), environ=env)
        assert code == ExitStatus.NO_ALERTS
    finally:
        rx.stop()
