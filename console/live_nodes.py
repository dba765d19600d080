"""The live nodes: every machine the configured backends reach, one scheduler node per machine.

A node is a machine, identified by the hostname its runtimes report (backends/docker/engine_nodes.py
maps Docker engines to machines; a libvirt host reports its hostname; the host backend is this
machine). `rtm-console schedule` without `--nodes`, the console's placement preview and
`cordon` all see these nodes, so they see what apply places on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from backends.base import BackendUnavailable
from rtm.scheduling import SchedNode


@runtime_checkable
class RuntimeNode(Protocol):
    """A runtime backend (a Docker engine, a libvirt host) that can describe its machine."""

    kind: str

    def sched_node(self) -> SchedNode: ...


def sched_node_from_info(info: Any) -> SchedNode:
    """A NodeInfo (this machine, from the host backend) as the scheduler sees it: free capacity now."""
    return SchedNode(
        id=info.id,
        zone=info.zone,
        cpu_millis=info.cpu_millis_allocatable,
        memory_bytes=info.memory_bytes_available,
        labels=dict(info.labels),
        runtimes=frozenset(info.runtimes),
        cordoned=info.cordoned,
    )


def machine_nodes(host_nodes: Iterable[SchedNode], runtime_nodes: Iterable[SchedNode],
                  cordoned: Callable[[str], bool] = lambda _node: False) -> list[SchedNode]:
    """One node per machine: a host node keeps its capacity and gains the runtimes found on its
    machine; a machine known only through its runtimes takes the first one's capacity. A
    machine is cordoned when any of its nodes is, or `cordoned(machine)` says so."""
    machines: dict[str, list[SchedNode]] = {}
    for node in host_nodes:
        machines.setdefault(node.id, []).append(node)
    for node in runtime_nodes:
        machines.setdefault(str(node.labels.get("hostname") or node.id), []).append(node)
    merged = []
    for machine, nodes in machines.items():
        base = nodes[0]
        labels = {key: value for node in reversed(nodes) for key, value in node.labels.items()}
        merged.append(SchedNode(
            id=machine, zone=base.zone, cpu_millis=base.cpu_millis, memory_bytes=base.memory_bytes,
            labels={**labels, "hostname": machine}, weight=base.weight, connections=sum(n.connections for n in nodes),
            runtimes=frozenset().union(*(n.runtimes for n in nodes)),
            cordoned=any(n.cordoned for n in nodes) or bool(cordoned(machine)),
        ))  # fmt: skip
    return merged


def runtime_nodes(backends: Iterable[Any]) -> list[SchedNode]:
    """Each runtime backend that answers (a Docker engine, a libvirt host) as a node."""
    nodes = []
    for backend in backends:
        if isinstance(backend, RuntimeNode):
            try:
                nodes.append(backend.sched_node())
            except BackendUnavailable:
                continue  # a runtime that does not answer takes no placement
    return nodes


def live_nodes(backends: Sequence[Any], cordoned: Callable[[str], bool] = lambda _node: False) -> list[SchedNode]:
    """Poll this machine once and ask every runtime backend that answers for its machine."""
    hosts = [sched_node_from_info(info) for backend in backends if backend.kind == "nodes" for info in backend.poll().items]
    return machine_nodes(hosts, runtime_nodes(backends), cordoned)
