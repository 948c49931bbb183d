"""Fuzz targets: event text through the terminal and HTML renderers.

No text makes them raise, and no control, format, separator or surrogate
character (Unicode categories Cc, Cf, Zl, Zp, Cs) reaches the output raw.
"""

from __future__ import annotations

import io
import sys
import unicodedata
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from credwatch.alerts.display import terminal_text, visible_text
from credwatch.errors import CredwatchError
from credwatch.sinks.output.table import TableSink
from credwatch.triage.report import filter_alerts, read_alerts_ndjson, render_report

from . import corpus, fuzz

UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=200)


def _unsafe(text: str, allowed: str = "") -> list[str]:
    return [c for c in text if unicodedata.category(c) in UNSAFE_CATEGORIES and c not in allowed]


def test_every_code_point_of_the_unsafe_categories_is_escaped() -> None:
    # Plane by plane: one string of all 1.1M code points (and the sets built from it)
    # would grow the test process by ~100 MB for the rest of the session.
    for plane in range(0, sys.maxunicode + 1, 0x10000):
        chars = "".join(map(chr, range(plane, plane + 0x10000)))
        assert _unsafe(terminal_text(chars)) == []
        assert _unsafe(visible_text(chars), allowed="\t\n") == []
        # Nothing else is touched: every other character survives as itself, except
        # unassigned code points inside the invisible-operator and tag blocks.
        safe = "".join(c for c in chars if not _unsafe(c))
        lost = set(safe) - set(terminal_text(safe))
        assert all(_unassigned_in_an_escaped_block(c) for c in lost)


def _unassigned_in_an_escaped_block(c: str) -> bool:
    """Unassigned code points of the invisible-operator and tag blocks: escaped on purpose.

    A later Unicode may assign them as more invisible format characters, so the
    whole block is escaped, not only what this Python's Unicode data calls Cf.
    """
    return unicodedata.category(c) == "Cn" and (0x2060 <= ord(c) <= 0x206F
                                                or 0xE0000 <= ord(c) <= 0xE007F)


@fuzz
@given(ANY_TEXT)
def test_terminal_text(text: str) -> None:
    shown = terminal_text(text)
    assert _unsafe(shown) == []
    shown.encode("utf-8")  # printable on a UTF-8 terminal (no lone surrogates)
    # Everything else is shown as itself (the 100k-case run found U+E0000, an unassigned
    # tag code point, which the invariant had wrongly required to survive).
    if not _unsafe(text) and not any(map(_unassigned_in_an_escaped_block, text)):
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


JSON_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)  # JSON has no Cs
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(JSON_TEXT, inner, max_size=4),
    max_leaves=12)
TRIAGE_KEYS = ["priority", "score", "summary", "kinds", "command_line", "workload", "user",
               "parent_chain", "indicators", "related", "credentials", "next_steps",
               "score_factors", "likely_benign", "benign_reason", "exfil_indicators"]


def _render_file(data: bytes) -> str:
    """What `credwatch report --input FILE` does with the file's bytes."""
    try:
        return render_report(filter_alerts(read_alerts_ndjson(io.BytesIO(data), "f")))
    except CredwatchError:
        return ""


@fuzz
@given(st.dictionaries(st.sampled_from(TRIAGE_KEYS), JSON), JSON)
def test_html_report_from_an_alerts_file_of_any_shape(triage: dict[str, Any],
                                                      other: Any) -> None:
    doc = {"credwatch.triage.version": 1, "credwatch.explanation": other,
           "kibana.alert.uuid": other, "host.name": other,
           **{f"credwatch.triage.{k}": v for k, v in triage.items()}}
    page = _render_file(orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    assert _unsafe(page, allowed="\t\n") == []


def test_corpus_replays() -> None:
    for data in corpus("outputs"):
        text = data.decode("utf-8", "surrogateescape")
        assert _unsafe(terminal_text(text)) == []
        assert not any(map(_unassigned_in_an_escaped_block, terminal_text(text)))
        render_report([_alert(text, [text], text)])
        _render_file(data)
