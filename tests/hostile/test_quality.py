"""Hostile inputs to `credwatch quality`: labels files that are not what they claim to be."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli.helpers import run_cli

LOG = str(Path(__file__).resolve().parents[1] / "fixtures" / "quality" / "host_execs.log")


def _fails_cleanly(labels: str) -> str:
    res = run_cli("quality", LOG, "--labels", labels)
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err and res.out == ""
    return res.err


def test_fifo_labels_do_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "labels.fifo"
    os.mkfifo(fifo)
    assert "regular file" in _fails_cleanly(str(fifo))


def test_directory_missing_and_empty_labels(tmp_path: Path) -> None:
    assert "regular file" in _fails_cleanly(str(tmp_path))
    assert "cannot read labels" in _fails_cleanly(str(tmp_path / "missing.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n# only a comment\n")
    assert "no labels" in _fails_cleanly(str(tmp_path / "empty.jsonl"))


def test_endless_line_is_not_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as fh:
        fh.write(b"x" * (64 << 20))  # 64 MB without a newline
    assert "line longer than" in _fails_cleanly(str(big))


def test_binary_and_escape_sequences(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"selector": "id:\\u001b[31mred", "expected": "yes"}\n\xff\xfe\x00')
    err = _fails_cleanly(str(bad))
    assert "\x1b" not in err and "expected must be true or false" in err


def test_bad_bar_values_are_usage_errors() -> None:
    for value in ("nan", "1.5", "-0.1", "inf", "x"):
        res = run_cli("quality", LOG, "--labels", LOG, "--min-recall", value)
        assert res.code == 2 and "Traceback" not in res.err
