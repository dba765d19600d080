"""Enter on a row: everything the poll knows about the resource, then what its backend says.

The record (inspect) is shown at once. When the resource's runtime handler offers them, its
`describe` (domain XML and stats for VMs, configuration and triggers for functions, Docker's
inspect for containers) and a container's logs, followed, are fetched in thread workers, so a
slow backend never freezes the screen. A Swarm task's row opens on its slot's history, read from
the cluster's manager the same way (console/tui/screens/task_history.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TabbedContent, TabPane

from backends.base import BackendUnavailable
from backends.records import to_jsonable
from backends.verbs import Logged, WithActions
from console.diagnostics import log_exception
from console.tui.screens.task_history import task_history_tab
from console.tui.widgets.history_strip import HistoryStrip
from console.tui.widgets.log_view import MAX_LINES, LogView

LOG_TAIL = MAX_LINES  # the last lines asked for when the logs open (and for "since" all)


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(to_jsonable(data), sort_keys=False, allow_unicode=True, width=100)


@dataclass(frozen=True)
class FetchedTab:
    """A tab whose text a backend gives: fetched in a thread worker once the screen is shown."""

    id: str  # the Static's id; the tab's is "tab-" + id
    title: str
    fetch: Callable[[], str]
    what: str  # for the debug log: "describe web-0"


class DetailsScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    DetailsScreen { align: center middle; }
    DetailsScreen > Vertical { width: 95%; height: 90%; border: thick $primary; background: $surface; }
    DetailsScreen #details-title { height: 1; padding: 0 1; background: $panel; width: 100%; }
    DetailsScreen TabbedContent { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, record: Any, handler: Any = None, name: str = "", follow_logs: bool = False,
                 history_key: str | None = None) -> None:
        super().__init__()
        self.history_key = history_key  # a container's or VM's row: sparklines of its last samples
        self.title_text = title
        self.record = record
        self.handler = handler
        self.resource_name = name
        labels = getattr(record, "labels", None) or {}
        # A Swarm task's row is named service.slot: its container is asked for by id on the engine
        # that lists it; a task no configured engine lists has its service's logs and no describe.
        self.task_without_engine = "rtm.swarm.task" in labels and "/" in record.engine
        if "rtm.swarm.task" in labels:
            self.resource_name = labels.get("rtm.swarm.service", name) if self.task_without_engine else record.id
        self.follow_logs = follow_logs
        self._stop_streams = threading.Event()
        self._log_stream = threading.Event()  # set: the current log stream is replaced
        self._fetched: list[FetchedTab] = []

    def fetched_tabs(self) -> list[FetchedTab]:
        tabs = []
        task = task_history_tab(self.record, self.app.services.backends)  # type: ignore[attr-defined]
        if task is not None:
            tabs.append(FetchedTab("task-history", "Task history", task, f"history of task {self.resource_name}"))
        if self.handler is not None and callable(getattr(self.handler, "describe", None)) and not self.task_without_engine:
            tabs.append(FetchedTab("describe", "Describe", lambda: as_yaml(self.handler.describe(self.resource_name)),
                                   f"describe {self.resource_name}"))
        return tabs

    def compose(self) -> ComposeResult:
        fetched = self.fetched_tabs()
        with Vertical():
            yield Label(self.title_text, id="details-title")
            if self.history_key is not None:
                yield HistoryStrip(id="history")
            # A Swarm task opens on its history; anything else on the record.
            with TabbedContent(initial=f"tab-{fetched[0].id}" if fetched and fetched[0].id == "task-history" else ""):
                with TabPane("Inspect", id="tab-inspect"):
                    with VerticalScroll():
                        yield Static(as_yaml(self.record), id="inspect", markup=False)
                for tab in fetched:
                    with TabPane(tab.title, id=f"tab-{tab.id}"):
                        with VerticalScroll():
                            yield Static("asking the backend…", id=tab.id, markup=False)
                if self.follow_logs and isinstance(self.handler, Logged):
                    with TabPane("Logs", id="tab-logs"):
                        yield LogView(self.app.services.clock, id="log-view", on_since=self.stream_logs)  # type: ignore[attr-defined]
        self._fetched = fetched

    def on_mount(self) -> None:
        if self.history_key is not None:
            self.app.watch_rows("details", frozenset({self.history_key}))  # type: ignore[attr-defined]
            self.update_history()
            self.set_interval(1.0, self.update_history)
        for tab in self._fetched:
            self.fetch(tab)
        if self.query(LogView):
            self.stream_logs()

    @work(thread=True, group="details")
    def fetch(self, tab: FetchedTab) -> None:
        try:
            text = tab.fetch()
        except BackendUnavailable as exc:
            text = str(exc)
        except Exception as exc:  # shown as one line naming the debug log, never a traceback
            text = log_exception(exc, tab.what)
        if not self._stop_streams.is_set():
            self.app.call_from_thread(self.query_one(f"#{tab.id}", Static).update, text)

    def stream_logs(self, since: float | None = None) -> None:
        """Follow the logs (those since `since`, epoch seconds, when given) in a daemon thread of
        its own, not a textual worker: a followed stream blocks until the container writes, and
        the app must not wait for it to close. The thread stops at the next line after the screen
        closes or a new stream replaces it."""
        self._log_stream.set()
        self._log_stream = replaced = threading.Event()
        threading.Thread(target=self._follow, args=(replaced, since), name=f"rtm-logs:{self.resource_name}", daemon=True).start()

    def _follow(self, replaced: threading.Event, since: float | None) -> None:
        log = self.query_one(LogView)

        def add_line(text: str) -> None:  # on the event loop: a replaced stream's last line is dropped
            if not replaced.is_set():
                log.add_line(text)

        try:
            for line in self._log_lines(since):
                if self._stop_streams.is_set() or replaced.is_set() or not self._show(add_line, line):
                    return
        except BackendUnavailable as exc:
            message = str(exc)
        except Exception as exc:
            message = log_exception(exc, f"logs of {self.resource_name}")
        else:
            message = "(the log stream ended)"
        if not self._stop_streams.is_set() and not replaced.is_set():
            self._show(log.add_note, message)

    def _log_lines(self, since: float | None) -> Any:
        """Lines with the engine's timestamps when the handler's actions can give them (for the
        view's timestamps and "since", asked of the engine), else plain ones."""
        actions = self.handler.actions if isinstance(self.handler, WithActions) else None
        if isinstance(actions, Logged) and not self.task_without_engine:  # Docker's container actions
            return actions.logs(self.resource_name, tail=LOG_TAIL, follow=True, timestamps=True, since=since)  # type: ignore[call-arg]
        return self.handler.logs(self.resource_name, follow=True, tail=LOG_TAIL)

    def _show(self, write: Any, text: str) -> bool:
        """Hand a line to the screen; False once the app has stopped."""
        try:
            self.app.call_from_thread(write, text)
        except RuntimeError:  # the app is not running any more
            return False
        return True

    def update_history(self) -> None:
        self.query_one(HistoryStrip).show(self.app.resource_series(self.history_key))  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        if self.history_key is not None:
            self.app.watch_rows("details", frozenset())  # type: ignore[attr-defined]

    def action_close(self) -> None:
        self._stop_streams.set()
        self.dismiss(None)
