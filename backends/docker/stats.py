"""Live container statistics without one blocking stats call per container per refresh.

Two sources, chosen per container:

- **cgroup files** when the engine runs on this machine (ctop's runc mode, cAdvisor): the
  container's init process is visible in /proc and /proc/PID/cgroup names the container, so its
  cgroup files are read directly. cgroup v1: `cpuacct.usage`, `memory.usage_in_bytes` and
  `memory.stat` (`total_inactive_file`), `blkio.throttle.io_service_bytes`; v2: `cpu.stat`,
  `memory.current`, `memory.stat` (`inactive_file`), `io.stat`. Network counters come from
  /proc/PID/net/dev, which shows the container's network namespace. A sample of a few hundred
  containers is a few hundred small file reads and no engine call.
- **one streaming stats connection per running container** otherwise (lazydocker): the engine
  sends a frame per second on each, and the latest frame is kept.

CPU % follows Docker's formula: the container's CPU time delta over the host's CPU time delta
(/proc/stat: user..softirq, as the engine computes `system_cpu_usage`) times the online CPUs.
Memory is the working set: usage minus inactive file pages (what `docker stats` and cAdvisor's
`container_memory_working_set_bytes` show).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backends.docker.client import EngineClient

log = logging.getLogger("rtm.backends.docker")

StatsMode = Literal["auto", "cgroup", "stream"]
NANOS = 1_000_000_000
MIN_WINDOW_NS = 100_000_000  # per CPU: 0.1 s of wall time between two CPU readings at least
STREAM_READ_TIMEOUT = 15.0  # frames come every second; silence this long means a stuck stream


# --- Docker's formulas ----------------------------------------------------------------------


def docker_cpu_ratio(cpu_delta: float, system_delta: float, online_cpus: int) -> float:
    """The docker CLI's CPU %, divided by 100: 1.0 is one core fully used."""
    if system_delta <= 0 or cpu_delta <= 0:
        return 0.0
    return cpu_delta / system_delta * online_cpus


def working_set(usage: int, inactive_file: int) -> int:
    return usage - inactive_file if inactive_file < usage else usage


@dataclass(frozen=True)
class Reading:
    """Raw cumulative counters of one container at one moment."""

    cpu_ns: int
    system_ns: int  # the host's CPU time, Docker's system_cpu_usage
    online_cpus: int
    memory_usage: int
    inactive_file: int
    net: tuple[int, int, int, int]  # rx bytes, tx bytes, rx packets, tx packets
    block: tuple[int, int]  # read bytes, written bytes


@dataclass(frozen=True)
class ContainerStats:
    cpu_ratio: float | None  # None until two readings
    cpu_seconds_total: float
    memory_working_set_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int
    net_rx_packets: int
    net_tx_packets: int
    block_read_bytes: int
    block_write_bytes: int

    @classmethod
    def of(cls, current: Reading, cpu_ratio: float | None) -> ContainerStats:
        return cls(
            cpu_ratio, current.cpu_ns / NANOS, working_set(current.memory_usage, current.inactive_file),
            *current.net, *current.block,
        )  # fmt: skip


# --- parsing kernel files (pure) ------------------------------------------------------------


def system_cpu_ns(proc_stat: bytes, clock_ticks: int) -> int:
    """The first line of /proc/stat as the engine reads it: user..softirq (7 fields), in ns."""
    fields = proc_stat[: proc_stat.index(b"\n")].split()
    if fields[0] != b"cpu" or len(fields) < 8:
        raise ValueError("/proc/stat does not start with the cpu line")
    return sum(int(value) for value in fields[1:8]) * NANOS // clock_ticks


def stat_value(memory_stat: bytes, key: bytes) -> int:
    """One `key value` line of a memory.stat file (0 when absent)."""
    at = memory_stat.find(b"\n" + key + b" ")
    if at < 0:
        if not memory_stat.startswith(key + b" "):
            return 0
        at = -1
    start = at + len(key) + 2
    end = memory_stat.find(b"\n", start)
    return int(memory_stat[start:end if end >= 0 else None])


def blkio_v1(data: bytes) -> tuple[int, int]:
    """blkio.throttle.io_service_bytes: `MAJ:MIN Read N` / `Write N` lines summed over devices."""
    read = write = 0
    for line in data.splitlines():
        parts = line.split()
        if len(parts) == 3:
            if parts[1] == b"Read":
                read += int(parts[2])
            elif parts[1] == b"Write":
                write += int(parts[2])
    return read, write


def io_stat_v2(data: bytes) -> tuple[int, int]:
    """io.stat: `MAJ:MIN rbytes=N wbytes=N ...` lines summed over devices."""
    read = write = 0
    for line in data.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition(b"=")
            if key == b"rbytes":
                read += int(value)
            elif key == b"wbytes":
                write += int(value)
    return read, write


def cpu_stat_v2_ns(data: bytes) -> int:
    return stat_value(data, b"usage_usec") * 1000


def net_dev(data: bytes) -> tuple[int, int, int, int]:
    """/proc/PID/net/dev of the container's namespace, loopback left out (as the engine does)."""
    rx_bytes = tx_bytes = rx_packets = tx_packets = 0
    for line in data.splitlines()[2:]:
        name, _, counters = line.partition(b":")
        if name.strip() == b"lo":
            continue
        values = counters.split()
        if len(values) >= 10:
            rx_bytes += int(values[0])
            rx_packets += int(values[1])
            tx_bytes += int(values[8])
            tx_packets += int(values[9])
    return rx_bytes, tx_bytes, rx_packets, tx_packets


def _read(path: str) -> bytes:
    """One read of a small kernel file: three system calls, no Python file object."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


class OpenFiles:
    """Kernel files kept open and re-read with pread at offset 0 (cgroup and /proc files are
    generated afresh on each read from the start), which saves the path lookup of an open()
    per file per refresh. At most `budget` descriptors are kept (a quarter of the process's
    limit by default); files beyond it are opened and closed on each read."""

    def __init__(self, budget: int | None = None) -> None:
        if budget is None:
            soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            budget = max(0, min(soft // 4, 8192)) if soft != resource.RLIM_INFINITY else 8192
        self.budget = budget
        self._fds: dict[str, int] = {}

    def read(self, path: str) -> bytes:
        fd = self._fds.get(path)
        if fd is not None:
            return os.pread(fd, 1 << 16, 0)
        if len(self._fds) >= self.budget:
            return _read(path)
        fd = os.open(path, os.O_RDONLY)
        try:
            data = os.pread(fd, 1 << 16, 0)
        except OSError:
            os.close(fd)
            raise
        self._fds[path] = fd
        return data

    def forget(self, paths: Iterable[str]) -> None:
        for path in paths:
            fd = self._fds.pop(path, None)
            if fd is not None:
                os.close(fd)

    def close(self) -> None:
        self.forget(list(self._fds))


# --- cgroup files of a local engine ---------------------------------------------------------


@dataclass(frozen=True)
class CgroupMounts:
    """Where each cgroup v1 controller (and the v2 hierarchy) is mounted: (mountpoint, root)."""

    v1: Mapping[str, tuple[str, str]]
    v2: tuple[str, str] | None

    @classmethod
    def from_mountinfo(cls, text: str) -> CgroupMounts:
        v1: dict[str, tuple[str, str]] = {}
        v2 = None
        for line in text.splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            root, mountpoint, fstype = fields[3], fields[4], tail[0]
            if fstype == "cgroup2" and v2 is None:
                v2 = (mountpoint, root)
            elif fstype == "cgroup":
                for option in tail[2].split(","):
                    v1.setdefault(option, (mountpoint, root))
        return cls(v1, v2)

    @classmethod
    def of_this_process(cls) -> CgroupMounts:
        try:
            return cls.from_mountinfo(Path("/proc/self/mountinfo").read_text())
        except OSError:
            return cls({}, None)

    def path(self, controller: str | None, cgroup_path: str) -> str | None:
        mount = self.v2 if controller is None else self.v1.get(controller)
        if mount is None:
            return None
        mountpoint, root = mount
        relative = cgroup_path[len(root):] if root != "/" and cgroup_path.startswith(root) else cgroup_path
        return mountpoint + relative


@dataclass(frozen=True)
class CgroupFiles:
    """The files one container's counters are read from."""

    version: Literal[1, 2]
    cpu: str
    memory_usage: str
    memory_stat: str
    io: str
    net: str

    @classmethod
    def locate(cls, mounts: CgroupMounts, pid: int, container_id: str, proc: str = "/proc") -> CgroupFiles | None:
        """The files of the container whose init process is `pid`, or None when that process is
        not visible here or does not belong to that container (a remote engine)."""
        if pid <= 0:
            return None
        try:
            lines = Path(f"{proc}/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return None
        v1: dict[str, str] = {}
        unified = None
        for line in lines:
            _hierarchy, controllers, path = line.split(":", 2)
            if controllers:
                for controller in controllers.split(","):
                    v1[controller] = path
            else:
                unified = path
        net = f"{proc}/{pid}/net/dev"
        if {"cpuacct", "memory", "blkio"} <= v1.keys() and container_id in v1["memory"]:
            cpu, memory, blkio = (mounts.path(c, v1[c]) for c in ("cpuacct", "memory", "blkio"))
            if cpu and memory and blkio:
                return cls(1, f"{cpu}/cpuacct.usage", f"{memory}/memory.usage_in_bytes", f"{memory}/memory.stat",
                           f"{blkio}/blkio.throttle.io_service_bytes", net)
        if unified is not None and container_id in unified:
            base = mounts.path(None, unified)
            if base:
                return cls(2, f"{base}/cpu.stat", f"{base}/memory.current", f"{base}/memory.stat", f"{base}/io.stat", net)
        return None

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.cpu, self.memory_usage, self.memory_stat, self.io, self.net)

    def read(self, system_ns: int, online_cpus: int, read: Callable[[str], bytes] = _read) -> Reading:
        """Raises OSError (or ValueError on an empty file) when the container is gone."""
        memory_stat = read(self.memory_stat)
        if self.version == 1:
            cpu_ns = int(read(self.cpu))
            inactive = stat_value(memory_stat, b"total_inactive_file")
            block = blkio_v1(read(self.io))
        else:
            cpu_ns = cpu_stat_v2_ns(read(self.cpu))
            inactive = stat_value(memory_stat, b"inactive_file")
            block = io_stat_v2(read(self.io))
        return Reading(cpu_ns, system_ns, online_cpus, int(read(self.memory_usage)), inactive, net_dev(read(self.net)), block)


# --- streaming stats of a remote engine -----------------------------------------------------


def frame_reading(frame: Mapping[str, Any]) -> tuple[Reading, float | None]:
    """A stats frame of the Engine API -> its reading and CPU ratio (None without precpu).
    Raises KeyError/TypeError/ValueError on a malformed frame."""
    cpu, pre = frame["cpu_stats"], frame.get("precpu_stats") or {}
    total = int(cpu["cpu_usage"]["total_usage"])
    system = int(cpu.get("system_cpu_usage") or 0)
    online = int(cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or ()) or 1)
    memory = frame.get("memory_stats") or {}
    extra = memory.get("stats") or {}
    inactive = int(extra.get("total_inactive_file", extra.get("inactive_file", 0)))
    networks = (frame.get("networks") or {}).values()
    net = tuple(sum(int(n.get(key, 0)) for n in networks) for key in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets"))
    read = write = 0
    for entry in (frame.get("blkio_stats") or {}).get("io_service_bytes_recursive") or ():
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += int(entry.get("value", 0))
        elif op == "write":
            write += int(entry.get("value", 0))
    reading = Reading(total, system, online, int(memory.get("usage") or 0), inactive, net, (read, write))  # type: ignore[arg-type]
    pre_usage = (pre.get("cpu_usage") or {}).get("total_usage")
    pre_system = pre.get("system_cpu_usage")
    ratio = None
    if pre_usage is not None and pre_system:
        ratio = docker_cpu_ratio(total - int(pre_usage), system - int(pre_system), online)
    return reading, ratio


class StatsStream:
    """One `GET /containers/{id}/stats?stream=1` connection, read by its own daemon thread.
    Malformed frames are skipped and counted; the thread ends when the stream ends (container
    stopped or removed, engine gone) or when `stop()` is called."""

    def __init__(self, client: EngineClient, container_id: str, latest: ContainerStats | None = None) -> None:
        self.client = client
        self.container_id = container_id
        self.latest = latest  # a restarted stream keeps showing the last figures until its own arrive
        self.malformed_frames = 0
        self.frames = 0
        self._stop = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"rtm-docker-stats:{container_id[:12]}", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        response, self._response = self._response, None
        if response is not None:
            try:
                from docker.types import CancellableStream

                CancellableStream(iter(()), response).close()
            except Exception:  # already closed, or a transport that cannot cancel
                pass

    def _run(self) -> None:
        try:
            url = self.client.url("/containers/{}/stats", self.container_id)
            api = self.client.api()
            self._response = api.get(url, params={"stream": "1"}, stream=True, timeout=(self.client.timeout, STREAM_READ_TIMEOUT))
            if self._response.status_code != 200:
                return
            for line in self._response.iter_lines():
                if self._stop.is_set():
                    return
                self._take(line)
        except Exception as error:  # the stream's end in all its forms: never escapes the thread
            if not self._stop.is_set():
                log.debug("stats stream of %s ended: %s", self.container_id[:12], error)
        finally:
            response, self._response = self._response, None
            if response is not None:
                response.close()

    def _take(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            reading, ratio = frame_reading(json.loads(line))
        except (ValueError, KeyError, TypeError, AttributeError):
            self.malformed_frames += 1
            return
        self.frames += 1
        self.latest = ContainerStats.of(reading, ratio)


# --- both sources behind one interface ------------------------------------------------------


@dataclass
class _Tracked:
    pid: int
    files: CgroupFiles | None = None
    stream: StatsStream | None = None
    previous: Reading | None = None
    stats: ContainerStats | None = None


class StatsCollector:
    """Statistics of the running containers of one engine.

    `reconcile(running)` is given {id: pid} of the running containers: new ones get a source
    (their cgroup files when readable here and the mode allows, else a stream), stopped or
    restarted ones (a new pid) lose theirs. `sample()` reads the cgroup files of all of them
    (streams deliver by themselves). `stats(id)` is the latest for one container."""

    def __init__(self, client: EngineClient, mode: StatsMode = "auto", *, mounts: CgroupMounts | None = None,
                 proc: str = "/proc", clock_ticks: int | None = None, stream_factory: Callable[..., StatsStream] = StatsStream) -> None:
        self.client = client
        self.mode = mode
        self.proc = proc
        self._mounts = mounts
        self._clock_ticks = clock_ticks or os.sysconf("SC_CLK_TCK")
        self._online_cpus = os.sysconf("SC_NPROCESSORS_ONLN")
        self._stream_factory = stream_factory
        self._tracked: dict[str, _Tracked] = {}
        self._files = OpenFiles()
        self._lock = threading.Lock()

    @property
    def mounts(self) -> CgroupMounts:
        if self._mounts is None:
            self._mounts = CgroupMounts.of_this_process()
        return self._mounts

    def reconcile(self, running: Mapping[str, int]) -> None:
        with self._lock:
            for container_id in [c for c, t in self._tracked.items() if running.get(c) != t.pid]:
                self._forget(container_id)
            for container_id, pid in running.items():
                if container_id not in self._tracked:
                    self._tracked[container_id] = self._track(container_id, pid)
            # A stream that ended while its container still runs (engine restart) starts again.
            for container_id, tracked in self._tracked.items():
                if tracked.stream is not None and not tracked.stream.alive:
                    tracked.stream = self._stream_factory(self.client, container_id, tracked.stream.latest)

    def _track(self, container_id: str, pid: int) -> _Tracked:
        tracked = _Tracked(pid)
        if self.mode in ("auto", "cgroup"):
            tracked.files = CgroupFiles.locate(self.mounts, pid, container_id, self.proc)
        if tracked.files is None and self.mode in ("auto", "stream"):
            tracked.stream = self._stream_factory(self.client, container_id)
        return tracked

    def _forget(self, container_id: str) -> None:
        tracked = self._tracked.pop(container_id)
        if tracked.stream is not None:
            tracked.stream.stop()
        if tracked.files is not None:
            self._files.forget(tracked.files.paths)

    def sample(self, only: Iterable[str] | None = None) -> None:
        """Reads the cgroup files now (of `only` those containers, when given)."""
        with self._lock:
            chosen = self._tracked if only is None else {c: self._tracked[c] for c in only if c in self._tracked}
            local = [(c, t) for c, t in chosen.items() if t.files is not None]
            if not local:
                return
            system_ns = system_cpu_ns(_read(f"{self.proc}/stat"), self._clock_ticks)
            for _container_id, tracked in local:
                assert tracked.files is not None
                try:
                    current = tracked.files.read(system_ns, self._online_cpus, self._files.read)
                except (OSError, ValueError):
                    continue  # it stopped since the last event; the next reconcile drops it
                tracked.stats = ContainerStats.of(current, self._ratio(tracked, current))

    @staticmethod
    def _ratio(tracked: _Tracked, current: Reading) -> float | None:
        """CPU ratio since the base reading, which moves on only after a long enough window:
        the host's CPU time advances in clock ticks (10 ms), so very short windows are noisy."""
        previous = tracked.previous
        if previous is None:
            tracked.previous = current
            return None
        window = current.system_ns - previous.system_ns
        if window < MIN_WINDOW_NS * current.online_cpus:
            return tracked.stats.cpu_ratio if tracked.stats is not None else None
        tracked.previous = current
        return docker_cpu_ratio(current.cpu_ns - previous.cpu_ns, window, current.online_cpus)

    def stats(self, container_id: str) -> ContainerStats | None:
        tracked = self._tracked.get(container_id)
        if tracked is None:
            return None
        return tracked.stream.latest if tracked.stream is not None else tracked.stats

    def lacking_cpu(self) -> tuple[list[str], list[str]]:
        """Running containers without a CPU ratio yet: (read from files, fed by streams)."""
        with self._lock:
            files = [c for c, t in self._tracked.items() if t.files is not None and (t.stats is None or t.stats.cpu_ratio is None)]
            streams = [c for c, t in self._tracked.items() if t.stream is not None and (t.stream.latest is None or t.stream.latest.cpu_ratio is None)]
        return files, streams

    def source(self, container_id: str) -> str | None:
        tracked = self._tracked.get(container_id)
        if tracked is None:
            return None
        return "cgroup" if tracked.files is not None else "stream"

    def close(self) -> None:
        with self._lock:
            for container_id in list(self._tracked):
                self._forget(container_id)
            self._files.close()

