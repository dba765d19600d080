"""One Docker engine: its address, a lazily opened connection, what it is, and whether it answers.

An engine is named by a `unix://`, `tcp://` (optionally with TLS) or `ssh://` address, as in
DOCKER_HOST. The connection is opened on first use, so a console started while the engine is
down starts anyway; from then on every failure to reach the engine becomes a
`BackendUnavailable` carrying the address, the cause in words and what to try, and every refusal
by the engine a one-line `DockerRequestError`. docker-py is imported here and nowhere above
backends/docker.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from backends.base import Availability, BackendUnavailable, one_line
from backends.docker.errors import ContainerNotFound, DockerRequestError
from backends.docker.settings import TlsSettings

log = logging.getLogger("rtm.backends.docker")

T = TypeVar("T")
BACKEND_TYPE = "docker"
DEFAULT_TIMEOUT = 10.0  # seconds for ordinary calls; streams have their own
# Streams (stats of every running container, events) hold a connection each.
MAX_POOL_SIZE = 512


@dataclass(frozen=True)
class EngineEndpoint:
    """A configured engine. `name` makes the backend's name (`docker@<name>`) and the id of the
    engine as a place for replicas (its machine, the node, is what `docker info` names: see
    backends/docker/engine_nodes.py); `zone` and `labels` are the node's labels for placement."""

    name: str
    host: str
    tls: TlsSettings | None = None
    zone: str = "local"
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def backend_name(self) -> str:
        return f"{BACKEND_TYPE}@{self.name}"

    @classmethod
    def of(cls, value: Any) -> EngineEndpoint:
        """From an EngineEndpoint, a bare address, or any object with `name`, `host` and `tls` (a
        TlsSettings) attributes, such as the configured DockerEndpoint."""
        if isinstance(value, EngineEndpoint):
            return value
        if isinstance(value, str):
            return cls(urlsplit(value).hostname or "local", value)
        return cls(
            value.name, value.host, getattr(value, "tls", None),
            zone=getattr(value, "zone", None) or "local", labels=dict(getattr(value, "labels", None) or {}),
        )  # fmt: skip

    @property
    def is_unix(self) -> bool:
        return self.host.startswith("unix://")


@dataclass(frozen=True)
class EngineInfo:
    """What `docker info` says about an engine, in base units."""

    name: str  # the engine host's name
    server_version: str
    api_version: str
    cpu_count: int
    memory_bytes: int
    runtimes: frozenset[str]
    default_runtime: str
    cgroup_version: str
    cgroup_driver: str

    @classmethod
    def from_info(cls, info: Mapping[str, Any], api_version: str) -> EngineInfo:
        return cls(
            name=str(info.get("Name", "")),
            server_version=str(info.get("ServerVersion", "")),
            api_version=api_version,
            cpu_count=int(info.get("NCPU") or 0),
            memory_bytes=int(info.get("MemTotal") or 0),
            runtimes=frozenset(info.get("Runtimes") or {}),
            default_runtime=str(info.get("DefaultRuntime") or "runc"),
            cgroup_version=str(info.get("CgroupVersion") or "1"),
            cgroup_driver=str(info.get("CgroupDriver") or ""),
        )


# --- errors for people ----------------------------------------------------------------------


def _chain(error: BaseException) -> list[BaseException]:
    """The error, its causes and contexts, and exceptions held in args (urllib3 nests them)."""
    seen: list[BaseException] = []
    stack = [error]
    while stack:
        current = stack.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.extend(e for e in (current.__cause__, current.__context__, getattr(current, "reason", None)) if isinstance(e, BaseException))
    return seen


def connection_problem(endpoint: EngineEndpoint, error: BaseException) -> tuple[str, str] | None:
    """(cause, hint) when `error` means the engine could not be reached; None otherwise."""
    import requests

    from backends.docker.ssh import SshError, SshTimeout

    chain = _chain(error)
    said_by_ssh = next((item for item in chain if isinstance(item, (SshError, SshTimeout))), None)
    if said_by_ssh is not None:
        return said_by_ssh.cause, said_by_ssh.hint
    path = endpoint.host.removeprefix("unix://")
    start = "start the Docker daemon (dockerd)" if endpoint.is_unix else "check that dockerd listens there and the network path is open"
    for item in chain:
        if isinstance(item, FileNotFoundError) and endpoint.is_unix:
            return f"no socket at {path}", f"{start}, or point DOCKER_HOST at the right socket"
        if isinstance(item, ConnectionRefusedError) or getattr(item, "errno", None) == errno.ECONNREFUSED:
            return "connection refused", start
        if isinstance(item, PermissionError):
            return f"permission denied on {path}", "run as a member of the docker group, or as root"
        if isinstance(item, socket.gaierror):
            return f"cannot resolve {urlsplit(endpoint.host).hostname}", "check the host name in the address"
    for item in chain:
        name = type(item).__name__
        if "SSLError" in name or "TLS" in name:
            return f"TLS failed: {one_line(str(item), 160)}", "check tls.ca, tls.cert and tls.key for this engine"
        if isinstance(item, (socket.timeout, TimeoutError)) or "Timeout" in name:
            return "no answer in time", f"{start}; the engine may be overloaded"
        if isinstance(item, (ConnectionResetError, BrokenPipeError)) or "ProtocolError" in name:
            return "the connection was closed", "the engine may be restarting; it is retried by itself"
    if any(isinstance(item, requests.exceptions.ConnectionError) for item in chain):
        return f"cannot connect ({one_line(str(error), 160)})", start
    return None


def request_error(error: BaseException) -> DockerRequestError:
    """An engine's refusal as a one-line typed error."""
    import docker.errors

    if isinstance(error, docker.errors.APIError):
        explanation = error.explanation or str(error)
        if isinstance(explanation, bytes):
            explanation = explanation.decode(errors="replace")
        text = one_line(str(explanation))
        if error.status_code == 404 and "container" in text.lower():
            return ContainerNotFound(text)
        return DockerRequestError(text)
    return DockerRequestError(one_line(f"{type(error).__name__}: {error}"))


# --- the connection -------------------------------------------------------------------------


@functools.cache
def _api_class() -> type:
    """docker.APIClient, except that an engine's own CA is not replaced by REQUESTS_CA_BUNDLE
    or CURL_CA_BUNDLE from the environment (requests lets those override a session's
    `verify` on every request, which breaks `tcp://` with the engine's CA), and that ssh://
    goes through backends/docker/ssh.py (the ssh command in batch mode, its failures in words)."""
    import docker

    class APIClient(docker.APIClient):  # type: ignore[misc]
        def __init__(self, base_url: str, version: str, **options: Any) -> None:
            if not base_url.startswith("ssh://"):
                super().__init__(base_url=base_url, version=version, **options)
                return
            from backends.docker import ssh

            # docker-py's own ssh:// needs paramiko even to shell out: start it on a unix
            # address that is never used (nothing connects at construction with a fixed
            # version), then send every request through the ssh adapter.
            super().__init__(base_url="unix:///nonexistent", version=docker.constants.DEFAULT_DOCKER_API_VERSION,
                             timeout=options["timeout"], max_pool_size=options["max_pool_size"])
            self._custom_adapter = ssh.SshAdapter(base_url, options["timeout"], options["max_pool_size"])
            self.mount(ssh.BASE_URL, self._custom_adapter)
            self.base_url = ssh.BASE_URL
            if version == "auto":
                self._version = self.version(api_version=False)["ApiVersion"]

        def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if verify is None and self.verify is not True:  # a CA path, or verification off
                settings["verify"] = self.verify
            return settings

    return APIClient


class EngineClient:
    """A docker-py low-level client for one endpoint, opened lazily and shared by threads.

    `call(fn)` runs `fn(api)` and translates errors; `availability()` tells what the last
    attempt found. Thread-safe: requests.Session pools connections per thread-safe adapter."""

    def __init__(self, endpoint: EngineEndpoint, *, timeout: float = DEFAULT_TIMEOUT, read_only: bool = False) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.read_only = read_only
        self._lock = threading.Lock()
        self._api: Any = None
        self._last_failure: tuple[float, BackendUnavailable] | None = None  # when the last attempt failed, and how
        self._info: EngineInfo | None = None
        self._availability = Availability(BACKEND_TYPE, endpoint.host, "pending", read_only=read_only)

    # .. state

    def availability(self) -> Availability:
        return self._availability

    def mark_connected(self) -> None:
        if not self._availability.connected:
            self._availability = Availability(BACKEND_TYPE, self.endpoint.host, "connected", read_only=self.read_only)

    def unavailable(self, error: BaseException) -> BackendUnavailable | None:
        """The BackendUnavailable for a transport error (also recorded), or None if it was not one."""
        problem = connection_problem(self.endpoint, error)
        if problem is None:
            return None
        cause, hint = problem
        self._availability = Availability(BACKEND_TYPE, self.endpoint.host, "unreachable", cause, hint, read_only=self.read_only)
        return BackendUnavailable(self._availability)

    # .. calls

    def api(self) -> Any:
        """The docker.APIClient, connecting (and negotiating the API version) on first use. A
        caller that waited while another caller's attempt failed gets that failure instead of
        trying again at once (over ssh, an attempt at a host that does not answer takes seconds)."""
        asked_at = time.monotonic()
        with self._lock:
            if self._api is None:
                failure = self._last_failure
                if failure is not None and failure[0] >= asked_at:
                    raise failure[1]
                try:
                    self._api = self._connect()
                except BackendUnavailable as error:
                    self._last_failure = (time.monotonic(), error)
                    raise
                self._last_failure = None
            return self._api

    def _connect(self) -> Any:
        try:
            from docker.tls import TLSConfig
        except ImportError as error:  # pragma: no cover - docker is a dependency
            self._availability = Availability(BACKEND_TYPE, self.endpoint.host, "not_installed", str(error), "pip install docker")
            raise BackendUnavailable(self._availability) from None
        tls: Any = False
        files = self.endpoint.tls
        if files is not None:
            cert = (str(files.cert), str(files.key)) if files.cert and files.key else None
            tls = TLSConfig(client_cert=cert, ca_cert=str(files.ca) if files.ca else None, verify=files.verify)
        host = self.endpoint.host.replace("tcp://", "https://", 1) if files is not None else self.endpoint.host
        try:
            api = _api_class()(base_url=host, version="auto", timeout=self.timeout, tls=tls, max_pool_size=MAX_POOL_SIZE)
        except Exception as error:  # any failure to open means the engine cannot be used
            raise self.unavailable(error) or BackendUnavailable(
                self._set_unreachable(one_line(str(error), 200), "check the engine address and its TLS settings")
            ) from None
        self.mark_connected()
        return api

    def _set_unreachable(self, cause: str, hint: str) -> Availability:
        self._availability = Availability(BACKEND_TYPE, self.endpoint.host, "unreachable", cause, hint, read_only=self.read_only)
        return self._availability

    def call(self, fn: Callable[[Any], T]) -> T:
        """`fn(api)` with errors translated: BackendUnavailable or DockerRequestError."""
        import docker.errors

        api = self.api()
        try:
            result = fn(api)
        except docker.errors.APIError as error:
            self.mark_connected()  # the engine answered
            raise request_error(error) from None
        except Exception as error:
            unavailable = self.unavailable(error)
            if unavailable is not None:
                raise unavailable from None
            if isinstance(error, docker.errors.DockerException):
                raise request_error(error) from None
            raise
        self.mark_connected()
        return result

    def ping(self) -> None:
        self.call(lambda api: api.ping())

    def info(self, refresh: bool = False) -> EngineInfo:
        if self._info is None or refresh:
            raw = self.call(lambda api: api.info())
            self._info = EngineInfo.from_info(raw, self.call(lambda api: api.api_version))
        return self._info

    def url(self, path: str, *args: str) -> str:
        """An Engine API URL for calls docker-py does not offer (NanoCpus updates, raw streams)."""
        api = self.api()
        return f"{api.base_url}/v{api.api_version}{path.format(*(quote(a, safe='') for a in args))}"

    def close(self) -> None:
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None

    def is_local(self) -> bool:
        """True when the engine runs on this machine (its socket is a local path we can see)."""
        return self.endpoint.is_unix and os.path.exists(self.endpoint.host.removeprefix("unix://"))
