"""Enter on a row: everything the poll knows about the resource, then what its backend says.

The record (inspect) is shown at once. When the resource's runtime handler offers them, its
`describe` (domain XML and stats for VMs, configuration and triggers for functions, Docker's
inspect for containers) and a container's logs, followed, are fetched in thread workers, so a
slow backend never freezes the screen.
"""

from __future__ import annotations

import threading
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
from console.diagnostics import log_exception
from console.tui.widgets.history_strip import HistoryStrip
from console.tui.widgets.log_view import MAX_LINES, LogView

LOG_TAIL = MAX_LINES  # the last lines asked for when the logs open (and for "since" all)


def as_yaml(data: Any) -> str:
    return yaml.safe_dump(to_jsonable(data), sort_keys=False, allow_unicode=True, width=100)


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
        self.follow_logs = follow_logs
        self._stop_streams = threading.Event()
        self._log_stream = threading.Event()  # set: the current log stream is replaced

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, id="details-title")
            if self.history_key is not None:
                yield HistoryStrip(id="history")
            with TabbedContent():
                with TabPane("Inspect", id="tab-inspect"):
                    with VerticalScroll():
                        yield Static(as_yaml(self.record), id="inspect", markup=False)
                if self.handler is not None and callable(getattr(self.handler, "describe", None)):
                    with TabPane("Describe", id="tab-describe"):
                        with VerticalScroll():
                            yield Static("asking the backend…", id="describe", markup=False)
                if self.follow_logs and callable(getattr(self.handler, "logs", None)):
                    with TabPane("Logs", id="tab-logs"):
                        yield LogView(self.app.services.clock, id="log-view", on_since=self.stream_logs)  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        if self.history_key is not None:
            self.app.watch_rows("details", frozenset({self.history_key}))  # type: ignore[attr-defined]
            self.update_history()
            self.set_interval(1.0, self.update_history)
        if self.query("#describe"):
            self.describe()
        if self.query(LogView):
            self.stream_logs()

    @work(thread=True, group="details")
    def describe(self) -> None:
        try:
            text = as_yaml(self.handler.describe(self.resource_name))
        except BackendUnavailable as exc:
            text = str(exc)
        except Exception as exc:  # shown as one line naming the debug log, never a traceback
            text = log_exception(exc, f"describe {self.resource_name}")
        if not self._stop_streams.is_set():
            self.app.call_from_thread(self.query_one("#describe", Static).update, text)

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
        with_stamps = getattr(getattr(self.handler, "actions", None), "logs", None)
        if callable(with_stamps):
            return with_stamps(self.resource_name, tail=LOG_TAIL, follow=True, timestamps=True, since=since)
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
