"""Load-balancer membership: each workload's ready replicas as nginx `upstream` blocks.

All balanced workloads go into one file (the config's `load_balancer.upstream_path`), one
block each, sorted by workload. The file is rewritten atomically only when its content
changes, then the optional reload command runs (e.g. `nginx -s reload`). Both go through the
action gate. Membership changes are events; the file's content is the evidence.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from backends.base import one_line
from console.datadir import atomic_write
from console.eventlog import EventLog
from console.gate import ActionGate
from console.supervisor.gated_actions import WRITE_UPSTREAM
from rtm.loadbalancer import Member, render_upstream

log = logging.getLogger("rtm.supervisor.membership")
RELOAD_TIMEOUT_SECONDS = 30


def render_file(pools: Mapping[str, tuple[str, Sequence[Member]]]) -> str:
    """workload -> (algorithm, members) as one nginx include file."""
    return "\n".join(render_upstream(name, algorithm, list(members)) for name, (algorithm, members) in sorted(pools.items()))


class UpstreamWriter:
    """Keeps the upstream file in line with the members the failover loops report."""

    def __init__(self, path: Path | None, reload_command: Sequence[str] | None, gate: ActionGate, events: EventLog) -> None:
        self.path = path
        self.reload_command = tuple(reload_command) if reload_command else None
        self.gate = gate
        self.events = events
        self._lock = threading.Lock()
        self._pools: dict[str, tuple[str, tuple[Member, ...]]] = {}
        self._written: str | None = None
        self.last_error: str | None = None

    def members(self, workload: str) -> tuple[Member, ...]:
        with self._lock:
            return self._pools.get(workload, ("", ()))[1]

    def update(self, workload: str, algorithm: str, members: Sequence[Member]) -> None:
        """Set a workload's ready members; logs and writes when they changed."""
        new = tuple(sorted(members, key=lambda m: m.address))
        with self._lock:
            old_algorithm, old = self._pools.get(workload, (algorithm, None))
            if old == new and old_algorithm == algorithm:
                return
            self._pools[workload] = (algorithm, new)
        if old is not None or new:
            added = sorted({m.address for m in new} - {m.address for m in old or ()})
            removed = sorted({m.address for m in old or ()} - {m.address for m in new})
            parts = [f"+{a}" for a in added] + [f"-{r}" for r in removed]
            self.events.record(
                "membership",
                f"{len(new)} ready in rotation ({', '.join(parts) or 'algorithm ' + algorithm})",
                workload=workload, target=f"upstream/{workload}",
                details={"members": [m.address for m in new], "added": added, "removed": removed},
            )
        self.flush()

    def forget(self, workload: str) -> None:
        with self._lock:
            if self._pools.pop(workload, None) is None:
                return
        self.flush()

    def flush(self) -> None:
        if self.path is None:
            return
        with self._lock:
            content = render_file(self._pools)
            if content == self._written:
                return
            result = self.gate.run(
                WRITE_UPSTREAM.name, f"file/{self.path}",
                {"workloads": sorted(self._pools), "reload": list(self.reload_command or ())},
                lambda: self._write(content),
            )
            if result.ok:
                self._written = content
                self.last_error = None
            else:
                self.last_error = result.message
                log.warning("upstream file not updated: %s", result.message)

    def _write(self, content: str) -> None:
        atomic_write(self.path, content)
        if self.reload_command:
            done = subprocess.run(self.reload_command, capture_output=True, text=True, timeout=RELOAD_TIMEOUT_SECONDS)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(self.reload_command)} exited with {done.returncode}: {one_line(done.stderr or done.stdout, 200)}")


MembersSink = Callable[[str, str, Sequence[Member]], None]
