"""Start-up: the entry point imports only what every command needs (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

#: Heavy libraries that only some commands, options or outputs use.
HEAVY = ("duckdb", "httpx", "jinja2", "pyarrow", "pyspark", "markdown_it")
#: Libraries the entry point itself never needs: terminal tables, the KQL parser, TOML rules.
NOT_AT_ENTRY = ("rich", "lark", "tomllib", "traceback")


def _all_modules_after(code: str) -> set[str]:
    """Every name in ``sys.modules`` after running ``code`` in a new interpreter."""
    probe = f"{code}\nimport sys, orjson\nsys.stdout.buffer.write(orjson.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True).stdout
    return set(orjson.loads(out))


def _modules_after(code: str) -> set[str]:
    """Top-level package names in ``sys.modules`` after running ``code`` in a new interpreter."""
    return {name.split(".")[0] for name in _all_modules_after(code)}


def test_importing_the_entry_point_loads_no_heavy_library() -> None:
    loaded = _modules_after("import credwatch.cli.main")
    assert not loaded & set(HEAVY + NOT_AT_ENTRY)


@pytest.mark.parametrize("module", ["credwatch.alerts.display", "credwatch.kql.ast",
                                    "credwatch.rules.model"])
def test_a_submodule_does_not_import_its_whole_package(module: str) -> None:
    assert not _modules_after(f"import {module}") & {"lark", "tomllib", "rich"}


@pytest.mark.parametrize("package", ["credwatch.alerts", "credwatch.kql", "credwatch.rules",
                                     "credwatch.triage"])
def test_package_names_are_still_importable(package: str) -> None:
    code = (f"import {package}\nfor name in {package}.__all__:\n"
            f"    assert getattr({package}, name) is not None, name")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_scan_command_loads_no_heavy_library() -> None:
    loaded = _all_modules_after("from credwatch.cli.main import build_parser\nbuild_parser('scan')")
    assert not {name.split(".")[0] for name in loaded} & set(HEAVY)
    # rich's console (tables, progress bars) is loaded by the outputs that draw them.
    assert not loaded & {"rich.console", "rich.table", "rich.progress"}
