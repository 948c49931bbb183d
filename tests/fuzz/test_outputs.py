"""Fuzz targets: event text through the terminal and HTML renderers.

No text makes them raise, and no control, format, separator or surrogate
character (Unicode categories Cc, Cf, Zl, Zp, Cs) reaches the output raw.
"""

from __future__ import annotations

import io
import sys
import unicodedata
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from credwatch.alerts.display import terminal_text, visible_text
from credwatch.alerts.sinks.table import TableSink
from credwatch.triage.report import render_report

from . import corpus, fuzz

UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=200)


def _unsafe(text: str, allowed: str = "") -> list[str]:
    return [c for c in text if unicodedata.category(c) in UNSAFE_CATEGORIES and c not in allowed]


def test_every_code_point_of_the_unsafe_categories_is_escaped() -> None:
    everything = "".join(chr(cp) for cp in range(sys.maxunicode + 1))
    assert _unsafe(terminal_text(everything)) == []
    assert _unsafe(visible_text(everything), allowed="\t\n") == []
    # ...and nothing else is touched: every other character survives as itself, except
    # unassigned code points inside the invisible-operator and tag blocks.
    safe = "".join(c for c in everything if not _unsafe(c))
    lost = set(safe) - set(terminal_text(safe))
    assert {unicodedata.category(c) for c in lost} == {"Cn"}
    assert all(0x2060 <= ord(c) <= 0x206F or 0xE0000 <= ord(c) <= 0xE007F for c in lost)


@fuzz
@given(ANY_TEXT)
def test_terminal_text(text: str) -> None:
    shown = terminal_text(text)
    assert _unsafe(shown) == []
    shown.encode("utf-8")  # printable on a UTF-8 terminal (no lone surrogates)
    if not _unsafe(text):
        assert shown == text


def _alert(host: str, args: list[str], user: str) -> dict[str, Any]:
    return {"@timestamp": "2026-12-01T12:00:00.000Z", "kibana.alert.uuid": "f" * 64,
            "kibana.alert.rule.name": "R" + host, "kibana.alert.severity": "high",
            "kibana.alert.reason": " ".join(args), "host.name": host, "user.name": user,
            "process.name": args[0] if args else "", "process.args": args,
            "process.parent.name": user, "credwatch.explanation": args,
            "credwatch.explain": [{"field": "process.args", "value": a} for a in args]}


@fuzz
@given(ANY_TEXT, st.lists(ANY_TEXT, max_size=5), ANY_TEXT)
def test_table_sink(host: str, args: list[str], user: str) -> None:
    out = io.StringIO()
    sink = TableSink(out, color=True, width=120)
    sink.write(_alert(host, args, user))
    sink.close()
    assert "\x1b]" not in out.getvalue()  # rich's own styling is CSI; OSC only from input
    assert _unsafe(out.getvalue(), allowed="\n\x1b") == []


@fuzz
@given(ANY_TEXT, st.lists(ANY_TEXT, max_size=5), ANY_TEXT)
def test_html_report(host: str, args: list[str], user: str) -> None:
    page = render_report([_alert(host, args, user)], title=host)
    assert _unsafe(page, allowed="\t\n") == []
    body = page.split("</head>", 1)[1].lower()
    assert "<script" not in body and "<img" not in body


def test_corpus_replays() -> None:
    for data in corpus("outputs"):
        text = data.decode("utf-8", "surrogateescape")
        assert _unsafe(terminal_text(text)) == []
        render_report([_alert(text, [text], text)])
