"""Replicas of a workload on the engines: find them, create and start one, wait until it is ready,
and choose engines for new ones.

Shared by the apply handler and the scale action, so a replica is made the same way whichever
of them asks for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.docker.backend import DockerBackend
from backends.docker.errors import ContainerNotFound, DockerRequestError, RuntimeNotAvailable
from backends.docker.images import Progress, ensure_image
from backends.docker.mapping import LABEL_REPLICA, LABEL_SPEC_HASH, LABEL_WORKLOAD, RESOURCE_FIELDS, CreateRequest
from backends.docker.watch import parse_timestamp
from rtm.scheduling import REASON_UNSCHEDULABLE, Requirements, SchedNode, schedule
from rtm.scheduling.from_spec import requirements

# nodes, what one replica needs, how many, algorithm -> one engine name per new replica
Placement = Callable[[Sequence[SchedNode], Requirements, int, str], Sequence[str]]
READY_POLL = 0.25  # seconds between two looks at a starting container
# A new replica counts as started only once it has kept running this long: a command that fails
# at once (a missing file, a bad flag) exits a few milliseconds after `start` returns, and one
# look straight after `start` would still see it running.
START_SETTLE = 0.5


SWARM_LABEL_PREFIX = "com.docker.swarm."  # Swarm's own containers: never replicas of this stack


class ReplicaFailed(DockerRequestError):
    """A replica was created but did not come up (exited, or its health check failed)."""


class PlacementError(DockerRequestError):
    """No engine can take a replica; the message is the scheduler's explanation."""


@dataclass(frozen=True)
class Replica:
    """One container of a workload on one engine, read from its inspection (the only place
    Docker's inspect JSON becomes a replica)."""

    id: str
    name: str
    engine: str  # the engine's configured name (docker@<engine> is its backend)
    workload: str
    index: int | None  # from the replica label; None for a container of the workload that is no replica
    state: str  # created, running, paused, restarting, exited, dead
    health: str | None  # Docker's HEALTHCHECK verdict: starting, healthy, unhealthy
    started_at: float | None  # epoch seconds of the last start
    address: str | None  # IP address on its network, reachable from the engine's host
    spec_hash: str | None
    restart_count: int = 0
    resources: Mapping[str, int] = field(default_factory=dict)  # NanoCpus, Memory, CpuShares, ...
    backend: DockerBackend = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    inspect: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.engine, self.name)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def resource(self) -> str:
        return f"container/{self.name}"

    @property
    def order(self) -> tuple[int, str]:
        """Replicas by index, containers without one last."""
        return (self.index if self.index is not None else 1 << 30, self.name)


def is_swarm_container(labels: Mapping[str, str]) -> bool:
    """Swarm's tasks carry com.docker.swarm.* labels: they belong to a Swarm service, whatever
    other labels they have, and this stack never counts, replaces or removes them."""
    return any(key.startswith(SWARM_LABEL_PREFIX) for key in labels)


def container_address(inspect: Mapping[str, Any]) -> str | None:
    settings = inspect.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return settings["IPAddress"]
    for network in (settings.get("Networks") or {}).values():
        if network and network.get("IPAddress"):
            return network["IPAddress"]
    return None


def replica_from_inspect(backend: DockerBackend, inspect: Mapping[str, Any]) -> Replica:
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    state = inspect.get("State") or {}
    index_text = labels.get(LABEL_REPLICA, "")
    host_config = inspect.get("HostConfig") or {}
    return Replica(
        id=inspect["Id"],
        name=str(inspect.get("Name", "")).lstrip("/"),
        engine=backend.engine.name,
        workload=labels.get(LABEL_WORKLOAD, ""),
        index=int(index_text) if index_text.isdigit() else None,
        state=str(state.get("Status", "unknown")),
        health=(state.get("Health") or {}).get("Status"),
        started_at=parse_timestamp(state.get("StartedAt")),
        address=container_address(inspect),
        spec_hash=labels.get(LABEL_SPEC_HASH),
        restart_count=int(inspect.get("RestartCount") or 0),
        resources={name: int(host_config.get(name) or 0) for name in RESOURCE_FIELDS},
        backend=backend,
        inspect=inspect,
    )


def inspect_replica(backend: DockerBackend, container_id: str) -> Replica:
    return replica_from_inspect(backend, backend.client.call(lambda api: api.inspect_container(container_id)))


def find_replicas(backends: Iterable[DockerBackend], workload: str | None = None) -> list[Replica]:
    """Every container labelled with the workload (with any workload when None) on every
    engine, fresh from the engines, Swarm's containers left out."""
    label = LABEL_WORKLOAD if workload is None else f"{LABEL_WORKLOAD}={workload}"
    found = []
    for backend in backends:
        summaries = backend.client.call(lambda api: api.containers(all=True, filters={"label": label}))
        for summary in summaries:
            if is_swarm_container(summary.get("Labels") or {}):
                continue
            try:
                found.append(inspect_replica(backend, summary["Id"]))
            except ContainerNotFound:
                continue  # removed in between
    return sorted(found, key=lambda r: r.order)


def find_container(backends: Sequence[DockerBackend], name: str) -> tuple[DockerBackend, Mapping[str, Any]]:
    """The engine and inspection of a container named `name` (or with that id) on any engine."""
    for backend in backends:
        try:
            return backend, backend.client.call(lambda api: api.inspect_container(name))
        except ContainerNotFound:
            continue
    engines = ", ".join(b.name for b in backends) or "no engine configured"
    raise ContainerNotFound(f"no container {name!r} on {engines}", "`rtm-console get containers` lists them")


def check_runtime(backend: DockerBackend, body: Mapping[str, Any]) -> None:
    runtime = body["HostConfig"].get("Runtime")
    if runtime is not None and runtime not in backend.info().runtimes:
        known = ", ".join(sorted(backend.info().runtimes)) or "none"
        raise RuntimeNotAvailable(
            f"{backend.name} has no runtime {runtime!r} (it has: {known})",
            f'use runtime: "containerd" for the engine\'s default, or register {runtime} in the engine\'s daemon.json',
        )


def create_replica(backend: DockerBackend, request: CreateRequest, progress: Progress, undo: list[Callable[[], None]]) -> str:
    """Creates and starts one replica; registers its removal in `undo`. Returns its id."""
    check_runtime(backend, request.body)
    ensure_image(backend.client, request.body["Image"], progress)
    created = backend.client.call(lambda api: api.create_container_from_config(dict(request.body), name=request.name))
    container_id = created["Id"]
    undo.append(lambda: remove_quietly(backend, container_id))
    backend.client.call(lambda api: api.start(container_id))
    return container_id


def remove_quietly(backend: DockerBackend, container_id: str, volumes: bool = False) -> None:
    try:
        backend.client.call(lambda api: api.remove_container(container_id, force=True, v=volumes))
    except ContainerNotFound:
        pass


def update_body(live: dict[str, int], want: dict[str, int]) -> dict[str, int]:
    """The `POST /containers/{id}/update` body for a resource change. Memory and MemorySwap go
    together (the engine checks them as a pair; raising one alone can be refused)."""
    body = {name: want[name] for name in RESOURCE_FIELDS if want[name] != live[name]}
    if "Memory" in body or "MemorySwap" in body:
        body["Memory"], body["MemorySwap"] = want["Memory"], want["MemorySwap"]
    return body


def update_resources(backend: DockerBackend, container_id: str, body: dict[str, int]) -> None:
    """`docker update` with NanoCpus too (docker-py's update_container has no nano_cpus)."""
    url = backend.client.url("/containers/{}/update", container_id)

    def post(api: Any) -> None:
        import docker.errors
        import requests

        response = api.post(url, json=body, timeout=backend.client.timeout)
        try:
            response.raise_for_status()
        except requests.exceptions.HTTPError as error:
            raise docker.errors.create_api_error_from_http_exception(error) from None

    backend.client.call(post)


def health_budget(healthcheck: Mapping[str, Any] | None) -> float:
    """How long a new replica may take to become healthy: its start period, then every retry's
    interval and timeout, plus a margin."""
    if not healthcheck:
        return 0.0
    nanos = 1e9
    interval = (healthcheck.get("Interval") or 30 * nanos) / nanos
    timeout = (healthcheck.get("Timeout") or 30 * nanos) / nanos
    return (healthcheck.get("StartPeriod") or 0) / nanos + (interval + timeout) * ((healthcheck.get("Retries") or 3) + 1) + 5


def wait_ready(backend: DockerBackend, container_id: str, *, healthy: bool, progress: Progress,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Returns once the container has kept running for START_SETTLE seconds (and, when `healthy`
    and it has a health check, reports healthy); ReplicaFailed with its exit code or health
    output otherwise."""
    data = backend.client.call(lambda api: api.inspect_container(container_id))
    name = str(data.get("Name", "")).lstrip("/")
    budget = health_budget((data.get("Config") or {}).get("Healthcheck")) if healthy else 0.0
    started = clock()
    deadline = started + budget
    announced = False
    while True:
        state = data.get("State") or {}
        health = (state.get("Health") or {}).get("Status")
        if not state.get("Running"):
            raise ReplicaFailed(f"{name} stopped right after starting (exit code {state.get('ExitCode')}): {last_logs(backend, container_id)}",
                                "check the command and the image")
        settled = clock() >= started + START_SETTLE
        if settled and (budget == 0 or health in (None, "healthy")):
            return
        if budget and (health == "unhealthy" or clock() >= deadline):
            log = ((state.get("Health") or {}).get("Log") or [{}])[-1]
            raise ReplicaFailed(f"{name} did not become healthy ({health}; last check: exit {log.get('ExitCode')}, {str(log.get('Output', '')).strip()[:200]!r})",
                                "check the health check command against the image")
        if budget and not announced:
            progress(f"waiting for {name} to become healthy")
            announced = True
        sleep(READY_POLL if settled else max(0.0, min(READY_POLL, started + START_SETTLE - clock())))
        data = backend.client.call(lambda api: api.inspect_container(container_id))


def last_logs(backend: DockerBackend, container_id: str, lines: int = 5) -> str:
    try:
        text = backend.client.call(lambda api: api.logs(container_id, tail=lines))
    except DockerRequestError:
        return "no logs"
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return " | ".join(line for line in text.strip().splitlines()) or "no output"


def default_placement(nodes: Sequence[SchedNode], requirements: Requirements, count: int, algorithm: str) -> list[str]:
    """The scheduler's decision (rtm.scheduling): one engine name per new replica, or a
    DockerRequestError explaining, as kube-scheduler does, why some do not fit anywhere."""
    result = schedule(nodes, requirements, count, algorithm if algorithm != "ip_hash" else "round_robin")
    unplaced = [p for p in result.placements if p.node is None]
    if unplaced:
        reason = unplaced[0].reason or ""
        hint = ("uncordon its machine (rtm-console uncordon node/NAME) or add an engine" if REASON_UNSCHEDULABLE in reason
                else "free capacity, lower resources.requests, or add an engine")
        raise PlacementError(f"no engine can take replica {unplaced[0].replica + 1} of {count}: {reason}", hint)
    return [p.node for p in result.placements if p.node is not None]


def requirements_of(document: Any) -> tuple[Requirements, str]:
    """What one replica needs (rtm.scheduling.from_spec: the policy's resource_requirements,
    else the container's requests; node affinity; runtime "docker") and the algorithm: the
    policy's first, else least_connections (replicas spread over the engines)."""
    policy = document.get("SchedulingPolicy")
    algorithm = policy.default_algorithm if policy is not None else "least_connections"
    return requirements(document), algorithm


def choose_engines(backends: Sequence[DockerBackend], requirements: Requirements, count: int, algorithm: str,
                   placement: Placement, workload: str | None = None, exclude: Collection[str] = ()) -> list[DockerBackend]:
    """Engines for `count` new replicas: the placement function's choice among the engines that
    answer, even when there is one (its free capacity, its machine's cordon and the affinity count)."""
    if count == 0:
        return []
    from backends.docker.engine_nodes import engine_nodes

    by_name = {b.engine.name: b for b in backends}
    return [by_name[name] for name in placement(engine_nodes(backends, workload, exclude), requirements, count, algorithm)]
