"""The records backends produce: immutable values in base units.

Every record is a frozen dataclass; collections are tuples, frozensets or `FrozenDict`, so a
published snapshot can be shared between the poller's threads, the console and the exporter
without copying or locking. Numbers are in base units: bytes, seconds, ratios 0-1 (1.0 = one
core for a container's or VM's CPU), epoch seconds for points in time. Counters (`*_total`,
bytes and packets) are cumulative as the kernel or runtime reports them, never deltas, so the
exporter can hand them to Prometheus as counters and `rate()` computes utilisation.

Each backend owns its record class: it may add fields with defaults, never rename or remove.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from backends.base import BackendKind


class FrozenDict(dict):
    """A dict that refuses changes after construction, and so can be hashed and shared.

    A dict subclass (rather than MappingProxyType) so that `json.dumps`,
    `dataclasses.asdict` and `copy.deepcopy` keep working on records that hold one.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("FrozenDict cannot be changed; build a new one")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[Any, ...]:
        # Copy and pickle by passing the items to the constructor, not by __setitem__.
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


def freeze(mapping: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> FrozenDict:
    return mapping if isinstance(mapping, FrozenDict) else FrozenDict(mapping or {})


def _freeze_field(record: Any, name: str) -> None:
    """For __post_init__ of frozen records: replace a plain mapping with a FrozenDict."""
    object.__setattr__(record, name, freeze(getattr(record, name)))


# --------------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class CpuSeconds:
    """Cumulative seconds one logical CPU spent in one mode (node_cpu_seconds_total)."""

    cpu: int
    mode: str  # user, nice, system, idle, iowait, irq, softirq, steal
    seconds: float


@dataclass(frozen=True)
class FilesystemInfo:
    device: str
    mountpoint: str
    fstype: str
    size_bytes: int
    avail_bytes: int  # free to unprivileged users (what df shows as Avail)
    used_ratio: float  # used / (used + avail), like df's Use%
    free_bytes: int = 0  # free including the root reserve (node_filesystem_free_bytes)
    files: int = 0  # inodes
    files_free: int = 0
    read_only: bool = False


@dataclass(frozen=True)
class DiskIO:
    """Cumulative block device counters (node_disk_*_total)."""

    device: str
    reads_completed: int
    writes_completed: int
    read_bytes: int
    written_bytes: int
    read_time_seconds: float = 0.0
    write_time_seconds: float = 0.0
    io_time_seconds: float | None = None  # time the device was busy (Linux only)


@dataclass(frozen=True)
class NetIO:
    """Cumulative network interface counters (node_network_*_total)."""

    device: str
    bytes_recv: int
    bytes_sent: int
    packets_recv: int
    packets_sent: int
    errors_recv: int = 0
    errors_sent: int = 0
    drops_recv: int = 0
    drops_sent: int = 0


@dataclass(frozen=True)
class NodeInfo:
    """A machine, with the runtimes reachable on it (one machine is one node)."""

    id: str
    hostname: str
    zone: str
    labels: Mapping[str, str]
    cpu_count: int
    cpu_millis_allocatable: int
    memory_bytes_total: int
    memory_bytes_available: int
    memory_bytes_used: int  # total - available: memory not available for new work
    swap_bytes_used: int
    cpu_usage_ratio: float | None  # 0-1 over the last poll interval; None on the first poll
    cpu_seconds: tuple[CpuSeconds, ...]
    load1: float
    load5: float
    load15: float
    context_switches_total: int
    boot_time: float  # epoch seconds
    filesystems: tuple[FilesystemInfo, ...]
    disks: tuple[DiskIO, ...]
    networks: tuple[NetIO, ...]
    tcp_connections: int | None  # established (node_netstat_Tcp_CurrEstab); None if unknown
    runtimes: frozenset[str]  # "docker", "libvirt"
    cordoned: bool
    swap_bytes_total: int = 0
    # Parts of the node that could not be read this poll (a mount that did not answer, ...);
    # the rest of the record is still valid.
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _freeze_field(self, "labels")
        object.__setattr__(self, "runtimes", frozenset(self.runtimes))


# ---------------------------------------------------------------------------- containers


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    workload: str | None  # from the workload label, None for containers not managed by us
    replica: int | None
    engine: str  # backend name, e.g. "docker@local"
    state: str  # created, running, paused, restarting, exited, dead
    health: str | None  # starting, healthy, unhealthy; None without a health check
    image: str
    ports: tuple[str, ...]  # "8080->80/tcp"
    started_at: float | None
    cpu_ratio: float | None  # Docker's formula, 1.0 = one core; None until two samples
    cpu_seconds_total: float
    memory_working_set_bytes: int
    memory_limit_bytes: int | None
    restarts: int
    net_rx_bytes: int
    net_tx_bytes: int
    net_rx_packets: int
    net_tx_packets: int
    block_read_bytes: int
    block_write_bytes: int
    labels: Mapping[str, str] = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        _freeze_field(self, "labels")


# ----------------------------------------------------------------------------------- VMs


@dataclass(frozen=True)
class VmInfo:
    name: str
    uuid: str
    host: str  # backend name, e.g. "libvirt@qemu:///system"
    state: str  # running, paused, shutoff, crashed, ...
    vcpus: int
    memory_current_bytes: int
    memory_max_bytes: int
    cpu_time_seconds: float
    cpu_ratio: float | None  # 1.0 = one core; None until two samples
    block_read_bytes: int
    block_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int
    started_at: float | None
    # Bytes per second between the last two polls of the VM's host; None until two samples.
    block_read_rate: float | None = None
    block_write_rate: float | None = None
    net_rx_rate: float | None = None
    net_tx_rate: float | None = None


# ----------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class DurationStats:
    """Invocation durations over the backend's reporting window."""

    average_seconds: float
    maximum_seconds: float
    p95_seconds: float | None = None


# Upper bounds (seconds) for invocation-duration buckets; a backend that counts invocations
# itself (the local runtime) uses these unless it has reasons to choose others.
DEFAULT_DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class DurationHistogram:
    """Every invocation's duration since the backend started counting (a Prometheus histogram).

    `bucket_counts[i]` is how many invocations took at most `bounds[i]` seconds (cumulative,
    as Prometheus' `le` buckets); `count` includes those above the last bound.
    """

    bounds: tuple[float, ...]
    bucket_counts: tuple[int, ...]
    count: int
    sum_seconds: float

    @classmethod
    def empty(cls, bounds: tuple[float, ...] = DEFAULT_DURATION_BUCKETS) -> DurationHistogram:
        return cls(tuple(bounds), (0,) * len(bounds), 0, 0.0)

    def observe(self, seconds: float) -> DurationHistogram:
        """This histogram with one more invocation of `seconds`."""
        counts = tuple(n + 1 if seconds <= bound else n for n, bound in zip(self.bucket_counts, self.bounds))
        return DurationHistogram(self.bounds, counts, self.count + 1, self.sum_seconds + seconds)


@dataclass(frozen=True)
class FunctionInfo:
    name: str
    target: Literal["aws", "local"]
    region: str | None
    runtime: str  # "python3.12"
    handler: str  # "module.function"
    memory_mb: int
    timeout_seconds: float
    last_modified: float | None  # epoch seconds
    triggers: tuple[str, ...]  # "http POST /api/x", "cron rate(5 minutes)"
    invocations: int
    errors: int
    duration: DurationStats | None
    # Cumulative durations of every invocation the backend counted itself; None where the
    # backend only has window statistics (CloudWatch).
    duration_histogram: DurationHistogram | None = None
    # The deployed version serving invocations ("3" locally); None where not tracked.
    version: str | None = None
    # Of `errors`, how many were timeouts and how many ran out of memory (local runtime).
    timeouts: int = 0
    out_of_memory: int = 0


# ----------------------------------------------------------------------------- snapshots

Record = Union[NodeInfo, ContainerInfo, VmInfo, FunctionInfo]


@dataclass(frozen=True)
class KindSnapshot:
    """What one poll of one backend saw."""

    kind: BackendKind
    backend: str  # the backend's name
    items: tuple[Record, ...]
    taken_at: float  # epoch seconds (wall clock) when the poll finished
    duration_seconds: float  # how long poll() took


def to_jsonable(value: Any) -> Any:
    """Turn records (and anything they hold) into JSON-ready data for `--json` output.

    Field order is kept; frozensets become sorted lists; non-finite floats become None
    (JSON has no NaN).
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(to_jsonable(item) for item in value)
    if isinstance(value, (tuple, list)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
