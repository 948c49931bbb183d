"""Alerts in Elastic's schema: the document builder, reason string, ids and sinks."""

from credwatch.alerts.build import EventOrigin, build_alert
from credwatch.alerts.ids import EventIdentity, event_identity, kibana_alert_id
from credwatch.alerts.reason import build_reason

__all__ = [
    "EventIdentity",
    "EventOrigin",
    "build_alert",
    "build_reason",
    "event_identity",
    "kibana_alert_id",
]
