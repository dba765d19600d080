"""DockerBackend: one engine's containers, with live statistics, for the shared poller.

`poll()` costs one ping (so an engine that stopped is reported within one refresh) plus a read
of the cgroup files of the running containers (with a focus set, those in focus on every poll
and the rest on every few polls), or nothing more for containers fed by streams;
the container table itself comes from the engine's event stream (backends/docker/watch.py).
The very first poll waits for the table and takes a second reading shortly after the first, so
that even a one-shot `get containers` shows CPU % (which needs two readings).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from backends.base import Availability, BackendKind, BackendUnavailable
from backends.docker.client import EngineClient, EngineEndpoint, EngineInfo
from backends.docker.stats import ContainerStats, StatsCollector, StatsMode
from backends.docker.swarm.observer import SwarmObserver
from backends.docker.swarm.tasks import merge_task_rows
from backends.docker.watch import ContainerState, EngineWatch
from backends.records import ContainerInfo, KindSnapshot
from rtm.scheduling import SchedNode


def container_info(state: ContainerState, stats: ContainerStats | None, engine: str) -> ContainerInfo:
    """The record for one container; counters are zero and CPU None while it does not run."""
    return ContainerInfo(
        id=state.id,
        name=state.name,
        workload=state.workload,
        replica=state.replica,
        engine=engine,
        state=state.state,
        health=state.health,
        image=state.image,
        ports=state.ports,
        started_at=state.started_at,
        cpu_ratio=stats.cpu_ratio if stats else None,
        cpu_seconds_total=stats.cpu_seconds_total if stats else 0.0,
        memory_working_set_bytes=stats.memory_working_set_bytes if stats else 0,
        memory_limit_bytes=state.memory_limit,
        restarts=state.restarts,
        net_rx_bytes=stats.net_rx_bytes if stats else 0,
        net_tx_bytes=stats.net_tx_bytes if stats else 0,
        net_rx_packets=stats.net_rx_packets if stats else 0,
        net_tx_packets=stats.net_tx_packets if stats else 0,
        block_read_bytes=stats.block_read_bytes if stats else 0,
        block_write_bytes=stats.block_write_bytes if stats else 0,
        labels=state.labels,
    )


class DockerBackend:
    """The containers of one Docker engine (Backend protocol, kind "containers").

    stats: "auto" reads cgroup files for containers whose processes are visible here and
    streams the rest; "cgroup" or "stream" forces one source. warmup: the pause between the two
    readings a new container needs for its CPU %. stream_warmup: how long the first poll waits
    for the first frames of stats streams. unfocused_every: with a focus set (`focus()`), the
    containers outside it are read on every n-th poll only. cordoned(node id): whether the
    machine carrying this engine (the node, named by `docker info`) takes no new replicas."""

    kind: BackendKind = "containers"

    def __init__(
        self,
        endpoint: EngineEndpoint | str,
        *,
        read_only: bool = False,
        stats: StatsMode = "auto",
        timeout: float = 10.0,
        first_poll_timeout: float = 20.0,
        warmup: float = 0.25,
        stream_warmup: float = 3.0,
        cordoned: Callable[[str], bool] = lambda _node: False,
        unfocused_every: int = 5,
    ) -> None:
        self.engine = EngineEndpoint.of(endpoint)
        self.name = self.engine.backend_name
        self.endpoint = self.engine.host
        self.client = EngineClient(self.engine, timeout=timeout, read_only=read_only)
        self.watch = EngineWatch(self.client)
        self.stats = StatsCollector(self.client, stats)
        self.first_poll_timeout = first_poll_timeout
        self.warmup = warmup
        self.stream_warmup = stream_warmup
        self.cordoned = cordoned
        self._polled = False
        self._unreachable_since: float | None = None
        self.unfocused_every = max(1, unfocused_every)
        self._focus: frozenset[str] | None = None
        self._polls = 0
        # The last record of each container with what it was made from: a container whose
        # state and statistics did not change keeps the very same record (cheaper to build
        # and, for the console, to compare).
        self._records: dict[str, tuple[ContainerState, ContainerStats | None, ContainerInfo]] = {}
        self.swarm = SwarmObserver(self)  # the cluster, when this engine is a Swarm manager (tasks, exporter)

    def focus(self, container_ids: Collection[str] | None) -> None:
        """The containers someone is looking at (the console's rows in sight): their cgroup
        files are read on every poll, the others' on every `unfocused_every`-th one, so an
        idle console over hundreds of containers reads a screenful. None: all, every poll."""
        self._focus = None if container_ids is None else frozenset(container_ids)

    # .. Backend protocol

    def poll(self) -> KindSnapshot:
        started = time.monotonic()
        items = self.collect()
        return KindSnapshot("containers", self.name, items, time.time(), time.monotonic() - started)

    def availability(self) -> Availability:
        return self.client.availability()

    def close(self) -> None:
        self.watch.close()
        self.stats.close()
        self.client.close()

    # .. reading

    def collect(self) -> tuple[ContainerInfo, ...]:
        """Every container of the engine with its latest statistics; BackendUnavailable when the
        engine does not answer."""
        self.watch.start()
        self._ping()
        if not self.watch.wait_synced(self.first_poll_timeout if not self._polled else self.client.timeout):
            raise BackendUnavailable(self._unsynced_availability())
        states = self.watch.containers()
        self.stats.reconcile({c: s.pid for c, s in states.items() if s.running and s.pid})
        focus = self._focus
        self.stats.sample(only=None if focus is None or self._polls % self.unfocused_every == 0 else focus)
        self._polls += 1
        self._complete_cpu(first=not self._polled)
        self._polled = True
        records = {}
        for container_id, state in sorted(states.items(), key=lambda item: item[1].name):
            stats = self.stats.stats(container_id)
            last = self._records.get(container_id)
            if last is None or last[0] is not state or last[1] is not stats:
                last = (state, stats, container_info(state, stats, self.name))
            records[container_id] = last
        self._records = records
        rows = [record for _state, _stats, record in records.values()]
        cluster = self.swarm.observe()  # a manager's poll also shows the cluster's tasks
        return tuple(merge_task_rows(rows, cluster.task_rows) if cluster is not None else rows)

    def _ping(self) -> None:
        """Checks that the engine answers. After an outage, an event stream older than the
        outage is dropped and subscribed again: over TCP it may be half-open and silent."""
        try:
            self.client.ping()
        except BackendUnavailable:
            if self._unreachable_since is None:
                self._unreachable_since = time.monotonic()
            raise
        if self._unreachable_since is not None:
            subscribed = self.watch.subscribed_at
            if subscribed is None or subscribed < self._unreachable_since:
                self.watch.reconnect()
            self._unreachable_since = None

    def _complete_cpu(self, first: bool) -> None:
        """Second readings for containers seen for the first time, so CPU % is there at once."""
        from_files, from_streams = self.stats.lacking_cpu()
        if from_files:
            time.sleep(self.warmup)
            self.stats.sample(only=from_files)
        if first and from_streams:
            deadline = time.monotonic() + self.stream_warmup
            while self.stats.lacking_cpu()[1] and time.monotonic() < deadline:
                time.sleep(0.05)

    def _unsynced_availability(self) -> Availability:
        known = self.client.availability()
        if known.state == "unreachable":
            return known
        return Availability("docker", self.endpoint, "unreachable", "the container list did not arrive in time",
                            "the engine may be overloaded; it is retried by itself", read_only=known.read_only)

    def containers(self) -> dict[str, ContainerState]:
        """The cached container table (no engine call once the first poll has run)."""
        self.watch.start()
        self.watch.wait_synced(self.first_poll_timeout)
        return self.watch.containers()

    def info(self) -> EngineInfo:
        return self.client.info()

    def sched_node(self) -> SchedNode:
        """This engine as a scheduler node (backends/docker/engine_nodes.py)."""
        from backends.docker.engine_nodes import engine_node

        return engine_node(self)
