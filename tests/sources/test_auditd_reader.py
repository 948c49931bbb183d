"""The raw audit.log reader on real captures: decoding, reassembly, formats, bad input."""

from __future__ import annotations

import gzip
import io
import itertools
import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from credwatch.normalize.audit_values import assemble_execve
from credwatch.sources.auditd import (
    Diagnostics,
    Reassembler,
    iter_audit_files,
    looks_like_audit,
    parse_line,
    rotated_files,
    sniff_path,
)
from tests.sources._auditd import (
    ALL_LOGS,
    ECHO_MANY,
    ENRICHED,
    HEX_ARGS,
    INTERPRETED,
    LONG_ALPHA,
    LONG_WORDS,
    RAW_NODE,
    SAMPLE,
    TAIL_MANY,
    by_args,
    ecs_of,
    events_of,
    lines_of,
)

_STAMP = re.compile(rb"audit\(([^)]*)\)")


def _args_by_serial(lines: list[bytes], **kw: object) -> dict[int, list[str]]:
    out = {}
    for ev in events_of(lines, **kw):  # type: ignore[arg-type]
        ex = assemble_execve([r.fields for r in ev.of_type("EXECVE")],
                             interpreted=ev.interpreted)
        if ex is not None:
            out[ev.serial] = ex.args
    return out


@pytest.mark.parametrize("path", ALL_LOGS, ids=lambda p: p.name)
def test_every_capture_decodes_completely(path: Path) -> None:
    diag = Diagnostics()
    events = events_of(lines_of(path), path=str(path), diagnostics=diag)
    assert events
    assert diag.skipped_total == 0, diag.samples
    assert diag.records == sum(len(e.records) for e in events)
    stamps = {m.group(1) for m in _STAMP.finditer(path.read_bytes())}
    assert len(events) == len(stamps)  # one event per distinct audit(...) stamp
    for ev in events:
        execve = ev.of_type("EXECVE")
        if not execve:
            continue
        args = assemble_execve([r.fields for r in execve], interpreted=ev.interpreted)
        assert args is not None and args.argc is not None
        assert args.missing == [] and args.incomplete == []
        assert len(args.args) == args.argc == args.count
        # Every record's JSON-serialisable: no stray bytes or surrogates.
        orjson.dumps(args.args)


def test_hex_encoded_arguments_spaces_quotes_non_ascii_and_invalid_utf8() -> None:
    docs = by_args(ecs_of(lines_of(ENRICHED)))
    assert tuple(HEX_ARGS) in docs
    raw = next(ln for ln in lines_of(ENRICHED) if b"a1=68656C6C6F20776F726C64" in ln)
    assert b'a1="' not in raw  # the kernel really hex-encoded it


def test_argument_over_8kb_is_split_and_rejoined() -> None:
    lines = lines_of(ENRICHED)
    assert any(b"a2[1]=" in ln for ln in lines)  # really split in the capture
    docs = by_args(ecs_of(lines))
    assert ("grep", "-c", LONG_ALPHA, "/root/.aws/credentials") in docs
    assert ("/bin/echo", LONG_WORDS, "/root/.aws/credentials") in docs


def test_thousands_of_arguments_continue_across_records() -> None:
    lines = lines_of(ENRICHED)
    continuation = [ln for ln in lines if b"type=EXECVE" in ln and b"argc=" not in ln]
    assert len(continuation) > 10
    docs = by_args(ecs_of(lines))
    tail = docs[tuple(TAIL_MANY)]
    echo = docs[tuple(ECHO_MANY)]
    assert tail[0]["process"]["args_count"] == len(TAIL_MANY)
    assert echo[0]["process"]["args_count"] == len(ECHO_MANY)


def test_concurrent_execs_interleave_and_are_separated() -> None:
    lines = lines_of(ENRICHED)
    order = [_STAMP.search(ln).group(1) for ln in lines]  # type: ignore[union-attr]
    seen: set[bytes] = set()
    reappear = 0
    for prev, cur in itertools.pairwise(order):
        if cur != prev and cur in seen:
            reappear += 1
        seen.add(prev)
    assert reappear >= 5  # the capture really interleaves
    docs = by_args(ecs_of(lines))
    for n in range(1, 25):
        echo = ("/bin/echo", f"concurrent-{n}", *[str(i) for i in range(1, 801)])
        cat = ("cat", "/root/.aws/credentials", f"/nonexistent/concurrent-{n}")
        assert len(docs[echo]) == 1, n
        assert len(docs[cat]) == 1, n


def test_out_of_order_records_within_the_window_change_nothing() -> None:
    lines = lines_of(ENRICHED)
    expected = _args_by_serial(lines)
    rng = random.Random(5)
    shuffled: list[bytes] = []
    for i in range(0, len(lines), 40):  # shuffle inside windows of 40 records
        block = lines[i:i + 40]
        rng.shuffle(block)
        shuffled.extend(block)
    got = _args_by_serial(shuffled, quiet_records=200)
    assert got.keys() == expected.keys()
    # Within one event, EXECVE records may now be out of order: aN indices still sort.
    assert got == expected


def test_quiet_window_bounds_the_buffer_without_losing_records() -> None:
    lines = lines_of(ENRICHED)
    diag = Diagnostics()
    reasm = Reassembler(quiet_records=3, max_pending=2, diagnostics=diag)
    emitted = []
    peak = 0
    for i, line in enumerate(lines, 1):
        rec = parse_line(line, lineno=i)
        assert not isinstance(rec, str)
        emitted.extend(reasm.feed(rec))
        peak = max(peak, reasm.pending)
    emitted.extend(reasm.flush())
    assert peak <= 2
    assert diag.warnings["forced-close"] > 0
    late = diag.skipped["late-record"]
    assert late > 0  # a tiny window splits interleaved events: reported, never silent
    assert sum(len(e.records) for e in emitted) + late == len(lines)


def test_default_window_separates_all_interleaved_events() -> None:
    diag = Diagnostics()
    events_of(lines_of(ENRICHED), diagnostics=diag)
    assert diag.skipped_total == 0 and not diag.warnings


def test_enriched_without_separator_and_raw_give_identical_ecs() -> None:
    lines = lines_of(ENRICHED)
    assert all(b"\x1d" in ln for ln in lines if b"type=SYSCALL" in ln)
    glued = [ln.replace(b"\x1d", b" ") for ln in lines]
    raw = [ln.split(b"\x1d")[0] + b"\n" for ln in lines]
    reference = ecs_of(lines)
    assert ecs_of(glued) == reference
    names = {("user", "0"): "root", ("group", "0"): "root"}
    assert ecs_of(raw, resolver=lambda kind, ident: names.get((kind, ident))) == [
        {**d, "file": {k: v for k, v in d["file"].items() if k not in ("owner", "group")}}
        for d in reference
    ]


def test_raw_capture_with_node_prefix_maps_like_enriched_capture() -> None:
    raw_docs = by_args(ecs_of(lines_of(RAW_NODE)))
    enr_docs = by_args(ecs_of(lines_of(ENRICHED)))
    for args in [("cat", "/root/.aws/credentials"), tuple(HEX_ARGS),
                 ("grep", "-c", LONG_ALPHA, "/root/.aws/credentials"), tuple(TAIL_MANY)]:
        r, e = raw_docs[args][0], enr_docs[args][0]
        assert r["host"]["name"] == "vm" and "name" not in e["host"]
        for key in ("name", "executable", "args", "args_count", "title", "working_directory"):
            assert r["process"][key] == e["process"][key]
        assert "name" not in r.get("user", {})  # RAW carries no names


def test_gzip_and_rotated_files_are_read_in_order_across_an_event_split() -> None:
    lines = lines_of(ENRICHED)
    stamps = [_STAMP.search(ln).group(1) for ln in lines]  # type: ignore[union-attr]
    # Cut inside events, so that one event straddles each file boundary.
    cut1 = next(i for i in range(300, len(lines)) if stamps[i - 1] == stamps[i])
    cut2 = next(i for i in range(600, len(lines)) if stamps[i - 1] == stamps[i])
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "audit.log"
        with gzip.open(str(base) + ".2.gz", "wb") as gz:
            gz.write(b"".join(lines[:cut1]))
        Path(str(base) + ".1").write_bytes(b"".join(lines[cut1:cut2]))
        base.write_bytes(b"".join(lines[cut2:]))
        files = rotated_files(base)
        assert [p.name for p in files] == ["audit.log.2.gz", "audit.log.1", "audit.log"]
        assert sniff_path(files[0])
        diag = Diagnostics()
        events = list(iter_audit_files(files, diagnostics=diag))
    assert diag.skipped_total == 0
    from credwatch.normalize.auditd import iter_ecs
    assert list(iter_ecs(events)) == ecs_of(lines)


def test_ausearch_interpreted_lines_decode_like_the_raw_log() -> None:
    interp = events_of(lines_of(INTERPRETED))
    assert interp and all(e.interpreted for e in interp)
    raw = {e.serial: e for e in events_of(lines_of(SAMPLE)) + events_of(lines_of(ENRICHED))}
    checked = 0
    for ev in interp:
        args = assemble_execve([r.fields for r in ev.of_type("EXECVE")], interpreted=True)
        if args is None:
            continue
        twin = raw[ev.serial]
        truth = assemble_execve([r.fields for r in twin.of_type("EXECVE")])
        assert truth is not None
        assert ev.time == twin.time  # local ausearch time (UTC here) = epoch stamp
        if ev.serial == 36:
            # ausearch prints a control character as an octal escape and cannot show
            # invalid UTF-8: only the printable arguments survive interpretation.
            assert args.args[:4] == truth.args[:4]
            assert args.args[4] == "tab\\011here"
        else:
            assert args.args == truth.args, ev.serial
        checked += 1
    assert checked >= 10


def test_looks_like_audit() -> None:
    for path in ALL_LOGS:
        assert looks_like_audit(path.read_bytes()[:4096]), path
    assert not looks_like_audit(b'{"@timestamp": "2026-01-01T00:00:00Z", "process": {}}\n')
    assert not looks_like_audit(b"hello\nworld\n")
    assert not looks_like_audit(b"")
    assert looks_like_audit(b"audit: type=1300 audit(1796124794.651:11): arch=c000003e\n")


def test_bad_input_loses_nothing_valid(tmp_path: Path) -> None:
    lines = lines_of(SAMPLE)
    reference = ecs_of(lines)
    victim = next(i for i, ln in enumerate(lines) if b'a1="/root/.aws/config"' in ln)
    stamp = _STAMP.search(lines[victim]).group(1)  # type: ignore[union-attr]
    cut = lines[victim][: lines[victim].index(b'a1="/root/.aws/co') + 12] + b"\n"
    bad = [
        b"\x00\x00garbage \xff\xfe not an audit line\n",
        *lines[:victim],
        cut,  # truncated record: ends inside a quoted value
        *lines[victim + 1:40],
        b"type=SYSCALL msg=audit(notatime:xx): arch=c000003e\n",  # bad header
        b"type=UNKNOWN[1999] msg=audit(" + stamp + b"): weird=1\n",  # unknown type, same event
        b"type=FROBNICATE msg=audit(1796124835.999:99999): x=1\n",  # unknown type, own event
        *lines[40:],
        b"\n",
        b"type=EXECVE msg=audit(1796124836.000:100000): argc=2 a0=\"cat\" a1=\"/root/.aw",  # half line
    ]
    diag = Diagnostics()
    docs = ecs_of_with(bad, diag)
    assert diag.skipped["garbage"] == 1 and diag.skipped["bad-header"] == 1
    assert diag.warnings["truncated-record"] == 2 and diag.warnings["no-final-newline"] == 1
    assert all(re.match(r"bad\.log:\d+: ", s) for s in diag.samples)
    assert "bad.log:1:" in str(diag.samples[0])
    ref = {d["auditd"]["sequence"]: d for d in reference}
    got = {d["auditd"]["sequence"]: d for d in docs}
    assert set(ref) <= set(got)
    for seq, d in ref.items():
        if d["process"]["args"] == ["cat", "/root/.aws/config"]:
            assert got[seq]["process"]["args"][0] == "cat"  # truncated value, event kept
            assert got[seq]["process"]["args_count"] == 2
            continue
        assert got[seq]["process"] == d["process"]
    assert got[100000]["process"]["args"][0] == "cat"  # the half line still parsed


def ecs_of_with(lines: list[bytes], diag: Diagnostics) -> list[dict[str, Any]]:
    from credwatch.normalize.auditd import iter_ecs
    return list(iter_ecs(events_of(lines, path="bad.log", diagnostics=diag)))


def test_strict_stops_the_audit_reader_at_the_first_bad_line(tmp_path: Path) -> None:
    # One Diagnostics for every reader: the reassembler's skip is the main one, so under
    # strict the first bad line is fatal where it is met, located, and nothing after it
    # is read (the audit reader used to read to the end and raise afterwards).
    from credwatch.errors import SourceError
    from credwatch.sources.audit_records import audit_records
    from credwatch.sources.diagnostics import Diagnostics as ScanDiagnostics

    lines = RAW_NODE.read_bytes().splitlines(keepends=True)
    full = list(audit_records(io.BytesIO(b"".join(lines)), "a.log", ScanDiagnostics()))
    assert len(full) > 2
    first_end = full[0].line
    bad = [*lines[:first_end + 3], b"garbage: not an audit record\n", *lines[first_end + 3:]]
    diag = ScanDiagnostics(strict=True)
    got = []
    with pytest.raises(SourceError) as err:
        for rec in audit_records(io.BytesIO(b"".join(bad)), "a.log", diag):
            got.append(rec)
    assert (err.value.path, err.value.line) == ("a.log", first_end + 4)
    assert err.value.message.startswith("garbage")
    assert len(got) < len(full)
