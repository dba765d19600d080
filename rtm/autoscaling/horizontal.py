"""Horizontal autoscaling decisions, made the way the Kubernetes HPA makes them.

One evaluation (`decide`):
1. A replica count outside `[min_replicas, max_replicas]` is brought back to the range before
   any metric is read (`TooFewReplicas` / `TooManyReplicas`).
2. Each metric with a target proposes `ceil(current * utilization / target)`, or the current
   count when `|1 - utilization / target| <= tolerance`; the largest proposal wins, so a high
   memory utilization is never overruled by a low CPU one.
3. Without a `behavior` block: the HPA's default rules (clamp to the range, at most
   `max(2 * current, 4)` in one step), then the policy's cooldowns, counted from the last
   scaling event of either direction: no scale-up within `scale_up_cooldown` of it, no
   scale-down within `scale_down_cooldown` of it.
4. With a `behavior` block: Kubernetes autoscaling/v2 behaviour: the recommendation is
   stabilized over past recommendations (a scale-up goes no further than the lowest
   recommendation of its window, a scale-down no further than the highest of its window),
   then limited by the rate policies, each counted over the scaling events of its period, and
   combined by `select_policy` (`Max`: the policy allowing the biggest change, `Min`: the
   smallest, `Disabled`: no change in that direction).

The arithmetic is exact (fractions of the decimals given), so a utilization of 77 against a
target of 70 is exactly at the 0.1 tolerance, not a rounding error past it. Percent policies
round as the HPA does: up when scaling up, toward zero when scaling down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Literal, Mapping, NamedTuple, Sequence

from rtm.autoscaling.history import History
from rtm.autoscaling.settings import HorizontalSettings, ScalingRules

Direction = Literal["scale_up", "scale_down", "no_scale"]

DEFAULT_SCALE_UP_FACTOR = 2  # without behavior, one step reaches at most max(2 * current, 4)
DEFAULT_SCALE_UP_MINIMUM = 4


@dataclass(frozen=True)
class Decision:
    """What one evaluation decided and why.

    `condition` is the HPA's name for what determined the target (`DesiredWithinRange`,
    `ScaleUpLimit`, `ScaleDownStabilized`, `ScaleUpCooldown`, ...); `reason` is one line that
    starts with it and gives the numbers. `proposals` holds each evaluated metric's proposal.
    """

    direction: Direction
    current_replicas: int
    target_replicas: int
    reason: str
    proposals: Mapping[str, int] = field(default_factory=dict)
    condition: str = "DesiredWithinRange"

    def __post_init__(self) -> None:
        object.__setattr__(self, "proposals", MappingProxyType(dict(self.proposals)))

    def to_json(self) -> dict:
        return {
            "direction": self.direction,
            "current_replicas": self.current_replicas,
            "target_replicas": self.target_replicas,
            "reason": self.reason,
            "proposals": dict(self.proposals),
        }


class _Outcome(NamedTuple):
    replicas: int
    condition: str
    message: str


def utilization_from_usage(usages: Sequence[float], requests: Sequence[float]) -> float:
    """Average utilization percent of a set of replicas, as the HPA computes it:
    `sum(usage) * 100 / sum(request)` (usage and request in the same unit)."""
    if len(usages) != len(requests):
        raise ValueError(
            f"one request per usage sample is needed ({len(usages)} usages, "
            f"{len(requests)} requests)"
        )
    total_request = sum(requests)
    if not requests or total_request <= 0:
        raise ValueError("utilization needs replicas with a positive resource request")
    return sum(usages) * 100 / total_request


def decide(
    settings: HorizontalSettings,
    current_replicas: int,
    metrics: Mapping[str, float],
    history: History,
    now: float,
    *,
    assume_applied: bool = True,
) -> tuple[Decision, History]:
    """Decide the replica count for a workload at time `now` (epoch seconds).

    `metrics` are average utilization percentages keyed "cpu" / "memory"; a metric without a
    target in `settings` is ignored. Returns the decision and the history to keep: this
    evaluation's recommendation is in it and, when the decision scales and `assume_applied`
    is true, the scaling event too. A caller that records the event only after the change
    succeeded passes `assume_applied=False` and then calls
    `history.record_event(now, decision.current_replicas, decision.target_replicas)`.
    """
    if current_replicas < 0:
        raise ValueError(f"the current replica count cannot be negative ({current_replicas})")
    if not history.recommendations:
        # As the HPA: a fresh autoscaler counts the current size as already recommended, so
        # it does not scale down before its scale-down window has seen the workload.
        history = history.record_recommendation(now, current_replicas)

    outcome, proposals = _evaluate(settings, current_replicas, metrics, history, now)
    if proposals:
        history = history.record_recommendation(now, max(p.replicas for p in proposals))

    target = outcome.replicas
    direction: Direction = (
        "scale_up" if target > current_replicas
        else "scale_down" if target < current_replicas
        else "no_scale"
    )
    if direction != "no_scale" and assume_applied:
        history = history.record_event(now, current_replicas, target)
    decision = Decision(
        direction=direction,
        current_replicas=current_replicas,
        target_replicas=target,
        reason=f"{outcome.condition}: {outcome.message}",
        proposals={proposal.metric: proposal.replicas for proposal in proposals},
        condition=outcome.condition,
    )
    return decision, history.pruned(now, settings.history_horizon)


def _evaluate(
    settings: HorizontalSettings,
    current: int,
    metrics: Mapping[str, float],
    history: History,
    now: float,
) -> tuple[_Outcome, list[_Proposal]]:
    """The target with its reason, and the metric proposals it came from (none when the
    count was out of range, as metrics are not read then)."""
    if current > settings.max_replicas:
        return _Outcome(
            settings.max_replicas,
            "TooManyReplicas",
            f"the current replica count {current} is more than the maximum replica "
            f"count {settings.max_replicas}; brought back before reading metrics",
        ), []
    if current < settings.min_replicas:
        return _Outcome(
            settings.min_replicas,
            "TooFewReplicas",
            f"the current replica count {current} is less than the minimum replica "
            f"count {settings.min_replicas}; brought back before reading metrics",
        ), []
    proposals = _proposals(settings, current, metrics)
    if not proposals:
        return _Outcome(
            current,
            "FailedGetResourceMetric",
            f"no utilization was given for a metric with a target "
            f"({_targets_text(settings)}); keeping {current} replicas",
        ), []
    desired = max(proposal.replicas for proposal in proposals)
    summary = ", ".join(proposal.describe() for proposal in proposals)
    normalize = _normalize_with_cooldowns if settings.behavior is None else _normalize_with_behavior
    return normalize(settings, current, desired, history, now, summary), proposals


# --- metric proposals -----------------------------------------------------------------------


def _exact(value: float) -> Fraction:
    """The decimal as written (a float's shortest repr), so 0.1 and 77 / 70 stay exact."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a utilization must be a finite number, not {value}")
        return Fraction(repr(value))
    return Fraction(value)


class _Proposal(NamedTuple):
    metric: str
    utilization: float
    target: int
    replicas: int
    within_tolerance: bool

    def describe(self) -> str:
        text = f"{self.metric} {_num(self.utilization)}% of target {self.target}%"
        if self.within_tolerance:
            return f"{text} is within tolerance, keeps {self.replicas}"
        return f"{text} proposes {self.replicas}"


def _proposals(
    settings: HorizontalSettings, current: int, metrics: Mapping[str, float]
) -> list[_Proposal]:
    tolerance = _exact(settings.tolerance)
    proposals = []
    for name, target in settings.targets.items():
        if name not in metrics:
            continue
        utilization = _exact(metrics[name])
        if utilization < 0:
            raise ValueError(f"{name} utilization cannot be negative ({metrics[name]})")
        ratio = utilization / target
        within_tolerance = abs(1 - ratio) <= tolerance
        replicas = current if within_tolerance else math.ceil(ratio * current)
        proposals.append(_Proposal(name, metrics[name], target, replicas, within_tolerance))
    return proposals


# --- without behavior: default limits, then cooldowns ---------------------------------------


def _normalize_with_cooldowns(
    settings: HorizontalSettings,
    current: int,
    desired: int,
    history: History,
    now: float,
    summary: str,
) -> _Outcome:
    outcome = _limit_by_default_rules(settings, current, desired, summary)
    if outcome.replicas == current:
        return outcome
    scaling_up = outcome.replicas > current
    cooldown = settings.scale_up_cooldown if scaling_up else settings.scale_down_cooldown
    last = history.last_event()
    if last is None or now - last.time >= cooldown:
        return outcome
    elapsed = now - last.time
    when = f"was {_num(elapsed)}s ago" if elapsed >= 0 else f"is dated {_num(-elapsed)}s after now"
    verb, name = ("scaling up", "scale_up") if scaling_up else ("scaling down", "scale_down")
    return _Outcome(
        current,
        "ScaleUpCooldown" if scaling_up else "ScaleDownCooldown",
        f"the last scaling event ({last.from_replicas} -> {last.to_replicas}) {when}; "
        f"{verb} to {outcome.replicas} waits {_num(cooldown - elapsed)}s more "
        f"({name}_cooldown {_num(cooldown)}s)",
    )


def _limit_by_default_rules(
    settings: HorizontalSettings, current: int, desired: int, summary: str
) -> _Outcome:
    """The HPA's rules without behavior: the range, and at most `max(2 * current, 4)`."""
    scale_up_limit = max(DEFAULT_SCALE_UP_FACTOR * current, DEFAULT_SCALE_UP_MINIMUM)
    if desired < settings.min_replicas:
        return _too_few(desired, settings.min_replicas)
    if settings.max_replicas > scale_up_limit:
        if desired > scale_up_limit:
            return _Outcome(
                scale_up_limit,
                "ScaleUpLimit",
                f"the desired replica count {desired} is increasing faster than the maximum "
                f"scale rate; limited to {scale_up_limit} = max(2 x {current}, 4)",
            )
    elif desired > settings.max_replicas:
        return _too_many(desired, settings.max_replicas)
    return _within_range(desired, summary)


# --- with behavior: stabilization, then rate policies ---------------------------------------


def _normalize_with_behavior(
    settings: HorizontalSettings,
    current: int,
    desired: int,
    history: History,
    now: float,
    summary: str,
) -> _Outcome:
    assert settings.behavior is not None
    up_rules, down_rules = settings.behavior.up, settings.behavior.down

    # A scale-up goes no higher than the lowest recommendation of the scale-up window, a
    # scale-down no lower than the highest of the scale-down window.
    up_window, down_window = up_rules.stabilization_window, down_rules.stabilization_window
    lowest = min([desired, *history.recommendations_after(now - up_window)])
    highest = max([desired, *history.recommendations_after(now - down_window)])
    stabilized = min(max(current, lowest), highest)

    if stabilized > current:
        outcome = _limit_scale_up(settings, up_rules, current, stabilized, history, now)
    elif stabilized < current:
        outcome = _limit_scale_down(settings, down_rules, current, stabilized, history, now)
    else:
        outcome = None

    if outcome is not None:
        return outcome
    if stabilized == desired:
        return _within_range(desired, summary)
    if desired >= current:
        return _Outcome(
            stabilized,
            "ScaleUpStabilized",
            f"recent recommendations were lower than the current one: the lowest in the last "
            f"{_num(up_window)}s is {lowest}, so {stabilized} instead of {desired}",
        )
    return _Outcome(
        stabilized,
        "ScaleDownStabilized",
        f"recent recommendations were higher than the current one: the highest in the last "
        f"{_num(down_window)}s is {highest}, so {stabilized} instead of {desired}",
    )


def _limit_scale_up(
    settings: HorizontalSettings,
    rules: ScalingRules,
    current: int,
    desired: int,
    history: History,
    now: float,
) -> _Outcome | None:
    """The highest count the scale-up rules allow now, or None when `desired` is allowed."""
    limit, detail = _rate_limit(rules, current, history, now, scaling_up=True)
    limit = max(limit, current)  # events of the period may exceed the policy: hold, not shrink
    if settings.max_replicas > limit:
        if desired > limit:
            return _Outcome(
                limit,
                "ScaleUpLimit",
                f"the desired replica count {desired} is increasing faster than the maximum "
                f"scale rate; limited to {limit} ({detail})",
            )
        return None
    return _too_many(desired, settings.max_replicas) if desired > settings.max_replicas else None


def _limit_scale_down(
    settings: HorizontalSettings,
    rules: ScalingRules,
    current: int,
    desired: int,
    history: History,
    now: float,
) -> _Outcome | None:
    """The lowest count the scale-down rules allow now, or None when `desired` is allowed."""
    limit, detail = _rate_limit(rules, current, history, now, scaling_up=False)
    limit = min(limit, current)
    if settings.min_replicas < limit:
        if desired < limit:
            return _Outcome(
                limit,
                "ScaleDownLimit",
                f"the desired replica count {desired} is decreasing faster than the maximum "
                f"scale rate; limited to {limit} ({detail})",
            )
        return None
    return _too_few(desired, settings.min_replicas) if desired < settings.min_replicas else None


def _rate_limit(
    rules: ScalingRules, current: int, history: History, now: float, *, scaling_up: bool
) -> tuple[int, str]:
    """The count the rate policies allow to reach now, and how it was chosen.

    Each policy starts from the count at the start of its period (current minus the net change
    of the events within the period) and allows `value` pods or `value` percent from there.
    """
    direction = "scale-up" if scaling_up else "scale-down"
    if rules.select_policy == "Disabled":
        return current, f"{direction} is disabled by select_policy Disabled"
    allowed = []
    for policy in rules.policies:
        start = current - history.net_change_after(now - policy.period)
        allowed.append((policy, _policy_limit(policy.type, policy.value, start, scaling_up)))
    # "Max" selects the policy allowing the biggest change: the highest count when scaling
    # up, the lowest when scaling down; "Min" the other way round.
    biggest_change = rules.select_policy == "Max"
    pick = max if biggest_change == scaling_up else min
    limit = pick(count for _, count in allowed)
    detail = ", ".join(f"{policy.describe()} allows {count}" for policy, count in allowed)
    return limit, f"{detail}; select_policy {rules.select_policy}"


def _policy_limit(kind: str, value: int, start: int, scaling_up: bool) -> int:
    if kind == "pods":
        return start + value if scaling_up else start - value
    if scaling_up:
        # Rounded up, as the HPA does, or a small count could never grow.
        return math.ceil(Fraction(start * (100 + value), 100))
    return int(Fraction(start * (100 - value), 100))  # truncated toward zero, as the HPA


# --- shared outcomes and wording ------------------------------------------------------------


def _too_many(desired: int, maximum: int) -> _Outcome:
    return _Outcome(
        maximum,
        "TooManyReplicas",
        f"the desired replica count {desired} is more than the maximum replica count {maximum}",
    )


def _too_few(desired: int, minimum: int) -> _Outcome:
    return _Outcome(
        minimum,
        "TooFewReplicas",
        f"the desired replica count {desired} is less than the minimum replica count {minimum}",
    )


def _within_range(desired: int, summary: str) -> _Outcome:
    return _Outcome(
        desired,
        "DesiredWithinRange",
        f"the desired count {desired} is within the acceptable range ({summary})",
    )


def _targets_text(settings: HorizontalSettings) -> str:
    targets = settings.targets
    if not targets:
        return "the policy sets no utilization target"
    return "targets: " + ", ".join(f"{name} {target}%" for name, target in targets.items())


def _num(value: float) -> str:
    """A number for a reason line: at most three decimals, no trailing zeros."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
