"""Where a container workload goes when clusters are configured, and the handler's calls for a
workload that goes to a cluster.

A workload goes to the (first) cluster when one is configured, unless the configuration says
`docker.target: standalone`; its ContainerRuntime label `rtm.target` (cluster or standalone)
decides for it. A workload with loose replicas on the cluster's engines is
adopted: the plan deletes them once the service exists (the apply asks first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backends.base import BackendUnavailable
from backends.docker.errors import DockerRequestError
from backends.docker.replicas import find_replicas, remove_quietly
from backends.docker.swarm.cluster import SwarmCluster, find_clusters, worker_refusal
from backends.docker.swarm.services import SwarmServices
from backends.docker.swarm.spec import LABEL_WORKLOAD, ServicePlan
from backends.docker.swarm.tasks import merge_task_rows, task_rows
from backends.handlers import ApplyError, Change
from backends.records import ContainerInfo

TARGET_LABEL = "rtm.target"


class SwarmTarget:
    """The clusters among a handler's engines, found on first use (or known by a shared
    SwarmDiscovery, backends/docker/swarm/discovery.py)."""

    def __init__(self, backends: Sequence[Any], *, publish_mode: str = "ingress", strict: bool = False, target: str = "cluster",
                 discovery: Any = None) -> None:
        self.backends = list(backends)
        self.target = target
        self.publish_mode = publish_mode
        self.strict = strict
        self.discovery = discovery
        self._clusters: list[SwarmCluster] | None = None
        self.roles: dict[str, Any] = {}

    def clusters(self, refresh: bool = False) -> list[SwarmCluster]:
        if self.discovery is not None:
            self._clusters, self.roles = self.discovery.current()
        elif self._clusters is None or refresh:
            self._clusters, self.roles = find_clusters(self.backends)
        return self._clusters

    def services(self) -> list[SwarmServices]:
        return [SwarmServices(c, publish_mode=self.publish_mode) for c in self.clusters()]

    def services_for(self, document: Any) -> SwarmServices | None:
        """The cluster's services when the workload goes to a cluster, else None."""
        spec = document.get("ContainerRuntime")
        if spec is None:
            return None
        target = spec.labels.get(TARGET_LABEL, self.target)
        if target not in ("cluster", "standalone"):
            raise DockerRequestError(f'label {TARGET_LABEL}: "{target}" is neither cluster nor standalone',
                                     f"write {TARGET_LABEL}: cluster or {TARGET_LABEL}: standalone under ContainerRuntime.labels")
        if target == "standalone":
            return None
        found = self.services()
        if found:
            return found[0]
        worker = next(((name, role) for name, role in self.roles.items() if role.role == "worker"), None)
        if worker is not None:  # only workers of a swarm: no cluster change, and no loose containers on them
            raise worker_refusal(worker[1], worker[0])
        return None

    def holding(self, workload: str) -> SwarmServices | None:
        """The cluster that runs the workload's service, if any (a manager that does not answer
        now runs none: the standalone engines are still served)."""
        for services in self.services():
            try:
                if services.find(workload) is not None:
                    return services
            except (BackendUnavailable, DockerRequestError):
                continue
        return None

    # .. the handler's calls

    def plan(self, services: SwarmServices, document: Any, base_dir: Path) -> list[Change]:
        wanted, changes = services.plan(document, base_dir)
        if self.strict and wanted.warnings:
            raise DockerRequestError(f"--strict: the Swarm service cannot carry: {'; '.join(wanted.warnings)}",
                                     "change the spec, or apply without --strict to run without these settings")
        image_note = self.image_note(services, wanted)
        if image_note:
            changes[0] = dataclasses.replace(changes[0], note=f"{changes[0].note}; {image_note}")
        for replica in self._loose(services, wanted.workload):
            changes.append(Change("delete", replica.resource, note=f"a loose replica on {replica.engine}: replaced by service/{wanted.workload} (adopted)"))
        return changes

    def image_note(self, services: SwarmServices, wanted: ServicePlan) -> str:
        """Whether every node allowed to run the tasks has the image: checked through the
        configured engines of those nodes; the others' tasks pull it when it is missing."""
        image = wanted.spec["TaskTemplate"]["ContainerSpec"]["Image"]
        engines = {self.roles[b.name].node_id: b for b in [services.cluster.manager, *services.cluster.workers] if b.name in self.roles}
        present, missing, unchecked = [], [], []
        for node in sorted(services.cluster.call(lambda api: api.nodes()), key=lambda n: (n.get("Description") or {}).get("Hostname", "")):
            hostname = (node.get("Description") or {}).get("Hostname", "")
            labels = {**((node.get("Spec") or {}).get("Labels") or {})}
            if not allowed(wanted, hostname, labels):
                continue
            backend = engines.get(node["ID"])
            if backend is None:
                unchecked.append(hostname)
                continue
            try:
                backend.client.call(lambda api: api.inspect_image(image))
                present.append(hostname)
            except DockerRequestError:
                missing.append(hostname)
        parts = [f"image {image} on {', '.join(present)}" if present else ""]
        if missing:
            parts.append(f"missing on {', '.join(missing)}: the tasks there will pull it")
        if unchecked:
            parts.append(f"not checked on {', '.join(unchecked)} (no endpoint configured for them): their tasks pull it if it is missing")
        return "; ".join(p for p in parts if p)

    def apply(self, services: SwarmServices, document: Any, base_dir: Path, changes: list[Change],
              progress: Callable[[str], None]) -> list[str]:
        done: list[str] = []
        step = "plan the service"
        try:
            wanted: ServicePlan = services.plan(document, base_dir)[0]
            step = f"create or update service/{wanted.workload}"
            done += services.apply(wanted, progress)
            adopted = {c.resource for c in changes if c.action == "delete"}
            for replica in self._loose(services, wanted.workload):
                if replica.resource in adopted:
                    step = f"delete {replica.resource}"
                    remove_quietly(replica.backend, replica.id)
                    done.append(f"deleted {replica.resource} on {replica.engine} (adopted by service/{wanted.workload})")
        except (DockerRequestError, BackendUnavailable) as error:
            hint = getattr(error, "hint", "") or (error.availability.hint if isinstance(error, BackendUnavailable) else "")
            raise ApplyError(done, step, str(getattr(error, "message", error)), hint) from None
        return done

    def with_tasks(self, listed: list[ContainerInfo]) -> list[ContainerInfo]:
        """The engines' container rows with the current task of each slot of every cluster's
        services (backends/docker/swarm/tasks.py)."""
        records = listed
        for services in self.services():
            call = services.cluster.call
            found = {s["ID"]: s for s in call(lambda api: api.services(filters={"label": LABEL_WORKLOAD}))}
            rows = task_rows(services.cluster.name, found, call(lambda api: api.tasks()) if found else [], call(lambda api: api.nodes()))
            records = merge_task_rows(records, rows)
        return records

    def _loose(self, services: SwarmServices, workload: str) -> list[Any]:
        engines = [services.cluster.manager, *services.cluster.workers]
        return find_replicas(engines, workload)


def allowed(wanted: ServicePlan, hostname: str, labels: dict[str, str]) -> bool:
    """Whether the service's constraints (and the expressions kept by its node label) let a
    node with these labels run its tasks."""
    if not all(e.matches({**labels, "hostname": hostname}) for e in wanted.expressions):
        return False
    for constraint in wanted.spec["TaskTemplate"]["Placement"]["Constraints"]:
        equal = "==" in constraint
        field, value = constraint.split("==" if equal else "!=", 1)
        if field.startswith("node.labels.rtm.affinity."):
            continue  # the expressions above
        actual = hostname if field == "node.hostname" else labels.get(field.removeprefix("node.labels."))
        if (actual == value) != equal:
            return False
    return True
