"""The configuration's values: frozen settings per section, where each value came from, and the
errors a bad configuration raises. Each backend defines its own settings type in its package
(backends/docker/settings.py, backends/libvirt/..., backends/aws_lambda/..., backends/localfn/...);
the sections here hold them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from backends.aws_lambda.settings import AwsSettings
from backends.docker.settings import DockerSettings
from backends.libvirt.settings import LibvirtSettings
from backends.localfn.settings import LocalFunctionsSettings

THEMES = ("dark", "light", "high-contrast")
FUNCTION_TARGETS = ("aws", "local", "auto")
MIN_REFRESH_SECONDS = 0.5
MIN_KIOSK_CYCLE_SECONDS = 1.0


# --- values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListenAddress:
    """A `HOST:PORT` to listen on. An empty host means every interface; port 0 means any."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FunctionsSettings:
    target: Literal["aws", "local"]  # resolved: "auto" never appears here
    requested_target: str  # what was asked for: aws, local or auto
    target_reason: str  # why `target` is what it is
    gateway_listen: ListenAddress


@dataclass(frozen=True)
class ExporterSettings:
    listen: ListenAddress
    web_config: Path | None
    console_listen: ListenAddress | None


@dataclass(frozen=True)
class KioskSettings:
    enabled: bool
    cycle_interval: float  # seconds; 0 = stay on one pane
    lock: bool


@dataclass(frozen=True)
class LoadBalancerSettings:
    upstream_path: Path | None
    reload_command: tuple[str, ...] | None


@dataclass(frozen=True)
class AutoscalerSettings:
    tolerance: float


@dataclass(frozen=True)
class ConsoleSettings:
    shell: tuple[str, ...] = ("/bin/sh",)  # what `e` runs in a container
    shell_idle_timeout: float = 900.0  # seconds without a key or output before a shell closes; 0 = never


@dataclass(frozen=True)
class Source:
    """Where a value came from: a flag, an environment variable, the file (with line) or the
    default (with what it was derived from, e.g. DOCKER_HOST)."""

    kind: Literal["flag", "env", "file", "default"]
    detail: str = ""

    def __str__(self) -> str:
        if self.kind == "default":
            return f"default ({self.detail})" if self.detail else "default"
        return f"{self.kind} {self.detail}"


@dataclass(frozen=True)
class Config:
    refresh_interval: float
    theme: str
    specs_dir: Path
    data_dir: Path
    docker: DockerSettings
    libvirt: LibvirtSettings
    aws: AwsSettings
    functions: FunctionsSettings
    exporter: ExporterSettings
    kiosk: KioskSettings
    load_balancer: LoadBalancerSettings
    autoscaler: AutoscalerSettings
    file: Path | None  # the config file that was read, None when there was none
    file_source: str  # how the file was chosen, e.g. "flag --config", "default location"
    sources: Mapping[str, Source] = field(compare=False, repr=False)
    console: ConsoleSettings = ConsoleSettings()

    def get(self, key: str) -> Any:
        """A value by its dotted key, e.g. `config.get("exporter.listen")`."""
        value: Any = self
        for part in key.split("."):
            value = getattr(value, part)
        return value

    def source(self, key: str) -> Source:
        return self.sources[key]

    @property
    def local_functions(self) -> LocalFunctionsSettings:
        """What the local functions runtime needs: the data folder and the gateway's address."""
        listen = self.functions.gateway_listen
        return LocalFunctionsSettings(self.data_dir, listen.host, listen.port)


# --- errors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigFinding:
    """One problem in the configuration. `line`/`column` count from 1 and are None for values
    that did not come from the file (environment variables, flags)."""

    path: str
    line: int | None
    column: int | None
    message: str
    hint: str | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}:{self.column}"
        text = f"{where}: error: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(Exception):
    def __init__(self, findings: list[ConfigFinding] | tuple[ConfigFinding, ...]) -> None:
        self.findings = tuple(findings)
        super().__init__("\n".join(str(finding) for finding in self.findings))
