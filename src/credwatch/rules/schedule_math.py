"""Durations (``5m``) and date math (``now-9m``) as Kibana rules use them.

A thin front for :mod:`credwatch.timemath`, which holds the one implementation
of date math for every layer. ``interval`` is a duration: a positive integer
and a unit ``s m h d``. ``from``/``to`` are date math anchored at ``now``
(``now``, ``now-9m``, ``now-1d-2h``, ``now-1d/d``) with units
``ms s m h H d w M y``. Scheduling (windows, look-back, gaps) is built on these.
"""

from __future__ import annotations

from credwatch.timemath import (
    DateMath,
    DateMathError,
    format_duration,
    lookback,
    parse_duration,
    window,
)
from credwatch.timemath import parse_rule_date_math as parse_date_math

__all__ = ["DateMath", "DateMathError", "format_duration", "lookback", "parse_date_math",
           "parse_duration", "window"]
