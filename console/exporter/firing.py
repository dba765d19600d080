"""The alerts firing now: `alerts.breached` evaluated on every poll, with since-when and silences.

One `AlertWatch` per process that shows or serves alerts: the console (every poll, for the
header, the Alerts pane and the row marks) and the agent (for `/agent/state`). The arithmetic
is `console.exporter.alert_rules.breached`, the same thresholds `render --alert-rules` writes, so a
threshold means one thing everywhere.

Firing and resolving are written to the event log (`alert_firing`, `alert_resolved`) only by
the watch that was made with `write_events=True`: the process that runs the control loops (the
agent, or a console running them itself). A kiosk console, or a console beside an agent, only
shows; two evaluators never write the same alert twice.

Cost per poll: the thresholds are re-read only when a spec file changed (a stat of the specs
folder at most every `SPEC_CHECK_SECONDS`), the event log only when it grew and only when a
threshold counts events; the comparison itself is one pass over the containers per threshold.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.docker.desired import DesiredStore
from console.datadir import iso_utc
from console.eventlog import Event, EventLog
from console.exporter.alert_rules import RESTART_WINDOW, Breach, Threshold, breached, thresholds_from_documents
from console.poller import PollState
from console.silences import SilenceStore, alert_key
from rtm.documents import Document, load_file, spec_files

SPEC_CHECK_SECONDS = 5.0
EVENT_KINDS = frozenset({"probe_failures", "restarts", "gave_up"})  # thresholds that count events

log = logging.getLogger("console.alerts")


@dataclass(frozen=True)
class FiringAlert:
    """One breach as people see it: what, where, how much against what, since when."""

    alert: str
    severity: str
    workload: str | None
    subject: str  # the workload, container or backend that breaks it
    value: float
    limit: float
    since: float  # epoch seconds this evaluator first saw it (or the event log's alert_firing)
    message: str
    source: str
    silenced_until: float | None = None

    @property
    def key(self) -> str:
        return alert_key(self.alert, self.subject)

    def to_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert, "severity": self.severity, "workload": self.workload, "subject": self.subject,
            "value": round(self.value, 3), "threshold": self.limit, "since": iso_utc(self.since),
            "message": self.message, "source": self.source,
            "silenced_until": iso_utc(self.silenced_until) if self.silenced_until is not None else None,
        }


class AlertWatch:
    def __init__(self, specs_dir: Path | None, data_dir: Path, events: EventLog | None = None,
                 write_events: bool = False, clock: Callable[[], float] = time.time,
                 thresholds: Sequence[Threshold] | None = None) -> None:
        self.specs_dir = specs_dir
        self.events = events
        self.write_events = write_events and events is not None
        self.silences = SilenceStore(data_dir, clock=clock)
        self.desired = DesiredStore(data_dir)
        self._clock = clock
        self._lock = threading.Lock()
        self._fixed = thresholds is not None
        self._thresholds: tuple[Threshold, ...] = tuple(thresholds or ())
        self._fingerprint: object = None
        self._checked_at = float("-inf")
        self._event_stamp: tuple[int, int] | None = None
        self._recent_events: list[Event] = []
        self._since: dict[str, float] = {}
        self._firing: tuple[FiringAlert, ...] = ()
        self._version = -1
        self.evaluations = 0  # for tests and benchmarks: how often the arithmetic ran
        self.spec_loads = 0  # ... and how often the specs were read

    # ------------------------------------------------------------------ per poll

    def update(self, state: PollState) -> tuple[FiringAlert, ...]:
        """Evaluate against a newer poll state (an older or equal one changes nothing).
        Safe to call from every poller thread."""
        with self._lock:
            if state.version <= self._version:
                return self._firing
            self._version = state.version
            now = self._clock()
            thresholds = self._current_thresholds(now)
            events = self._events(now) if any(t.kind in EVENT_KINDS for t in thresholds) else []
            desired = self.desired.counts() if any(t.kind == "replicas_missing" for t in thresholds) else None
            breaches = breached(thresholds, state, events, now, desired) if thresholds else ()
            self.evaluations += 1
            self._firing = self._track(breaches, now)
            return self._firing

    def current(self) -> tuple[FiringAlert, ...]:
        """What fires now, silences applied as of now (a silence set since the last poll shows)."""
        with self._lock:
            firing = self._firing
        active = self.silences.active()
        return tuple(_silenced(alert, active.get(alert.key)) for alert in firing)

    def counts(self) -> tuple[int, int]:
        """(firing and not silenced, silenced)."""
        firing = self.current()
        silenced = sum(1 for alert in firing if alert.silenced_until is not None)
        return len(firing) - silenced, silenced

    def to_json(self) -> list[dict[str, Any]]:
        return [alert.to_json() for alert in self.current()]

    @property
    def threshold_count(self) -> int:
        return len(self._thresholds)

    # ------------------------------------------------------------------ inside

    def _track(self, breaches: Sequence[Breach], now: float) -> tuple[FiringAlert, ...]:
        firing: list[FiringAlert] = []
        keys: set[str] = set()
        for breach in breaches:
            t = breach.threshold
            key = alert_key(t.alert, breach.subject)
            if key in keys:
                continue
            keys.add(key)
            if key not in self._since:
                self._since[key] = now
                self._write("alert_firing", t, breach.subject, f"{t.alert} firing: {breach.message}",
                            {"alert": t.alert, "value": breach.value, "threshold": t.limit, "severity": t.severity})
            firing.append(FiringAlert(t.alert, t.severity, t.workload, breach.subject, breach.value, t.limit,
                                      self._since[key], breach.message, t.source))
        for key in [k for k in self._since if k not in keys]:
            alert, _, subject = key.partition("/")
            since = self._since.pop(key)
            self._write("alert_resolved", None, subject, f"{alert} resolved after {now - since:.0f} s: {subject}",
                        {"alert": alert}, workload=None)
        return tuple(sorted(firing, key=lambda a: (a.severity != "critical", a.alert, a.subject)))

    def _write(self, kind: str, threshold: Threshold | None, subject: str, message: str,
               details: dict[str, Any], workload: str | None = None) -> None:
        if not self.write_events or self.events is None:
            return
        try:
            self.events.record(kind, message, workload=threshold.workload if threshold else workload,
                               target=subject, details=details)
        except OSError as exc:  # the console keeps showing alerts when the log cannot be written
            log.warning("the event log cannot be written: %s", exc)

    def _current_thresholds(self, now: float) -> tuple[Threshold, ...]:
        if self._fixed or self.specs_dir is None or now - self._checked_at < SPEC_CHECK_SECONDS:
            return self._thresholds
        self._checked_at = now
        files = spec_files([self.specs_dir]) if self.specs_dir.exists() else []
        stamps = tuple((path, _stamp(path)) for path in files)
        if stamps != self._fingerprint:
            self._fingerprint = stamps
            self.spec_loads += 1
            documents: list[Document] = []
            for path in files:
                try:
                    documents += load_file(path).documents  # documents with errors are left out
                except OSError as exc:
                    log.warning("%s cannot be read for alerts: %s", path, exc)
            self._thresholds = thresholds_from_documents(documents)[0]
        return self._thresholds

    def _events(self, now: float) -> list[Event]:
        """The events of the longest counting window, re-read only when the log changed."""
        if self.events is None:
            return []
        try:
            info = os.stat(self.events.path)
            stamp = (info.st_mtime_ns, info.st_size)
        except OSError:
            return []
        if stamp != self._event_stamp:
            self._event_stamp = stamp
            try:
                self._recent_events = self.events.read(since=now - RESTART_WINDOW)
            except OSError as exc:
                log.warning("the event log cannot be read for alerts: %s", exc)
        return self._recent_events


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _silenced(alert: FiringAlert, silence: Any) -> FiringAlert:
    if silence is None:
        return alert
    return FiringAlert(alert.alert, alert.severity, alert.workload, alert.subject, alert.value, alert.limit,
                       alert.since, alert.message, alert.source, silence.until)
