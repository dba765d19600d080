"""The one bounded, position-aware YAML reader: spec files, the config file and the web config.

Each of the three reads a file with `read_yaml_text` and composes it with `compose_document`
(specs: `compose_all`, problems through `yaml_problem`), so they refuse the same files and word
and place the same problems: `PATH:LINE:COL: error: invalid YAML: ...`, `... is not UTF-8 text`,
`cannot read ...: not a regular file (a pipe)`.

Reading is bounded: only regular files are read (a FIFO, /dev/zero or a terminal is refused
without blocking), and at most MAX_FILE_BYTES of them. Composing keeps every node's line and
column and uses libyaml's C parser when PyYAML has it; libyaml refuses nesting deeper than
MAX_DEPTH levels with a position. The pure-Python composer (used only where the C extension is
missing, said once in the debug log) recurses about three frames a level, so it is held to what
Python's recursion limit leaves room for (about 300 levels at the default of 1,000), with the
same message and position; the reader never changes that process-wide limit.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import stat
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml
from yaml.nodes import Node, ScalarNode

MAX_FILE_BYTES = 16 * 1024 * 1024  # 16 MiB
MAX_DEPTH = 1000  # libyaml's own limit of nested collections
REWORD_ERRORS_BELOW = 1024 * 1024  # characters; see _raise_as_pure_python
STR_TAG = "tag:yaml.org,2002:str"

HAS_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))
_log = logging.getLogger("rtm.reader")
_told_pure_python = False


class FileRefused(OSError):
    """A path the reader will not read: not a regular file, or larger than the limit."""

    def __init__(self, path: Path | str, reason: str, hint: str) -> None:
        super().__init__(errno.EINVAL, reason, str(path))
        self.reason = reason
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.reason} ({self.hint})"


def read_bounded(path: Path | str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; FileRefused otherwise, OSError as usual."""
    # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefused(path, f"not a regular file ({_file_type(mode)})", "name a spec or config file, not a device, pipe or socket")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(path, f"larger than {_size(limit)}", f"files over {_size(limit)} are not read; split it into several files")
    return data


@dataclass(frozen=True)
class YamlProblem:
    """Why a text is not the YAML it should be; line and column count from 1 (None: unknown)."""

    line: int | None
    column: int | None
    message: str
    hint: str | None = None


class YamlFileError(Exception):
    """A file that cannot be used as YAML, with where and why: `PATH:LINE:COL: error: MESSAGE (hint: HINT)`."""

    def __init__(self, path: Path | str, problem: YamlProblem) -> None:
        self.path = str(path)
        self.problem = problem
        where = self.path if problem.line is None else f"{self.path}:{problem.line}:{problem.column}"
        text = f"{where}: error: {problem.message}"
        super().__init__(f"{text} (hint: {problem.hint})" if problem.hint else text)


def read_yaml_text(path: Path | str, what: str = "the file") -> str:
    """The text of a YAML file: read_bounded, then UTF-8. OSError (FileRefused among them) propagates,
    for `cannot_read`; text that is not UTF-8 is a YamlFileError at the first bad byte, naming `what`."""
    data = read_bounded(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise YamlFileError(path, YamlProblem(line, column, f"{what} is not UTF-8 text", "save it as UTF-8")) from None


def cannot_read(path: Path | str, what: str, error: OSError) -> YamlFileError:
    """The problem of a file that could not be read at all (missing, refused, no permission)."""
    if isinstance(error, FileRefused):
        return YamlFileError(path, YamlProblem(None, None, f"cannot read {what}: {error.reason}", error.hint))
    return YamlFileError(path, YamlProblem(None, None, f"cannot read {what}: {error.strerror or error}"))


def compose_document(text: str, path: Path | str) -> Node | None:
    """compose, with a YAML error as a YamlFileError at its position."""
    try:
        return compose(text)
    except yaml.YAMLError as exc:
        raise YamlFileError(path, yaml_problem(exc)) from None


def loader() -> type:
    """libyaml's safe loader when PyYAML was built with it, else the pure-Python one."""
    global _told_pure_python
    if HAS_LIBYAML:
        return yaml.CSafeLoader
    if not _told_pure_python:
        _told_pure_python = True
        _log.debug("PyYAML has no libyaml C extension here: YAML is read with the slower pure-Python parser")
    return _DepthLimitedLoader


def compose_all(text: str) -> Iterator[Node]:
    """The root node of each YAML document, with positions. Raises yaml.YAMLError on bad YAML."""
    active = loader()(text)
    try:
        while active.check_node():
            yield active.get_node()
    except yaml.YAMLError:
        _raise_as_pure_python(text)
        raise
    finally:
        active.dispose()


def compose(text: str) -> Node | None:
    """The root node of a single-document text (None when it is empty)."""
    active = loader()(text)
    try:
        return active.get_single_node()
    except yaml.YAMLError:
        _raise_as_pure_python(text)
        raise
    finally:
        active.dispose()


def _raise_as_pure_python(text: str) -> None:
    """libyaml words its errors differently (and sometimes places them elsewhere) than PyYAML,
    whose messages and positions users and scripts already know: an invalid text of a sane size
    is composed again by PyYAML for its error. Returns only when PyYAML finds none."""
    if not HAS_LIBYAML or len(text) > REWORD_ERRORS_BELOW:
        return
    again = _DepthLimitedLoader(text)
    try:
        while again.check_node():
            again.get_node()
    except _DeeperThanRoomLeft:
        return  # nested deeper than the pure-Python composer can follow here: libyaml's error stands
    except yaml.YAMLError as pure_error:
        raise pure_error from None
    finally:
        again.dispose()


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold Python's cycle collector while a text becomes nodes and values: they form no cycles,
    and the collector would otherwise walk the growing tree again and again (over half the time
    of a large file). Nested and concurrent uses are counted; the last one restores it."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def yaml_problem(exc: yaml.YAMLError) -> YamlProblem:
    """A YAML error as `invalid YAML: PROBLEM (CONTEXT at LINE:COL)` at the problem's position,
    with a hint for the usual mistakes."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return YamlProblem(None, None, f"invalid YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or exc.context or "not valid"
    if exc.problem and exc.context:
        opened = exc.context_mark
        message += f" ({exc.context} at {opened.line + 1}:{opened.column + 1})" if opened else f" ({exc.context})"
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    return YamlProblem(line, column, f"invalid YAML: {message}", _yaml_hint(message))


def _yaml_hint(message: str) -> str | None:
    if "tab" in message:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in message:
        return "put a space after each colon, and quote values that contain ': '"
    if "could not find expected ':'" in message or "expected <block end>" in message:
        return "check the indentation of this line and the one before"
    if "found character" in message:
        return "quote the value"
    if "nesting depth" in message:
        return "flatten the structure"
    return None


# ----------------------------------------------------------------------------------------------
# Scalars


_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def scalar_value(node: ScalarNode) -> Any:
    """The Python value PyYAML's safe loader gives this scalar (int, float, bool, None or str)."""
    if node.tag == STR_TAG:
        return node.value
    constructors = _CONSTRUCTOR.yaml_constructors
    construct = constructors.get(node.tag, constructors[None])
    value = construct(_CONSTRUCTOR, node)
    if isinstance(value, types.GeneratorType):  # a collection tag on a scalar: raises as PyYAML does
        data = next(value)
        for _ in value:
            pass
        return data
    return value


# ----------------------------------------------------------------------------------------------
# The pure-Python fallback


FRAMES_PER_LEVEL = 3  # this compose_node, PyYAML's, and its compose_sequence/mapping_node
SPARE_FRAMES = 100  # left for what the composer calls at the deepest level (the parser, the resolver)


class _DeeperThanRoomLeft(yaml.composer.ComposerError):
    """Nesting the recursion limit leaves no room for, though libyaml (MAX_DEPTH) would take it."""


class _DepthLimitedLoader(yaml.SafeLoader):
    """PyYAML's composer recurses once per level: refuse what libyaml refuses, and what the
    recursion limit leaves no room for, with a position, before Python's RecursionError does
    it without one."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        room = (sys.getrecursionlimit() - _stack_depth() - SPARE_FRAMES) // FRAMES_PER_LEVEL
        self._max_depth = max(0, min(MAX_DEPTH, room))

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                mark = self.peek_event().start_mark
                error = yaml.composer.ComposerError if self._depth > MAX_DEPTH else _DeeperThanRoomLeft
                raise error(None, None, "exceeded maximum nesting depth", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


