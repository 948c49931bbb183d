"""``run`` and ``watch`` with ``--sink``: alerts queued with the store write and delivered."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

from credwatch.cli.env import ExitStatus
from tests.engine.daygen import DAY, iso, make_event, write_ndjson
from tests.sinks.servers import HttpReceiver, Reply, Request
from tests.sinks.test_cli import TOKEN, cli, write_config


def test_run_once_with_a_sink_delivers_every_new_alert(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        cfg = write_config(tmp_path, rx.url)
        rng = random.Random(3)
        at = DAY.replace(hour=10)
        events = [make_event(i, at, positive=i % 2 == 0, rng=rng, ingested=at) for i in range(20)]
        src = write_ndjson(tmp_path / "e.ndjson", events)
        db = str(tmp_path / "a.db")
        code, out, err = cli("run", "--once", "--now", iso(at + timedelta(minutes=1)), "--db", db,
                             "--format", "ndjson", "--sink", "hook", "--config", str(cfg), str(src),
                             environ={"HOOK_TOKEN": TOKEN})
        assert code == ExitStatus.OK, err
        stored = [line for line in out.splitlines() if line.strip()]
        assert len(stored) == 10
        got = [a["kibana.alert.uuid"] for b in rx.bodies() for a in b]
        assert sorted(got) == sorted(json.loads(s)["kibana.alert.uuid"] for s in stored)
        assert "sink hook: 10 delivered, 0 parked" in err and TOKEN not in err
    finally:
        rx.stop()


def test_receiver_killed_in_the_middle_of_a_run_then_restarted(tmp_path: Path) -> None:
    holder: list[HttpReceiver] = []

    def respond(req: Request, n: int) -> Reply:
        if n == 2:  # takes the second batch in, then dies before answering
            threading.Thread(target=holder[0].stop).start()
            return None
        return (200, b"", {})

    rx = HttpReceiver(respond)
    holder.append(rx)
    rx.start()
    try:
        cfg = write_config(tmp_path, rx.url, "max_backoff = 600\n")
        cfg.write_text(cfg.read_text().replace("batch = 50", "batch = 5"))
        rng = random.Random(5)
        at = DAY.replace(hour=10)
        events = [make_event(i, at, positive=True, rng=rng, ingested=at) for i in range(40)]
        src = write_ndjson(tmp_path / "e.ndjson", events)
        db = str(tmp_path / "a.db")
        env = {"HOOK_TOKEN": TOKEN}
        code, out, err = cli("run", "--once", "--now", iso(at + timedelta(minutes=1)), "--db", db,
                             "--format", "ndjson", "--sink", "hook", "--config", str(cfg), str(src),
                             environ=env)
        assert code == ExitStatus.OK, err  # delivery trouble never changes the run's status
        stored = {json.loads(s)["kibana.alert.uuid"] for s in out.splitlines() if s.strip()}
        assert len(stored) == 40
        assert "warning: sink hook:" in err and "(kept in the outbox)" in err and TOKEN not in err
        with rx.cond:
            assert rx.cond.wait_for(lambda: rx.server is None, 10)
        rx.respond = lambda req, n: (200, b"", {})
        rx.start()
        code, _, err = cli("sinks", "deliver", "--all", "--db", db, "--config", str(cfg), environ=env)
        assert code == ExitStatus.OK, err
        got = [a["kibana.alert.uuid"] for b in rx.bodies() for a in b]
        assert set(got) == stored  # exactly once for a receiver deduplicating by uuid
        assert len(got) == 45  # at least once for one that does not: batch 2 came twice
        code, out, _ = cli("sinks", "status", "--db", db)
        assert out.splitlines()[1].split()[:5] == ["hook", "0", "0", "40", "0"]
    finally:
        rx.stop()


def test_watch_with_a_sink_delivers_what_it_alerts_on(tmp_path: Path) -> None:
    rx = HttpReceiver().start()
    try:
        cfg = write_config(tmp_path, rx.url)
        rng = random.Random(9)
        at = DAY.replace(hour=10)
        events = [make_event(i, at, positive=i % 3 == 0, rng=rng, ingested=at) for i in range(30)]
        src = write_ndjson(tmp_path / "e.ndjson", events)
        code, out, err = cli("watch", str(src), "--input-format", "ndjson", "--from", "beginning",
                             "--max-idle", "0.5", "--db", str(tmp_path / "a.db"), "--format",
                             "ndjson", "--sink", "hook", "--config", str(cfg),
                             environ={"HOOK_TOKEN": TOKEN})
        assert code == ExitStatus.OK, err
        emitted = {json.loads(s)["kibana.alert.uuid"] for s in out.splitlines() if s.strip()}
        assert len(emitted) == 10
        assert [a["kibana.alert.uuid"] for b in rx.bodies() for a in b] != []
        assert {a["kibana.alert.uuid"] for b in rx.bodies() for a in b} == emitted
        assert "sink hook: 10 delivered" in err
    finally:
        rx.stop()


def test_redact_applies_to_the_store_and_outputs_only_when_asked(tmp_path: Path) -> None:
    secret = "hunter2-not-a-real-password"
    spec = ("curl", "/usr/bin/curl", ["curl", "-u", f"admin:{secret}", "--password", secret,
                                      "-T", "/root/.kube/config", "https://x.example/up"])
    at = DAY.replace(hour=10)
    src = write_ndjson(tmp_path / "e.ndjson", [make_event(1, at, positive=True, rng=random.Random(1),
                                                          ingested=at, spec=spec)])
    for redact in (False, True):
        db = tmp_path / f"a{redact}.db"
        bulk = tmp_path / f"b{redact}.ndjson"
        code, out, err = cli("run", "--once", "--now", iso(at + timedelta(minutes=1)), "--db", str(db),
                             "--format", "ndjson", "--bulk", str(bulk), str(src),
                             *(["--redact"] if redact else []))
        assert code == ExitStatus.OK, err
        stored = sqlite3.connect(db).execute("SELECT doc FROM alerts").fetchone()[0]
        for text in (out, bulk.read_text(), stored.decode()):
            assert (secret in text) is not redact
        if redact:
            assert "/root/.kube/config" in out and "[REDACTED:secret]" in out
