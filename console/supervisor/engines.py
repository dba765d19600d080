"""The supervisor's view of the Docker engines: replicas, exec with a timeout, restart,
create, remove, in-place resource updates and usage samples.

A thin layer over `backends.docker.client.EngineClient` (connection handling and typed errors)
and `backends.docker.mapping` (the create request of a replica). It adds what the control
loops need that the poller's records do not carry: a container's address on its network (for
HTTP and TCP probes), its exact start time (a restart resets its probes) . Usage figures for
the autoscaler come from the Docker backend's own sampler (`DockerBackend.collect()`).

Every call that cannot reach the engine raises `backends.base.BackendUnavailable`; a request
the engine refuses raises `backends.docker.errors.DockerRequestError`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backends.docker.client import EngineClient, EngineEndpoint, engine_node
from backends.docker.errors import ContainerNotFound, DockerRequestError
from backends.docker.mapping import LABEL_REPLICA, LABEL_WORKLOAD, RESOURCE_FIELDS, WorkloadRequest
from rtm.scheduling import SchedNode

STOP_GRACE_SECONDS = 2  # a restart gives the old process this long after SIGTERM, then kills it


@dataclass(frozen=True)
class Replica:
    """One container of a workload on one engine, as the supervisor sees it."""

    id: str
    name: str
    engine: str  # the engine's endpoint name, which is also its scheduler node id
    workload: str
    index: int
    state: str  # created, running, paused, restarting, exited, dead
    health: str | None  # Docker's HEALTHCHECK verdict: starting, healthy, unhealthy
    started_at: float | None  # epoch seconds of the last start
    address: str | None  # IP address on its network, reachable from the engine's host
    restart_count: int = 0
    resources: Mapping[str, int] = field(default_factory=dict)  # NanoCpus, Memory, ...

    @property
    def key(self) -> tuple[str, str]:
        return (self.engine, self.name)

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None when it timed out
    output: str
    timed_out: bool = False


def parse_docker_time(text: str | None) -> float | None:
    """Docker's RFC 3339 timestamps with nanoseconds; the zero time means never."""
    if not text or text.startswith("0001-"):
        return None
    text = text.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most microseconds: trim the fraction, keep the zone
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(text).timestamp()


def container_address(inspect: Mapping[str, Any]) -> str | None:
    settings = inspect.get("NetworkSettings") or {}
    if settings.get("IPAddress"):
        return settings["IPAddress"]
    for network in (settings.get("Networks") or {}).values():
        if network and network.get("IPAddress"):
            return network["IPAddress"]
    return None


def replica_from_inspect(engine: str, inspect: Mapping[str, Any]) -> Replica:
    labels = (inspect.get("Config") or {}).get("Labels") or {}
    state = inspect.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    index_text = labels.get(LABEL_REPLICA, "")
    host_config = inspect.get("HostConfig") or {}
    return Replica(
        id=inspect["Id"],
        name=str(inspect.get("Name", "")).lstrip("/"),
        engine=engine,
        workload=labels.get(LABEL_WORKLOAD, ""),
        index=int(index_text) if index_text.isdigit() else -1,
        state=str(state.get("Status", "unknown")),
        health=health,
        started_at=parse_docker_time(state.get("StartedAt")),
        address=container_address(inspect),
        restart_count=int(inspect.get("RestartCount") or 0),
        resources={name: int(host_config.get(name) or 0) for name in RESOURCE_FIELDS},
    )


def _demux(data: bytes) -> str:
    """The text of a multiplexed exec stream (8-byte frame headers, as without a TTY)."""
    out = bytearray()
    position = 0
    while position + 8 <= len(data):
        _kind, size = struct.unpack(">BxxxL", data[position:position + 8])
        out += data[position + 8:position + 8 + size]
        position += 8 + size
    return out.decode("utf-8", errors="replace")


class Engine:
    """One Docker engine as the supervisor uses it. Thread-safe (docker-py pools connections)."""

    def __init__(self, endpoint: EngineEndpoint | Any, timeout: float = 30.0) -> None:
        self.endpoint = EngineEndpoint.of(endpoint)
        self.name = self.endpoint.name
        self.client = EngineClient(self.endpoint, timeout=timeout)
        self._stats_backend: Any = None  # backends.docker.backend.DockerBackend, made on first use

    def __repr__(self) -> str:
        return f"Engine({self.name!r}, {self.endpoint.host!r})"

    # --- reading ------------------------------------------------------------------------------

    def ping(self, timeout: float) -> bool:
        """True when the engine answers within `timeout` seconds (a detection check)."""
        checker = EngineClient(self.endpoint, timeout=timeout)
        try:
            checker.ping()
            return True
        except Exception:  # any failure to answer is a failed check
            return False
        finally:
            with contextlib.suppress(Exception):
                checker.close()

    def replicas(self, workload: str | None = None) -> list[Replica]:
        """The managed containers (label rtm.workload), of one workload or of all, any state."""
        label = LABEL_WORKLOAD if workload is None else f"{LABEL_WORKLOAD}={workload}"
        listed = self.client.call(lambda api: api.containers(all=True, filters={"label": label}))
        replicas = []
        for entry in listed:
            try:
                inspect = self.client.call(lambda api, cid=entry["Id"]: api.inspect_container(cid))
            except Exception as error:  # removed between the listing and the inspect
                if "no such container" in str(error).lower():
                    continue
                raise
            replicas.append(replica_from_inspect(self.name, inspect))
        return sorted(replicas, key=lambda r: (r.index, r.name))

    def inspect(self, container_id: str) -> Replica:
        return replica_from_inspect(self.name, self.client.call(lambda api: api.inspect_container(container_id)))

    def container_stats(self) -> dict[str, Any]:
        """container id -> the Docker backend's ContainerInfo (CPU ratio since its previous
        reading, memory working set), from its cgroup-file or stream sampler."""
        if self._stats_backend is None:
            from backends.docker.backend import DockerBackend

            self._stats_backend = DockerBackend(self.endpoint)
        return {info.id: info for info in self._stats_backend.collect()}

    def node(self, requested_cpu_millis: int = 0, requested_memory_bytes: int = 0,
             replicas_here: int = 0, cordoned: bool = False) -> SchedNode:
        """The engine as a scheduler node; `replicas_here` counts as its connections, so
        least_connections spreads a workload over the engines."""
        node = engine_node(self.endpoint, self.client.info(), requested_cpu_millis, requested_memory_bytes, cordoned)
        return SchedNode(node.id, node.zone, node.cpu_millis, node.memory_bytes, node.labels,
                         node.weight, replicas_here, node.runtimes, node.cordoned)

    # --- changing -----------------------------------------------------------------------------

    def exec(self, container_id: str, command: Sequence[str], timeout: float) -> ExecResult:
        """Run `command` in the container; give up after `timeout` seconds (then the exec'd
        process is killed when the engine is on this machine, as the kubelet does)."""
        exec_id = self.client.call(lambda api: api.exec_create(container_id, list(command), stdout=True, stderr=True))["Id"]
        deadline = time.monotonic() + timeout
        stream = self.client.call(lambda api: api.exec_start(exec_id, socket=True))
        raw = getattr(stream, "_sock", stream)
        data = bytearray()
        timed_out = False
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                raw.settimeout(remaining)
                try:
                    chunk = raw.recv(65536)
                except (socket.timeout, TimeoutError):
                    timed_out = True
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            with contextlib.suppress(OSError):
                stream.close()
        output = _demux(bytes(data))
        if timed_out:
            self._kill_exec(exec_id)
            return ExecResult(None, output, timed_out=True)
        return ExecResult(self._exit_code(exec_id), output)

    def _exit_code(self, exec_id: str) -> int | None:
        # The stream ends a moment before the engine records the exit code.
        for _ in range(50):
            info = self.client.call(lambda api: api.exec_inspect(exec_id))
            if not info.get("Running"):
                return info.get("ExitCode")
            time.sleep(0.01)
        return None

    def _kill_exec(self, exec_id: str) -> None:
        if not self.client.is_local():
            return  # a remote engine's processes are out of reach; the exec runs to its end
        with contextlib.suppress(Exception):
            pid = self.client.call(lambda api: api.exec_inspect(exec_id)).get("Pid")
            if pid:
                os.kill(int(pid), signal.SIGKILL)

    def restart(self, container_id: str, grace: int = STOP_GRACE_SECONDS) -> None:
        self.client.call(lambda api: api.restart(container_id, timeout=grace))

    def remove(self, container_id: str) -> None:
        """Remove the container, running or not; one already gone (or going) is fine."""
        try:
            self.client.call(lambda api: api.remove_container(container_id, force=True))
        except ContainerNotFound:
            return
        except DockerRequestError as error:
            if "already in progress" not in str(error):
                raise

    def create_replica(self, request: WorkloadRequest, index: int) -> Replica:
        """Create and start replica `index` of a mapped workload on this engine."""
        replica = request.for_replica(index)
        created = self.client.call(lambda api: api.create_container_from_config(replica.body, replica.name))
        try:
            self.client.call(lambda api: api.start(created["Id"]))
        except Exception:
            with contextlib.suppress(Exception):
                self.remove(created["Id"])
            raise
        return self.inspect(created["Id"])

    def update_resources(self, container_id: str, values: Mapping[str, int]) -> None:
        """Change NanoCpus / Memory / MemorySwap / ... in place (no restart)."""
        body = {key: int(value) for key, value in values.items() if key in RESOURCE_FIELDS}

        def update(api: Any) -> Any:
            url = self.client.url("/containers/{0}/update", container_id)
            return api._result(api._post_json(url, data=body), True)

        self.client.call(update)

    def runtimes(self) -> frozenset[str]:
        return self.client.info().runtimes

    def close(self) -> None:
        if self._stats_backend is not None:
            self._stats_backend.close()
        self.client.close()
