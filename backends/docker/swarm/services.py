"""Workloads as Swarm services: plan, create or update, scale, delete, tasks.

One service per workload, named after it and labelled `rtm.workload=<name>`. An update posts the
stored spec back with its version index (never docker-py's Service.scale(), which posts defaults
back and replaces every task): a changed replica count alone keeps the running tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.docker.errors import DockerRequestError
from backends.docker.swarm.cluster import SwarmCluster
from backends.docker.swarm.spec import (
    LABEL_SPEC_HASH,
    LABEL_SPEC_REPLICAS,
    LABEL_WORKLOAD,
    ServicePlan,
    affinity_label,
    service_spec,
)
from backends.docker.swarm.tasks import Task, task_of
from backends.handlers import Change

Progress = Callable[[str], None]
COMPARED_FIELDS = (
    ("image", ("TaskTemplate", "ContainerSpec", "Image")),
    ("command", ("TaskTemplate", "ContainerSpec", "Command")),
    ("args", ("TaskTemplate", "ContainerSpec", "Args")),
    ("env", ("TaskTemplate", "ContainerSpec", "Env")),
    ("user", ("TaskTemplate", "ContainerSpec", "User")),
    ("healthcheck", ("TaskTemplate", "ContainerSpec", "Healthcheck")),
    ("limits", ("TaskTemplate", "Resources", "Limits")),
    ("reservations", ("TaskTemplate", "Resources", "Reservations")),
    ("restart_policy", ("TaskTemplate", "RestartPolicy")),
    ("constraints", ("TaskTemplate", "Placement", "Constraints")),
    ("ports", ("EndpointSpec", "Ports")),
    ("replicas", ("Mode", "Replicated", "Replicas")),
)


def _at(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = (data or {}).get(key)
    return data


@dataclass(frozen=True)
class ServiceState:
    """A workload's service as the autoscaler sees it: the cluster, the desired count (the
    service's spec), the tasks running now and the limits of the task template."""

    cluster: str
    replicas: int
    running: tuple[Task, ...]
    cpu_limit_millis: int | None
    memory_limit_bytes: int | None


def field_diff(live: dict[str, Any], wanted: dict[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    """The fields a plan shows, live -> spec; labels and the hash left out."""
    return tuple((name, _at(live, path), _at(wanted, path)) for name, path in COMPARED_FIELDS
                 if (_at(live, path) or None) != (_at(wanted, path) or None))


class SwarmServices:
    """The services of one cluster."""

    def __init__(self, cluster: SwarmCluster, *, publish_mode: str = "ingress") -> None:
        self.cluster = cluster
        self.publish_mode = publish_mode

    # .. reading

    def find(self, workload: str) -> dict[str, Any] | None:
        found = self.cluster.call(lambda api: api.services(filters={"label": f"{LABEL_WORKLOAD}={workload}"}))
        return next((s for s in found if s["Spec"].get("Name") == workload), found[0] if found else None)

    def tasks(self, workload: str | None = None) -> list[Task]:
        """Tasks of the workload's service (of every rtm-console service when None)."""
        services = [s for s in self.cluster.call(lambda api: api.services(filters={"label": LABEL_WORKLOAD}))
                    if workload is None or s["Spec"]["Name"] == workload]
        hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname", "") for n in self.cluster.call(lambda api: api.nodes())}
        return [task_of(raw, service["Spec"]["Name"], hostnames) for service in services
                for raw in self.cluster.call(lambda api, sid=service["ID"]: api.tasks(filters={"service": sid}))]

    # .. plan and apply

    def plan(self, document: Any, base_dir: Path) -> tuple[ServicePlan, list[Change]]:
        """The service the document becomes and the one change to it. A re-apply whose
        `replicas:` is unchanged keeps the count scale or the autoscaler set (the service's
        spec is the desired count)."""
        wanted = service_spec(document, base_dir, publish_mode=self.publish_mode)
        live = self.find(wanted.workload)
        if live is not None and _at(live["Spec"], ("Labels", LABEL_SPEC_REPLICAS)) == str(wanted.replicas):
            kept = int(_at(live["Spec"], ("Mode", "Replicated", "Replicas")) or 0)
            wanted = service_spec(document, base_dir, publish_mode=self.publish_mode, replicas=kept)
        resource = f"service/{wanted.workload}"
        target = f"the Swarm cluster of {self.cluster.name}"
        notes = [*wanted.warnings, *(f"affinity {e}: kept by the node label {wanted.affinity_label}=yes" for e in wanted.expressions)]
        if live is None:
            return wanted, [Change("create", resource, note="; ".join([f"on {target}", *notes]))]
        if live["Spec"].get("Labels", {}).get(LABEL_SPEC_HASH) == wanted.spec_hash and _at(live["Spec"], ("Mode", "Replicated", "Replicas")) == wanted.replicas:
            return wanted, [Change("unchanged", resource, note="; ".join([f"on {target}", *notes]))]
        diff = field_diff(live["Spec"], wanted.spec)
        only_count = all(name == "replicas" for name, _old, _new in diff)
        if only_count and diff:
            return wanted, [Change("update", resource, diff, note="; ".join([f"on {target}", "replica count only: running tasks are kept", *notes]))]
        # Any other change replaces every task: a `replace`, which apply asks about first.
        note = "a rolling update: Swarm replaces the tasks one at a time"
        return wanted, [Change("replace", resource, diff, note="; ".join([f"on {target}", note, *notes]))]

    def apply(self, plan: ServicePlan, progress: Progress = lambda _line: None) -> list[str]:
        """Creates or updates the service (no call when it is unchanged)."""
        self.sync_affinity(plan)
        live = self.find(plan.workload)
        if live is None:
            created = self.cluster.call(lambda api: api._result(api._post_json(api._url("/services/create"), data=plan.spec), True))
            progress(f"created service/{plan.workload} ({created.get('ID', '')[:12]}) with {plan.replicas} replicas")
            return [f"created service/{plan.workload} on {self.cluster.name} with {plan.replicas} replicas"]
        if live["Spec"].get("Labels", {}).get(LABEL_SPEC_HASH) == plan.spec_hash:
            if _at(live["Spec"], ("Mode", "Replicated", "Replicas")) == plan.replicas:
                return []
            before, after = self.scale(plan.workload, plan.replicas)  # the stored spec: tasks kept
            return [f"scaled service/{plan.workload} on {self.cluster.name} from {before} to {after} replicas"]
        self._update(live, plan.spec)
        return [f"updated service/{plan.workload} on {self.cluster.name}"]

    def _update(self, live: dict[str, Any], spec: dict[str, Any]) -> None:
        version = live["Version"]["Index"]
        self.cluster.call(lambda api: api._result(api._post_json(
            api._url("/services/{0}/update", live["ID"]), data=spec, params={"version": version}), True))

    def sync_affinity(self, plan: ServicePlan) -> list[str]:
        """Sets the workload's node label on the nodes whose live labels satisfy every expression
        Swarm cannot say, and removes it elsewhere; the nodes now labelled."""
        label = plan.affinity_label
        chosen = []
        for node in self.cluster.call(lambda api: api.nodes()):
            labels = dict((node.get("Spec") or {}).get("Labels") or {})
            hostname = (node.get("Description") or {}).get("Hostname", "")
            fits = bool(plan.expressions) and all(e.matches({**labels, "hostname": hostname}) for e in plan.expressions)
            if fits:
                chosen.append(hostname)
            if fits != (label in labels):
                self.cluster.set_node_label(node["ID"], label, "yes" if fits else None)
        return chosen

    # .. logs, scale and delete

    def logs(self, workload: str, *, tail: int | None = 100, follow: bool = False) -> Iterator[str]:
        """The service's logs (every task's, as `docker service logs` prints them)."""
        from backends.docker.container_actions import _lines

        live = self._live(workload)
        chunks = self.cluster.call(lambda api: api.service_logs(live["ID"], stdout=True, stderr=True, follow=follow,
                                                                tail="all" if tail is None else tail, is_tty=False))
        return _lines(chunks, self.cluster.manager)


    def scale(self, workload: str, replicas: int) -> tuple[int, int]:
        """Sets the replica count on the stored spec with its version index: running tasks kept.
        (previous, new)."""
        if replicas < 0:
            raise DockerRequestError(f"replicas cannot be negative ({replicas})")
        live = self._live(workload)
        spec = live["Spec"]
        before = int(_at(spec, ("Mode", "Replicated", "Replicas")) or 0)
        if before != replicas:
            self._update(live, {**spec, "Mode": {"Replicated": {"Replicas": replicas}}})
        return before, replicas

    def state(self, workload: str) -> ServiceState:
        """The service's desired count, running tasks and limits (three engine calls)."""
        live = self._live(workload)
        limits = _at(live["Spec"], ("TaskTemplate", "Resources", "Limits")) or {}
        hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname", "") for n in self.cluster.call(lambda api: api.nodes())}
        raw = self.cluster.call(lambda api: api.tasks(filters={"service": live["ID"], "desired-state": "running"}))
        running = tuple(t for t in (task_of(r, workload, hostnames) for r in raw) if t.state == "running")
        return ServiceState(self.cluster.name, int(_at(live["Spec"], ("Mode", "Replicated", "Replicas")) or 0), running,
                            int(limits.get("NanoCPUs") or 0) // 1_000_000 or None, int(limits.get("MemoryBytes") or 0) or None)

    def set_limits(self, workload: str, cpu_millis: int | None, memory_bytes: int | None) -> int:
        """New cpu and memory limits (None keeps one) in one update of the stored spec with its
        version index: a rolling update, Swarm replaces the tasks one at a time. A reservation
        above its new limit comes down to it. The number of tasks replaced (0: nothing changed)."""
        live = self._live(workload)
        spec = live["Spec"]
        template = dict(spec["TaskTemplate"])
        resources = dict(template.get("Resources") or {})
        limits, reservations = dict(resources.get("Limits") or {}), dict(resources.get("Reservations") or {})
        for key, value in (("NanoCPUs", None if cpu_millis is None else cpu_millis * 1_000_000), ("MemoryBytes", memory_bytes)):
            if value is not None:
                limits[key] = value
                if reservations.get(key, 0) > value:
                    reservations[key] = value
        template["Resources"] = {**resources, "Limits": limits, **({"Reservations": reservations} if reservations else {})}
        if template == spec["TaskTemplate"]:
            return 0
        self._update(live, {**spec, "TaskTemplate": template})
        return int(_at(spec, ("Mode", "Replicated", "Replicas")) or 0)

    def _live(self, workload: str) -> dict[str, Any]:
        live = self.find(workload)
        if live is None:
            raise DockerRequestError(f"no service of workload {workload} on {self.cluster.name}")
        return live

    def delete(self, workload: str) -> list[str]:
        """The workload's service (and only it), and its node label."""
        live = self.find(workload)
        if live is None:
            return []
        self.cluster.call(lambda api: api.remove_service(live["ID"]))
        label = affinity_label(workload)
        for node in self.cluster.call(lambda api: api.nodes()):
            if label in ((node.get("Spec") or {}).get("Labels") or {}):
                self.cluster.set_node_label(node["ID"], label, None)
        return [f"deleted service/{workload} on {self.cluster.name}"]


__all__ = ["ServiceState", "SwarmServices", "field_diff"]
