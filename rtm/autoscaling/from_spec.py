"""Turn a validated AutoScalingPolicy spec into the settings the decisions take."""

from __future__ import annotations

from typing import Any

from rtm.autoscaling.measure import ResourceAmounts
from rtm.autoscaling.settings import Behavior, HorizontalSettings, RatePolicy, scaling_rules_with_defaults
from rtm.autoscaling.vertical import VerticalSettings
from rtm.kinds.autoscaling import AutoScalingPolicy, HorizontalScaling, ScalingRules, VerticalScaling


def horizontal_settings(policy: AutoScalingPolicy, tolerance: float | None = None) -> HorizontalSettings | None:
    """None when the policy has no horizontal part. `tolerance` (from the config) overrides the spec's."""
    return None if policy.horizontal is None else settings_of_horizontal(policy.horizontal, tolerance)


def settings_of_horizontal(spec: HorizontalScaling, tolerance: float | None = None) -> HorizontalSettings:
    behavior = None
    if spec.behavior is not None:
        behavior = Behavior(
            scale_up=_rules("scale_up", spec.behavior.scale_up),
            scale_down=_rules("scale_down", spec.behavior.scale_down),
        )
    return HorizontalSettings(
        min_replicas=spec.min_replicas,
        max_replicas=spec.max_replicas,
        target_cpu_utilization=spec.target_cpu_utilization,
        target_memory_utilization=spec.target_memory_utilization,
        scale_up_cooldown=spec.scale_up_cooldown,
        scale_down_cooldown=spec.scale_down_cooldown,
        tolerance=spec.tolerance if tolerance is None else tolerance,
        behavior=behavior,
    )


def _rules(direction: str, rules: ScalingRules | None):  # noqa: ANN202 - returns ScalingRules of rtm.autoscaling
    if rules is None:
        return scaling_rules_with_defaults(direction)  # type: ignore[arg-type]
    policies = None if rules.policies is None else [RatePolicy(p.type, p.value, p.period) for p in rules.policies]
    return scaling_rules_with_defaults(direction, rules.stabilization_window, rules.select_policy, policies)  # type: ignore[arg-type]


def vertical_settings(policy: AutoScalingPolicy) -> VerticalSettings | None:
    return None if policy.vertical is None else settings_of_vertical(policy.vertical)


def settings_of_vertical(spec: VerticalScaling) -> VerticalSettings:
    return VerticalSettings(
        min_cpu_millis=spec.min_cpu,
        max_cpu_millis=spec.max_cpu,
        min_memory_bytes=spec.min_memory,
        max_memory_bytes=spec.max_memory,
        cpu_step_millis=spec.adjustment_step,
        memory_step_bytes=spec.memory_adjustment_step,
    )


def resource_amounts(document: Any) -> tuple[ResourceAmounts, ResourceAmounts]:
    """(cpu millicores, memory bytes) request and limit of a workload's container, what its
    utilization is measured against; unset amounts when it has no ContainerRuntime."""
    container = document.get("ContainerRuntime")
    if container is None:
        return ResourceAmounts(None, None), ResourceAmounts(None, None)
    requests, limits = container.resources.requests, container.resources.limits
    return ResourceAmounts(requests.cpu, limits.cpu), ResourceAmounts(requests.memory, limits.memory)
