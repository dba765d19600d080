"""AutoScalingPolicy: horizontal (replica count) and vertical (per-replica limits) scaling.

`horizontal.behavior` is an extension of the seed's policy with Kubernetes' autoscaling/v2
semantics (stabilization windows and rate policies); without it the seed's cooldowns apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtm.kinds.scheduling import check_replica_range, check_targets
from rtm.kinds.values import Cpu, Duration, Memory
from rtm.schema import BuildContext, Where, where_field


@dataclass(frozen=True)
class RatePolicy:
    type: Literal["pods", "percent"]
    value: int
    period: Duration
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.value < 1:
            ctx.error(self.where, "value", "a rate policy's value must be at least 1")
        if not 0 < self.period <= 1800:
            ctx.error(self.where, "period", "a rate policy's period must be above 0 and at most 30m (as in Kubernetes)")


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window: Duration | None = None
    select_policy: Literal["Max", "Min", "Disabled"] | None = None
    policies: tuple[RatePolicy, ...] | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.stabilization_window is not None and not 0 <= self.stabilization_window <= 3600:
            ctx.error(self.where, "stabilization_window", "stabilization_window must be from 0s to 1h (as in Kubernetes)")
        if self.policies is not None and not self.policies and self.select_policy != "Disabled":  # None means Max
            ctx.error(self.where, "policies", "list at least one policy, or set select_policy: Disabled")


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None
    where: Where = where_field()


@dataclass(frozen=True)
class HorizontalScaling:
    min_replicas: int = 1
    max_replicas: int = 10
    target_cpu_utilization: int | None = None
    target_memory_utilization: int | None = None
    scale_up_cooldown: Duration = 300.0
    scale_down_cooldown: Duration = 600.0
    tolerance: float = 0.1
    behavior: Behavior | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        check_replica_range(self, ctx)
        check_targets(self, ctx)
        if self.min_replicas < 1:
            ctx.error(self.where, "min_replicas", "an autoscaled workload keeps at least one replica", "set min_replicas: 1 or more")
        if self.target_cpu_utilization is None and self.target_memory_utilization is None:
            ctx.error(self.where, None, "horizontal scaling needs a target", "set target_cpu_utilization or target_memory_utilization")
        if not 0 <= self.tolerance < 1:
            ctx.error(self.where, "tolerance", "tolerance is a fraction from 0 to below 1 (0.1 = 10 %)")


@dataclass(frozen=True)
class VerticalScaling:
    min_cpu: Cpu | None = None
    max_cpu: Cpu | None = None
    min_memory: Memory | None = None
    max_memory: Memory | None = None
    adjustment_step: Cpu = 100
    memory_adjustment_step: Memory = 64 * 1024 * 1024
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        for low, high in (("min_cpu", "max_cpu"), ("min_memory", "max_memory")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                ctx.error(self.where, low, f"{low} is above {high}", "swap them")
        if self.adjustment_step <= 0:
            ctx.error(self.where, "adjustment_step", "adjustment_step must be above zero")
        if self.memory_adjustment_step <= 0:
            ctx.error(self.where, "memory_adjustment_step", "memory_adjustment_step must be above zero")


@dataclass(frozen=True)
class AutoScalingPolicy:
    horizontal: HorizontalScaling | None = None
    vertical: VerticalScaling | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.horizontal is None and self.vertical is None:
            ctx.error(self.where, None, "an AutoScalingPolicy needs horizontal or vertical scaling")
