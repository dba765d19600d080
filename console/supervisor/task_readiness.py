"""The readiness probe of a Swarm service's tasks, for its upstream members, with the probe's
timing and the state machine of rtm/probes.py. A task enters the upstream once its probe passes
and leaves it after `retries` failures (events `ready` and `unready`, target `task/SERVICE.SLOT`).

Probed when the serving port is published in host mode (each task has its own address):

- an HTTP or TCP probe goes to where this host reaches the task: its node's address and the host
  port the task published for the probe's port;
- a command probe runs inside the task's container through the Docker engine of the task's node,
  when that engine is configured (a worker endpoint, or the manager for its own tasks), as the
  console's exec does. A task on a node without a configured engine cannot be probed: it stays a
  member, and one `swarm_unreachable` event per workload and node (target `node/NODE`) says
  which engine to add.

Not probed, so every running task is a member: a serving port published through the ingress mesh
(no per-task address) and `load_balancing.health_check: false`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from backends.docker.swarm.task_addresses import task_endpoints
from backends.docker.swarm.task_changes import ClusterView
from console.eventlog import EventLog
from console.supervisor.engines import Engine
from console.supervisor.probe_runner import (
    ProbeOutcome,
    command_probe,
    http_probe,
    tcp_probe,
)
from console.supervisor.supervised import Workload, probe_timing
from rtm.kinds.health import Probe
from rtm.probes import ReplicaProbes

log = logging.getLogger("rtm.supervisor.swarm")


@dataclass(frozen=True)
class _Target:
    where: str  # said in events: the address probed, or the engine a command probe runs through
    engine: Engine | None = None  # a command probe's: the engine of the task's node
    container_id: str = ""


@dataclass
class _Track:
    target: _Target
    probes: ReplicaProbes
    running: Future | None = None


class TaskReadiness:
    def __init__(self, pool: ThreadPoolExecutor, events: EventLog) -> None:
        self.pool = pool
        self.events = events
        self._tracks: dict[tuple[str, str], _Track] = {}  # (workload, task id) -> its readiness
        self._engine_missing_said: set[tuple[str, str]] = set()  # (workload, node)

    def ready_tasks(self, workload: Workload, view: ClusterView, now: float,
                    node_engines: Mapping[str, Engine] | None = None) -> set[str] | None:
        """The running tasks (ids) whose readiness probe passes, with those that cannot be probed
        (their node has no configured engine in `node_engines`, hostname -> engine, for a
        command probe); None when the tasks are not probed."""
        probe = workload.probes.get("readiness")
        if probe is None or not workload.failover.load_balancing.health_check or workload.serving_port is None:
            return None
        endpoints = task_endpoints(view, workload.name, workload.serving_port)
        if endpoints is None:
            return None
        tasks = {t.id: t for t in view.tasks}
        unprobed: set[str] = set()
        targets: dict[str, _Target] = {}
        for task_id, endpoint in endpoints.items():
            if probe.command is None:
                targets[task_id] = _Target(endpoint)
                continue
            task = tasks[task_id]
            engine = (node_engines or {}).get(task.node)
            if engine is None:
                unprobed.add(task_id)
                self._say_engine_missing(workload.name, task.name, task.node, view)
            else:
                self._engine_missing_said.discard((workload.name, task.node))
                targets[task_id] = _Target(engine.backend.name, engine, task.container_id)
        for key in [k for k in self._tracks if k[0] == workload.name and k[1] not in targets]:
            del self._tracks[key]  # no longer running, or no longer probed
        for task_id, target in targets.items():
            track = self._tracks.get((workload.name, task_id))
            if track is None or track.target != target:
                track = self._tracks[(workload.name, task_id)] = _Track(target, ReplicaProbes.create(now, {"readiness": probe_timing(probe)}))
            self._step(workload.name, tasks[task_id].name, probe, track, now)
        return unprobed | {task_id for (name, task_id), track in self._tracks.items() if name == workload.name and track.probes.ready}

    def _say_engine_missing(self, workload: str, task: str, node: str, view: ClusterView) -> None:
        """Once per workload and node: its tasks there stay members, unprobed, until its engine is added."""
        if (workload, node) in self._engine_missing_said:
            return
        self._engine_missing_said.add((workload, node))
        found = view.nodes.get(node)
        address = f" ({found.address})" if found is not None and found.address else ""
        message = (f"the readiness probe of {workload} cannot run in task {task} on node {node}: no configured Docker engine is "
                   f"that node's; its tasks there stay in the upstream unprobed; add the engine of node {node}{address} as a "
                   f"Docker endpoint")
        self.events.record("swarm_unreachable", message, workload=workload, target=f"node/{node}", details={"task": task, "node": node})
        log.warning("upstream of %s: %s", workload, message)

    def _step(self, workload: str, task: str, probe: Probe, track: _Track, now: float) -> None:
        if track.running is not None and track.running.done():
            try:
                outcome = track.running.result()
            except Exception as error:  # a bug in a probe is a failed probe, not a dead loop
                log.exception("readiness probe of task %s raised", task)
                outcome = ProbeOutcome(False, str(error))
            track.running = None
            track.probes, transitions = track.probes.record("readiness", outcome.ok, now, outcome.detail)
            where = track.target.where
            for transition in transitions:
                if transition.kind in ("ready", "unready"):
                    self.events.record(transition.kind, f"{transition.message} ({where})", workload=workload,
                                       target=f"task/{task}", details={"endpoint": where, "detail": outcome.detail})
        if track.running is None and track.probes.due(now):
            track.running = self.pool.submit(_probe, probe, track.target)


def _probe(probe: Probe, target: _Target) -> ProbeOutcome:
    if target.engine is not None:
        return command_probe(probe, target.container_id, target.engine)
    host, port = target.where.rsplit(":", 1)
    if probe.http is not None:
        return http_probe(host, int(port), probe.http.path, probe.timeout, probe.http.scheme)
    return tcp_probe(host, int(port), probe.timeout)
