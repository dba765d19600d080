"""PURE: a ContainerRuntime workload -> a Swarm ServiceSpec (Engine API 1.41), with the plan's
warnings for what a service cannot carry.

The container create body of backends/docker/mapping.py is the starting point, so a workload
means the same on a standalone engine and on a cluster. What changes:

- replicas -> replicated mode; limits -> Resources.Limits; requests (else the SchedulingPolicy's
  resource_requirements) -> Resources.Reservations;
- the HealthCheck liveness probe (command form), else the container's health_check -> the
  service's Healthcheck, the startup probe's budget as its start period. An http/tcp liveness
  probe becomes `wget -q -O- URL` / `nc -z 127.0.0.1 PORT` (the commands of BusyBox and most
  base images); `liveness_command: never` is not a thing: a probe is never dropped;
- FailoverStrategy.recovery -> RestartPolicy (condition any/none, delay, max attempts), plus an
  UpdateConfig that rolls back on failure;
- node affinity -> placement constraints: `In` with one value and `NotIn` directly; `In` with
  several values, `Exists`, `DoesNotExist`, `Gt` and `Lt` through a per-workload node label
  (`rtm.affinity.<workload>=yes`) that rtm-console sets on the nodes whose live labels satisfy
  the expression (backends/docker/swarm/services.py), with a constraint on that label;
- no-new-privileges and seccomp profiles: services on API 1.41 have no such field: a warning
  each (refused with --strict), never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.docker.mapping import nanoseconds, workload_request

LABEL_WORKLOAD = "rtm.workload"
LABEL_SPEC_HASH = "rtm.service-spec-hash"
LABEL_SPEC_REPLICAS = "rtm.spec-replicas"  # the spec's own count: a re-apply of it keeps a scaled count
AFFINITY_LABEL_PREFIX = "rtm.affinity."
PUBLISH_MODES = ("ingress", "host")
DIRECT_OPERATORS = {"In", "NotIn"}


@dataclass(frozen=True)
class Expression:
    """One node-affinity expression Swarm cannot say itself; `matches(labels)` decides a node."""

    key: str
    operator: str
    values: tuple[str, ...]

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "Exists":
            return value is not None
        if self.operator == "DoesNotExist":
            return value is None
        if value is None:
            return False
        if self.operator == "In":
            return value in self.values
        if self.operator == "NotIn":
            return value not in self.values
        try:
            number, bound = int(value), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.operator == "Gt" else number < bound

    def __str__(self) -> str:
        return f"{self.key} {self.operator} [{', '.join(self.values)}]" if self.values else f"{self.key} {self.operator}"


@dataclass(frozen=True)
class ServicePlan:
    """What one workload becomes on a cluster."""

    workload: str
    spec: dict[str, Any]  # the ServiceSpec, JSON-ready
    spec_hash: str  # of the spec without the replica count (scale does not change it)
    replicas: int
    expressions: tuple[Expression, ...]  # kept true through the workload's node label
    warnings: tuple[str, ...]

    @property
    def affinity_label(self) -> str:
        return affinity_label(self.workload)


def affinity_label(workload: str) -> str:
    return AFFINITY_LABEL_PREFIX + workload


class SwarmSpecError(ValueError):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def service_spec(document: Any, base_dir: Path, *, publish_mode: str = "ingress", replicas: int | None = None) -> ServicePlan:
    """The ServiceSpec for a workload document. Raises SwarmSpecError / SpecMappingError."""
    if publish_mode not in PUBLISH_MODES:
        raise SwarmSpecError(f"docker.publish_mode {publish_mode!r} is not one of {', '.join(PUBLISH_MODES)}")
    request = workload_request(document, base_dir)
    body = request.template
    host = body["HostConfig"]
    spec = document.get("ContainerRuntime")
    warnings: list[str] = []
    container: dict[str, Any] = {
        "Image": body["Image"],
        "Env": list(body["Env"]),
        "Labels": {k: v for k, v in body["Labels"].items() if not k.startswith("rtm.spec")},
        "CapabilityDrop": list(host["CapDrop"]),
        "CapabilityAdd": [f"CAP_{c}" if not c.startswith("CAP_") else c for c in host["CapAdd"]],
        "ReadOnly": bool(host["ReadonlyRootfs"]),
        "Mounts": [_mount(bind) for bind in host["Binds"]],
        "StopGracePeriod": nanoseconds(10),
    }
    for key, field in (("Entrypoint", "Command"), ("Cmd", "Args"), ("WorkingDir", "Dir"), ("User", "User")):
        if key in body:
            container[field] = body[key]
    healthcheck = _healthcheck(document, body)
    if healthcheck is not None:
        container["Healthcheck"] = healthcheck
    for option in host["SecurityOpt"]:
        name = "no_new_privileges" if option == "no-new-privileges" else "seccomp_profile"
        warnings.append(f"security.{name}: a Swarm service on Engine API 1.41 cannot carry it; the tasks run without it")
    if "Runtime" in host:
        warnings.append(f"runtime {spec.runtime}: a Swarm service runs the engine's default runtime")
    constraints, expressions = placement_constraints(document)
    policy = document.get("SchedulingPolicy")
    if policy is not None:
        other = [a for a in policy.algorithms if a != "round_robin"]
        if other:
            warnings.append(f"algorithms {', '.join(other)}: Swarm places tasks by its own spread strategy; no Swarm equivalent")
    if expressions:
        constraints.append(f"node.labels.{affinity_label(request.workload)}==yes")
    count = request.replicas if replicas is None else replicas
    service: dict[str, Any] = {
        "Name": request.workload,
        "Labels": {LABEL_WORKLOAD: request.workload},
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": _resources(document),
            "RestartPolicy": _restart_policy(document),
            "Placement": {"Constraints": constraints},
        },
        "Mode": {"Replicated": {"Replicas": count}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "rollback", "Order": "stop-first", "Monitor": nanoseconds(5)},
        "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Order": "stop-first"},
    }
    ports = _ports(spec, publish_mode)
    if ports:
        service["EndpointSpec"] = {"Mode": "vip" if publish_mode == "ingress" else "dnsrr", "Ports": ports}
    spec_hash = hashlib.sha256(json.dumps({**service, "Mode": None}, sort_keys=True).encode()).hexdigest()[:12]
    service["Labels"].update({LABEL_SPEC_HASH: spec_hash, LABEL_SPEC_REPLICAS: str(request.replicas)})
    return ServicePlan(request.workload, service, spec_hash, count, tuple(expressions), tuple(warnings))


def placement_constraints(document: Any) -> tuple[list[str], list[Expression]]:
    """Swarm constraints for what it can say; the other expressions, kept by a node label."""
    policy = document.get("SchedulingPolicy")
    constraints: list[str] = []
    expressions: list[Expression] = []
    for constraint in policy.constraints if policy is not None else ():
        if constraint.type != "node_affinity":
            continue
        values = tuple(str(v) for v in constraint.values or ())
        label = "node.hostname" if constraint.key == "hostname" else f"node.labels.{constraint.key}"
        if constraint.operator == "In" and len(values) == 1:
            constraints.append(f"{label}=={values[0]}")
        elif constraint.operator == "NotIn":
            constraints.extend(f"{label}!={value}" for value in values)
        else:
            expressions.append(Expression(str(constraint.key), str(constraint.operator), values))
    return constraints, expressions


def _mount(bind: str) -> dict[str, Any]:
    source, target, *mode = bind.split(":")
    kind = "bind" if source.startswith("/") else "volume"
    return {"Type": kind, "Source": source, "Target": target, "ReadOnly": "ro" in mode}


def _resources(document: Any) -> dict[str, Any]:
    from rtm.scheduling.from_spec import requirements

    spec = document.get("ContainerRuntime")
    limits: dict[str, int] = {}
    if spec.resources.limits.cpu is not None:
        limits["NanoCPUs"] = spec.resources.limits.cpu * 1_000_000
    if spec.resources.limits.memory is not None:
        limits["MemoryBytes"] = spec.resources.limits.memory
    needs = requirements(document)  # requests, else the policy's resource_requirements
    reservations = {key: value for key, value in (("NanoCPUs", needs.cpu_millis * 1_000_000), ("MemoryBytes", needs.memory_bytes)) if value}
    return {"Limits": limits, "Reservations": reservations}


def _restart_policy(document: Any) -> dict[str, Any]:
    failover = document.get("FailoverStrategy")
    if failover is None:
        spec = document.get("ContainerRuntime")
        condition = {"no": "none", "on-failure": "on-failure"}.get(spec.restart_policy, "any")
        return {"Condition": condition, "Delay": nanoseconds(5), "MaxAttempts": 0}
    recovery = failover.recovery
    return {"Condition": "any" if recovery.auto_restart else "none", "Delay": nanoseconds(recovery.restart_delay),
            "MaxAttempts": recovery.max_restart_attempts}


def _healthcheck(document: Any, body: dict[str, Any]) -> dict[str, Any] | None:
    health = document.get("HealthCheck")
    liveness = health.liveness if health is not None else None
    if liveness is None:
        return body.get("Healthcheck")
    startup = health.startup
    start_period = startup.initial_delay + startup.interval * startup.retries if startup is not None else liveness.initial_delay
    return {
        "Test": probe_test(liveness),
        "Interval": nanoseconds(liveness.interval),
        "Timeout": nanoseconds(liveness.timeout),
        "Retries": liveness.retries,
        "StartPeriod": nanoseconds(start_period),
    }


def probe_test(probe: Any) -> list[str]:
    """A liveness probe as a Docker health test: its command, or the documented command for an
    http probe (`wget -q -O- URL`) or a tcp probe (`nc -z 127.0.0.1 PORT`)."""
    if probe.command is not None:
        return ["CMD-SHELL", probe.command] if isinstance(probe.command, str) else ["CMD", *probe.command]
    if probe.http is not None:
        if probe.http.scheme != "http":
            raise SwarmSpecError(f"liveness probe {probe.http.scheme}://: a Swarm health check needs a command, and BusyBox wget cannot check TLS",
                                 "write the probe as a command (command: [...])")
        return ["CMD", "wget", "-q", "-O-", f"http://127.0.0.1:{probe.http.port}{probe.http.path}"]
    if probe.tcp is not None:
        return ["CMD", "nc", "-z", "127.0.0.1", str(probe.tcp.port)]
    raise SwarmSpecError("the liveness probe has no command, http or tcp check")


def _ports(spec: Any, publish_mode: str) -> list[dict[str, Any]]:
    ports = []
    for port in spec.ports:
        entry = {"Protocol": port.protocol, "TargetPort": port.container_port, "PublishMode": publish_mode}
        if port.host_port:
            entry["PublishedPort"] = port.host_port
        ports.append(entry)
    return ports
