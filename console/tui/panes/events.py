"""The Events pane: what the control loops did and why, newest first, from the event log.

The log is a file in the data folder that the agent and other consoles append to; while the
pane is in sight it is read in a thread worker (never on the event loop) at the refresh
interval, the last `LIMIT` events.
"""

from __future__ import annotations

from textual import work
from textual.widgets import Static

from console.eventlog import Event
from console.poller import PollState
from console.tui.panes.resource import ResourcePane, show_text
from console.tui.views import Row, event_row

LIMIT = 500


class EventsPane(ResourcePane):
    kind = "events"

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self._events: list[Event] = []
        self._log_error = ""

    def on_mount(self) -> None:
        # The log is re-read at the refresh interval while the pane is in sight (not on every
        # backend's poll), and when it is shown.
        self.set_interval(self.console.options.refresh_interval, self._tick)

    def _tick(self) -> None:
        if self.console.active_pane == "events" and not self.console.paused:
            self.load_events()

    def receive(self, state: PollState, visible: bool) -> None:
        self._state = state

    def refresh_rows(self) -> None:
        self.load_events()

    @work(thread=True, exclusive=True, group="events")
    def load_events(self) -> None:
        log = self.console.services.events
        if log is None:
            return
        try:
            events = log.read(limit=LIMIT)
            error = ""
        except OSError as exc:  # an unreadable log is shown, never raised
            events, error = self._events, f"the event log {log.path} cannot be read: {exc.strerror or exc}"
        self.app.call_from_thread(self._show, events, error)

    def _show(self, events: list[Event], error: str) -> None:
        self._events, self._log_error = events, error
        if not self.table.is_mounted:
            return
        self.table.show_rows(self.rows_from(self._state, 0.0))  # type: ignore[arg-type]
        banner = self.query_one(".banner", Static)
        show_text(banner, error)
        banner.set_class(not error, "-empty")
        self.query_one(".empty-hint").set_class(bool(events), "-hidden")

    def rows_from(self, state: PollState, now: float) -> list[Row]:
        """Newest first. An event's key is its time, kind and target (plus a counter for exact
        repeats), so rows keep their keys when older events leave the window."""
        seen: dict[str, int] = {}
        rows = []
        for event in self._events:
            identity = f"{event.time:.6f}/{event.kind}/{event.target or event.workload or ''}"
            seen[identity] = seen.get(identity, 0) + 1
            rows.append(event_row(event, f"{identity}/{seen[identity]}"))
        rows.reverse()
        return rows
