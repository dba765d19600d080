"""Autoscaling a workload that is a Docker Swarm service (docs/swarm.md#scale).

- Measured over the service's running tasks, with the statistics of the configured engines of
  the cluster's nodes (a task on a node whose engine is not configured has no reading and is
  left out, as a replica without a reading is).
- Scaled by the service's replica count alone, on its stored spec with its version index: the
  running tasks are kept, and the service's spec is the desired count (no desired-state
  record, so reconciliation leaves services alone).
- Resized by one update of the service's limits: a rolling update, Swarm replaces the tasks
  one at a time, so the gate's question says so.

Every change goes through the action gate and is recorded in the event log once it succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backends.base import BackendUnavailable
from backends.docker.swarm.services import ServiceState, SwarmServices
from backends.docker.swarm.target import SwarmTarget
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.gated_actions import RESIZE, SCALE

REFRESH_EVERY = 20  # look-ups between two searches for clusters among the engines (`docker info` each)


class ServiceFinder:
    """Which cluster runs a workload's service, if any. The clusters are found once per set of
    engines and again every REFRESH_EVERY look-ups (an engine may join a swarm); a look-up
    then costs one service listing per cluster, nothing when no engine is a manager."""

    def __init__(self) -> None:
        self._engines: tuple[str, ...] | None = None
        self._target: SwarmTarget | None = None
        self._lookups = 0

    def holding(self, workload: str, engines: Sequence[Any]) -> SwarmServices | None:
        names = tuple(engine.name for engine in engines)
        if self._target is None or names != self._engines or self._lookups % REFRESH_EVERY == 0:
            self._target = SwarmTarget([engine.backend for engine in engines])
            self._engines = names
        self._lookups += 1
        return self._target.holding(workload)


def task_readings(services: SwarmServices, state: ServiceState) -> tuple[list[float], list[int]]:
    """cpu millicores and memory working set of each running task an engine of the cluster lists."""
    stats: dict[str, Any] = {}
    for backend in [services.cluster.manager, *services.cluster.workers]:
        try:
            stats.update((info.id, info) for info in backend.collect())
        except BackendUnavailable:
            continue
    cpu: list[float] = []
    memory: list[int] = []
    for task in state.running:
        info = stats.get(task.container_id)
        if info is None or info.cpu_ratio is None:
            continue
        cpu.append(info.cpu_ratio * 1000)
        memory.append(info.memory_working_set_bytes)
    return cpu, memory


def rolling_update_note(workload: str, cluster: str, tasks: int) -> str:
    """What a change of the service's limits does, for plans and questions."""
    return f"rolling update of service/{workload} on {cluster}: replaces {tasks} tasks"


def execute_service_scale(workload: str, services: SwarmServices, gate: ActionGate, events: EventLog,
                          current: int, target: int, reason: str, question: str | None = None) -> tuple[tuple[int, int] | None, str]:
    """The service's replica count set to `target` through the gate (running tasks kept); the
    event log gets the outcome. ((before, after), message), or (None, why) when it did not happen.
    A `question` is asked first where the gate asks (a large scale-up), as for a scale-down."""
    result = gate.run(SCALE.name, f"workload/{workload}", {"from": current, "to": target, "reason": reason, "service": True},
                      lambda: services.scale(workload, target), destructive=target < current or question is not None,
                      records_event=True, question=question)
    if not result.ok:
        events.record("scale_failed", result.message, workload=workload, target=f"workload/{workload}")
        return None, result.message
    before, after = result.value  # type: ignore[misc]
    events.record("scale", f"{before} -> {after} replicas (service/{workload} on {services.cluster.name}; running tasks kept): {reason}",
                  workload=workload, target=f"workload/{workload}", details={"from": before, "to": after, "service": True})
    return (before, after), result.message


def execute_service_resize(workload: str, services: SwarmServices, gate: ActionGate, events: EventLog, state: ServiceState,
                           cpu_millis: int | None, memory_bytes: int | None, reasons: str) -> tuple[int | None, str]:
    """New limits by one service update (a rolling update that replaces the tasks), asked about
    first where the gate asks. (tasks replaced, message), or (None, why) when it did not happen."""
    note = rolling_update_note(workload, state.cluster, state.replicas)
    result = gate.run(RESIZE.name, f"workload/{workload}", {"cpu_millis": cpu_millis, "memory_bytes": memory_bytes, "service": True},
                      lambda: services.set_limits(workload, cpu_millis, memory_bytes), destructive=True, records_event=True,
                      question=f"Resize workload/{workload} ({note})?")
    if not result.ok:
        events.record("scale_failed", result.message, workload=workload, target=f"workload/{workload}")
        return None, result.message
    replaced: int = result.value  # type: ignore[assignment]
    events.record("scale", f"limits changed by a {note}: {reasons}", workload=workload, target=f"workload/{workload}",
                  details={"cpu_millis": cpu_millis, "memory_bytes": memory_bytes, "service": True, "replaced": replaced})
    return replaced, result.message


__all__ = ["REFRESH_EVERY", "ServiceFinder", "execute_service_resize", "execute_service_scale", "rolling_update_note",
           "task_readings"]
