"""The replica service: the one way every caller changes a container workload's replica count.

`apply` and `delete` (through ContainerHandler), `scale --workload`, the console's scaling
screen and container actions, the autoscaler, failover, rescheduling and reconciliation all
come here. It lists a workload's replicas on the engines (`survey`), places new ones through
`rtm.scheduling` on the engines as nodes (backends/docker/engine_nodes.py: free capacity, the
machine's cordon, affinity), removes surplus ones, holds one lock per workload for all of it
and returns typed results. With a desired-state store, a scaling records the new count.

A replica is a loose container `<workload>-<index>` labelled with its workload, index and spec
hash (backends/docker/mapping.py). A workload whose target is a Swarm service would get a
service of its own beside this one; Swarm's containers are never counted here.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.base import BackendUnavailable
from backends.docker.backend import DockerBackend
from backends.docker.desired import DesiredFormatError, DesiredStore
from backends.docker.errors import DockerRequestError
from backends.docker.images import Progress
from backends.docker.mapping import LABEL_REPLICA, LABEL_WORKLOAD, CreateRequest, WorkloadRequest, replica_name, workload_request
from backends.docker.replicas import (
    Placement,
    Replica,
    choose_engines,
    create_replica,
    default_placement,
    find_replicas,
    inspect_replica,
    is_swarm_container,
    remove_quietly,
    requirements_of,
    wait_ready,
)
from backends.docker.engine_nodes import requested_cpu_millis
from backends.files import exclusive
from rtm.scheduling import Requirements

class WorkloadLock:
    """One workload's lock in this process, re-entrant, which the outermost holder extends to
    other processes with the desired-state store's lock file (a CLI apply and the agent's
    reconciliation never change the same workload at once either)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0

    @contextlib.contextmanager
    def hold(self, lock_file: Path | None = None) -> Iterator[None]:
        with self._lock:
            outermost = self._depth == 0
            self._depth += 1
            try:
                with exclusive(lock_file) if outermost and lock_file is not None else contextlib.nullcontext():
                    yield
            finally:
                self._depth -= 1

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


_locks: dict[str, WorkloadLock] = defaultdict(WorkloadLock)
_locks_guard = threading.Lock()


def workload_lock(name: str) -> WorkloadLock:
    """One lock per workload: an apply, a scaling (CLI, console, autoscaler), failover and
    reconciliation never change the same workload at once. `with workload_lock(name):` holds it
    in this process; `ReplicaService.holding(name)` also across processes."""
    with _locks_guard:
        return _locks[name]


@dataclass(frozen=True)
class ReplicaTemplate:
    """How to make replica `index` of a workload, what one needs, and how to place it."""

    workload: str
    make: Callable[[int], CreateRequest]
    requirements: Requirements
    algorithm: str


def template_from_request(request: WorkloadRequest, requirements: Requirements, algorithm: str) -> ReplicaTemplate:
    return ReplicaTemplate(request.workload, request.for_replica, requirements, algorithm)


def template_from_document(document: Any, base_dir: Path) -> ReplicaTemplate:
    """From the spec: its create request and the scheduling policy's requirements."""
    return template_from_request(workload_request(document, base_dir), *requirements_of(document))


def template_from_replica(source: Replica) -> ReplicaTemplate:
    """A copy of a live replica (its current, possibly updated, limits), when no spec is given."""
    config = {k: v for k, v in (source.inspect.get("Config") or {}).items() if k not in _PER_CONTAINER}
    host = dict(source.inspect.get("HostConfig") or {})
    body = {**config, "Image": (source.inspect.get("Config") or {}).get("Image"), "Labels": dict(config.get("Labels") or {}),
            "HostConfig": host}

    def make(index: int) -> CreateRequest:
        return CreateRequest(replica_name(source.workload, index), index, {**body, "Labels": {**body["Labels"], LABEL_REPLICA: str(index)}})

    requirements = Requirements(requested_cpu_millis(source.resources.get("CpuShares", 0)), source.resources.get("MemoryReservation", 0),
                                runtime="docker")
    return ReplicaTemplate(source.workload, make, requirements, "least_connections")


# Config fields that describe one container rather than the workload: not copied to a new replica.
_PER_CONTAINER = ("Hostname", "Domainname", "Image")


@dataclass(frozen=True)
class Fleet:
    """What the engines that answered hold: the managed replicas, by engine name."""

    replicas: dict[str, list[Replica]]
    unreachable: dict[str, str]  # engine name -> why it did not answer

    def of(self, workload: str) -> list[Replica]:
        return sorted((r for replicas in self.replicas.values() for r in replicas if r.workload == workload), key=lambda r: r.order)


@dataclass(frozen=True)
class ScaleResult:
    workload: str
    before: int
    after: int
    created: tuple[str, ...]  # "<name>@<engine>"
    removed: tuple[str, ...]

    @property
    def lines(self) -> list[str]:
        """What was done, one line each, as apply says it."""
        created = [f"created container/{name} on docker@{engine}" for name, _, engine in (n.rpartition("@") for n in self.created)]
        return created + [f"removed container/{n.rpartition('@')[0]}" for n in self.removed]


def surplus(replicas: Sequence[Replica], desired: int) -> list[Replica]:
    """The replicas to remove to keep `desired`: containers of the workload without a replica
    index first, then the highest indexes."""
    unindexed = [r for r in replicas if r.index is None]
    indexed = sorted((r for r in replicas if r.index is not None), key=lambda r: r.order, reverse=True)
    keep = max(0, desired)
    extra = max(0, len(replicas) - keep)
    return (unindexed + indexed)[:extra]


def free_indexes(used: Iterable[int | None]) -> Iterator[int]:
    taken = {i for i in used if i is not None}
    index = 0
    while True:
        if index not in taken:
            yield index
        index += 1


class ReplicaService:
    """A workload's replicas over the configured engines."""

    def __init__(self, backends: Sequence[DockerBackend], *, placement: Placement = default_placement,
                 desired: DesiredStore | None = None) -> None:
        self.backends = list(backends)
        self.placement = placement
        self.desired = desired

    def template(self, workload: str, document: Any = None, base_dir: Path | None = None) -> ReplicaTemplate:
        """How new replicas of `workload` are made: from `document` when given, else from its
        desired-state record (the applied spec), else as a copy of its lowest replica."""
        if document is not None:
            return template_from_document(document, base_dir or Path("."))
        try:
            record = self.desired.get(workload) if self.desired is not None else None
        except DesiredFormatError:
            record = None
        if record is not None:
            return template_from_request(record.request(), record.requirements, record.algorithm)
        live = find_replicas(self.backends, workload)
        if not live:
            raise DockerRequestError(f"workload {workload} has no replica to copy", "apply its spec instead (rtm-console apply FILE)")
        return template_from_replica(live[0])

    def holding(self, workload: str) -> contextlib.AbstractContextManager[None]:
        """The workload's lock, across processes when there is a desired-state store."""
        return workload_lock(workload).hold(self.desired.lock_file(workload) if self.desired is not None else None)

    def backend(self, engine: str) -> DockerBackend | None:
        return next((b for b in self.backends if b.engine.name == engine), None)

    def survey(self, workload: str | None = None, engines: Collection[str] | None = None) -> Fleet:
        """Every managed replica (of `workload`, else of all) on the engines that answer."""
        replicas: dict[str, list[Replica]] = {}
        unreachable: dict[str, str] = {}
        for backend in self.backends:
            if engines is not None and backend.engine.name not in engines:
                continue
            try:
                replicas[backend.engine.name] = find_replicas([backend], workload)
            except BackendUnavailable as error:
                unreachable[backend.engine.name] = str(error)
        return Fleet(replicas, unreachable)

    def counts(self, skip: Collection[str] = ()) -> tuple[dict[str, int], dict[str, str]]:
        """Replicas per workload on the engines that answer (one listing per engine, no
        inspection; engines in `skip` left out), and the engines that did not answer."""
        counts: dict[str, int] = defaultdict(int)
        unreachable: dict[str, str] = {}
        for backend in self.backends:
            if backend.engine.name in skip:
                continue
            try:
                listed = backend.client.call(lambda api: api.containers(all=True, filters={"label": LABEL_WORKLOAD}))
            except BackendUnavailable as error:
                unreachable[backend.engine.name] = str(error)
                continue
            for summary in listed:
                labels = summary.get("Labels") or {}
                if not is_swarm_container(labels):
                    counts[labels.get(LABEL_WORKLOAD, "")] += 1
        return dict(counts), unreachable

    def add(self, template: ReplicaTemplate, count: int, *, fleet: Fleet | None = None, exclude: Collection[str] = (),
            known: Iterable[Replica] = (), progress: Progress = lambda _line: None) -> list[Replica]:
        """Create `count` replicas on engines the scheduler chooses (never on `exclude`, engine
        names); `known` replicas count as existing for naming (those of a lost engine). Each
        runs before the next is made. PlacementError when one fits nowhere; a create that
        fails removes that container (those made before it are kept and returned in the error's
        `created`)."""
        if count <= 0:
            return []
        fleet = fleet or self.survey(template.workload)
        usable = [b for b in self.backends if b.engine.name in fleet.replicas]
        engines = choose_engines(usable, template.requirements, count, template.algorithm, self.placement,
                                 workload=template.workload, exclude=exclude)
        indexes = free_indexes([r.index for r in fleet.of(template.workload)] + [r.index for r in known])
        created: list[Replica] = []
        for backend in engines:
            request = template.make(next(indexes))
            undo: list[Callable[[], None]] = []
            try:
                container_id = create_replica(backend, request, progress, undo)
                wait_ready(backend, container_id, healthy=False, progress=progress)
                replica = inspect_replica(backend, container_id)
            except (DockerRequestError, BackendUnavailable):
                for step in reversed(undo):
                    step()
                raise
            fleet.replicas.setdefault(backend.engine.name, []).append(replica)
            created.append(replica)
        return created

    def remove(self, replicas: Iterable[Replica]) -> list[str]:
        """Remove each replica, running or not; one already gone (or going) is fine."""
        removed = []
        for replica in replicas:
            backend = replica.backend or self.backend(replica.engine)
            if backend is None:
                continue
            try:
                remove_quietly(backend, replica.id)
            except DockerRequestError as error:
                if "already in progress" not in str(error):
                    raise
            removed.append(f"{replica.name}@{replica.engine}")
        return removed

    def scale(self, template: ReplicaTemplate, target: int, progress: Progress = lambda _line: None) -> ScaleResult:
        """Bring the workload to `target` replicas on the engines that answer (surplus removed:
        unindexed containers first, then the highest indexes), and record `target` as its
        desired count when it has a desired-state record."""
        if target < 0:
            raise DockerRequestError(f"replicas cannot be negative ({target})")
        with self.holding(template.workload):
            fleet = self.survey(template.workload)
            current = fleet.of(template.workload)
            created: list[Replica] = []
            removed: list[str] = []
            if target > len(current):
                created = self.add(template, target - len(current), fleet=fleet, progress=progress)
            else:
                removed = self.remove(surplus(current, target))
            if self.desired is not None:
                self.desired.set_count(template.workload, target)
            return ScaleResult(template.workload, len(current), target, tuple(f"{r.name}@{r.engine}" for r in created), tuple(removed))
