"""Files credwatch writes: private (0600), never through a symbolic link, never over an input.

Alerts hold full command lines, and command lines often hold secrets (tokens,
passwords passed as arguments). Everything credwatch writes that holds alerts
(the store, ``--output``, ``--bulk``, the HTML report) is therefore created
mode 0600 whatever the umask, in folders created 0700.

credwatch often runs as root and its output paths may sit in folders other
users can write to, so an output is opened with ``O_NOFOLLOW``: a symbolic
link planted at the output path is refused instead of redirecting the write
(and the truncation) to whatever it points at. An output that is also one of
the command's inputs is refused before anything is opened, so a typo such as
``scan events.ndjson -o events.ndjson`` cannot destroy the evidence.

This module imports nothing from credwatch but its errors, so the store, the
sinks and the report share it without import cycles.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from credwatch.errors import ConfigError

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_MODE",
    "create_private_file",
    "make_private_dirs",
    "open_private",
    "open_private_text",
    "refuse_inputs_as_outputs",
]

PRIVATE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _is_link(path: str | os.PathLike[str]) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False


def _tighten(fd: int) -> None:
    """Set a regular file to exactly 0600 (the umask may have removed bits, an old file added some).

    Only regular files: ``--output /dev/null`` or a FIFO must keep their modes.
    """
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) != PRIVATE_MODE:
        os.fchmod(fd, PRIVATE_MODE)


def _open_error(path: str | os.PathLike[str], exc: OSError) -> ConfigError:
    if exc.errno in (errno.ELOOP, errno.EMLINK) or (exc.errno == errno.EEXIST and _is_link(path)):
        return ConfigError(f"{os.fspath(path)}: is a symbolic link; credwatch does not write "
                           "through links (name the real file)")
    if exc.errno == errno.ENOENT:
        return ConfigError(f"{os.fspath(path)}: folder does not exist")
    return ConfigError(f"cannot write {os.fspath(path)}: {exc.strerror or exc}")


def open_private(path: str | os.PathLike[str], *, exclusive: bool = False) -> int:
    """Open ``path`` for writing as a private file and return the descriptor.

    The file is created 0600 (an existing regular file is truncated and set to
    0600) and a symbolic link at ``path`` is refused. With ``exclusive`` the file
    must not exist yet (for temporary files next to a final name).
    Raises :class:`ConfigError` with ``path: reason``.
    """
    flags = os.O_WRONLY | os.O_CREAT | _O_NOFOLLOW | _O_CLOEXEC
    flags |= os.O_EXCL if exclusive else os.O_TRUNC
    try:
        fd = os.open(path, flags, PRIVATE_MODE)
    except OSError as exc:
        raise _open_error(path, exc) from None
    try:
        _tighten(fd)
    except OSError as exc:
        os.close(fd)
        raise _open_error(path, exc) from None
    return fd


def open_private_text(path: str | os.PathLike[str], *, exclusive: bool = False) -> IO[str]:
    """:func:`open_private` as a UTF-8 text stream (the caller closes it)."""
    fd = open_private(path, exclusive=exclusive)
    return os.fdopen(fd, "w", encoding="utf-8", newline="\n")


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and missing parents, each new one 0700 whatever the umask."""
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for new in reversed(missing):
        try:
            new.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another process made it first
        os.chmod(new, PRIVATE_DIR_MODE)


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists as a file created 0600 (for SQLite, which would use the umask).

    An existing file is left as it is. The folder must exist. A dangling
    symbolic link is refused: the program that opens the path next would
    create the link's target with its own mode.
    """
    if not path.parent.is_dir():
        raise ConfigError(f"{path}: folder does not exist")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC,
                     PRIVATE_MODE)
    except FileExistsError:
        if _is_link(path) and not path.exists():
            raise ConfigError(f"{path}: is a dangling symbolic link; refusing to create "
                              "its target") from None
        return
    except OSError as exc:
        raise _open_error(path, exc) from None
    try:
        _tighten(fd)
    finally:
        os.close(fd)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _inside(child: str, folder: str) -> bool:
    with contextlib.suppress(ValueError):
        return os.path.commonpath([child, folder]) == folder
    return False


def _conflict(output: str, inp: str, glob: str | None) -> str | None:
    """How reading ``inp`` would read ``output``: "is" (same file), "is inside" or None."""
    out_id = _identity(output)
    if out_id is not None and out_id == _identity(inp):
        return "is"
    out_real, in_real = os.path.realpath(output), os.path.realpath(inp)
    if out_real == in_real:
        return "is"
    if not os.path.isdir(inp) or not _inside(out_real, in_real):
        return None
    # A folder input is walked for files not starting with "." that match --glob.
    name = os.path.basename(out_real)
    if name.startswith(".") or (glob and not fnmatch.fnmatch(name, glob)):
        return None
    return "is inside"


def refuse_inputs_as_outputs(outputs: Iterable[tuple[str, str | None]], inputs: Iterable[str],
                             *, glob: str | None = None) -> None:
    """Refuse (exit 2) any output that is an input, or would be read from an input folder.

    ``outputs`` are ``(option, path)`` pairs (a None path or ``-`` is skipped).
    Inputs are compared by device and inode when both exist, and by resolved path
    otherwise (``run`` and ``watch`` accept files that do not exist yet). Two
    outputs naming the same file are refused too. Call this before opening any
    output, so nothing is truncated.
    """
    ins = [p for p in inputs if p and p != "-"]
    seen: list[tuple[str, str]] = []
    for option, path in outputs:
        if not path or path == "-":
            continue
        for inp in ins:
            how = _conflict(path, inp, glob)
            if how:
                raise ConfigError(f"{path}: {option} {how} the input {inp}; refusing to "
                                  "overwrite an input (write the output elsewhere)")
        for other_option, other in seen:
            if _conflict(path, other, None) == "is":
                raise ConfigError(f"{path}: {option} names the same file as {other_option}")
        seen.append((option, path))
