"""Cron triggers: fire each function's schedules on time, by `rtm.cron.next_fire`.

The clock is injected (an aware UTC datetime), so tests move time by hand and call `tick()` or
`wake()`. Each job knows its next fire time; `tick()` fires every job whose time has come and
computes its next one from the clock's now. A job that missed several fire times (the machine
slept, the host was down) fires once, like EventBridge, which does not catch up either.
A job first seen (a new deploy, a start) fires at its next time after now, never retroactively;
a redeploy that keeps a schedule keeps its next fire time.

The loop thread ticks, runs `on_tick` (the runtime's upkeep: noticing deploys, stopping idle
workers), then sleeps until the next fire time or at most `max_sleep` seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from rtm.cron import Schedule, next_fire, parse_schedule

logger = logging.getLogger("rtm.localfn.scheduler")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class CronJob:
    function: str
    schedule: str  # as written in the spec
    rule_name: str  # "NAME-cron-1": the rule's name in the Scheduled Event

    @property
    def trigger(self) -> str:
        return f"cron {self.schedule}"


class CronScheduler:
    def __init__(
        self,
        fire: Callable[[CronJob, datetime], None],
        clock: Callable[[], datetime] = utc_now,
        on_tick: Callable[[], None] | None = None,
        max_sleep: float = 1.0,
    ) -> None:
        self._fire = fire
        self._clock = clock
        self._on_tick = on_tick
        self._max_sleep = max_sleep
        self._lock = threading.Lock()
        self._jobs: dict[CronJob, tuple[Schedule, datetime | None]] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def set_jobs(self, jobs: Iterable[CronJob]) -> None:
        """The jobs to run from now on; unchanged jobs keep their next fire time."""
        now = self._clock()
        with self._lock:
            kept = {}
            for job in jobs:
                if job in self._jobs:
                    kept[job] = self._jobs[job]
                else:
                    schedule = parse_schedule(job.schedule)
                    kept[job] = (schedule, next_fire(schedule, now))
            self._jobs = kept
        self._wake.set()

    def jobs(self) -> dict[CronJob, datetime | None]:
        """Each job and its next fire time (None: the schedule never fires again)."""
        with self._lock:
            return {job: due for job, (_schedule, due) in self._jobs.items()}

    def tick(self) -> list[tuple[CronJob, datetime]]:
        """Fire every job that is due by the clock; returns (job, scheduled time) fired."""
        now = self._clock()
        due: list[tuple[CronJob, datetime]] = []
        with self._lock:
            for job, (schedule, when) in list(self._jobs.items()):
                if when is not None and when <= now:
                    due.append((job, when))
                    self._jobs[job] = (schedule, next_fire(schedule, now))
        for job, when in due:
            try:
                self._fire(job, when)
            except Exception:  # one failing job must not stop the others or the loop
                logger.exception("firing %s %s failed", job.function, job.trigger)
        return due

    def seconds_until_next(self) -> float | None:
        now = self._clock()
        with self._lock:
            times = [when for _schedule, when in self._jobs.values() if when is not None]
        if not times:
            return None
        return max(0.0, (min(times) - now).total_seconds())

    # ------------------------------------------------------------------------------ the loop

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rtm-localfn-cron", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Tick now (after the clock was moved, or jobs changed)."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._on_tick is not None:
                try:
                    self._on_tick()
                except Exception:
                    logger.exception("runtime upkeep failed")
            self.tick()
            until = self.seconds_until_next()
            sleep = self._max_sleep if until is None else min(self._max_sleep, until)
            self._wake.wait(sleep)
            self._wake.clear()
