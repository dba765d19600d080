"""Smoke run of bench/scheduler_bench.py on a small inventory: it runs end to end, and its
straightforward baseline agrees with the scheduler's round robin (exit status 2 if not)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "scheduler_bench.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("scheduler_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_runs_and_its_baseline_matches_round_robin(capsys):
    status = load_bench().main(["--nodes", "300", "--replicas", "900"])
    out = capsys.readouterr().out
    assert status in (0, 1)  # 1 would only mean a speed or memory goal was missed
    for algorithm in ("round_robin", "least_connections", "weighted_round_robin", "ip_hash"):
        assert algorithm in out
    assert "baseline (scan)" in out


def test_bench_baseline_is_the_same_round_robin_when_nodes_fill_up():
    bench = load_bench()
    nodes = bench.build_inventory(200, seed=1)
    from rtm.scheduling import schedule

    fast = schedule(nodes, bench.REQUIREMENTS, 1200, "round_robin")
    assert [p.node for p in fast.placements] == bench.naive_round_robin(nodes, bench.REQUIREMENTS, 1200)
    assert any(p.node is None for p in fast.placements)  # the run went past exhaustion
