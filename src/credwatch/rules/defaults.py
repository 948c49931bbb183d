"""Kibana's defaults for rule fields that a rule file leaves out.

These are the values Kibana's rule-creation API fills in (and that a rule
export then shows), so a rule file without them behaves as it would in Kibana.
"""

from __future__ import annotations

#: How often the rule runs.
DEFAULT_INTERVAL = "5m"
#: Start of each run's search window (date math relative to the run time).
DEFAULT_FROM = "now-6m"
#: End of each run's search window.
DEFAULT_TO = "now"
#: Most alerts one run may create.
DEFAULT_MAX_SIGNALS = 100
#: Query language of a query rule when ``language`` is absent.
DEFAULT_LANGUAGE = "kuery"
#: Rule version when absent.
DEFAULT_VERSION = 1
#: Kibana space credwatch acts as (alert ids and the alerts index name use it).
DEFAULT_SPACE = "default"
#: The index Kibana writes this space's security alerts to.
DEFAULT_ALERTS_INDEX = f".alerts-security.alerts-{DEFAULT_SPACE}"
