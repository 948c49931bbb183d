"""Delivery of alerts to people and systems: webhook, Slack, syslog and Elasticsearch ``_bulk``.

Alerts bound for a sink are queued in the store's outbox in the transaction
that stores them (:meth:`credwatch.alerts.store.AlertStore.insert`);
:class:`~credwatch.sinks.deliver.Deliverer` sends them with retries, backoff
and a rate limit, and marks each one delivered or parked. Sinks are declared
in a TOML file (:mod:`credwatch.sinks.config`); notifications are redacted
(:mod:`credwatch.sinks.redact`) and grouped (:mod:`credwatch.sinks.throttle`).
"""
