"""A scheduling run: filter the nodes, place replicas one by one, explain what does not fit.

Filtering follows kube-scheduler: per node the checks run in order and the first failing one
is the node's only reason (cordoned, then the runtime, then node affinity), except the last
check, resources, which reports every resource that is short. The static checks are done once
per run; the resource check is kept up to date by the accounting as replicas are booked.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from rtm.scheduling.affinity import LabelPredicate, compile_affinity
from rtm.scheduling.algorithms import PICKERS
from rtm.scheduling.model import (
    ALGORITHMS,
    NodeUsage,
    Placement,
    Requirements,
    SchedNode,
    ScheduleResult,
)

REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_RUNTIME = "node(s) didn't have the required runtime"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_CPU = "Insufficient cpu"
REASON_MEMORY = "Insufficient memory"
NO_NODES = "no nodes available to schedule pods"


def unschedulable_message(total_nodes: int, reasons: Counter[str]) -> str:
    """kube-scheduler's FitError text: each distinct reason with its node count, the entries
    sorted as strings (so "10 ..." sorts before "9 ..."), joined with ", ", ending with "."."""
    if total_nodes == 0:
        return NO_NODES
    entries = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return f"0/{total_nodes} nodes are available: {', '.join(entries)}."


def static_reason(
    node: SchedNode, req: Requirements, affinity: LabelPredicate | None = None
) -> str | None:
    """Why `node` can never take the replica in this run, or None."""
    if node.cordoned:
        return REASON_UNSCHEDULABLE
    if req.runtime is not None and req.runtime not in node.runtimes:
        return REASON_RUNTIME
    matches = affinity or compile_affinity(req.affinity)
    if not matches(node.labels):
        return REASON_AFFINITY
    return None


class Scheduler:
    """One run over a node inventory for one kind of replica, placed incrementally.

    `schedule()` is the usual entry; use this directly to place replicas one at a time (a
    preview that grows, a supervisor replacing one replica). Every placement books the
    replica's cpu and memory on its node for the rest of the run.
    """

    def __init__(self, nodes: Sequence[SchedNode], req: Requirements, algorithm: str) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
        self.algorithm = algorithm
        self.requirements = req
        self._nodes = tuple(nodes)
        duplicates = sorted(i for i, n in Counter(node.id for node in self._nodes).items() if n > 1)
        if duplicates:
            raise ValueError(f"node ids must be unique: {', '.join(duplicates)}")
        self._cpu_free = [node.cpu_millis for node in self._nodes]
        self._memory_free = [node.memory_bytes for node in self._nodes]
        self._replicas_on = [0] * len(self._nodes)
        affinity = compile_affinity(req.affinity)
        self._static_reasons = {
            i: reason
            for i, node in enumerate(self._nodes)
            if (reason := static_reason(node, req, affinity)) is not None
        }
        candidates = [
            i for i in range(len(self._nodes)) if i not in self._static_reasons and self._fits(i)
        ]
        self._picker = PICKERS[algorithm](self._nodes, candidates, self._consume)
        self._placements: list[Placement] = []
        # Nothing is freed during a run, so once a replica fits nowhere none will: the
        # explanation is computed once.
        self._failure: str | None = None

    def _fits(self, index: int) -> bool:
        req = self.requirements
        return self._cpu_free[index] >= req.cpu_millis and self._memory_free[index] >= req.memory_bytes

    def _consume(self, index: int) -> bool:
        self._cpu_free[index] -= self.requirements.cpu_millis
        self._memory_free[index] -= self.requirements.memory_bytes
        self._replicas_on[index] += 1
        return self._fits(index)

    def place(self, client: str | None = None) -> Placement:
        """Place the next replica (`client` is its key for ip_hash)."""
        replica = len(self._placements)
        chosen = None if self._failure is not None else self._picker.place(client)
        if chosen is None:
            if self._failure is None:
                self._failure = self.explain()
            placement = Placement(replica, None, self._failure)
        else:
            placement = Placement(replica, self._nodes[chosen].id, None)
        self._placements.append(placement)
        return placement

    def explain(self) -> str:
        """The kube-scheduler message for a replica placed now if it fitted nowhere."""
        reasons: Counter[str] = Counter()
        req = self.requirements
        for i in range(len(self._nodes)):
            reason = self._static_reasons.get(i)
            if reason is not None:
                reasons[reason] += 1
                continue
            if self._cpu_free[i] < req.cpu_millis:
                reasons[REASON_CPU] += 1
            if self._memory_free[i] < req.memory_bytes:
                reasons[REASON_MEMORY] += 1
        return unschedulable_message(len(self._nodes), reasons)

    @property
    def placements(self) -> tuple[Placement, ...]:
        return tuple(self._placements)

    def usage(self) -> tuple[NodeUsage, ...]:
        return tuple(
            NodeUsage(node.id, self._cpu_free[i], self._memory_free[i], self._replicas_on[i])
            for i, node in enumerate(self._nodes)
        )

    def result(self) -> ScheduleResult:
        return ScheduleResult(self.algorithm, self.placements, self.usage())


def schedule(
    nodes: Sequence[SchedNode],
    req: Requirements,
    replicas: int,
    algorithm: str,
    clients: Sequence[str] = (),
) -> ScheduleResult:
    """Place `replicas` replicas of `req` on `nodes`. With ip_hash, replica i uses `clients[i]`
    as its key (so at least `replicas` keys are needed); other algorithms ignore `clients`."""
    if replicas < 0:
        raise ValueError(f"replicas cannot be negative, not {replicas}")
    if algorithm == "ip_hash" and len(clients) < replicas:
        raise ValueError(
            f"ip_hash places replica i by client key i: {replicas} replicas need "
            f"{replicas} client keys, got {len(clients)}"
        )
    run = Scheduler(nodes, req, algorithm)
    keys = clients if algorithm == "ip_hash" else [None] * replicas
    for replica in range(replicas):
        run.place(keys[replica])
    return run.result()
