"""The report's timeline: alert counts over event time as plain geometry for an inline SVG.

Python computes numbers and labels only; ``report.html`` draws them (Jinja2,
autoescaped). Buckets and ticks use "nice" steps (1 s … 1 h … 1 d … years) so
tick labels fall on round times, and the count axis uses 1/2/5 steps. Times are
integer epoch milliseconds (years 1 to 9999), so nothing here can overflow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from credwatch.timemath import DATETIME_MAX_MS, DATETIME_MIN_MS, format_ms

_S = 1000
_MIN = 60 * _S
_H = 60 * _MIN
_D = 24 * _H
_Y = 365 * _D
#: Bucket and tick widths, smallest first.
NICE_STEPS = (
    10, 20, 50, 100, 200, 500, _S, 2 * _S, 5 * _S, 10 * _S, 15 * _S, 30 * _S,
    _MIN, 2 * _MIN, 5 * _MIN, 10 * _MIN, 15 * _MIN, 30 * _MIN,
    _H, 2 * _H, 3 * _H, 6 * _H, 12 * _H,
    _D, 2 * _D, 7 * _D, 14 * _D, 30 * _D, 91 * _D, 182 * _D,
    _Y, 2 * _Y, 5 * _Y, 10 * _Y, 20 * _Y, 50 * _Y, 100 * _Y, 200 * _Y, 500 * _Y,
    1000 * _Y, 2000 * _Y, 5000 * _Y, 10000 * _Y,
)
MAX_BUCKETS = 60
MAX_TICKS = 8
PRIORITIES = ("P1", "P2", "P3", "P4")

# Drawing area (SVG user units): the template uses the same numbers through ``frame``.
WIDTH, HEIGHT = 960, 230
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 14, 58
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def nice_step(span_ms: int, most: int) -> int:
    """The smallest nice step that cuts ``span_ms`` into at most ``most`` parts."""
    return next((s for s in NICE_STEPS if span_ms / s <= most), NICE_STEPS[-1])


def step_label(ms: int) -> str:
    """A step in words: ``30 s``, ``5 min``, ``2 h``, ``7 d``, ``10 y``."""
    for unit, name in ((_Y, "y"), (_D, "d"), (_H, "h"), (_MIN, "min")):
        if ms >= unit and ms % unit == 0:
            return f"{ms // unit} {name}"
    return f"{ms // _S} s" if ms % _S == 0 else f"{ms} ms"


def _count_ticks(peak: int) -> list[int]:
    """0 and 1, 2, 5 times 10^k steps up to at least ``peak`` (at most 6 ticks)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if peak / (step * m) <= 5:
                top = -(-peak // (step * m)) * step * m
                return list(range(0, top + 1, step * m))
        step *= 10


def _tick_label(ms: int, step: int, prev_date: str) -> tuple[str, str]:
    """(time label, date line or ``""``) for a time tick ``step`` apart from the others."""
    iso = format_ms(ms)  # 2026-12-01T11:33:14.651Z
    date = iso[:10]
    if step >= _Y:
        return iso[:4], ""
    if step >= _D:
        return date, ""
    time = iso[11:23] if step < _S else iso[11:19] if step < _MIN else iso[11:16]
    return time, (date if date != prev_date else "")


def _when(ms: int) -> str:
    """``ms`` (clamped to years 1..9999) as the filter inputs take it: UTC, no zone suffix."""
    iso = format_ms(min(max(ms, DATETIME_MIN_MS), DATETIME_MAX_MS))
    return iso[:19] if iso.endswith(".000Z") else iso[:23]


def _x(ms: int, start: int, span: int) -> float:
    return round(LEFT + PLOT_W * (ms - start) / span, 1)


def _y(n: int, top: int) -> float:
    return round(TOP + PLOT_H * (1 - n / top), 1)


def _bars(counts: list[dict[str, int]], start: int, bucket: int, top: int,
          span: int) -> list[dict[str, Any]]:
    gap = 1.0 if PLOT_W / len(counts) > 4 else 0.0
    bars = []
    for i, by_prio in enumerate(counts):
        total = sum(by_prio.values())
        if not total:
            continue
        lo = start + i * bucket
        x0, x1 = _x(lo, start, span), _x(lo + bucket, start, span)
        segments, below = [], 0
        for prio, n in sorted(by_prio.items(), key=lambda kv: _prio_order(kv[0]), reverse=True):
            if n:
                segments.append({"cls": prio if prio in PRIORITIES else "Px",
                                 "y": _y(below + n, top),
                                 "h": round(_y(below, top) - _y(below + n, top), 1)})
                below += n
        detail = ", ".join(f"{p} {n}" for p, n in sorted(by_prio.items(),
                                                         key=lambda kv: _prio_order(kv[0])) if n)
        bars.append({
            "x": x0, "w": round(max(x1 - x0 - gap, 0.5), 1), "segments": segments,
            "title": f"{_when(lo)} to {_when(lo + bucket)} UTC: "
                     f"{total} alert(s) ({detail})",
            # The filter inputs take UTC times without a zone suffix (datetime-local).
            "href": f"#f/from={_when(lo)}&to={_when(lo + bucket - 1)}",
        })
    return bars


def _prio_order(prio: str) -> int:
    return PRIORITIES.index(prio) if prio in PRIORITIES else len(PRIORITIES)


def timeline_chart(points: Sequence[tuple[int, str]]) -> dict[str, Any] | None:
    """The chart for ``(event time in epoch ms, priority)`` points; None without points.

    Bars are stacked by priority (P1 on top) and link to the alert table
    filtered to their time span.
    """
    if not points:
        return None
    lo = min(t for t, _ in points)
    hi = max(t for t, _ in points)
    bucket = next((s for s in NICE_STEPS if (hi - lo // s * s) // s + 1 <= MAX_BUCKETS),
                  NICE_STEPS[-1])
    start = lo // bucket * bucket
    n = (hi - start) // bucket + 1
    span = n * bucket
    counts: list[dict[str, int]] = [{} for _ in range(n)]
    for t, prio in points:
        by_prio = counts[(t - start) // bucket]
        by_prio[prio] = by_prio.get(prio, 0) + 1
    peak = max(sum(c.values()) for c in counts)
    yticks = _count_ticks(peak)
    top = yticks[-1]
    tick = max(nice_step(span, MAX_TICKS), bucket)
    xticks, prev_date = [], ""
    for ms in range(-(-start // tick) * tick, start + span + 1, tick):
        if not DATETIME_MIN_MS <= ms <= DATETIME_MAX_MS:
            continue  # the axis of a year-1 or year-9999 alert reaches past what a date holds
        label, date = _tick_label(ms, tick, prev_date)
        prev_date = format_ms(ms)[:10]
        xticks.append({"x": _x(ms, start, span), "label": label, "date": date})
    return {
        "frame": {"w": WIDTH, "h": HEIGHT, "left": LEFT, "top": TOP, "right": LEFT + PLOT_W,
                  "bottom": TOP + PLOT_H},
        "bars": _bars(counts, start, bucket, top, span),
        "xticks": xticks,
        "yticks": [{"y": _y(v, top), "label": v} for v in yticks],
        "bucket": step_label(bucket), "total": len(points),
        "start": format_ms(lo), "end": format_ms(hi),
    }
