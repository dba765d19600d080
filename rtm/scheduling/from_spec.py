"""Turn validated specs into what the scheduler takes: nodes from a `Nodes` inventory, and one
replica's requirements from a workload (or a bare SchedulingPolicy)."""

from __future__ import annotations

from rtm.documents import Document
from rtm.kinds.node_inventory import NodeSpec
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
    """What one replica asks for. cpu and memory each: the policy's resource_requirements, else
    the container's requests, else a VM's vCPUs and memory size; the policy's node_affinity
    constraints as one term (they are ANDed); the runtime a replica of this kind needs."""
    policy: SchedulingPolicy | None = document.get("SchedulingPolicy")
    wanted = policy.resource_requirements if policy else None
    cpu, memory = (wanted.cpu, wanted.memory) if wanted is not None else (None, None)
    container = document.get("ContainerRuntime")
    if container is not None:
        cpu = cpu if cpu is not None else container.resources.requests.cpu
        memory = memory if memory is not None else container.resources.requests.memory
    vm = document.get("VirtualMachineRuntime")
    if vm is not None:
        cpu = cpu if cpu is not None else vm.cpu.vcpus * 1000
        memory = memory if memory is not None else vm.memory.size
    affinity = ()
    if policy and policy.affinity:
        affinity = (tuple(AffinityExpr(c.key, c.operator, c.string_values) for c in policy.affinity),)
    return Requirements(cpu or 0, memory or 0, affinity, RUNTIME_NEEDED.get(document.runtime_kind or ""))
