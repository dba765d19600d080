"""The supervisor's handle on each Docker engine: a detection ping with its own timeout, the
engine's replicas (typed `backends.docker.replicas.Replica` records, with the address probes
reach and the exact start time a restart resets), exec with a timeout, restart, in-place
limits and usage samples, all through the Docker backend. Adding and removing replicas goes
through `backends.docker.replica_service.ReplicaService` (`replica_service(engines)`).

Every call that cannot reach the engine raises `backends.base.BackendUnavailable`; a request
the engine refuses raises `backends.docker.errors.DockerRequestError`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from backends.docker.container_actions import ExecResult
from backends.docker.client import EngineClient, EngineEndpoint
from backends.docker.desired import DesiredStore
from backends.docker.errors import ExecTimeout
from backends.docker.replica_service import ReplicaService
from backends.docker.replicas import Replica, find_replicas, inspect_replica

log = logging.getLogger("rtm.supervisor.engines")
STOP_GRACE_SECONDS = 2  # a restart gives the old process this long after SIGTERM, then kills it


class Engine:
    """One Docker engine as the supervisor uses it. Changes go through the Docker backend's own
    `ContainerActions` and replica helpers; this adds the supervisor's reads. Thread-safe."""

    def __init__(self, endpoint: EngineEndpoint | Any, timeout: float = 30.0, backend: Any = None,
                 cordoned: Callable[[str], bool] = lambda _node: False) -> None:
        """`backend`: an existing DockerBackend of this engine to share (the poller's, which
        knows the cordons), so one event stream and one stats sampler serve both; it stays its
        owner's to close. Otherwise one is made here with `cordoned` (node id -> cordoned)."""
        from backends.docker.container_actions import ContainerActions
        from backends.docker.backend import DockerBackend

        self.endpoint = EngineEndpoint.of(endpoint)
        self.name = self.endpoint.name
        self._owns_backend = backend is None
        self.backend = backend if backend is not None else DockerBackend(self.endpoint, timeout=timeout, cordoned=cordoned)
        self.client: EngineClient = self.backend.client
        self.actions = ContainerActions(ReplicaService([self.backend]))
        self._checker: EngineClient | None = None  # the detection's client (ping)

    def __repr__(self) -> str:
        return f"Engine({self.name!r}, {self.endpoint.host!r})"

    # --- reading ------------------------------------------------------------------------------

    def ping(self, timeout: float) -> bool:
        """True when the engine answers within `timeout` seconds (a detection check). Checks have
        a client of their own, with the detection's timeout, kept from one check to the next (a
        new client asks the engine its API version first); a failed check drops it, so the next
        one connects afresh. The detection runs one check of an engine at a time."""
        checker = self._checker
        if checker is None or checker.timeout != timeout:
            checker = self._checker = EngineClient(self.endpoint, timeout=timeout)
        try:
            checker.ping()
            return True
        except Exception:  # any failure to answer is a failed check
            self._drop_checker()
            return False

    def _drop_checker(self) -> None:
        checker, self._checker = self._checker, None
        if checker is not None:
            with contextlib.suppress(Exception):
                checker.close()

    def replicas(self, workload: str | None = None) -> list[Replica]:
        """The managed containers (label rtm.workload), of one workload or of all, any state."""
        return find_replicas([self.backend], workload)

    def inspect(self, container_id: str) -> Replica:
        return inspect_replica(self.backend, container_id)

    def container_stats(self) -> dict[str, Any]:
        """container id -> the Docker backend's ContainerInfo (CPU ratio since its previous
        reading, memory working set), from its cgroup-file or stream sampler."""
        return {info.id: info for info in self.backend.collect()}

    def runtimes(self) -> frozenset[str]:
        return self.client.info().runtimes

    # --- changing (the Docker backend's actions) ----------------------------------------------

    def exec(self, container_id: str, command: Sequence[str], timeout: float) -> ExecResult:
        """Run `command` in the container for at most `timeout` seconds (then it is killed
        when the engine is on this machine, as the kubelet does)."""
        try:
            return self.actions.exec(container_id, list(command), timeout=timeout)
        except ExecTimeout as error:
            return ExecResult(None, error.output, timed_out=True)

    def restart(self, container_id: str, grace: int = STOP_GRACE_SECONDS) -> None:
        self.actions.restart(container_id, timeout=grace)

    def update_limits(self, container_id: str, cpu_millis: int | None, memory_bytes: int | None) -> str:
        """Change the cpu and memory limits in place (no restart)."""
        return self.actions.update_limits(container_id, cpu_millis=cpu_millis, memory_bytes=memory_bytes)

    def close(self) -> None:
        self._drop_checker()
        if self._owns_backend:
            self.backend.close()


def replica_service(engines: Sequence[Engine], desired: DesiredStore | None = None) -> ReplicaService:
    """The replica service over these engines (the ones that are not lost)."""
    return ReplicaService([engine.backend for engine in engines], desired=desired)
