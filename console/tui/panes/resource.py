"""A pane listing one kind of resource: banner for backends that are down, filter, table.

The pane is handed every poll state; it turns the records of its kind into rows (views.py)
and the table shows them. A pane out of sight only remembers the newest state and builds its
rows when it is shown again. A backend that is not connected is named in the banner above the
table with its address, the cause and what to try; its last good rows stay in the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Static

from backends.base import Availability, FocusableBackend
from console.poller import PollState
from console.resource_kinds import KINDS
from console.tui import offered_actions
from console.tui.views import COLUMNS, PANE_KINDS, Row, RowBuilder, alerted_names, mark_alerted, row_key
from console.tui.widgets.resource_table import ResourceTable

if TYPE_CHECKING:
    from console.tui.app import RtmConsole

# Kinds whose rows keep a history for the details' sparklines (while in sight or selected)
# and are marked when an alert names them: those that run workloads' replicas.
HISTORY_KINDS = frozenset(kind.name for kind in KINDS if kind.runs_replicas)
# Columns whose order depends on the statistics of every row.
STATISTIC_COLUMNS = frozenset({"cpu", "memory", "disk", "net", "load"})

EMPTY_HINTS = {
    **{kind.name: kind.empty_hint for kind in KINDS},
    "events": "No events yet: the agent's control loops and apply write them here.",
    "alerts": "No alert fires.",
}


def show_text(widget: Static, content: str, layout: bool = True) -> None:
    """Update a Static only when its text changes: an update repaints it, and with `layout`
    lays the whole screen out again, which on every poll was a good part of the idle CPU."""
    if widget.content != content:
        widget.update(content, layout=layout)


def banner_lines(states: Iterable[Any], unavailable: Iterable[Availability], now: float) -> list[str]:
    """One line per backend that is not connected: where, why, what to try, and the age of the
    rows still shown from its last good poll."""
    lines = []
    for state in states:
        availability = state.availability
        if availability.state == "connected":
            continue
        if availability.state == "pending":
            lines.append(f"{state.name}: connecting to {availability.endpoint} …")
            continue
        line = f"{state.name}: {availability.describe()}"
        age = state.age(now)
        if state.snapshot is not None and age is not None:
            line += f" — showing its last data, {age:.0f} s old"
        lines.append(line)
    lines += [availability.describe() for availability in unavailable]
    return lines


def with_swarm_tasks(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Every engine's containers with the Swarm task rows of the managers' polls: a task whose
    container a configured engine (a worker's, or the manager's) lists is that engine's row, with
    its statistics, exec and shell; the others stay task rows (backends/docker/swarm/tasks.py)."""
    if not any("/" in record.engine for _backend, record in pairs):
        return pairs  # no task row: nothing to merge (and the Swarm code is not imported)
    from backends.docker.swarm.tasks import merge_task_pairs

    return merge_task_pairs(pairs, ())


class ResourcePane(Vertical):
    kind: ClassVar[str] = "nodes"

    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("enter", "details", "Details", show=False),
        Binding("s", "resource('start')", "Start"),
        Binding("o", "resource('stop')", "Stop"),
        Binding("R", "resource('restart')", "Restart"),
        Binding("ctrl+d", "resource('delete')", "Delete"),
        Binding("x", "resource('exec')", "Exec"),
        Binding("i", "resource('invoke')", "Invoke"),
        Binding("c", "resource('cordon')", "Cordon"),
        Binding("u", "resource('uncordon')", "Uncordon"),
    ]

    DEFAULT_CSS = """
    ResourcePane > .banner { height: auto; padding: 0 1; background: $error 20%; }
    ResourcePane > .banner.-empty { display: none; }
    ResourcePane > Input { display: none; }
    ResourcePane > Input.-active { display: block; }
    ResourcePane > .empty-hint { height: auto; padding: 0 1; color: $text-muted; }
    ResourcePane > .empty-hint.-hidden { display: none; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.builder = RowBuilder(self.kind) if self.kind in PANE_KINDS else None
        self.table = ResourceTable(COLUMNS[self.kind])  # exists before the pane is mounted
        self._state: PollState | None = None
        self._seen: tuple[object, ...] = ()
        self._stale = False
        self._stats_focus: dict[str, frozenset[str] | None] = {}  # per backend, as last told

    @property
    def console(self) -> RtmConsole:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static("", classes="banner -empty")
        yield Static(EMPTY_HINTS.get(self.kind, ""), classes="empty-hint -hidden")
        yield Input(placeholder="filter: words that must all appear in a row (Esc clears)")
        yield self.table

    # ------------------------------------------------------------------ data

    def receive(self, state: PollState, visible: bool) -> None:
        """A new poll state; rebuilt now when the pane is in sight, else when it is shown.

        States published for other kinds of backend (every backend publishes the whole
        state) leave this pane alone: it changes only when one of its own backends polled.
        """
        mine = self._fingerprint(state)
        if mine != self._seen or self._state is None:
            self._seen = mine
            self._stale = True
        self._state = state
        if visible:
            self.refresh_rows()

    def _fingerprint(self, state: PollState) -> tuple[object, ...]:
        return (self.console.alert_subjects, *(
            (backend.name, id(backend.snapshot), backend.availability, backend.error)
            for backend in state.of_kind(self.kind)  # type: ignore[arg-type]
        ))

    def refresh_rows(self) -> None:
        if not self._stale or self._state is None or not self.table.is_mounted or not self.query(".banner"):
            return  # not composed yet: shown when it is
        self._stale = False
        services = self.console.services
        state = self._state
        self.table.show_rows(self.rows_from(state, services.clock()))
        self._update_banner(state, services.poll_clock())
        self.report_view()
        self.watch_view()

    def watch_view(self) -> None:
        """The rows in sight and the selected one keep a history for the details' sparklines."""
        if self.kind not in HISTORY_KINDS:
            return
        keys = {row.key for row in self.table.rows_in_view()}
        selected = self.table.selected_row()
        if selected is not None:
            keys.add(selected.key)
        self.console.watch_rows(self.kind, frozenset(keys))

    # ------------------------------------------------------------------ what is in sight

    def report_view(self) -> None:
        """Tell the backends that read statistics per resource (FocusableBackend) which of
        theirs are on screen, so an idle console over hundreds of containers reads about a
        screenful per refresh. All are read on every poll while the table is sorted by a
        statistic (the order depends on every row) or the console exports metrics."""
        backends = self._focusable_backends()
        if not backends:
            return
        sort = self.table.sort_column
        read_all = (self.console.options.hidden_interval_factor <= 1
                    or (sort is not None and self.table.resource_columns[sort].key in STATISTIC_COLUMNS))
        in_view: dict[str, set[str]] = {name: set() for name in backends}
        if not read_all:
            for row in self.table.rows_in_view():
                if row.backend in in_view:
                    in_view[row.backend].add(row.key.rsplit("/", 1)[-1])
        for name, backend in backends.items():
            self._set_focus(name, backend, None if read_all else frozenset(in_view[name]))

    def release_view(self) -> None:
        """The pane left the screen: its backends read every resource again (at the slower
        cadence of hidden panes), and its rows keep no history."""
        self.console.watch_rows(self.kind, frozenset())
        for name, backend in self._focusable_backends().items():
            self._set_focus(name, backend, None)

    def _focusable_backends(self) -> dict[str, FocusableBackend]:
        return {name: backend for name, backend in self.console.services.backends.items()
                if backend.kind == self.kind and isinstance(backend, FocusableBackend)}

    def _set_focus(self, name: str, backend: FocusableBackend, focus: frozenset[str] | None) -> None:
        if self._stats_focus.get(name, ()) != focus:  # () is never a focus: the first call always goes through
            self._stats_focus[name] = focus
            backend.focus(focus)

    def on_resource_table_view_moved(self, event: ResourceTable.ViewMoved) -> None:
        if self.console.active_pane == self.kind:
            self.report_view()
            self.watch_view()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.console.active_pane == self.kind:
            self.watch_view()

    def record_pairs(self, state: PollState) -> list[tuple[str, Any]]:
        """(backend name, record) of every row the pane shows."""
        pairs = [
            (backend.name, record)
            for backend in state.of_kind(self.kind)  # type: ignore[arg-type]
            if backend.snapshot is not None
            for record in backend.snapshot.items
        ]
        return with_swarm_tasks(pairs) if self.kind == "containers" else pairs

    def record_of(self, state: PollState, key: str) -> Any:
        """The record a row shows (a Swarm task's container with its task labels), or None."""
        return next((record for backend, record in self.record_pairs(state) if row_key(record, backend) == key), None)

    def rows_from(self, state: PollState, now: float) -> list[Row]:
        assert self.builder is not None
        pairs = self.record_pairs(state)
        rows = self.builder.build(pairs, now, self.console.node_rates())
        if self.kind in HISTORY_KINDS:
            rows = mark_alerted(rows, alerted_names(pairs, self.console.alerts.current()))
        return rows

    def _update_banner(self, state: PollState, now: float) -> None:
        services = self.console.services
        states = state.of_kind(self.kind)  # type: ignore[arg-type]
        lines = banner_lines(states, services.unavailable_for(self.kind), now)  # type: ignore[arg-type]
        banner = self.query_one(".banner", Static)
        show_text(banner, "\n".join(lines))
        banner.set_class(not lines, "-empty")
        hint = self.query_one(".empty-hint", Static)
        hint.set_class(bool(self.table.all_rows) or bool(states) or bool(lines), "-hidden")

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resource":
            return offered_actions.available(str(parameters[0]), self.kind, self.console.services)
        return True

    def action_filter(self) -> None:
        box = self.query_one(Input)
        box.add_class("-active")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one(Input)
        box.value = ""
        box.remove_class("-active")
        self.table.set_filter("")
        self.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.table.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()

    def action_details(self) -> None:
        row = self.table.selected_row()
        if row is not None:
            self.console.open_details(self.kind, row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_details()

    def action_resource(self, verb: str) -> None:
        row = self.table.selected_row()
        if row is None:
            self.notify("Select a row first.", severity="warning")
            return
        self.console.run_verb(self.kind, verb, row)

    def focus_table(self) -> None:
        """Now, not queued as Widget.focus() is: a focus that came after another pane was shown
        would pull the view back here (the tabs show the pane that holds the focus)."""
        self.screen.set_focus(self.table)
