"""Autoscaling live container workloads: horizontal decisions from live usage, executed
through the scheduler, and vertical limits changed in place.

Horizontal: utilization is `rtm.autoscaling.workload_utilization` (the one measure: running
replicas, cpu in millicores and memory working set against the request, else the limit).
`rtm.autoscaling.decide` makes the decision with the workload's history, which is kept per
workload in the data folder (`autoscaler/<workload>.json`, the `scale --state` format) so the
console and the agent share it; every read-modify-write of that file holds its lock, so a
scaling recorded by the console while the loop saves is never lost. A scaling goes through the
replica service (which also records the new desired count) and its event is recorded only
after the change succeeded.

Vertical: the usage seen at each evaluation (per replica) is kept in a rolling window;
`rtm.autoscaling.recommend_vertical` turns it into cpu and memory limits, applied to every
running replica in place by the Docker backend's `update_limits` (the swap limit moves with
the memory limit). Replicas created later get the spec's limits.

A workload that is a Docker Swarm service is measured over its running tasks (their containers
alone, read by id on the engines of their nodes), scaled by the service's replica count and
resized by a rolling update of the service (swarm_autoscaling.py); no loose container is added
for it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.base import BackendUnavailable
from backends.docker.desired import DesiredStore
from backends.docker.swarm.discovery import SwarmDiscovery
from backends.docker.swarm.services import ServiceState, SwarmServices
from backends.docker.swarm.task_stats import TaskStats
from backends.docker.replica_service import ScaleResult, workload_lock
from backends.docker.replicas import Replica
from backends.files import exclusive
from console.datadir import atomic_write, ensure_private_dir
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.engines import Engine, replica_service
from console.supervisor.gated_actions import RESIZE, SCALE, run_workload_change
from console.supervisor.supervised import Workload
from console.supervisor.swarm_autoscaling import (
    ServiceFinder,
    execute_service_resize,
    execute_service_scale,
    task_readings,
)
from rtm.autoscaling import (
    Decision,
    History,
    HistoryFormatError,
    ReplicaUsage,
    VerticalRecommendation,
    decide,
    recommend_vertical,
    workload_utilization,
)

log = logging.getLogger("rtm.supervisor.autoscaler")

DEFAULT_INTERVAL = 15.0  # seconds between evaluations (the HPA's sync period)
VERTICAL_WINDOW = 120  # usage readings kept per workload for vertical recommendations
HISTORY_FOLDER = "autoscaler"


# --- history in the data folder ----------------------------------------------------------------


def history_path(data_dir: Path, workload: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", workload)
    return Path(data_dir) / HISTORY_FOLDER / f"{safe}.json"


def load_history(path: Path) -> History:
    """The stored history; a missing file is a fresh one. A damaged file raises HistoryFormatError."""
    try:
        return History.from_text(path.read_text())
    except FileNotFoundError:
        return History()


def save_history(path: Path, history: History) -> None:
    ensure_private_dir(path.parent)
    atomic_write(path, history.to_text())


def update_history(path: Path, change: Callable[[History], History]) -> History:
    """Read, change and write the history under its lock: one writer at a time, so the loop,
    `scale --workload` and the console never lose each other's entries."""
    ensure_private_dir(path.parent)
    with exclusive(path.with_name(path.name + ".lock")):
        history = change(load_history(path))
        atomic_write(path, history.to_text())
    return history


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveUsage:
    """What the running replicas of a workload use now."""

    replicas: tuple[Replica, ...]  # every replica of the workload, any state
    cpu_millis: tuple[float, ...]  # per running replica with a reading
    memory_bytes: tuple[int, ...]
    metrics: dict[str, float] = field(default_factory=dict)  # utilization percent: cpu, memory
    service: ServiceState | None = None  # when the workload is a Swarm service (its tasks measured)

    @property
    def current_replicas(self) -> int:
        return self.service.replicas if self.service is not None else len(self.replicas)

    def limits(self) -> tuple[int | None, int | None]:
        """cpu millis and memory bytes of the limits now (the service's, else the first running replica's)."""
        if self.service is not None:
            return self.service.cpu_limit_millis, self.service.memory_limit_bytes
        return current_limits(self.replicas)


def measure(workload: Workload, engines: Sequence[Engine], service: SwarmServices | None = None,
            task_stats: TaskStats | None = None) -> LiveUsage:
    """Usage of the workload's running replicas, from each engine's stats sampler; of its
    running tasks when `service` runs it (read by `task_stats`, which keeps their CPU
    baselines between two measures)."""
    if service is not None:
        state = service.state(workload.name)
        stats = task_stats or TaskStats()
        try:
            cpu_readings, memory_readings = task_readings(service, state, stats)
        finally:
            if task_stats is None:
                stats.close()
        usage = [ReplicaUsage(True, c, m) for c, m in zip(cpu_readings, memory_readings)]
        return LiveUsage((), tuple(cpu_readings), tuple(memory_readings), workload_utilization(usage, workload.cpu, workload.memory), state)
    replicas = tuple(replica_service(engines).survey(workload.name).of(workload.name))
    cpu: list[float] = []
    memory: list[int] = []
    for engine in engines:
        mine = [r for r in replicas if r.engine == engine.name and r.running]
        if not mine:
            continue
        try:
            stats = engine.container_stats()
        except BackendUnavailable:
            continue
        for replica in mine:
            info = stats.get(replica.id)
            if info is None or info.cpu_ratio is None:
                continue
            cpu.append(info.cpu_ratio * 1000)
            memory.append(info.memory_working_set_bytes)
    usage = [ReplicaUsage(True, c, m) for c, m in zip(cpu, memory)]
    return LiveUsage(replicas, tuple(cpu), tuple(memory), workload_utilization(usage, workload.cpu, workload.memory))


def current_limits(replicas: Sequence[Replica]) -> tuple[int | None, int | None]:
    """cpu millis and memory bytes of the first running replica's limits (None = no limit)."""
    running = [r for r in replicas if r.running] or list(replicas)
    if not running:
        return None, None
    resources = running[0].resources
    cpu = resources.get("NanoCpus", 0) // 1_000_000 or None
    memory = resources.get("Memory", 0) or None
    return cpu, memory


# --- executing ---------------------------------------------------------------------------------


def execute_scale(workload: Workload, engines: Sequence[Engine], gate: ActionGate, events: EventLog,
                  current: int, target: int, reason: str, desired: DesiredStore | None = None,
                  question: str | None = None) -> tuple[ScaleResult | None, str]:
    """Scale through the gate and the replica service (`desired` records the new count); the
    event log gets the outcome. (None, why) when it did not happen. A `question` is asked
    first (`--yes` answers it; without a terminal the scale is refused)."""
    service = replica_service(engines, desired)

    def outcome(done: ScaleResult) -> tuple[str, dict[str, Any]]:
        changes = [f"+{name}" for name in done.created] + [f"-{name}" for name in done.removed]
        return (f"{done.before} -> {done.after} replicas ({', '.join(changes) or 'no change'}): {reason}",
                {"from": done.before, "to": done.after, "created": list(done.created), "removed": list(done.removed)})

    return run_workload_change(gate, events, SCALE, workload.name, {"from": current, "to": target, "reason": reason},
                               lambda: service.scale(workload.template, target), outcome,
                               destructive=target < current or question is not None, question=question)


def limits_to_set(recommendation: VerticalRecommendation) -> tuple[int | None, int | None]:
    """(cpu millis, memory bytes) to set; None leaves that limit as it is."""
    cpu = recommendation.cpu.recommended if recommendation.cpu.changes else None
    memory = recommendation.memory.recommended if recommendation.memory.changes else None
    return cpu, memory


def execute_resize(workload: Workload, engines: Sequence[Engine], gate: ActionGate, events: EventLog,
                   replicas: Sequence[Replica], recommendation: VerticalRecommendation) -> bool:
    cpu, memory = limits_to_set(recommendation)
    if cpu is None and memory is None:
        return False
    by_name = {engine.name: engine for engine in engines}
    running = [r for r in replicas if r.running and r.engine in by_name]

    def resize() -> list[str]:
        return [by_name[replica.engine].update_limits(replica.id, cpu, memory) for replica in running]

    result = gate.run(RESIZE.name, f"workload/{workload.name}", {"cpu_millis": cpu, "memory_bytes": memory}, resize)
    if not result.ok:
        events.record("scale_failed", result.message, workload=workload.name, target=f"workload/{workload.name}")
        return False
    reasons = "; ".join(r.reason for r in (recommendation.cpu, recommendation.memory) if r.changes)
    events.record("scale", f"limits changed in place on {len(running)} replicas: {reasons}",
                  workload=workload.name, target=f"workload/{workload.name}",
                  details={"vertical": recommendation.to_json(), "replicas": result.value})
    return True


def resize(workload: Workload, engines: Sequence[Engine], gate: ActionGate, events: EventLog, usage: LiveUsage,
           recommendation: VerticalRecommendation, service: SwarmServices | None) -> tuple[bool, str]:
    """The recommended limits: in place on standalone replicas, by a rolling update of a
    service. (done, what was done or why not)."""
    if service is None or usage.service is None:
        done = execute_resize(workload, engines, gate, events, usage.replicas, recommendation)
        return done, "limits changed in place" if done else "the limits were not changed (see the event log)"
    cpu, memory = limits_to_set(recommendation)
    if cpu is None and memory is None:
        return False, "no limit to change"
    reasons = "; ".join(r.reason for r in (recommendation.cpu, recommendation.memory) if r.changes)
    replaced, message = execute_service_resize(workload.name, service, gate, events, usage.service, cpu, memory, reasons)
    if replaced is None:
        return False, message
    return True, f"limits changed by a rolling update of service/{workload.name} on {usage.service.cluster}: replaced {replaced} tasks"


# --- the loop for one workload -----------------------------------------------------------------


class WorkloadAutoscaler:
    """Evaluates one workload every `interval` seconds; `tick(now)` does one evaluation if due."""

    def __init__(self, workload: Workload, engines: Sequence[Engine] | Any, gate: ActionGate, events: EventLog,
                 data_dir: Path, interval: float = DEFAULT_INTERVAL, swarm: SwarmDiscovery | None = None) -> None:
        """`swarm`: the control loops' shared discovery of Swarm managers (else one of its own)."""
        self.workload = workload
        self._engines = engines
        self.gate = gate
        self.events = events
        self.history_file = history_path(data_dir, workload.name)
        self.desired = DesiredStore(data_dir)
        self.services = ServiceFinder(swarm)
        self.task_stats = TaskStats()
        self.interval = interval
        self.last_run: float | None = None
        self.last_decision: Decision | None = None
        self.last_vertical: VerticalRecommendation | None = None
        self.last_metrics: dict[str, float] = {}
        self.last_error: str | None = None
        self._cpu_window: deque[float] = deque(maxlen=VERTICAL_WINDOW)
        self._memory_window: deque[int] = deque(maxlen=VERTICAL_WINDOW)
        self._lock = threading.Lock()

    def engines(self) -> list[Engine]:
        return list(self._engines() if callable(self._engines) else self._engines)

    def due(self, now: float) -> bool:
        return self.last_run is None or now >= self.last_run + self.interval

    def tick(self, now: float) -> None:
        if not self.due(now):
            return
        self.last_run = now
        with self._lock:
            try:
                self._evaluate(now)
                self.last_error = None
            except (BackendUnavailable, HistoryFormatError, OSError, ValueError) as error:
                self.last_error = str(error)
                log.warning("autoscaling %s: %s", self.workload.name, error)

    def _evaluate(self, now: float) -> None:
        engines = self.engines()
        service = self.services.holding(self.workload.name, engines)
        usage = measure(self.workload, engines, service, self.task_stats)
        self.last_metrics = usage.metrics
        self._cpu_window.extend(usage.cpu_millis)
        self._memory_window.extend(usage.memory_bytes)
        if self.workload.horizontal is not None and usage.current_replicas > 0:
            decisions: list[Decision] = []

            def evaluate(history: History) -> History:
                decision, history = decide(self.workload.horizontal, usage.current_replicas, usage.metrics, history, now, assume_applied=False)
                decisions.append(decision)
                return history

            update_history(self.history_file, evaluate)
            decision = self.last_decision = decisions[0]
            if decision.direction != "no_scale":
                done: Any
                if service is not None:
                    done, _message = execute_service_scale(self.workload.name, service, self.gate, self.events,
                                                           decision.current_replicas, decision.target_replicas, decision.reason)
                else:
                    done, _message = execute_scale(self.workload, engines, self.gate, self.events,
                                                   decision.current_replicas, decision.target_replicas, decision.reason, self.desired)
                if done is not None:
                    update_history(self.history_file, lambda h: h.record_event(now, decision.current_replicas, decision.target_replicas))
        if self.workload.vertical is not None and self._cpu_window:
            cpu_limit, memory_limit = usage.limits()
            recommendation = recommend_vertical(self.workload.vertical, list(self._cpu_window), list(self._memory_window), cpu_limit, memory_limit)
            self.last_vertical = recommendation
            if recommendation.changes:
                with workload_lock(self.workload.name):
                    if resize(self.workload, engines, self.gate, self.events, usage, recommendation, service)[0]:
                        # Limits changed: earlier readings were taken under the old ones.
                        self._cpu_window.clear()
                        self._memory_window.clear()

    def close(self) -> None:
        """Ends the statistics streams of the service's tasks, if any were opened."""
        self.task_stats.close()

    def state(self) -> dict[str, Any]:
        return {
            "workload": self.workload.name,
            "interval": self.interval,
            "last_run": self.last_run,
            "metrics": {k: round(v, 2) for k, v in self.last_metrics.items()},
            "decision": self.last_decision.to_json() if self.last_decision else None,
            "vertical": self.last_vertical.to_json() if self.last_vertical else None,
            "error": self.last_error,
        }
