"""Spec documents and live records -> the inputs of the scheduler and the autoscaler.

Pure: the placement preview and the scaling screen call rtm's `schedule`, `decide` and
`recommend_vertical` with what these functions build, and show the results as they come.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backends.records import ContainerInfo, NodeInfo
from rtm.autoscaling import HorizontalSettings, VerticalSettings, utilization_from_usage
from rtm.autoscaling.settings import Behavior, RatePolicy, ScalingRules, scaling_rules_with_defaults
from rtm.documents import Document, load_file, spec_files
from rtm.kinds.autoscaling import HorizontalScaling, VerticalScaling
from rtm.kinds.nodes import NodeSpec
from rtm.scheduling import AffinityExpr, Requirements, SchedNode

RUNTIME_OF_KIND = {"ContainerRuntime": "docker", "VirtualMachineRuntime": "libvirt"}


@dataclass(frozen=True)
class SpecSource:
    """A workload or a node inventory found in a spec file."""

    label: str  # what the pickers show
    path: Path
    document: Document


@dataclass(frozen=True)
class SpecCatalog:
    workloads: tuple[SpecSource, ...]
    inventories: tuple[SpecSource, ...]
    unreadable: tuple[str, ...]  # files that could not be read or hold errors


def find_specs(folders: Iterable[tuple[str, Path]]) -> SpecCatalog:
    """Workloads and `Nodes:` inventories in the spec files below each (origin, folder).

    Files with errors are listed in `unreadable`, their valid documents still used.
    """
    workloads: list[SpecSource] = []
    inventories: list[SpecSource] = []
    unreadable: list[str] = []
    for origin, folder in folders:
        if not folder.is_dir():
            continue
        for path in spec_files([folder]):
            try:
                result = load_file(path)
            except OSError as exc:
                unreadable.append(f"{path}: {exc.strerror or exc}")
                continue
            if not result.ok:
                unreadable.append(f"{path}: {sum(f.severity == 'error' for f in result.findings)} error(s)")
            for document in result.documents:
                where = f"{origin}: {path.name}"
                if document.is_workload:
                    workloads.append(SpecSource(f"{document.name} ({where})", path, document))
                if document.nodes is not None:
                    inventories.append(SpecSource(f"{len(document.nodes)} nodes ({where})", path, document))
    return SpecCatalog(tuple(workloads), tuple(inventories), tuple(unreadable))


# ------------------------------------------------------------------------------ scheduler


def requirements_for(document: Document) -> Requirements:
    """What one replica of the workload asks for.

    cpu/memory: the SchedulingPolicy's resource_requirements, else the container's requests,
    else a VM's vCPUs and memory size; node affinity from the policy's constraints (all ANDed);
    the runtime the replica needs on its node.
    """
    cpu = memory = None
    policy = document.get("SchedulingPolicy")
    if policy is not None and policy.resource_requirements is not None:
        cpu, memory = policy.resource_requirements.cpu, policy.resource_requirements.memory
    container = document.get("ContainerRuntime")
    if container is not None:
        cpu = cpu if cpu is not None else container.resources.requests.cpu
        memory = memory if memory is not None else container.resources.requests.memory
    vm = document.get("VirtualMachineRuntime")
    if vm is not None:
        cpu = cpu if cpu is not None else vm.cpu.vcpus * 1000
        memory = memory if memory is not None else vm.memory.size
    affinity: tuple[tuple[AffinityExpr, ...], ...] = ()
    if policy is not None and policy.affinity:
        affinity = (tuple(AffinityExpr(c.key, c.operator, c.string_values) for c in policy.affinity),)
    return Requirements(
        cpu_millis=cpu or 0,
        memory_bytes=memory or 0,
        affinity=affinity,
        runtime=RUNTIME_OF_KIND.get(document.runtime_kind or ""),
    )


def algorithms_for(document: Document) -> tuple[str, ...]:
    """The policy's algorithms first (its default first), then the others."""
    from rtm.scheduling import ALGORITHMS

    policy = document.get("SchedulingPolicy")
    preferred = tuple(policy.algorithms) if policy is not None else ()
    return preferred + tuple(a for a in ALGORITHMS if a not in preferred)


def nodes_from_inventory(nodes: Sequence[NodeSpec]) -> list[SchedNode]:
    return [
        SchedNode(
            id=node.id,
            zone=node.zone or "",
            cpu_millis=node.cpu,
            memory_bytes=node.memory,
            labels=node.all_labels,
            weight=node.weight,
            connections=node.connections,
        )
        for node in nodes
    ]


def nodes_from_live(nodes: Sequence[NodeInfo]) -> list[SchedNode]:
    """Live machines: all their CPUs, the memory available now, the runtimes they carry."""
    return [
        SchedNode(
            id=node.id,
            zone=node.zone,
            cpu_millis=node.cpu_millis_allocatable,
            memory_bytes=node.memory_bytes_available,
            labels={"zone": node.zone, **node.labels},
            runtimes=node.runtimes,
            cordoned=node.cordoned,
        )
        for node in nodes
    ]


def client_keys(replicas: int) -> list[str]:
    """ip_hash needs one client key per replica; the preview uses stand-in client addresses."""
    return [f"10.0.{index // 250}.{index % 250 + 1}" for index in range(replicas)]


# ------------------------------------------------------------------------------ autoscaler


def horizontal_settings(spec: HorizontalScaling, tolerance: float | None = None) -> HorizontalSettings:
    behavior = None
    if spec.behavior is not None:
        behavior = Behavior(
            scale_up=_rules("scale_up", spec.behavior.scale_up),
            scale_down=_rules("scale_down", spec.behavior.scale_down),
        )
    return HorizontalSettings(
        min_replicas=max(1, spec.min_replicas),
        max_replicas=max(1, spec.max_replicas, spec.min_replicas),
        target_cpu_utilization=spec.target_cpu_utilization,
        target_memory_utilization=spec.target_memory_utilization,
        scale_up_cooldown=spec.scale_up_cooldown,
        scale_down_cooldown=spec.scale_down_cooldown,
        tolerance=spec.tolerance if tolerance is None else tolerance,
        behavior=behavior,
    )


def _rules(direction: str, rules) -> ScalingRules | None:  # type: ignore[no-untyped-def]
    if rules is None:
        return None
    policies = None
    if rules.policies is not None:
        policies = [RatePolicy(p.type, p.value, p.period) for p in rules.policies]
    return scaling_rules_with_defaults(direction, rules.stabilization_window, rules.select_policy, policies)  # type: ignore[arg-type]


def vertical_settings(spec: VerticalScaling) -> VerticalSettings:
    return VerticalSettings(
        min_cpu_millis=spec.min_cpu,
        max_cpu_millis=spec.max_cpu,
        min_memory_bytes=spec.min_memory,
        max_memory_bytes=spec.max_memory,
        cpu_step_millis=spec.adjustment_step,
        memory_step_bytes=spec.memory_adjustment_step,
    )


@dataclass(frozen=True)
class LiveWorkload:
    """What the containers backend reports for one workload's replicas."""

    replicas: int  # running replicas
    metrics: dict[str, float]  # utilization percent by metric ("cpu", "memory")
    cpu_samples_millis: tuple[float, ...]
    memory_samples_bytes: tuple[float, ...]
    cpu_limit_millis: int | None
    memory_limit_bytes: int | None


def live_workload(document: Document, containers: Sequence[ContainerInfo]) -> LiveWorkload | None:
    """Utilization of the workload's running replicas against their requests, as the HPA
    computes it; None when no replica of it is running."""
    running = [c for c in containers if c.workload == document.name and c.state == "running"]
    if not running:
        return None
    spec = document.get("ContainerRuntime")
    requests = spec.resources.requests if spec is not None else None
    limits = spec.resources.limits if spec is not None else None
    metrics: dict[str, float] = {}
    cpu_samples = tuple(c.cpu_ratio * 1000 for c in running if c.cpu_ratio is not None)
    if requests is not None and requests.cpu and len(cpu_samples) == len(running):
        metrics["cpu"] = utilization_from_usage(cpu_samples, [requests.cpu] * len(running))
    memory_samples = tuple(float(c.memory_working_set_bytes) for c in running)
    if requests is not None and requests.memory:
        metrics["memory"] = utilization_from_usage(memory_samples, [requests.memory] * len(running))
    return LiveWorkload(
        replicas=len(running),
        metrics=metrics,
        cpu_samples_millis=cpu_samples,
        memory_samples_bytes=memory_samples,
        cpu_limit_millis=limits.cpu if limits is not None else None,
        memory_limit_bytes=limits.memory if limits is not None else None,
    )
