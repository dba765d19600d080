"""One poller for every configured backend: worker threads in, immutable snapshots out.

Threading model
- One named daemon worker thread per backend ("rtm-poller:<name>") runs collect, publish,
  reschedule: the next poll of a backend is due `interval` seconds after its previous poll
  ended, so a slow backend is polled less often rather than piling up calls, and never delays
  another backend.
- One watchdog thread ("rtm-poller-watchdog") marks a backend whose poll() has run longer than
  `poll_timeout` as unreachable, so consumers see a hung backend as down while its worker
  waits; when the call finally returns, its result is published as usual.
- The published `PollState` is immutable and replaced as a whole under a lock; `latest()` is a
  reference read, so the exporter's scrape never waits on a backend.
- Subscribers are called from the worker thread that published, outside the lock, one after
  another; an exception in one is logged and the others still run. Different backends publish
  from different threads, so a subscriber may be called concurrently and should compare
  `PollState.version` if it keeps only the newest state.
- `stop()` wakes every waiting worker and joins them within its timeout. A worker stuck inside
  a poll() that never returns cannot be interrupted: it is a daemon thread, so it is abandoned
  (the log names it) and never publishes again.

Scheduling waits use real time (Condition.wait); the injectable `clock` stamps polls, so ages
are computed on the same clock the caller passes to `BackendState.age(now)`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from backends.base import Availability, Backend, BackendKind, BackendUnavailable, one_line
from backends.records import FrozenDict, KindSnapshot, Record

log = logging.getLogger("rtm.poller")

MIN_INTERVAL = 0.5  # seconds; the console slows hidden panes, never speeds past this


@dataclass(frozen=True)
class BackendState:
    """What the poller knows about one backend."""

    name: str
    kind: BackendKind
    availability: Availability
    snapshot: KindSnapshot | None = None  # last good snapshot, kept while the backend fails
    polled_at: float | None = None  # clock time the last good snapshot was published
    error: str | None = None  # one line: why the latest attempt failed; None after a success
    polls: int = 0  # finished poll attempts, good or failed
    interval: float = 2.0  # current cadence

    def age(self, now: float) -> float | None:
        """Seconds since the last good snapshot (None if there never was one)."""
        return None if self.polled_at is None else max(0.0, now - self.polled_at)

    @property
    def settled(self) -> bool:
        """The backend has answered at least once, or been declared failed or hung."""
        return self.polls > 0 or self.error is not None


@dataclass(frozen=True)
class PollState:
    """Everything polled so far: one immutable value, replaced as a whole on each publish."""

    backends: Mapping[str, BackendState] = field(default_factory=FrozenDict)  # configured order
    version: int = 0  # increases with every publish

    def items(self, kind: BackendKind) -> tuple[Record, ...]:
        """The records of every backend of this kind, from their last good snapshots."""
        return tuple(
            item
            for state in self.backends.values()
            if state.kind == kind and state.snapshot is not None
            for item in state.snapshot.items
        )

    def of_kind(self, kind: BackendKind) -> tuple[BackendState, ...]:
        return tuple(state for state in self.backends.values() if state.kind == kind)


@dataclass
class _Worker:
    """Mutable scheduling state of one backend; guarded by Poller._lock."""

    backend: Backend
    interval: float
    wake: threading.Condition  # its worker waits on it: a refresh, a new interval, stop
    thread: threading.Thread | None = None
    refresh_requested: bool = False
    poll_started: float | None = None  # time.monotonic() while a poll() runs
    poll_number: int = 0  # counts started polls, so a late watchdog verdict can be dropped
    flagged_hung: bool = False  # the watchdog already published this poll as hung
    last_error: str | None = None  # to log a traceback once per distinct error


Subscriber = Callable[[PollState], None]


class Poller:
    def __init__(
        self,
        backends: Sequence[Backend],
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        poll_timeout: float = 30.0,
    ) -> None:
        names = [backend.name for backend in backends]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"backend names must be unique; repeated: {', '.join(duplicates)}")
        self.clock = clock
        self.poll_timeout = poll_timeout
        interval = self._interval = max(MIN_INTERVAL, interval)
        # One lock for the scheduling state, and a condition per waiter on it, so that an
        # event wakes only the thread it concerns: every wake-up of an idle thread costs CPU,
        # and the console's idle budget is small.
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)  # a poll ended: wait_ready() looks again
        self._watchdog_wake = threading.Condition(self._lock)  # a poll started while it was idle
        self._watchdog_idle = True  # no poll running when the watchdog last looked
        self._workers = {backend.name: _Worker(backend, interval, threading.Condition(self._lock)) for backend in backends}
        self._state_lock = threading.Lock()  # swapping the published state
        self._state = PollState(
            FrozenDict(
                (backend.name, _pending_state(backend, interval)) for backend in backends
            )
        )
        self._subscribers: tuple[Subscriber, ...] = ()
        self._started = False
        self._stopping = False
        self._watchdog: threading.Thread | None = None

    # ----------------------------------------------------------------- public interface

    def start(self) -> None:
        with self._lock:
            if self._started:
                raise RuntimeError("the poller was already started (it cannot be restarted)")
            self._started = True
            for worker in self._workers.values():
                self._start_worker(worker)
            self._watchdog = threading.Thread(
                target=self._watch, name="rtm-poller-watchdog", daemon=True
            )
            self._watchdog.start()

    def add(self, backends: Sequence[Backend]) -> None:
        """Poll more backends from now on, at the poller's interval; each is published as
        pending at once (the console adds all but the host's right after its first paint)."""
        with self._lock:
            names = [backend.name for backend in backends]
            repeated = sorted({name for name in names if name in self._workers or names.count(name) > 1})
            if repeated:
                raise ValueError(f"backend names must be unique; repeated: {', '.join(repeated)}")
            if self._stopping:
                return
            added = [_Worker(backend, self._interval, threading.Condition(self._lock)) for backend in backends]
            self._workers.update((worker.backend.name, worker) for worker in added)
        for worker in added:
            self._update_state(worker.backend.name, lambda _absent, b=worker.backend: _pending_state(b, self._interval))
        with self._lock:
            if self._started and not self._stopping:
                for worker in added:
                    self._start_worker(worker)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop every worker; return True if all ended within `timeout` seconds.

        Workers stuck in a poll() that does not return are abandoned (daemon threads) and logged.
        """
        with self._lock:
            self._stopping = True
            for worker in self._workers.values():
                worker.wake.notify_all()
            self._watchdog_wake.notify_all()
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        threads = [w.thread for w in self._workers.values()] + [self._watchdog]
        for thread in threads:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [name for name, w in self._workers.items() if w.thread is not None and w.thread.is_alive()]
        for name in stuck:
            log.warning(
                "backend %s: poll() did not return within the %g s stop timeout; "
                "its worker thread is abandoned (daemon) and will not publish",
                name,
                timeout,
            )
        return not stuck

    def _start_worker(self, worker: _Worker) -> None:
        if worker.thread is not None:  # started by start() while add() published it
            return
        name = worker.backend.name
        worker.thread = threading.Thread(target=self._run, args=(worker,), name=f"rtm-poller:{name}", daemon=True)
        worker.thread.start()

    def refresh_now(self, backend_name: str | None = None) -> None:
        """Poll now (or right after the poll in progress), instead of waiting for the cadence."""
        with self._lock:
            for worker in self._select(backend_name):
                worker.refresh_requested = True
                worker.wake.notify_all()

    def set_interval(self, backend_name: str, seconds: float) -> float:
        """Change one backend's cadence (at least MIN_INTERVAL); returns the interval applied.

        Takes effect at once: the next poll is due `seconds` after the previous one ended.
        """
        applied = max(MIN_INTERVAL, float(seconds))
        with self._lock:
            (worker,) = self._select(backend_name)
            worker.interval = applied
            worker.wake.notify_all()
        self._update_state(backend_name, lambda state: replace(state, interval=applied))
        return applied

    def latest(self) -> PollState:
        return self._state  # a reference read: never waits on a backend

    def ready(self) -> bool:
        """Every configured backend has been polled at least once (success or failure)."""
        return all(state.settled for state in self._state.backends.values())

    def wait_ready(self, timeout: float) -> bool:
        """Block until ready() or until `timeout` seconds pass; returns ready()."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.ready():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(state)` after each publish; returns a function that unsubscribes."""
        with self._state_lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._state_lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    # ------------------------------------------------------------------- worker threads

    def _run(self, worker: _Worker) -> None:
        name = worker.backend.name
        while True:
            with self._lock:
                if self._stopping:
                    return
                worker.refresh_requested = False  # this poll serves any refresh asked so far
                worker.poll_started = time.monotonic()
                worker.poll_number += 1
                worker.flagged_hung = False
                if self._watchdog_idle:  # else it wakes at an earlier deadline and sees this poll
                    self._watchdog_idle = False
                    self._watchdog_wake.notify_all()
            outcome = self._poll_once(worker)
            with self._lock:
                worker.poll_started = None
                if self._stopping:
                    return
            self._update_state(name, outcome)
            with self._cond:
                self._cond.notify_all()  # wake wait_ready()
                self._wait_until_due(worker, ended=time.monotonic())

    def _wait_until_due(self, worker: _Worker, ended: float) -> None:
        """Under self._lock: sleep until `interval` after `ended`, a refresh, or stop."""
        while not (self._stopping or worker.refresh_requested):
            remaining = ended + worker.interval - time.monotonic()
            if remaining <= 0:
                return
            worker.wake.wait(remaining)

    def _poll_once(self, worker: _Worker) -> Callable[[BackendState], BackendState]:
        """Run one poll; return how it changes the backend's published state."""
        backend = worker.backend
        try:
            snapshot = backend.poll()
            availability = _availability_after_success(backend)
        except BackendUnavailable as exc:
            unavailable = exc.availability  # `exc` is unbound when the except block ends
            error = one_line(unavailable.cause or unavailable.describe())
            if error != worker.last_error:
                log.info("backend %s: %s", backend.name, unavailable.describe())
            worker.last_error = error
            return lambda state: _failed(state, error, unavailable)
        except Exception as exc:  # a bug in the backend: log it, show one line, carry on
            error = one_line(f"{type(exc).__name__}: {exc}")
            if error != worker.last_error:
                log.exception("backend %s: poll() failed", backend.name)
            else:
                log.debug("backend %s: poll() failed again: %s", backend.name, error)
            worker.last_error = error
            return lambda state: _failed(state, error, hint="see the debug log for the traceback")
        if worker.last_error is not None:
            log.info("backend %s: answering again (last error: %s)", backend.name, worker.last_error)
        worker.last_error = None
        polled_at = self.clock()
        return lambda state: replace(
            state,
            availability=availability,
            snapshot=snapshot,
            polled_at=polled_at,
            error=None,
            polls=state.polls + 1,
        )

    def _watch(self) -> None:
        """Publish a poll that outlives poll_timeout as a failure, once per hung poll."""
        while True:
            hung: list[_Worker] = []
            with self._lock:
                if self._stopping:
                    return
                now = time.monotonic()
                next_deadline: float | None = None
                for worker in self._workers.values():
                    if worker.poll_started is None or worker.flagged_hung:
                        continue
                    deadline = worker.poll_started + self.poll_timeout
                    if deadline <= now:
                        worker.flagged_hung = True
                        hung.append(worker)
                    elif next_deadline is None or deadline < next_deadline:
                        next_deadline = deadline
                if not hung:
                    self._watchdog_idle = next_deadline is None
                    self._watchdog_wake.wait(None if next_deadline is None else next_deadline - now)
                    continue
            for worker in hung:
                self._publish_hung(worker, worker.poll_number)

    def _publish_hung(self, worker: _Worker, poll_number: int) -> None:
        name, endpoint = worker.backend.name, worker.backend.endpoint
        error = f"no answer: poll() has not returned after {self.poll_timeout:g} s"
        hint = f"check that {endpoint} answers"

        def mark_hung(state: BackendState) -> BackendState:
            with self._lock:
                # The poll may have returned (and published) since the watchdog looked.
                still_running = worker.poll_started is not None and worker.poll_number == poll_number
            if not still_running:
                return state
            log.warning("backend %s: %s (still waiting for it)", name, error)
            return _failed(state, error, hint=hint, count=False)

        self._update_state(name, mark_hung)
        with self._cond:
            self._cond.notify_all()  # wake wait_ready(): a hung first poll settles the backend

    # ---------------------------------------------------------------------- publishing

    def _update_state(self, name: str, change: Callable[[BackendState], BackendState]) -> None:
        with self._state_lock:
            current = self._state
            backends = dict(current.backends)
            changed = change(backends.get(name))  # type: ignore[arg-type]  (None: a backend being added)
            if changed is backends.get(name):
                return
            backends[name] = changed
            published = PollState(FrozenDict(backends), current.version + 1)
            self._state = published
            subscribers = self._subscribers
        for callback in subscribers:
            try:
                callback(published)
            except Exception:
                log.exception("poller subscriber %r failed; the others still run", callback)

    def _select(self, backend_name: str | None) -> list[_Worker]:
        if backend_name is None:
            return list(self._workers.values())
        try:
            return [self._workers[backend_name]]
        except KeyError:
            known = ", ".join(self._workers) or "none"
            raise KeyError(f"no backend named {backend_name!r} (configured: {known})") from None


def _pending_state(backend: Backend, interval: float) -> BackendState:
    return BackendState(
        name=backend.name,
        kind=backend.kind,
        availability=Availability(backend=backend.name, endpoint=backend.endpoint, state="pending"),
        interval=interval,
    )


def _failed(
    state: BackendState,
    error: str,
    availability: Availability | None = None,
    hint: str = "",
    count: bool = True,
) -> BackendState:
    """The state after a failed (count=True) or still running (count=False) poll; the last
    good snapshot is kept, so consumers can still show it, marked stale."""
    if availability is None:
        previous = state.availability
        availability = Availability(
            backend=previous.backend,
            endpoint=previous.endpoint,
            state="unreachable",
            cause=error,
            hint=hint,
            sandbox=previous.sandbox,
            read_only=previous.read_only,
        )
    return replace(state, availability=availability, error=error, polls=state.polls + int(count))


def _availability_after_success(backend: Backend) -> Availability:
    try:
        return backend.availability()
    except Exception as exc:  # the poll worked, so the backend is reachable whatever this says
        log.debug("backend %s: availability() failed after a good poll: %s", backend.name, exc)
        return Availability(backend=backend.name, endpoint=backend.endpoint, state="connected")
