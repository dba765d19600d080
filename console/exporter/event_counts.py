"""Counts of what the control loops did, read from the event log as it grows.

The exporter turns these into counters (probe failures, restarts, scaling decisions). Only the
bytes appended since the last look are read, so a scrape costs a `stat` and a short read; the
log's rotation (events.jsonl renamed to events.jsonl.1) is followed by finishing the renamed
file first, so no event is counted twice or lost. Counts start with what the log holds when
the exporter starts; Prometheus' rate() and increase() handle the jump of a restart.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.datadir import read_jsonl_from
from console.eventlog import Event, EventLog

PROBE_NAMES = ("startup", "liveness", "readiness", "docker-health")
SCALE_DIRECTIONS = {"scale_up": "up", "scale_down": "down", "no_scale": "none", "up": "up", "down": "down", "none": "none"}


@dataclass(frozen=True)
class EventTotals:
    """Counts since the exporter started reading (plus what the log held then)."""

    by_kind: Counter[tuple[str, str]] = field(default_factory=Counter)  # (kind, workload)
    probe_failures: Counter[tuple[str, str]] = field(default_factory=Counter)  # (workload, probe)
    probe_recoveries: Counter[tuple[str, str]] = field(default_factory=Counter)  # (workload, probe)
    restarts: Counter[str] = field(default_factory=Counter)  # workload
    scaling_decisions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (workload, direction)


class EventCounter:
    """Follows one event log and keeps running totals. Thread-safe."""

    def __init__(self, log: EventLog) -> None:
        self._path = log.path
        self._old_path = log.old_path
        self._lock = threading.Lock()
        self._inode: int | None = None
        self._offset = 0
        self._totals = EventTotals()
        self._started = False

    def totals(self) -> EventTotals:
        """Read what was appended since the last call, and return the totals (a copy)."""
        with self._lock:
            self._catch_up()
            return EventTotals(*(Counter(getattr(self._totals, name)) for name in EventTotals.__dataclass_fields__))

    def _catch_up(self) -> None:
        if not self._started:
            self._started = True
            self._count_file(self._old_path, 0)  # what is left of the previous file
        inode, size = _stat(self._path)
        if self._inode is not None and inode != self._inode:
            # Rotated since the last look: finish the renamed file where we stopped.
            if _stat(self._old_path)[0] == self._inode:
                self._count_file(self._old_path, self._offset)
            self._inode, self._offset = None, 0
        if inode is None:
            return
        if size is not None and size < self._offset:
            self._offset = 0  # truncated: what is there now is new
        self._inode = inode
        self._offset = self._count_file(self._path, self._offset)

    def _count_file(self, path: Path, offset: int) -> int:
        try:
            with open(path, "rb") as handle:
                records, offset = read_jsonl_from(handle, offset)
        except FileNotFoundError:
            return offset
        for record in records:
            event = Event.from_record(record)
            if event is not None:
                self._count(event)
        return offset

    def _count(self, event: Event) -> None:
        totals = self._totals
        workload = event.workload or ""
        totals.by_kind[(event.kind, workload)] += 1
        if event.kind in ("probe_failed", "probe_passed"):
            probe = probe_name(event)
            target = totals.probe_failures if event.kind == "probe_failed" else totals.probe_recoveries
            target[(workload, probe)] += 1
        elif event.kind == "restart" and workload:  # a restart of a container that is no workload's replica has no series
            totals.restarts[workload] += 1
        elif event.kind == "scale":
            totals.scaling_decisions[(workload, scale_direction(event.details))] += 1


def probe_name(event: Event) -> str:
    """The probe an event is about: `details.probe`, else the message's first word
    ("liveness probe failed (3/3)"), else ""."""
    named = event.details.get("probe")
    if isinstance(named, str) and named in PROBE_NAMES:
        return named
    first = event.message.split(" ", 1)[0] if event.message else ""
    return first if first in PROBE_NAMES else ""


def scale_direction(details: Any) -> str:
    """up, down or none from `details.direction` (the autoscaler's scale_up / scale_down /
    no_scale) or from current vs target replicas; "unknown" when neither is there."""
    direction = details.get("direction")
    if isinstance(direction, str) and direction in SCALE_DIRECTIONS:
        return SCALE_DIRECTIONS[direction]
    current = details.get("current_replicas", details.get("from"))
    target = details.get("target_replicas", details.get("to"))
    if isinstance(current, int) and isinstance(target, int):
        return "up" if target > current else "down" if target < current else "none"
    return "unknown"


def _stat(path: Path) -> tuple[int | None, int | None]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None, None
    return info.st_ino, info.st_size
