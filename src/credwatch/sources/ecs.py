"""Legacy import path: the names other modules still import from ``credwatch.sources.ecs``.

This module holds no code. The dispatcher is :mod:`credwatch.sources.read`, the
NDJSON line reader :mod:`credwatch.sources.ndjson`; the other names live where
they are defined (``inputs``, ``documents``, ``detect``, ``diagnostics``,
``record``). New code imports from those modules; this re-export goes once its
importers (engine.window, engine.eventtime, engine.audit_window, engine.lake,
engine.convert, cli.commands.*, and tests) have moved.
"""

from __future__ import annotations

from credwatch.sources.detect import detect as sniff
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import (
    check_types,
    documents_to_records,
    line_records,
    line_records_checked,
)
from credwatch.sources.inputs import MAX_LINE_BYTES, iter_lines
from credwatch.sources.read import (
    INPUT_FORMATS,
    expand_paths,
    open_binary,
    read_inputs,
    read_prepared,
    read_records,
)
from credwatch.sources.record import Record

__all__ = [
    "INPUT_FORMATS",
    "MAX_LINE_BYTES",
    "Diagnostics",
    "Record",
    "check_types",
    "documents_to_records",
    "expand_paths",
    "iter_lines",
    "line_records",
    "line_records_checked",
    "open_binary",
    "read_inputs",
    "read_prepared",
    "read_records",
    "sniff",
]
