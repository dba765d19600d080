"""The runtime handler for containers: render, plan, apply, delete, list and describe.

A ContainerRuntime workload of N replicas is N containers `<workload>-0` .. `<workload>-N-1`,
labelled with the workload, the replica index and the spec hash (backends/docker/mapping.py).
A plan compares them with the spec:

- a missing replica is created (on the engine the placement function chooses);
- one whose hash matches is `unchanged`, or `update`d in place when only its resources differ
  (`docker update`: no restart, the same StartedAt);
- one whose hash differs is `replace`d, one replica at a time: the old one is renamed and
  stopped, the new one created and started, and the next replica waits until it runs (and is
  healthy, when it has a health check); the old ones are removed once every step succeeded;
- replicas beyond N, and containers of the workload that are no replica, are deleted last.

If a step fails, what this apply created is removed, replaced replicas get their old container
back (renamed and started again), in-place updates are reverted, and nothing was deleted yet:
the ApplyError lists what had been done and what failed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.base import BackendUnavailable
from backends.docker.container_actions import ContainerActions
from backends.docker.backend import DockerBackend
from backends.docker.diff import config_diff
from backends.docker.errors import DockerRequestError
from backends.docker.mapping import (
    LABEL_WORKLOAD,
    RESOURCE_FIELDS,
    WorkloadRequest,
    mask_env,
    render,
    replica_name,
    resource_values,
    workload_request,
)
from backends.docker.desired import DesiredStore
from backends.docker.engine_nodes import machine_of
from backends.docker.replica_service import ReplicaService
from backends.docker.swarm.target import SwarmTarget
from backends.docker.replicas import (
    Placement,
    Replica,
    choose_engines,
    create_replica,
    default_placement,
    find_container,
    find_replicas,
    remove_quietly,
    replica_from_inspect,
    requirements_of,
    update_body,
    update_resources,
    wait_ready,
)
from backends.handlers import ApplyError, Change
from backends.records import ContainerInfo, to_jsonable
from rtm.secrets import mask_secrets

if TYPE_CHECKING:
    from rtm.documents import Document

log = logging.getLogger("rtm.backends.docker")
PARKED_SUFFIX = ".replaced"  # an old replica waiting to be removed once its successor is up
Progress = Callable[[str], None]


@dataclass
class _Run:
    """The bookkeeping of one apply: what was done, how to undo it, what to finish at the end."""

    progress: Progress
    requirements: Any  # what one replica needs and the algorithm: for replacements that must move
    algorithm: str
    done: list[str] = field(default_factory=list)
    undo: list[Callable[[], None]] = field(default_factory=list)
    finish: list[Callable[[], None]] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.done.append(line)
        self.progress(line)

    def roll_back(self) -> None:
        for step in reversed(self.undo):
            try:
                step()
            except (DockerRequestError, BackendUnavailable) as error:
                log.warning("undoing a step of a failed apply: %s", error)


class ContainerHandler:
    """RuntimeHandler for ContainerRuntime documents over one or more engines."""

    resource = "container"
    runtime_kind = "ContainerRuntime"

    def __init__(self, backends: Sequence[DockerBackend], *, placement: Placement = default_placement, stop_timeout: float = 10.0,
                 desired: DesiredStore | None = None, publish_mode: str = "ingress", strict: bool = False,
                 target: str = "cluster") -> None:
        self.backends = list(backends)
        self.swarm = SwarmTarget(self.backends, publish_mode=publish_mode, strict=strict, target=target)  # workloads that go to a cluster
        self.placement = placement
        self.stop_timeout = stop_timeout
        self.desired = desired
        self.unreachable: list[BackendUnavailable] = []  # engines the last list() could not read
        self.replicas = ReplicaService(self.backends, placement=placement, desired=desired)
        self.actions = ContainerActions(self.replicas)

    # .. render and plan

    def render(self, document: Document, base_dir: Path) -> dict[str, Any]:
        return render(document, base_dir)

    def _request(self, document: Document, base_dir: Path) -> tuple[WorkloadRequest, int]:
        """The workload's create request with the count to keep, and the spec's own count: a
        re-apply of an unchanged `replicas:` keeps the count scale or the autoscaler set."""
        request = workload_request(document, base_dir)  # a bad spec stops here, before any engine call
        if self.desired is None:
            return request, request.replicas
        return dataclasses.replace(request, replicas=self.desired.count_for(request.workload, request.replicas)), request.replicas

    def plan(self, document: Document, base_dir: Path) -> list[Change]:
        request, spec_replicas = self._request(document, base_dir)  # first: a bad spec is refused before any engine call
        services = self.swarm.services_for(document)
        if services is not None:
            return self.swarm.plan(services, document, base_dir)
        self._check_runtime_somewhere(document, base_dir)
        self._check_engine_size(document)
        replicas = find_replicas(self.backends, request.workload)
        by_index = {r.index: r for r in replicas if r.index is not None and r.name == replica_name(request.workload, r.index)}
        changes = []
        kept = f"kept at {request.replicas} replicas (set by scale or the autoscaler; the spec's replicas: {spec_replicas} is unchanged)"
        for index in range(request.replicas):
            live = by_index.get(index)
            if live is None:
                note = self._create_note(request) or (kept if request.replicas != spec_replicas else "")
                changes.append(Change("create", f"container/{replica_name(request.workload, index)}", note=note))
            else:
                changes.append(self._compare(live, request))
        for replica in replicas:
            if by_index.get(replica.index) is not replica:
                changes.append(Change("delete", replica.resource, note="left over from an earlier apply"))
            elif replica.index is not None and replica.index >= request.replicas:
                changes.append(Change("delete", replica.resource, note=kept if request.replicas != spec_replicas else f"the workload has {request.replicas} replicas"))
        return changes

    def _check_runtime_somewhere(self, document: Document, base_dir: Path) -> None:
        """A runtime other than the default must exist on some engine that answers (it is
        checked again on the chosen engine when a replica is created)."""
        spec = document.get("ContainerRuntime")
        if spec.runtime == "containerd":
            return
        runtimes: set[str] = set()
        problems: list[BackendUnavailable] = []
        for backend in self.backends:
            try:
                runtimes |= backend.info().runtimes
            except BackendUnavailable as error:
                problems.append(error)
        if problems and len(problems) == len(self.backends):
            raise problems[0]
        workload_request(document, base_dir, engine_runtimes=runtimes)

    def _check_engine_size(self, document: Document) -> None:
        """CPU or memory beyond the largest answering engine: Docker would refuse the create
        ("Range of CPUs is from 0.01 to N.00") or the replica could never be placed."""
        resources = document.get("ContainerRuntime").resources
        amounts = (resources.limits, resources.requests)
        cpu = max((a.cpu for a in amounts if a.cpu is not None), default=0)
        memory = max((a.memory for a in amounts if a.memory is not None), default=0)
        if not cpu and not memory:
            return
        sizes = []
        for backend in self.backends:
            try:
                sizes.append(backend.info())
            except BackendUnavailable:
                continue  # an engine that does not answer is reported by the plan's other calls
        if not sizes:
            return
        cpus, memory_bytes = max(i.cpu_count for i in sizes), max(i.memory_bytes for i in sizes)
        if cpu > cpus * 1000:
            raise DockerRequestError(f"the spec asks for {cpu / 1000:g} CPUs; the largest engine has {cpus}",
                                     "lower resources.limits.cpu / requests.cpu, or add a larger engine")
        if memory > memory_bytes:
            raise DockerRequestError(f"the spec asks for {memory / 2**30:.1f} GiB of memory; the largest engine has {memory_bytes / 2**30:.1f} GiB",
                                     "lower resources.limits.memory / requests.memory, or add a larger engine")

    @staticmethod
    def _create_note(request: WorkloadRequest) -> str:
        if request.fixed_host_ports and request.replicas > 1:
            return f"publishes fixed host port {', '.join(request.fixed_host_ports)}: one replica per engine can bind it"
        return ""

    def _compare(self, live: Replica, request: WorkloadRequest) -> Change:
        body = request.for_replica(live.index or 0).body
        live_resources = resource_values(live.inspect.get("HostConfig") or {})
        if live.spec_hash == request.spec_hash:
            diff = tuple((f"HostConfig.{k}", live_resources[k], v) for k, v in request.resources.items() if live_resources[k] != v)
            if not diff:
                return Change("unchanged", live.resource)
            if all(value for _field, _live, value in diff):
                return Change("update", live.resource, diff, note="resources change in place, without a restart")
            return Change("replace", live.resource, diff, note="removing a limit needs a new container")
        image = self._image_config(live.backend, body["Image"])
        diff = tuple(config_diff(live.inspect, body, image, live.backend.info().default_runtime))
        note = "replaced one replica at a time"
        if not diff:
            note += f" (spec hash {live.spec_hash} -> {request.spec_hash})"
        return Change("replace", live.resource, diff, note=note)

    @staticmethod
    def _image_config(backend: DockerBackend, image: str) -> dict[str, Any]:
        try:
            return backend.client.call(lambda api: api.inspect_image(image)).get("Config") or {}
        except DockerRequestError:
            return {}  # not pulled yet: compare with the request alone

    # .. apply

    def apply(self, document: Document, base_dir: Path, changes: list[Change], progress: Progress) -> list[str]:
        request, spec_replicas = self._request(document, base_dir)
        services = self.swarm.services_for(document)
        if services is not None:
            return self.swarm.apply(services, document, base_dir, changes, progress)
        requirements, algorithm = requirements_of(document)
        with self.replicas.holding(request.workload):
            done = self._apply(request, requirements, algorithm, changes, progress)
            if self.desired is not None:
                self.desired.record_apply(request, spec_replicas, requirements, algorithm, time.time(), document.path)
        return done

    def _apply(self, request: WorkloadRequest, requirements: Any, algorithm: str, changes: list[Change], progress: Progress) -> list[str]:
        live = {r.name: r for r in find_replicas(self.backends, request.workload)}
        run = _Run(progress, requirements, algorithm)
        creates = [c for c in changes if c.action == "create" or (c.action in ("update", "replace") and _name(c) not in live)]
        step = "choose engines"
        try:
            engines = iter(choose_engines(self.backends, requirements, len(creates), algorithm, self.placement, workload=request.workload))
            for change in changes:
                name = _name(change)
                step = f"{change.action} {change.resource}"
                if change in creates:
                    self._create(next(engines), request, _index(request.workload, name), run)
                elif change.action == "update":
                    self._update(live[name], request, run)
                elif change.action == "replace":
                    self._replace(live[name], request, run)
            for change in changes:
                if change.action == "delete" and _name(change) in live:
                    step = f"delete {change.resource}"
                    remove_quietly(live[_name(change)].backend, live[_name(change)].id)
                    run.say(f"deleted {change.resource}")
            step = "remove the replaced containers"
            for finish in run.finish:
                finish()
        except (DockerRequestError, BackendUnavailable) as error:
            run.roll_back()
            hint = getattr(error, "hint", "") or (error.availability.hint if isinstance(error, BackendUnavailable) else "")
            raise ApplyError(run.done, step, str(error.message if isinstance(error, DockerRequestError) else error), hint) from None
        return run.done

    def _create(self, backend: DockerBackend, request: WorkloadRequest, index: int, run: _Run) -> None:
        replica = request.for_replica(index)
        container_id = create_replica(backend, replica, run.progress, run.undo)
        wait_ready(backend, container_id, healthy=False, progress=run.progress)
        run.say(f"created container/{replica.name} on {backend.name}")

    def _update(self, live: Replica, request: WorkloadRequest, run: _Run) -> None:
        before = resource_values(live.inspect.get("HostConfig") or {})
        body = update_body(before, request.resources)
        update_resources(live.backend, live.id, body)
        run.undo.append(lambda: update_resources(live.backend, live.id, update_body(request.resources, before)))
        changed = ", ".join(f"{k} {before[k]} -> {v}" for k, v in body.items() if before[k] != v)
        run.say(f"updated {live.resource} in place ({changed})")

    def _replace(self, live: Replica, request: WorkloadRequest, run: _Run) -> None:
        client = live.backend.client
        backend = live.backend
        if backend.cordoned(machine_of(backend)):  # its machine takes no new container: the scheduler picks another
            (backend,) = choose_engines(self.backends, run.requirements, 1, run.algorithm, self.placement, workload=request.workload)
        parked = live.name + PARKED_SUFFIX
        remove_quietly(live.backend, parked)  # a leftover of an interrupted apply
        client.call(lambda api: api.rename(live.id, parked))
        was_running = live.running

        def restore() -> None:
            client.call(lambda api: api.rename(live.id, live.name))
            if was_running:
                client.call(lambda api: api.start(live.id))

        run.undo.append(restore)
        if was_running:
            run.progress(f"stopping {live.name} (up to {self.stop_timeout:g} s)")
            client.call(lambda api: api.stop(live.id, timeout=int(self.stop_timeout)))
        replica = request.for_replica(live.index or 0)
        container_id = create_replica(backend, replica, run.progress, run.undo)
        wait_ready(backend, container_id, healthy=True, progress=run.progress)
        run.finish.append(lambda: remove_quietly(live.backend, live.id))
        run.say(f"replaced {live.resource} on {backend.name}")

    # .. delete, list, describe

    def delete(self, name: str, *, with_disk: bool = False) -> list[str]:
        """All replicas of workload `name` (and its desired state, so nothing brings them back),
        or the one container `name` (or id); a workload that is a Swarm service: that service only."""
        services = self.swarm.holding(name)
        if services is not None:
            return services.delete(name)
        with self.replicas.holding(name):  # reconciliation never re-creates what is being deleted
            return self._delete_replicas(name, with_disk)

    def _delete_replicas(self, name: str, with_disk: bool) -> list[str]:
        replicas = find_replicas(self.backends, name)
        lines = []
        if self.desired is not None and self.desired.remove(name):
            lines.append(f"deleted the desired state of workload {name}")
        if not replicas and lines:
            return lines
        if not replicas:
            backend, data = find_container(self.backends, name)
            replicas = [replica_from_inspect(backend, data)]
        for replica in replicas:
            remove_quietly(replica.backend, replica.id, volumes=with_disk)
            lines.append(f"deleted {replica.resource} on {replica.backend.name}" + (" with its anonymous volumes" if with_disk else ""))
        return lines

    def list(self) -> list[ContainerInfo]:
        """Containers of every engine that answers; `unreachable` holds the others' errors
        (BackendUnavailable when none answers)."""
        records: list[ContainerInfo] = []
        self.unreachable = []
        for backend in self.backends:
            try:
                records.extend(backend.collect())
            except BackendUnavailable as error:
                self.unreachable.append(error)
        if self.unreachable and len(self.unreachable) == len(self.backends):
            raise self.unreachable[0]
        try:  # Swarm tasks: node, service and states on their rows (docs/swarm.md)
            records = self.swarm.with_tasks(records)
        except (BackendUnavailable, DockerRequestError) as error:
            log.warning("listing Swarm tasks: %s", error)
        return records

    def describe(self, name: str) -> dict[str, Any]:
        replicas = find_replicas(self.backends, name)
        records = {c.id: c for b in {r.backend for r in replicas} for c in self._records(b)}
        if replicas:
            return {"workload": name, "replicas": [self._describe_one(r.backend, r.inspect, records.get(r.id)) for r in replicas]}
        backend, data = find_container(self.backends, name)
        return self._describe_one(backend, data, next((c for c in self._records(backend) if c.id == data["Id"]), None))

    @staticmethod
    def _describe_one(backend: DockerBackend, data: dict[str, Any], record: ContainerInfo | None) -> dict[str, Any]:
        config, host, state = data.get("Config") or {}, data.get("HostConfig") or {}, data.get("State") or {}
        health = state.get("Health") or {}
        return {
            "name": str(data.get("Name", "")).lstrip("/"),
            "id": data["Id"],
            "engine": backend.name,
            "workload": (config.get("Labels") or {}).get(LABEL_WORKLOAD),
            "image": config.get("Image"),
            "command": mask_secrets([*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]),
            "state": state.get("Status"),
            "exit_code": state.get("ExitCode"),
            "started_at": state.get("StartedAt"),
            "restarts": data.get("RestartCount", 0),
            "health": {"status": health.get("Status"), "failing_streak": health.get("FailingStreak"),
                       "last_output": ((health.get("Log") or [{}])[-1].get("Output") or "").strip()[:500]} if health else None,
            "user": config.get("User") or "root (image default)",
            "environment": mask_env(config.get("Env") or []),
            "resources": {field: host.get(field) or 0 for field in RESOURCE_FIELDS},
            "security": {
                "cap_drop": host.get("CapDrop") or [], "cap_add": host.get("CapAdd") or [],
                "security_opt": [o if not o.startswith("seccomp={") else "seccomp=<custom profile>" for o in host.get("SecurityOpt") or []],
                "read_only_rootfs": bool(host.get("ReadonlyRootfs")), "runtime": host.get("Runtime"),
            },
            "healthcheck": mask_secrets(config.get("Healthcheck")),
            "ports": record.ports if record else [],
            "mounts": [{"source": m.get("Source") or m.get("Name"), "target": m.get("Destination"), "rw": m.get("RW")} for m in data.get("Mounts") or []],
            "labels": config.get("Labels") or {},
            "stats": to_jsonable(record) if record else None,
        }

    @staticmethod
    def _records(backend: DockerBackend) -> tuple[ContainerInfo, ...]:
        try:
            return backend.collect()
        except BackendUnavailable:
            return ()

    # .. logs (the core's `logs` command)

    def logs(self, name: str, *, tail: int | None = 100, follow: bool = False) -> Iterator[str]:
        services = self.swarm.holding(name)  # a workload that is a Swarm service: the service's logs
        if services is not None:
            return services.logs(name, tail=tail, follow=follow)
        return self.actions.logs(name, tail=tail, follow=follow)


def _name(change: Change) -> str:
    return change.resource.split("/", 1)[1]


def _index(workload: str, name: str) -> int:
    suffix = name[len(workload) + 1:]
    if not name.startswith(workload + "-") or not suffix.isdigit():
        raise DockerRequestError(f"{name} is not a replica name of {workload}")
    return int(suffix)
