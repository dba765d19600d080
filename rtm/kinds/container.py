"""ContainerRuntime: one container image with its resources, security and health check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

from rtm.errors import SpecValueError
from rtm.kinds.values import Cpu, Duration, Memory
from rtm.schema import BuildContext, FrozenMap, Parse, Where, where_field

# Linux capabilities (capabilities(7)); written with or without the CAP_ prefix.
CAPABILITIES = frozenset(
    """AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE CHOWN
    DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE
    MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW PERFMON SETFCAP
    SETGID SETPCAP SETUID SYSLOG SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT
    SYS_PTRACE SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG WAKE_ALARM""".split()
)

# Capabilities that reach past the container into the host (capabilities(7), Docker's
# "privileged" set): with one of them a process in the container can change the machine itself.
HOST_LEVEL_CAPABILITIES = {
    "SYS_ADMIN": "mount filesystems, change namespaces and much of the kernel's configuration",
    "SYS_MODULE": "load kernel modules",
    "SYS_RAWIO": "read and write raw devices and I/O ports",
    "SYS_PTRACE": "trace and change other processes",
    "SYS_BOOT": "reboot the host",
    "SYS_TIME": "set the host's clock",
    "NET_ADMIN": "reconfigure the host's network when it shares it",
    "DAC_READ_SEARCH": "read any file by handle, outside its own filesystem",
    "MAC_ADMIN": "change the host's security (AppArmor, SELinux) policy",
    "MAC_OVERRIDE": "bypass the host's security (AppArmor, SELinux) policy",
    "BPF": "load programs into the kernel",
    "PERFMON": "watch every process on the host",
    "SYSLOG": "read and clear the kernel's log",
}
# Host paths whose bind mount hands the container the host: its root, or the engine's socket.
HOST_TAKEOVER_PATHS = {
    "/": "the host's whole filesystem",
    "/var/run/docker.sock": "the Docker socket: full control of the engine, so of the host",
    "/run/docker.sock": "the Docker socket: full control of the engine, so of the host",
    "/var/run": "the folder of the Docker socket: full control of the engine, so of the host",
    "/run": "the folder of the Docker socket: full control of the engine, so of the host",
}


@dataclass(frozen=True)
class HostRisk:
    """A setting that weakens the wall between a container and its host."""

    where: Where
    field: str
    message: str
    hint: str


_PORT = re.compile(r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:(?P<host>\d+):)?(?P<container>\d+)(?:/(?P<proto>tcp|udp|sctp))?$")


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int | None = None
    host_ip: str | None = None
    protocol: str = "tcp"

    def __str__(self) -> str:
        published = f"{self.host_ip + ':' if self.host_ip else ''}{self.host_port}:" if self.host_port else ""
        return f"{published}{self.container_port}/{self.protocol}"


def parse_port(value: object) -> PortMapping:
    """`8080`, `"8080:80"`, `"127.0.0.1:8080:80/udp"` (host side first, as `docker run -p`)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise SpecValueError("a port must be a number or text such as \"8080:80\"")
    match = _PORT.match(text)
    if not match:
        raise SpecValueError(f'"{text}" is not a port mapping', 'write CONTAINER, HOST:CONTAINER or IP:HOST:CONTAINER, optionally ending in /tcp or /udp')
    ports = [int(p) for p in (match["host"], match["container"]) if p is not None]
    if any(not 1 <= p <= 65535 for p in ports):
        raise SpecValueError(f'"{text}": ports are numbers from 1 to 65535')
    return PortMapping(
        container_port=int(match["container"]),
        host_port=int(match["host"]) if match["host"] else None,
        host_ip=match["ip"].strip("[]") if match["ip"] else None,
        protocol=match["proto"] or "tcp",
    )


@dataclass(frozen=True)
class VolumeMount:
    source: str
    target: str
    read_only: bool = False


def parse_volume(value: object) -> VolumeMount:
    """`"data:/var/lib/data"` or `"/srv/conf:/etc/app:ro"` (named volume or host path, then target)."""
    if not isinstance(value, str):
        raise SpecValueError("a volume must be text such as \"data:/var/lib/data\"")
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
        raise SpecValueError(f'"{value}" is not a volume mount', "write SOURCE:/absolute/target, optionally ending in :ro or :rw")
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise SpecValueError(f'"{value}": the mode must be ro or rw', offset=len(parts[0]) + len(parts[1]) + 2)
    return VolumeMount(parts[0], parts[1], mode == "ro")


Port = Annotated[PortMapping, Parse(parse_port, 'a port such as 8080 or "8080:80"')]
Volume = Annotated[VolumeMount, Parse(parse_volume, 'a volume such as "data:/var/lib/data"')]


@dataclass(frozen=True)
class Security:
    user: str | None = None
    capabilities: tuple[str, ...] = ()
    seccomp_profile: str = "runtime/default"
    no_new_privileges: bool = True
    read_only_root_filesystem: bool = False
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        for cap in self.capabilities:
            if cap.upper().removeprefix("CAP_") not in CAPABILITIES:
                ctx.error(self.where, "capabilities", f'"{cap}" is not a Linux capability', 'names such as NET_BIND_SERVICE, see capabilities(7)')

    def host_risks(self, volumes: tuple[VolumeMount, ...], where: Where) -> list[HostRisk]:
        """Each dangerous setting of this security block (and of the container's volumes at `where`)."""
        risks = []
        for index, cap in enumerate(self.capabilities):
            name = cap.upper().removeprefix("CAP_")
            if name in HOST_LEVEL_CAPABILITIES:
                risks.append(HostRisk(self.where, f"capabilities[{index}]", f"capability {name} lets the container {HOST_LEVEL_CAPABILITIES[name]}",
                                      f"remove {cap}, or grant the narrow capability the program needs"))
        for index, volume in enumerate(volumes):
            source = volume.source.rstrip("/") or "/"
            if source in HOST_TAKEOVER_PATHS:
                risks.append(HostRisk(where, f"volumes[{index}]", f'the bind mount of "{volume.source}" gives the container {HOST_TAKEOVER_PATHS[source]}',
                                      "mount only the files the program needs, read-only (:ro) where it can"))
        if self.seccomp_profile == "unconfined":
            risks.append(HostRisk(self.where, "seccomp_profile", "seccomp_profile: unconfined lets the container make every system call, including those that reach the host's kernel",
                                  "keep runtime/default, or name a profile that allows the calls the program needs"))
        if not self.no_new_privileges:
            risks.append(HostRisk(self.where, "no_new_privileges", "no_new_privileges: false lets a process gain privileges through setuid programs",
                                  "keep no_new_privileges: true unless the program must run setuid helpers"))
        return risks

    @property
    def runs_as_root(self) -> bool:
        return self.user is None or self.user.split(":")[0] in ("0", "root", "")


@dataclass(frozen=True)
class ResourceAmounts:
    cpu: Cpu | None = None
    memory: Memory | None = None
    where: Where = where_field()


@dataclass(frozen=True)
class Resources:
    limits: ResourceAmounts = ResourceAmounts()
    requests: ResourceAmounts = ResourceAmounts()
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        for name in ("cpu", "memory"):
            limit, request = getattr(self.limits, name), getattr(self.requests, name)
            if limit is not None and request is not None and request > limit:
                ctx.error(
                    self.requests.where, name,
                    f"the {name} request is above its limit",
                    f"a container cannot be guaranteed more than it may use: lower requests.{name} or raise limits.{name}",
                )


@dataclass(frozen=True)
class ContainerHealthCheck:
    """Docker's HEALTHCHECK: a list is run directly (CMD), a string by the shell (CMD-SHELL)."""

    command: tuple[str, ...] | str
    interval: Duration = 30.0
    timeout: Duration = 10.0  # Docker's default is 30 s, equal to the interval; we keep them apart
    retries: int = 3
    start_period: Duration = 0.0
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        check_probe_timing(self, ctx)
        if not self.command:
            ctx.error(self.where, "command", "the health check command is empty")

    def docker_test(self) -> list[str]:
        """The HealthConfig `Test` list: CMD / CMD-SHELL prefixes as the Docker API wants."""
        if isinstance(self.command, str):
            return ["CMD-SHELL", self.command]
        if self.command[0] in ("CMD", "CMD-SHELL", "NONE"):
            return list(self.command)
        return ["CMD", *self.command]


def check_probe_timing(probe: object, ctx: BuildContext) -> None:
    """A probe whose timeout is not below its interval overlaps itself; retries count from 1."""
    where: Where = probe.where  # type: ignore[attr-defined]
    if probe.timeout >= probe.interval:  # type: ignore[attr-defined]
        ctx.error(where, "timeout", "the timeout must be shorter than the interval", "otherwise one check is still running when the next starts")
    if probe.timeout <= 0:  # type: ignore[attr-defined]
        ctx.error(where, "timeout", "the timeout must be above zero")
    if probe.retries < 1:  # type: ignore[attr-defined]
        ctx.error(where, "retries", "retries must be at least 1")


@dataclass(frozen=True)
class ContainerRuntime:
    base_image: str
    runtime: str = "containerd"
    name: str | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str | None = None
    environment: FrozenMap = FrozenMap()
    labels: FrozenMap = FrozenMap()
    ports: tuple[Port, ...] = ()
    volumes: tuple[Volume, ...] = ()
    security: Security = Security()
    resources: Resources = Resources()
    health_check: ContainerHealthCheck | None = None
    restart_policy: Literal["no", "on-failure", "always", "unless-stopped"] = "no"
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if not self.base_image.strip():
            ctx.error(self.where, "base_image", "base_image is empty", 'name an image such as "alpine:3.18"')
        if self.name is not None and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", self.name):
            ctx.error(self.where, "name", f'"{self.name}" is not a valid container name', "letters, digits, _ . and -, starting with a letter or digit")
        if self.security.runs_as_root:
            where, key = (self.security.where, "user") if self.security.user else (self.where, "security" if "security" in self.where.fields else None)
            ctx.warning(where, key, "the container runs as root", 'set security.user, e.g. "1000:1000"')
        for risk in self.host_risks():
            ctx.warning(risk.where, risk.field, risk.message, risk.hint)
        if self.health_check and calls_curl(self.health_check.command) and is_alpine_image(self.base_image):
            ctx.warning(self.health_check.where, "command", f"{self.base_image} has no curl (BusyBox provides wget)", "use: wget -q -O- http://127.0.0.1:8080/health")


    def host_risks(self) -> list[HostRisk]:
        """The settings that give this container power over its host (warned at validate, asked at apply)."""
        return self.security.host_risks(self.volumes, self.where)


def calls_curl(command: tuple[str, ...] | str | None) -> bool:
    text = command if isinstance(command, str) else " ".join(command or ())
    return re.search(r"(^|[\s/;|&])curl(\s|$)", text) is not None


def is_alpine_image(image: str) -> bool:
    name = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image
    return name.split("/")[-1] in ("alpine", "busybox")

