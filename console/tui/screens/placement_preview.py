"""Placement preview: where the replicas of a workload would go, and why some would not.

Pick a workload (from the specs folder or the bundled samples), a replica count, an algorithm
and the nodes (the live machines, or a `Nodes:` inventory). The scheduler (`rtm.scheduling`,
pure) places them; the screen shows each replica's node, each node's remaining CPU and memory
as bars, the inventory's totals, and the kube-scheduler style message for replicas that fit
nowhere. Nothing changes. Both lists draw only the rows in sight, and the find field narrows
them to the nodes whose id holds its text: a 5,000-node inventory draws what the screen shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Select, Static

from backends.records import NodeInfo
from console.tui.planning import (
    SpecCatalog,
    algorithms_for,
    client_keys,
    nodes_from_inventory,
    nodes_from_live,
    requirements_for,
)
from console.tui.screens.planning_common import CSS, Cell, RowList, bar
from console.tui.views import human_bytes
from rtm.scheduling import ALGORITHMS, SchedNode, ScheduleResult, schedule

if TYPE_CHECKING:
    from console.tui.app import RtmConsole

LIVE = "live"
UNSCHEDULABLE = "unschedulable"
MAX_REPLICAS = 10_000


def format_cpu(millis: int) -> str:
    return f"{millis / 1000:g}" if millis % 100 == 0 else f"{millis}m"


def capacity_rows(result: ScheduleResult, nodes: list[SchedNode]) -> list[tuple[str, tuple[Cell, ...]]]:
    """(node id, row) per node: its free CPU and memory after placing, as bars and numbers."""
    totals = {node.id: node for node in nodes}
    rows = []
    for usage in result.nodes:
        node = totals[usage.id]
        cpu_share = usage.cpu_free / node.cpu_millis if node.cpu_millis else 0.0
        memory_share = usage.memory_free / node.memory_bytes if node.memory_bytes else 0.0
        rows.append((usage.id, (
            usage.id + (" (cordoned)" if node.cordoned else ""),
            f"{bar(cpu_share)} {format_cpu(usage.cpu_free)}/{format_cpu(node.cpu_millis)}",
            f"{bar(memory_share)} {human_bytes(usage.memory_free)}",
            str(usage.replicas),
        )))
    return rows


def placement_rows(result: ScheduleResult) -> list[tuple[str, tuple[Cell, ...]]]:
    """(node id, or "unschedulable", row) per replica."""
    return [(placement.node or UNSCHEDULABLE,
             (str(placement.replica), placement.node or (UNSCHEDULABLE, "bold reverse")))
            for placement in result.placements]


def totals_line(result: ScheduleResult, nodes: list[SchedNode]) -> str:
    """What the whole inventory holds, so no one has to scroll 5,000 rows to add it up."""
    cpu_total = sum(node.cpu_millis for node in nodes)
    memory_total = sum(node.memory_bytes for node in nodes)
    cordoned = sum(node.cordoned for node in nodes)
    holding = sum(1 for usage in result.nodes if usage.replicas)
    return (f"{len(nodes)} nodes ({cordoned} cordoned), {holding} holding replicas; free after placing: "
            f"CPU {format_cpu(sum(u.cpu_free for u in result.nodes))} of {format_cpu(cpu_total)}, "
            f"memory {human_bytes(sum(u.memory_free for u in result.nodes))} of {human_bytes(memory_total)}")


def matching(rows: list[tuple[str, tuple[Cell, ...]]], wanted: str) -> list[tuple[Cell, ...]]:
    """The rows whose node id contains `wanted` (any case); all of them for an empty text."""
    wanted = wanted.strip().casefold()
    return [row for node_id, row in rows if wanted in node_id.casefold()]


class PlacementScreen(Screen[None]):
    DEFAULT_CSS = CSS.format(name="PlacementScreen") + """
    PlacementScreen #find { width: 48; margin: 0 1; }
    PlacementScreen #capacity-column { width: 2fr; }
    PlacementScreen .list-title { height: 1; padding: 0 1; text-style: bold; }
    """
    BINDINGS = [Binding("escape", "close", "Back"), Binding("f5", "preview", "Preview"),
                Binding("ctrl+f", "find", "Find a node")]

    def __init__(self, catalog: SpecCatalog, live_nodes: list[NodeInfo], runtimes: Sequence[object] = ()) -> None:
        """`runtimes`: the runtime backends (Docker engines, libvirt hosts), merged into their machines."""
        super().__init__()
        self.catalog = catalog
        self.live_nodes = live_nodes
        self.runtimes = tuple(runtimes)
        self.result: ScheduleResult | None = None
        self.capacity: list[tuple[str, tuple[Cell, ...]]] = []  # (node id, row), every node
        self.placements: list[tuple[str, tuple[Cell, ...]]] = []  # (node id, row), every replica

    @property
    def console(self) -> RtmConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Label("Placement preview — nothing is changed (Esc: back)", id="title")
        workloads = [(source.label, index) for index, source in enumerate(self.catalog.workloads)]
        node_sources = [(f"live machines ({len(self.live_nodes)})", LIVE)]
        node_sources += [(source.label, index) for index, source in enumerate(self.catalog.inventories)]
        with Horizontal(id="controls"):
            yield Select(workloads, prompt="workload", id="workload", allow_blank=not workloads,
                         value=workloads[0][1] if workloads else Select.NULL)
            yield Input("", placeholder="replicas", id="replicas", type="integer")
            yield Select([(name, name) for name in ALGORITHMS], id="algorithm", allow_blank=False)
            default_nodes = 0 if self.catalog.inventories else LIVE
            yield Select(node_sources, id="nodes", allow_blank=False, value=default_nodes)
            yield Button("Preview", id="preview", variant="primary")
        yield Input("", placeholder="find a node: its id or part of it (Ctrl+F)", id="find")
        with Horizontal(id="results"):
            with Vertical(id="placements-column"):
                yield Label("", id="placements-title", classes="list-title")
                yield RowList(("REPLICA", "NODE"), right_aligned=(0,), id="placements")
            with Vertical(id="capacity-column"):
                yield Label("", id="capacity-title", classes="list-title")
                yield RowList(("NODE", "CPU FREE", "MEMORY FREE", "REPLICAS"), right_aligned=(3,), id="capacity")
        yield Static("", id="messages", classes="section")

    def on_mount(self) -> None:
        if not self.catalog.workloads:
            self.query_one("#messages", Static).update(
                "No workload found: put spec files with a name and a runtime in the specs folder."
            )
            return
        self._workload_chosen()
        self.action_preview()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "workload" and event.value is not Select.NULL:
            self._workload_chosen()

    def _workload_chosen(self) -> None:
        value = self.query_one("#workload", Select).value
        if value is Select.NULL:
            return
        document = self.catalog.workloads[int(value)].document  # type: ignore[arg-type]
        self.query_one("#replicas", Input).value = str(document.desired_replicas)
        self.query_one("#algorithm", Select).value = algorithms_for(document)[0]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "preview":
            self.action_preview()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "find":
            self.query_one("#capacity", RowList).focus()
        else:
            self.action_preview()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "find":
            self._show_rows()

    def action_find(self) -> None:
        self.query_one("#find", Input).focus()

    def _show_rows(self) -> None:
        """The nodes whose id holds the find text, and the replicas on them (all without one)."""
        wanted = self.query_one("#find", Input).value
        capacity, placements = matching(self.capacity, wanted), matching(self.placements, wanted)
        self.query_one("#capacity", RowList).show(capacity)
        self.query_one("#placements", RowList).show(placements)
        found = f" matching {wanted.strip()!r}" if wanted.strip() else ""
        self.query_one("#capacity-title", Label).update(f"Nodes{found}: {len(capacity)} of {len(self.capacity)}")
        self.query_one("#placements-title", Label).update(
            f"Replicas{' on nodes' + found if found else ''}: {len(placements)} of {len(self.placements)}")

    def action_preview(self) -> None:
        messages = self.query_one("#messages", Static)
        workload = self.query_one("#workload", Select).value
        if workload is Select.NULL:
            messages.update("Pick a workload.")
            return
        text = self.query_one("#replicas", Input).value.strip()
        if not text.isdigit() or not 0 <= int(text) <= MAX_REPLICAS:
            messages.update(f"Replicas must be a whole number from 0 to {MAX_REPLICAS}.")
            return
        replicas = int(text)
        algorithm = str(self.query_one("#algorithm", Select).value)
        source = self.query_one("#nodes", Select).value
        if source == LIVE:
            nodes = nodes_from_live(self.live_nodes, self.runtimes)
        else:
            nodes = nodes_from_inventory(self.catalog.inventories[int(source)].document.nodes or ())  # type: ignore[arg-type]
        document = self.catalog.workloads[int(workload)].document  # type: ignore[arg-type]
        try:
            requirements = requirements_for(document)
            self.result = schedule(nodes, requirements, replicas, algorithm, clients=client_keys(replicas))
        except ValueError as exc:
            messages.update(f"Cannot preview: {exc}")
            return
        self.capacity, self.placements = capacity_rows(self.result, nodes), placement_rows(self.result)
        self._show_rows()
        placed = sum(1 for p in self.result.placements if p.node is not None)
        asks = f"each replica asks for {format_cpu(requirements.cpu_millis)} CPU, {human_bytes(requirements.memory_bytes)}"
        if requirements.runtime:
            asks += f", a node with {requirements.runtime}"
        lines = [f"{algorithm}: {placed} of {replicas} placed; {asks}.", totals_line(self.result, nodes)]
        reasons = sorted({p.reason for p in self.result.unschedulable if p.reason})
        lines += [f"unschedulable: {reason}" for reason in reasons]
        messages.update("\n".join(lines))

    def action_close(self) -> None:
        self.dismiss(None)
