"""Turn validated specs into what the scheduler takes: nodes from a `Nodes` inventory, and one
replica's requirements from a workload (or a bare SchedulingPolicy)."""

from __future__ import annotations

from rtm.documents import Document
from rtm.kinds.nodes import NodeSpec
from rtm.kinds.scheduling import SchedulingPolicy
from rtm.scheduling.model import AffinityExpr, Requirements, SchedNode

RUNTIME_NEEDED = {"ContainerRuntime": "docker", "VirtualMachineRuntime": "libvirt"}


def nodes_from_inventory(nodes: tuple[NodeSpec, ...]) -> list[SchedNode]:
    return [
        SchedNode(
            id=n.id,
            zone=n.all_labels.get("zone", ""),
            cpu_millis=n.cpu,
            memory_bytes=n.memory,
            labels=n.all_labels,
            weight=n.weight,
            connections=n.connections,
        )
        for n in nodes
    ]


def requirements(document: Document) -> Requirements:
    """cpu and memory from the policy's resource_requirements, else the container's requests;
    the policy's node_affinity constraints as one term (they are ANDed); the runtime a replica
    of this kind needs on its node."""
    policy: SchedulingPolicy | None = document.get("SchedulingPolicy")
    cpu = memory = 0
    wanted = policy.resource_requirements if policy else None
    container = document.get("ContainerRuntime")
    vm = document.get("VirtualMachineRuntime")
    if wanted is not None:
        cpu, memory = wanted.cpu or 0, wanted.memory or 0
    elif container is not None:
        cpu, memory = container.resources.requests.cpu or 0, container.resources.requests.memory or 0
    elif vm is not None:
        cpu, memory = vm.cpu.vcpus * 1000, vm.memory.size
    affinity = ()
    if policy and policy.affinity:
        affinity = (tuple(AffinityExpr(c.key, c.operator, c.string_values) for c in policy.affinity),)
    return Requirements(cpu, memory, affinity, RUNTIME_NEEDED.get(document.runtime_kind or ""))
