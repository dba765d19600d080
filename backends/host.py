"""The host backend: this machine as a node, read with psutil in one pass per poll.

Everything the console and the exporter show about the machine comes from one `poll()`:
per-CPU seconds by mode, load, context switches, memory and swap, filesystems, block devices,
network interfaces and established TCP connections. Counters stay cumulative (the kernel's
numbers), never deltas, so no traffic is lost between polls and Prometheus' `rate()` works.

The one derived value, `cpu_usage_ratio`, comes from the difference of the CPU times between
two polls of this backend: no `psutil.cpu_percent(interval=...)` (it sleeps) and no
`cpu_percent()` without interval (it keeps its state per thread and says 0.0 the first time).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import psutil

from backends.base import Availability, BackendKind, one_line
from backends.machines import never_cordoned
from backends.records import (
    CpuSeconds,
    DiskIO,
    FilesystemInfo,
    KindSnapshot,
    NetIO,
    NodeInfo,
    freeze,
)

log = logging.getLogger("rtm.backends.host")

# Filesystems and mount points not worth reporting: kernel interfaces, memory-backed
# filesystems, images and container layers (node_exporter's defaults, plus tmpfs and ramfs).
# overlay is kept only as "/": inside a container the root filesystem is one, elsewhere an
# overlay mount is some container's layer.
PSEUDO_FSTYPES = frozenset(
    "autofs binfmt_misc bpf cgroup cgroup2 configfs debugfs devpts devtmpfs efivarfs fusectl "
    "hugetlbfs iso9660 mqueue nsfs proc procfs pstore ramfs rpc_pipefs securityfs selinuxfs "
    "squashfs erofs sysfs tmpfs tracefs fuse.lxcfs fuse.portal".split()
)
EXCLUDED_MOUNTPOINTS = re.compile(
    r"^/(dev|proc|sys|run/credentials/.+|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
)
# Partitions, RAM disks and loop devices (counted in their parent disk or not real I/O),
# as node_exporter's diskstats collector excludes them by default.
EXCLUDED_DISKS = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
# Guest time is already included in user and nice on Linux; exporting it too would count it twice.
GUEST_MODES = frozenset({"guest", "guest_nice"})
IDLE_MODES = frozenset({"idle", "iowait"})

PROC_NET_SNMP = "/proc/net/snmp"


class MountTimeout(Exception):
    pass


# Filesystems on local block devices or in memory: their statfs answers from the kernel and
# cannot hang, so it is called directly; any other type (NFS, CIFS, FUSE, Ceph, 9p, unknown)
# is asked from a thread with a deadline.
LOCAL_FSTYPES = frozenset(
    "ext2 ext3 ext4 xfs btrfs zfs f2fs jfs reiserfs vfat exfat msdos ntfs ntfs3 hfsplus "
    "overlay tmpfs ramfs".split()
)


class MountStatter:
    """statvfs with a deadline, so a mount whose server is gone (NFS, CIFS, FUSE) cannot hang
    the poll. A mount that did not answer is not asked again until its stuck call returns
    (node_exporter's "stuck mounts"); its abandoned call runs in a daemon thread. Local
    filesystems are asked directly: a thread per call costs more than the call itself."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._stuck: set[str] = set()
        self._lock = threading.Lock()

    def is_stuck(self, mountpoint: str) -> bool:
        with self._lock:
            return mountpoint in self._stuck

    def statvfs(self, mountpoint: str, fstype: str = "") -> os.statvfs_result:
        if fstype in LOCAL_FSTYPES:
            return os.statvfs(mountpoint)
        result: list[Any] = []
        done = threading.Event()

        def call() -> None:
            try:
                result.append(os.statvfs(mountpoint))
            except BaseException as exc:  # handed to the waiting thread
                result.append(exc)
            finally:
                done.set()
                with self._lock:
                    self._stuck.discard(mountpoint)

        with self._lock:
            self._stuck.add(mountpoint)
        threading.Thread(target=call, name=f"rtm-statvfs:{mountpoint}", daemon=True).start()
        if not done.wait(self.timeout):
            raise MountTimeout(f"{mountpoint} did not answer within {self.timeout:g} s")
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]


class MountTable:
    """psutil.disk_partitions(all=True), parsed again only when the mount table changed.

    /proc/self/mounts is pollable (proc(5)): a mount or unmount since the last poll() marks it
    with POLLPRI. With a few hundred container mounts, parsing the table on every refresh was
    the largest part of a host poll; elsewhere (no such file) it is parsed every time."""

    def __init__(self, path: str = "/proc/self/mounts") -> None:
        self._partitions: list[Any] | None = None
        self._file: Any = None
        self._changes: Any = None
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - kept open: the poll watches it
            self._changes = select.poll()
            self._changes.register(self._file, select.POLLPRI)
        except (OSError, AttributeError):  # no /proc, or no poll() on this system
            self.close()

    def partitions(self) -> list[Any]:
        changed = self._changes is None or bool(self._changes.poll(0))
        if changed or self._partitions is None:
            self._partitions = psutil.disk_partitions(all=True)
        return self._partitions

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._changes = None


def read_tcp_established(snmp_path: str = PROC_NET_SNMP) -> int | None:
    """Established TCP connections (IPv4 and IPv6), as node_netstat_Tcp_CurrEstab.

    Reads the kernel's counter in /proc/net/snmp: one small file, no root needed, unlike
    walking every socket with psutil.net_connections(). Elsewhere, falls back to psutil.
    """
    try:
        with open(snmp_path, encoding="ascii") as snmp:
            tcp_lines = [line.split() for line in snmp if line.startswith("Tcp:")]
        names, values = tcp_lines[0], tcp_lines[1]
        return int(values[names.index("CurrEstab")])
    except (OSError, IndexError, ValueError):
        pass
    try:
        return sum(1 for conn in psutil.net_connections("tcp") if conn.status == psutil.CONN_ESTABLISHED)
    except (psutil.Error, OSError, RuntimeError):
        return None


class HostBackend:
    """This machine, as a node. Thread-safe: concurrent polls are serialised."""

    kind: BackendKind = "nodes"

    def __init__(
        self,
        node_id: str | None = None,
        zone: str = "local",
        labels: Mapping[str, str] | None = None,
        runtimes: Iterable[str] = (),
        cordoned: Callable[[str], bool] = never_cordoned,
        *,
        name: str = "host",
        mount_timeout: float = 2.0,
    ) -> None:
        self.hostname = socket.gethostname()
        self.node_id = node_id or self.hostname
        self.zone = zone
        self.name = name
        self.endpoint = "local"
        # Well-known labels first, so node affinity can match on them; configured labels win.
        self.labels = freeze(
            {
                "hostname": self.hostname,
                "zone": zone,
                "os": platform.system().lower(),
                "arch": platform.machine(),
                **(labels or {}),
            }
        )
        self.runtimes = frozenset(runtimes)
        self._cordoned = cordoned
        self._mounts = MountStatter(mount_timeout)
        self._mount_table = MountTable()
        self._boot_time = psutil.boot_time()  # read once: it changes only with a reboot
        self._lock = threading.Lock()
        self._previous_busy_total: tuple[int, float, float] | None = None  # (cpus, busy, total)

    def availability(self) -> Availability:
        return Availability(backend="host", endpoint=self.endpoint, state="connected")

    def close(self) -> None:
        """Releases the watched mount table; psutil reads the other files on each call."""
        self._mount_table.close()

    def poll(self) -> KindSnapshot:
        started = time.perf_counter()
        with self._lock:
            node = self.collect()
        return KindSnapshot(
            kind="nodes",
            backend=self.name,
            items=(node,),
            taken_at=time.time(),
            duration_seconds=time.perf_counter() - started,
        )

    def collect(self) -> NodeInfo:
        warnings: list[str] = []
        per_cpu = psutil.cpu_times(percpu=True)
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        load1, load5, load15 = psutil.getloadavg()
        cpu_count = psutil.cpu_count(logical=True) or len(per_cpu)
        return NodeInfo(
            id=self.node_id,
            hostname=self.hostname,
            zone=self.zone,
            labels=self.labels,
            cpu_count=cpu_count,
            cpu_millis_allocatable=cpu_count * 1000,
            memory_bytes_total=memory.total,
            memory_bytes_available=memory.available,
            memory_bytes_used=memory.total - memory.available,
            swap_bytes_used=swap.used,
            swap_bytes_total=swap.total,
            cpu_usage_ratio=self._cpu_usage_ratio(per_cpu),
            cpu_seconds=cpu_seconds_by_mode(per_cpu),
            load1=load1,
            load5=load5,
            load15=load15,
            context_switches_total=psutil.cpu_stats().ctx_switches,
            boot_time=self._boot_time,
            filesystems=self._filesystems(warnings),
            disks=_disks(warnings),
            networks=_networks(warnings),
            tcp_connections=read_tcp_established(),
            runtimes=self.runtimes,
            cordoned=bool(self._cordoned(self.node_id)),
            warnings=tuple(warnings),
        )

    def _cpu_usage_ratio(self, per_cpu: Sequence[Any]) -> float | None:
        """Busy share of all CPUs since the previous poll (None on the first poll, or when the
        set of CPUs changed in between)."""
        busy = total = 0.0
        for times in per_cpu:
            for mode, seconds in times._asdict().items():
                if mode in GUEST_MODES:
                    continue
                total += seconds
                if mode not in IDLE_MODES:
                    busy += seconds
        previous, self._previous_busy_total = self._previous_busy_total, (len(per_cpu), busy, total)
        if previous is None or previous[0] != len(per_cpu):
            return None
        elapsed = total - previous[2]
        if elapsed <= 0:
            return None
        return min(1.0, max(0.0, (busy - previous[1]) / elapsed))

    def _filesystems(self, warnings: list[str]) -> tuple[FilesystemInfo, ...]:
        # The last mount on a mount point hides the earlier ones, so keep the last of each.
        partitions = {part.mountpoint: part for part in self._mount_table.partitions()}
        found = []
        for part in partitions.values():
            if part.fstype in PSEUDO_FSTYPES or EXCLUDED_MOUNTPOINTS.match(part.mountpoint):
                continue
            if part.fstype == "overlay" and part.mountpoint != "/":
                continue  # a container's root layer, wherever the engine keeps its data
            if self._mounts.is_stuck(part.mountpoint):
                warnings.append(f"filesystem {part.mountpoint} skipped: an earlier statfs has not returned")
                continue
            try:
                stat = self._mounts.statvfs(part.mountpoint, part.fstype)
            except MountTimeout as exc:
                warnings.append(f"filesystem {exc}; skipped")
                continue
            except OSError as exc:
                log.debug("statvfs %s failed: %s", part.mountpoint, exc)
                continue  # unmounted meanwhile, or not ours to read: not worth a warning
            found.append(_filesystem_info(part, stat))
        return tuple(found)


def cpu_seconds_by_mode(per_cpu: Sequence[Any]) -> tuple[CpuSeconds, ...]:
    return tuple(
        CpuSeconds(cpu=cpu, mode=mode, seconds=seconds)
        for cpu, times in enumerate(per_cpu)
        for mode, seconds in times._asdict().items()
        if mode not in GUEST_MODES
    )


def _filesystem_info(part: Any, stat: os.statvfs_result) -> FilesystemInfo:
    size = stat.f_blocks * stat.f_frsize
    free = stat.f_bfree * stat.f_frsize
    avail = stat.f_bavail * stat.f_frsize
    used = size - free
    return FilesystemInfo(
        device=part.device,
        mountpoint=part.mountpoint,
        fstype=part.fstype,
        size_bytes=size,
        avail_bytes=avail,
        used_ratio=used / (used + avail) if used + avail else 0.0,
        free_bytes=free,
        files=stat.f_files,
        files_free=stat.f_ffree,
        read_only="ro" in part.opts.split(","),
    )


def _disks(warnings: list[str]) -> tuple[DiskIO, ...]:
    try:
        counters = psutil.disk_io_counters(perdisk=True) or {}
    except (OSError, RuntimeError) as exc:
        warnings.append(f"disk counters unreadable: {one_line(str(exc))}")
        return ()
    return tuple(
        DiskIO(
            device=device,
            reads_completed=io.read_count,
            writes_completed=io.write_count,
            read_bytes=io.read_bytes,
            written_bytes=io.write_bytes,
            read_time_seconds=io.read_time / 1000,
            write_time_seconds=io.write_time / 1000,
            io_time_seconds=io.busy_time / 1000 if hasattr(io, "busy_time") else None,
        )
        for device, io in sorted(counters.items())
        if not EXCLUDED_DISKS.match(device)
    )


def _networks(warnings: list[str]) -> tuple[NetIO, ...]:
    try:
        counters = psutil.net_io_counters(pernic=True)
    except (OSError, RuntimeError) as exc:
        warnings.append(f"network counters unreadable: {one_line(str(exc))}")
        return ()
    return tuple(
        NetIO(
            device=device,
            bytes_recv=io.bytes_recv,
            bytes_sent=io.bytes_sent,
            packets_recv=io.packets_recv,
            packets_sent=io.packets_sent,
            errors_recv=io.errin,
            errors_sent=io.errout,
            drops_recv=io.dropin,
            drops_sent=io.dropout,
        )
        for device, io in sorted(counters.items())
    )
