"""The statistics of a few task containers, read by container id on the engine of each task's
node: nothing else on that engine is listed or read (a node may run hundreds of other
containers).

Each engine gets a StatsCollector (backends/docker/stats.py) that tracks exactly the containers
asked for last: their cgroup files when this machine sees them, else one stats stream each. A
container's process id comes from one inspect, the first time it is asked for. A container read
for the first time gets its second reading at once, so its CPU figure is there on the first read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from backends.base import BackendUnavailable
from backends.docker.errors import DockerRequestError
from backends.docker.stats import ContainerStats, StatsCollector

WARMUP_SECONDS = 0.25  # between the two readings of cgroup files a new container needs for its CPU figure
STREAM_WARMUP_SECONDS = 3.0  # how long a first read waits for new streams' first frames with a CPU figure


class TaskStats:
    """Thread-safe; `close()` ends the streams and releases the files."""

    def __init__(self, warmup: float = WARMUP_SECONDS, stream_warmup: float = STREAM_WARMUP_SECONDS) -> None:
        self.warmup = warmup
        self.stream_warmup = stream_warmup
        self._collectors: dict[str, StatsCollector] = {}  # engine backend name -> its collector
        self._pids: dict[tuple[str, str], int] = {}  # (engine, container id) -> its process id
        self._lock = threading.Lock()

    def read(self, wanted: Mapping[Any, Iterable[str]]) -> dict[str, ContainerStats]:
        """container id -> its latest statistics, for the containers asked of each engine
        (`wanted`: engine backend -> container ids); a container that is gone, or an engine
        that does not answer, gives none. Engines not asked this time stop tracking theirs."""
        with self._lock:
            asked = {backend.name: (backend, sorted(set(ids))) for backend, ids in wanted.items()}
            for name in [n for n in self._collectors if n not in asked]:
                self._collectors.pop(name).close()
            wanted_keys = {(name, container_id) for name, (_backend, ids) in asked.items() for container_id in ids}
            self._pids = {key: pid for key, pid in self._pids.items() if key in wanted_keys}
            found: dict[str, ContainerStats] = {}
            for name, (backend, ids) in asked.items():
                found.update(self._read_engine(backend, ids))
            return found

    def _read_engine(self, backend: Any, ids: list[str]) -> dict[str, ContainerStats]:
        collector = self._collectors.get(backend.name)
        if collector is None:
            collector = self._collectors[backend.name] = StatsCollector(backend.client, backend.stats.mode)
        running = {}
        for container_id in ids:
            pid = self._pid(backend, container_id)
            if pid:
                running[container_id] = pid
        new = {container_id for container_id in running if collector.source(container_id) is None}
        collector.reconcile(running)
        collector.sample(only=running)
        from_files, from_streams = (set(lacking) & new for lacking in collector.lacking_cpu())
        if from_files:
            time.sleep(self.warmup)
            collector.sample(only=from_files)
        deadline = time.monotonic() + self.stream_warmup
        while from_streams and time.monotonic() < deadline:
            time.sleep(0.05)
            from_streams = set(collector.lacking_cpu()[1]) & new
        found = {}
        for container_id in running:
            stats = collector.stats(container_id)
            if stats is None:
                self._pids.pop((backend.name, container_id), None)  # looked up again next time (it may have stopped)
            else:
                found[container_id] = stats
        return found

    def _pid(self, backend: Any, container_id: str) -> int:
        key = (backend.name, container_id)
        if key not in self._pids:
            try:
                state = backend.client.call(lambda api: api.inspect_container(container_id)).get("State") or {}
            except (BackendUnavailable, DockerRequestError):
                return 0
            if not state.get("Running") or not state.get("Pid"):
                return 0
            self._pids[key] = int(state["Pid"])
        return self._pids[key]

    def close(self) -> None:
        with self._lock:
            for collector in self._collectors.values():
                collector.close()
            self._collectors.clear()
            self._pids.clear()


__all__ = ["TaskStats"]
