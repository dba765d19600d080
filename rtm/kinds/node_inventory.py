"""Nodes: an inventory of machines for placement previews (`Nodes:` is a list of these)."""

from __future__ import annotations

from dataclasses import dataclass

from rtm.kinds.values import Cpu, Memory
from rtm.schema import BuildContext, FrozenMap, Where, where_field


@dataclass(frozen=True)
class NodeSpec:
    id: str
    cpu: Cpu
    memory: Memory
    zone: str | None = None
    labels: FrozenMap = FrozenMap()
    weight: int = 1
    connections: int = 0
    where: Where = where_field()

    def check(self, ctx: BuildContext) -> None:
        if self.weight < 1:
            ctx.error(self.where, "weight", "weight must be at least 1")
        if self.connections < 0:
            ctx.error(self.where, "connections", "connections cannot be negative")

    @property
    def all_labels(self) -> dict[str, str]:
        """A node's zone is also its `zone` label unless its labels say otherwise."""
        labels = dict(self.labels)
        if self.zone is not None:
            labels.setdefault("zone", self.zone)
        return labels
