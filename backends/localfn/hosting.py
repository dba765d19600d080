"""Who hosts the local functions runtime for a data folder, if anyone.

The hosting process holds an exclusive flock() on `DATA/functions/runtime.lock` for as long as
it serves, with its details (pid, host, role, gateway URL, since when) written in the file. The
kernel drops the lock when the process exits or is killed, so a crashed host never looks alive.
Any process can ask `read_host_state()`; one that can take a shared lock knows nobody hosts.

This is the runtime's own guard against two hosts serving one store (two gateways, cron firing
twice); choosing *which* process should host (the agent's lock) is the caller's business.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """The hosting process's hold on the lock file."""

    def __init__(self, folder: Path | str, role: str) -> None:
        self.path = Path(folder) / LOCK_NAME
        self.role = role
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise RuntimeAlreadyHosted; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RuntimeAlreadyHosted(read_host_state(self.path.parent)) from None
            raise
        self._fd = fd
        self.publish(url=None)

    def publish(self, url: str | None) -> None:
        """Write this host's details into the locked file (the lock stays on the same inode)."""
        if self._fd is None:
            return
        details = {"pid": os.getpid(), "hostname": socket.gethostname(), "role": self.role,
                   "url": url, "since": time.time()}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(details).encode("utf-8"), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)


def read_host_state(folder: Path | str) -> HostState:
    """Who hosts the runtime whose store is `folder` (DATA/functions)."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return HostState(hosted=False)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raw = os.pread(fd, 4096, 0)
            try:
                details = json.loads(raw) if raw else {}
            except ValueError:
                details = {}
            pid = details.get("pid")
            return HostState(True, pid, details.get("hostname"), details.get("role"), details.get("url"),
                             details.get("since"), this_process=pid == os.getpid())
        fcntl.flock(fd, fcntl.LOCK_UN)
        return HostState(hosted=False)
    finally:
        os.close(fd)
