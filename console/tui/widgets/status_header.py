"""The header: the console's mode and each backend's availability, in one or two lines.

`interactive` or `KIOSK` (with `[locked]` when the keyboard cannot quit), then every backend
as `name: state` (connected, unreachable, not installed, sandbox, read-only), the refresh
interval and whether the display is paused. Words, not only colours, so it reads the same in
monochrome (NO_COLOR) and high contrast.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

from backends.base import Availability
from console.poller import PollState

STATE_WORDS = {
    "pending": "connecting",
    "connected": "connected",
    "unreachable": "unreachable",
    "not_installed": "not installed",
    "disabled": "disabled",
}
STATE_STYLES = {"connected": "bold", "unreachable": "bold reverse", "not_installed": "dim", "pending": "italic"}


def header_text(
    mode: str,
    locked: bool,
    state: PollState | None,
    unavailable: Iterable[Availability],
    interval: float,
    paused: bool,
    note: str = "",
) -> Text:
    text = Text()
    text.append(" rtm-console ", style="bold reverse")
    text.append(" ")
    if mode == "kiosk":
        text.append("KIOSK read-only", style="bold")
        if locked:
            text.append(" [locked]", style="bold")
    else:
        text.append("interactive")
    text.append(f"  refresh {interval:g}s")
    if paused:
        text.append("  PAUSED", style="bold reverse")
    text.append("  │ ")
    entries: list[tuple[str, Availability]] = []
    if state is not None:
        entries += [(name, backend.availability) for name, backend in state.backends.items()]
    entries += [(availability.backend, availability) for availability in unavailable]
    for index, (name, availability) in enumerate(entries):
        if index:
            text.append("  ")
        text.append(f"{name}: ")
        text.append(STATE_WORDS.get(availability.state, availability.state), style=STATE_STYLES.get(availability.state, ""))
        if availability.sandbox:
            text.append(" [sandbox]", style="italic")
        if availability.read_only:
            text.append(" [read-only]", style="italic")
    if note:
        text.append(f"  │ {note}")
    return text


class StatusHeader(Static):
    DEFAULT_CSS = """
    StatusHeader {
        dock: top;
        height: auto;
        max-height: 2;
        background: $panel;
        color: $foreground;
    }
    """
