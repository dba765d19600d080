"""Which configured engines are Swarm managers and workers, found once for everyone who needs it.

The control loops' Swarm jobs (the autoscaler's service look-ups, the Swarm watch) and the
poll of each engine (observer.py) share one `SwarmDiscovery`: the engines are asked (`docker
info` each) when it is first used, again every `refresh_seconds` (an engine may join or leave
a swarm) and when the set of engines changes (an engine lost or back), so an idle agent asks
each engine once per refresh, not once per job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from backends.docker.swarm.cluster import SwarmCluster, SwarmRole, find_clusters

REFRESH_SECONDS = 30.0


class SwarmDiscovery:
    """`backends()`: the engines to look at now (the Docker backends of the engines that answer)."""

    def __init__(self, backends: Callable[[], Sequence[Any]], refresh_seconds: float = REFRESH_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._backends = backends
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.refreshes = 0
        self._found: tuple[list[SwarmCluster], dict[str, SwarmRole]] = ([], {})
        self._names: tuple[str, ...] | None = None
        self._at: float | None = None
        self._lock = threading.Lock()

    def current(self) -> tuple[list[SwarmCluster], dict[str, SwarmRole]]:
        """The clusters among the engines and each engine that answered's role, found again when due."""
        backends = list(self._backends())
        names = tuple(backend.name for backend in backends)
        with self._lock:  # one refresh at a time: the others wait for it and share its answer
            now = self.clock()
            if self._at is None or names != self._names or now - self._at >= self.refresh_seconds:
                self._found = find_clusters(backends)
                self._names, self._at = names, now
                self.refreshes += 1
            return self._found

    def clusters(self) -> list[SwarmCluster]:
        return self.current()[0]

    def role_of(self, backend_name: str) -> SwarmRole | None:
        """The engine's role at the last refresh (None: not among the engines, or it did not answer)."""
        return self.current()[1].get(backend_name)


__all__ = ["REFRESH_SECONDS", "SwarmDiscovery"]
