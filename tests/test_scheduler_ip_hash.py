"""ip_hash as consistent hashing: the same key lands on the same node in every process, and
removing a node moves only the keys it held."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rtm.scheduling import Requirements, SchedNode, schedule

REQ = Requirements(10, 1)
KEYS = [f"10.{i // 256}.{i % 256}.7" for i in range(2000)]


def roomy(id: str, weight: int = 1, cpu: int = 10**9) -> SchedNode:
    return SchedNode(id, "z", cpu, 10**12, {"zone": "z"}, weight=weight)


def owners(nodes, keys=KEYS) -> list[str | None]:
    return [p.node for p in schedule(nodes, REQ, len(keys), "ip_hash", keys).placements]


NODES = [roomy(f"node-{i}", weight=1 + i % 3) for i in range(12)]

CHILD = """
import json, sys
from rtm.scheduling import Requirements, SchedNode, schedule
nodes = [SchedNode(f"node-{i}", "z", 10**9, 10**12, {"zone": "z"}, weight=1 + i % 3) for i in range(12)]
keys = [f"10.{i // 256}.{i % 256}.7" for i in range(2000)]
result = schedule(nodes, Requirements(10, 1), len(keys), "ip_hash", keys)
json.dump([p.node for p in result.placements], sys.stdout)
"""


def test_the_same_key_lands_on_the_same_node_in_other_processes():
    expected = owners(NODES)
    for hash_seed in ("1", "2"):  # a different str hash salt in each interpreter
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        child = subprocess.run(
            [sys.executable, "-c", CHILD],
            env=env,
            cwd=Path(__file__).resolve().parents[1],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(child.stdout) == expected


def test_removing_a_node_moves_only_the_keys_it_held():
    before = owners(NODES)
    removed = "node-4"
    after = owners([n for n in NODES if n.id != removed])
    moved = [(b, a) for b, a in zip(before, after) if b != a]
    assert moved, "the removed node held some keys"
    assert all(b == removed for b, _ in moved)
    assert len(moved) == before.count(removed)
    # its keys spread over the other nodes instead of piling onto one
    assert len({a for _, a in moved}) > 3


def test_adding_a_node_takes_keys_only_onto_itself():
    before = owners(NODES)
    after = owners([*NODES, roomy("node-new")])
    assert {a for b, a in zip(before, after) if a != b} == {"node-new"}


def test_inventory_order_does_not_matter():
    shuffled = NODES[:]
    random.Random(3).shuffle(shuffled)
    assert owners(shuffled) == owners(NODES)


def test_keys_spread_in_proportion_to_weight():
    counts = Counter(owners([roomy("light", weight=1), roomy("heavy", weight=3)]))
    assert 0.15 < counts["light"] / len(KEYS) < 0.35


def test_a_full_node_hands_the_replica_to_the_next_node_on_the_ring():
    # every node takes exactly one replica; one key asked for three times
    small = [roomy(f"node-{i}", cpu=10) for i in range(6)]
    first, second, third = owners(small, ["10.1.2.3"] * 3)
    # the next node on the ring is where the key goes once its node is gone
    assert second == owners([n for n in small if n.id != first], ["10.1.2.3"])[0]
    assert third == owners([n for n in small if n.id not in (first, second)], ["10.1.2.3"])[0]
    assert len({first, second, third}) == 3
