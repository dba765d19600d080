"""SchedulingPolicy: the algorithms, constraints and replica range that govern placement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rtm.kinds.values import Cpu, Memory
from rtm.scheduling.model import parse_int64
from rtm.schema import BuildContext, Where, where_field

Algorithm = Literal["round_robin", "least_connections", "weighted_round_robin", "ip_hash"]
AFFINITY_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


@dataclass(frozen=True)
class Constraint:
    type: Literal["node_affinity", "resource_requirements"]
    key: str | None = None
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] | None = None
    values: tuple[str | int, ...] | None = None
    cpu: Cpu | None = None
    memory: Memory | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.type == "node_affinity":
            self._check_affinity(ctx)
        else:
            for name in ("key", "operator", "values"):
                if getattr(self, name) is not None:
                    ctx.error(self.where, name, f"{name} belongs to node_affinity constraints")
            if self.cpu is None and self.memory is None:
                ctx.error(self.where, None, "a resource_requirements constraint needs cpu or memory", 'e.g. cpu: "100m"')

    def _check_affinity(self, ctx: BuildContext) -> None:
        for name in ("cpu", "memory"):
            if getattr(self, name) is not None:
                ctx.error(self.where, name, f"{name} belongs to resource_requirements constraints")
        if not self.key:
            ctx.error(self.where, None, "a node_affinity constraint needs a key", 'e.g. key: "zone"')
        if self.operator is None:
            ctx.error(self.where, None, "a node_affinity constraint needs an operator", "one of " + ", ".join(AFFINITY_OPERATORS))
            return
        values = self.values or ()
        if self.operator in ("In", "NotIn") and not values:
            ctx.error(self.where, "values" if self.values is not None else None, f"{self.operator} needs at least one value", 'e.g. values: ["us-east-1a"]')
        elif self.operator in ("Exists", "DoesNotExist") and values:
            ctx.error(self.where, "values", f"{self.operator} takes no values", "remove values")
        elif self.operator in ("Gt", "Lt"):
            if len(values) != 1 or parse_int64(str(values[0])) is None:
                ctx.error(self.where, "values" if self.values is not None else None, f"{self.operator} needs exactly one whole number", 'e.g. values: ["4"]')

    @property
    def string_values(self) -> tuple[str, ...]:
        return tuple(str(v) for v in self.values or ())


@dataclass(frozen=True)
class SchedulingScaling:
    min_replicas: int = 1
    max_replicas: int = 10
    target_cpu_utilization: int | None = None
    target_memory_utilization: int | None = None
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        check_replica_range(self, ctx)
        check_targets(self, ctx)


@dataclass(frozen=True)
class SchedulingPolicy:
    algorithms: tuple[Algorithm, ...] = ("round_robin",)
    constraints: tuple[Constraint, ...] = ()
    scaling: SchedulingScaling = SchedulingScaling()
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if not self.algorithms:
            ctx.error(self.where, "algorithms", "list at least one algorithm", "the first is the default")
        if len(set(self.algorithms)) != len(self.algorithms):
            ctx.error(self.where, "algorithms", "an algorithm is listed twice")
        if sum(1 for c in self.constraints if c.type == "resource_requirements") > 1:
            ctx.error(self.where, "constraints", "only one resource_requirements constraint is allowed")

    @property
    def default_algorithm(self) -> str:
        return self.algorithms[0]

    @property
    def affinity(self) -> tuple[Constraint, ...]:
        return tuple(c for c in self.constraints if c.type == "node_affinity")

    @property
    def resource_requirements(self) -> Constraint | None:
        return next((c for c in self.constraints if c.type == "resource_requirements"), None)


def check_replica_range(spec: object, ctx: BuildContext) -> None:
    where: Where = spec.where  # type: ignore[attr-defined]
    if spec.min_replicas < 0:  # type: ignore[attr-defined]
        ctx.error(where, "min_replicas", "min_replicas cannot be negative")
    if spec.max_replicas < 1:  # type: ignore[attr-defined]
        ctx.error(where, "max_replicas", "max_replicas must be at least 1")
    if spec.min_replicas > spec.max_replicas:  # type: ignore[attr-defined]
        ctx.error(where, "min_replicas", "min_replicas is above max_replicas", "swap them or raise max_replicas")


def check_targets(spec: object, ctx: BuildContext) -> None:
    for name in ("target_cpu_utilization", "target_memory_utilization"):
        value = getattr(spec, name)
        if value is not None and not 1 <= value <= 100:
            ctx.error(spec.where, name, f"{name} is a percentage from 1 to 100, got {value}")  # type: ignore[attr-defined]
