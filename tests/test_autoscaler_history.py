"""The autoscaler history: recording, JSON round trip, refusing foreign files, pruning."""

from __future__ import annotations

import json

import pytest

from rtm.autoscaling import (
    Behavior,
    History,
    HistoryFormatError,
    HorizontalSettings,
    RatePolicy,
    ScalingRules,
    decide,
)

T0 = 1_700_000_000.0


def sample_history() -> History:
    return (
        History()
        .record_recommendation(T0, 3)
        .record_recommendation(T0 + 15.5, 5)
        .record_event(T0 + 15.5, 3, 5)
        .record_event(T0 + 600, 5, 2)
    )


def test_json_round_trip_keeps_every_entry():
    history = sample_history()
    assert History.from_json(history.to_json()) == history
    assert History.from_text(history.to_text()) == history


def test_json_format_is_the_documented_one():
    assert History().record_recommendation(T0, 3).record_event(T0, 3, 4).to_json() == {
        "format": "rtm-autoscaler-history",
        "version": 1,
        "recommendations": [{"time": T0, "replicas": 3}],
        "events": [{"time": T0, "from_replicas": 3, "to_replicas": 4}],
    }


def test_a_state_file_survives_json_dump_and_load():
    text = json.dumps(sample_history().to_json())
    assert History.from_json(json.loads(text)) == sample_history()


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "is a JSON object"),
        ('{"version": 1}', "not an autoscaler history"),
        ('{"format": "rtm-autoscaler-history", "version": 9}', "unsupported"),
        (
            '{"format": "rtm-autoscaler-history", "version": 1, "events": {}}',
            '"events" must be a list',
        ),
        (
            '{"format": "rtm-autoscaler-history", "version": 1, '
            '"recommendations": [{"time": "noon", "replicas": 2}]}',
            'numeric "time"',
        ),
        (
            '{"format": "rtm-autoscaler-history", "version": 1, '
            '"events": [{"time": 1, "from_replicas": 2, "to_replicas": -1}]}',
            '"to_replicas" must be a replica count',
        ),
    ],
)
def test_a_foreign_or_damaged_file_is_refused_with_a_reason(text, message):
    with pytest.raises(HistoryFormatError, match=message):
        History.from_text(text)


def test_an_event_that_changes_nothing_is_not_recorded():
    assert History().record_event(T0, 4, 4) == History()


def test_event_direction_and_change():
    up, down = sample_history().events
    assert (up.direction, up.change) == ("scale_up", 2)
    assert (down.direction, down.change) == ("scale_down", -3)


def test_pruning_drops_entries_at_or_before_the_horizon():
    history = (
        History()
        .record_recommendation(T0 - 300, 2)
        .record_recommendation(T0 - 299, 3)
        .record_recommendation(T0, 4)
        .record_event(T0 - 301, 1, 2)
        .record_event(T0 - 100, 2, 4)
    )
    pruned = history.pruned(T0, 300)
    assert [r.replicas for r in pruned.recommendations] == [3, 4]
    assert [e.to_replicas for e in pruned.events] == [4]


def test_pruning_keeps_the_newest_entry_of_each_kind():
    history = History().record_recommendation(T0 - 5000, 7).record_event(T0 - 5000, 3, 7)
    assert history.pruned(T0, 300) == history


def test_repeated_decisions_keep_the_history_bounded():
    behavior = Behavior(
        scale_up=ScalingRules(60.0, "Max", (RatePolicy("pods", 1, 120.0),)),
        scale_down=ScalingRules(300.0, "Max", (RatePolicy("percent", 10, 60.0),)),
    )
    settings = HorizontalSettings(1, 50, 60, None, 100.0, 200.0, behavior=behavior)
    assert settings.history_horizon == 300.0
    history, replicas, scalings = History(), 5, 0
    for step in range(400):  # 100 minutes, evaluated every 15 s, load going up and down
        now = T0 + 15 * step
        cpu = 120.0 if (step // 40) % 2 == 0 else 10.0
        decision, history = decide(settings, replicas, {"cpu": cpu}, history, now)
        replicas = decision.target_replicas
        scalings += decision.direction != "no_scale"
    assert scalings > 20
    # Only what the longest look-back (300 s: 20 evaluations) can see is kept, plus the newest.
    assert len(history.recommendations) <= 21
    assert all(r.time > now - 300 for r in history.recommendations)
    assert len(history.events) <= 21


def test_the_horizon_is_what_the_policy_looks_back_over():
    assert HorizontalSettings(1, 5, 70, None, 300.0, 600.0).history_horizon == 600.0
    # With behavior the cooldowns are not used; Kubernetes' defaults look back 300 s.
    with_behavior = HorizontalSettings(1, 5, 70, None, 900.0, 900.0, behavior=Behavior())
    assert with_behavior.history_horizon == 300.0
