"""Placement preview: where the replicas of a workload would go, and why some would not.

Pick a workload (from the specs folder or the bundled samples), a replica count, an algorithm
and the nodes (the live machines, or a `Nodes:` inventory). The scheduler (`rtm.scheduling`,
pure) places them; the screen shows each replica's node, each node's remaining CPU and memory
as bars, and the kube-scheduler style message for replicas that fit nowhere. Nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
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
from console.tui.screens.planning_common import CSS, bar
from console.tui.views import human_bytes
from rtm.scheduling import ALGORITHMS, ScheduleResult, SchedNode, schedule

if TYPE_CHECKING:
    from console.tui.app import RtmConsole

LIVE = "live"
MAX_REPLICAS = 10_000


def format_cpu(millis: int) -> str:
    return f"{millis / 1000:g}" if millis % 100 == 0 else f"{millis}m"


def capacity_table(result: ScheduleResult, nodes: list[SchedNode]) -> Table:
    totals = {node.id: node for node in nodes}
    table = Table(expand=True, box=None, header_style="bold")
    table.add_column("NODE", no_wrap=True)
    table.add_column("CPU FREE", no_wrap=True)
    table.add_column("MEMORY FREE", no_wrap=True)
    table.add_column("REPLICAS", justify="right")
    for usage in result.nodes:
        node = totals[usage.id]
        cpu_share = usage.cpu_free / node.cpu_millis if node.cpu_millis else 0.0
        memory_share = usage.memory_free / node.memory_bytes if node.memory_bytes else 0.0
        table.add_row(
            usage.id + (" (cordoned)" if node.cordoned else ""),
            f"{bar(cpu_share)} {format_cpu(usage.cpu_free)}/{format_cpu(node.cpu_millis)}",
            f"{bar(memory_share)} {human_bytes(usage.memory_free)}",
            str(usage.replicas),
        )
    return table


def placements_table(result: ScheduleResult) -> Table:
    table = Table(expand=True, box=None, header_style="bold")
    table.add_column("REPLICA", justify="right")
    table.add_column("NODE", no_wrap=True)
    for placement in result.placements:
        table.add_row(str(placement.replica), placement.node or Text("unschedulable", style="bold reverse"))
    return table


class PlacementScreen(Screen[None]):
    DEFAULT_CSS = CSS.format(name="PlacementScreen")
    BINDINGS = [Binding("escape", "close", "Back"), Binding("f5", "preview", "Preview")]

    def __init__(self, catalog: SpecCatalog, live_nodes: list[NodeInfo], runtimes: Sequence[object] = ()) -> None:
        """`runtimes`: the runtime backends (Docker engines, libvirt hosts), merged into their machines."""
        super().__init__()
        self.catalog = catalog
        self.live_nodes = live_nodes
        self.runtimes = tuple(runtimes)
        self.result: ScheduleResult | None = None

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
        with Horizontal(id="results"):
            with VerticalScroll():
                yield Static("", id="placements", classes="section")
            with VerticalScroll():
                yield Static("", id="capacity", classes="section")
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
        self.action_preview()

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
        self.query_one("#placements", Static).update(placements_table(self.result))
        self.query_one("#capacity", Static).update(capacity_table(self.result, nodes))
        placed = sum(1 for p in self.result.placements if p.node is not None)
        asks = f"each replica asks for {format_cpu(requirements.cpu_millis)} CPU, {human_bytes(requirements.memory_bytes)}"
        if requirements.runtime:
            asks += f", a node with {requirements.runtime}"
        lines = [f"{algorithm}: {placed} of {replicas} placed; {asks}."]
        reasons = sorted({p.reason for p in self.result.unschedulable if p.reason})
        lines += [f"unschedulable: {reason}" for reason in reasons]
        messages.update("\n".join(lines))

    def action_close(self) -> None:
        self.dismiss(None)
