"""nginx's smooth weighted round robin, without touching every peer on every pick.

nginx (ngx_http_upstream_round_robin.c) does, per pick: every peer's `current += weight`, the
largest `current` wins (ties: the first listed), and the winner's `current -= total`, where
`total` is the sum of the participating weights. That is O(peers) per pick.

Here a peer's `current` is kept lazily as `base + step * weight`, `step` being the number of
picks so far. Peers of equal weight then keep their relative order between picks, so each
weight class is a heap ordered by `base` (then by inventory index for the tie rule), and a pick
compares only the tops of the classes: O(distinct weights + log peers) instead of O(peers).
A picked peer leaves the rotation; the caller adds it back (with its new `current`) if it is to
keep taking part, which is how peers that can take no more replicas drop out.
"""

from __future__ import annotations

from heapq import heappop, heappush


class SmoothWeightedRoundRobin:
    def __init__(self) -> None:
        self._step = 0
        self._total = 0
        self._count = 0
        # weight -> heap of (-(base), index); base = current - step * weight
        self._classes: dict[int, list[tuple[int, int]]] = {}

    def __len__(self) -> int:
        return self._count

    def add(self, index: int, weight: int, current: int = 0) -> None:
        """Let peer `index` take part from the next pick on, starting from `current`."""
        heappush(self._classes.setdefault(weight, []), (self._step * weight - current, index))
        self._total += weight
        self._count += 1

    def pick(self) -> tuple[int, int]:
        """One nginx pick among the peers taking part. Returns the winner and its `current`
        after the pick; the winner leaves the rotation (see `add`)."""
        if not self._count:
            raise IndexError("pick from an empty rotation")
        self._step += 1
        step = self._step
        best: tuple[int, int, int] | None = None  # (value, -index, weight): max wins
        for weight, heap in self._classes.items():
            negative_base, index = heap[0]
            candidate = (step * weight - negative_base, -index, weight)
            if best is None or candidate > best:
                best = candidate
        assert best is not None
        best_value, best_index, best_weight = best[0], -best[1], best[2]
        heap = self._classes[best_weight]
        heappop(heap)
        if not heap:
            del self._classes[best_weight]
        current = best_value - self._total
        self._total -= best_weight
        self._count -= 1
        return best_index, current
