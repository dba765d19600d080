"""Nodes for placement from the live backends: this machine (psutil) with the runtimes it
carries, plus every remote Docker engine or libvirt host as a node of its own."""

from __future__ import annotations

from typing import Any

from rtm.scheduling import SchedNode


def sched_node_from_info(info: Any) -> SchedNode:
    """A NodeInfo (host or remote engine) as the scheduler sees it: free capacity now."""
    return SchedNode(
        id=info.id,
        zone=info.zone,
        cpu_millis=info.cpu_millis_allocatable,
        memory_bytes=info.memory_bytes_available,
        labels=dict(info.labels),
        runtimes=frozenset(info.runtimes),
        cordoned=info.cordoned,
    )


def live_nodes(backends: list[Any]) -> list[SchedNode]:
    """Poll each node source once. Backends that are machines of their own (a remote Docker
    engine, a remote libvirt host) expose `node_info()`; the local ones are merged into the host."""
    nodes: list[SchedNode] = []
    for backend in backends:
        if backend.kind == "nodes":
            nodes.extend(sched_node_from_info(info) for info in backend.poll().items)
        elif callable(getattr(backend, "remote_node_info", None)):
            info = backend.remote_node_info()
            if info is not None:
                nodes.append(sched_node_from_info(info))
    return nodes
