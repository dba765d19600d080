"""The one measure of a workload's utilization, as the Kubernetes HPA's resource metrics take
it: over the running replicas that have a reading, `sum(usage) * 100 / sum(request)`, where a
replica without a request counts its limit (Kubernetes defaults a missing request to the limit).

The autoscaling loop, `rtm-console scale --workload`, the console's scaling screen and the
alert arithmetic all call `workload_utilization`, so they never disagree on a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rtm.autoscaling.horizontal import utilization_from_usage


@dataclass(frozen=True)
class ReplicaUsage:
    """One replica's usage now: cpu in millicores and memory in bytes (None: no reading yet)."""

    running: bool
    cpu_millis: float | None
    memory_bytes: float | None


@dataclass(frozen=True)
class ResourceAmounts:
    """A replica's request and limit of one resource (None: not set)."""

    request: int | float | None
    limit: int | float | None

    @property
    def base(self) -> int | float | None:
        """What utilization is measured against: the request, else the limit."""
        return self.request if self.request is not None else self.limit


def resource_utilization(readings: Sequence[float], amounts: ResourceAmounts) -> float | None:
    """Utilization percent of one resource from the readings of the running replicas; None
    without a reading or without a request and a limit."""
    base = amounts.base
    if not readings or not base:
        return None
    return utilization_from_usage(readings, [base] * len(readings))


def workload_utilization(replicas: Sequence[ReplicaUsage], cpu: ResourceAmounts, memory: ResourceAmounts) -> dict[str, float]:
    """{"cpu": percent, "memory": percent} over the running replicas; a metric that cannot be
    measured (no reading, no request or limit) is left out."""
    running = [r for r in replicas if r.running]
    metrics: dict[str, float] = {}
    for name, readings, amounts in (
        ("cpu", [r.cpu_millis for r in running if r.cpu_millis is not None], cpu),
        ("memory", [r.memory_bytes for r in running if r.memory_bytes is not None], memory),
    ):
        value = resource_utilization(readings, amounts)
        if value is not None:
            metrics[name] = value
    return metrics
