"""The four placement algorithms, each over the nodes that can take the run's replica.

A picker is built with the candidate nodes (inventory indexes, in inventory order) and a
`consume(index) -> bool` callback that books one replica on a node and says whether the node
can still take another. All replicas of a run ask for the same resources and nothing is freed
during a run, so a node that cannot take a replica never can again: pickers drop such nodes
for good, and each pick avoids scanning the whole inventory.
"""

from __future__ import annotations

from fractions import Fraction
from heapq import heappop, heappush
from typing import Callable, Protocol, Sequence

from rtm.scheduling.hashring import HashRing
from rtm.scheduling.model import SchedNode
from rtm.scheduling.wrr import SmoothWeightedRoundRobin

Consume = Callable[[int], bool]


class Picker(Protocol):
    def place(self, client: str | None) -> int | None:
        """Choose a node for the next replica, book it, and return its index (None: no node
        can take it)."""
        ...


class RoundRobin:
    """A cursor over the nodes in inventory order: each replica goes to the next node after
    the last chosen one that can take it. O(1) per pick; a full node is removed from the
    cursor's list (a memmove of at most the inventory's pointers)."""

    def __init__(self, nodes: Sequence[SchedNode], candidates: Sequence[int], consume: Consume):
        self._ring = list(candidates)
        self._cursor = 0
        self._consume = consume

    def place(self, client: str | None) -> int | None:
        if not self._ring:
            return None
        chosen = self._ring[self._cursor]
        if self._consume(chosen):
            self._cursor += 1
        else:
            del self._ring[self._cursor]  # the cursor now points at the following node
        if self._cursor >= len(self._ring):
            self._cursor = 0
        return chosen


class WeightedRoundRobin:
    """nginx's smooth weighted round robin over the nodes that can take a replica."""

    def __init__(self, nodes: Sequence[SchedNode], candidates: Sequence[int], consume: Consume):
        self._weights = [node.weight for node in nodes]
        self._rotation = SmoothWeightedRoundRobin()
        for index in candidates:
            self._rotation.add(index, self._weights[index])
        self._consume = consume

    def place(self, client: str | None) -> int | None:
        if not self._rotation:
            return None
        chosen, current = self._rotation.pick()
        if self._consume(chosen):
            self._rotation.add(chosen, self._weights[chosen], current)
        return chosen


class LeastConnections:
    """nginx's least_conn: the lowest connections/weight wins, replicas placed by this run
    counting as connections; ties go to the smooth weighted round robin among the tied nodes
    (only the tied nodes' `current` moves, as in nginx).

    Nodes are grouped in levels of equal connections/weight. The lowest level never grows
    while it is the lowest (a node's ratio only rises, and only when it wins), so it is played
    out with one lazy smooth WRR; each winner moves to its next level with its `current`.
    A single-node level needs no special case: +weight then -weight leaves `current` as nginx
    does when there is no tie. O(distinct weights + log nodes) per pick.
    """

    def __init__(self, nodes: Sequence[SchedNode], candidates: Sequence[int], consume: Consume):
        self._weights = [node.weight for node in nodes]
        self._connections = [node.connections for node in nodes]
        self._levels: dict[Fraction, list[tuple[int, int]]] = {}  # ratio -> (index, current)
        self._ratios: list[Fraction] = []  # heap of the levels' ratios
        self._lowest = SmoothWeightedRoundRobin()
        self._consume = consume
        for index in candidates:
            self._enter_level(index, 0)

    def _enter_level(self, index: int, current: int) -> None:
        ratio = Fraction(self._connections[index], self._weights[index])
        members = self._levels.get(ratio)
        if members is None:
            members = self._levels[ratio] = []
            heappush(self._ratios, ratio)
        members.append((index, current))

    def place(self, client: str | None) -> int | None:
        if not self._lowest:
            if not self._ratios:
                return None
            for index, current in self._levels.pop(heappop(self._ratios)):
                self._lowest.add(index, self._weights[index], current)
        chosen, current = self._lowest.pick()
        self._connections[chosen] += 1
        if self._consume(chosen):
            self._enter_level(chosen, current)
        return chosen


class IpHash:
    """Consistent hashing of the whole client key; when the node it lands on cannot take the
    replica, the next node on the ring does. The ring holds only the candidates: skipping the
    points of nodes that cannot take the replica gives the same node as walking a ring of the
    whole inventory, so placements do not depend on unrelated nodes."""

    def __init__(self, nodes: Sequence[SchedNode], candidates: Sequence[int], consume: Consume):
        self._candidates = list(candidates)
        self._ring = HashRing([(nodes[i].id, nodes[i].weight) for i in self._candidates])
        self._consume = consume

    def place(self, client: str | None) -> int | None:
        if client is None:
            raise ValueError("ip_hash needs a client key for every replica")
        member = self._ring.lookup(client)
        if member is None:
            return None
        chosen = self._candidates[member]
        if not self._consume(chosen):
            self._ring.retire(member)
        return chosen


PICKERS: dict[str, Callable[[Sequence[SchedNode], Sequence[int], Consume], Picker]] = {
    "round_robin": RoundRobin,
    "least_connections": LeastConnections,
    "weighted_round_robin": WeightedRoundRobin,
    "ip_hash": IpHash,
}
