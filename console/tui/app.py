"""The rtm-console app: header, seven panes, bindings, live data from the poller, gated actions.

Live data: the poller calls `_on_poll` from its worker threads; the newest state is kept and a
message is posted to the app (non-blocking, so a poller thread never waits on the screen and
never hangs when the app closes). On the event loop the state goes to the header and to the
pane in sight; panes out of sight build their rows when shown again, and the poller polls
their backends less often. Paused (`p`), the screen keeps its rows while the poller goes on
(the exporter still serves fresh numbers).

Changes: every action runs in a thread worker through `services.gate.run`; the gate refuses in
kiosk mode, asks before destructive steps (its question is shown in a modal dialog, named
after the target) and writes the audit log. Results come back as notifications; failures name
the debug log, never show a traceback.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from typing import Any

# Before any Textual module: stops with a clear message when the installed Textual is unsupported.
from console.tui.textual_compat import end_fatal_errors_with_one_line  # isort: skip

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widget import AwaitMount
from textual.widgets import Footer, TabbedContent, TabPane

from backends.records import ContainerInfo, NodeInfo
from console.exporter.firing import AlertWatch
from console.poller import PollState
from console.resource_kinds import KINDS, kind_named
from console.tui.gated import GatedActions
from console.tui.sparkline_history import NodeHistory, ResourceHistory
from console.tui.navigation import Navigation
from console.tui.panes.resource import ResourcePane
from console.tui.panes.specs import SpecsPane
from console.tui.planning import find_specs
from console.tui.registry import KIOSK_CYCLE, PANE_CLASSES, PANES
from console.tui.screens.dialogs import UnsavedScreen
from console.tui.console_services import ConsoleOptions, ConsoleServices
from console.tui.views import NodeRates, Row, row_key
from console.tui.widgets.status_header import HeaderInfo, StatusHeader
from themes import EDITOR_THEMES, STYLESHEET, THEME_NAMES, THEMES

__all__ = ["PANES", "RtmConsole"]

FIRST_PANE = "nodes"  # in sight at start; the other panes are built after the first paint


class PollUpdated(Message):
    """A newer poll state is waiting in `RtmConsole._pending`."""


class RtmConsole(GatedActions, Navigation, App[int]):
    CSS_PATH = str(STYLESHEET)
    TITLE = "rtm-console"

    BINDINGS = [
        *(Binding(key, f"show_pane('{pane}')", title, show=False) for pane, title, key in PANES),
        Binding("question_mark", "help", "Help"),
        Binding("colon", "prompt", "Jump"),
        Binding("p", "toggle_pause", "Pause"),
        Binding("r", "refresh", "Refresh"),
        Binding("t", "next_theme", "Theme"),
        Binding("P", "placement", "Placement"),
        Binding("H", "scaling", "Scaling"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, system=True),
    ]

    def __init__(self, services: ConsoleServices, options: ConsoleOptions | None = None) -> None:
        super().__init__()
        self.services = services
        self.options = options or ConsoleOptions()
        for theme in THEMES.values():
            self.register_theme(theme)
        self.theme = self.options.theme if self.options.theme in THEMES else "dark"
        self.alerts = services.alerts or AlertWatch(services.specs_dir, services.data_dir, services.events,
                                                    write_events=False, clock=services.clock)
        self.alert_subjects: frozenset[str] = frozenset()  # what the last evaluation named, for the panes
        self.history = NodeHistory()
        self.resource_history = ResourceHistory()
        self._watched: dict[str, frozenset[str]] = {}  # who watches which rows: a pane's in sight, details
        self._history_lock = threading.Lock()  # fed on poller threads, read on the event loop
        self.paused = False
        self.state: PollState | None = None
        self._pending: PollState | None = None
        self._pending_lock = threading.Lock()
        self._posted = False
        self._unsubscribe: Callable[[], None] | None = None
        self._after_save_action: Callable[[], None] | None = None
        self._building: dict[str, AwaitMount] = {}  # panes built after the first paint
        services.gate.confirm = self.confirm_from_worker

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        # Kept by reference: while another screen is on top, queries would not find them.
        self.header = StatusHeader(self._header())
        self.tabs = TabbedContent(initial=FIRST_PANE, id="panes")
        self.panes = {pane: PANE_CLASSES[pane](id=f"pane-{pane}") for pane, _, _ in PANES}
        yield self.header
        with self.tabs:
            for pane, title, key in PANES:
                with TabPane(f"{key} {title}", id=pane):
                    if pane == FIRST_PANE:  # the others are built after the first paint
                        yield self.panes[pane]
        yield Footer()

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._unsubscribe = self.services.source.subscribe(self._on_poll)
        latest = self.services.source.latest()
        self._record_history(latest)
        self.alerts.update(latest)
        self._apply_state(latest)
        self._retune_intervals("nodes")
        self.pane("nodes").focus_table()  # type: ignore[attr-defined]
        if self.options.kiosk and self.options.cycle_interval > 0:
            self.set_interval(self.options.cycle_interval, self._cycle_pane)
        if self.services.after_first_paint is not None:
            self.call_after_refresh(self.services.after_first_paint)
        self.call_after_refresh(self._build_hidden_panes)

    async def _build_hidden_panes(self) -> None:
        """After the first paint: the panes out of sight (about 100 widgets, the spec editor
        among them) are composed one after another, so keys are read in between; a pane shown
        before its turn is built first (_build_pane)."""
        for pane_id, _, _ in PANES:
            await self._build_pane(pane_id)
        if self.options.freeze_startup_objects:
            self._freeze_startup_objects()

    async def _build_pane(self, pane_id: str) -> None:
        if pane_id == FIRST_PANE:
            return
        if pane_id not in self._building:
            tab = self.tabs.get_pane(pane_id)
            if not tab.is_attached:  # the app is closing
                return
            self._building[pane_id] = tab.mount(self.panes[pane_id])
        await self._building[pane_id]

    @staticmethod
    def _freeze_startup_objects() -> None:
        """A full collection walks every tracked object: at startup that is ~100,000 objects
        of modules, classes and widgets that live as long as the process. Frozen, they are
        skipped, and a full collection during a 5,000-row refresh costs half as much. Garbage
        is collected first so none of it is kept (~30 ms, so not before the first paint);
        frozen objects are still freed by reference counting when they go."""
        gc.collect()
        gc.freeze()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def pane(self, pane_id: str) -> Any:
        return self.panes[pane_id]

    @property
    def active_pane(self) -> str:
        return self.tabs.active or "nodes"

    # ------------------------------------------------------------------ live data

    def _on_poll(self, state: PollState) -> None:
        """Called on a poller thread: record the node history (every poll counts, even while
        the screen is busy or paused), keep the newest state, wake the app once."""
        self._record_history(state)
        self.alerts.update(state)
        with self._pending_lock:
            if self._pending is None or state.version > self._pending.version:
                self._pending = state
            if self._posted:
                return
            self._posted = True
        self.post_message(PollUpdated())

    def on_poll_updated(self, message: PollUpdated) -> None:
        self._apply_pending()

    def _apply_pending(self) -> None:
        with self._pending_lock:
            state, self._posted = self._pending, False
        if state is not None:
            self._apply_state(state)

    def _apply_state(self, state: PollState) -> None:
        if self.state is not None and state.version < self.state.version:
            return
        self.state = state
        firing = self.alerts.current()
        self.alert_subjects = frozenset(alert.key for alert in firing)
        self.panes["specs"].mark_alerted(frozenset(a.source.rsplit(":", 1)[0] for a in firing if a.workload))
        self.header.show(self._header())
        if self.paused:
            return
        active = self.active_pane
        for pane_id, _, _ in PANES:
            pane = self.pane(pane_id)
            if isinstance(pane, ResourcePane):
                pane.receive(state, visible=pane_id == active)

    def _record_history(self, state: PollState) -> None:
        keys = set()
        with self._history_lock:
            for backend in state.of_kind("nodes"):
                if backend.snapshot is None:
                    continue
                for node in backend.snapshot.items:
                    key = row_key(node, backend.name)
                    keys.add(key)
                    self.history.add(key, node, backend.snapshot.taken_at)  # type: ignore[arg-type]
            self.history.forget_missing(keys)
            watched = self.watched_rows
            for backend in (b for kind in KINDS if kind.runs_replicas for b in state.of_kind(kind.name)):
                if backend.snapshot is None or not watched:
                    continue
                for record in backend.snapshot.items:
                    key = row_key(record, backend.name)
                    if key in watched:
                        self.resource_history.add(key, record, backend.snapshot.taken_at)  # type: ignore[arg-type]
            self.resource_history.keep_only(watched)

    @property
    def watched_rows(self) -> frozenset[str]:
        """The containers and VMs whose history is kept: the rows in sight of the pane shown,
        its selected row and a details screen's resource."""
        return frozenset().union(*self._watched.values())

    def watch_rows(self, watcher: str, keys: frozenset[str]) -> None:
        """Called on the event loop; read on the poller threads (a dict item swap is atomic)."""
        self._watched[watcher] = keys

    def resource_series(self, key: str) -> dict[str, list[float]]:
        with self._history_lock:
            return self.resource_history.series(key)

    def node_rates(self) -> dict[str, NodeRates]:
        with self._history_lock:
            return dict(self.history.rates())

    def node_series(self, key: str) -> dict[str, list[float]]:
        """A copy of one node's recent history, by series name (cpu, memory, disk, network)."""
        with self._history_lock:
            series = self.history.series(key)
            if series is None:
                return {}
            return {name: list(getattr(series, name)) for name in ("cpu", "memory", "disk", "network")}

    def _header(self) -> HeaderInfo:
        return HeaderInfo(
            self.options.mode,
            self.options.kiosk_lock,
            self.state,
            tuple(self.services.unavailable),
            self.options.refresh_interval,
            self.paused,
            " │ ".join(self.services.header_notes),
            self.alerts.counts(),
        )

    def backends_changed(self) -> None:
        """Backends were added or the header notes changed (the start-up adds them after the
        first paint): poll them at their pane's cadence and show them."""
        self._retune_intervals(self.active_pane)
        self.header.show(self._header())

    def _retune_intervals(self, active: str) -> None:
        """Backends of the pane in sight (and the host, for the sparklines) poll at the refresh
        interval; the others less often. The pane shown gets a fresh poll at once."""
        base = self.options.refresh_interval
        for name, kind in self.services.backend_kinds.items():
            seen = kind == active or kind == "nodes"
            try:
                self.services.source.set_interval(name, base if seen else base * self.options.hidden_interval_factor)
                if kind == active:
                    self.services.source.refresh_now(name)
            except KeyError:
                continue

    @on(TabbedContent.TabActivated, "#panes")
    async def _pane_activated(self, event: TabbedContent.TabActivated) -> None:
        pane_id = event.pane.id or "nodes"
        await self._build_pane(pane_id)
        if self.active_pane != pane_id:
            return  # another pane was shown while this one was built: its own handler takes over
        self._apply_pending()  # polls that came while it was built: the header agrees with the pane
        first_contact = self.services.on_pane_shown
        if first_contact is not None and first_contact(pane_id):
            self.backends_changed()  # its backends are polled from now on: header and cadence
        else:
            self._retune_intervals(pane_id)
        for other_id, _, _ in PANES:
            other = self.pane(other_id)
            if other_id != pane_id and isinstance(other, ResourcePane):
                other.release_view()
        pane = self.pane(pane_id)
        if isinstance(pane, ResourcePane):
            if self.state is not None and not self.paused:
                pane.receive(self.state, visible=True)
            pane.focus_table()
        elif isinstance(pane, SpecsPane):
            pane.focus_files()

    # ------------------------------------------------------------------ navigation

    def action_show_pane(self, pane_id: str) -> None:
        self.tabs.active = pane_id

    def _cycle_pane(self) -> None:
        if isinstance(self.screen, Screen) and self.screen is not self.screen_stack[0]:
            return  # a dialog or screen is open: do not pull the view from under it
        current = self.active_pane
        index = KIOSK_CYCLE.index(current) if current in KIOSK_CYCLE else -1
        self.action_show_pane(KIOSK_CYCLE[(index + 1) % len(KIOSK_CYCLE)])

    def action_help(self) -> None:
        from console.tui.screens.help import HelpScreen  # screens are imported when first opened

        self.push_screen(HelpScreen(self.binding_sections()))

    def binding_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Every binding that works now, grouped: the console's, then the pane's and widget's."""
        console: list[tuple[str, str]] = []
        local: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if binding.action == "command_palette":
                continue  # listed below with a clearer description
            label = self.get_key_display(binding)
            description = binding.description or binding.tooltip or binding.action
            if (label, description) in seen:
                continue
            seen.add((label, description))
            (console if active.node is self else local).append((label, description))
        console.append((self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, "")), "Command palette: every action by name"))
        return [("Console", console), (f"{self.active_pane.capitalize()} pane", local)]

    # ------------------------------------------------------------------ display control

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.header.show(self._header())
        if not self.paused and self.state is not None:
            self._apply_state(self.state)
        self.notify("Display paused: data keeps being collected." if self.paused else "Display resumed.")

    def action_refresh(self) -> None:
        self.services.source.refresh_now()

    def action_next_theme(self) -> None:
        names = list(THEME_NAMES)
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]

    @property
    def editor_theme(self) -> str:
        """The spec editor's syntax colours for the console's theme."""
        return EDITOR_THEMES.get(getattr(self.current_theme, "name", ""), "css")

    def _theme_changed(self, _theme: Any) -> None:
        specs = self.panes.get("specs") if hasattr(self, "panes") else None
        if specs is not None and specs.query("#spec-editor"):  # else it takes the theme when built
            specs.editor.theme = self.editor_theme

    # ------------------------------------------------------------------ screens

    def live_records(self, kind: str) -> list[Any]:
        return list(self.state.items(kind)) if self.state is not None else []  # type: ignore[arg-type]

    def spec_catalog(self) -> Any:
        folders = [("specs", self.services.specs_dir)]
        if self.services.samples_dir is not None:
            folders.append(("sample", self.services.samples_dir))
        return find_specs(folders)

    def action_placement(self) -> None:
        from console.tui.screens.placement_preview import PlacementScreen

        nodes = [n for n in self.live_records("nodes") if isinstance(n, NodeInfo)]
        self.push_screen(PlacementScreen(self.spec_catalog(), nodes, tuple(self.services.backends.values())))

    def action_scaling(self) -> None:
        from console.tui.screens.scaling import ScalingScreen

        containers = [c for c in self.live_records("containers") if isinstance(c, ContainerInfo)]
        self.push_screen(ScalingScreen(self.spec_catalog(), containers))

    @property
    def autoscaler_tolerance(self) -> float | None:
        return self.options.autoscaler_tolerance

    def open_details(self, kind: str, row: Row) -> None:
        from console.tui.screens.details import DetailsScreen

        record = self._find_record(kind, row)
        if record is None:
            self.notify(f"{row.name} is no longer reported.", severity="warning")
            return
        resource = described.resource if (described := kind_named(kind)) else None
        handler = self.services.handler(resource) if resource else None
        title = f"{resource or kind.rstrip('s')}/{row.name} on {row.backend}"
        self.push_screen(DetailsScreen(title, record, handler, row.name, follow_logs=kind == "containers",
                                       history_key=row.key if described and described.runs_replicas else None))

    def _find_record(self, kind: str, row: Row) -> Any:
        if self.state is None:
            return None
        pane = self.panes.get(kind)
        if isinstance(pane, ResourcePane):  # the record as its row shows it (a Swarm task's, with its task labels)
            return pane.record_of(self.state, row.key)
        for backend in self.state.of_kind(kind):  # type: ignore[arg-type]
            if backend.snapshot is None:
                continue
            for record in backend.snapshot.items:
                if row_key(record, backend.name) == row.key:
                    return record
        return None

    # ------------------------------------------------------------------ editor questions

    def ask_unsaved(self, specs: SpecsPane, proceed: Callable[[], None]) -> None:
        def chosen(choice: str | None) -> None:
            if choice == "discard":
                specs.saved_text = specs.editor.text  # the operator chose to drop the changes
                proceed()
            elif choice == "save":
                self._after_save_action = proceed
                specs.action_save()

        self._after_save_action = None
        self.push_screen(UnsavedScreen(str(specs.path)), callback=chosen)

    def after_save(self, ok: bool) -> None:
        """The editor finished a save; run what was waiting for it (switch file, quit)."""
        follow_up = self._after_save_action
        self._after_save_action = None
        if ok and follow_up is not None:
            follow_up()

    # ------------------------------------------------------------------ quitting

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A locked kiosk ignores its quit keys, and neither the footer nor the help offers them."""
        return not (action in ("quit", "help_quit") and self.options.kiosk_lock)

    async def action_quit(self) -> None:
        if self.options.kiosk_lock:  # `:quit` still comes here: say why nothing happens
            self.notify("This kiosk is locked: it cannot be quit from the keyboard.", severity="warning")
            return
        specs = self.pane("specs")
        if specs.dirty:
            specs.ask_then(self.exit)
            return
        self.exit(0)

    async def action_help_quit(self) -> None:
        await self.action_quit()

def _log_fatal(app: RtmConsole) -> str:
    import sys

    from console.diagnostics import log_exception

    error = sys.exc_info()[1]
    if error is None:
        return "rtm-console stopped on an unexpected error (see the debug log)"
    return "rtm-console stopped: " + log_exception(error, "unexpected error in the console")


# An unexpected error ends the app with one line naming the debug log (which holds the
# traceback) instead of textual's full traceback on the terminal.
end_fatal_errors_with_one_line(RtmConsole, _log_fatal)  # type: ignore[arg-type]
