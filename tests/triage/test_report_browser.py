"""The HTML report in headless Chromium, driven over the DevTools protocol.

Chromium renders the report of the bundled examples (plus alerts on a few more
hosts, one named to break out of the script element); the test clicks column
headers and checks the row order, filters by host and category and checks which
rows remain, follows a summary link, and checks a screenshot has content.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from websocket import WebSocket, create_connection

from credwatch.triage.report import render_report
from credwatch.triage.report_text import host_label

from ..cli.helpers import FIXED_NOW
from .helpers import defend, example, run_triage

BREAKOUT = "</script><script>document.title='pwned'</script><!--"
#: A deadline per DevTools round trip, not a pause: generous because a loaded 2-core CI box once needed more than 30 s.
TIMEOUT = 120.0


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


pytestmark = pytest.mark.skipif(
    _chromium() is None,
    reason="no Chromium found (chromium, chromium-browser or google-chrome on PATH); "
           "install it with `apt-get install -y chromium`")


def _drain(stream: IO[bytes], found: queue.Queue[str]) -> None:
    """Read Chromium's stderr to the end (so it never blocks), passing on the DevTools URL."""
    for line in stream:
        m = re.search(rb"DevTools listening on (ws://\S+)", line)
        if m:
            found.put(m.group(1).decode())


class Page:
    """One page of a headless Chromium, over a DevTools websocket (flat sessions)."""

    def __init__(self, ws: WebSocket, session: str) -> None:
        self.ws, self.session, self.next_id = ws, session, 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params,
                                 **({"sessionId": self.session} if self.session else {})}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, (method, msg["error"])
                result: dict[str, Any] = msg["result"]
                return result
            self.events.append(msg)

    def wait_for(self, method: str) -> dict[str, Any]:
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv()))

    def js(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                          awaitPromise=True)
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) on ``selector``.

        In the middle of its first box: a link wrapped over two lines has a gap in the
        middle of its bounding rectangle.
        """
        box = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: "center"}}); const r = e.getClientRects()[0];
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1],
                      button="left", clickCount=1)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[Page, Path]]:
    exe = _chromium()
    assert exe is not None
    profile = tmp_path / "profile"
    proc = subprocess.Popen(
        [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1", f"--user-data-dir={profile}",
         "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--window-size=1280,1000", "about:blank"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env={**os.environ, "HOME": str(tmp_path)})
    assert proc.stderr is not None
    found: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_drain, args=(proc.stderr, found), daemon=True).start()
    try:
        url = found.get(timeout=TIMEOUT)
        ws = create_connection(url, timeout=TIMEOUT, suppress_origin=True)
        browser = Page(ws, "")
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)
        page = Page(ws, session["sessionId"])
        for domain in ("Page", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        yield page, tmp_path
        ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)


def _alerts() -> list[dict[str, Any]]:
    """The bundled examples' alerts and a few on other hosts (one with a hostile name)."""
    extra = [defend(["cat", "/root/.aws/credentials"], host="bastion-2", t=30, pid=7001),
             defend(["cat", "/root/.ssh/id_rsa"], host="bastion-2", t=31, pid=7002),
             defend(["base64", "/root/.kube/config"], host="build-runner-7", t=45, pid=7003),
             defend(["cat", "/root/.aws/credentials", BREAKOUT], host="node" + BREAKOUT,
                    t=50, pid=7004)]
    more = run_triage(extra)
    more[0]["kibana.alert.severity"] = "critical"  # the rule's severity, as a rule override would
    return run_triage(example("defend.ndjson")) + run_triage(example("auditbeat.ndjson")) + more


_ROWS = """Array.from(document.querySelectorAll('#alert-table tbody'))
    .filter(b => !b.hidden).map(b => [b.rows[0].cells[3].textContent, Number(b.dataset.t),
                                     b.rows[0].cells[7].textContent])"""


def _png_colours(png: bytes) -> set[bytes]:
    """The distinct pixel values of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, _, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * bpp
    prev, colours = bytearray(stride), set[bytes]()
    for start in range(0, len(raw), stride + 1):
        kind, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            a = row[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + a) & 255
            elif kind == 2:
                row[i] = (row[i] + b) & 255
            elif kind == 3:
                row[i] = (row[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(bytes(row[i:i + 3]) for i in range(0, stride, bpp))
        prev = row
    return colours


def test_report_sorts_filters_and_draws_in_headless_chromium(
        browser: tuple[Page, Path]) -> None:
    page, tmp = browser
    alerts = _alerts()
    path = tmp / "report.html"
    path.write_text(render_report(alerts, generated=FIXED_NOW), encoding="utf-8")
    page.call("Page.navigate", url=path.as_uri())
    page.wait_for("Page.loadEventFired")

    # The script ran (allowed by its CSP hash) and so did the style; nothing was refused.
    n = len(alerts)
    assert page.js("document.getElementById('shown').textContent") == f"{n} of {n} alert(s) shown"
    assert page.js("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 249)"
    # The hostile host name stayed data: two script elements, the title untouched, and the
    # filter option reads exactly as the table cell.
    assert page.js("document.scripts.length") == 2
    assert page.js("document.title") == "credwatch alert report"
    options = page.js("Array.from(document.querySelectorAll('select[name=host] option'))"
                      ".map(o => [o.value, o.textContent])")
    labels = {host_label(a) for a in alerts}
    assert {text for value, text in options if value} == labels
    assert "node" + BREAKOUT in labels

    # Sorting: a click on "host" sorts by host name, a second click reverses it.
    before = page.js(_ROWS)
    page.click("#alert-table th:nth-child(4) button")
    by_host = page.js(_ROWS)
    hosts = [r[0] for r in by_host]
    assert hosts == sorted(hosts, key=str.lower) and by_host != before
    assert sorted(map(tuple, by_host)) == sorted(map(tuple, before))  # same rows, new order
    page.click("#alert-table th:nth-child(4) button")
    assert [r[0] for r in page.js(_ROWS)] == sorted(hosts, key=str.lower, reverse=True)
    page.click("#alert-table th:nth-child(1) button")
    times = [r[1] for r in page.js(_ROWS)]
    assert times == sorted(times) and times != [r[1] for r in by_host]

    # A click on a row shows its details; Enter on the focused row hides them again.
    shut = "#alert-table tbody:not(.open)"
    uuid = page.js(f"document.querySelector('{shut}').id")
    details = f"getComputedStyle(document.querySelector('#{uuid} tr.d')).display"
    assert page.js(details) == "none"
    page.click(f"#{uuid} tr.r td:nth-child(6)")
    assert page.js(details) == "table-row"
    page.js(f"document.querySelector('#{uuid} tr.r').focus()")
    for kind in ("keyDown", "keyUp"):
        page.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                  windowsVirtualKeyCode=13)
    assert page.js(details) == "none"

    # Filtering by host: only that host's rows are visible, and the count says so.
    value = next(v for v, text in options if text == "bastion-2")
    page.js(f"""(() => {{ const s = document.querySelector('select[name=host]');
        s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change', {{bubbles: true}}));
        }})()""")
    rows = page.js(_ROWS)
    assert [r[0] for r in rows] == ["bastion-2", "bastion-2"]
    assert page.js("document.getElementById('shown').textContent") == f"2 of {n} alert(s) shown"

    # Severity and priority: a header click sorts by severity rank, the selects filter.
    page.click("#alert-table th:nth-child(3) button")
    sevs = page.js("""Array.from(document.querySelectorAll('#alert-table tbody'))
        .filter(b => !b.hidden).map(b => b.rows[0].cells[2].textContent)""")
    assert sevs == ["high", "critical"]  # ascending rank: high before critical
    for name, value, column in (("sev", "critical", 2), ("prio", "P1", 1)):
        page.js(f"""(() => {{ document.querySelector('select[name=host]').value = '';
            const s = document.querySelector('select[name={name}]'); s.value = '{value}';
            s.dispatchEvent(new Event('change', {{bubbles: true}})); }})()""")
        cells = page.js(f"""Array.from(document.querySelectorAll('#alert-table tbody'))
            .filter(b => !b.hidden).map(b => b.rows[0].cells[{column}].textContent)""")
        want = [a for a in alerts if (a["kibana.alert.severity"] if name == "sev"
                                      else a["credwatch.triage.priority"]) == value]
        assert cells == [value] * len(want) and want
        page.js(f"document.querySelector('select[name={name}]').value = ''")

    # A summary link filters too: the category with the fewest alerts, by a real click.
    page.js("window.scrollTo(0, 0)")
    fewest = page.js("""Array.from(document.querySelectorAll('#summary a[href^="#f/cat="]'))
        .map(a => [a.getAttribute('href'), a.textContent,
                   Number(a.closest('tr').querySelector('td.n').textContent)])
        .sort((x, y) => x[2] - y[2])[0]""")
    # Listeners run in order: once this one has run, the report's own has applied the filter.
    page.js("window.hashSeen = new Promise(r => addEventListener('hashchange', r, {once: true})); 0")
    page.click(f'#summary a[href="{fewest[0]}"]')
    page.js("window.hashSeen.then(() => 0)")
    rows = page.js(_ROWS)
    assert len(rows) == fewest[2] and all(fewest[1] in r[2] for r in rows)
    assert page.js("document.querySelector('select[name=host]').value") == ""

    # A timeline bar filters by time: its alerts are those of its span, whatever the host.
    bar = page.js("""(() => { const a = document.querySelector('#timeline svg a');
        return [a.getAttribute('href'), a.querySelector('title').textContent]; })()""")
    page.js("window.hashSeen = new Promise(r => addEventListener('hashchange', r, {once: true})); 0")
    page.click("#timeline svg a rect")
    page.js("window.hashSeen.then(() => 0)")
    m = re.fullmatch(r"#f/from=(\S+)&to=(\S+)", bar[0])
    assert m is not None
    lo, hi = m.groups()
    span = page.js(f"[Date.parse('{lo}Z'), Date.parse('{hi}Z')]")
    rows = page.js(_ROWS)
    assert rows and all(span[0] <= r[1] <= span[1] for r in rows)
    assert f": {len(rows)} alert(s)" in bar[1]
    assert len({r[0] for r in rows}) >= 1 and len(rows) < n

    # The first screen has content: more than one colour, among them the P1 badge's red.
    page.js("window.scrollTo(0, 0)")
    shot = page.call("Page.captureScreenshot", format="png",
                     clip={"x": 0, "y": 0, "width": 1280, "height": 700, "scale": 0.5})
    colours = _png_colours(base64.b64decode(shot["data"]))
    assert len(colours) > 1 and bytes((0xB3, 0x26, 0x1E)) in colours

    refused = [e for e in page.events if e.get("method") in ("Log.entryAdded",
               "Runtime.exceptionThrown") and ("Content Security Policy" in json.dumps(e)
                                               or e["method"] == "Runtime.exceptionThrown")]
    assert refused == []


def test_without_javascript_every_alert_shows_its_details(browser: tuple[Page, Path]) -> None:
    page, tmp = browser
    alerts = run_triage(example("defend.ndjson"))
    path = tmp / "report.html"
    path.write_text(render_report(alerts, generated=FIXED_NOW), encoding="utf-8")
    page.call("Emulation.setScriptExecutionDisabled", value=True)
    page.call("Page.navigate", url=path.as_uri())
    page.wait_for("Page.loadEventFired")
    # Runtime.evaluate still runs (DevTools is not the page): read what the reader sees.
    shown = page.js("""Array.from(document.querySelectorAll('#alert-table tr.d'))
        .map(r => getComputedStyle(r).display)""")
    assert shown == ["table-row"] * len(alerts)
    assert page.js("getComputedStyle(document.getElementById('filters')).display") == "none"
    assert page.js("document.documentElement.className") == ""
