"""The supervisor: the control loops of every workload in the specs folder, in threads.

Four loops, each a named daemon thread that stops when asked:

- "rtm-failover": every `tick` seconds, one survey of the engines that answer, then each
  workload's `WorkloadSupervisor.tick` (probes, detection, restarts, membership);
- "rtm-engines": pings every engine on the tightest `detection` settings of the specs; an
  engine declared failed is lost, and its replicas are started elsewhere by each workload;
- "rtm-autoscaler": each autoscaled workload's evaluation when due;
- "rtm-reconcile": every applied workload (the data folder's desired state, with or without
  policies) kept at its desired count, every detection interval (reconcile.py);
- "rtm-specs": reloads the specs when a file is added, removed or changed;
- "rtm-swarm": every second, a look at each Swarm cluster: what Swarm did becomes events, and
  the upstream members of balanced service workloads are their running tasks (swarm_watch.py).
  The failover loop leaves a workload that is a Swarm service to Swarm: no restart, replacement
  or rescheduling of its tasks.

Which engines are Swarm managers is found once for all of them (a SwarmDiscovery): the Swarm
loop, the autoscaler's service look-ups and the poll of each engine (when the engines' backends
are the poller's) share it, so each engine is asked `docker info` once per refresh.

A loop with nothing to look after sleeps long (a reload that brings work wakes it): an idle
console or agent should not wake up several times a second for nothing.

Nothing here stops a workload: `stop()` ends the loops and leaves every container running.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from backends.docker.swarm.discovery import SwarmDiscovery
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.autoscaler import DEFAULT_INTERVAL, WorkloadAutoscaler
from backends.docker.desired import DesiredStore
from backends.docker.replica_service import Fleet
from console.supervisor.engines import Engine, replica_service
from console.supervisor.workload_supervisor import WorkloadSupervisor
from console.supervisor.membership import UpstreamWriter
from console.supervisor.reconcile import Reconciler
from console.supervisor.swarm_watch import SwarmWatch
from console.supervisor.supervised import SpecLoad, Workload, load_workloads, specs_fingerprint
from rtm.kinds.failover import Detection
from rtm.recovery import Detector

log = logging.getLogger("rtm.supervisor")

DEFAULT_TICK = 0.5
ENGINE_PING_POLL = 0.2  # how often finished engine pings are collected
ENGINE_IDLE_WAIT = 1.0
IDLE_LOOP_WAIT = 10.0  # the failover and autoscaler loops with no workload to look after
SPEC_CHECK_SECONDS = 2.0
FIRST_SWARM_LOOK_WAIT = 5.0  # the failover loop's first tick waits this long to know which workloads are services


def engine_detection(workloads: Sequence[Workload]) -> Detection:
    """The tightest detection of the specs that name one (an engine serves every workload)."""
    named = [w.failover.detection for w in workloads if w.has_failover_spec]
    if not named:
        return Detection()
    return Detection(timeout=min(d.timeout for d in named), retries=min(d.retries for d in named),
                     interval=min(d.interval for d in named))


class EngineMonitor:
    """Detection of lost engines; `check(now)` starts due pings and records finished ones."""

    def __init__(self, engines: Sequence[Engine], events: EventLog, pool: ThreadPoolExecutor,
                 on_lost: Callable[[str, float, float], None]) -> None:
        self.engines = list(engines)
        self.events = events
        self.pool = pool
        self.on_lost = on_lost
        self.detection = Detection()
        self.detectors: dict[str, Detector] = {}
        self.first_failure: dict[str, float] = {}
        self._inflight: dict[str, tuple[Future, float]] = {}

    def configure(self, detection: Detection) -> None:
        if detection != self.detection:
            self.detection = detection
            self.detectors = {}

    def lost(self) -> set[str]:
        return {name for name, detector in self.detectors.items() if detector.failed}

    def check(self, now: float) -> float:
        """Start the pings that are due, record the ones that finished; returns the seconds
        until the next ping is due (0 when one is due already)."""
        for engine in self.engines:
            detector = self.detectors.get(engine.name) or Detector(self.detection.interval, self.detection.timeout, self.detection.retries)
            self.detectors[engine.name] = detector
            running = self._inflight.get(engine.name)
            if running is not None:
                future, started = running
                if not future.done():
                    continue
                del self._inflight[engine.name]
                self._record(engine.name, bool(future.result()), started)
            elif detector.due(now):
                self._inflight[engine.name] = (self.pool.submit(engine.ping, self.detection.timeout), now)
        next_due = min((d.last_check + d.interval for d in self.detectors.values() if d.last_check is not None),
                       default=now + self.detection.interval)
        return max(0.0, next_due - now)

    @property
    def pinging(self) -> bool:
        return bool(self._inflight)

    def _record(self, name: str, ok: bool, at: float) -> None:
        detector, change = self.detectors[name].record(ok, at)
        self.detectors[name] = detector
        if not ok:
            self.first_failure.setdefault(name, at)
        if change == "failed":
            since = self.first_failure.get(name, at)
            self.events.record("backend_down", f"engine {name} did not answer {detector.failures} checks in a row: lost",
                               target=f"engine/{name}", details={"first_failure": since})
            self.on_lost(name, since, time.time())
        elif change == "recovered":
            self.events.record("backend_up", f"engine {name} answers again", target=f"engine/{name}")
        if ok:
            self.first_failure.pop(name, None)

    def state(self) -> dict[str, Any]:
        return {name: {"lost": d.failed, "failures": d.failures, "last_check": d.last_check} for name, d in self.detectors.items()}


class Supervisor:
    def __init__(
        self,
        specs_dir: Path,
        engines: Sequence[Engine],
        gate: ActionGate,
        events: EventLog,
        data_dir: Path,
        *,
        upstream_path: Path | None = None,
        reload_command: Sequence[str] | None = None,
        tolerance: float | None = None,
        autoscale_interval: float = DEFAULT_INTERVAL,
        tick: float = DEFAULT_TICK,
        reconcile_interval: float | None = None,
    ) -> None:
        """`reconcile_interval`: seconds between two reconciliation passes (default: the
        tightest detection interval of the specs, 10 s without one)."""
        self.specs_dir = Path(specs_dir)
        self.engines = list(engines)
        self.gate = gate
        self.events = events
        self.data_dir = Path(data_dir)
        self.tolerance = tolerance
        self.autoscale_interval = autoscale_interval
        self.tick_seconds = tick
        self.membership = UpstreamWriter(upstream_path, reload_command, gate, events)
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="rtm-probe")
        self.supervisors: dict[str, WorkloadSupervisor] = {}
        self.autoscalers: dict[str, WorkloadAutoscaler] = {}
        self.monitor = EngineMonitor(self.engines, events, self.pool, self._engine_lost)
        self.reconcile_interval = reconcile_interval
        self.reconciler = Reconciler(DesiredStore(self.data_dir), self.live_engines, gate, events, self.monitor.lost, self._rescheduled)
        self.specs = SpecLoad({}, (), ())
        self.swarm_roles = SwarmDiscovery(lambda: [engine.backend for engine in self.live_engines()])
        self.swarm = SwarmWatch(self.live_engines, events, self.membership, lambda: self.specs.workloads, self.pool, self.swarm_roles)
        for engine in self.engines:  # the poll of a backend shared with the poller takes the engine's role from here
            engine.backend.swarm.follow(self.swarm_roles)
        self.loops: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        # The loops sleep on this; stop() and a reload wake them (a reload may give idle loops
        # work). `_reloads` counts reloads so a loop busy during one does not then sleep on.
        self._wake = threading.Condition()
        self._reloads = 0
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    # --- specs ---------------------------------------------------------------------------------

    def reload(self) -> SpecLoad:
        """Read the specs folder and start, update or drop the workloads' loops."""
        specs = load_workloads(self.specs_dir, self.tolerance)
        with self._lock:
            self.specs = specs
            for problem in specs.problems:
                log.warning("spec skipped: %s", problem)
            for name in [n for n in self.supervisors if n not in specs.workloads or not specs.workloads[n].supervises_health]:
                del self.supervisors[name]
                self.membership.forget(name)
            for name in [n for n in self.autoscalers if n not in specs.workloads or not specs.workloads[n].autoscaled]:
                self.autoscalers.pop(name).close()
            for name, workload in specs.workloads.items():
                if workload.supervises_health:
                    if name in self.supervisors:
                        self.supervisors[name].update_workload(workload)
                    else:
                        self.supervisors[name] = WorkloadSupervisor(workload, self.live_engines, self.gate, self.events, self.membership, self.pool)
                if workload.autoscaled:
                    if name in self.autoscalers:
                        self.autoscalers[name].workload = workload
                    else:
                        self.autoscalers[name] = WorkloadAutoscaler(workload, self.live_engines, self.gate, self.events, self.data_dir,
                                                                    self.autoscale_interval, self.swarm_roles)
            self.monitor.configure(engine_detection(list(specs.workloads.values())))
        log.info("specs loaded from %s: %d workloads supervised, %d autoscaled, %d problems",
                 self.specs_dir, len(self.supervisors), len(self.autoscalers), len(specs.problems))
        with self._wake:
            self._reloads += 1
            self._wake.notify_all()
        return specs

    def live_engines(self) -> list[Engine]:
        lost = self.monitor.lost()
        return [engine for engine in self.engines if engine.name not in lost]

    # --- loops ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.reload()
        for name, body in (("rtm-failover", self._failover_loop), ("rtm-engines", self._engine_loop),
                           ("rtm-autoscaler", self._autoscaler_loop), ("rtm-reconcile", self._reconcile_loop),
                           ("rtm-specs", self._specs_loop), ("rtm-swarm", self.swarm.tick)):
            thread = threading.Thread(target=self._run, args=(name, body), name=name, daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, name: str, body: Callable[[float], float]) -> None:
        """Call `body(now)` until stopped; it returns how long to wait before the next call."""
        self.loops[name] = {"runs": 0, "last_run": None, "last_error": None}
        while not self._stop.is_set():
            now = time.time()
            reloads = self._reloads
            try:
                wait = body(now)
                self.loops[name]["last_error"] = None
            except Exception as error:  # a loop never dies: log it and go on
                log.exception("loop %s failed", name)
                self.loops[name]["last_error"] = str(error)
                wait = 1.0
            self.loops[name]["runs"] += 1
            self.loops[name]["last_run"] = now
            with self._wake:
                if not self._stop.is_set() and self._reloads == reloads:
                    self._wake.wait(wait)

    def _failover_loop(self, now: float) -> float:
        with self._lock:
            supervisors = list(self.supervisors.values())
        if supervisors:
            self.swarm.first_look.wait(FIRST_SWARM_LOOK_WAIT)
            services = self.swarm.services  # Swarm restarts and reschedules their tasks itself
            supervisors = [s for s in supervisors if s.workload.name not in services]
            fleet = replica_service(self.live_engines()).survey()
            lost = self.monitor.lost()
            fleet = Fleet(fleet.replicas, {**fleet.unreachable, **{name: "lost" for name in lost}})
            for supervisor in supervisors:
                supervisor.tick(fleet, time.time())
            return self.tick_seconds
        return IDLE_LOOP_WAIT  # nothing to supervise: a reload that adds a workload wakes it

    def _engine_loop(self, now: float) -> float:
        until_due = self.monitor.check(now)
        if self.monitor.pinging:
            return min(ENGINE_PING_POLL, self.tick_seconds)  # look again soon for the answers
        # Nothing in flight: sleep until the next ping is due (at most ENGINE_IDLE_WAIT, so a
        # tighter detection from reloaded specs applies soon) instead of waking 5 times a second.
        return min(until_due, ENGINE_IDLE_WAIT)

    def _engine_lost(self, engine: str, since: float, now: float) -> None:
        with self._lock:
            supervisors = list(self.supervisors.values())
        for supervisor in supervisors:
            supervisor.engine_lost(engine, since, now)

    def _autoscaler_loop(self, now: float) -> float:
        with self._lock:
            autoscalers = list(self.autoscalers.values())
        for autoscaler in autoscalers:
            if self._stop.is_set():
                break
            autoscaler.tick(time.time())
        return self.tick_seconds if autoscalers else IDLE_LOOP_WAIT

    def _reconcile_loop(self, now: float) -> float:
        self.reconciler.tick()
        return self.reconcile_interval or self.monitor.detection.interval

    def _rescheduled(self) -> set[str]:
        """Workloads whose failover supervisor starts a lost engine's replicas elsewhere."""
        with self._lock:
            return set(self.supervisors)

    def _specs_loop(self, now: float) -> float:
        if specs_fingerprint(self.specs_dir) != self.specs.fingerprint:
            specs = self.reload()
            self.events.record("specs_reloaded", f"specs reloaded from {self.specs_dir}: {len(specs.workloads)} workloads",
                               details={"problems": list(specs.problems)})
        return SPEC_CHECK_SECONDS

    def stop(self, timeout: float = 5.0) -> bool:
        """End the loops (workloads keep running); True when every thread ended in time."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for autoscaler in self.autoscalers.values():
                autoscaler.close()
        for engine in self.engines:
            engine.backend.swarm.follow(None)
            try:
                engine.close()
            except Exception:  # closing is best effort
                log.debug("closing %s failed", engine.name, exc_info=True)
        return not any(thread.is_alive() for thread in self._threads)

    # --- state -----------------------------------------------------------------------------------

    def state(self, recent_events: int = 50) -> dict[str, Any]:
        with self._lock:
            supervisors = list(self.supervisors.values())
            autoscalers = list(self.autoscalers.values())
        return {
            "pid": os.getpid(),
            "specs_dir": str(self.specs_dir),
            "spec_problems": list(self.specs.problems),
            "loops": {name: dict(info) for name, info in self.loops.items()},
            "engines": self.monitor.state(),
            "workloads": [s.state() for s in supervisors],
            "autoscaling": [a.state() for a in autoscalers],
            "reconcile": self.reconciler.state(),
            "swarm": self.swarm.state(),
            "upstream": {"path": str(self.membership.path) if self.membership.path else None, "error": self.membership.last_error},
            "events": [event.to_record() for event in self.events.read(limit=recent_events)],
        }
