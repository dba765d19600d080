"""Four sparklines in a row with their latest value: CPU, memory, network and disk of one
container or VM over its last 60 samples (console/tui/sparkline_history.py keeps them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from console.tui.views import human_bytes, human_rate

SERIES = (("cpu", "CPU"), ("memory", "Memory"), ("network", "Network"), ("disk", "Disk I/O"))


def caption(key: str, label: str, values: Sequence[float]) -> str:
    if not values:
        return f"{label} (collecting…)"
    last = values[-1]
    if key == "cpu":
        return f"{label} {last:.1f}% of a core"
    if key == "memory":
        return f"{label} {human_bytes(last)}"
    return f"{label} {human_rate(last)}"


class HistoryStrip(Horizontal):
    DEFAULT_CSS = """
    HistoryStrip { height: 3; }
    HistoryStrip > Vertical { width: 1fr; padding: 0 1; }
    HistoryStrip Static { height: 1; }
    HistoryStrip Sparkline { height: 2; }
    """

    def compose(self) -> ComposeResult:
        for key, label in SERIES:
            with Vertical():
                yield Static(caption(key, label, ()), id=f"history-label-{key}", markup=False)
                yield Sparkline([], id=f"history-{key}")

    def show(self, series: Mapping[str, Sequence[float]]) -> None:
        for key, label in SERIES:
            values = list(series.get(key, ()))
            self.query_one(f"#history-{key}", Sparkline).data = values
            text = caption(key, label, values)
            widget = self.query_one(f"#history-label-{key}", Static)
            if widget.content != text:
                widget.update(text)
