"""The Containers, VMs and Functions panes: one table each, over every backend of the kind.

`e` hands the terminal to an interactive session on the selected row: a shell in a container,
a VM's serial console (console/tui/sessions.py), through the gate (refused in kiosk mode)."""

from __future__ import annotations

from textual.binding import Binding

from console.tui.panes.resource import ResourcePane


class ContainersPane(ResourcePane):
    kind = "containers"

    BINDINGS = [Binding("e", "session", "Shell")]

    def action_session(self) -> None:
        row = self.table.selected_row()
        if row is None:
            self.notify("Select a container first.", severity="warning")
            return
        self.console.open_shell(row)


class VmsPane(ResourcePane):
    kind = "vms"

    BINDINGS = [Binding("e", "session", "Serial console")]

    def action_session(self) -> None:
        row = self.table.selected_row()
        if row is None:
            self.notify("Select a VM first.", severity="warning")
            return
        self.console.open_serial_console(row)


class FunctionsPane(ResourcePane):
    kind = "functions"
