"""The panes of the console: id, title and number key, the class that shows each, the names
the `:` prompt understands for them, and the kiosk's cycle."""

from __future__ import annotations

from console.tui.panes.alerts import AlertsPane
from console.tui.panes.events import EventsPane
from console.tui.panes.nodes import NodesPane
from console.tui.panes.runtimes import ContainersPane, FunctionsPane, VmsPane
from console.tui.panes.specs import SpecsPane

# (pane id, title, key)
PANES: tuple[tuple[str, str, str], ...] = (
    ("nodes", "Nodes", "1"),
    ("containers", "Containers", "2"),
    ("vms", "VMs", "3"),
    ("functions", "Functions", "4"),
    ("specs", "Specs", "5"),
    ("events", "Events", "6"),
    ("alerts", "Alerts", "7"),
)
PANE_CLASSES = {
    "nodes": NodesPane,
    "containers": ContainersPane,
    "vms": VmsPane,
    "functions": FunctionsPane,
    "specs": SpecsPane,
    "events": EventsPane,
    "alerts": AlertsPane,
}
# What the `:` prompt understands as a pane (k9s-style short forms included).
PANE_ALIASES = {
    "nodes": ("no", "node", "nodes", "machines"),
    "containers": ("co", "container", "containers", "docker", "pods", "po"),
    "vms": ("vm", "vms", "domains", "virt"),
    "functions": ("fn", "func", "function", "functions", "lambda"),
    "specs": ("sp", "spec", "specs", "editor"),
    "events": ("ev", "event", "events"),
    "alerts": ("al", "alert", "alerts"),
}
ALIAS_TO_PANE = {alias: pane for pane, aliases in PANE_ALIASES.items() for alias in aliases}
# The wall screen's rotation: the Alerts pane is its main use.
KIOSK_CYCLE = ("alerts", "nodes", "containers", "vms", "functions", "events")
