"""Cross-check: our decoded EXECVE arguments equal libauparse's on every raw fixture.

Debian's ``python3-audit`` binds the system python only, so auparse runs in a
``/usr/bin/python3`` subprocess. Skipped where it is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import credwatch
from credwatch.normalize.audit_values import assemble_execve
from tests.sources._auditd import ENRICHED, RAW_NODE, SAMPLE, events_of, lines_of

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin") or ""
EXAMPLE = Path(credwatch.__file__).parent / "examples" / "auditd" / "audit.log"

AUPARSE_SCRIPT = r'''
import json, sys
import auparse
au = auparse.AuParser(auparse.AUSOURCE_FILE, sys.argv[1])
au.set_escape_mode(auparse.AUPARSE_ESC_RAW)
out = []
while au.parse_next_event():
    ts = au.get_timestamp()
    records = []
    au.first_record()
    while True:
        if au.get_type_name() == "EXECVE":
            fields = []
            au.first_field()
            while True:
                name = au.get_field_name()
                try:
                    val = au.interpret_field()
                    raw = None
                except UnicodeDecodeError:
                    # The binding cannot return invalid UTF-8: hand over the raw hex.
                    val, raw = None, au.get_field_str()
                fields.append([name, val, raw])
                if not au.next_field():
                    break
            records.append(fields)
        if not au.next_record():
            break
    if records:
        out.append({"serial": ts.serial, "host": ts.host, "records": records})
json.dump(out, sys.stdout)
'''


def _auparse_available() -> bool:
    if not SYSTEM_PYTHON:
        return False
    proc = subprocess.run([SYSTEM_PYTHON, "-c", "import auparse"], capture_output=True, check=False)
    return proc.returncode == 0


pytestmark = pytest.mark.skipif(
    not _auparse_available(),
    reason="Debian's python3-audit (auparse) is not importable by /usr/bin/python3 "
    "(apt-get install python3-audit)")


def _auparse_args(path: Path, tmp_path: Path) -> dict[tuple[str | None, int], list[str]]:
    script = tmp_path / "aup.py"
    script.write_text(AUPARSE_SCRIPT)
    proc = subprocess.run([SYSTEM_PYTHON, str(script), str(path)], capture_output=True,
                          check=True, timeout=120)
    out: dict[tuple[str | None, int], list[str]] = {}
    for ev in json.loads(proc.stdout):
        whole: dict[int, str] = {}
        chunks: dict[int, dict[int, str]] = {}
        for rec in ev["records"]:
            for name, val, raw in rec:
                if val is None:
                    val = bytes.fromhex(raw).decode("utf-8", errors="replace")
                if not name.startswith("a") or name.endswith("_len"):
                    continue
                if "[" in name:
                    idx, part = name[1:-1].split("[")
                    chunks.setdefault(int(idx), {})[int(part)] = val
                elif name[1:].isdigit():
                    whole[int(name[1:])] = val
        for idx, parts in chunks.items():
            whole[idx] = "".join(parts[k] for k in sorted(parts))
        host = ev["host"] if ev["host"] not in (None, "(null)") else None
        out[(host, ev["serial"])] = [whole[i] for i in sorted(whole)]
    return out


@pytest.mark.parametrize("path", [ENRICHED, RAW_NODE, SAMPLE, EXAMPLE], ids=lambda p: p.name)
def test_decoded_arguments_equal_auparse(path: Path, tmp_path: Path) -> None:
    theirs = _auparse_args(path, tmp_path)
    ours: dict[tuple[str | None, int], list[str]] = {}
    for ev in events_of(lines_of(path)):
        args = assemble_execve([r.fields for r in ev.of_type("EXECVE")])
        if args is not None:
            ours[(ev.node, ev.serial)] = args.args
    assert theirs
    assert ours.keys() == theirs.keys()
    for key, decoded in ours.items():
        assert decoded == theirs[key], key
