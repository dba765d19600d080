"""The panes of the console: id, title and number key, the class that shows each, the names
the `:` prompt understands for them, and the kiosk's cycle."""

from __future__ import annotations

from console.resource_kinds import KINDS
from console.tui.panes.alerts import AlertsPane
from console.tui.panes.events import EventsPane
from console.tui.panes.nodes import NodesPane
from console.tui.panes.runtimes import ContainersPane, FunctionsPane, VmsPane
from console.tui.panes.specs import SpecsPane

# (pane id, title, key): the resource kinds' panes (console/resource_kinds.py), then the others.
PANES: tuple[tuple[str, str, str], ...] = (
    *((kind.name, kind.title, kind.key) for kind in KINDS),
    ("specs", "Specs", "5"),
    ("events", "Events", "6"),
    ("alerts", "Alerts", "7"),
)
PANE_CLASSES = {pane.kind: pane for pane in (NodesPane, ContainersPane, VmsPane, FunctionsPane, SpecsPane, EventsPane, AlertsPane)}
# What the `:` prompt understands as a pane (k9s-style short forms included): a resource
# kind's aliases are its descriptor's.
PANE_ALIASES = {
    **{kind.name: kind.aliases for kind in KINDS},
    "specs": ("sp", "spec", "specs", "editor"),
    "events": ("ev", "event", "events"),
    "alerts": ("al", "alert", "alerts"),
}
ALIAS_TO_PANE = {alias: pane for pane, aliases in PANE_ALIASES.items() for alias in aliases}
# The wall screen's rotation: the Alerts pane is its main use.
KIOSK_CYCLE = ("alerts", *(kind.name for kind in KINDS), "events")
