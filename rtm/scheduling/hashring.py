"""A ketama-style consistent hash ring with a stable hash.

Each member gets 40 MD5 digests per unit of weight (`"<id>-<n>"`), each digest giving four
little-endian 32-bit points: 160 points per unit of weight, as libketama and nginx's
`hash ... consistent` place them. A key is hashed the same way (the first four digest bytes)
and belongs to the first point at or after it, wrapping around. MD5 is used for spreading, not
security, and gives the same ring in every process and on every machine (Python's `hash()` is
salted per process). Points that collide are ordered by member id, so the ring does not depend
on the order the members were listed in.

Members that can take no more are retired. Instead of deleting their points (O(points) each),
a "next live point" table with path compression skips them: every point is skipped at most
once, so a lookup costs O(log points) for the bisect plus amortised O(1) for the walk.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from hashlib import md5
from typing import Sequence

DIGESTS_PER_WEIGHT = 40
POINTS_PER_WEIGHT = DIGESTS_PER_WEIGHT * 4


def key_hash(key: str) -> int:
    """The ring position of a client key: the first four MD5 bytes, little-endian."""
    return int.from_bytes(md5(key.encode("utf-8"), usedforsecurity=False).digest()[:4], "little")


def member_points(member_id: str, weight: int) -> array:
    """The ring points of one member (160 per unit of weight), as 32-bit unsigned ints."""
    digests = b"".join(
        md5(f"{member_id}-{n}".encode("utf-8"), usedforsecurity=False).digest()
        for n in range(DIGESTS_PER_WEIGHT * weight)
    )
    points = array("I", digests)
    if sys.byteorder == "big":  # the digest bytes are read as little-endian numbers
        points.byteswap()
    return points


class HashRing:
    """Members are (id, weight) pairs; lookups answer with the member's position in that list."""

    def __init__(self, members: Sequence[tuple[str, int]]) -> None:
        by_id = sorted(range(len(members)), key=lambda m: members[m][0])
        points, ranks = array("I"), array("I")
        for rank, m in enumerate(by_id):
            member_points_ = member_points(*members[m])
            points.extend(member_points_)
            ranks.extend(array("I", [rank]) * len(member_points_))
        # One sort of 64-bit numbers (point high, id rank low) orders the ring by (point, id).
        # The packing and unpacking are done on arrays so only the sort runs per element.
        pairs = _interleave(ranks, points)  # 32-bit (low, high) pairs read as 64-bit numbers
        ordered = array("Q", sorted(pairs))
        halves = _as_halves(ordered)
        self._points = halves[1::2]
        self._owner_ranks = halves[0::2]
        self._member_of_rank = by_id
        self._rank_of_member = {m: rank for rank, m in enumerate(by_id)}
        self._next = array("I", range(len(self._points)))  # a point is live when _next[p] == p
        self._retired = bytearray(len(members))  # by rank
        self._live_members = len(members)

    def __len__(self) -> int:
        return self._live_members

    def lookup(self, key: str) -> int | None:
        """The live member owning `key`: the first live point at or after its hash."""
        if not self._live_members:
            return None
        position = bisect_left(self._points, key_hash(key))
        if position == len(self._points):
            position = 0
        while True:
            position = self._next_live(position)
            rank = self._owner_ranks[position]
            if not self._retired[rank]:
                return self._member_of_rank[rank]
            # the owner was retired: skip this point from now on
            self._next[position] = (position + 1) % len(self._points)

    def retire(self, member: int) -> None:
        """The member takes no more keys; its keys go to the next members on the ring."""
        rank = self._rank_of_member[member]
        if not self._retired[rank]:
            self._retired[rank] = 1
            self._live_members -= 1

    def _next_live(self, position: int) -> int:
        following = self._next
        root = position
        while following[root] != root:
            root = following[root]
        while following[position] != root:  # path compression
            following[position], position = root, following[position]
        return root


def _interleave(low: array, high: array) -> array:
    """64-bit numbers `high << 32 | low` built from two arrays of 32-bit numbers."""
    words = array("I", bytes(8 * len(low)))
    first, second = (low, high) if sys.byteorder == "little" else (high, low)
    words[0::2], words[1::2] = first, second
    return array("Q", words.tobytes())


def _as_halves(numbers: array) -> array:
    """The 32-bit halves of 64-bit numbers, low half first: [low0, high0, low1, high1, ...]."""
    words = array("I", numbers.tobytes())
    if sys.byteorder == "big":
        words[0::2], words[1::2] = words[1::2], words[0::2]
    return words
