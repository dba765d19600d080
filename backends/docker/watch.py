"""The containers of one engine, kept current by the engine's `/events` stream.

One thread per engine subscribes to the container events first, then lists and inspects every
container once (the inspections in parallel), then applies each event as it comes: `destroy`
drops the container, `health_status` changes its health, the others re-inspect that one
container. Nothing is re-listed while the stream lasts, so a refresh costs no engine call for
containers that did not change.

When the stream ends (the engine stopped or restarted) the thread retries with a growing delay
(at most `retry_max` seconds) and, once subscribed again, lists everything again: containers
may have been started, removed or given new process ids meanwhile.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from backends.base import BackendUnavailable
from backends.docker.client import EngineClient
from backends.docker.errors import ContainerNotFound, DockerRequestError
from backends.docker.mapping import LABEL_REPLICA, LABEL_WORKLOAD
from backends.records import FrozenDict, freeze

log = logging.getLogger("rtm.backends.docker")

WATCHED_EVENTS = (
    "create", "start", "restart", "die", "stop", "kill", "pause", "unpause",
    "destroy", "rename", "update", "health_status", "oom",
)  # fmt: skip  (exec_* events, which health checks cause every interval, are left out)
INSPECT_WORKERS = 8


_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$")


def parse_timestamp(text: str | None) -> float | None:
    """Docker's RFC 3339 times with nanoseconds -> epoch seconds; the zero time -> None."""
    match = _TIMESTAMP.match(text or "")
    if not match or match[1].startswith("0001-"):
        return None
    zone = match[3] or "Z"
    moment = datetime.fromisoformat(match[1] + ("+00:00" if zone == "Z" else zone))
    return moment.timestamp() + (float(match[2]) if match[2] else 0.0)


def format_ports(ports: Mapping[str, Any] | None) -> tuple[str, ...]:
    """NetworkSettings.Ports -> ("49153->8080/tcp", "9000/udp"); the IPv4 and IPv6 bindings of
    one port are shown once, and a host address only when it is a specific one."""
    shown: list[str] = []
    for container_port, bindings in sorted((ports or {}).items()):
        if not bindings:
            shown.append(container_port)
            continue
        for binding in bindings:
            host_ip = binding.get("HostIp") or ""
            prefix = "" if host_ip in ("", "0.0.0.0", "::") else f"{host_ip}:"
            text = f"{prefix}{binding.get('HostPort')}->{container_port}"
            if text not in shown:
                shown.append(text)
    return tuple(shown)


@dataclass(frozen=True)
class ContainerState:
    """What the engine says about one container (from its inspection)."""

    id: str
    name: str
    image: str
    state: str
    health: str | None
    ports: tuple[str, ...]
    started_at: float | None
    restarts: int
    pid: int  # the init process on the engine's host; 0 when not running
    memory_limit: int | None  # HostConfig.Memory, None when unlimited
    nano_cpus: int
    cpu_shares: int
    memory_reservation: int
    labels: FrozenDict = field(default_factory=FrozenDict)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def workload(self) -> str | None:
        return self.labels.get(LABEL_WORKLOAD)

    @property
    def replica(self) -> int | None:
        value = self.labels.get(LABEL_REPLICA, "")
        return int(value) if value.isdigit() else None

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> ContainerState:
        state = data.get("State") or {}
        config = data.get("Config") or {}
        host = data.get("HostConfig") or {}
        health = state.get("Health")
        return cls(
            id=data["Id"],
            name=str(data.get("Name", "")).lstrip("/"),
            image=str(config.get("Image") or data.get("Image", "")),
            state=str(state.get("Status", "unknown")),
            health=health.get("Status") if isinstance(health, Mapping) else None,
            ports=format_ports((data.get("NetworkSettings") or {}).get("Ports")),
            started_at=parse_timestamp(state.get("StartedAt")),
            restarts=int(data.get("RestartCount") or 0),
            pid=int(state.get("Pid") or 0),
            memory_limit=int(host.get("Memory") or 0) or None,
            nano_cpus=int(host.get("NanoCpus") or 0),
            cpu_shares=int(host.get("CpuShares") or 0),
            memory_reservation=int(host.get("MemoryReservation") or 0),
            labels=freeze(config.get("Labels") or {}),
        )


ChangeCallback = Callable[[str, "ContainerState | None"], None]


class EngineWatch:
    """The container table of one engine, and the thread that keeps it current."""

    def __init__(self, client: EngineClient, *, retry_max: float = 2.0, on_change: ChangeCallback | None = None) -> None:
        self.client = client
        self.retry_max = retry_max
        self.on_change = on_change
        self._lock = threading.Lock()
        self._table: dict[str, ContainerState] = {}
        self._synced = threading.Event()  # the current subscription has listed everything
        self._attempted = threading.Event()  # a first attempt (success or failure) finished
        self._closed = threading.Event()
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self.subscribed_at: float | None = None  # monotonic time of the current subscription

    # .. lifecycle

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"rtm-docker-events:{self.client.endpoint.name}", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._cancel_stream()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # .. what the table holds

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Waits until the table is complete; gives up early once the engine is known to be
        unreachable (after at least one attempt)."""
        deadline = time.monotonic() + timeout
        while not self._synced.wait(0.05):
            unreachable = self.client.availability().state == "unreachable"
            if (unreachable and self._attempted.is_set()) or time.monotonic() >= deadline:
                return False
        return True

    def containers(self) -> dict[str, ContainerState]:
        with self._lock:
            return dict(self._table)

    def reconnect(self) -> None:
        """Drops the current subscription; the thread subscribes and lists again at once. For a
        stream that may have outlived an outage without noticing (a half-open TCP connection)."""
        self._cancel_stream()

    def refresh(self, container_id: str) -> ContainerState | None:
        """Re-inspects one container now (after an action, without waiting for its event)."""
        state = self._inspect(container_id)
        self._store(container_id, state)
        return state

    # .. the thread

    def _run(self) -> None:
        delay = 0.1
        while not self._closed.is_set():
            try:
                self._follow()
                delay = 0.1
            except BackendUnavailable:
                pass  # recorded in the client's availability
            except DockerRequestError as error:
                log.warning("docker %s: events: %s", self.client.endpoint.name, error)
            except Exception:  # never let the thread die: log it and try again
                log.exception("docker %s: unexpected error following events", self.client.endpoint.name)
            finally:
                self._synced.clear()
                self._attempted.set()
            if self._closed.is_set():
                break
            try:
                self.client.ping()  # so that availability() tells the truth before the next poll
            except (BackendUnavailable, DockerRequestError):
                pass
            self._closed.wait(delay)
            delay = min(delay * 2, self.retry_max)

    def _follow(self) -> None:
        filters = {"type": ["container"], "event": list(WATCHED_EVENTS)}
        # Subscribe before listing, so nothing that happens in between is missed.
        self._stream = self.client.call(lambda api: api.events(filters=filters, decode=True))
        self.subscribed_at = time.monotonic()
        try:
            self._sync()
            self._synced.set()
            self._attempted.set()
            for event in self._stream:
                if self._closed.is_set():
                    return
                self._apply(event)
        finally:
            self._cancel_stream()
        if not self._closed.is_set():
            log.info("docker %s: the event stream ended; reconnecting", self.client.endpoint.name)

    def _sync(self) -> None:
        summaries = self.client.call(lambda api: api.containers(all=True))
        ids = [summary["Id"] for summary in summaries]
        with ThreadPoolExecutor(max_workers=max(1, min(INSPECT_WORKERS, len(ids)))) as pool:
            states = list(pool.map(self._inspect, ids))
        table = {state.id: state for state in states if state is not None}
        with self._lock:
            old, self._table = self._table, table
        if self.on_change is not None:
            for container_id in old.keys() - table.keys():
                self.on_change(container_id, None)
            for container_id, state in table.items():
                self.on_change(container_id, state)

    def _apply(self, event: Any) -> None:
        if not isinstance(event, Mapping):
            return
        actor = event.get("Actor") or {}
        container_id = actor.get("ID") or event.get("id")
        action = str(event.get("Action") or event.get("status") or "")
        if not container_id:
            return
        if action == "destroy":
            self._store(container_id, None)
        elif action.startswith("health_status"):
            health = action.partition(":")[2].strip() or None
            with self._lock:
                current = self._table.get(container_id)
            if current is not None:
                self._store(container_id, replace(current, health=health))
        else:
            self._store(container_id, self._inspect(container_id))

    def _inspect(self, container_id: str) -> ContainerState | None:
        try:
            return ContainerState.from_inspect(self.client.call(lambda api: api.inspect_container(container_id)))
        except ContainerNotFound:
            return None

    def _store(self, container_id: str, state: ContainerState | None) -> None:
        with self._lock:
            if state is None:
                self._table.pop(container_id, None)
            else:
                self._table[container_id] = state
        if self.on_change is not None:
            self.on_change(container_id, state)

    def _cancel_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:  # already closed, or a transport that cannot cancel (ssh)
                pass
