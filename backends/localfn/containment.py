"""Every process a worker starts ends with the worker: its own cgroup where the host allows one.

A handler may start child processes, and those may start a new session, double-fork, or outlive
the worker after a crash (re-parented to PID 1). Each worker therefore runs in a group of its own
that the pool kills as a whole when the worker ends for any reason (crash, timeout, recycle,
redeploy, shutdown). Which kind of group is decided by trying, once per process:

- `cgroup2`: a child cgroup of this process's own in the unified hierarchy, killed at once
  through `cgroup.kill` (Linux 5.14+; works on pure v2 hosts and on v1 hosts that also mount
  the unified hierarchy, as here at /sys/fs/cgroup/unified).
- `freezer`: a cgroup v1 freezer group: frozen, every task SIGKILLed, thawed (frozen tasks
  cannot fork away while they are being killed).
- `session`: no cgroup can be made (not root, no delegation): the worker's own process group,
  plus a sweep of /proc for processes carrying the worker's marker variable in their
  environment (children inherit it even when they start a new session or are re-parented).

Cgroups are named `rtm-localfn-HOSTPID-N`; groups left by a host that was killed (SIGKILL gives
it no chance to clean up) are killed and removed by the next pool of this machine.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import signal
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

logger = logging.getLogger("rtm.localfn")

MARKER = "RTM_LOCALFN_WORKER"
_PREFIX = "rtm-localfn-"
_counter = itertools.count(1)


class Containment:
    """One worker's group. `join(pid)` puts a process in it; `kill()` ends every process in it."""

    kind = "session"

    def __init__(self) -> None:
        self.token = secrets.token_hex(8)
        self.leader: int | None = None

    @property
    def environment(self) -> dict[str, str]:
        """Variables the worker starts with (children inherit them)."""
        return {MARKER: self.token}

    @property
    def procs_file(self) -> str | None:
        """The file the worker writes its pid to before it runs any function code, if any."""
        return None

    def join(self, pid: int) -> None:
        self.leader = pid

    def kill(self) -> None:
        _kill_until_gone(self._members, attempts=20)  # a forking child may add one more before it is killed

    def _members(self) -> set[int]:
        """Processes carrying the marker, and the rest of the worker's process group when a
        marked process proves the group is still this worker's (a group id is a pid, and pids
        are reused once the worker is reaped)."""
        marked: set[int] = set()
        groups: dict[int, int] = {}
        for pid, group, has_marker in _processes(self.token):
            groups[pid] = group
            if has_marker:
                marked.add(pid)
        if self.leader is not None and any(groups.get(pid) == self.leader for pid in marked):
            marked |= {pid for pid, group in groups.items() if group == self.leader}
        return marked

    def remove(self) -> None:
        """Forget the group (after kill)."""


class _Cgroup(Containment):
    def __init__(self, folder: Path, create: bool = True) -> None:
        super().__init__()
        self.folder = folder
        self.joined = True
        if create:
            folder.mkdir()

    @property
    def procs_file(self) -> str:
        return str(self.folder / "cgroup.procs")

    def join(self, pid: int) -> None:
        super().join(pid)
        try:
            (self.folder / "cgroup.procs").write_text(str(pid))
        except ProcessLookupError:
            pass  # already gone
        except OSError as exc:  # no right to move it here: fall back to its session and the sweep
            logger.warning("cannot move worker %s into %s (%s); using its process group", pid, self.folder, exc)
            self.joined = False

    def kill(self) -> None:
        if not self.joined:
            Containment.kill(self)
        self.kill_group()

    def kill_group(self) -> None:
        raise NotImplementedError

    def pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.folder / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def remove(self) -> None:
        for _ in range(200):
            try:
                self.folder.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:  # still busy: the killed tasks are being torn down
                time.sleep(0.01)
        logger.warning("could not remove the worker cgroup %s", self.folder)


class _Cgroup2(_Cgroup):
    kind = "cgroup2"

    def kill_group(self) -> None:
        try:
            (self.folder / "cgroup.kill").write_text("1")
        except FileNotFoundError:
            return
        _wait_empty(self)


class _Freezer(_Cgroup):
    kind = "freezer"

    def kill_group(self) -> None:
        state = self.folder / "freezer.state"
        try:
            state.write_text("FROZEN")
            for _ in range(200):
                if state.read_text().strip() == "FROZEN":
                    break
                time.sleep(0.005)
            for pid in self.pids():
                _kill(pid)
            state.write_text("THAWED")  # the kills are delivered on thaw
        except FileNotFoundError:
            return
        _wait_empty(self)


def _wait_empty(group: _Cgroup) -> None:
    if not _kill_until_gone(group.pids, attempts=500):
        logger.warning("processes %s of %s did not end", group.pids(), group.folder)


def _kill_until_gone(members: Callable[[], Collection[int]], attempts: int) -> bool:
    """Kill what `members()` names until it names nothing (True) or `attempts` rounds have passed."""
    for _ in range(attempts):
        found = members()
        if not found:
            return True
        for pid in found:
            _kill(pid)
        time.sleep(0.01)
    return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _processes(token: str) -> Iterator[tuple[int, int, bool]]:
    """(pid, process group, carries the marker) of every process this user can read but us."""
    wanted = f"{MARKER}={token}".encode()
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                group = int(stat.read().rsplit(b")", 1)[1].split()[2])
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                has_marker = wanted in environ.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        yield int(entry.name), group, has_marker


# ------------------------------------------------------------------------------ choosing


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path in a hierarchy ("" for the v2 line)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def _mount_point(fstype: str, option: str | None = None) -> Path | None:
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        dash = fields.index("-")
        if fields[dash + 1] == fstype and (option is None or option in fields[dash + 3].split(",")):
            return Path(fields[4])
    return None


def candidate_parents() -> list[tuple[type[_Cgroup], Path]]:
    """Where this process could make worker cgroups, best first."""
    found: list[tuple[type[_Cgroup], Path]] = []
    unified, own = _mount_point("cgroup2"), _own_cgroup("")
    if unified is not None and own is not None:
        found.append((_Cgroup2, unified / own.lstrip("/")))
    freezer, own_freezer = _mount_point("cgroup", "freezer"), _own_cgroup("freezer")
    if freezer is not None and own_freezer is not None:
        found.append((_Freezer, freezer / own_freezer.lstrip("/")))
    return found


class ContainmentFactory:
    """Makes one group per worker of the kind that works here, decided on first use by trying."""

    def __init__(self, kind: str | None = None) -> None:
        self.requested = kind  # None: the best that works; or "cgroup2", "freezer", "session"
        self._chosen: tuple[type[_Cgroup], Path] | None = None
        self._decided = kind == "session"

    @property
    def kind(self) -> str:
        """The kind of group workers get on this host."""
        self._decide()
        return self._chosen[0].kind if self._chosen else "session"

    def new(self) -> Containment:
        self._decide()
        if self._chosen is None:
            return Containment()
        cls, parent = self._chosen
        try:
            return cls(parent / f"{_PREFIX}{os.getpid()}-{next(_counter)}")
        except OSError as exc:
            logger.warning("cannot make a worker cgroup under %s (%s); using process groups", parent, exc)
            self._chosen = None
            return Containment()

    def _decide(self) -> None:
        if self._decided:
            return
        self._decided = True
        for cls, parent in candidate_parents():
            if self.requested not in (None, cls.kind):
                continue
            probe = parent / f"{_PREFIX}{os.getpid()}-probe-{secrets.token_hex(3)}"
            try:
                probe.mkdir()
            except OSError:
                continue
            usable = (probe / ("cgroup.kill" if cls is _Cgroup2 else "freezer.state")).exists()
            probe.rmdir()
            if usable:
                sweep_stale(parent, cls)
                self._chosen = cls, parent
                return
        if self.requested not in (None, "session"):
            raise OSError(f"no {self.requested} cgroup can be made on this host")


def sweep_stale(parent: Path, cls: type[_Cgroup]) -> int:
    """Kill and remove worker groups whose hosting process is gone; returns how many."""
    count = 0
    try:
        entries = list(parent.iterdir())
    except OSError:
        return 0
    for entry in entries:
        owner = entry.name.removeprefix(_PREFIX).split("-")[0]
        if not entry.name.startswith(_PREFIX) or not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        group = cls(entry, create=False)
        group.kill()
        group.remove()
        count += 1
    return count
