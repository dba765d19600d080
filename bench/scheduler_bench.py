"""Scheduler benchmark: 10,000 replicas onto 5,000 nodes with node affinity and accounting.

Each algorithm is timed through `schedule()` (the filter, the ring or rotation set-up and the
placements all count), then measured again under tracemalloc for its peak memory. A
straightforward scheduler, written below, is timed in the same run: for every replica it scans
all nodes, re-interpreting the affinity expressions and re-checking resources, then takes the
next feasible node after the last chosen one (round robin). Its placements must equal
`schedule(..., "round_robin")`; the script fails otherwise.

Usage: python bench/scheduler_bench.py [--nodes 5000] [--replicas 10000] [--baseline-replicas N]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
import tracemalloc
from typing import Sequence

from rtm.scheduling import ALGORITHMS, AffinityExpr, Requirements, SchedNode, schedule
from rtm.scheduling.model import parse_int64

GOAL_PLACEMENTS_PER_SECOND = 6_800
GOAL_PEAK_MB = 300
GI = 1024**3
ZONES = ("zone-a", "zone-b", "zone-c", "zone-d", "zone-e")


def build_inventory(count: int, seed: int = 8) -> list[SchedNode]:
    """Mixed node sizes so that many nodes fill up during the run (accounting matters)."""
    rng = random.Random(seed)
    nodes = []
    for i in range(count):
        zone = ZONES[i % len(ZONES)]
        labels = {
            "zone": zone,
            "disk": rng.choice(("ssd", "hdd")),
            "generation": str(rng.randint(1, 5)),
        }
        if rng.random() < 0.1:
            labels["gpu"] = "true"
        nodes.append(
            SchedNode(
                id=f"node-{i:05d}",
                zone=zone,
                cpu_millis=rng.choice((1000, 2000, 4000, 8000, 16000)),
                memory_bytes=rng.choice((2, 4, 8, 16, 32)) * GI,
                labels=labels,
                weight=rng.randint(1, 5),
                connections=rng.randint(0, 20),
                cordoned=rng.random() < 0.01,
            )
        )
    return nodes


REQUIREMENTS = Requirements(
    cpu_millis=500,
    memory_bytes=1 * GI,
    affinity=(
        (
            AffinityExpr("zone", "In", ("zone-a", "zone-b", "zone-c")),
            AffinityExpr("generation", "Gt", ("1",)),
            AffinityExpr("gpu", "DoesNotExist"),
        ),
    ),
    runtime="docker",
)


def naive_matches(labels: dict[str, str], expr: AffinityExpr) -> bool:
    value = labels.get(expr.key)
    if expr.operator == "In":
        return value in expr.values
    if expr.operator == "NotIn":
        return value not in expr.values
    if expr.operator == "Exists":
        return value is not None
    if expr.operator == "DoesNotExist":
        return value is None
    label, bound = parse_int64(value), parse_int64(expr.values[0])
    if label is None or bound is None:
        return False
    return label > bound if expr.operator == "Gt" else label < bound


def naive_round_robin(nodes: Sequence[SchedNode], req: Requirements, replicas: int) -> list[str | None]:
    """The straightforward scheduler: every replica re-filters the whole inventory."""
    cpu_free = [n.cpu_millis for n in nodes]
    memory_free = [n.memory_bytes for n in nodes]
    last = -1
    chosen_ids: list[str | None] = []
    for _ in range(replicas):
        feasible = [
            i
            for i, node in enumerate(nodes)
            if not node.cordoned
            and (req.runtime is None or req.runtime in node.runtimes)
            and (not req.affinity or any(all(naive_matches(node.labels, e) for e in term) for term in req.affinity))
            and cpu_free[i] >= req.cpu_millis
            and memory_free[i] >= req.memory_bytes
        ]
        if not feasible:
            chosen_ids.append(None)
            continue
        chosen = next((i for i in feasible if i > last), feasible[0])
        cpu_free[chosen] -= req.cpu_millis
        memory_free[chosen] -= req.memory_bytes
        last = chosen
        chosen_ids.append(nodes[chosen].id)
    return chosen_ids


def clients(count: int) -> list[str]:
    return [f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(count)]


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def peak_traced_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--replicas", type=int, default=10_000)
    parser.add_argument(
        "--baseline-replicas",
        type=int,
        default=None,
        help="replicas for the straightforward scan (default: all; it is slow)",
    )
    args = parser.parse_args(argv)
    nodes = build_inventory(args.nodes)
    keys = clients(args.replicas)
    eligible = sum(
        1
        for n in nodes
        if not n.cordoned and any(all(naive_matches(n.labels, e) for e in t) for t in REQUIREMENTS.affinity)
    )
    slots = sum(
        min(n.cpu_millis // REQUIREMENTS.cpu_millis, n.memory_bytes // REQUIREMENTS.memory_bytes)
        for n in nodes
        if not n.cordoned and any(all(naive_matches(n.labels, e) for e in t) for t in REQUIREMENTS.affinity)
    )
    print(f"{args.replicas} replicas (500m, 1Gi, one affinity term of 3 expressions) onto {args.nodes} nodes")
    print(f"nodes passing affinity and not cordoned: {eligible}; replica slots on them: {slots}")

    baseline_replicas = args.baseline_replicas or args.replicas
    baseline, baseline_seconds = timed(lambda: naive_round_robin(nodes, REQUIREMENTS, baseline_replicas))
    baseline_rate = baseline_replicas / baseline_seconds

    timings = {}
    for algorithm in ALGORITHMS:
        result, seconds = timed(lambda: schedule(nodes, REQUIREMENTS, args.replicas, algorithm, keys))
        if algorithm == "round_robin":
            fast = [p.node for p in result.placements[:baseline_replicas]]
            if fast != baseline:
                print("round_robin placements differ from the straightforward scan", file=sys.stderr)
                return 2
        timings[algorithm] = (sum(1 for p in result.placements if p.node is not None), seconds)
    # ru_maxrss before tracemalloc, whose own bookkeeping would inflate it
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rows = []
    ok = True
    for algorithm, (placed, seconds) in timings.items():
        peak = peak_traced_mb(lambda: schedule(nodes, REQUIREMENTS, args.replicas, algorithm, keys))
        rate = args.replicas / seconds
        meets = rate >= GOAL_PLACEMENTS_PER_SECOND and peak < GOAL_PEAK_MB
        ok &= meets
        rows.append((algorithm, placed, seconds, rate, rate / baseline_rate, peak, "yes" if meets else "NO"))

    header = ("algorithm", "placed", "seconds", "replicas/s", "x baseline", "peak MB", "goal met")
    print()
    print(f"{header[0]:<22}{header[1]:>8}{header[2]:>10}{header[3]:>13}{header[4]:>12}{header[5]:>9}{header[6]:>10}")
    print(
        f"{'baseline (scan)':<22}{sum(1 for b in baseline if b):>8}{baseline_seconds:>10.2f}"
        f"{baseline_rate:>13,.0f}{1:>12.1f}{'':>9}{'':>10}"
    )
    for name, placed, seconds, rate, ratio, peak, meets in rows:
        print(f"{name:<22}{placed:>8}{seconds:>10.3f}{rate:>13,.0f}{ratio:>12.1f}{peak:>9.1f}{meets:>10}")
    if baseline_replicas != args.replicas:
        print(f"(baseline timed on the first {baseline_replicas} replicas; ratios compare rates)")
    print(f"\nprocess peak RSS over the timed runs (baseline and interpreter included): {maxrss_mb:.0f} MB")
    print("peak MB: tracemalloc's peak of Python allocations during one schedule() call")
    print(f"goal: >= {GOAL_PLACEMENTS_PER_SECOND:,} replicas/s and < {GOAL_PEAK_MB} MB per algorithm")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
