"""Horizontal decisions with a behavior block: Kubernetes autoscaling/v2 stabilization windows
and rate policies (pods and percent, over several periods, selected by Max, Min or Disabled)."""

from __future__ import annotations

import math

import pytest

from rtm.autoscaling import (
    Behavior,
    Decision,
    History,
    HorizontalSettings,
    RatePolicy,
    ScalingRules,
    decide,
    scaling_rules_with_defaults,
)

NOW = 1_700_000_000.0
NO_WINDOW_DOWN = ScalingRules(0.0, "Max", (RatePolicy("percent", 100, 15.0),))


def policy(behavior: Behavior, *, min_replicas=1, max_replicas=100) -> HorizontalSettings:
    return HorizontalSettings(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu_utilization=50,
        target_memory_utilization=None,
        behavior=behavior,
    )


def up_rules(select="Max", *policies: RatePolicy, window=0.0) -> Behavior:
    return Behavior(scale_up=ScalingRules(window, select, policies), scale_down=NO_WINDOW_DOWN)


def down_rules(select="Max", *policies: RatePolicy, window=0.0) -> Behavior:
    return Behavior(scale_down=ScalingRules(window, select, policies))


def evaluate(settings, current, desired, history=None, now=NOW) -> Decision:
    """Decide with a cpu utilization that proposes exactly `desired` replicas."""
    # Target 50 %; rounded down to six decimals so the proposal's ceiling lands on `desired`.
    cpu = math.floor(50 * desired * 10**6 / current) / 10**6
    decision, _ = decide(settings, current, {"cpu": cpu}, history or History(), now)
    assert decision.proposals == {"cpu": desired}
    return decision


def events(*entries: tuple[float, int, int]) -> History:
    history = History()
    for ago, before, after in entries:
        history = history.record_event(NOW - ago, before, after)
    return history


def recommendations(*entries: tuple[float, int]) -> History:
    history = History()
    for ago, replicas in entries:
        history = history.record_recommendation(NOW - ago, replicas)
    return history


PODS_4_PER_15S = RatePolicy("pods", 4, 15.0)
PERCENT_100_PER_15S = RatePolicy("percent", 100, 15.0)


# --- Kubernetes defaults ----------------------------------------------------------------------


def test_missing_directions_take_kubernetes_defaults_for_scale_up():
    # Default scale-up: max of 4 pods and 100 % per 15 s; from 2 replicas that is 6.
    decision = evaluate(policy(Behavior()), 2, 20)
    assert (decision.target_replicas, decision.condition) == (6, "ScaleUpLimit")
    assert decision.reason == (
        "ScaleUpLimit: the desired replica count 20 is increasing faster than the maximum scale "
        "rate; limited to 6 (pods 4 per 15s allows 6, percent 100% per 15s allows 4; "
        "select_policy Max)"
    )


def test_missing_directions_take_kubernetes_defaults_for_scale_down():
    # Default scale-down: a 300 s window over recommendations, 100 % per 15 s.
    history = recommendations((200, 8))
    held = evaluate(policy(Behavior()), 8, 2, history)
    assert (held.direction, held.condition) == ("no_scale", "ScaleDownStabilized")
    released = evaluate(policy(Behavior()), 8, 2, recommendations((300, 8)))
    assert (released.direction, released.target_replicas) == ("scale_down", 2)


def test_behavior_replaces_the_cooldowns():
    just_scaled = events((1, 2, 4))
    decision = evaluate(policy(up_rules("Max", RatePolicy("pods", 10, 15.0))), 4, 8, just_scaled)
    assert (decision.direction, decision.target_replicas) == ("scale_up", 8)


# --- scale-up policies -------------------------------------------------------------------------


def test_scale_up_select_max_takes_the_policy_allowing_the_most():
    settings = policy(up_rules("Max", PODS_4_PER_15S, PERCENT_100_PER_15S))
    assert evaluate(settings, 10, 40).target_replicas == 20  # percent: 20, pods: 14


def test_scale_up_select_min_takes_the_policy_allowing_the_least():
    settings = policy(up_rules("Min", PODS_4_PER_15S, PERCENT_100_PER_15S))
    decision = evaluate(settings, 10, 40)
    assert (decision.target_replicas, decision.condition) == (14, "ScaleUpLimit")
    assert "select_policy Min" in decision.reason


def test_scale_up_select_disabled_never_scales_up():
    settings = policy(up_rules("Disabled"))
    decision = evaluate(settings, 3, 9)
    assert (decision.direction, decision.target_replicas) == ("no_scale", 3)
    assert decision.reason == (
        "ScaleUpLimit: the desired replica count 9 is increasing faster than the maximum scale "
        "rate; limited to 3 (scale-up is disabled by select_policy Disabled)"
    )


def test_disabled_scale_up_still_lets_scale_down_through():
    settings = policy(up_rules("Disabled"))
    assert evaluate(settings, 6, 2).target_replicas == 2


def test_scale_up_counts_the_events_within_the_policy_period():
    settings = policy(up_rules("Max", RatePolicy("pods", 4, 60.0)))
    # 2 -> 6 thirty seconds ago used the whole allowance of this minute.
    held = evaluate(settings, 6, 20, events((30, 2, 6)))
    assert (held.direction, held.condition) == ("no_scale", "ScaleUpLimit")
    assert "pods 4 per 60s allows 6" in held.reason
    # At exactly 60 s the event has left the period.
    released = evaluate(settings, 6, 20, events((60, 2, 6)))
    assert released.target_replicas == 10


def test_scale_up_policies_with_different_periods():
    pods_per_minute = RatePolicy("pods", 4, 60.0)
    half_per_15s = RatePolicy("percent", 50, 15.0)
    history = events((20, 4, 6))  # within the minute, outside the 15 s
    # pods: from 4 at the start of the minute, 8; percent: from 6, ceil(9) = 9.
    maximum = evaluate(policy(up_rules("Max", pods_per_minute, half_per_15s)), 6, 30, history)
    assert maximum.target_replicas == 9
    minimum = evaluate(policy(up_rules("Min", pods_per_minute, half_per_15s)), 6, 30, history)
    assert minimum.target_replicas == 8


def test_scale_up_period_start_counts_scale_downs_too():
    settings = policy(up_rules("Max", RatePolicy("pods", 2, 60.0)))
    history = events((50, 4, 6), (20, 6, 5))  # net +1 within the minute: it started at 4
    assert evaluate(settings, 5, 10, history).target_replicas == 6


def test_scale_up_percent_rounds_up():
    settings = policy(up_rules("Max", RatePolicy("percent", 50, 15.0)))
    assert evaluate(settings, 3, 10).target_replicas == 5  # ceil(3 * 1.5)
    assert evaluate(settings, 1, 10).target_replicas == 2  # ceil(1.5): never stuck at 1


def test_max_replicas_below_the_rate_limit_names_too_many_replicas():
    settings = policy(up_rules("Max", RatePolicy("pods", 100, 15.0)), max_replicas=10)
    decision = evaluate(settings, 8, 30)
    assert (decision.target_replicas, decision.condition) == (10, "TooManyReplicas")


# --- scale-down policies ---------------------------------------------------------------------


HALF_PER_MINUTE = RatePolicy("percent", 50, 60.0)
ONE_POD_PER_30S = RatePolicy("pods", 1, 30.0)


def test_scale_down_select_max_takes_the_biggest_change():
    decision = evaluate(policy(down_rules("Max", HALF_PER_MINUTE, ONE_POD_PER_30S)), 10, 1)
    assert (decision.target_replicas, decision.condition) == (5, "ScaleDownLimit")
    assert decision.reason == (
        "ScaleDownLimit: the desired replica count 1 is decreasing faster than the maximum "
        "scale rate; limited to 5 (percent 50% per 60s allows 5, pods 1 per 30s allows 9; "
        "select_policy Max)"
    )


def test_scale_down_select_min_takes_the_smallest_change():
    decision = evaluate(policy(down_rules("Min", HALF_PER_MINUTE, ONE_POD_PER_30S)), 10, 1)
    assert decision.target_replicas == 9


def test_scale_down_select_disabled_never_scales_down():
    decision = evaluate(policy(down_rules("Disabled")), 10, 1)
    assert (decision.direction, decision.condition) == ("no_scale", "ScaleDownLimit")
    assert "scale-down is disabled by select_policy Disabled" in decision.reason


def test_scale_down_policies_over_several_periods():
    history = events((40, 10, 5))  # within the minute, outside the 30 s
    # percent: the minute started at 10, so 5 (no further now); pods: from 5, 4.
    maximum = evaluate(policy(down_rules("Max", HALF_PER_MINUTE, ONE_POD_PER_30S)), 5, 1, history)
    assert (maximum.direction, maximum.target_replicas) == ("scale_down", 4)
    minimum = evaluate(policy(down_rules("Min", HALF_PER_MINUTE, ONE_POD_PER_30S)), 5, 1, history)
    assert (minimum.direction, minimum.condition) == ("no_scale", "ScaleDownLimit")


def test_scale_down_percent_truncates_toward_zero():
    settings = policy(down_rules("Max", RatePolicy("percent", 50, 15.0)))
    assert evaluate(settings, 3, 1).target_replicas == 1  # int(1.5); min_replicas allows 1
    assert evaluate(settings, 5, 1).target_replicas == 2  # int(2.5)


def test_min_replicas_above_the_rate_limit_names_too_few_replicas():
    settings = policy(down_rules("Max", RatePolicy("percent", 100, 15.0)), min_replicas=3)
    decision = evaluate(settings, 8, 1)
    assert (decision.target_replicas, decision.condition) == (3, "TooFewReplicas")


# --- stabilization -----------------------------------------------------------------------------


def test_scale_down_uses_the_highest_recommendation_of_its_window():
    settings = policy(down_rules("Max", PERCENT_100_PER_15S, window=300.0))
    history = recommendations((400, 9), (200, 7), (100, 5))
    decision = evaluate(settings, 8, 3, history)
    assert (decision.direction, decision.target_replicas) == ("scale_down", 7)
    assert decision.reason == (
        "ScaleDownStabilized: recent recommendations were higher than the current one: the "
        "highest in the last 300s is 7, so 7 instead of 3"
    )


def test_a_recommendation_exactly_at_the_window_edge_is_outside_it():
    settings = policy(down_rules("Max", PERCENT_100_PER_15S, window=300.0))
    assert evaluate(settings, 8, 3, recommendations((299.9, 8))).direction == "no_scale"
    assert evaluate(settings, 8, 3, recommendations((300.0, 8))).target_replicas == 3


def test_scale_up_uses_the_lowest_recommendation_of_its_window():
    settings = policy(up_rules("Max", RatePolicy("pods", 10, 15.0), window=120.0))
    history = recommendations((60, 4), (30, 6))
    decision = evaluate(settings, 3, 10, history)
    assert (decision.direction, decision.target_replicas) == ("scale_up", 4)
    assert decision.condition == "ScaleUpStabilized"
    assert "the lowest in the last 120s is 4" in decision.reason


def test_scale_up_stabilized_at_the_current_count_does_not_scale():
    settings = policy(up_rules("Max", RatePolicy("pods", 10, 15.0), window=120.0))
    decision = evaluate(settings, 5, 10, recommendations((60, 2)))
    assert (decision.direction, decision.condition) == ("no_scale", "ScaleUpStabilized")


def test_a_rate_limit_after_stabilization_is_the_reason_given():
    settings = policy(down_rules("Max", RatePolicy("pods", 1, 60.0), window=300.0))
    decision = evaluate(settings, 10, 2, recommendations((100, 6)))
    assert (decision.target_replicas, decision.condition) == (9, "ScaleDownLimit")


def test_a_fresh_history_holds_a_scale_down_for_one_window():
    # As the HPA: the first evaluation counts the current size as a recommendation.
    settings = policy(Behavior())
    first, history = decide(settings, 6, {"cpu": 10.0}, History(), NOW)
    assert (first.direction, first.condition) == ("no_scale", "ScaleDownStabilized")
    later, _ = decide(settings, 6, {"cpu": 10.0}, history, NOW + 300)
    assert (later.direction, later.target_replicas) == ("scale_down", 2)


def test_metrics_within_range_say_so():
    decision = evaluate(policy(Behavior()), 4, 6)
    assert decision.condition == "DesiredWithinRange"


@pytest.mark.parametrize("select", ["Max", "Min"])
def test_a_direction_needs_a_policy_unless_disabled(select):
    with pytest.raises(ValueError, match="at least one policy"):
        ScalingRules(0.0, select, ())


def test_fields_left_out_of_a_direction_take_that_directions_defaults():
    down = scaling_rules_with_defaults("scale_down", select_policy="Min")
    assert down == ScalingRules(300.0, "Min", (RatePolicy("percent", 100, 15.0),))
    up = scaling_rules_with_defaults("scale_up", stabilization_window=60.0)
    assert up == ScalingRules(60.0, "Max", (PODS_4_PER_15S, PERCENT_100_PER_15S))
    custom = scaling_rules_with_defaults("scale_up", policies=[RatePolicy("pods", 1, 60.0)])
    assert custom.policies == (RatePolicy("pods", 1, 60.0),)
