"""What the configuration gives the Docker backend: the engines to use and how to reach them.

console/config builds these from the config file, RTM_* variables, flags and DOCKER_HOST;
`make_docker_handlers(endpoints)` takes them (EngineEndpoint.of reads name, host and tls).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class TlsSettings:
    """Client certificate, key and CA of a `tcp://` engine (DOCKER_TLS_VERIFY / DOCKER_CERT_PATH)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    verify: bool = True


@dataclass(frozen=True)
class DockerEndpoint:
    """One configured engine: `name` makes the backend's name (`docker@<name>`)."""

    name: str
    host: str  # unix:///PATH, tcp://HOST[:PORT] or ssh://[USER@]HOST[:PORT]
    tls: TlsSettings | None = None


PUBLISH_MODES = ("ingress", "host")  # how a Swarm service publishes its ports (docs/swarm.md)
CONTAINER_TARGETS = ("cluster", "standalone")  # where a container workload goes when a Swarm manager is configured


@dataclass(frozen=True)
class DockerSettings:
    endpoints: tuple[DockerEndpoint, ...]
    publish_mode: str = "ingress"
    target: str = "cluster"
