"""Horizontal autoscaling settings: the values `decide` reads, already converted from the spec.

Durations are seconds. The spec layer turns the YAML `AutoScalingPolicy.horizontal` block (and
its optional `behavior` extension) into these; the constructors only refuse values no
autoscaler could act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

PolicyType = Literal["pods", "percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]


@dataclass(frozen=True)
class RatePolicy:
    """At most `value` pods (or `value` percent of the count at the start of the period) of
    change within any `period` seconds."""

    type: PolicyType
    value: int
    period: float

    def __post_init__(self) -> None:
        if self.type not in ("pods", "percent"):
            raise ValueError(f"rate policy type must be 'pods' or 'percent', not {self.type!r}")
        if self.value <= 0:
            raise ValueError(f"rate policy value must be positive, not {self.value}")
        if self.period <= 0:
            raise ValueError(f"rate policy period must be positive, not {self.period}s")

    def describe(self) -> str:
        unit = "" if self.type == "pods" else "%"
        return f"{self.type} {self.value}{unit} per {self.period:g}s"


@dataclass(frozen=True)
class ScalingRules:
    """Kubernetes `HPAScalingRules` for one direction."""

    stabilization_window: float
    select_policy: SelectPolicy
    policies: tuple[RatePolicy, ...]

    def __post_init__(self) -> None:
        if self.select_policy not in ("Max", "Min", "Disabled"):
            raise ValueError(
                f"select_policy must be Max, Min or Disabled, not {self.select_policy!r}"
            )
        if self.stabilization_window < 0:
            raise ValueError(
                f"stabilization_window must not be negative, not {self.stabilization_window}s"
            )
        if self.select_policy != "Disabled" and not self.policies:
            raise ValueError("a scaling direction needs at least one policy unless it is Disabled")

    @property
    def longest_period(self) -> float:
        return max((policy.period for policy in self.policies), default=0.0)


# Kubernetes' defaults for a direction the behavior block leaves out (autoscaling/v2 defaults.go).
DEFAULT_SCALE_UP_RULES = ScalingRules(
    stabilization_window=0.0,
    select_policy="Max",
    policies=(RatePolicy("pods", 4, 15.0), RatePolicy("percent", 100, 15.0)),
)
DEFAULT_SCALE_DOWN_RULES = ScalingRules(
    stabilization_window=300.0,
    select_policy="Max",
    policies=(RatePolicy("percent", 100, 15.0),),
)


def scaling_rules_with_defaults(
    direction: Literal["scale_up", "scale_down"],
    stabilization_window: float | None = None,
    select_policy: SelectPolicy | None = None,
    policies: Sequence[RatePolicy] | None = None,
) -> ScalingRules:
    """Rules for one direction of a behavior block, each field left out taking Kubernetes'
    default for that direction (as autoscaling/v2 defaulting does field by field)."""
    defaults = DEFAULT_SCALE_UP_RULES if direction == "scale_up" else DEFAULT_SCALE_DOWN_RULES
    return ScalingRules(
        stabilization_window=(
            defaults.stabilization_window if stabilization_window is None else stabilization_window
        ),
        select_policy=select_policy or defaults.select_policy,
        policies=defaults.policies if policies is None else tuple(policies),
    )


@dataclass(frozen=True)
class Behavior:
    """The optional `behavior` block: Kubernetes autoscaling/v2 scaling behaviour."""

    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None

    @property
    def up(self) -> ScalingRules:
        return self.scale_up if self.scale_up is not None else DEFAULT_SCALE_UP_RULES

    @property
    def down(self) -> ScalingRules:
        return self.scale_down if self.scale_down is not None else DEFAULT_SCALE_DOWN_RULES


@dataclass(frozen=True)
class HorizontalSettings:
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int | None
    target_memory_utilization: int | None
    scale_up_cooldown: float = 300.0
    scale_down_cooldown: float = 600.0
    tolerance: float = 0.1
    behavior: Behavior | None = None

    def __post_init__(self) -> None:
        # As the HPA: at least one replica, so a workload can always be measured again.
        if self.min_replicas < 1:
            raise ValueError(f"min_replicas must be at least 1, not {self.min_replicas}")
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) must not be below "
                f"min_replicas ({self.min_replicas})"
            )
        for name, target in self.targets.items():
            if target <= 0:
                raise ValueError(f"target_{name}_utilization must be positive, not {target}")
        if self.scale_up_cooldown < 0 or self.scale_down_cooldown < 0:
            raise ValueError("cooldowns must not be negative")
        if self.tolerance < 0:
            raise ValueError(f"tolerance must not be negative, not {self.tolerance}")

    @property
    def targets(self) -> dict[str, int]:
        """Target utilization percent per metric that has one ("cpu", "memory")."""
        candidates = {"cpu": self.target_cpu_utilization, "memory": self.target_memory_utilization}
        return {name: target for name, target in candidates.items() if target is not None}

    @property
    def history_horizon(self) -> float:
        """How far back any decision looks: older history entries can be dropped. The
        cooldowns without a behavior block, its windows and policy periods with one."""
        if self.behavior is None:
            return max(self.scale_up_cooldown, self.scale_down_cooldown)
        rules = (self.behavior.up, self.behavior.down)
        return max(span for r in rules for span in (r.stabilization_window, r.longest_period))
