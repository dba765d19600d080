"""The Alerts pane: every threshold of the specs broken now, with its value and since when.

The console evaluates the alerts on every poll (`console.exporter.firing.AlertWatch`, the
arithmetic of `render --alert-rules`); this pane lists them, most severe first. `S` silences
the selected alert for a while, through the gate (`alert.silence`: audited, refused in kiosk
mode); a silenced alert stays listed with the time its silence ends.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Static

from console.poller import PollState
from console.tui.panes.resource import ResourcePane, show_text
from console.tui.views import Row, alert_row


class AlertsPane(ResourcePane):
    kind = "alerts"

    BINDINGS = [Binding("S", "silence", "Silence")]

    def receive(self, state: PollState, visible: bool) -> None:
        self._state = state
        if visible:
            self.refresh_rows()

    def refresh_rows(self) -> None:
        if not self.table.is_mounted or not self.query(".banner"):
            return
        self.table.show_rows(self.rows_from(self._state, self.console.services.clock()))  # type: ignore[arg-type]
        watch = self.console.alerts
        problem = watch.silences.problem
        banner = self.query_one(".banner", Static)
        show_text(banner, problem)
        banner.set_class(not problem, "-empty")
        hint = self.query_one(".empty-hint", Static)
        show_text(hint, f"No alert fires ({watch.threshold_count} thresholds from the specs, evaluated on every poll).")
        hint.set_class(bool(self.table.all_rows), "-hidden")

    def rows_from(self, state: PollState | None, now: float) -> list[Row]:
        return [alert_row(alert, now) for alert in self.console.alerts.current()]

    def action_silence(self) -> None:
        row = self.table.selected_row()
        if row is None:
            self.notify("Select an alert first.", severity="warning")
            return
        self.console.silence_alert(row)
