"""The HTML report: content, escaping of attacker-controlled values, CLI, and real rendering."""

from __future__ import annotations

import html
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from markupsafe import escape

from credwatch.triage.report import read_alerts_ndjson, render_report

from ..cli.helpers import FIXED_NOW, run_cli
from .helpers import defend, example, run_triage

ROOT = Path(__file__).resolve().parents[2]
DEFEND = str(ROOT / "src/credwatch/examples/ecs/defend.ndjson")
XSS_ARG = "/tmp/<script>alert('pwn')</script>/.aws/credentials"
XSS_HOST = "k8s-node-1\"><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def alerts() -> list[dict[str, Any]]:
    return run_triage(example("defend.ndjson"))


def _esc(text: str) -> str:
    """The report's HTML escaping (Jinja2 autoescape, i.e. markupsafe)."""
    return str(escape(text))


def _xss_alerts() -> list[dict[str, Any]]:
    ev = defend(["cat", XSS_ARG], host=XSS_HOST,
                **{"process.parent.name": "<b>bash</b>", "user.name": "<u>root</u>"})
    found = run_triage([ev])
    assert len(found) == 1
    return found


def test_report_sections_and_counts(alerts: list[dict[str, Any]]) -> None:
    page = render_report(alerts, generated=FIXED_NOW, source="defend.ndjson")
    assert page.startswith("<!DOCTYPE html>")
    assert f"{len(alerts)} alert(s) from defend.ndjson" in page
    for section in ("By priority", "By rule", "By host", "By credential category", "Timeline",
                    "Rule guides", "Response by credential category"):
        assert section in page
    for a in alerts:
        assert f'<tbody id="a-{a["kibana.alert.uuid"]}"' in page
    # Every alert's command line, explanation and response steps are in the page.
    for a in alerts[:5]:
        assert _esc(a["credwatch.triage.command_line"]["reconstructed"]) in page
        for line in a["credwatch.explanation"]:
            assert _esc(line) in page
        for cred in a["credwatch.triage.credentials"]:
            for step in cred["response"]:
                assert _esc(step) in page
    assert page.count("<tbody id=") == len(alerts)
    assert "2026-12-01T12:00:00.000Z" in page


def test_report_is_self_contained(alerts: list[dict[str, Any]]) -> None:
    page = render_report(alerts, generated=FIXED_NOW)
    # Two script elements, both the report's own and in the head: the JSON data and the
    # sort/filter script (allowed by hash); nothing loaded from anywhere.
    head, body = page.split("</head>", 1)
    assert head.count("<script") == 2 and "<script" not in body.lower()
    assert not re.search(r"<script[^>]*\bsrc\b", page, re.I)
    [csp] = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    csp = html.unescape(csp)
    assert "'unsafe-inline'" not in csp and "script-src 'sha256-" in csp
    assert not re.search(r"<(?:link|img|iframe|object|embed)\b", page, re.I)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, re.I)
    assert "@import" not in page and "url(" not in page
    assert csp.startswith("default-src 'none';")


def test_attacker_controlled_values_are_escaped() -> None:
    page = render_report(_xss_alerts(), generated=FIXED_NOW)
    body = page.split("</head>", 1)[1]
    assert "<script" not in body.lower() and page.lower().count("<script") == 2
    assert "<img" not in page.lower()
    assert "<b>bash</b>" not in page and "<u>root</u>" not in page
    assert "&lt;script&gt;alert(&#39;pwn&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # The anchor id cannot break out of its attribute either.
    assert not re.search(r"id='a-[^']*'[^>]*onerror", page)


def test_alerts_without_triage_are_enriched_for_the_report() -> None:
    [alert] = _xss_alerts()
    bare = {k: v for k, v in alert.items() if not k.startswith("credwatch.triage.")}
    page = render_report([bare], generated=FIXED_NOW)
    assert "AWS shared credentials file" in page and "aws iam update-access-key" in page
    assert "credwatch.triage.version" not in bare  # the input is not modified


def test_empty_report() -> None:
    page = render_report([], generated=FIXED_NOW)
    assert "No alerts matched." in page and "0 alert(s)" in page


def test_read_ndjson_and_array_and_errors() -> None:
    docs = [{"a": 1}, {"b": 2}]
    nd = b"\n".join(orjson.dumps(d) for d in docs) + b"\n\n"
    assert read_alerts_ndjson(io.BytesIO(nd), "x") == docs
    assert read_alerts_ndjson(io.BytesIO(orjson.dumps(docs)), "x") == docs
    from credwatch.errors import SourceError
    with pytest.raises(SourceError) as exc:
        read_alerts_ndjson(io.BytesIO(b'{"a":1}\n{broken\n'), "alerts.ndjson")
    assert "alerts.ndjson:2" in str(exc.value)


def test_cli_report_from_the_store_with_filters(tmp_path: Path) -> None:
    db = str(tmp_path / "alerts.db")
    scan = run_cli("scan", "--db", db, "--format", "ndjson", DEFEND)
    assert scan.code == 0, scan.err
    n = len(scan.alerts())
    out = tmp_path / "r.html"
    res = run_cli("report", "--db", db, "-o", str(out))
    assert res.code == 0, res.err
    assert f"wrote {n} alert(s)" in res.err
    page = out.read_text()
    assert page.count("<tbody id=") == n and "Kubernetes service-account token" in page
    res = run_cli("report", "--db", db, "-o", str(out), "--host", "no-such-host")
    assert res.code == 1 and "No alerts matched." in out.read_text()
    res = run_cli("report", "--db", db, "-o", "-", "--status", "open", "--limit", "3")
    assert res.code == 0 and res.out.count("<tbody id=") == 3


def test_cli_report_from_ndjson_file_and_stdin(tmp_path: Path,
                                               alerts: list[dict[str, Any]]) -> None:
    data = b"".join(orjson.dumps(a) + b"\n" for a in alerts)
    src = tmp_path / "alerts.ndjson"
    src.write_bytes(data)
    res = run_cli("report", "--input", str(src), "-o", "-", "--rule",
                  "5f0fff18-f340-444b-9a98-c49ade766ff4")
    assert res.code == 0 and res.out.count("<tbody id=") == len(alerts)
    res = run_cli("report", "--input", "-", "-o", "-", "--rule", "nope", stdin=data)
    assert res.code == 0 and "No alerts matched." in res.out  # stdout is the report
    bad = run_cli("report", "--input", str(tmp_path / "missing.ndjson"), "-o", "-")
    assert bad.code == 2 and "missing.ndjson" in bad.err and "Traceback" not in bad.err
    bad = run_cli("report", "--input", str(src), "-o", str(tmp_path / "no/such/dir/r.html"))
    assert bad.code == 2 and "r.html: folder does not exist" in bad.err


def test_console_script(tmp_path: Path, alerts: list[dict[str, Any]]) -> None:
    src = tmp_path / "alerts.ndjson"
    src.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in alerts))
    exe = Path(sys.executable).parent / "credwatch"
    out = tmp_path / "report.html"
    proc = subprocess.run([str(exe), "report", "-i", str(src), "-o", str(out)],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().count("<tbody id=") == len(alerts)


def test_nul_bidi_and_invisible_characters_are_made_visible() -> None:
    ev = defend(["cat", "/root/.aws/credentials", "\u202etxt.exe", "a\x00b"],
                host="node\u2066-1\u2069", **{"user.name": "ro\u200bot"})
    [alert] = run_triage([ev])
    page = render_report([alert], generated=FIXED_NOW)
    for raw in ("\x00", "\u202e", "\u2066", "\u2069", "\u200b"):
        assert raw not in page, repr(raw)
    assert "\\u202etxt.exe" in page and "a\\x00b" in page
    assert "node\\u2066-1\\u2069" in page and "ro\\u200bot" in page


def test_report_file_is_private_and_written_through_no_link(tmp_path: Path,
                                                           alerts: list[dict[str, Any]]) -> None:
    src = tmp_path / "alerts.ndjson"
    src.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in alerts[:3]))
    out = tmp_path / "r.html"
    old = os.umask(0)  # credwatch sets the mode itself, whatever the umask
    try:
        res = run_cli("report", "--input", str(src), "-o", str(out))
    finally:
        os.umask(old)
    assert res.code == 0, res.err
    assert out.stat().st_mode & 0o777 == 0o600
    target = tmp_path / "target.html"
    target.write_text("keep")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    res = run_cli("report", "--input", str(src), "-o", str(link))
    assert res.code == 2 and "symbolic link" in res.err
    assert target.read_text() == "keep" and link.is_symlink()
    res = run_cli("report", "--input", str(src), "-o", str(src))
    assert res.code == 2 and "refusing to overwrite an input" in res.err
    assert src.read_bytes().count(b"\n") == 3
    assert not list(tmp_path.glob("*.tmp-*"))
