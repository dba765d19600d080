"""Swarm's own failover, reported: for a workload that is a Swarm service, Swarm restarts and
reschedules the tasks; the loops never do (the failover loop leaves such workloads alone).

Every `interval` seconds each cluster among the engines (a manager engine, as the loops' shared
SwarmDiscovery knows it) is looked at with three calls (services, tasks, nodes; a look the poll
of the manager made less than `interval` ago is taken instead), and what Swarm did
since the previous look becomes events, once each (backends/docker/swarm/task_changes.py):
`swarm_task_failed`, `swarm_task_pending`, `swarm_task_restarted`, `swarm_task_rescheduled`,
`swarm_task_replaced`, `swarm_node_down`, `swarm_node_up`, `swarm_service_converged`.

For a service workload whose specs have a FailoverStrategy, its members in the nginx upstream
are its running tasks at addresses this host reaches (backends/docker/swarm/task_addresses.py),
the ready ones when their readiness probe can be run against each task (task_readiness.py: a
command probe through the configured engine of each task's node, matched by its Swarm node id),
written by the one upstream writer (membership.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from backends.base import BackendUnavailable, one_line
from backends.docker.errors import DockerRequestError
from backends.docker.swarm.cluster import SwarmCluster
from backends.docker.swarm.discovery import SwarmDiscovery
from backends.docker.swarm.task_addresses import reachable_members, task_endpoints
from backends.docker.swarm.task_changes import (
    ClusterView,
    SwarmChange,
    TaskWatch,
    view_from_api,
)
from console.eventlog import EventLog
from console.supervisor.engines import Engine
from console.supervisor.membership import UpstreamWriter
from console.supervisor.supervised import Workload
from console.supervisor.task_readiness import TaskReadiness
from rtm.loadbalancer import Member

log = logging.getLogger("rtm.supervisor.swarm")
SURVEY_SECONDS = 1.0


class SwarmWatch:
    def __init__(self, engines: Callable[[], Sequence[Engine]], events: EventLog, membership: UpstreamWriter,
                 workloads: Callable[[], Mapping[str, Workload]], pool: ThreadPoolExecutor, discovery: SwarmDiscovery | None = None,
                 interval: float = SURVEY_SECONDS) -> None:
        self._engines = engines
        self.discovery = discovery or SwarmDiscovery(lambda: [engine.backend for engine in engines()])
        self.events = events
        self.membership = membership
        self._workloads = workloads
        self.interval = interval
        self.readiness = TaskReadiness(pool, events)
        self.first_look = threading.Event()  # set once the first look ended (found something or not)
        self.looks = 0
        self.calls = 0  # engine calls made, for tests counting the cost
        self.last_error: str | None = None
        self._clusters: list[SwarmCluster] = []
        self._watches: dict[str, TaskWatch] = {}
        self._services: dict[str, frozenset[str]] = {}  # cluster -> its rtm-console services at its last good look
        self.services: frozenset[str] = frozenset()  # the workloads that are Swarm services (kept while a manager does not answer)
        self._problems: dict[str, str] = {}  # workload -> why it has no reachable member, said once
        self._node_engines: dict[str, Engine] = {}  # Swarm node id -> the configured engine of that node
        self._task_engines: dict[str, dict[str, Engine]] = {}  # cluster -> node hostname -> its engine

    def tick(self, now: float) -> float:
        """One look at every cluster; returns the seconds until the next one."""
        try:
            self._clusters, roles = self.discovery.current()
            # kept for an engine that did not answer at the last refresh: its probes fail rather than stop
            self._node_engines.update((roles[e.backend.name].node_id, e) for e in self._engines()
                                      if e.backend.name in roles and roles[e.backend.name].node_id)
            for cluster in self._clusters:
                self._look_at(cluster, now)
            self.looks += 1
        finally:
            self.first_look.set()
        return self.interval if self._clusters else self.discovery.refresh_seconds

    def _look_at(self, cluster: SwarmCluster, now: float) -> None:
        try:
            view = self._view(cluster)
        except (BackendUnavailable, DockerRequestError) as error:
            message = f"{cluster.name}: {one_line(str(error), 200)}"
            if message != self.last_error:
                log.warning("Swarm cluster not looked at: %s", message)
            self.last_error = message
            return  # nothing is known: no event, the members stay as they were
        self.last_error = None
        self._services[cluster.name] = frozenset(view.services)
        self.services = frozenset().union(*self._services.values())  # one reference swapped: read by the failover loop
        for change in self._watches.setdefault(cluster.name, TaskWatch(cluster.name)).update(view):
            self._record(change)
        self._publish(view, now, self._task_engines.get(cluster.name, {}))

    def _view(self, cluster: SwarmCluster) -> ClusterView:
        look = self.discovery.look(cluster.manager, self.interval)  # shared with the poll of the manager
        self.calls += look.calls
        services, tasks, nodes = look.services, look.tasks, look.nodes
        self._task_engines[cluster.name] = {(n.get("Description") or {}).get("Hostname", ""): self._node_engines[n["ID"]]
                                            for n in nodes if n.get("ID") in self._node_engines}
        return view_from_api(services, tasks, nodes)

    def _record(self, change: SwarmChange) -> None:
        self.events.record(change.kind, change.message, workload=change.service, target=change.target, details=change.details)
        log.info("%s %s: %s", change.kind, change.target, change.message)

    def _publish(self, view: ClusterView, now: float, node_engines: Mapping[str, Engine]) -> None:
        """The upstream members of the balanced workloads that are this cluster's services (the
        ready ones when their readiness probe can be run against each task)."""
        for name, workload in self._workloads().items():
            if name not in view.services or not workload.has_failover_spec:
                continue
            members, problem = reachable_members(view, name, workload.serving_port) if workload.serving_port else ([], None)
            ready = self.readiness.ready_tasks(workload, view, now, node_engines)
            if ready is not None and problem is None:
                serving = task_endpoints(view, name, workload.serving_port) or {}
                members = [Member(address) for task_id, address in serving.items() if task_id in ready]
            if problem is not None and self._problems.get(name) != problem:
                self.events.record("swarm_unreachable", problem, workload=name, target=f"upstream/{name}")
                log.warning("upstream of %s: %s", name, problem)
            if problem is None:
                self._problems.pop(name, None)
            else:
                self._problems[name] = problem
            self.membership.update(name, workload.failover.load_balancing.algorithm, members)

    def state(self) -> dict[str, Any]:
        return {"clusters": [c.name for c in self._clusters], "services": sorted(self.services), "looks": self.looks,
                "last_error": self.last_error}
