"""The event log: what the control loops did and why, kept for people and for the exporter.

Every control loop (probes, failover, autoscaling, apply) appends an `Event` to `events.jsonl`
in the data folder; `rtm-console events` reads it and `events -f` follows it. The file is
append-only JSON lines written with one `write()` per event (see `append_jsonl`), so the agent
and a console can write at the same time. When it grows past `max_bytes` it is renamed to
`events.jsonl.1` (replacing the previous old file) and a new one is started; readers see both.

Kinds in use: probe_failed, probe_passed, restart, give_up, reschedule, membership, scale,
apply, delete, start, stop, drain, backend_down, backend_up. The action gate records start, stop,
restart, delete, apply, scale and drain for the changes people make (console/gate.py). A loop
may add its own (lower-case words joined by _).
"""

from __future__ import annotations

import fcntl
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from console.datadir import append_jsonl, iso_utc, parse_iso, read_jsonl, read_jsonl_from

EVENT_LOG_NAME = "events.jsonl"
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
KNOWN_KINDS = frozenset({
    "probe_failed", "probe_passed", "restart", "give_up", "reschedule", "membership", "scale",
    "apply", "delete", "start", "stop", "drain", "backend_down", "backend_up",
})
_KIND = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Event:
    """One thing a control loop did or saw. `time` is epoch seconds (UTC)."""

    time: float
    kind: str
    workload: str | None = None
    target: str | None = None
    message: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _KIND.match(self.kind):
            raise ValueError(f"event kind {self.kind!r} must be lower-case words joined by '_'")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_record(self) -> dict[str, Any]:
        return {
            "time": iso_utc(self.time),
            "kind": self.kind,
            "workload": self.workload,
            "target": self.target,
            "message": self.message,
            "details": dict(self.details),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Event | None:
        """The event a log line holds, or None if the line is not an event."""
        try:
            details = record.get("details") or {}
            return cls(
                time=parse_iso(str(record["time"])),
                kind=str(record["kind"]),
                workload=record.get("workload"),
                target=record.get("target"),
                message=str(record.get("message", "")),
                details=details if isinstance(details, Mapping) else {},
            )
        except (KeyError, ValueError, TypeError):
            return None


def format_event(event: Event) -> str:
    """One line for `rtm-console events`."""
    where = " ".join(part for part in (event.workload, event.target) if part)
    return f"{iso_utc(event.time)}  {event.kind:<12}  {where or '-'}  {event.message}"


class EventLog:
    """The append-only event log at `path`, rotated at `max_bytes` keeping one old file."""

    def __init__(
        self,
        path: Path | str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.old_path = self.path.with_name(self.path.name + ".1")
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self.max_bytes = max_bytes
        self._clock = clock

    @classmethod
    def in_data_dir(cls, data_dir: Path | str, **options: Any) -> EventLog:
        return cls(Path(data_dir) / EVENT_LOG_NAME, **options)

    def append(self, event: Event) -> None:
        self._rotate_if_full()
        append_jsonl(self.path, event.to_record())

    def record(
        self,
        kind: str,
        message: str,
        *,
        workload: str | None = None,
        target: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Event:
        """Append an event stamped with the log's clock, and return it."""
        event = Event(self._clock(), kind, workload, target, message, details or {})
        self.append(event)
        return event

    def read(self, since: float | str | None = None, limit: int | None = None) -> list[Event]:
        """Events oldest first, from the old file then the current one; `since` (epoch seconds
        or ISO 8601) keeps those at or after it, `limit` keeps the last N."""
        records = read_jsonl(self.old_path) + read_jsonl(self.path)
        events = [event for event in map(Event.from_record, records) if event is not None]
        if since is not None:
            cutoff = parse_iso(since) if isinstance(since, str) else float(since)
            events = [event for event in events if event.time >= cutoff]
        if limit is not None:
            events = events[-limit:] if limit > 0 else []
        return events

    def follow(
        self,
        from_start: bool = False,
        poll_interval: float = 0.5,
        stop: threading.Event | None = None,
        history: int = 0,
    ) -> Iterator[Event]:
        """Yield events as they are appended (`events -f`), until `stop` is set.

        Starts at the end of the log (or its beginning with `from_start`), after yielding the
        last `history` events already there (as `tail -f` prints the last lines first; none
        is missed or repeated between the two). Follows the log
        across a rotation (finishing the renamed file first) and starts over when the file is
        truncated. A line still being written is read once it is complete.
        """
        stop = stop or threading.Event()
        handle = None
        inode = None
        offset = 0
        try:
            handle, inode = self._open_current()
            if history > 0 and not from_start:
                past, offset = read_jsonl_from(handle, 0) if handle is not None else ([], 0)
                yield from list(_events(read_jsonl(self.old_path) + past))[-history:]
            elif handle is not None and not from_start:
                offset = os.fstat(handle.fileno()).st_size
            while True:
                if handle is not None:
                    records, offset = read_jsonl_from(handle, offset)
                    yield from _events(records)
                current_inode, current_size = _stat(self.path)
                if handle is None and current_inode is not None:
                    handle, inode = self._open_current()
                    offset = 0
                    continue
                if handle is not None and current_inode is not None and current_inode != inode:
                    # Rotated: the rest of the old file was read above; continue in the new one.
                    records, offset = read_jsonl_from(handle, offset)
                    yield from _events(records)
                    handle.close()
                    handle, inode = self._open_current()
                    offset = 0
                    continue
                if handle is not None and current_size is not None and current_size < offset:
                    offset = 0  # truncated: read what is there now from the start
                    continue
                if stop.wait(poll_interval):
                    return
        finally:
            if handle is not None:
                handle.close()

    def _open_current(self) -> tuple[Any, int | None]:
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return None, None
        return handle, os.fstat(handle.fileno()).st_ino

    def _rotate_if_full(self) -> None:
        size = _stat(self.path)[1]
        if size is None or size < self.max_bytes:
            return
        # Two writers may both see a full file; the lock and the second look make sure only
        # one of them renames it (a second rename would replace the old file with a new one).
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = _stat(self.path)[1]
            if size is not None and size >= self.max_bytes:
                os.replace(self.path, self.old_path)
        finally:
            os.close(fd)


def _stat(path: Path) -> tuple[int | None, int | None]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None, None
    return info.st_ino, info.st_size


def _events(records: list[dict[str, Any]]) -> Iterator[Event]:
    for record in records:
        event = Event.from_record(record)
        if event is not None:
            yield event
