"""Who hosts the local functions runtime for a data folder, if anyone.

The hosting process holds an exclusive flock() on `DATA/functions/runtime.lock` for as long as
it serves, with its details (pid, host, role, gateway URL, since when) written in the file. The
kernel drops the lock when the process exits or is killed, so a crashed host never looks alive.
Any process can ask `read_host_state()`; one that can take a shared lock knows nobody hosts.

This is the runtime's own guard against two hosts serving one store (two gateways, cron firing
twice); choosing *which* process should host (the agent's lock) is the caller's business.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.files import FileLock, lock_holder

LOCK_NAME = "runtime.lock"


@dataclass(frozen=True)
class HostState:
    hosted: bool
    pid: int | None = None
    hostname: str | None = None
    role: str | None = None  # "console", "agent", ...
    url: str | None = None  # the gateway's address
    since: float | None = None  # epoch seconds
    this_process: bool = False

    def describe(self) -> str:
        """One line for people: "hosted by the agent (pid 4242) at http://127.0.0.1:8790"."""
        if not self.hosted:
            return "not hosted: functions are stored but not served (open the console or start the agent)"
        who = "this process" if self.this_process else f"the {self.role or 'process'} (pid {self.pid} on {self.hostname})"
        return f"hosted by {who} at {self.url}" if self.url else f"hosted by {who} (starting)"

    def to_json(self) -> dict[str, Any]:
        return {"hosted": self.hosted, "pid": self.pid, "hostname": self.hostname, "role": self.role,
                "url": self.url, "since": self.since, "this_process": self.this_process}


class RuntimeAlreadyHosted(RuntimeError):
    def __init__(self, state: HostState) -> None:
        super().__init__(f"the local functions runtime is already {state.describe()}")
        self.state = state


class HostLock:
    """The hosting process's hold on the lock file: the shared FileLock, whose holder details
    also carry the gateway's URL once it serves."""

    def __init__(self, folder: Path | str, role: str) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._lock = FileLock(self.path, role)

    def acquire(self) -> None:
        """Take the lock or raise RuntimeAlreadyHosted; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._lock.acquire():
            raise RuntimeAlreadyHosted(read_host_state(self.path.parent))
        self.publish(url=None)

    def publish(self, url: str | None) -> None:
        self._lock.publish(url=url, since=time.time())

    def release(self) -> None:
        self._lock.release()


def read_host_state(folder: Path | str) -> HostState:
    """Who hosts the runtime whose store is `folder` (DATA/functions)."""
    details = lock_holder(Path(folder) / LOCK_NAME)
    if details is None:
        return HostState(hosted=False)
    pid = details.get("pid")
    return HostState(True, pid, details.get("host"), details.get("role"), details.get("url"),
                     details.get("since"), this_process=pid == os.getpid())
