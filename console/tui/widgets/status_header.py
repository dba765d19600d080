"""The header: the console's mode and each backend's availability, in one to three lines.

`interactive` or `KIOSK read-only` (with `[locked]` when the keyboard cannot quit), PAUSED
when the display is paused, how many alerts fire (`2 ALERTS`, `no alerts`, silenced ones
counted apart), then every backend as `name state` (up, DOWN, not installed,
connecting; "(sandbox)" and "(read-only)" where they apply), the Docker Swarm clusters
(`swarm docker@n1 3 nodes (1 down)`, from what each manager engine's poll saw) and the refresh
interval. Words, not only colours, so it reads the same in monochrome (NO_COLOR) and high contrast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console
from rich.text import Text
from textual.widgets import Static

from backends.base import Availability
from console.poller import PollState

STATE_WORDS = {
    "pending": "connecting",
    "connected": "up",
    "unreachable": "DOWN",
    "not_installed": "not installed",
    "disabled": "off",
}
STATE_STYLES = {"connected": "bold", "unreachable": "bold reverse", "not_installed": "dim", "pending": "italic"}


@dataclass(frozen=True)
class HeaderInfo:
    mode: str
    locked: bool
    state: PollState | None
    unavailable: tuple[Availability, ...]
    interval: float
    paused: bool
    note: str = ""
    alerts: tuple[int, int] = (0, 0)  # firing (not silenced), silenced


def header_text(info: HeaderInfo, width: int = 0, console: Console | None = None) -> Text:
    """The full header; when it would take more than two lines of `width`, a summary that
    still names every backend that is not up."""
    full = _header(info, compact=False)
    if not width:
        return full
    # Whether the backends fit is decided without the notes (they come last and may be cut).
    core = _header(replace(info, note=""), compact=False)
    lines = len(core.wrap(console, width)) if console is not None else -(-core.cell_len // width)
    return full if lines <= 2 else _header(info, compact=True)


def _header(info: HeaderInfo, compact: bool) -> Text:
    mode, locked, state, unavailable = info.mode, info.locked, info.state, info.unavailable
    text = Text()
    text.append(" rtm-console ", style="bold reverse")
    text.append(" ")
    if mode == "kiosk":
        text.append("KIOSK read-only", style="bold")
        if locked:
            text.append(" [locked]", style="bold")
    else:
        text.append("interactive")
    if info.paused:
        text.append(" PAUSED", style="bold reverse")
    firing, silenced = info.alerts
    text.append(" │ ")
    if firing:
        text.append(f"{firing} ALERT{'S' if firing > 1 else ''}", style="bold reverse")
    else:
        text.append("no alerts")
    if silenced:
        text.append(f" ({silenced} silenced)")
    text.append(" │ ")
    entries: list[tuple[str, Availability]] = []
    if state is not None:
        entries += [(name, backend.availability) for name, backend in state.backends.items()]
    entries += [(availability.backend, availability) for availability in unavailable]
    if compact:
        up = sum(1 for _, availability in entries if availability.state == "connected")
        text.append(f"{len(entries)} backends, {up} up")
        entries = [(name, a) for name, a in entries if a.state != "connected"]
        if entries:
            text.append("; ")
    for index, (name, availability) in enumerate(entries):
        if index:
            text.append("  ")
        text.append(f"{name} ")
        text.append(STATE_WORDS.get(availability.state, availability.state), style=STATE_STYLES.get(availability.state, ""))
        if availability.sandbox:
            text.append(" (sandbox)", style="italic")
        if availability.read_only:
            text.append(" (read-only)", style="italic")
    clusters = swarm_clusters(state)
    if clusters:
        text.append(" │ ")
        text.append("  ".join(clusters), style="bold")
    text.append(f" │ every {info.interval:g}s")
    if info.note:
        text.append(f" │ {info.note}")
    return text


def swarm_clusters(state: PollState | None) -> list[str]:
    """The Swarm clusters among the connected Docker engines: one per manager whose last poll saw
    its swarm (two managers of one swarm show it once); none when no engine is a manager."""
    engines = [b.name for b in state.of_kind("containers") if b.availability.state == "connected"] if state is not None else []
    if not engines:
        return []  # no Docker engine: the Swarm code is not even imported
    from backends.docker.swarm.observer import latest

    seen: dict[tuple[Any, ...], str] = {}
    for name in engines:
        status = latest(name)
        if status is not None and status.nodes not in seen:
            seen[status.nodes] = cluster_words(status)
    return list(seen.values())


def cluster_words(status: Any) -> str:
    """`swarm CLUSTER N nodes`, with how many are not ready: `(1 down)`."""
    count, down = len(status.nodes), sum(1 for _hostname, _availability, state in status.nodes if state != "ready")
    return f"swarm {status.cluster} {count} node{'s' if count != 1 else ''}" + (f" ({down} down)" if down else "")


class StatusHeader(Static):
    """Shows a HeaderInfo, re-laid out for the terminal's width."""

    def __init__(self, info: HeaderInfo) -> None:
        super().__init__()
        self.info = info
        self._shown: Text | None = None

    def show(self, info: HeaderInfo) -> None:
        """New facts; the header repaints only when its text changes (most polls change
        nothing in it), and lays the screen out again only when its height changes."""
        self.info = info
        if not self.is_mounted or not self.size.width:
            return
        text = header_text(info, self.size.width, self.app.console)
        if text == self._shown:
            return
        before = self._lines(self._shown)
        self._shown = text
        self.refresh(layout=self._lines(text) != before)

    def _lines(self, text: Text | None) -> int:
        return 0 if text is None else len(text.wrap(self.app.console, max(1, self.size.width)))

    def render(self) -> Text:
        self._shown = header_text(self.info, self.size.width, self.app.console)
        return self._shown

    def on_resize(self) -> None:
        self.refresh(layout=True)

    DEFAULT_CSS = """
    StatusHeader {
        dock: top;
        height: auto;
        max-height: 3;
        background: $panel;
        color: $foreground;
    }
    """
