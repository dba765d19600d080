"""Vertical recommendations: p90 of usage x 1.15, rounded up to the step, clamped, and left
alone under a 10 % change."""

from __future__ import annotations

import pytest

from rtm.autoscaling import DEFAULT_MEMORY_STEP_BYTES, VerticalSettings, percentile
from rtm.autoscaling import recommend_vertical

Mi = 1024**2
Gi = 1024**3

# The seed's vertical policy: 100m..2000m, 128Mi..4Gi, adjustment_step "100m".
SEED = VerticalSettings(
    min_cpu_millis=100,
    max_cpu_millis=2000,
    min_memory_bytes=128 * Mi,
    max_memory_bytes=4 * Gi,
    cpu_step_millis=100,
)


def cpu_for(samples, current=None, settings=SEED):
    return recommend_vertical(settings, samples, [], current, None).cpu


def memory_for(samples, current=None, settings=SEED):
    return recommend_vertical(settings, [], samples, None, current).memory


# --- percentile ---------------------------------------------------------------------------------


def test_p90_is_the_nearest_rank_sample():
    assert percentile(list(range(1, 11)), 90) == 9
    assert percentile(list(range(1, 21)), 90) == 18
    assert percentile([7], 90) == 7


def test_percentile_does_not_depend_on_sample_order():
    samples = [500, 100, 900, 300, 700, 200, 800, 400, 600, 1000]
    assert percentile(samples, 90) == percentile(sorted(samples), 90) == 900


def test_percentile_needs_samples():
    with pytest.raises(ValueError):
        percentile([], 90)


# --- headroom, step, clamps ---------------------------------------------------------------------


def test_cpu_is_p90_with_headroom_rounded_up_to_the_step():
    samples = [100, 200, 300, 400, 500, 600, 700, 800, 850, 900]  # p90 = 850
    cpu = cpu_for(samples, current=500)
    assert cpu.recommended == 1000  # 850 x 1.15 = 977.5 -> 1000
    assert cpu.changes
    assert cpu.reason == (
        "cpu: p90 850m x 1.15 = 977.5m, up to 1000m (step 100m); current 500m -> 1000m (+100%)"
    )


def test_a_value_already_on_the_step_is_not_rounded_further():
    step_10 = VerticalSettings(100, 2000, 128 * Mi, 4 * Gi, cpu_step_millis=10)
    assert cpu_for([200] * 10, settings=step_10).recommended == 230  # 200 x 1.15 exactly


def test_memory_moves_in_64mi_steps_by_default():
    assert DEFAULT_MEMORY_STEP_BYTES == 64 * Mi
    memory = memory_for([300 * Mi] * 10, current=256 * Mi)
    assert memory.recommended == 384 * Mi  # 345Mi -> 384Mi
    assert memory.reason == (
        "memory: p90 300Mi x 1.15 = 345Mi, up to 384Mi (step 64Mi); current 256Mi -> 384Mi (+50%)"
    )


def test_a_custom_memory_step_is_used():
    settings = VerticalSettings(100, 2000, 128 * Mi, 4 * Gi, memory_step_bytes=100 * Mi)
    assert memory_for([300 * Mi], settings=settings).recommended == 400 * Mi


def test_seed_defect_vertical_policy_bounds_are_applied():
    # The seed ignored its vertical policy; its bounds must hold both ways.
    fine_steps = VerticalSettings(100, 2000, 128 * Mi, 4 * Gi, cpu_step_millis=10)
    low = cpu_for([1, 2, 3], settings=fine_steps)  # 3.45m -> 10m -> min 100m
    assert low.recommended == 100
    assert low.reason == (
        "cpu: p90 3m x 1.15 = 3.5m, up to 10m (step 10m), clamped to [100m, 2000m]: 100m; "
        "no current limit, set 100m"
    )
    assert cpu_for([5000] * 5).recommended == 2000
    assert memory_for([10 * Mi]).recommended == 128 * Mi
    assert memory_for([8 * Gi]).recommended == 4 * Gi


def test_max_wins_when_the_bounds_cross():
    crossed = VerticalSettings(3000, 2000, 128 * Mi, 4 * Gi)
    cpu = cpu_for([100], settings=crossed)
    assert cpu.recommended == 2000
    assert "(max wins)" in cpu.reason


# --- the 10 % rule ---------------------------------------------------------------------------


P90_950 = [950] * 10  # 950 x 1.15 = 1092.5 -> 1100m


def test_a_change_under_ten_percent_is_left_alone():
    cpu = cpu_for(P90_950, current=1020)  # 1100 is +7.8 %
    assert (cpu.changes, cpu.recommended) == (False, 1020)
    assert cpu.reason.endswith("within 10% of the current 1020m (+7.8%), left alone")
    assert cpu_for(P90_950, current=1200).changes is False  # -8.3 %


def test_a_change_of_exactly_ten_percent_is_made():
    cpu = cpu_for(P90_950, current=1000)
    assert (cpu.changes, cpu.recommended) == (True, 1100)
    assert cpu.reason.endswith("current 1000m -> 1100m (+10%)")


def test_a_limit_outside_the_bounds_is_corrected_even_by_a_small_change():
    cpu = cpu_for([5000], current=2100)  # 2000 is only -4.8 %
    assert (cpu.changes, cpu.recommended) == (True, 2000)
    assert "outside [100m, 2000m]" in cpu.reason


def test_without_a_current_limit_the_recommendation_is_always_made():
    cpu = cpu_for(P90_950, current=None)
    assert (cpu.changes, cpu.recommended) == (True, 1100)
    assert cpu.reason.endswith("no current limit, set 1100m")


def test_without_samples_the_current_limit_is_kept():
    result = recommend_vertical(SEED, [], [], 500, 256 * Mi)
    assert (result.cpu.changes, result.cpu.recommended) == (False, 500)
    assert result.memory.reason == "memory: no usage samples; keeping 256Mi"
    assert result.changes is False


def test_each_resource_is_decided_on_its_own():
    result = recommend_vertical(SEED, P90_950, [300 * Mi], 1090, 256 * Mi)
    assert (result.cpu.changes, result.memory.changes) == (False, True)
    assert result.changes is True
    assert result.to_json() == {
        "cpu": {
            "current": 1090,
            "recommended": 1090,
            "changes": False,
            "reason": "cpu: p90 950m x 1.15 = 1092.5m, up to 1100m (step 100m); within 10% of "
            "the current 1090m (+0.9%), left alone",
        },
        "memory": {
            "current": 256 * Mi,
            "recommended": 384 * Mi,
            "changes": True,
            "reason": "memory: p90 300Mi x 1.15 = 345Mi, up to 384Mi (step 64Mi); current "
            "256Mi -> 384Mi (+50%)",
        },
    }


def test_bad_samples_and_settings_are_refused():
    with pytest.raises(ValueError):
        cpu_for([float("nan")])
    with pytest.raises(ValueError):
        cpu_for([-1.0])
    with pytest.raises(ValueError):
        VerticalSettings(100, 2000, 0, Gi, cpu_step_millis=0)


def test_a_bound_left_open_does_not_limit():
    open_ended = VerticalSettings(None, None, 128 * Mi, None)
    assert cpu_for([5000] * 5, settings=open_ended).recommended == 5800  # 5750 -> 5800
    memory = memory_for([10 * Mi], settings=open_ended)
    assert memory.recommended == 128 * Mi
    assert "clamped to [128Mi, unbounded]: 128Mi" in memory.reason
