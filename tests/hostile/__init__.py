"""Hostile inputs: one module per area, a case per class of issue #12 (reliability and security)."""
