"""Fixtures of the live tests: the private real auditd of the audit follower's live test."""

from tests.sources.test_auditd_live import live_auditd  # noqa: F401 -- re-exported fixture
