"""Start-up: the entry point imports only what every command needs (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


#: Modules a one-event ``scan --no-store`` of NDJSON with the built-in rule never needs:
#: the store (SQLite), the exception engine, the lake engines, Parquet, rule files (TOML,
#: the loader), the KQL grammar, and the outputs it does not print.
NOT_IN_A_PLAIN_SCAN = (
    "sqlite3", "credwatch.alerts.store", "credwatch.engine.exceptions", "credwatch.engine.lake",
    "credwatch.engine.lake_plan", "credwatch.engine.convert", "credwatch.rules.loader",
    "credwatch.rules.toml_format", "credwatch.kql.larktree", "credwatch.kql.tables",
    "credwatch.sinks.output.table", "credwatch.sinks.output.bulk", "credwatch.sinks.output.store",
    "credwatch.sinks.output.timeline", "shutil", "decimal",
    # the other input formats' readers: audit parsing, reassembly and ECS mapping, JSON documents
    "credwatch.engine.audit_workers", "credwatch.sources.audit_records", "credwatch.sources.auditd",
    "credwatch.normalize.auditd", "credwatch.sources.jsondoc",
)


def _modules_after_program(argv: list[str], tmp_path: Path) -> tuple[int, str, set[str]]:
    """(exit status, stdout, modules loaded) of ``credwatch ARGV`` run in a new interpreter."""
    probe = (
        "import sys, io\nfrom credwatch.cli.env import Env\nfrom credwatch.cli.main import program\n"
        "out = io.StringIO()\n"
        f"rc = program({argv!r}, Env(stdout=out, stderr=io.StringIO(), environ={{"
        f"'XDG_DATA_HOME': {str(tmp_path / 'data')!r}, 'XDG_CACHE_HOME': {str(tmp_path / 'c')!r}}}))\n"
        "import orjson\n"
        "sys.stdout.buffer.write(orjson.dumps([rc, out.getvalue(), sorted(sys.modules)]))\n")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True).stdout
    rc, out, modules = orjson.loads(res)
    return rc, out, set(modules)


def _loaded(modules: set[str], names: tuple[str, ...]) -> set[str]:
    return {m for m in modules for n in names if m == n or m.startswith(n + ".")}


def test_a_one_event_scan_loads_only_what_it_runs(tmp_path: Path) -> None:
    event = {"@timestamp": "2026-12-01T00:00:00Z", "host": {"os": {"type": "linux"}},
             "event": {"category": ["process"], "action": "exec", "type": ["start"]},
             "process": {"name": "cat", "args": ["cat", "/etc/shadow"], "pid": 7}}
    path = tmp_path / "one.ndjson"
    path.write_bytes(orjson.dumps(event) + b"\n")
    rc, out, modules = _modules_after_program(
        ["scan", "--no-store", "-q", "--format", "ndjson", str(path)], tmp_path)
    assert rc == 0  # the built-in rule alerted: the whole path ran
    assert orjson.loads(out)["kibana.alert.rule.rule_id"] == "5f0fff18-f340-444b-9a98-c49ade766ff4"
    assert not {m.split(".")[0] for m in modules} & set(HEAVY + NOT_AT_ENTRY)
    assert not _loaded(modules, NOT_IN_A_PLAIN_SCAN)


def test_version_imports_no_command(tmp_path: Path) -> None:
    rc, out, modules = _modules_after_program(["--version"], tmp_path)
    assert (rc, out.split()[0]) == (0, "credwatch")
    assert not _loaded(modules, ("credwatch.cli.commands.scan", "credwatch.engine",
                                 "credwatch.sources", "credwatch.rules"))


@pytest.mark.parametrize("command", ["run", "watch"])
def test_run_and_watch_load_sink_delivery_only_with_a_sink(command: str) -> None:
    # httpx (webhooks, Elasticsearch) and the TOML sink config: for --sink only.
    loaded = _all_modules_after(f"from credwatch.cli.main import build_parser\nbuild_parser({command!r})")
    assert not {name.split(".")[0] for name in loaded} & {"httpx", "tomllib", "lark", "duckdb"}
    assert not _loaded(loaded, ("credwatch.sinks.deliver", "credwatch.engine.lake_plan"))


def test_a_scan_without_a_match_builds_no_alert_machinery(tmp_path: Path) -> None:
    event = {"@timestamp": "2026-12-01T00:00:00Z", "event": {"action": "exec"},
             "process": {"name": "ls", "args": ["ls", "/tmp"]}}
    path = tmp_path / "one.ndjson"
    path.write_bytes(orjson.dumps(event) + b"\n")
    rc, out, modules = _modules_after_program(["scan", "--no-store", "-q", str(path)], tmp_path)
    assert rc == 1 and out == ""  # evaluated, nothing matched
    # The alert builder and the triage (~10 ms of imports) load at the first match only.
    assert not _loaded(modules, ("credwatch.alerts.build", "credwatch.triage.enrich",
                                 "credwatch.triage.memo"))
