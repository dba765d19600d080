"""What the control loops need from a workload's specs, derived once per spec load.

A workload is supervised when it runs containers and has something to supervise: a
HealthCheck, a FailoverStrategy, Docker's own health_check, or an AutoScalingPolicy. Policies
it does not name take their spec defaults (a HealthCheck without a FailoverStrategy still
restarts on liveness failure, with the FailoverStrategy's default budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backends.docker.replica_service import ReplicaTemplate, template_from_document
from rtm.autoscaling import HorizontalSettings, ResourceAmounts, VerticalSettings
from rtm.autoscaling.from_spec import horizontal_settings, resource_amounts, vertical_settings
from rtm.documents import Document, load_file, spec_files
from rtm.kinds.failover import FailoverStrategy
from rtm.kinds.health import HealthCheck, Probe
from rtm.probes import ProbeTiming

SUPERVISED_KINDS = ("HealthCheck", "FailoverStrategy", "AutoScalingPolicy")


@dataclass(frozen=True)
class Workload:
    name: str
    document: Document
    base_dir: Path
    probes: dict[str, Probe]  # startup / liveness / readiness
    failover: FailoverStrategy
    has_failover_spec: bool
    docker_health: bool  # the container has Docker's own HEALTHCHECK
    serving_port: int | None  # the port the load balancer sends traffic to
    horizontal: HorizontalSettings | None
    vertical: VerticalSettings | None
    cpu: ResourceAmounts  # per replica: what utilization is measured against
    memory: ResourceAmounts

    @property
    def template(self) -> ReplicaTemplate:
        """How its new replicas are made and placed (the spec's request and scheduling policy)."""
        return template_from_document(self.document, self.base_dir)

    @property
    def timings(self) -> dict[str, ProbeTiming]:
        return {name: probe_timing(probe) for name, probe in self.probes.items()}

    @property
    def supervises_health(self) -> bool:
        return bool(self.probes) or self.has_failover_spec or self.docker_health

    @property
    def autoscaled(self) -> bool:
        return self.horizontal is not None or self.vertical is not None


def probe_timing(probe: Probe) -> ProbeTiming:
    return ProbeTiming(interval=probe.interval, timeout=probe.timeout, retries=probe.retries, initial_delay=probe.initial_delay)


def serving_port(document: Document, health: HealthCheck | None) -> int | None:
    """The readiness probe's HTTP/TCP port (what answers traffic), else the first container port."""
    if health is not None and health.readiness is not None:
        probe = health.readiness
        if probe.http is not None:
            return probe.http.port
        if probe.tcp is not None:
            return probe.tcp.port
    container = document.get("ContainerRuntime")
    if container is not None and container.ports:
        return container.ports[0].container_port
    return None


def workload_from_document(document: Document, tolerance: float | None = None) -> Workload | None:
    """The supervised workload a document describes, or None when there is nothing to supervise."""
    container = document.get("ContainerRuntime")
    if container is None or document.name is None:
        return None
    if not any(document.get(kind) is not None for kind in SUPERVISED_KINDS) and container.health_check is None:
        return None
    health: HealthCheck | None = document.get("HealthCheck")
    failover: FailoverStrategy | None = document.get("FailoverStrategy")
    autoscaling = document.get("AutoScalingPolicy")
    cpu, memory = resource_amounts(document)
    return Workload(
        name=document.name,
        document=document,
        base_dir=Path(document.path).resolve().parent if document.path and not document.path.startswith("<") else Path.cwd(),
        probes=health.probes() if health is not None else {},
        failover=failover or FailoverStrategy(),
        has_failover_spec=failover is not None,
        docker_health=container.health_check is not None,
        serving_port=serving_port(document, health),
        horizontal=horizontal_settings(autoscaling, tolerance) if autoscaling is not None else None,
        vertical=vertical_settings(autoscaling) if autoscaling is not None else None,
        cpu=cpu,
        memory=memory,
    )


@dataclass(frozen=True)
class SpecLoad:
    workloads: dict[str, Workload]
    problems: tuple[str, ...]  # one line per file with errors (those documents are left out)
    fingerprint: tuple[tuple[str, int, int], ...]  # (path, mtime_ns, size) of every file read


def specs_fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a spec file is added, removed or edited."""
    entries = []
    for path in spec_files([folder]) if folder.exists() else []:
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


def load_workloads(folder: Path, tolerance: float | None = None) -> SpecLoad:
    """Every supervised workload under `folder`; files with errors are reported and skipped."""
    fingerprint = specs_fingerprint(folder)
    workloads: dict[str, Workload] = {}
    problems: list[str] = []
    for path_text, _mtime, _size in fingerprint:
        path = Path(path_text)
        try:
            result = load_file(path)
        except OSError as error:
            problems.append(f"{path}: cannot read ({error.strerror or error})")
            continue
        errors = [f for f in result.findings if f.severity == "error"]
        if errors:
            first = errors[0]
            problems.append(first.format() + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
        for document in result.documents:
            workload = workload_from_document(document, tolerance)
            if workload is None:
                continue
            if workload.name in workloads:
                problems.append(f"{path}: workload {workload.name} is defined twice; the first one is kept")
                continue
            workloads[workload.name] = workload
    return SpecLoad(workloads, tuple(problems), fingerprint)
