"""Triage per the rule's investigation guide: credential kinds, context, correlation, report.

Public entry points: :class:`~credwatch.triage.enrich.Triage` (scan/watch wiring),
:func:`~credwatch.triage.enrich.enrich_alert` (one alert, no correlation) and
:func:`~credwatch.triage.report.render_report` (static HTML).
"""

# The names are imported on first use (PEP 562): importing one submodule of the
# package must not import the others (start-up of the command line).
from __future__ import annotations

from typing import TYPE_CHECKING

from credwatch.lazyexports import lazy_getattr

if TYPE_CHECKING:
    from credwatch.triage.enrich import Triage, enrich_alert, score_alert

_EXPORTS = {
    "Triage": "credwatch.triage.enrich",
    "enrich_alert": "credwatch.triage.enrich",
    "score_alert": "credwatch.triage.enrich",
}

__all__ = [
    "Triage",
    "enrich_alert",
    "score_alert",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
