"""Every invocation of a local function, recorded for the functions pane, describe and the exporter.

The hosting runtime appends one JSON line per invocation to `DATA/functions/invocations.jsonl`
(`InvocationWriter`): when it started, how long it ran, the outcome (ok, error, timeout, oom),
the HTTP status it became, peak memory, whether it was a cold start, and its log lines. One
`write()` per line on an O_APPEND descriptor, so a line is never torn by another writer.

Any process reads them through `InvocationLog`, which follows the file incrementally (only new
lines are parsed on each `refresh()`) and keeps, per function, bounded memory: cumulative
counts, the last `window` durations for average/maximum/p95, and the last `recent` records.
The host reads its own records back the same way, so there is one path for everyone.

The file is rotated when it passes `max_bytes`: it becomes `invocations.jsonl.1` (replacing the
previous one). A reader that is following the file finishes the rotated one before starting the
new one, so its counts stay cumulative; a reader that starts later counts what the two kept
files hold.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.records import DurationHistogram, DurationStats

LOG_NAME = "invocations.jsonl"
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_RECORDED_LOG_LINES = 50
ERROR_OUTCOMES = ("error", "timeout", "oom")


@dataclass(frozen=True)
class InvocationRecord:
    request_id: str
    function: str
    version: int
    trigger: str  # "http POST /api/function", "cron 0 0 * * *", "invoke"
    started_at: float  # epoch seconds
    duration_seconds: float
    outcome: str  # ok | error | timeout | oom
    status_code: int | None = None  # the HTTP status the gateway answered, for http triggers
    error: str | None = None  # "ValueError: boom"
    peak_memory_bytes: int | None = None
    memory_limit_bytes: int | None = None
    cold_start: bool = False
    init_seconds: float | None = None
    log_lines: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # Field by field rather than dataclasses.asdict, which deep-copies and costs more than
        # the rest of recording an invocation.
        data = {name: getattr(self, name) for name in _FIELDS}
        data["log_lines"] = list(self.log_lines[-MAX_RECORDED_LOG_LINES:])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InvocationRecord:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["log_lines"] = tuple(known.get("log_lines") or ())
        return cls(**known)


_FIELDS = tuple(InvocationRecord.__dataclass_fields__)


@dataclass(frozen=True)
class FunctionStats:
    invocations: int = 0
    errors: int = 0  # every outcome but ok, as Lambda's Errors metric counts timeouts and OOM too
    timeouts: int = 0
    out_of_memory: int = 0
    cold_starts: int = 0
    last_invoked: float | None = None
    duration: DurationStats | None = None  # over the last `window` invocations
    histogram: DurationHistogram | None = None  # every invocation the log holds


class InvocationWriter:
    """Appends records; used by the one process hosting the runtime. Thread-safe."""

    def __init__(self, folder: Path | str, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.path = Path(folder) / LOG_NAME
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None

    def append(self, record: InvocationRecord) -> None:
        line = (json.dumps(record.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.write(self._fd, line)
            if os.fstat(self._fd).st_size >= self.max_bytes:
                self._rotate()

    def _rotate(self) -> None:
        os.replace(self.path, self.path.with_name(LOG_NAME + ".1"))
        os.close(self._fd)  # type: ignore[arg-type]
        self._fd = None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


@dataclass
class _FunctionHistory:
    recent: deque[InvocationRecord]
    durations: deque[float]
    histogram: DurationHistogram = field(default_factory=DurationHistogram.empty)
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    out_of_memory: int = 0
    cold_starts: int = 0
    last_invoked: float | None = None

    def add(self, record: InvocationRecord) -> None:
        self.recent.append(record)
        self.durations.append(record.duration_seconds)
        self.histogram = self.histogram.observe(record.duration_seconds)
        self.invocations += 1
        self.errors += record.outcome in ERROR_OUTCOMES
        self.timeouts += record.outcome == "timeout"
        self.out_of_memory += record.outcome == "oom"
        self.cold_starts += record.cold_start
        self.last_invoked = max(self.last_invoked or 0.0, record.started_at)


@dataclass
class _Position:
    inode: int | None = None
    offset: int = 0
    pending: bytes = field(default=b"")


class InvocationLog:
    """Reads the invocation records (any process). Thread-safe."""

    def __init__(self, folder: Path | str, recent: int = 50, window: int = 1000) -> None:
        self.path = Path(folder) / LOG_NAME
        self.rotated_path = self.path.with_name(LOG_NAME + ".1")
        self._recent = recent
        self._window = window
        self._lock = threading.Lock()
        self._history: dict[str, _FunctionHistory] = {}
        self._position: _Position | None = None

    # ------------------------------------------------------------------------------ reading

    def refresh(self) -> None:
        """Take in the records appended since the last call."""
        with self._lock:
            if self._position is None:
                self._position = _Position()
                self._read_file(self.rotated_path, _Position())  # the kept older records first
            try:
                inode = os.stat(self.path).st_ino
            except FileNotFoundError:
                return
            position = self._position
            if position.inode is not None and position.inode != inode:
                # Rotated since the last read: finish the old file (now .1), then start the new.
                try:
                    if os.stat(self.rotated_path).st_ino == position.inode:
                        self._read_file(self.rotated_path, position)
                except FileNotFoundError:
                    pass
                self._position = position = _Position()
            position.inode = inode
            self._read_file(self.path, position)

    def _read_file(self, path: Path, position: _Position) -> None:
        try:
            with open(path, "rb") as handle:
                handle.seek(position.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        position.offset += len(data)
        data = position.pending + data
        complete, _, position.pending = data.rpartition(b"\n")
        self._take(complete.split(b"\n") if complete else [])

    def _take(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            if not line.strip():
                continue
            try:
                record = InvocationRecord.from_json(json.loads(line))
            except (ValueError, TypeError, KeyError):
                continue  # a torn line from a killed writer; the rest is still good
            history = self._history.get(record.function)
            if history is None:
                history = self._history[record.function] = _FunctionHistory(
                    deque(maxlen=self._recent), deque(maxlen=self._window))
            history.add(record)

    # ------------------------------------------------------------------------------ answers

    def recent(self, function: str, limit: int = 10) -> list[InvocationRecord]:
        """The function's latest records, newest first."""
        with self._lock:
            history = self._history.get(function)
            return list(reversed(history.recent))[:limit] if history else []

    def stats(self, function: str) -> FunctionStats:
        with self._lock:
            history = self._history.get(function)
            if history is None:
                return FunctionStats()
            return FunctionStats(
                invocations=history.invocations,
                errors=history.errors,
                timeouts=history.timeouts,
                out_of_memory=history.out_of_memory,
                cold_starts=history.cold_starts,
                last_invoked=history.last_invoked,
                duration=duration_stats(history.durations),
                histogram=history.histogram,
            )


def duration_stats(durations: Iterable[float]) -> DurationStats | None:
    ordered = sorted(durations)
    if not ordered:
        return None
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest-rank percentile
    return DurationStats(sum(ordered) / len(ordered), ordered[-1], p95)
