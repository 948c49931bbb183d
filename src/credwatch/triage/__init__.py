"""Triage per the rule's investigation guide: credential kinds, context, correlation, report.

Public entry points: :class:`~credwatch.triage.enrich.Triage` (scan/watch wiring),
:func:`~credwatch.triage.enrich.enrich_alert` (one alert, no correlation) and
:func:`~credwatch.triage.report.render_report` (static HTML).
"""

from credwatch.triage.enrich import Triage, enrich_alert, score_alert

__all__ = ["Triage", "enrich_alert", "score_alert"]
