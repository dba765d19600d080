"""Spec documents and live records -> the inputs of the scheduler and the autoscaler.

Pure: the placement preview and the scaling screen call rtm's `schedule`, `decide` and
`recommend_vertical` with what these functions build, and show the results as they come.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backends.records import ContainerInfo, NodeInfo
from console.live_nodes import machine_nodes, runtime_nodes, sched_node_from_info
from rtm.autoscaling import ReplicaUsage, workload_utilization
from rtm.autoscaling.from_spec import resource_amounts, settings_of_horizontal, settings_of_vertical
from rtm.scheduling.from_spec import nodes_from_inventory, requirements  # noqa: F401 - used by the screens
from rtm.documents import Document, load_file, spec_files
from rtm.scheduling import SchedNode



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


requirements_for = requirements  # rtm.scheduling.from_spec: the one conversion


def algorithms_for(document: Document) -> tuple[str, ...]:
    """The policy's algorithms first (its default first), then the others."""
    from rtm.scheduling import ALGORITHMS

    policy = document.get("SchedulingPolicy")
    preferred = tuple(policy.algorithms) if policy is not None else ()
    return preferred + tuple(a for a in ALGORITHMS if a not in preferred)


def nodes_from_live(nodes: Sequence[NodeInfo], backends: Sequence[object] = ()) -> list[SchedNode]:
    """Live machines, as apply and `schedule` see them: this machine (all its CPUs, the memory
    available now) with every runtime backend (Docker engine, libvirt host) merged into the
    machine that carries it (console/live_nodes.py)."""
    return machine_nodes([sched_node_from_info(node) for node in nodes], runtime_nodes(backends))


def client_keys(replicas: int) -> list[str]:
    """ip_hash needs one client key per replica; the preview uses stand-in client addresses."""
    return [f"10.0.{index // 250}.{index % 250 + 1}" for index in range(replicas)]


# ------------------------------------------------------------------------------ autoscaler


horizontal_settings = settings_of_horizontal  # rtm.autoscaling.from_spec
vertical_settings = settings_of_vertical


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
    """Utilization of the workload's running replicas by the one measure the autoscaler uses
    (rtm.autoscaling.workload_utilization: request, else limit); None when none is running."""
    running = [c for c in containers if c.workload == document.name and c.state == "running"]
    if not running:
        return None
    cpu, memory = resource_amounts(document)
    usage = [ReplicaUsage(True, c.cpu_ratio * 1000 if c.cpu_ratio is not None else None, float(c.memory_working_set_bytes)) for c in running]
    return LiveWorkload(
        replicas=len(running),
        metrics=workload_utilization(usage, cpu, memory),
        cpu_samples_millis=tuple(u.cpu_millis for u in usage if u.cpu_millis is not None),
        memory_samples_bytes=tuple(u.memory_bytes for u in usage if u.memory_bytes is not None),
        cpu_limit_millis=cpu.limit,  # type: ignore[arg-type]
        memory_limit_bytes=memory.limit,  # type: ignore[arg-type]
    )
