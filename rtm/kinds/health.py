"""HealthCheck: liveness, readiness and startup probes (command, HTTP or TCP)."""

from __future__ import annotations

from dataclasses import dataclass

from rtm.kinds.container import check_probe_timing
from rtm.kinds.values import Duration
from rtm.schema import BuildContext, Where, where_field


@dataclass(frozen=True)
class HttpProbe:
    port: int
    path: str = "/"
    scheme: str = "http"
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if not 1 <= self.port <= 65535:
            ctx.error(self.where, "port", "port must be from 1 to 65535")
        if not self.path.startswith("/"):
            ctx.error(self.where, "path", "path must start with /")
        if self.scheme not in ("http", "https"):
            ctx.error(self.where, "scheme", "scheme must be http or https")


@dataclass(frozen=True)
class TcpProbe:
    port: int
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if not 1 <= self.port <= 65535:
            ctx.error(self.where, "port", "port must be from 1 to 65535")


@dataclass(frozen=True)
class Probe:
    """Kubernetes defaults: period 10 s, timeout 1 s, failure threshold 3, no initial delay."""

    command: tuple[str, ...] | str | None = None
    http: HttpProbe | None = None
    tcp: TcpProbe | None = None
    interval: Duration = 10.0
    timeout: Duration = 1.0
    retries: int = 3
    initial_delay: Duration = 0.0
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        kinds = [name for name in ("command", "http", "tcp") if getattr(self, name)]
        if len(kinds) != 1:
            message = "a probe needs one of command, http or tcp" if not kinds else f"a probe takes one of command, http or tcp, not {' and '.join(kinds)}"
            ctx.error(self.where, kinds[1] if len(kinds) > 1 else None, message)
        check_probe_timing(self, ctx)
        if self.initial_delay < 0:
            ctx.error(self.where, "initial_delay", "initial_delay cannot be negative")

    @property
    def exec_command(self) -> list[str] | None:
        if self.command is None:
            return None
        return ["/bin/sh", "-c", self.command] if isinstance(self.command, str) else list(self.command)


@dataclass(frozen=True)
class HealthCheck:
    liveness: Probe | None = None
    readiness: Probe | None = None
    startup: Probe | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if not (self.liveness or self.readiness or self.startup):
            ctx.error(self.where, None, "a HealthCheck needs a liveness, readiness or startup probe")

    def probes(self) -> dict[str, Probe]:
        return {name: p for name in ("startup", "liveness", "readiness") if (p := getattr(self, name))}
