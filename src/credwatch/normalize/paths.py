"""Derive ``credwatch.normalized.paths`` from an exec event, without touching any file system.

The faithful rule compares each ``process.args`` element with a credential
path, so any other spelling of the same file walks around it. This module
reads the event alone (args, working directory, pid, user) and lists the
absolute, canonical paths the command names, so a rule can match the file
rather than its spelling.

What it does, in order, for every argument after ``argv[0]``:

* code handed to a shell (``sh|bash|dash|zsh|ash|ksh|busybox|su|runuser … -c``)
  is split like a shell does (:mod:`shlex`, punctuation aware, at most
  :data:`MAX_TOKENS` tokens; a shlex error falls back to a whitespace split),
  and its words are treated like arguments (nested shells up to
  :data:`MAX_DEPTH`); ``<`` redirections separate themselves;
* code handed to an interpreter (``python* -c``, ``perl* -e``, ``ruby* -e``,
  ``node -e``, ``php* -r``, ``lua* -e``) gives its quoted strings (and each
  whitespace-separated word inside them) that look like paths;
* any other argument holding whitespace is split on it too (``watch 'cat …'``);
* prefixes are peeled: ``--opt=``, ``name=`` (``if=``, ``of=``, env
  assignments), ``@`` (curl), ``<``, ``file://`` and a short option's glued
  value (``-i/root/.ssh/id_rsa``);
* ``~/``, ``~user/``, ``$HOME/`` and ``${HOME}/`` become the home directory the
  event names (``user.name`` root or ``user.id`` 0 → ``/root``, another name →
  ``/home/<name>``); a bare ``~`` is dropped (a home directory is never a
  credential file, and this keeps every emitted path's last component a
  substring of the event, see below);
* relative paths are resolved against ``process.working_directory`` (dropped
  when it is unknown or not absolute);
* ``.``, ``..`` and repeated ``/`` collapse; ``/proc/<pid|self|thread-self>/root``
  resets to ``/`` (the process's root), ``/proc/<own pid|self|thread-self>/cwd``
  becomes the working directory (another process's cwd is kept as written,
  the event does not say what it is);
* ``/run/…`` is written ``/var/run/…``: **one canonical form**, the spelling
  Kubernetes documents and the seed rule uses, so a rule names ``/var/run``
  and matches both spellings.

Every step is bounded (:data:`MAX_ARGS`, :data:`MAX_ARG_LEN`,
:data:`MAX_TOKENS`, :data:`MAX_PATHS`, :data:`MAX_DEPTH`) and linear in the
size of its input; nothing raises on any input.

Invariant used by the prefilter: the last component of every emitted path is
a substring of the event's ``process.args``, ``process.working_directory`` or
``process.title`` *after shell unquoting*. Quotes spliced inside a word
(``cred''entials``) break plain substring search, which is why
:mod:`credwatch.backends.prefilter` derives no literals from derived fields.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credwatch.normalize.flatten import get_values

#: The derived field.
FIELD = "credwatch.normalized.paths"
#: The paths some command may read: those only a metadata-only tool named are left out.
READ_FIELD = "credwatch.normalized.read_paths"
#: Prefix of every derived field: a rule that references one needs :func:`add_derived_fields`.
DERIVED_PREFIX = "credwatch.normalized."
#: Arguments read per event (an exec can carry thousands).
MAX_ARGS = 256
#: Characters read per argument or code string.
MAX_ARG_LEN = 4096
#: Shell tokens (or quoted strings in interpreter code) read per string.
MAX_TOKENS = 512
#: Paths emitted per event.
MAX_PATHS = 256
#: Nesting of ``sh -c "bash -c '…'"`` followed.
MAX_DEPTH = 3
#: Prefix peels per word (``--data=@/x`` takes two).
_MAX_PEELS = 4

_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh", "busybox", "su",
                     "runuser", "fish", "tcsh", "csh"})
_INTERPRETERS = re.compile(r"^(python[\d.]*|perl[\d.]*|ruby[\d.]*|node(js)?|php[\d.]*|lua[\d.]*)$")
_CODE_FLAG = re.compile(r"^(-[A-Za-z]*[ceEpr]|--eval|--print|--command)$")
_SHORT_C = re.compile(r"^-[A-Za-z]*c$")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=")
_PUNCTUATION = frozenset(";&|()<>")
_QUOTES = "\"'`"
_QUOTE_RE = re.compile("[\"'`]")
_WS = re.compile(r"\s+")
_HOME = ("$HOME/", "${HOME}/")


@dataclass(frozen=True, slots=True)
class Context:
    """What the event says about the process: working directory, pid and home."""

    cwd: tuple[str, ...] | None
    pid: str | None
    home: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Origin:
    """One normalised path and the argument it came from (for the alert's explanation)."""

    path: str
    argument: str
    index: int
    #: False when only a metadata-only tool (or an output redirection) names it.
    read: bool = True


def _first_str(event: Mapping[str, Any], name: str) -> str | None:
    for value in get_values(event, name):
        if isinstance(value, str):
            return value
    return None


def _home(event: Mapping[str, Any]) -> tuple[str, ...] | None:
    name = _first_str(event, "user.name")
    uid = get_values(event, "user.id")
    if name == "root" or (name is None and uid and str(uid[0]) == "0"):
        return ("root",)
    if name and "/" not in name and name not in (".", "..") and len(name) <= 256:
        return ("home", name)
    return None


def context_of(event: Mapping[str, Any]) -> Context:
    """The event's working directory (canonical), pid and home directory."""
    cwd_text = _first_str(event, "process.working_directory")
    cwd = None
    if cwd_text and cwd_text.startswith("/"):
        cwd = _collapse(cwd_text[:MAX_ARG_LEN], Context(None, None, None), ())
    pids = get_values(event, "process.pid")
    pid = str(pids[0]) if pids and isinstance(pids[0], (int, str)) else None
    return Context(cwd, pid, _home(event))


def _collapse(text: str, ctx: Context, base: tuple[str, ...]) -> tuple[str, ...] | None:
    """Components of ``text`` (absolute, or relative to ``base``) after the kernel-like walk."""
    stack = list(base)
    for comp in text.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if stack:
                stack.pop()
            continue
        stack.append(comp)
        if len(stack) == 3 and stack[0] == "proc":
            proc = stack[1]
            own = proc in ("self", "thread-self", "$$") or (ctx.pid is not None and proc == ctx.pid)
            if stack[2] == "root" and (own or proc.isdigit()):
                stack = []  # the process's root directory: "/" as far as the event can tell
            elif stack[2] == "cwd" and own and ctx.cwd is not None:
                stack = list(ctx.cwd)
    return tuple(stack)


def _canonical(comps: Sequence[str]) -> str:
    if comps and comps[0] == "run":
        comps = ("var", *comps)
    return "/" + "/".join(comps)


def _expand_home(word: str, ctx: Context) -> str | None:
    """``~/x``, ``~user/x``, ``$HOME/x``: an absolute spelling, or None when unknown."""
    rest: str | None = None
    home = ctx.home
    if word.startswith(_HOME):
        rest = word.split("/", 1)[1]
    elif word.startswith("~"):
        head, sep, tail = word[1:].partition("/")
        if not sep:
            return None
        if head:
            home = ("root",) if head == "root" else ("home", head)
        rest = tail
    if rest is None or home is None:
        return None
    return "/" + "/".join(home) + "/" + rest


def canonical_path(word: str, ctx: Context) -> str | None:
    """The absolute canonical form of ``word`` as a path, or None when it cannot be one."""
    if not word or "\x00" in word:
        return None
    word = word[:MAX_ARG_LEN]
    if word[0] in "~$":
        expanded = _expand_home(word, ctx)
        if expanded is None:
            return None
        word = expanded
    if word.startswith("/"):
        comps = _collapse(word, ctx, ())
    elif ctx.cwd is not None:
        comps = _collapse(word, ctx, ctx.cwd)
    else:
        return None
    return None if comps is None else _canonical(comps)


def peel(word: str) -> str:
    """Strip ``--opt=``, ``name=``, ``@``, ``<``, ``file://`` and glued short-option prefixes."""
    for _ in range(_MAX_PEELS):
        if (word.startswith("--") and "=" in word) or _ASSIGN.match(word):
            word = word.split("=", 1)[1]
        elif word[:1] in ("@", "<"):
            word = word[1:]
        elif word.startswith("file://"):
            word = word[len("file://"):]
        elif word.startswith("-") and _glued_value(word):
            word = word[2:]
        else:
            break
    return word


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def quoted_strings(code: str) -> Iterator[str]:
    """Quoted strings of interpreter code, and the path-like words inside them (linear).

    Each quote character is searched forward at most once after it runs out,
    and every successful search moves past what it scanned, so the whole
    string is read a bounded number of times.
    """
    code = code[:MAX_ARG_LEN]
    exhausted: set[str] = set()
    i = 0
    count = 0
    while count < MAX_TOKENS:
        m = _QUOTE_RE.search(code, i)
        if m is None:
            return
        quote = m.group()
        start = m.start()
        end = -1 if quote in exhausted else code.find(quote, start + 1)
        if end < 0:
            exhausted.add(quote)
            if len(exhausted) == len(_QUOTES):
                return
            i = start + 1
            continue
        text = code[start + 1:end]
        i = end + 1
        count += 1
        for piece in _WS.split(text.strip()) if any(c.isspace() for c in text) else (text,):
            piece = peel(piece)
            if "/" in piece or piece.startswith("~"):
                yield piece


def shell_words(code: str) -> list[str]:
    """At most :data:`MAX_TOKENS` words of shell code, operators as their own words."""
    code = code[:MAX_ARG_LEN]
    lexer = shlex.shlex(code, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    try:
        for token in lexer:
            words.append(token)
            if len(words) >= MAX_TOKENS:
                break
    except ValueError:  # unbalanced quotes: read it the plain way
        return _WS.split(code.strip())[:MAX_TOKENS]
    return words


#: Tools that name a file without revealing its contents: listing, metadata,
#: permissions, removal, package ownership queries, digests and key fingerprints
#: (ssh-keygen generates, fingerprints or derives the public half; it never prints a
#: private key). Paths a shell or a wrapper hands to one of them are not in ``read_paths``.
METADATA_TOOLS = frozenset({
    "ls", "dir", "vdir", "stat", "chmod", "chown", "chgrp", "touch", "test", "[", "file",
    "du", "realpath", "readlink", "namei", "lsattr", "chattr", "getfacl", "setfacl", "rm",
    "unlink", "mkdir", "rmdir", "dpkg", "dpkg-query", "rpm", "md5sum", "sha1sum",
    "sha224sum", "sha256sum", "sha384sum", "sha512sum", "b2sum", "cksum", "ssh-keygen", "find",
})
#: find actions that run a command on (or print the contents of) what it finds.
FIND_READERS = frozenset({"-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf"})
#: Directories a metadata tool must run from to count as one (a copy in /tmp is not).
SYSTEM_BIN = ("/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/", "/usr/local/bin/")
#: Options whose value names files a tool skips (tar, rsync, zip, grep).
_EXCLUDE_OPTIONS = ("--exclude", "--exclude-dir", "--exclude-from", "--ignore")
#: Commands that run another command, with their options that take a value and
#: the number of positional words before the command.
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "env": (frozenset({"-u", "-C", "-S", "--unset", "--chdir"}), 0),
    "nohup": (frozenset(), 0), "setsid": (frozenset(), 0), "time": (frozenset(), 0),
    "command": (frozenset(), 0), "exec": (frozenset({"-a"}), 0), "builtin": (frozenset(), 0),
    "nice": (frozenset({"-n"}), 0), "ionice": (frozenset({"-c", "-n", "-p"}), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0), "timeout": (frozenset({"-s", "-k"}), 1),
    "xargs": (frozenset({"-n", "-I", "-d", "-L", "-P", "-s", "-a", "-E"}), 0),
    "chrt": (frozenset(), 1), "taskset": (frozenset(), 1),
}


def is_metadata_command(word: str) -> bool:
    """True when ``word`` runs a metadata-only tool (bare name or from a system directory)."""
    name = _basename(word)
    if name not in METADATA_TOOLS:
        return False
    return "/" not in word or word.startswith(SYSTEM_BIN)


class _Collector:
    """Accumulates unique paths with their origin, up to :data:`MAX_PATHS`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.seen: dict[str, Origin] = {}

    @property
    def full(self) -> bool:
        return len(self.seen) >= MAX_PATHS

    def add(self, word: str, argument: str, index: int, read: bool) -> None:
        if self.full:
            return
        word = peel(word)
        if "://" in word:
            return  # a URL names no local file (file:// was peeled)
        path = canonical_path(word, self.ctx)
        if path is None or path == "/":
            return
        old = self.seen.get(path)
        if old is None or (read and not old.read):
            self.seen[path] = Origin(path, argument, index, read)

    def words(self, words: Sequence[str], argument: str | None, index: int, depth: int,
              process: str | None = None) -> None:
        """Read ``words`` as shell words: simple commands split at operators.

        ``process`` is set for the event's own argument vector: its first word
        is the process itself (named ``process``), not a command to look up.
        ``cd DIR`` changes the directory later relative words resolve against,
        until the end of ``words``.
        """
        saved = self.ctx
        if process is not None:  # an argv: no shell operators, one command
            self._simple(words, argument, index, 0, depth, process)
            return
        start = 0
        n = len(words)
        while start < n and not self.full:
            end = start
            while end < n and not _is_operator(words[end]):
                end += 1
            self._simple(words[start:end], argument, index, start, depth, None)
            if end < n and _is_redirect_in(words[end]) and end + 1 < n:
                origin, where = (argument, index) if argument is not None else (words[end + 1], end + 1)
                self.add(words[end + 1], origin, where, read=True)
                end += 1
            elif end < n and words[end].endswith(">") and end + 1 < n:
                end += 1  # an output file: written, not read
            start = end + 1
        self.ctx = saved

    def _simple(self, words: Sequence[str], argument: str | None, index: int, offset: int,
                depth: int, process: str | None) -> None:
        """One simple command: assignments, wrappers, the command and its arguments."""
        j = 0
        n = len(words)
        while j < n and _ASSIGN.match(words[j]) and process is None:
            self._arg(words, j, argument, index, offset, depth, (False, False), read=True)
            j += 1
        if j >= n:
            return
        command = process if process is not None else words[j]
        wrapped = False
        j += 1
        while _basename(command) in _WRAPPERS:
            start = j
            j = _skip_wrapper_options(words, j, _WRAPPERS[_basename(command)])
            for k in range(start, min(j, n)):
                if _ASSIGN.match(words[k]):  # env KUBECONFIG=/etc/kubernetes/admin.conf kubectl
                    self._arg(words, k, argument, index, offset, depth, (False, False), read=True)
            if j >= n:
                return
            command, wrapped = words[j], True
            j += 1
        name = _basename(command).lstrip("-")
        kind = (name in _SHELLS, bool(_INTERPRETERS.match(name)))
        if process is not None and not wrapped:
            kind = (kind[0] or _basename(words[0]) in _SHELLS,
                    kind[1] or bool(_INTERPRETERS.match(_basename(words[0]))))
        metadata = (process is None or wrapped) and is_metadata_command(command)
        if metadata and name == "find" and any(w in FIND_READERS for w in words[j:]):
            metadata = False
        if name in ("cd", "pushd"):
            target = next((w for w in words[j:] if not w.startswith("-")), None)
            if target is not None:
                self._cd(target)
            return
        for k in range(j, n):
            self._arg(words, k, argument, index, offset, depth, kind, read=not metadata)

    def _arg(self, words: Sequence[str], k: int, argument: str | None, index: int, offset: int,
             depth: int, kind: tuple[bool, bool], read: bool) -> None:
        word = words[k]
        origin, where = (argument, index) if argument is not None else (word, offset + k)
        prev = words[k - 1] if k else ""
        shell, interp = kind
        if word.startswith(_EXCLUDE_OPTIONS) or prev in _EXCLUDE_OPTIONS:
            read = False  # a backup's --exclude=/etc/shadow names what it will NOT read
        if shell and _SHORT_C.match(prev) and depth < MAX_DEPTH:
            self.words(shell_words(word), origin, where, depth + 1)
        elif interp and _CODE_FLAG.match(prev):
            for piece in quoted_strings(word):
                self.add(piece, origin, where, read)
        elif word.startswith("-") and "=" not in word and not _glued_value(word):
            return
        elif any(c.isspace() for c in word) and depth < MAX_DEPTH:
            self.add(word, origin, where, read)
            self.words(shell_words(word), origin, where, depth + 1)
        else:
            self.add(word, origin, where, read)

    def _cd(self, word: str) -> None:
        target = canonical_path(word, self.ctx)
        if target is not None:
            comps = tuple(c for c in target.split("/") if c)
            self.ctx = Context(comps, self.ctx.pid, self.ctx.home)


def _is_operator(word: str) -> bool:
    return bool(word) and all(c in _PUNCTUATION for c in word)


def _is_redirect_in(word: str) -> bool:
    """An operator after which the next word is a file the shell reads (``<``, ``$(<``)."""
    return "<" in word and "<<" not in word


def _skip_wrapper_options(words: Sequence[str], j: int, spec: tuple[frozenset[str], int]) -> int:
    """Index of the wrapped command after a wrapper's options and leading positionals."""
    with_value, positionals = spec
    n = len(words)
    while j < n:
        word = words[j]
        if word == "--":
            j += 1
            break
        if word.startswith("-") and len(word) > 1:
            j += 2 if word in with_value else 1
        elif _ASSIGN.match(word):
            j += 1
        elif positionals:
            positionals -= 1
            j += 1
        else:
            break
    return j


def _glued_value(word: str) -> bool:
    return len(word) > 2 and word[1] != "-" and (word[2] in "/~@<" or word[2:].startswith("$HOME"))


def command_words(event: Mapping[str, Any]) -> list[str]:
    """The event's argument vector (or its command line read as shell words)."""
    args = [a for a in get_values(event, "process.args")[:MAX_ARGS] if isinstance(a, str)]
    if args:
        return args
    # Without args (some exports keep only the command line), read the command line as shell words.
    line = _first_str(event, "process.command_line") or _first_str(event, "process.title")
    return shell_words(line)[:MAX_ARGS] if line else []


def path_origins(event: Mapping[str, Any]) -> list[Origin]:
    """Every normalised path of ``event`` with the argument it came from."""
    if not isinstance(event, Mapping):
        return []
    ctx = context_of(event)
    collector = _Collector(ctx)
    process = (_first_str(event, "process.executable") or _first_str(event, "process.name")
               or "")
    collector.words(command_words(event), None, 0, 0, process=process)
    return list(collector.seen.values())


def normalized_paths(event: Mapping[str, Any]) -> list[str]:
    """The value of ``credwatch.normalized.paths`` for ``event`` (never raises)."""
    return [o.path for o in path_origins(event)]


def derived_fields(event: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every ``credwatch.normalized.*`` field of ``event``, by flat dotted name."""
    origins = path_origins(event)
    return {FIELD: [o.path for o in origins], READ_FIELD: [o.path for o in origins if o.read]}


def add_derived_fields(event: dict[str, Any]) -> dict[str, Any]:
    """Set the ``credwatch.normalized.*`` fields on ``event`` (flat dotted keys) and return it."""
    event.update(derived_fields(event))
    return event
