"""Vertical recommendations: cpu and memory limits from observed usage, as the VPA does it.

For each resource:
1. the 90th percentile of the usage samples (nearest-rank: the smallest sample that at least
   90 % of the samples are less than or equal to, i.e. sorted[ceil(0.9 * n) - 1]; always an
   observed value, independent of sample order);
2. times a headroom of 1.15;
3. rounded UP to the adjustment step (the spec's `adjustment_step` for cpu; for memory
   `memory_adjustment_step`, 64Mi by default);
4. clamped to [min, max]; when min > max, max wins (as the VPA's maxAllowed);
5. applied only when it moves the limit by at least 10 % of the current one, when the current
   limit lies outside [min, max], or when there is no current limit.

Without samples a resource keeps its current limit. Arithmetic is exact (fractions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Literal, Sequence

TARGET_PERCENTILE = 90
HEADROOM = Fraction(115, 100)
MIN_RELATIVE_CHANGE = Fraction(10, 100)
DEFAULT_CPU_STEP_MILLIS = 100  # the seed's adjustment_step "100m"
DEFAULT_MEMORY_STEP_BYTES = 64 * 1024 * 1024  # 64Mi

Resource = Literal["cpu", "memory"]


@dataclass(frozen=True)
class VerticalSettings:
    """Bounds in millicores and bytes; a bound left as None does not limit."""

    min_cpu_millis: int | None
    max_cpu_millis: int | None
    min_memory_bytes: int | None
    max_memory_bytes: int | None
    cpu_step_millis: int = DEFAULT_CPU_STEP_MILLIS
    memory_step_bytes: int = DEFAULT_MEMORY_STEP_BYTES

    def __post_init__(self) -> None:
        if self.cpu_step_millis <= 0 or self.memory_step_bytes <= 0:
            raise ValueError("adjustment steps must be positive")
        bounds = (self.min_cpu_millis, self.max_cpu_millis)
        bounds += (self.min_memory_bytes, self.max_memory_bytes)
        if any(bound is not None and bound < 0 for bound in bounds):
            raise ValueError("cpu and memory bounds must not be negative")


@dataclass(frozen=True)
class _Bounds:
    minimum: int | None
    maximum: int | None

    def clamp(self, value: int) -> int:
        if self.minimum is not None:
            value = max(value, self.minimum)
        if self.maximum is not None:
            value = min(value, self.maximum)  # applied last: max wins when the bounds cross
        return value

    def contains(self, value: int) -> bool:
        return self.clamp(value) == value

    def describe(self, fmt: Callable[[float], str]) -> str:
        low = "0" if self.minimum is None else fmt(self.minimum)
        high = "unbounded" if self.maximum is None else fmt(self.maximum)
        crossed = self.minimum is not None and self.maximum is not None
        crossed = crossed and self.minimum > self.maximum
        return f"[{low}, {high}]" + (" (max wins)" if crossed else "")


@dataclass(frozen=True)
class ResourceRecommendation:
    """The recommendation for one resource. Values are millicores (cpu) or bytes (memory);
    `recommended` is the limit to set (the current one when nothing changes)."""

    resource: Resource
    current: int | None
    recommended: int | None
    changes: bool
    reason: str
    observed_percentile: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "recommended": self.recommended,
            "changes": self.changes,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class VerticalRecommendation:
    cpu: ResourceRecommendation
    memory: ResourceRecommendation

    @property
    def changes(self) -> bool:
        return self.cpu.changes or self.memory.changes

    def to_json(self) -> dict[str, Any]:
        """`{"cpu": {...millicores}, "memory": {...bytes}}`."""
        return {"cpu": self.cpu.to_json(), "memory": self.memory.to_json()}


def percentile(samples: Sequence[float], percent: float) -> float:
    """Nearest-rank percentile: `sorted(samples)[ceil(percent / 100 * n) - 1]` (at least the
    smallest sample)."""
    if not samples:
        raise ValueError("a percentile needs at least one sample")
    if not 0 < percent <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {percent}")
    ordered = sorted(samples)
    rank = max(1, math.ceil(Fraction(percent) / 100 * len(ordered)))
    return ordered[rank - 1]


def recommend_vertical(
    settings: VerticalSettings,
    cpu_samples_millis: Sequence[float],
    memory_samples_bytes: Sequence[float],
    current_cpu_limit_millis: int | None,
    current_memory_limit_bytes: int | None,
) -> VerticalRecommendation:
    """Recommend cpu and memory limits from usage samples of a workload's replicas."""
    cpu = _recommend(
        "cpu",
        cpu_samples_millis,
        current_cpu_limit_millis,
        _Bounds(settings.min_cpu_millis, settings.max_cpu_millis),
        settings.cpu_step_millis,
        _format_millis,
    )
    memory = _recommend(
        "memory",
        memory_samples_bytes,
        current_memory_limit_bytes,
        _Bounds(settings.min_memory_bytes, settings.max_memory_bytes),
        settings.memory_step_bytes,
        _format_bytes,
    )
    return VerticalRecommendation(cpu, memory)


def _recommend(
    resource: Resource,
    samples: Sequence[float],
    current: int | None,
    bounds: _Bounds,
    step: int,
    fmt: Callable[[float], str],
) -> ResourceRecommendation:
    current_text = "no limit" if current is None else fmt(current)
    if not samples:
        return ResourceRecommendation(
            resource, current, current, False,
            f"{resource}: no usage samples; keeping {current_text}",
        )
    for sample in samples:
        if not math.isfinite(sample) or sample < 0:
            raise ValueError(f"{resource} usage samples must be finite and >= 0, not {sample}")

    observed = percentile(samples, TARGET_PERCENTILE)
    wanted = Fraction(repr(float(observed))) * HEADROOM
    stepped = math.ceil(wanted / step) * step
    recommended = bounds.clamp(stepped)

    how = (
        f"{resource}: p{TARGET_PERCENTILE} {fmt(observed)} x {float(HEADROOM):g} = "
        f"{fmt(float(wanted))}, up to {fmt(stepped)} (step {fmt(step)})"
    )
    if recommended != stepped:
        how += f", clamped to {bounds.describe(fmt)}: {fmt(recommended)}"

    if current is None:
        return ResourceRecommendation(
            resource, None, recommended, True, f"{how}; no current limit, set {fmt(recommended)}",
            observed,
        )
    outside_bounds = not bounds.contains(current)
    change = _relative_change(current, recommended)
    if recommended == current or (not outside_bounds and abs(change) < MIN_RELATIVE_CHANGE):
        return ResourceRecommendation(
            resource, current, current, False,
            f"{how}; within 10% of the current {fmt(current)} ({_percent(change)}), left alone",
            observed,
        )
    why = f", outside {bounds.describe(fmt)}" if outside_bounds else ""
    return ResourceRecommendation(
        resource, current, recommended, True,
        f"{how}; current {fmt(current)}{why} -> {fmt(recommended)} ({_percent(change)})",
        observed,
    )


def _relative_change(current: int, recommended: int) -> Fraction:
    if current == 0:
        return Fraction(1) if recommended else Fraction(0)  # any change from zero is total
    return Fraction(recommended - current, current)


def _percent(change: Fraction) -> str:
    return f"{float(change) * 100:+.1f}".removesuffix(".0") + "%"


def _format_millis(millis: float) -> str:
    return f"{_trim(millis)}m"


_BINARY_UNITS = (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024))


def _format_bytes(size: float) -> str:
    for suffix, unit in _BINARY_UNITS:
        if size >= unit:
            return f"{_trim(size / unit)}{suffix}"
    return _trim(size)


def _trim(value: float) -> str:
    """At most one decimal, no trailing zero: 977.5, 512, 117.7."""
    return f"{value:.1f}".removesuffix(".0")
