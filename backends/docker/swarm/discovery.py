"""Which configured engines are Swarm managers and workers, found once for everyone who needs it.

The control loops' Swarm jobs (the autoscaler's service look-ups, the Swarm watch) and the
poll of each engine (observer.py) share one `SwarmDiscovery`: the engines are asked (`docker
info` each) when it is first used, again every `refresh_seconds` (an engine may join or leave
a swarm) and when the set of engines changes (an engine lost or back), so an idle agent asks
each engine once per refresh, not once per job.

The Swarm watch and the poll of a manager also look at the same cluster with the same three
calls (its rtm-console services, their tasks, the nodes): a look younger than `LOOK_SECONDS`
is shared by both instead of made twice.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from backends.docker.swarm.cluster import SwarmCluster, SwarmRole, find_clusters
from backends.docker.swarm.spec import LABEL_WORKLOAD

REFRESH_SECONDS = 30.0
LOOK_SECONDS = 1.0


@dataclass(frozen=True)
class ClusterLook:
    """One look at a cluster through its manager: its rtm-console services by id, their tasks
    (none asked when it runs no such service) and its nodes; `calls` is how many engine calls
    it cost whoever got it (0 for a look shared from another job)."""

    services: dict[str, Any]
    tasks: list[Any]
    nodes: list[Any]
    calls: int


def look_at(manager: Any) -> ClusterLook:
    """A new look at the manager's cluster (three calls, two while it runs no rtm-console service)."""
    call = manager.client.call
    services = {s["ID"]: s for s in call(lambda api: api.services(filters={"label": LABEL_WORKLOAD}))}
    tasks = call(lambda api: api.tasks()) if services else []
    return ClusterLook(services, tasks, call(lambda api: api.nodes()), 3 if services else 2)


class SwarmDiscovery:
    """`backends()`: the engines to look at now (the Docker backends of the engines that answer)."""

    def __init__(self, backends: Callable[[], Sequence[Any]], refresh_seconds: float = REFRESH_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._backends = backends
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.refreshes = 0
        self._found: tuple[list[SwarmCluster], dict[str, SwarmRole]] = ([], {})
        self._names: tuple[str, ...] | None = None
        self._at: float | None = None
        self._refreshing = threading.Lock()
        self._looks: dict[str, tuple[float, ClusterLook]] = {}  # manager backend name -> (when, its latest look)
        self._looking: dict[str, threading.Lock] = {}  # manager backend name -> held while a look at it is made
        self._lock = threading.Lock()

    def current(self) -> tuple[list[SwarmCluster], dict[str, SwarmRole]]:
        """The clusters among the engines and each engine that answered's role, found again when
        due. One refresh at a time: while one runs, the others get the previous answer (an engine
        that does not answer holds a refresh up to its timeout), or wait for the first one."""
        backends = list(self._backends())
        names = tuple(backend.name for backend in backends)
        if not self._due(names) or not self._refreshing.acquire(blocking=self._at is None):
            return self._found
        try:
            if self._due(names):  # not done meanwhile by the refresh this one waited for
                at = self.clock()
                self._found = find_clusters(backends)  # one reference swapped: read without a lock
                self._names, self._at = names, at
                self.refreshes += 1
            return self._found
        finally:
            self._refreshing.release()

    @property
    def refreshing(self) -> bool:
        return self._refreshing.locked()

    def _due(self, names: tuple[str, ...]) -> bool:
        return self._at is None or names != self._names or self.clock() - self._at >= self.refresh_seconds

    def clusters(self) -> list[SwarmCluster]:
        return self.current()[0]

    def role_of(self, backend_name: str) -> SwarmRole | None:
        """The engine's role at the last refresh (None: not among the engines, or it did not answer)."""
        return self.current()[1].get(backend_name)

    def look(self, manager: Any, max_age: float = LOOK_SECONDS) -> ClusterLook:
        """A look at the manager's cluster no older than `max_age` seconds: the latest one when
        it is young enough, else a new one (three calls; BackendUnavailable or
        DockerRequestError when the manager does not answer)."""
        with self._lock:
            looking = self._looking.setdefault(manager.name, threading.Lock())
        with looking:  # one look at a manager at a time; other managers are not held up by it
            latest = self._looks.get(manager.name)
            now = self.clock()
            if latest is not None and now - latest[0] < max_age:
                return dataclasses.replace(latest[1], calls=0)
            look = look_at(manager)
            self._looks[manager.name] = (now, look)
            return look


__all__ = ["LOOK_SECONDS", "REFRESH_SECONDS", "ClusterLook", "SwarmDiscovery", "look_at"]
