"""The ``spark-submit`` job: ``credwatch scan|run --engine spark`` run as a Spark application.

Usage (the master, deploy mode and resources come from spark-submit)::

    spark-submit --master spark://host:7077 \\
        "$(python -c 'import credwatch.cli.spark_job as j; print(j.__file__)')" \\
        s3a://bucket/lake/ --output alerts.ndjson --no-store

Every argument after the job file is a ``credwatch scan`` argument; a first
argument ``run`` runs ``credwatch run --engine spark`` instead (each tick's window
pushed into Spark), and ``scan`` may be given explicitly. The filter is
pure Spark SQL, so executors need no Python package: only the driver (where
alerts are built) needs credwatch installed (client mode; in cluster mode, ship
it with ``--py-files`` or a virtualenv archive). Exit status is ``scan``'s.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from credwatch.cli.main import program

COMMANDS = ("scan", "run")


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``credwatch scan`` (or ``run``) ``--engine spark`` with ``argv`` (default: the command line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and args[0] in COMMANDS else "scan"
    return program([command, "--engine", "spark", *args])


if __name__ == "__main__":
    sys.exit(run())
