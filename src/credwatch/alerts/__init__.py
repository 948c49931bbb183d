"""Alerts in Elastic's schema: the document builder, reason string, ids and sinks."""

# The names are imported on first use (PEP 562): importing one submodule of the
# package must not import the others (start-up of the command line).
from __future__ import annotations

from typing import TYPE_CHECKING

from credwatch.lazyexports import lazy_getattr

if TYPE_CHECKING:
    from credwatch.alerts.build import EventOrigin, build_alert
    from credwatch.alerts.ids import EventIdentity, event_identity, kibana_alert_id
    from credwatch.alerts.reason import build_reason

_EXPORTS = {
    "EventOrigin": "credwatch.alerts.build",
    "build_alert": "credwatch.alerts.build",
    "EventIdentity": "credwatch.alerts.ids",
    "event_identity": "credwatch.alerts.ids",
    "kibana_alert_id": "credwatch.alerts.ids",
    "build_reason": "credwatch.alerts.reason",
}

__all__ = [
    "EventIdentity",
    "EventOrigin",
    "build_alert",
    "build_reason",
    "event_identity",
    "kibana_alert_id",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
