"""The scheduler's behaviour on small inventories: affinity operators, accounting, the
kube-scheduler messages, each algorithm's sequence, results and their rendering."""

from __future__ import annotations

import pytest

from rtm.errors import SpecValueError
from rtm.scheduling import (
    AffinityExpr,
    NodeUsage,
    Placement,
    Requirements,
    SchedNode,
    Scheduler,
    matches_affinity,
    render_text,
    schedule,
)

MI = 1024**2
GI = 1024**3


def node(id: str, cpu: int = 4000, memory: int = 8 * GI, **kwargs) -> SchedNode:
    labels = kwargs.pop("labels", {})
    zone = kwargs.pop("zone", "z1")
    return SchedNode(id, zone, cpu, memory, {"zone": zone, **labels}, **kwargs)


def chosen(result) -> list[str | None]:
    return [p.node for p in result.placements]


def reasons(result) -> list[str | None]:
    return [p.reason for p in result.placements]


# --- node affinity operators --------------------------------------------------------------

LABELS = {"zone": "a", "gen": "5", "name": "x5"}


@pytest.mark.parametrize(
    ("key", "operator", "values", "expected"),
    [
        ("zone", "In", ("a", "b"), True),
        ("zone", "In", ("b",), False),
        ("missing", "In", ("a",), False),
        ("zone", "NotIn", ("a",), False),
        ("zone", "NotIn", ("b",), True),
        ("missing", "NotIn", ("a",), True),  # a node without the label matches NotIn
        ("zone", "Exists", (), True),
        ("missing", "Exists", (), False),
        ("zone", "DoesNotExist", (), False),
        ("missing", "DoesNotExist", (), True),
        ("gen", "Gt", ("4",), True),
        ("gen", "Gt", ("5",), False),  # strict
        ("missing", "Gt", ("1",), False),
        ("name", "Gt", ("1",), False),  # label is not an integer
        ("gen", "Lt", ("6",), True),
        ("gen", "Lt", ("5",), False),  # strict
        ("missing", "Lt", ("9",), False),
        ("name", "Lt", ("9",), False),
    ],
)
def test_each_operator_on_present_absent_and_non_integer_labels(key, operator, values, expected):
    assert matches_affinity(LABELS, ((AffinityExpr(key, operator, values),),)) is expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("+7", True),  # Go's ParseInt takes a sign
        ("007", True),
        (" 7", False),  # but no spaces,
        ("7 ", False),
        ("7_0", False),  # no underscores,
        ("٧", False),  # no non-ASCII digits (Python's int() would take all three)
        ("7.0", False),
        ("", False),
        ("9223372036854775808", False),  # beyond int64
    ],
)
def test_gt_parses_label_values_like_kubernetes(label, expected):
    assert matches_affinity({"gen": label}, ((AffinityExpr("gen", "Gt", ("6",)),),)) is expected


def test_lt_with_negative_numbers():
    assert matches_affinity({"t": "-3"}, ((AffinityExpr("t", "Lt", ("-2",)),),))
    assert not matches_affinity({"t": "-2"}, ((AffinityExpr("t", "Lt", ("-2",)),),))


def test_expressions_in_a_term_are_anded_and_terms_ored():
    zone_a = AffinityExpr("zone", "In", ("a",))
    new_gen = AffinityExpr("gen", "Gt", ("6",))
    named = AffinityExpr("name", "Exists")
    assert not matches_affinity(LABELS, ((zone_a, new_gen),))
    assert matches_affinity(LABELS, ((zone_a, new_gen), (named,)))
    assert matches_affinity(LABELS, ((zone_a, named),))


def test_no_terms_match_every_node_but_an_empty_term_matches_none():
    assert matches_affinity({}, ())
    assert not matches_affinity(LABELS, ((),))
    assert matches_affinity(LABELS, ((), (AffinityExpr("zone", "Exists"),)))


@pytest.mark.parametrize(
    ("operator", "values", "message"),
    [
        ("In", (), "In needs at least one value"),
        ("NotIn", (), "NotIn needs at least one value"),
        ("Exists", ("a",), "Exists takes no values"),
        ("DoesNotExist", ("a",), "DoesNotExist takes no values"),
        ("Gt", ("1", "2"), "Gt needs exactly one integer value"),
        ("Lt", ("1.5",), "Lt needs exactly one integer value"),
        ("Near", ("a",), "unknown operator 'Near'"),
    ],
)
def test_invalid_expressions_are_refused(operator, values, message):
    with pytest.raises(SpecValueError, match=message):
        AffinityExpr("zone", operator, values)


# --- filtering and accounting -------------------------------------------------------------


def test_accounting_until_exhaustion_exactly_filling_fits():
    only = [node("n1", cpu=1000, memory=1 * GI)]
    result = schedule(only, Requirements(250, 256 * MI), 5, "round_robin")
    assert chosen(result) == ["n1"] * 4 + [None]
    assert result.placements[4].reason == (
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    )
    assert result.nodes == (NodeUsage("n1", 0, 0, 4),)


def test_each_placement_consumes_the_node_and_full_nodes_are_skipped():
    nodes = [node("a", cpu=1000), node("b", cpu=300), node("c", cpu=1000)]
    result = schedule(nodes, Requirements(300, MI), 8, "round_robin")
    assert chosen(result) == ["a", "b", "c", "a", "c", "a", "c", None]
    assert [(n.id, n.cpu_free, n.replicas) for n in result.nodes] == [
        ("a", 100, 3),
        ("b", 0, 1),
        ("c", 100, 3),
    ]


def test_a_zero_request_never_runs_short():
    nodes = [node("a", cpu=0, memory=0)]
    result = schedule(nodes, Requirements(0, 0), 3, "round_robin")
    assert chosen(result) == ["a", "a", "a"]


def test_the_issue_example_message():
    nodes = [node(f"fit-{i}", cpu=100, zone="us-east-1a") for i in range(3)]
    nodes += [node(f"far-{i}", zone="eu-west-1a") for i in range(9)]
    req = Requirements(500, MI, affinity=((AffinityExpr("zone", "In", ("us-east-1a",)),),))
    result = schedule(nodes, req, 1, "round_robin")
    assert result.placements == (
        Placement(
            0,
            None,
            "0/12 nodes are available: 3 Insufficient cpu, "
            "9 node(s) didn't match Pod's node affinity/selector.",
        ),
    )


def test_reasons_are_sorted_as_strings_with_their_counts():
    nodes = [node(f"m{i}", cpu=4000, memory=MI) for i in range(10)]
    nodes += [node(f"c{i}", cpu=100, memory=8 * GI) for i in range(2)]
    result = schedule(nodes, Requirements(500, GI), 1, "least_connections")
    # "10 ..." sorts before "2 ..." as strings, exactly as kube-scheduler prints it
    assert result.placements[0].reason == (
        "0/12 nodes are available: 10 Insufficient memory, 2 Insufficient cpu."
    )


def test_affinity_is_checked_first_and_reported_alone():
    nodes = [node("small-far", cpu=10, memory=10, zone="b"), node("small-near", cpu=10, memory=10)]
    req = Requirements(500, GI, affinity=((AffinityExpr("zone", "In", ("z1",)),),))
    result = schedule(nodes, req, 1, "round_robin")
    assert result.placements[0].reason == (
        "0/2 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
        "1 node(s) didn't match Pod's node affinity/selector."
    )


def test_cordoned_nodes_and_missing_runtimes_are_explained():
    nodes = [
        node("cordoned", cordoned=True),
        node("vm-host", runtimes=frozenset({"libvirt"})),
        node("docker-host", runtimes=frozenset({"docker"})),
    ]
    container = Requirements(100, MI, runtime="docker")
    assert chosen(schedule(nodes, container, 2, "round_robin")) == ["docker-host", "docker-host"]
    vm = Requirements(100, MI, runtime="libvirt")
    assert chosen(schedule(nodes, vm, 1, "weighted_round_robin")) == ["vm-host"]
    huge_vm = Requirements(100_000, MI, runtime="libvirt")
    assert reasons(schedule(nodes, huge_vm, 1, "round_robin")) == [
        "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't have the required "
        "runtime, 1 node(s) were unschedulable."
    ]


def test_an_empty_inventory_says_so_like_kube_scheduler():
    result = schedule([], Requirements(100, MI), 1, "round_robin")
    assert reasons(result) == ["no nodes available to schedule pods"]


def test_once_nothing_fits_every_later_replica_gets_the_same_message():
    result = schedule([node("a", cpu=1000)], Requirements(600, MI), 3, "ip_hash", ["k1", "k2", "k3"])
    assert chosen(result) == ["a", None, None]
    assert reasons(result)[1] == reasons(result)[2] == "0/1 nodes are available: 1 Insufficient cpu."


# --- the algorithms' sequences ------------------------------------------------------------


def ample(id: str, **kwargs) -> SchedNode:
    return node(id, cpu=1_000_000, memory=1024 * GI, **kwargs)


def test_round_robin_cursor_in_inventory_order_skipping_nodes_that_cannot_take_it():
    nodes = [ample("a"), ample("b", zone="other"), ample("c"), ample("d")]
    req = Requirements(100, MI, affinity=((AffinityExpr("zone", "NotIn", ("other",)),),))
    assert chosen(schedule(nodes, req, 7, "round_robin")) == ["a", "c", "d", "a", "c", "d", "a"]


def test_weighted_round_robin_is_nginx_smooth_5_1_1():
    nodes = [ample("a", weight=5), ample("b"), ample("c")]
    result = schedule(nodes, Requirements(100, MI), 14, "weighted_round_robin")
    assert "".join(chosen(result)) == "aabacaa" * 2


def test_weighted_round_robin_drops_a_full_node_from_the_rotation():
    nodes = [node("a", cpu=200, weight=5), ample("b"), ample("c")]
    result = schedule(nodes, Requirements(100, MI), 6, "weighted_round_robin")
    # a a, then a is full: b and c alternate from their current weights
    assert "".join(chosen(result)) == "aabcbc"


def test_least_connections_counts_placed_replicas_and_breaks_ties_by_smooth_wrr():
    nodes = [
        ample("a", connections=2),
        ample("b"),
        ample("c"),
        ample("d", connections=1, weight=2),
    ]
    result = schedule(nodes, Requirements(100, MI), 8, "least_connections")
    # Ratios a 2, b 0, c 0, d 1/2.  Currents (nginx's current_weight) move only in a tie:
    # 1 b,c tie: b=1 c=1 -> b (first listed), b=-1 | 2 c alone | 3 d alone (1/2)
    # 4 b,c,d tie at 1: b=0 c=2 d=2 -> c (first of the equal), c=-2
    # 5 b,d tie at 1: b=1 d=4 -> d, d=1 | 6 b alone | 7 d alone (3/2)
    # 8 all tie at 2: a=1 b=2 c=-1 d=3 -> d
    assert "".join(chosen(result)) == "bcdcdbdd"


def test_least_connections_uses_connections_per_unit_of_weight():
    nodes = [ample("busy-big", connections=6, weight=3), ample("idle-small", connections=3)]
    # 6/3 = 2 < 3/1: the big node takes replicas until its ratio reaches 3 (9/3); at the tie
    # the smooth round robin favours its weight once more, then 10/3 > 3 lets the other in.
    result = schedule(nodes, Requirements(100, MI), 5, "least_connections")
    assert chosen(result) == ["busy-big"] * 4 + ["idle-small"]


def test_ip_hash_sends_the_same_key_to_the_same_node():
    nodes = [ample(f"n{i}") for i in range(8)]
    clients = ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.3", "10.0.0.2"]
    placed = chosen(schedule(nodes, Requirements(100, MI), 5, "ip_hash", clients))
    assert placed[0] == placed[2] and placed[1] == placed[4]


def test_ip_hash_ring_format_is_pinned():
    # Pins the ring (MD5 points, "<id>-<n>", 160 per weight): a change here would move
    # every client to another node, so it must be deliberate.
    nodes = [ample("alpha"), ample("beta"), ample("gamma", weight=2)]
    clients = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "192.168.1.20", "client-a", "client-b"]
    placed = chosen(schedule(nodes, Requirements(100, MI), 6, "ip_hash", clients))
    assert placed == ["gamma", "gamma", "beta", "beta", "gamma", "alpha"]


# --- the seed's scheduler defects (KNOWN-DEFECTS.md) --------------------------------------


def test_seed_defect_resources_are_checked_and_deducted():
    nodes = [node("small", cpu=500, memory=GI), node("big", cpu=4000, memory=8 * GI)]
    result = schedule(nodes, Requirements(300, 512 * MI), 4, "round_robin")
    assert chosen(result) == ["small", "big", "big", "big"]
    assert result.nodes[0] == NodeUsage("small", 200, 512 * MI, 1)


def test_seed_defect_resource_requirements_memory_is_checked():
    nodes = [node("tiny", memory=64 * MI), node("roomy", memory=GI)]
    result = schedule(nodes, Requirements(100, 128 * MI), 2, "least_connections")
    assert chosen(result) == ["roomy", "roomy"]


@pytest.mark.parametrize("algorithm", ["least_connections", "weighted_round_robin", "ip_hash"])
def test_seed_defect_algorithms_do_not_all_return_the_first_node(algorithm):
    nodes = [ample(f"n{i}") for i in range(4)]
    clients = [f"10.0.{i}.{i}" for i in range(40)]
    used = set(chosen(schedule(nodes, Requirements(100, MI), 40, algorithm, clients)))
    assert len(used) == 4


# --- results, incremental use, validation -------------------------------------------------


def test_json_shape():
    nodes = [node("a", cpu=500, memory=GI), node("b", cpu=100, memory=GI)]
    result = schedule(nodes, Requirements(250, 256 * MI), 3, "round_robin")
    assert result.to_json() == {
        "algorithm": "round_robin",
        "placements": [
            {"replica": 0, "node": "a", "reason": None},
            {"replica": 1, "node": "a", "reason": None},
            {
                "replica": 2,
                "node": None,
                "reason": "0/2 nodes are available: 2 Insufficient cpu.",
            },
        ],
        "nodes": [
            {"id": "a", "cpu_free": 0, "memory_free": 512 * MI, "replicas": 2},
            {"id": "b", "cpu_free": 100, "memory_free": GI, "replicas": 0},
        ],
    }


def test_render_text_lists_replicas_and_remaining_capacity_in_human_units():
    nodes = [node("alpha", cpu=1000, memory=GI), node("beta", cpu=250, memory=GI)]
    text = render_text(schedule(nodes, Requirements(500, 512 * MI), 3, "round_robin"))
    lines = text.splitlines()
    assert lines[0] == "algorithm: round_robin   placed: 2   unschedulable: 1"
    assert lines[3].split() == ["0", "alpha"]
    assert lines[4].split() == ["1", "alpha"]
    assert lines[5].split()[:2] == ["2", "-"]
    assert lines[5].endswith("0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu.")
    assert lines[8].split() == ["alpha", "0", "0", "2"]
    assert lines[9].split() == ["beta", "250m", "1Gi", "0"]


def test_incremental_scheduler_matches_schedule():
    nodes = [ample("a", weight=3), ample("b", connections=1), ample("c")]
    req = Requirements(100, MI)
    for algorithm in ("round_robin", "least_connections", "weighted_round_robin"):
        run = Scheduler(nodes, req, algorithm)
        one_by_one = [run.place() for _ in range(9)]
        assert tuple(one_by_one) == schedule(nodes, req, 9, algorithm).placements
        assert run.result() == schedule(nodes, req, 9, algorithm)


def test_zero_replicas_leave_the_nodes_untouched():
    result = schedule([node("a")], Requirements(100, MI), 0, "ip_hash")
    assert result.placements == () and result.nodes == (NodeUsage("a", 4000, 8 * GI, 0),)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: schedule([node("a")], Requirements(1, 1), 1, "random"), "unknown algorithm"),
        (lambda: schedule([node("a")], Requirements(1, 1), -1, "round_robin"), "negative"),
        (lambda: schedule([node("a")], Requirements(1, 1), 2, "ip_hash", ["k"]), "2 client keys"),
        (lambda: schedule([node("a"), node("a")], Requirements(1, 1), 1, "round_robin"), "unique: a"),
        (lambda: node("a", weight=0), "weight must be at least 1"),
        (lambda: node("a", cpu=-1), "cpu_millis cannot be negative"),
        (lambda: Requirements(-1, 0), "cannot be negative"),
    ],
)
def test_invalid_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
