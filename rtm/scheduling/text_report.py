"""Plain-text rendering of a scheduling result: replicas -> nodes, then each node's capacity."""

from __future__ import annotations

from typing import Sequence

from rtm.quantity import format_cpu, format_memory
from rtm.scheduling.model import ScheduleResult


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    # the last column is left unpadded so long reasons do not widen every line
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip()
        for row in [header, *rows]
    ]


def render_text(result: ScheduleResult) -> str:
    placed = sum(1 for p in result.placements if p.node is not None)
    unplaced = len(result.placements) - placed
    summary = f"algorithm: {result.algorithm}   placed: {placed}   unschedulable: {unplaced}"
    replica_rows = [
        (str(p.replica), p.node if p.node is not None else "-", p.reason or "")
        for p in result.placements
    ]
    node_rows = [
        (n.id, format_cpu(n.cpu_free), format_memory(n.memory_free), str(n.replicas))
        for n in result.nodes
    ]
    lines = [summary, ""]
    lines += _table(("REPLICA", "NODE", "REASON"), replica_rows)
    lines.append("")
    lines += _table(("NODE", "CPU FREE", "MEMORY FREE", "REPLICAS"), node_rows)
    return "\n".join(lines) + "\n"
