"""The Nodes pane: machines with CPU, memory, disk and network, and sparklines of the selected
node's recent history (two minutes at the default refresh)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from console.tui.panes.resource import ResourcePane, show_text
from console.tui.views import human_rate

SERIES = (("cpu", "CPU %"), ("memory", "Memory %"), ("disk", "Disk I/O"), ("network", "Network"))


class NodesPane(ResourcePane):
    kind = "nodes"

    DEFAULT_CSS = """
    NodesPane > ResourceTable { height: 1fr; }
    NodesPane > #node-history { height: 4; }
    NodesPane #node-history > Vertical { width: 1fr; padding: 0 1; }
    NodesPane #node-history Static { height: 1; }
    NodesPane #node-history Sparkline { height: 2; }
    """

    def compose(self) -> ComposeResult:
        yield from super().compose()
        with Horizontal(id="node-history"):
            for key, label in SERIES:
                with Vertical():
                    yield Static(label, id=f"label-{key}")
                    yield Sparkline([], id=f"spark-{key}")

    def refresh_rows(self) -> None:
        super().refresh_rows()
        self.update_history()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.update_history()

    def on_mount(self) -> None:
        # The sparklines are mounted a moment after the table: draw them once they are there.
        self.call_after_refresh(self.update_history)

    def update_history(self) -> None:
        sparklines = {spark.id: spark for spark in self.query(Sparkline)}
        labels = {label.id: label for label in self.query("#node-history Static").results(Static)}
        if len(sparklines) < len(SERIES) or len(labels) < len(SERIES):
            return  # a poll arrived before the history row was mounted: drawn on mount
        row = self.table.selected_row()
        series = self.console.node_series(row.key) if row is not None else {}
        for key, label in SERIES:
            values = series.get(key, [])
            sparklines[f"spark-{key}"].data = values
            caption = label
            if values:
                last = values[-1]
                caption += f" {last:.0f}%" if key in ("cpu", "memory") else f" {human_rate(last)}"
            if row is not None:
                caption += f"  ({row.name})" if key == "cpu" else ""
            show_text(labels[f"label-{key}"], caption, layout=False)  # one line, always: no new layout
