"""Autoscaling a workload that is a Docker Swarm service (docs/swarm.md#scale).

- Measured over the service's running tasks: the statistics of each task's container, read by
  its id on the configured engine of the task's node and nothing else (backends/docker/swarm/
  task_stats.py); a task on a node whose engine is not configured has no reading and is left
  out, as a replica without a reading is.
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

from backends.docker.swarm.discovery import SwarmDiscovery
from backends.docker.swarm.services import ServiceState, SwarmServices
from backends.docker.swarm.target import SwarmTarget
from backends.docker.swarm.task_stats import TaskStats
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.gated_actions import RESIZE, SCALE, run_workload_change


class ServiceFinder:
    """Which cluster runs a workload's service, if any: the clusters come from a SwarmDiscovery
    (shared by the control loops, so the engines are asked `docker info` once per refresh); a
    look-up costs one service listing per cluster, nothing when no engine is a manager."""

    def __init__(self, discovery: SwarmDiscovery | None = None) -> None:
        self._engines: list[Any] = []
        # without a shared one, its own over the engines of the latest look-up
        self.discovery = discovery or SwarmDiscovery(lambda: [engine.backend for engine in self._engines])

    def holding(self, workload: str, engines: Sequence[Any]) -> SwarmServices | None:
        self._engines = list(engines)
        return SwarmTarget([], discovery=self.discovery).holding(workload)


def task_readings(services: SwarmServices, state: ServiceState, stats: TaskStats) -> tuple[list[float], list[int]]:
    """cpu millicores and memory working set of each running task whose node's engine is configured."""
    wanted: dict[Any, list[str]] = {}
    for task in state.running:
        engine = services.cluster.node_engines.get(task.node_id)
        if engine is not None and task.container_id:
            wanted.setdefault(engine, []).append(task.container_id)
    read = stats.read(wanted)
    cpu: list[float] = []
    memory: list[int] = []
    for task in state.running:
        info = read.get(task.container_id)
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

    def outcome(counts: tuple[int, int]) -> tuple[str, dict[str, Any]]:
        before, after = counts
        return (f"{before} -> {after} replicas (service/{workload} on {services.cluster.name}; running tasks kept): {reason}",
                {"from": before, "to": after, "service": True})

    return run_workload_change(gate, events, SCALE, workload, {"from": current, "to": target, "reason": reason, "service": True},
                               lambda: services.scale(workload, target), outcome, destructive=target < current or question is not None,
                               question=question)


def execute_service_resize(workload: str, services: SwarmServices, gate: ActionGate, events: EventLog, state: ServiceState,
                           cpu_millis: int | None, memory_bytes: int | None, reasons: str) -> tuple[int | None, str]:
    """New limits by one service update (a rolling update that replaces the tasks), asked about
    first where the gate asks. (tasks replaced, message), or (None, why) when it did not happen."""
    note = rolling_update_note(workload, state.cluster, state.replicas)

    def outcome(replaced: int) -> tuple[str, dict[str, Any]]:
        return (f"limits changed by a {note}: {reasons}",
                {"cpu_millis": cpu_millis, "memory_bytes": memory_bytes, "service": True, "replaced": replaced})

    return run_workload_change(gate, events, RESIZE, workload, {"cpu_millis": cpu_millis, "memory_bytes": memory_bytes, "service": True},
                               lambda: services.set_limits(workload, cpu_millis, memory_bytes), outcome, destructive=True,
                               question=f"Resize workload/{workload} ({note})?")


__all__ = ["ServiceFinder", "execute_service_resize", "execute_service_scale", "rolling_update_note",
           "task_readings"]
