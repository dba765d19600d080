"""Property tests: on random small inventories the scheduler equals a literal, one-replica-at-
a-time reference (nginx's loops written out, a sorted ketama ring walked point by point), and
never over-commits a node or places a replica where it does not belong."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from hashlib import md5

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtm.scheduling import ALGORITHMS, AffinityExpr, Requirements, SchedNode, schedule

KEYS = ("zone", "gen", "disk")
VALUES = ("a", "b", "1", "3", "7", "x")


# --- an independent, straightforward reference --------------------------------------------


def expr_matches(labels, expr: AffinityExpr) -> bool:
    value = labels.get(expr.key)
    if expr.operator == "In":
        return value is not None and value in expr.values
    if expr.operator == "NotIn":
        return value is None or value not in expr.values
    if expr.operator == "Exists":
        return value is not None
    if expr.operator == "DoesNotExist":
        return value is None
    if value is None or not value.lstrip("+-").isdigit() or not value.isascii():
        return False
    if value[0] in "+-" and value[1:2] in "+-":
        return False
    label, bound = int(value), int(expr.values[0])
    return label > bound if expr.operator == "Gt" else label < bound


def affinity_ok(labels, terms) -> bool:
    if not terms:
        return True
    return any(term and all(expr_matches(labels, e) for e in term) for term in terms)


def static_reason(node: SchedNode, req: Requirements) -> str | None:
    if node.cordoned:
        return "node(s) were unschedulable"
    if req.runtime and req.runtime not in node.runtimes:
        return "node(s) didn't have the required runtime"
    if not affinity_ok(node.labels, req.affinity):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def ring_points(node: SchedNode) -> list[tuple[int, str]]:
    points = []
    for n in range(40 * node.weight):
        digest = md5(f"{node.id}-{n}".encode()).digest()
        for k in range(4):
            points.append((int.from_bytes(digest[4 * k : 4 * k + 4], "little"), node.id))
    return points


def reference(nodes, req, replicas, algorithm, clients):
    cpu = [n.cpu_millis for n in nodes]
    mem = [n.memory_bytes for n in nodes]
    conns = [n.connections for n in nodes]
    current = [0] * len(nodes)
    usable = [static_reason(n, req) is None for n in nodes]
    by_id = {n.id: i for i, n in enumerate(nodes)}
    ring = sorted(p for i, n in enumerate(nodes) if usable[i] for p in ring_points(n))
    last = -1
    out = []

    def fits(i):
        return usable[i] and cpu[i] >= req.cpu_millis and mem[i] >= req.memory_bytes

    def smooth_wrr(peers):
        total = 0
        best = None
        for i in peers:  # inventory order; strict > keeps the first on ties
            current[i] += nodes[i].weight
            total += nodes[i].weight
            if best is None or current[i] > current[best]:
                best = i
        current[best] -= total
        return best

    for r in range(replicas):
        feasible = [i for i in range(len(nodes)) if fits(i)]
        if not feasible:
            out.append((None, message(nodes, req, cpu, mem)))
            continue
        if algorithm == "round_robin":
            choice = next((i for i in feasible if i > last), feasible[0])
        elif algorithm == "weighted_round_robin":
            choice = smooth_wrr(feasible)
        elif algorithm == "least_connections":
            # nginx: cross-multiplied comparison; the round robin runs only when several tie
            best = feasible[0]
            for i in feasible:
                if conns[i] * nodes[best].weight < conns[best] * nodes[i].weight:
                    best = i
            tied = [
                i for i in feasible if conns[i] * nodes[best].weight == conns[best] * nodes[i].weight
            ]
            choice = smooth_wrr(tied) if len(tied) > 1 else tied[0]
            conns[choice] += 1
        else:
            position = bisect_left(ring, (key_point(clients[r]), ""))
            for step in range(len(ring)):
                candidate = by_id[ring[(position + step) % len(ring)][1]]
                if fits(candidate):
                    choice = candidate
                    break
        cpu[choice] -= req.cpu_millis
        mem[choice] -= req.memory_bytes
        last = choice
        out.append((nodes[choice].id, None))
    return out


def key_point(key: str) -> int:
    return int.from_bytes(md5(key.encode()).digest()[:4], "little")


def message(nodes, req, cpu, mem) -> str:
    if not nodes:
        return "no nodes available to schedule pods"
    counts = Counter()
    for i, n in enumerate(nodes):
        reason = static_reason(n, req)
        if reason:
            counts[reason] += 1
            continue
        if cpu[i] < req.cpu_millis:
            counts["Insufficient cpu"] += 1
        if mem[i] < req.memory_bytes:
            counts["Insufficient memory"] += 1
    return f"0/{len(nodes)} nodes are available: " + ", ".join(
        sorted(f"{c} {r}" for r, c in counts.items())
    ) + "."


# --- strategies ---------------------------------------------------------------------------

labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)


@st.composite
def inventories(draw):
    count = draw(st.integers(0, 8))
    return [
        SchedNode(
            id=f"n{i}",
            zone="z",
            cpu_millis=draw(st.integers(0, 3000)),
            memory_bytes=draw(st.integers(0, 3000)),
            labels=draw(labels_st),
            weight=draw(st.integers(1, 4)),
            connections=draw(st.integers(0, 4)),
            runtimes=draw(st.sampled_from([frozenset({"docker"}), frozenset({"libvirt"}), frozenset({"docker", "libvirt"})])),
            cordoned=draw(st.integers(0, 5)) == 0,
        )
        for i in range(count)
    ]


@st.composite
def expressions(draw):
    operator = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]))
    if operator in ("In", "NotIn"):
        values = tuple(draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=4)))
    elif operator in ("Gt", "Lt"):
        values = (str(draw(st.integers(-1, 8))),)
    else:
        values = ()
    return AffinityExpr(draw(st.sampled_from(KEYS)), operator, values)


# Half the runs without affinity and most without a runtime, so that several nodes stay
# feasible and the algorithms' tie rules and rotations are exercised, not just the filter.
requirements = st.builds(
    Requirements,
    cpu_millis=st.integers(0, 700),
    memory_bytes=st.integers(0, 700),
    affinity=st.one_of(
        st.just(()),
        st.lists(st.lists(expressions(), max_size=3).map(tuple), min_size=1, max_size=2).map(tuple),
    ),
    runtime=st.sampled_from([None, None, None, "docker", "libvirt"]),
)


# --- properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=300, deadline=None)
@given(
    nodes=inventories(),
    req=requirements,
    replicas=st.integers(0, 30),
    clients=st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2", "fe80::1", "c", "d", "e"]), min_size=30, max_size=30),
)
def test_schedule_equals_the_literal_reference_and_keeps_its_invariants(algorithm, nodes, req, replicas, clients):
    result = schedule(nodes, req, replicas, algorithm, clients)

    assert [(p.node, p.reason) for p in result.placements] == reference(nodes, req, replicas, algorithm, clients)

    # placements count == replicas, in replica order
    assert [p.replica for p in result.placements] == list(range(replicas))
    by_id = {n.id: n for n in nodes}
    counts = Counter(p.node for p in result.placements if p.node is not None)
    for placement in result.placements:
        if placement.node is not None:
            placed_on = by_id[placement.node]
            # every placed replica satisfies its constraints
            assert affinity_ok(placed_on.labels, req.affinity)
            assert not placed_on.cordoned
            assert req.runtime is None or req.runtime in placed_on.runtimes
    for usage, n in zip(result.nodes, nodes):
        # no node is ever over-committed, and the usage adds up
        assert usage.replicas == counts[n.id]
        assert usage.cpu_free == n.cpu_millis - counts[n.id] * req.cpu_millis >= 0
        assert usage.memory_free == n.memory_bytes - counts[n.id] * req.memory_bytes >= 0


@st.composite
def roomy_inventories(draw):
    """Every node passes the filter and takes 1 to 12 replicas: only the algorithms decide."""
    count = draw(st.integers(2, 8))
    return [
        SchedNode(
            id=f"n{i}",
            zone="z",
            cpu_millis=100 * draw(st.integers(1, 12)),
            memory_bytes=10**9,
            labels={},
            weight=draw(st.integers(1, 5)),
            connections=draw(st.integers(0, 6)),
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=200, deadline=None)
@given(
    nodes=roomy_inventories(),
    replicas=st.integers(1, 60),
    clients=st.lists(st.text("0123456789.", min_size=1, max_size=7), min_size=60, max_size=60),
)
def test_algorithms_equal_the_reference_when_every_node_is_feasible(algorithm, nodes, replicas, clients):
    req = Requirements(100, 1)
    result = schedule(nodes, req, replicas, algorithm, clients)
    assert [(p.node, p.reason) for p in result.placements] == reference(nodes, req, replicas, algorithm, clients)
