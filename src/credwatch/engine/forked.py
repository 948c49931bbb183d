"""Forked worker processes for the engine's parallel reading, results in job order.

:func:`forked_results` runs a function over jobs (byte ranges of one file, cut
at line starts by :func:`split_ranges`) in forked processes, each sending its
results back through a pipe of its own. The NDJSON ranges
(:mod:`credwatch.engine.workers`) and the audit ranges
(:mod:`credwatch.engine.audit_workers`) both run here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import signal
import sys
from collections.abc import Callable, Generator, Sequence
from typing import IO, Any, NoReturn, TypeVar

__all__ = ["forked_results", "split_ranges", "worker_count"]


def split_ranges(path: str, size: int, unit: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``unit`` bytes covering ``path``, each starting at a line start."""
    starts = [0]
    with open(path, "rb") as fh:
        pos = unit
        while pos < size:
            fh.seek(pos)
            fh.readline()
            nxt = fh.tell()
            if nxt >= size:
                break
            if nxt > starts[-1]:
                starts.append(nxt)
            pos = nxt + unit
    return [(lo, hi) for lo, hi in zip(starts, [*starts[1:], size], strict=True)]


def worker_count(wanted: int | None, path: str | None, size: int | None, unit: int) -> int:
    """Processes to read a file with: ``wanted`` (default one per CPU), at most one per range, 1 off Linux."""
    if path is None or size is None or not sys.platform.startswith("linux"):
        return 1
    wanted = wanted if wanted is not None else (os.cpu_count() or 1)
    return max(1, min(wanted, -(-size // unit)))


def _quiet_worker() -> None:
    # Ctrl-C reaches the whole process group: the reader stops the workers, and they
    # must not print a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


def forked_results(func: Callable[[_Job], _Result], jobs: Sequence[_Job], workers: int
                   ) -> Generator[_Result, None, None]:
    """``func`` over ``jobs`` in ``workers`` forked processes, results in job order.

    Job ``i`` runs in worker ``i % workers`` (the jobs are byte ranges of one size),
    which sends its results in order through a pipe of its own. Unlike a
    :class:`multiprocessing.pool.Pool`, the parent runs no helper threads: those
    contend with it for the GIL while it builds alerts, and a job waits for one of
    them to be dispatched. A worker runs ahead of a slow consumer only as far as its
    pipe holds, so memory stays flat whatever the file size. A worker's exception (a
    read error: :class:`OSError`) is raised here, in the parent.
    """
    procs: list[tuple[int, IO[bytes]]] = []
    done = False
    with contextlib.ExitStack() as pipes:
        try:
            for index in range(workers):
                read_fd, write_fd = os.pipe()
                pid = os.fork()
                if pid == 0:  # the worker: never returns
                    os.close(read_fd)
                    _forked_worker(func, jobs[index::workers], write_fd, [fh.fileno() for _p, fh in procs])
                os.close(write_fd)
                procs.append((pid, pipes.enter_context(open(read_fd, "rb"))))
            for index in range(len(jobs)):
                yield _receive(procs[index % workers][1])
            done = True
        finally:
            for pid, _fh in procs:
                if not done:
                    os.kill(pid, signal.SIGKILL)  # stopped early: the rest is not wanted
                os.waitpid(pid, 0)


def _forked_worker(func: Callable[[_Job], object], jobs: Sequence[_Job], write_fd: int,
                   inherited: list[int]) -> NoReturn:
    """Run ``jobs`` and send each result (or exception) to the parent; then exit."""
    status = 1
    try:
        _quiet_worker()
        for fd in inherited:  # the other workers' pipes: only the parent reads them
            os.close(fd)
        with open(write_fd, "wb") as out:
            for job in jobs:
                try:
                    message: tuple[bool, object] = (True, func(job))
                except Exception as exc:  # re-raised in the parent
                    message = (False, exc)
                data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
                out.write(len(data).to_bytes(8, "little"))
                out.write(data)
                out.flush()
        status = 0
    finally:
        os._exit(status)  # no atexit handlers, no flushing of the parent's buffers


def _receive(fh: IO[bytes]) -> Any:
    """The next result a worker sent (its exception raised)."""
    head = fh.read(8)
    data = fh.read(int.from_bytes(head, "little")) if len(head) == 8 else b""
    if not data:
        raise OSError(errno.EIO, "a worker process ended before sending its result")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value
