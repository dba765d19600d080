"""A ContainerRuntime spec (and the workload around it) as Docker Engine create requests.

Pure: no SDK, no engine, no network. The result is the JSON body of `POST /containers/create`
(Engine API 1.41) plus the container's name, for each replica. Where the seed's example code
is wrong, this follows the engine and the Kubernetes conventions the spec borrows:

- `resources.limits.cpu` -> `NanoCpus` (1000m -> 1e9), never a quota (the seed's 1000m -> 10 CPUs);
- `resources.limits.memory` -> `Memory` in bytes, and `MemorySwap` equal to it: the limit is the
  whole allowance, with no swap on top (as a Kubernetes limit);
- `resources.requests.cpu` -> `CpuShares` by the kubelet's formula (milli * 1024 / 1000, at least 2);
- `resources.requests.memory` -> `MemoryReservation` (the soft limit);
- capabilities: drop ALL, add the listed ones; `no-new-privileges` unless switched off;
- `seccomp_profile`: `runtime/default` is the engine's default profile (no option at all),
  `unconfined` turns it off, anything else is a profile file whose JSON goes in the option;
- `health_check` -> `Healthcheck` with CMD / CMD-SHELL and durations in nanoseconds;
- `runtime: containerd` is the engine's default runtime (Docker runs on containerd); any other
  name is passed as `HostConfig.Runtime`, which must be one of the engine's runtimes;
- a workload's `PerformanceTuning.jvm_tuning` -> `JAVA_TOOL_OPTIONS` (an explicit
  `environment.JAVA_TOOL_OPTIONS` wins).

Each replica is named `<workload>-<index>` and labelled with the workload, its index and a
hash of everything except the replica index and the five resource fields, which the engine can
change in place (`docker update`) without a restart.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.docker.errors import RuntimeNotAvailable, SpecMappingError
from rtm.secrets import mask_secrets
from rtm.tuning_render import jvm_options

if TYPE_CHECKING:
    from rtm.documents import Document
    from rtm.kinds.container import ContainerRuntime, ContainerHealthCheck, Security

LABEL_WORKLOAD = "rtm.workload"
LABEL_REPLICA = "rtm.replica"
LABEL_SPEC_HASH = "rtm.spec-hash"
MANAGED_LABELS = (LABEL_WORKLOAD, LABEL_REPLICA, LABEL_SPEC_HASH)

# HostConfig fields `POST /containers/{id}/update` changes on a running container.
RESOURCE_FIELDS = ("NanoCpus", "Memory", "MemorySwap", "CpuShares", "MemoryReservation")

DEFAULT_RUNTIME_NAMES = frozenset({"containerd"})  # "the engine's default runtime"
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262_144  # the kubelet's bounds
SECCOMP_DEFAULT, SECCOMP_UNCONFINED = "runtime/default", "unconfined"


# --- small conversions ----------------------------------------------------------------------


def nano_cpus(millis: int) -> int:
    """CPU limit in millicores -> Docker's NanoCpus (1 CPU = 1e9)."""
    return millis * 1_000_000


def cpu_shares(millis: int) -> int:
    """CPU request in millicores -> cgroup v1 cpu.shares, as the kubelet computes it."""
    return min(MAX_CPU_SHARES, max(MIN_CPU_SHARES, millis * 1024 // 1000))


def nanoseconds(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def capability_name(cap: str) -> str:
    """`net_bind_service` or `CAP_NET_BIND_SERVICE` -> `CAP_NET_BIND_SERVICE` (the engine's form)."""
    return "CAP_" + cap.upper().removeprefix("CAP_")


def replica_name(workload: str, index: int) -> str:
    return f"{workload}-{index}"


def workload_name(document: Document) -> str:
    """A workload document's `name:`, else the ContainerRuntime's own `name`, else (a standalone
    spec such as the seed's) the image's name: `alpine:3.18` -> `alpine`."""
    spec: ContainerRuntime | None = document.get("ContainerRuntime")
    name = document.name or (spec.name if spec is not None else None)
    if name:
        return name
    image = spec.base_image if spec is not None else ""
    repository = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    derived = re.sub(r"[^a-zA-Z0-9_.-]+", "-", repository).strip("-_.")
    if not derived:
        raise SpecMappingError(f"{document.label}: the containers need a name",
                               "add `name:` to the document (a workload) or under ContainerRuntime")
    return derived


# --- parts of the request -------------------------------------------------------------------


def health_config(check: ContainerHealthCheck) -> dict[str, Any]:
    """Docker's HealthConfig: CMD / CMD-SHELL test, durations in nanoseconds."""
    return {
        "Test": check.docker_test(),
        "Interval": nanoseconds(check.interval),
        "Timeout": nanoseconds(check.timeout),
        "StartPeriod": nanoseconds(check.start_period),
        "Retries": check.retries,
    }


def seccomp_option(profile: str, base_dir: Path) -> str | None:
    """The `seccomp=...` security option for a profile, or None for the engine's default.

    A file (relative to the spec's folder; Kubernetes' `localhost/` prefix is accepted) is read
    and checked to be a JSON object: the API takes the profile's content, not its path."""
    if profile == SECCOMP_DEFAULT:
        return None
    if profile == SECCOMP_UNCONFINED:
        return "seccomp=unconfined"
    path = Path(profile.removeprefix("localhost/")).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SpecMappingError(
            f"seccomp profile {profile!r}: cannot read {path} ({error.strerror or error})",
            f"write {SECCOMP_DEFAULT!r}, {SECCOMP_UNCONFINED!r} or the path of a seccomp profile (JSON)",
        ) from None
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecMappingError(f"seccomp profile {path}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(content, dict) or "defaultAction" not in content:
        raise SpecMappingError(f"seccomp profile {path}: not a seccomp profile (no defaultAction)",
                               "see the engine's default profile, profiles/seccomp/default.json in moby")
    # Compact JSON: the option is stored in the container's configuration as one string.
    return "seccomp=" + json.dumps(content, separators=(",", ":"), sort_keys=True)


def security_options(security: Security, base_dir: Path) -> list[str]:
    options = ["no-new-privileges"] if security.no_new_privileges else []
    seccomp = seccomp_option(security.seccomp_profile, base_dir)
    if seccomp is not None:
        options.append(seccomp)
    return options


def engine_runtime(runtime: str, available: Collection[str] | None = None) -> str | None:
    """`HostConfig.Runtime` for the spec's runtime: None (the engine's default) for containerd;
    otherwise the name itself, checked against the engine's runtimes when they are known."""
    if runtime in DEFAULT_RUNTIME_NAMES:
        return None
    if available is not None and runtime not in available:
        known = ", ".join(sorted(available)) or "none"
        raise RuntimeNotAvailable(
            f"the engine has no runtime {runtime!r} (it has: {known})",
            f'use runtime: "containerd" for the engine\'s default, or register {runtime} in daemon.json "runtimes"',
        )
    return runtime


def environment(spec: ContainerRuntime, document: Document | None) -> dict[str, str]:
    env = {"JAVA_TOOL_OPTIONS": tuning_java_options(document)} if document is not None else {}
    env = {k: v for k, v in env.items() if v}
    env.update(spec.environment)  # an explicit value in the spec wins
    return env


def tuning_java_options(document: Document) -> str | None:
    tuning = document.get("PerformanceTuning")
    if tuning is None or tuning.jvm_tuning is None:
        return None
    return jvm_options(tuning.jvm_tuning)


def port_bindings(spec: ContainerRuntime) -> tuple[dict[str, dict], dict[str, list[dict[str, str]]]]:
    """ExposedPorts and PortBindings. A port without a host side is published on a port the
    engine picks (`docker run -p 8080`), so several replicas on one engine do not collide."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in spec.ports:
        key = f"{port.container_port}/{port.protocol}"
        exposed[key] = {}
        bindings.setdefault(key, []).append(
            {"HostIp": port.host_ip or "", "HostPort": str(port.host_port) if port.host_port else ""}
        )
    return exposed, bindings


def binds(spec: ContainerRuntime, base_dir: Path) -> list[str]:
    """`SOURCE:TARGET:MODE`; a source written as a relative path is taken from the spec's folder."""
    result = []
    for volume in spec.volumes:
        source = volume.source
        if source.startswith(("./", "../")) or source in (".", ".."):
            source = str((base_dir / source).resolve())
        result.append(f"{source}:{volume.target}:{'ro' if volume.read_only else 'rw'}")
    return result


# --- the whole request ----------------------------------------------------------------------


@dataclass(frozen=True)
class CreateRequest:
    """One replica: the container name and the create body (JSON-ready)."""

    name: str
    replica: int
    body: Mapping[str, Any]


@dataclass(frozen=True)
class WorkloadRequest:
    """Everything a ContainerRuntime workload becomes, before any engine is chosen."""

    workload: str
    replicas: int
    spec_hash: str
    template: Mapping[str, Any]  # the create body without the replica label
    fixed_host_ports: tuple[str, ...]  # "8080/tcp" published on a fixed host port

    def for_replica(self, index: int) -> CreateRequest:
        body = json.loads(json.dumps(self.template))  # a deep copy of plain JSON data
        body["Labels"][LABEL_REPLICA] = str(index)
        return CreateRequest(replica_name(self.workload, index), index, body)

    @property
    def resources(self) -> dict[str, int]:
        return resource_values(self.template["HostConfig"])


def resource_values(host_config: Mapping[str, Any]) -> dict[str, int]:
    """The five in-place fields of a HostConfig (missing = 0, the engine's "not set")."""
    return {field: int(host_config.get(field) or 0) for field in RESOURCE_FIELDS}


def workload_request(
    document: Document,
    base_dir: Path,
    *,
    engine_runtimes: Collection[str] | None = None,
) -> WorkloadRequest:
    """Map a document holding a ContainerRuntime. Raises SpecMappingError / RuntimeNotAvailable
    (ValueErrors) before anything is contacted; `engine_runtimes` (from `docker info`) is
    given when applying, left out when only rendering."""
    spec: ContainerRuntime | None = document.get("ContainerRuntime")
    if spec is None:
        raise SpecMappingError(f"{document.label} has no ContainerRuntime")
    workload = workload_name(document)
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", workload):
        raise SpecMappingError(f"{workload!r} cannot name containers", "letters, digits, _ . and -")
    exposed, bindings = port_bindings(spec)
    host_config: dict[str, Any] = {
        "PortBindings": bindings,
        "Binds": binds(spec, base_dir),
        "CapDrop": ["ALL"],
        "CapAdd": sorted({capability_name(cap) for cap in spec.security.capabilities}),
        "SecurityOpt": security_options(spec.security, base_dir),
        "ReadonlyRootfs": spec.security.read_only_root_filesystem,
        "RestartPolicy": {"Name": spec.restart_policy, "MaximumRetryCount": 0},
    }
    limits, requests = spec.resources.limits, spec.resources.requests
    if limits.cpu is not None:
        host_config["NanoCpus"] = nano_cpus(limits.cpu)
    if limits.memory is not None:
        host_config["Memory"] = limits.memory
        host_config["MemorySwap"] = limits.memory
    if requests.cpu is not None:
        host_config["CpuShares"] = cpu_shares(requests.cpu)
    if requests.memory is not None:
        host_config["MemoryReservation"] = requests.memory
    runtime = engine_runtime(spec.runtime, engine_runtimes)
    if runtime is not None:
        host_config["Runtime"] = runtime

    body: dict[str, Any] = {
        "Image": spec.base_image,
        "Env": [f"{key}={value}" for key, value in environment(spec, document).items()],
        "Labels": {**spec.labels, LABEL_WORKLOAD: workload},
        "ExposedPorts": exposed,
        "HostConfig": host_config,
    }
    optional = {
        "Cmd": list(spec.command) if spec.command is not None else None,
        "Entrypoint": list(spec.entrypoint) if spec.entrypoint is not None else None,
        "WorkingDir": spec.working_dir,
        "User": spec.security.user,
        "Healthcheck": health_config(spec.health_check) if spec.health_check else None,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    spec_hash = hash_of(body)
    body["Labels"][LABEL_SPEC_HASH] = spec_hash
    fixed = tuple(key for key, entries in bindings.items() if any(e["HostPort"] for e in entries))
    return WorkloadRequest(workload, document.desired_replicas, spec_hash, body, fixed)


def hash_of(body: Mapping[str, Any]) -> str:
    """What identifies a configuration: the body without the replica label and without the
    fields the engine updates in place."""
    host_config = {k: v for k, v in body["HostConfig"].items() if k not in RESOURCE_FIELDS}
    labels = {k: v for k, v in body.get("Labels", {}).items() if k not in MANAGED_LABELS[1:]}
    canonical = json.dumps({**body, "HostConfig": host_config, "Labels": labels}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- showing requests -----------------------------------------------------------------------

def mask_env_value(name: str, value: str) -> str:
    """`***` for a secret-looking variable (by its name or its value); a URL keeps all but its password."""
    return str(mask_secrets(value, name))


def mask_env(entries: list[str]) -> list[str]:
    masked = []
    for entry in entries:
        name, sep, value = entry.partition("=")
        masked.append(f"{name}{sep}{mask_env_value(name, value)}" if sep else entry)
    return masked


def mask_commands(config: dict[str, Any]) -> None:
    """Secrets in the command, entrypoint and health check of a container config, masked in
    place (`curl -u user:pass`, `-H "X-Api-Key: ..."`)."""
    for key in ("Cmd", "Entrypoint"):
        if config.get(key):
            config[key] = mask_secrets(config[key])
    health = config.get("Healthcheck") or {}
    if health.get("Test"):
        health["Test"] = mask_secrets(health["Test"])


def shown_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A create body fit to print: secrets in environment values and commands masked, and a
    custom seccomp profile shortened to its size (its JSON is kilobytes long)."""
    shown = json.loads(json.dumps(body))
    shown["Env"] = mask_env(shown.get("Env", []))
    mask_commands(shown)
    options = shown["HostConfig"].get("SecurityOpt", [])
    shown["HostConfig"]["SecurityOpt"] = [
        f"seccomp=<profile, {len(o) - len('seccomp=')} bytes of JSON>" if o.startswith("seccomp={") else o
        for o in options
    ]
    return shown


def render(document: Document, base_dir: Path) -> dict[str, Any]:
    """What `render` prints for a ContainerRuntime document: one create request per replica."""
    request = workload_request(document, base_dir)
    rendered: dict[str, Any] = {
        "workload": request.workload,
        "replicas": request.replicas,
        "spec_hash": request.spec_hash,
        "requests": [
            {"method": "POST", "path": f"/containers/create?name={r.name}", "body": shown_body(r.body)}
            for r in (request.for_replica(i) for i in range(request.replicas))
        ],
    }
    if request.fixed_host_ports and request.replicas > 1:
        rendered["note"] = (
            f"host port {', '.join(request.fixed_host_ports)} is fixed: one engine can run only one "
            "replica that publishes it"
        )
    return rendered
