"""The readiness probe of a Swarm service's tasks, for its upstream members: an HTTP or TCP probe
to where this host reaches each running task (its node's address and the host port the task
published for the probe's port, `docker.publish_mode: host`), with the probe's timing and the
state machine of rtm/probes.py. A task enters the upstream once its probe passes and leaves it
after `retries` failures (events `ready` and `unready`, target `task/SERVICE.SLOT`).

Not probed, so every running task is a member: a command probe (it would run inside the task's
container), a probe port published through the ingress mesh (no per-task address), and
`load_balancing.health_check: false`.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from backends.docker.swarm.task_addresses import task_endpoints
from backends.docker.swarm.task_changes import ClusterView
from console.eventlog import EventLog
from console.supervisor.probe_runner import ProbeOutcome, http_probe, tcp_probe
from console.supervisor.supervised import Workload, probe_timing
from rtm.kinds.health import Probe
from rtm.probes import ReplicaProbes

log = logging.getLogger("rtm.supervisor.swarm")


@dataclass
class _Track:
    endpoint: str
    probes: ReplicaProbes
    running: Future | None = None


class TaskReadiness:
    def __init__(self, pool: ThreadPoolExecutor, events: EventLog) -> None:
        self.pool = pool
        self.events = events
        self._tracks: dict[tuple[str, str], _Track] = {}  # (workload, task id) -> its readiness

    def ready_tasks(self, workload: Workload, view: ClusterView, now: float) -> set[str] | None:
        """The running tasks (ids) whose readiness probe passes; None when they are not probed."""
        probe = workload.probes.get("readiness")
        if probe is None or not workload.failover.load_balancing.health_check:
            return None
        port = probe.http.port if probe.http is not None else probe.tcp.port if probe.tcp is not None else None
        endpoints = task_endpoints(view, workload.name, port) if port is not None else None
        if endpoints is None:
            return None
        for key in [k for k in self._tracks if k[0] == workload.name and k[1] not in endpoints]:
            del self._tracks[key]  # no longer running
        names = {t.id: t.name for t in view.tasks}
        for task_id, endpoint in endpoints.items():
            track = self._tracks.get((workload.name, task_id))
            if track is None or track.endpoint != endpoint:
                track = self._tracks[(workload.name, task_id)] = _Track(endpoint, ReplicaProbes.create(now, {"readiness": probe_timing(probe)}))
            self._step(workload.name, names.get(task_id, task_id), probe, track, now)
        return {task_id for (name, task_id), track in self._tracks.items() if name == workload.name and track.probes.ready}

    def _step(self, workload: str, task: str, probe: Probe, track: _Track, now: float) -> None:
        if track.running is not None and track.running.done():
            try:
                outcome = track.running.result()
            except Exception as error:  # a bug in a probe is a failed probe, not a dead loop
                log.exception("readiness probe of task %s raised", task)
                outcome = ProbeOutcome(False, str(error))
            track.running = None
            track.probes, transitions = track.probes.record("readiness", outcome.ok, now, outcome.detail)
            for transition in transitions:
                if transition.kind in ("ready", "unready"):
                    self.events.record(transition.kind, f"{transition.message} ({track.endpoint})", workload=workload,
                                       target=f"task/{task}", details={"endpoint": track.endpoint, "detail": outcome.detail})
        if track.running is None and track.probes.due(now):
            track.running = self.pool.submit(_probe, probe, track.endpoint)


def _probe(probe: Probe, endpoint: str) -> ProbeOutcome:
    host, port = endpoint.rsplit(":", 1)
    if probe.http is not None:
        return http_probe(host, int(port), probe.http.path, probe.timeout, probe.http.scheme)
    return tcp_probe(host, int(port), probe.timeout)
