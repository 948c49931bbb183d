"""The NDJSON output sink: orjson's bytes to the stream's buffer, in order, each line whole."""

from __future__ import annotations

import io
import os

import orjson

from credwatch.sinks.output.ndjson import NdjsonSink

ALERT = {"kibana.alert.uuid": "a" * 64, "process.args": ["cat", "/root/.aws/credentials", "é\u202e"]}


def test_text_written_before_comes_first_and_bytes_are_exact() -> None:
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8", write_through=False)
    text.write("header\n")
    sink = NdjsonSink(text)
    sink.write(ALERT)
    sink.write({**ALERT, "n": 2})
    sink.close()
    lines = raw.getvalue().split(b"\n")
    assert lines[0] == b"header"
    assert [orjson.loads(x) for x in lines[1:3]] == [ALERT, {**ALERT, "n": 2}]
    assert lines[3:] == [b""]
    assert sink.count == 2


def test_a_line_buffered_stream_gets_every_line_at_once() -> None:
    read_fd, write_fd = os.pipe()
    try:
        with open(write_fd, "w", encoding="utf-8", buffering=1, closefd=True) as out:
            sink = NdjsonSink(out)
            sink.write(ALERT)
            # Nothing flushed by hand: the line is in the pipe already, as on a terminal.
            os.set_blocking(read_fd, False)
            assert orjson.loads(os.read(read_fd, 1 << 16)) == ALERT
    finally:
        os.close(read_fd)


def test_a_stream_without_a_buffer_gets_text() -> None:
    out = io.StringIO()
    sink = NdjsonSink(out)
    sink.write(ALERT)
    sink.flush()
    assert orjson.loads(out.getvalue()) == ALERT
    assert out.getvalue().endswith("}\n")
