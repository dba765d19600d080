"""The supervisor's view of the Docker engines: replicas, exec with a timeout, restart,
create, remove, in-place resource updates and usage samples.

A thin layer over `backends.docker.client.EngineClient` (connection handling and typed errors)
and `backends.docker.mapping` (the create request of a replica). It adds what the control
loops need that the poller's records do not carry: a container's address on its network (for
HTTP and TCP probes), its exact start time (a restart resets its probes) . Usage figures for
the autoscaler come from the Docker backend's own sampler (`DockerBackend.collect()`).

Every call that cannot reach the engine raises `backends.base.BackendUnavailable`; a request
the engine refuses raises `backends.docker.errors.DockerRequestError`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.docker.client import EngineClient, EngineEndpoint, engine_node
from backends.docker.errors import ContainerNotFound, DockerRequestError, ExecTimeout
from backends.docker.mapping import LABEL_REPLICA, LABEL_WORKLOAD, RESOURCE_FIELDS, WorkloadRequest
from backends.docker.replicas import create_replica, remove_quietly, wait_ready
from backends.docker.watch import parse_timestamp
from rtm.scheduling import SchedNode

log = logging.getLogger("rtm.supervisor.engines")
STOP_GRACE_SECONDS = 2  # a restart gives the old process this long after SIGTERM, then kills it


@dataclass(frozen=True)
class Replica:
    """One container of a workload on one engine, as the supervisor sees it."""

    id: str
    name: str
    engine: str  # the engine's endpoint name, which is also its scheduler node id
    workload: str
    index: int
    state: str  # created, running, paused, restarting, exited, dead
    health: str | None  # Docker's HEALTHCHECK verdict: starting, healthy, unhealthy
    started_at: float | None  # epoch seconds of the last start
    address: str | None  # IP address on its network, reachable from the engine's host
    restart_count: int = 0
    resources: Mapping[str, int] = field(default_factory=dict)  # NanoCpus, Memory, ...

    @property
    def key(self) -> tuple[str, str]:
        return (self.engine, self.name)

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None when it timed out
    output: str
    timed_out: bool = False


def container_address(inspect: Mapping[str, Any]) -> str | None:
    settings = inspect.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return settings["IPAddress"]
    for network in (settings.get("Networks") or {}).values():
        if network and network.get("IPAddress"):
            return network["IPAddress"]
    return None


def replica_from_inspect(engine: str, inspect: Mapping[str, Any]) -> Replica:
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    state = inspect.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    index_text = labels.get(LABEL_REPLICA, "")
    host_config = inspect.get("HostConfig") or {}
    return Replica(
        id=inspect["Id"],
        name=str(inspect.get("Name", "")).lstrip("/"),
        engine=engine,
        workload=labels.get(LABEL_WORKLOAD, ""),
        index=int(index_text) if index_text.isdigit() else -1,
        state=str(state.get("Status", "unknown")),
        health=health,
        started_at=parse_timestamp(state.get("StartedAt")),
        address=container_address(inspect),
        restart_count=int(inspect.get("RestartCount") or 0),
        resources={name: int(host_config.get(name) or 0) for name in RESOURCE_FIELDS},
    )


class Engine:
    """One Docker engine as the supervisor uses it. Changes go through the Docker backend's own
    `ContainerActions` and replica helpers; this adds the supervisor's reads. Thread-safe."""

    def __init__(self, endpoint: EngineEndpoint | Any, timeout: float = 30.0, backend: Any = None) -> None:
        """`backend`: an existing DockerBackend of this engine to share (the poller's), so one
        event stream and one stats sampler serve both; it stays its owner's to close."""
        from backends.docker.actions import ContainerActions
        from backends.docker.backend import DockerBackend

        self.endpoint = EngineEndpoint.of(endpoint)
        self.name = self.endpoint.name
        self._owns_backend = backend is None
        self.backend = backend if backend is not None else DockerBackend(self.endpoint, timeout=timeout)
        self.client: EngineClient = self.backend.client
        self.actions = ContainerActions([self.backend])

    def __repr__(self) -> str:
        return f"Engine({self.name!r}, {self.endpoint.host!r})"

    # --- reading ------------------------------------------------------------------------------

    def ping(self, timeout: float) -> bool:
        """True when the engine answers within `timeout` seconds (a detection check)."""
        checker = EngineClient(self.endpoint, timeout=timeout)
        try:
            checker.ping()
            return True
        except Exception:  # any failure to answer is a failed check
            return False
        finally:
            with contextlib.suppress(Exception):
                checker.close()

    def replicas(self, workload: str | None = None) -> list[Replica]:
        """The managed containers (label rtm.workload), of one workload or of all, any state."""
        label = LABEL_WORKLOAD if workload is None else f"{LABEL_WORKLOAD}={workload}"
        listed = self.client.call(lambda api: api.containers(all=True, filters={"label": label}))
        replicas = []
        for entry in listed:
            try:
                inspect = self.client.call(lambda api, cid=entry["Id"]: api.inspect_container(cid))
            except ContainerNotFound:  # removed between the listing and the inspect
                continue
            replicas.append(replica_from_inspect(self.name, inspect))
        return sorted(replicas, key=lambda r: (r.index, r.name))

    def inspect(self, container_id: str) -> Replica:
        return replica_from_inspect(self.name, self.client.call(lambda api: api.inspect_container(container_id)))

    def container_stats(self) -> dict[str, Any]:
        """container id -> the Docker backend's ContainerInfo (CPU ratio since its previous
        reading, memory working set), from its cgroup-file or stream sampler."""
        return {info.id: info for info in self.backend.collect()}

    def node(self, requested_cpu_millis: int = 0, requested_memory_bytes: int = 0,
             replicas_here: int = 0, cordoned: bool = False) -> SchedNode:
        """The engine as a scheduler node; `replicas_here` counts as its connections, so
        least_connections spreads a workload over the engines."""
        node = engine_node(self.endpoint, self.client.info(), requested_cpu_millis, requested_memory_bytes, cordoned)
        return SchedNode(node.id, node.zone, node.cpu_millis, node.memory_bytes, node.labels,
                         node.weight, replicas_here, node.runtimes, node.cordoned)

    def runtimes(self) -> frozenset[str]:
        return self.client.info().runtimes

    # --- changing (the Docker backend's actions) ----------------------------------------------

    def exec(self, container_id: str, command: Sequence[str], timeout: float) -> ExecResult:
        """Run `command` in the container for at most `timeout` seconds (then it is killed
        when the engine is on this machine, as the kubelet does)."""
        try:
            result = self.actions.exec(container_id, list(command), timeout=timeout)
        except ExecTimeout as error:
            return ExecResult(None, error.output, timed_out=True)
        return ExecResult(result.exit_code, result.output)

    def restart(self, container_id: str, grace: int = STOP_GRACE_SECONDS) -> None:
        self.actions.restart(container_id, timeout=grace)

    def remove(self, container_id: str) -> None:
        """Remove the container, running or not; one already gone (or going) is fine."""
        try:
            remove_quietly(self.backend, container_id)
        except DockerRequestError as error:
            if "already in progress" not in str(error):
                raise

    def create_replica(self, request: WorkloadRequest, index: int) -> Replica:
        """Create and start replica `index` of a mapped workload here; returns once it runs."""
        undo: list[Callable[[], None]] = []
        progress = lambda line: log.info("%s: %s", self.name, line)  # noqa: E731 - a one-line sink
        try:
            container_id = create_replica(self.backend, request.for_replica(index), progress, undo)
            wait_ready(self.backend, container_id, healthy=False, progress=progress)
        except Exception:
            for step in reversed(undo):
                step()
            raise
        return self.inspect(container_id)

    def update_limits(self, container_id: str, cpu_millis: int | None, memory_bytes: int | None) -> str:
        """Change the cpu and memory limits in place (no restart)."""
        return self.actions.update_limits(container_id, cpu_millis=cpu_millis, memory_bytes=memory_bytes)

    def close(self) -> None:
        if self._owns_backend:
            self.backend.close()
