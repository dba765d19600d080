"""Horizontal decisions without a behavior block: proportional proposals, tolerance, the largest
proposal winning, clamping, the HPA's default scale-up limit and the policy's cooldowns."""

from __future__ import annotations

import pytest

from rtm.autoscaling import Decision, History, HorizontalSettings, decide, utilization_from_usage

T0 = 1_700_000_000.0


def policy(**overrides) -> HorizontalSettings:
    values = dict(
        min_replicas=1,
        max_replicas=10,
        target_cpu_utilization=70,
        target_memory_utilization=80,
        scale_up_cooldown=300.0,
        scale_down_cooldown=600.0,
    )
    values.update(overrides)
    return HorizontalSettings(**values)


def decision_for(settings, current, history=None, now=T0, **metrics) -> Decision:
    decision, _ = decide(settings, current, metrics, history or History(), now)
    return decision


# --- proportional proposals ---------------------------------------------------------------


def test_high_cpu_scales_up_proportionally():
    decision = decision_for(policy(max_replicas=20), 4, cpu=105)  # 4 * 105 / 70 = 6
    assert (decision.direction, decision.target_replicas) == ("scale_up", 6)
    assert decision.proposals == {"cpu": 6}
    assert decision.condition == "DesiredWithinRange"


def test_low_cpu_scales_down_proportionally():
    decision = decision_for(policy(), 6, cpu=35)  # 6 * 35 / 70 = 3
    assert (decision.direction, decision.target_replicas) == ("scale_down", 3)


def test_a_fractional_proposal_is_rounded_up():
    decision = decision_for(policy(), 3, cpu=80)  # 3 * 80 / 70 = 3.43
    assert decision.target_replicas == 4


def test_decimal_utilizations_are_accepted():
    decision = decision_for(policy(), 4, cpu=87.5)  # 4 * 87.5 / 70 = 5 exactly
    assert decision.target_replicas == 5


# --- tolerance ----------------------------------------------------------------------------


def test_utilization_exactly_at_the_upper_tolerance_keeps_the_count():
    # Naive float arithmetic puts 77 / 70 just past 0.1; the decision must not.
    assert abs(1 - 77.0 / 70) > 0.1
    decision = decision_for(policy(), 10, cpu=77.0)
    assert (decision.direction, decision.target_replicas) == ("no_scale", 10)
    assert decision.proposals == {"cpu": 10}
    assert "within tolerance" in decision.reason


def test_utilization_just_past_the_upper_tolerance_scales():
    decision = decision_for(policy(max_replicas=20), 10, cpu=77.01)  # 11.001 -> 12
    assert (decision.direction, decision.target_replicas) == ("scale_up", 12)


def test_utilization_exactly_at_the_lower_tolerance_keeps_the_count():
    assert decision_for(policy(), 10, cpu=63).direction == "no_scale"
    decision = decision_for(policy(), 10, cpu=62.9)  # 8.99 -> 9
    assert (decision.direction, decision.target_replicas) == ("scale_down", 9)


def test_tolerance_is_configurable():
    assert decision_for(policy(tolerance=0.2), 10, cpu=84).direction == "no_scale"
    assert decision_for(policy(tolerance=0.0, max_replicas=20), 10, cpu=71).target_replicas == 11


# --- several metrics ----------------------------------------------------------------------


def test_seed_defect_low_cpu_does_not_overrule_high_memory():
    # The seed checked CPU first and scaled down on low CPU while memory was over its target.
    decision = decision_for(policy(), 3, cpu=10, memory=160)
    assert decision.proposals == {"cpu": 1, "memory": 6}
    assert (decision.direction, decision.target_replicas) == ("scale_up", 6)


def test_the_largest_proposal_wins_when_both_scale_down():
    decision = decision_for(policy(), 8, cpu=14, memory=40)  # cpu -> 2, memory -> 4
    assert decision.proposals == {"cpu": 2, "memory": 4}
    assert decision.target_replicas == 4


def test_a_metric_without_a_target_is_ignored():
    settings = policy(target_memory_utilization=None)
    decision = decision_for(settings, 4, cpu=70, memory=500)
    assert decision.proposals == {"cpu": 4}
    assert decision.direction == "no_scale"


def test_no_metric_with_a_target_means_no_scaling_and_says_why():
    settings = policy(target_cpu_utilization=None)
    decision = decision_for(settings, 4, cpu=500)
    assert (decision.direction, decision.target_replicas) == ("no_scale", 4)
    assert decision.proposals == {}
    assert decision.reason == (
        "FailedGetResourceMetric: no utilization was given for a metric with a target "
        "(targets: memory 80%); keeping 4 replicas"
    )


# --- clamping and the range -----------------------------------------------------------------


def test_a_proposal_above_max_is_clamped_to_max():
    decision = decision_for(policy(), 8, cpu=140)  # 16; the default limit 16 is above max
    assert (decision.target_replicas, decision.condition) == (10, "TooManyReplicas")
    assert decision.reason == (
        "TooManyReplicas: the desired replica count 16 is more than the maximum replica count 10"
    )


def test_a_proposal_below_min_is_clamped_to_min():
    decision = decision_for(policy(min_replicas=3), 4, cpu=10)  # ceil(0.57) = 1
    assert (decision.direction, decision.target_replicas) == ("scale_down", 3)
    assert decision.reason == (
        "TooFewReplicas: the desired replica count 1 is less than the minimum replica count 3"
    )


def test_a_count_above_max_is_brought_back_before_metrics_are_read():
    decision, history = decide(policy(), 12, {"cpu": 300.0}, History(), T0)
    assert (decision.direction, decision.target_replicas) == ("scale_down", 10)
    assert decision.condition == "TooManyReplicas"
    assert decision.proposals == {}
    assert "current replica count 12" in decision.reason
    # No metric recommendation was made; only the initial one (the current count).
    assert [rec.replicas for rec in history.recommendations] == [12]


def test_a_count_below_min_is_brought_back_even_during_a_cooldown():
    recent = History().record_event(T0 - 10, 4, 1)
    decision = decision_for(policy(min_replicas=2), 0, history=recent, cpu=1)
    assert (decision.direction, decision.target_replicas) == ("scale_up", 2)
    assert decision.reason == (
        "TooFewReplicas: the current replica count 0 is less than the minimum replica count 2; "
        "brought back before reading metrics"
    )


# --- the default scale-up limit ---------------------------------------------------------------


def test_one_step_reaches_at_most_twice_the_current_count():
    decision = decision_for(policy(max_replicas=50), 3, cpu=700)  # wants 30
    assert (decision.target_replicas, decision.condition) == (6, "ScaleUpLimit")
    assert decision.reason == (
        "ScaleUpLimit: the desired replica count 30 is increasing faster than the maximum "
        "scale rate; limited to 6 = max(2 x 3, 4)"
    )


def test_small_counts_may_always_grow_to_four():
    decision = decision_for(policy(max_replicas=50), 1, cpu=700)  # wants 10
    assert (decision.target_replicas, decision.condition) == (4, "ScaleUpLimit")


def test_max_replicas_below_the_scale_up_limit_names_too_many_replicas():
    decision = decision_for(policy(max_replicas=5), 3, cpu=700)
    assert (decision.target_replicas, decision.condition) == (5, "TooManyReplicas")


def test_seed_defect_steps_are_not_limited_to_one_replica():
    # The seed moved by +1/-1 whatever the load.
    assert decision_for(policy(), 4, cpu=140).target_replicas == 8
    assert decision_for(policy(), 10, cpu=14).target_replicas == 2


# --- cooldowns ------------------------------------------------------------------------------


def after_scale_up_at_t0() -> History:
    return History().record_event(T0, 2, 4)


def test_scale_up_waits_for_the_scale_up_cooldown():
    decision = decision_for(policy(), 4, history=after_scale_up_at_t0(), now=T0 + 299.5, cpu=105)
    assert (decision.direction, decision.target_replicas) == ("no_scale", 4)
    assert decision.condition == "ScaleUpCooldown"
    assert decision.reason == (
        "ScaleUpCooldown: the last scaling event (2 -> 4) was 299.5s ago; scaling up to 6 waits "
        "0.5s more (scale_up_cooldown 300s)"
    )
    # The recommendation stays the metrics' one even though nothing is done.
    assert decision.proposals == {"cpu": 6}


def test_scale_up_is_allowed_once_the_scale_up_cooldown_has_passed():
    decision = decision_for(policy(), 4, history=after_scale_up_at_t0(), now=T0 + 300, cpu=105)
    assert (decision.direction, decision.target_replicas) == ("scale_up", 6)


def test_scale_down_waits_for_the_scale_down_cooldown():
    history = after_scale_up_at_t0()
    inside = decision_for(policy(), 4, history=history, now=T0 + 599, cpu=35)
    assert (inside.direction, inside.condition) == ("no_scale", "ScaleDownCooldown")
    assert "waits 1s more (scale_down_cooldown 600s)" in inside.reason
    outside = decision_for(policy(), 4, history=history, now=T0 + 600, cpu=35)
    assert (outside.direction, outside.target_replicas) == ("scale_down", 2)


def test_seed_defect_cooldown_follows_the_scaling_direction_not_the_replica_count():
    # The seed guessed the last direction from the count (more than one replica: "it was a
    # scale-up"), so after scaling down to 1 it made a scale-up wait the 600 s scale-down
    # cooldown, and after reaching 4 it let a scale-down through after 300 s.
    down_to_one = History().record_event(T0, 4, 1)
    up = decision_for(policy(), 1, history=down_to_one, now=T0 + 300, cpu=140)
    assert (up.direction, up.target_replicas) == ("scale_up", 2)

    up_to_four = History().record_event(T0, 2, 4)
    down = decision_for(policy(), 4, history=up_to_four, now=T0 + 400, cpu=35)
    assert (down.direction, down.condition) == ("no_scale", "ScaleDownCooldown")


def test_cooldown_counts_from_the_latest_event_whatever_the_order_recorded():
    history = History().record_event(T0, 2, 4).record_event(T0 - 1000, 1, 2)
    decision = decision_for(policy(), 4, history=history, now=T0 + 100, cpu=105)
    assert decision.condition == "ScaleUpCooldown"


def test_no_change_is_not_reported_as_a_cooldown():
    decision = decision_for(policy(), 4, history=after_scale_up_at_t0(), now=T0 + 1, cpu=70)
    assert decision.condition == "DesiredWithinRange"


# --- the decision value and the history it returns ---------------------------------------------


def test_decision_json_has_exactly_the_documented_keys():
    decision = decision_for(policy(), 3, cpu=10, memory=160)
    assert decision.to_json() == {
        "direction": "scale_up",
        "current_replicas": 3,
        "target_replicas": 6,
        "reason": (
            "DesiredWithinRange: the desired count 6 is within the acceptable range "
            "(cpu 10% of target 70% proposes 1, memory 160% of target 80% proposes 6)"
        ),
        "proposals": {"cpu": 1, "memory": 6},
    }


def test_a_metric_not_given_is_absent_from_the_proposals():
    assert "memory" not in decision_for(policy(), 3, cpu=140).to_json()["proposals"]


def test_a_no_scale_decision_targets_the_current_count():
    decision = decision_for(policy(), 5, cpu=70, memory=80)
    assert decision.to_json()["target_replicas"] == 5
    assert decision.reason == (
        "DesiredWithinRange: the desired count 5 is within the acceptable range (cpu 70% of "
        "target 70% is within tolerance, keeps 5, memory 80% of target 80% is within "
        "tolerance, keeps 5)"
    )


def test_decide_records_the_recommendation_and_the_scaling_event():
    decision, history = decide(policy(max_replicas=20), 4, {"cpu": 105.0}, History(), T0)
    assert [(r.time, r.replicas) for r in history.recommendations] == [(T0, 4), (T0, 6)]
    assert [(e.time, e.from_replicas, e.to_replicas) for e in history.events] == [(T0, 4, 6)]


def test_without_assume_applied_the_caller_records_the_event_after_success():
    decision, history = decide(policy(), 4, {"cpu": 105.0}, History(), T0, assume_applied=False)
    assert history.events == ()
    assert history.recommendations[-1].replicas == 6
    history = history.record_event(T0, decision.current_replicas, decision.target_replicas)
    assert history.last_event().to_replicas == 6


def test_the_returned_history_drives_the_next_cooldown():
    settings = policy()
    _, history = decide(settings, 2, {"cpu": 140.0}, History(), T0)
    decision, _ = decide(settings, 4, {"cpu": 140.0}, history, T0 + 60)
    assert decision.condition == "ScaleUpCooldown"


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError):
        decide(policy(), -1, {"cpu": 50.0}, History(), T0)
    with pytest.raises(ValueError):
        decide(policy(), 2, {"cpu": -5.0}, History(), T0)
    with pytest.raises(ValueError):
        decide(policy(), 2, {"cpu": float("nan")}, History(), T0)


def test_impossible_settings_are_refused():
    with pytest.raises(ValueError, match="max_replicas"):
        policy(min_replicas=5, max_replicas=3)
    with pytest.raises(ValueError, match="min_replicas"):
        policy(min_replicas=0)
    with pytest.raises(ValueError, match="target_cpu_utilization"):
        policy(target_cpu_utilization=0)


# --- utilization from usage -------------------------------------------------------------------


def test_utilization_is_total_usage_over_total_request():
    # Two replicas using 50m and 150m of 100m requests each: 100 %, not the mean of ratios.
    assert utilization_from_usage([50, 150], [100, 100]) == 100.0
    assert utilization_from_usage([30, 30], [100, 200]) == 20.0


def test_utilization_needs_matching_positive_requests():
    with pytest.raises(ValueError):
        utilization_from_usage([10], [100, 100])
    with pytest.raises(ValueError):
        utilization_from_usage([], [])
    with pytest.raises(ValueError):
        utilization_from_usage([10], [0])
