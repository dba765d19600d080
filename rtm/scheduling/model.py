"""Values the scheduler works on: nodes, requirements and the result of a run.

The spec layer converts a `SchedulingPolicy` and a node inventory into these; cpu is in
millicores and memory in bytes, already parsed. All are frozen: a run never changes its inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from rtm.errors import SpecValueError

ALGORITHMS = ("round_robin", "least_connections", "weighted_round_robin", "ip_hash")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
RUNTIMES = frozenset({"docker", "libvirt"})

_INT64 = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_int64(text: str | None) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64), which Kubernetes uses for Gt/Lt: an optional sign
    and ASCII digits only (no spaces, underscores or other digits, unlike Python's int()).
    None when the text is not such an integer or is out of the int64 range."""
    if text is None or not _INT64.match(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


@dataclass(frozen=True)
class SchedNode:
    """One node as the scheduler sees it; cpu and memory are the free allocatable capacity at
    the start of a run. `labels` should carry the zone as well (the caller adds it)."""

    id: str
    zone: str
    cpu_millis: int
    memory_bytes: int
    labels: Mapping[str, str] = field(default_factory=dict)
    weight: int = 1
    connections: int = 0
    runtimes: frozenset[str] = RUNTIMES
    cordoned: bool = False

    def __post_init__(self) -> None:
        if self.weight < 1:
            raise ValueError(f"node {self.id}: weight must be at least 1, not {self.weight}")
        for name in ("cpu_millis", "memory_bytes", "connections"):
            if getattr(self, name) < 0:
                raise ValueError(f"node {self.id}: {name} cannot be negative")
        object.__setattr__(self, "runtimes", frozenset(self.runtimes))


@dataclass(frozen=True)
class AffinityExpr:
    """One node affinity match expression, validated the way Kubernetes validates it."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        where = f"node affinity on {self.key!r}"
        if self.operator not in OPERATORS:
            raise SpecValueError(
                f"{where}: unknown operator {self.operator!r}", hint="one of " + ", ".join(OPERATORS)
            )
        if self.operator in ("In", "NotIn") and not self.values:
            raise SpecValueError(f"{where}: {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise SpecValueError(f"{where}: {self.operator} takes no values")
        if self.operator in ("Gt", "Lt"):
            if len(self.values) != 1 or parse_int64(self.values[0]) is None:
                raise SpecValueError(
                    f"{where}: {self.operator} needs exactly one integer value",
                    hint='e.g. values: ["4"]',
                )


@dataclass(frozen=True)
class Requirements:
    """What one replica needs. `affinity` holds node selector terms: the expressions of a term
    are ANDed, the terms ORed; () means no affinity constraint, while an empty term matches no
    node (as in Kubernetes). `runtime` "docker" or "libvirt" needs a node carrying that runtime."""

    cpu_millis: int
    memory_bytes: int
    affinity: tuple[tuple[AffinityExpr, ...], ...] = ()
    runtime: str | None = None

    def __post_init__(self) -> None:
        if self.cpu_millis < 0 or self.memory_bytes < 0:
            raise ValueError("requested cpu and memory cannot be negative")
        object.__setattr__(self, "affinity", tuple(tuple(term) for term in self.affinity))


@dataclass(frozen=True)
class Placement:
    """Where replica `replica` went: `node` is None when it fits nowhere, and `reason` then
    holds the kube-scheduler style explanation."""

    replica: int
    node: str | None
    reason: str | None = None


@dataclass(frozen=True)
class NodeUsage:
    """A node after the run: what is still free and how many replicas this run put there."""

    id: str
    cpu_free: int
    memory_free: int
    replicas: int


@dataclass(frozen=True)
class ScheduleResult:
    algorithm: str
    placements: tuple[Placement, ...]
    nodes: tuple[NodeUsage, ...]

    @property
    def unschedulable(self) -> tuple[Placement, ...]:
        return tuple(p for p in self.placements if p.node is None)

    def to_json(self) -> dict[str, Any]:
        """The `rtm-console schedule --json` object (cpu in millicores, memory in bytes)."""
        return {
            "algorithm": self.algorithm,
            "placements": [
                {"replica": p.replica, "node": p.node, "reason": p.reason} for p in self.placements
            ],
            "nodes": [
                {
                    "id": n.id,
                    "cpu_free": n.cpu_free,
                    "memory_free": n.memory_free,
                    "replicas": n.replicas,
                }
                for n in self.nodes
            ],
        }
