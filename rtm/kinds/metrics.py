"""ResourceMetrics: which host metrics are exported, each declared a gauge or a counter.

A declared type must agree with what is measured: a cumulative count (context switches, bytes
sent) is a counter, a level (usage, available memory) is a gauge. Declaring one as the other is
an error, because Prometheus' rate() on a gauge, or a gauge of a counter, gives wrong answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtm.schema import BuildContext, Where, where_field

MetricType = Literal["gauge", "counter"]

# What each seed metric really is.
MEASURED_TYPES: dict[str, dict[str, str]] = {
    "cpu": {"usage_percent": "gauge", "load_average": "gauge", "context_switches": "counter"},
    "memory": {"usage_bytes": "gauge", "available_bytes": "gauge", "swap_usage_bytes": "gauge"},
    "disk": {
        "usage_percent": "gauge",
        "read_iops": "counter",
        "write_iops": "counter",
        "read_throughput": "counter",
        "write_throughput": "counter",
    },
    "network": {
        "bytes_sent": "counter",
        "bytes_received": "counter",
        "packets_sent": "counter",
        "packets_received": "counter",
        "connection_count": "gauge",
    },
}


def _check_declared(group: str, spec: object, ctx: BuildContext) -> None:
    for name, measured in MEASURED_TYPES[group].items():
        declared = getattr(spec, name)
        if declared is not None and declared != measured:
            what = "a cumulative count" if measured == "counter" else "a level that goes up and down"
            ctx.error(spec.where, name, f"{group}.{name} is {what}, so it is a {measured}, not a {declared}", f'declare it "{measured}"')  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CpuMetrics:
    usage_percent: MetricType | None = None
    load_average: MetricType | None = None
    context_switches: MetricType | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        _check_declared("cpu", self, ctx)


@dataclass(frozen=True)
class MemoryMetrics:
    usage_bytes: MetricType | None = None
    available_bytes: MetricType | None = None
    swap_usage_bytes: MetricType | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        _check_declared("memory", self, ctx)


@dataclass(frozen=True)
class DiskMetrics:
    usage_percent: MetricType | None = None
    read_iops: MetricType | None = None
    write_iops: MetricType | None = None
    read_throughput: MetricType | None = None
    write_throughput: MetricType | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        _check_declared("disk", self, ctx)


@dataclass(frozen=True)
class NetworkMetrics:
    bytes_sent: MetricType | None = None
    bytes_received: MetricType | None = None
    packets_sent: MetricType | None = None
    packets_received: MetricType | None = None
    connection_count: MetricType | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        _check_declared("network", self, ctx)


@dataclass(frozen=True)
class ResourceMetrics:
    cpu: CpuMetrics | None = None
    memory: MemoryMetrics | None = None
    disk: DiskMetrics | None = None
    network: NetworkMetrics | None = None
    where: Where = where_field()

    def selected(self) -> frozenset[str]:
        """The metrics this spec asks for, as "group.name" (what the exporter filters on)."""
        chosen = set()
        for group in MEASURED_TYPES:
            spec = getattr(self, group)
            if spec is not None:
                chosen.update(f"{group}.{n}" for n in MEASURED_TYPES[group] if getattr(spec, n) is not None)
        return frozenset(chosen)
