"""What a Swarm manager engine's poll sees of the cluster: each rtm-console service's desired and
running replicas, each node's availability and state, and the task replacements observed (for the
exporter), and the current task of each slot as a container row (for the Containers pane).

Swarm keeps only a few old tasks per slot, so replacements are counted as the poller sees them:
a task that appears in a slot which already had another task is one replacement (new slots, from
a scale up, are not). The latest status of each manager is kept by backend name (`latest()`),
an immutable value replaced as a whole on each poll.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from backends.base import BackendUnavailable
from backends.docker.errors import DockerRequestError
from backends.docker.swarm.discovery import look_at
from backends.docker.swarm.tasks import task_rows
from backends.records import ContainerInfo

ROLE_CHECK_EVERY = 30  # polls between two `docker info` asking whether the engine became a manager

_latest: dict[str, SwarmStatus] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class SwarmStatus:
    cluster: str  # the manager engine's backend name
    services: tuple[tuple[str, int, int], ...]  # (service, desired, running)
    nodes: tuple[tuple[str, str, str], ...]  # (hostname, availability, state)
    replacements: tuple[tuple[str, int], ...]  # (service, task replacements observed)
    task_rows: tuple[ContainerInfo, ...] = ()  # the current task of each slot (backends/docker/swarm/tasks.py)


def latest(backend_name: str) -> SwarmStatus | None:
    with _lock:
        return _latest.get(backend_name)


class SwarmObserver:
    """Observes the cluster through one engine when that engine is a Swarm manager."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.discovery: Any = None  # a SwarmDiscovery that knows the engine's role (discovery.py), else asked here
        self._polls = 0
        self._manager = False
        self._slots: dict[tuple[str, int], set[str]] = {}
        self._replacements: Counter[str] = Counter()
        self.calls = 0  # engine calls made, for tests counting the cost

    def observe(self) -> SwarmStatus | None:
        """One look at the cluster (three engine calls), or None when the engine is no manager."""
        try:
            return self._observe()
        except (BackendUnavailable, DockerRequestError):
            return None

    def _call(self, fn: Any) -> Any:
        self.calls += 1
        return self.backend.client.call(fn)

    def follow(self, discovery: Any) -> None:
        """Take the engine's role from `discovery` (shared with the control loops), or ask the
        engine again every ROLE_CHECK_EVERY polls (None)."""
        self.discovery = discovery

    def _observe(self) -> SwarmStatus | None:
        discovery = self.discovery
        if discovery is not None:
            role = discovery.role_of(self.backend.name)
            self._manager = role is not None and role.is_manager
        elif self._polls % ROLE_CHECK_EVERY == 0:
            swarm = self._call(lambda api: api.info()).get("Swarm") or {}
            self._manager = bool(swarm.get("ControlAvailable"))
        self._polls += 1
        if not self._manager:
            with _lock:
                _latest.pop(self.backend.name, None)
            return None
        # with the loops' discovery, a look the Swarm watch made just now is taken as it is
        look = discovery.look(self.backend) if discovery is not None else look_at(self.backend)
        self.calls += look.calls
        services, tasks, nodes = look.services, look.tasks, look.nodes
        running: Counter[str] = Counter()
        first_look = not self._slots
        for task in tasks:
            service = services.get(task.get("ServiceID", ""))
            if service is None:
                continue
            name = service["Spec"]["Name"]
            if (task.get("Status") or {}).get("State") == "running" and task.get("DesiredState") == "running":
                running[name] += 1
            slot = self._slots.setdefault((name, int(task.get("Slot") or 0)), set())
            if task["ID"] not in slot:
                if slot and not first_look:
                    self._replacements[name] += 1
                slot.add(task["ID"])
        status = SwarmStatus(
            cluster=self.backend.name,
            services=tuple(sorted((s["Spec"]["Name"], int(((s["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0),
                                   running[s["Spec"]["Name"]]) for s in services.values())),
            nodes=tuple(sorted(((n.get("Description") or {}).get("Hostname", ""), n["Spec"].get("Availability", ""),
                                (n.get("Status") or {}).get("State", "")) for n in nodes)),
            replacements=tuple(sorted((name, self._replacements[name]) for name in {s["Spec"]["Name"] for s in services.values()})),
            task_rows=tuple(task_rows(self.backend.name, services, tasks, nodes)),
        )  # fmt: skip
        with _lock:
            _latest[self.backend.name] = status
        return status
