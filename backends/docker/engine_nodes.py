"""Docker engines as scheduler nodes: the one place engine names and node ids are mapped.

A node is a machine, identified by the hostname its runtimes report (backends/machines.py:
`docker info`'s Name for an engine); cordons are kept by that id. Replicas are placed per
engine (two engines on one machine are two places for a container), so each engine is a `SchedNode` whose id is the engine's name, whose `hostname`
label is its machine, and which is cordoned when its machine is.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from backends.base import BackendUnavailable
from backends.docker.backend import DockerBackend
from backends.docker.errors import DockerRequestError
from backends.machines import machine_id
from rtm.scheduling import SchedNode


def machine_of(backend: DockerBackend) -> str:
    """The node id of the machine that carries the engine: the hostname the engine reports."""
    return machine_id(backend.info().name, backend.engine.name)


def requested_cpu_millis(cpu_shares: int) -> int:
    """A container's CPU request from its shares (the kubelet's millis * 1024 // 1000, read
    back rounded up so that a request is never under-counted)."""
    return -(-cpu_shares * 1000 // 1024) if cpu_shares > 0 else 0


def engine_node(backend: DockerBackend, workload: str | None = None) -> SchedNode:
    """The engine as a scheduler node: its CPUs and memory less what its running containers
    requested, runtime "docker", labels zone / hostname (its machine) / engine plus configured
    ones, cordoned when its machine is. Its connections are its running replicas of `workload`
    (of every workload when None), so least_connections spreads a workload over the engines.
    BackendUnavailable when the engine does not answer."""
    info = backend.info()
    running = [state for state in backend.containers().values() if state.running]
    machine = machine_id(info.name, backend.engine.name)
    endpoint = backend.engine
    labels = {"zone": endpoint.zone, "hostname": machine, "engine": endpoint.name, **endpoint.labels}
    return SchedNode(
        id=endpoint.name,
        zone=labels["zone"],
        cpu_millis=max(0, info.cpu_count * 1000 - sum(requested_cpu_millis(s.cpu_shares) for s in running)),
        memory_bytes=max(0, info.memory_bytes - sum(s.memory_reservation for s in running)),
        labels=labels,
        connections=sum(1 for s in running if s.workload is not None and (workload is None or s.workload == workload)),
        runtimes=frozenset({"docker"}),
        cordoned=bool(backend.cordoned(machine)),
    )


def engine_nodes(backends: Sequence[DockerBackend], workload: str | None = None, exclude: Collection[str] = ()) -> list[SchedNode]:
    """Each engine that answers (and is not in `exclude`, engine names) as a scheduler node."""
    nodes = []
    for backend in backends:
        if backend.engine.name in exclude:
            continue
        try:
            nodes.append(engine_node(backend, workload))
        except (BackendUnavailable, DockerRequestError):  # an engine that does not answer takes no replica
            continue
    return nodes
