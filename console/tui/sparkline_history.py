"""Recent history for the sparklines: of each node (CPU and memory use, disk and network rates),
and of the containers and VMs on screen (CPU, memory, network and disk).

Pure: fed with the node records of successive polls. Rates come from the difference of the
cumulative counters between two polls of the same node divided by the time between them; a
counter that went backwards (a reboot, a device that disappeared) gives no rate rather than a
negative one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from backends.records import ContainerInfo, NodeInfo, VmInfo
from console.tui.views import NodeRates

DEFAULT_POINTS = 60  # two minutes at the default 2 s refresh


@dataclass
class NodeSeries:
    cpu: deque[float]
    memory: deque[float]
    disk: deque[float]  # bytes per second, read + written
    network: deque[float]  # bytes per second, received + sent


@dataclass(frozen=True)
class _Counters:
    taken_at: float
    disk_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int


@dataclass
class NodeHistory:
    points: int = DEFAULT_POINTS
    _series: dict[str, NodeSeries] = field(default_factory=dict)
    _last: dict[str, _Counters] = field(default_factory=dict)
    _rates: dict[str, NodeRates] = field(default_factory=dict)

    def add(self, key: str, node: NodeInfo, taken_at: float) -> bool:
        """Record one poll of the node `key` taken at `taken_at` (epoch seconds).

        A snapshot already recorded (same `taken_at`) is ignored, so publishing the same poll
        state twice adds no point. Returns True when a point was added.
        """
        previous = self._last.get(key)
        if previous is not None and taken_at <= previous.taken_at:
            return False
        counters = _Counters(
            taken_at,
            sum(disk.read_bytes + disk.written_bytes for disk in node.disks),
            sum(net.bytes_recv for net in node.networks),
            sum(net.bytes_sent for net in node.networks),
        )
        rates = NodeRates()
        if previous is not None:
            elapsed = taken_at - previous.taken_at
            rates = NodeRates(
                _rate(counters.disk_bytes, previous.disk_bytes, elapsed),
                _rate(counters.net_rx_bytes, previous.net_rx_bytes, elapsed),
                _rate(counters.net_tx_bytes, previous.net_tx_bytes, elapsed),
            )
        self._last[key] = counters
        self._rates[key] = rates
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = NodeSeries(*(deque(maxlen=self.points) for _ in range(4)))
        if node.cpu_usage_ratio is not None:
            series.cpu.append(node.cpu_usage_ratio * 100)
        if node.memory_bytes_total:
            series.memory.append(node.memory_bytes_used * 100 / node.memory_bytes_total)
        if rates.disk_bytes is not None:
            series.disk.append(rates.disk_bytes)
        if rates.net_rx_bytes is not None and rates.net_tx_bytes is not None:
            series.network.append(rates.net_rx_bytes + rates.net_tx_bytes)
        return True

    def series(self, key: str) -> NodeSeries | None:
        return self._series.get(key)

    def rates(self) -> Mapping[str, NodeRates]:
        return self._rates

    def forget_missing(self, keys: set[str]) -> None:
        """Drop the history of nodes no longer reported."""
        for store in (self._series, self._last, self._rates):
            for key in [k for k in store if k not in keys]:
                del store[key]


def _rate(now: int, before: int, elapsed: float) -> float | None:
    if elapsed <= 0 or now < before:
        return None
    return (now - before) / elapsed


# ------------------------------------------------------------------ containers and VMs

RESOURCE_SERIES = ("cpu", "memory", "network", "disk")


@dataclass
class _ResourceTrack:
    taken_at: float
    net_bytes: int
    disk_bytes: int
    series: dict[str, deque[float]]


@dataclass
class ResourceHistory:
    """The last `points` samples of CPU (% of a core), memory (bytes), network and disk (bytes
    per second) of the containers and VMs being watched: the rows in sight and the selected
    one. A row that stops being watched loses its history, so the cost follows the screen, not
    the fleet."""

    points: int = DEFAULT_POINTS
    _tracks: dict[str, _ResourceTrack] = field(default_factory=dict)

    def add(self, key: str, record: ContainerInfo | VmInfo, taken_at: float) -> bool:
        track = self._tracks.get(key)
        if track is not None and taken_at <= track.taken_at:
            return False
        memory = record.memory_working_set_bytes if isinstance(record, ContainerInfo) else record.memory_current_bytes
        net = record.net_rx_bytes + record.net_tx_bytes
        disk = (record.block_read_bytes + record.block_write_bytes)
        if track is None:
            track = self._tracks[key] = _ResourceTrack(taken_at, net, disk, {name: deque(maxlen=self.points) for name in RESOURCE_SERIES})
        else:
            elapsed = taken_at - track.taken_at
            for name, now, before in (("network", net, track.net_bytes), ("disk", disk, track.disk_bytes)):
                rate = _rate(now, before, elapsed)
                if rate is not None:
                    track.series[name].append(rate)
            track.taken_at, track.net_bytes, track.disk_bytes = taken_at, net, disk
        if record.cpu_ratio is not None:
            track.series["cpu"].append(record.cpu_ratio * 100)
        track.series["memory"].append(float(memory))
        return True

    def series(self, key: str) -> dict[str, list[float]]:
        track = self._tracks.get(key)
        return {name: list(values) for name, values in track.series.items()} if track else {}

    def keep_only(self, keys: frozenset[str]) -> None:
        for key in [k for k in self._tracks if k not in keys]:
            del self._tracks[key]

    def __len__(self) -> int:
        return len(self._tracks)
