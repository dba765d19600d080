"""VM records from libvirt's bulk statistics: one getAllDomainStats call per refresh.

virt-top's way: a single call returns state, CPU time, balloon, vCPU, block and interface
counters for every domain, so a refresh costs one round trip however many VMs there are. CPU %
is the CPU-time difference between two refreshes over the wall-clock time between them (1.0 =
one host core busy); disk and network rates likewise. The first sample of a domain (or of a new
run of it: the domain id changes at each start) has no rate yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from backends.records import VmInfo

# virDomainState values, in the words `virsh domstate` uses.
STATE_NAMES = {
    0: "no state",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutting down",
    5: "shut off",
    6: "crashed",
    7: "suspended (power management)",
}
ACTIVE_STATES = frozenset({1, 2, 3, 4, 7})


@dataclass(frozen=True)
class DomainSample:
    """One domain's entry of a getAllDomainStats answer."""

    name: str
    uuid: str
    domain_id: int  # -1 while shut off; a new id at every start
    stats: Mapping[str, Any]


@dataclass(frozen=True)
class _Previous:
    at: float  # monotonic seconds
    cpu_ns: int
    counters: tuple[int, int, int, int]  # block read, block write, net rx, net tx


def _sum(stats: Mapping[str, Any], group: str, field: str) -> int:
    count = int(stats.get(f"{group}.count", 0))
    return sum(int(stats.get(f"{group}.{i}.{field}", 0)) for i in range(count))


def _counters(stats: Mapping[str, Any]) -> tuple[int, int, int, int]:
    return (
        _sum(stats, "block", "rd.bytes"),
        _sum(stats, "block", "wr.bytes"),
        _sum(stats, "net", "rx.bytes"),
        _sum(stats, "net", "tx.bytes"),
    )


class StatsTracker:
    """Turns successive bulk samples of one host into VmInfo records with rates.

    `started_at(sample)` gives a running domain's start time (epoch seconds) or None; it is
    asked once per run of a domain and the answer kept.
    """

    def __init__(self, host: str, started_at: Callable[[DomainSample], float | None] = lambda _s: None) -> None:
        self.host = host
        self._started_at = started_at
        self._previous: dict[tuple[str, int], _Previous] = {}
        self._start_times: dict[tuple[str, int], float | None] = {}

    def update(self, samples: list[DomainSample], now: float) -> tuple[VmInfo, ...]:
        """Records for `samples`, taken at monotonic time `now`."""
        previous, self._previous = self._previous, {}
        records = []
        seen_runs = set()
        for sample in samples:
            key = (sample.uuid, sample.domain_id)
            stats = sample.stats
            state_code = int(stats.get("state.state", 0))
            active = state_code in ACTIVE_STATES and sample.domain_id >= 0
            cpu_ns = int(stats.get("cpu.time", 0))
            counters = _counters(stats)
            cpu_ratio = None
            rates: tuple[float | None, ...] = (None, None, None, None)
            if active:
                seen_runs.add(key)
                self._previous[key] = _Previous(now, cpu_ns, counters)
                before = previous.get(key)
                if before is not None and now > before.at:
                    elapsed = now - before.at
                    if cpu_ns >= before.cpu_ns:
                        cpu_ratio = (cpu_ns - before.cpu_ns) / 1e9 / elapsed
                    rates = tuple(
                        (value - old) / elapsed if value >= old else None
                        for value, old in zip(counters, before.counters)
                    )
                if key not in self._start_times:
                    self._start_times[key] = self._started_at(sample)
            records.append(
                VmInfo(
                    name=sample.name,
                    uuid=sample.uuid,
                    host=self.host,
                    state=STATE_NAMES.get(state_code, f"state {state_code}"),
                    vcpus=int(stats.get("vcpu.current", stats.get("vcpu.maximum", 0))),
                    memory_current_bytes=int(stats.get("balloon.current", 0)) * 1024,
                    memory_max_bytes=int(stats.get("balloon.maximum", 0)) * 1024,
                    cpu_time_seconds=cpu_ns / 1e9,
                    cpu_ratio=cpu_ratio,
                    block_read_bytes=counters[0],
                    block_write_bytes=counters[1],
                    net_rx_bytes=counters[2],
                    net_tx_bytes=counters[3],
                    started_at=self._start_times.get(key) if active else None,
                    block_read_rate=rates[0],
                    block_write_rate=rates[1],
                    net_rx_rate=rates[2],
                    net_tx_rate=rates[3],
                )
            )
        # Forget runs that ended, so the cache does not grow with every restart.
        self._start_times = {k: v for k, v in self._start_times.items() if k in seen_runs}
        return tuple(records)
