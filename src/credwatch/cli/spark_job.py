"""The ``spark-submit`` job: ``credwatch scan --engine spark`` run as a Spark application.

Usage (the master, deploy mode and resources come from spark-submit)::

    spark-submit --master spark://host:7077 \\
        "$(python -c 'import credwatch.cli.spark_job as j; print(j.__file__)')" \\
        s3a://bucket/lake/ --output alerts.ndjson --no-store

Every argument after the job file is a ``credwatch scan`` argument. The filter is
pure Spark SQL, so executors need no Python package: only the driver (where
alerts are built) needs credwatch installed (client mode; in cluster mode, ship
it with ``--py-files`` or a virtualenv archive). Exit status is ``scan``'s.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from credwatch.cli.main import program


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``credwatch scan --engine spark`` with ``argv`` (default: the command line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    return program(["scan", "--engine", "spark", *args])


if __name__ == "__main__":
    sys.exit(run())
