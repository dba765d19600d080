"""Adding and removing a workload's replicas over the engines, placed by the scheduler.

New replicas go where `rtm.scheduling.Scheduler` puts them: the engines that answer, as nodes
with their free capacity (what the running managed containers reserve is taken off), the
workload's requirements (cpu/memory requests, node affinity) and its algorithm. Each engine's
current count of the workload's replicas is its `connections`, so least_connections spreads
a workload over the engines. A replica is named `<workload>-<index>` with the lowest index
no known replica uses. Scaling in removes the highest indexes first.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from backends.base import BackendUnavailable
from backends.docker.mapping import workload_request
from console.supervisor.engines import Engine, Replica
from console.supervisor.workloads import Workload
from rtm.scheduling import Scheduler

_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)


def workload_lock(name: str) -> threading.Lock:
    """One lock per workload: the failover and autoscaling loops never change it at once."""
    return _locks[name]


class PlacementError(RuntimeError):
    """No engine can take the replica; the message is the scheduler's explanation."""


@dataclass(frozen=True)
class Fleet:
    """What the engines that answered hold: every managed replica, by engine."""

    replicas: dict[str, list[Replica]]  # engine name -> its managed replicas (all workloads)
    unreachable: dict[str, str]  # engine name -> why it did not answer

    def of(self, workload: str) -> list[Replica]:
        return [r for replicas in self.replicas.values() for r in replicas if r.workload == workload]


def survey(engines: Sequence[Engine]) -> Fleet:
    replicas: dict[str, list[Replica]] = {}
    unreachable: dict[str, str] = {}
    for engine in engines:
        try:
            replicas[engine.name] = engine.replicas()
        except BackendUnavailable as error:
            unreachable[engine.name] = str(error)
    return Fleet(replicas, unreachable)


def free_indexes(used: Iterable[int]) -> Iterable[int]:
    taken = set(used)
    index = 0
    while True:
        if index not in taken:
            yield index
        index += 1


def _reserved(replicas: Sequence[Replica]) -> tuple[int, int]:
    """cpu millis and memory bytes the running replicas reserve (their requests, read back from
    CpuShares = millis * 1024 / 1000 and MemoryReservation)."""
    running = [r for r in replicas if r.running]
    cpu = sum(r.resources.get("CpuShares", 0) * 1000 // 1024 for r in running if r.resources.get("CpuShares", 0) > 2)
    memory = sum(r.resources.get("MemoryReservation", 0) for r in running)
    return cpu, memory


def add_replicas(
    workload: Workload,
    engines: Sequence[Engine],
    count: int,
    fleet: Fleet | None = None,
    exclude: Iterable[str] = (),
    known: Iterable[Replica] = (),
) -> list[Replica]:
    """Create `count` replicas on engines chosen by the scheduler (never on `exclude`).
    `known` are replicas to count as existing for naming (e.g. those on a lost engine).
    Raises PlacementError when a replica fits nowhere (those placed before it are kept)."""
    if count <= 0:
        return []
    fleet = fleet or survey(engines)
    excluded = set(exclude)
    usable = [e for e in engines if e.name in fleet.replicas and e.name not in excluded]
    nodes = []
    for engine in usable:
        here = fleet.replicas[engine.name]
        cpu, memory = _reserved(here)
        mine = sum(1 for r in here if r.workload == workload.name)
        try:
            nodes.append(engine.node(cpu, memory, replicas_here=mine))
        except BackendUnavailable:
            continue
    by_name = {engine.name: engine for engine in usable}
    scheduler = Scheduler(nodes, workload.requirements, workload.algorithm)
    indexes = free_indexes([r.index for r in fleet.of(workload.name)] + [r.index for r in known])
    created: list[Replica] = []
    for _ in range(count):
        placement = scheduler.place(None if workload.algorithm != "ip_hash" else f"{workload.name}-{len(created)}")
        if placement.node is None:
            raise PlacementError(placement.reason or "no engine can take the replica")
        engine = by_name[placement.node]
        request = workload_request(workload.document, workload.base_dir, engine_runtimes=engine.runtimes())
        created.append(engine.create_replica(request, next(indexes)))
    return created


def remove_replicas(engines: Sequence[Engine], replicas: Iterable[Replica]) -> list[str]:
    by_name = {engine.name: engine for engine in engines}
    removed = []
    for replica in replicas:
        by_name[replica.engine].remove(replica.id)
        removed.append(f"{replica.name}@{replica.engine}")
    return removed


@dataclass(frozen=True)
class ScaleResult:
    before: int
    after: int
    created: tuple[str, ...]
    removed: tuple[str, ...]


def scale_workload(workload: Workload, engines: Sequence[Engine], target: int) -> ScaleResult:
    """Bring the workload to `target` replicas on the engines that answer."""
    if target < 0:
        raise ValueError("a replica count cannot be negative")
    with workload_lock(workload.name):
        fleet = survey(engines)
        current = sorted(fleet.of(workload.name), key=lambda r: r.index)
        if target > len(current):
            created = add_replicas(workload, engines, target - len(current), fleet)
            return ScaleResult(len(current), target, tuple(f"{r.name}@{r.engine}" for r in created), ())
        surplus = current[target:]
        removed = remove_replicas(engines, reversed(surplus))
        return ScaleResult(len(current), target, (), tuple(removed))
