"""Probe and failover state machines, to the second with a clock the test controls."""

from __future__ import annotations

import pytest

from rtm.loadbalancer import Member, render_upstream
from rtm.probes import ProbeTiming, ReplicaProbes
from rtm.recovery import Detector, RestartBudget

LIVE = ProbeTiming(interval=10, timeout=1, retries=3, initial_delay=5)
READY = ProbeTiming(interval=5, timeout=1, retries=2, initial_delay=0)
STARTUP = ProbeTiming(interval=2, timeout=1, retries=4, initial_delay=0)


def kinds(transitions) -> list[str]:
    return [t.kind for t in transitions]


def test_liveness_runs_after_initial_delay_then_every_interval() -> None:
    replica = ReplicaProbes.create(100.0, {"liveness": LIVE})
    assert replica.due(104.9) == []
    assert replica.due(105.0) == ["liveness"]
    replica, _ = replica.record("liveness", True, 105.0)
    assert replica.due(114.9) == [] and replica.due(115.0) == ["liveness"]


def test_liveness_restarts_after_retries_consecutive_failures() -> None:
    replica = ReplicaProbes.create(0.0, {"liveness": LIVE})
    replica, t1 = replica.record("liveness", False, 5)
    replica, t2 = replica.record("liveness", False, 15)
    assert "restart" not in kinds(t1 + t2)
    replica, t3 = replica.record("liveness", False, 25)
    assert kinds(t3) == ["probe_failed", "restart"]


def test_a_success_resets_the_failure_count() -> None:
    replica = ReplicaProbes.create(0.0, {"liveness": LIVE})
    for now, ok in ((5, False), (15, False), (25, True), (35, False), (45, False)):
        replica, transitions = replica.record("liveness", ok, now)
        assert "restart" not in kinds(transitions)


def test_startup_probe_gates_liveness_and_readiness() -> None:
    replica = ReplicaProbes.create(0.0, {"startup": STARTUP, "liveness": LIVE, "readiness": READY})
    assert replica.due(100) == ["startup"] and not replica.ready
    replica, transitions = replica.record("startup", True, 100)
    assert "started" in kinds(transitions)
    assert set(replica.due(100)) == {"liveness", "readiness"}
    assert not replica.ready  # ready only after readiness passes


def test_startup_failure_budget_is_retries_times_interval() -> None:
    replica = ReplicaProbes.create(0.0, {"startup": STARTUP, "liveness": LIVE})
    results = []
    for i in range(4):
        replica, transitions = replica.record("startup", False, i * STARTUP.interval)
        results.append(kinds(transitions))
    assert results[-1] == ["probe_failed", "restart"] and all("restart" not in r for r in results[:-1])


def test_readiness_failure_takes_out_of_rotation_without_restart_and_recovers() -> None:
    replica = ReplicaProbes.create(0.0, {"readiness": READY})
    replica, t = replica.record("readiness", True, 0)
    assert replica.ready and "ready" in kinds(t)
    replica, t = replica.record("readiness", False, 5)
    assert replica.ready  # one failure of two allowed
    replica, t = replica.record("readiness", False, 10)
    assert not replica.ready and "unready" in kinds(t) and "restart" not in kinds(t)
    replica, t = replica.record("readiness", True, 15)
    assert replica.ready and "ready" in kinds(t)


def test_without_readiness_probe_a_started_replica_is_ready() -> None:
    assert ReplicaProbes.create(0.0, {"liveness": LIVE}).ready
    assert not ReplicaProbes.create(0.0, {"startup": STARTUP}).ready


def test_docker_unhealthy_counts_only_without_a_liveness_probe() -> None:
    assert kinds(ReplicaProbes.create(0.0, {"readiness": READY}).docker_health("unhealthy")) == ["restart"]
    assert ReplicaProbes.create(0.0, {"liveness": LIVE}).docker_health("unhealthy") == []
    assert ReplicaProbes.create(0.0, {}).docker_health("healthy") == []


def test_detector_declares_failure_after_retries_and_recovery_after_one_success() -> None:
    detector = Detector(interval=10, timeout=30, retries=3)
    changes = []
    for now, ok in ((0, False), (10, False), (20, False), (30, False), (40, True)):
        detector, change = detector.record(ok, now)
        changes.append(change)
    assert changes == [None, None, "failed", None, "recovered"]
    assert not detector.due(49) and detector.due(50)


def test_restart_backoff_doubles_then_gives_up() -> None:
    budget = RestartBudget(auto_restart=True, max_attempts=3, restart_delay=30)
    decisions = []
    now = 0.0
    for _ in range(4):
        budget, decision = budget.on_failure(now)
        decisions.append((decision.action, decision.at - now))
        now = decision.at + 1
    assert decisions[:3] == [("restart", 30), ("restart", 60), ("restart", 120)]
    assert decisions[3][0] == "give_up"


def test_backoff_is_capped_and_forgiven_after_ten_clean_minutes() -> None:
    budget = RestartBudget(auto_restart=True, max_attempts=20, restart_delay=100)
    assert budget.delay(5) == 300
    budget, first = budget.on_failure(0)
    budget, _ = budget.on_failure(first.at + 700)  # ran 700 s cleanly after the restart
    assert budget.attempts == 1


def test_auto_restart_off() -> None:
    _, decision = RestartBudget(auto_restart=False, max_attempts=3, restart_delay=1).on_failure(0)
    assert decision.action == "disabled"


@pytest.mark.parametrize(
    "algorithm,expected",
    [
        ("round_robin", None),
        ("least_connections", "least_conn;"),
        ("ip_hash", "hash $remote_addr consistent;"),
    ],
)
def test_upstream_directives(algorithm: str, expected: str | None) -> None:
    text = render_upstream("web", algorithm, [Member("172.17.0.3:8080"), Member("172.17.0.2:8080")])
    assert "upstream rtm_web {" in text
    assert text.index("172.17.0.2") < text.index("172.17.0.3")  # stable order: no reload churn
    if expected:
        assert f"    {expected}" in text
    else:
        assert "least_conn" not in text and "hash " not in text


def test_weighted_upstream_and_empty_upstream() -> None:
    assert "server 10.0.0.1:80 weight=5;" in render_upstream("web", "weighted_round_robin", [Member("10.0.0.1:80", 5)])
    assert "down;" in render_upstream("web", "round_robin", [])
