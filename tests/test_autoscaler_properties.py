"""Properties of horizontal decisions over generated policies, loads and histories."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from rtm.autoscaling import (
    Behavior,
    History,
    HorizontalSettings,
    RatePolicy,
    ScalingRules,
    decide,
)

T0 = 1_700_000_000.0

utilizations = st.floats(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False)
rate_policies = st.builds(
    RatePolicy,
    type=st.sampled_from(["pods", "percent"]),
    value=st.integers(1, 200),
    period=st.sampled_from([15.0, 30.0, 60.0, 120.0]),
)
scaling_rules = st.builds(
    ScalingRules,
    stabilization_window=st.sampled_from([0.0, 30.0, 120.0, 300.0]),
    select_policy=st.sampled_from(["Max", "Min", "Disabled"]),
    policies=st.lists(rate_policies, min_size=1, max_size=3).map(tuple),
)
behaviors = st.builds(
    Behavior,
    scale_up=st.none() | scaling_rules,
    scale_down=st.none() | scaling_rules,
)


@st.composite
def horizontal_settings(draw, behavior=st.none() | behaviors):
    minimum = draw(st.integers(1, 10))
    return HorizontalSettings(
        min_replicas=minimum,
        max_replicas=draw(st.integers(minimum, 40)),
        target_cpu_utilization=draw(st.none() | st.integers(1, 100)),
        target_memory_utilization=draw(st.none() | st.integers(1, 100)),
        scale_up_cooldown=draw(st.sampled_from([0.0, 60.0, 300.0])),
        scale_down_cooldown=draw(st.sampled_from([0.0, 60.0, 600.0])),
        tolerance=draw(st.sampled_from([0.0, 0.05, 0.1, 0.3])),
        behavior=draw(behavior),
    )


@st.composite
def histories(draw):
    history = History()
    for ago, replicas in draw(st.lists(st.tuples(st.floats(0, 900), st.integers(0, 60)))):
        history = history.record_recommendation(T0 - ago, replicas)
    for ago, before, after in draw(
        st.lists(st.tuples(st.floats(0, 900), st.integers(0, 60), st.integers(0, 60)))
    ):
        history = history.record_event(T0 - ago, before, after)
    return history


@settings(max_examples=300)
@given(
    policy=horizontal_settings(),
    current=st.integers(0, 80),
    cpu=utilizations,
    memory=utilizations,
    history=histories(),
)
def test_the_target_is_always_within_min_and_max(policy, current, cpu, memory, history):
    decision, _ = decide(policy, current, {"cpu": cpu, "memory": memory}, history, T0)
    assert policy.min_replicas <= decision.target_replicas <= policy.max_replicas


@settings(max_examples=200)
@given(
    policy=horizontal_settings(behavior=st.none()),
    current=st.integers(1, 40),
    cpu=utilizations,
)
def test_without_behavior_one_step_reaches_at_most_twice_the_count_or_four(policy, current, cpu):
    current = min(max(current, policy.min_replicas), policy.max_replicas)
    decision, _ = decide(policy, current, {"cpu": cpu, "memory": cpu}, History(), T0)
    assert decision.target_replicas <= max(2 * current, 4, policy.min_replicas)


def allowance(policy: RatePolicy, start: int, scaling_up: bool) -> int:
    """The count a policy lets a workload reach from `start`, written from its definition."""
    if policy.type == "pods":
        return start + policy.value if scaling_up else start - policy.value
    if scaling_up:
        return math.ceil(start * (100 + policy.value) / 100)
    return math.trunc(start * (100 - policy.value) / 100)


def respects(policy: RatePolicy, applied: list[tuple[float, int, int]], index: int) -> bool:
    """Whether the scaling `applied[index]` stayed within `policy`, counting the changes applied
    in the policy's period before it."""
    time, before, after = applied[index]
    earlier = sum(b - a for t, a, b in applied[:index] if t > time - policy.period)
    start = before - earlier
    if after > before:
        return after <= max(allowance(policy, start, True), before)
    return after >= min(allowance(policy, start, False), before)


@settings(max_examples=150, deadline=None)
@given(
    behavior=behaviors,
    loads=st.lists(
        st.tuples(st.floats(1, 40), utilizations), min_size=5, max_size=40
    ),
    start=st.integers(1, 30),
)
def test_with_behavior_no_change_exceeds_the_selected_policy_limit(behavior, loads, start):
    policy = HorizontalSettings(1, 60, 50, None, behavior=behavior)
    history, replicas, now = History(), start, T0
    applied: list[tuple[float, int, int]] = []
    for gap, cpu in loads:
        now += gap
        decision, history = decide(policy, replicas, {"cpu": cpu}, history, now)
        if decision.direction != "no_scale":
            applied.append((now, replicas, decision.target_replicas))
        replicas = decision.target_replicas

    for index, (_, before, after) in enumerate(applied):
        rules = behavior.up if after > before else behavior.down
        assert rules.select_policy != "Disabled"
        checks = [respects(rate, applied, index) for rate in rules.policies]
        # Max: the most permissive policy bounds the change; Min: every policy does.
        assert any(checks) if rules.select_policy == "Max" else all(checks)


@settings(max_examples=200)
@given(history=histories())
def test_history_json_round_trip(history):
    assert History.from_text(history.to_text()) == history
