"""A followed log with search, timestamps, wrapping and "since", never holding more than
`MAX_LINES` lines.

Lines arrive with Docker's timestamp in front (`2026-01-02T03:04:05.123456789Z text`). The view
keeps the last `MAX_LINES` of them (older ones are dropped as new ones come) and shows them:

- `/` searches (case-insensitive); `n` / `N` go to the next / previous line that matches, the
  matches are shown in reverse video and the status line says `match 2 of 7`;
- `T` shows or hides the timestamps, `w` wraps long lines or not;
- `s` cycles "since": all, the last 5 minutes, the last hour. Given `on_since`, the view drops
  its lines and asks its owner for the lines since then (`on_since(epoch seconds or None)`), so
  the backend sends them even when they were not among the kept ones; without it the kept lines
  are filtered by their timestamps. A line without a timestamp is always shown.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, RichLog, Static

from console.datadir import parse_iso

MAX_LINES = 5000
SINCE_CHOICES: tuple[tuple[str, float | None], ...] = (("all", None), ("5m", 300.0), ("1h", 3600.0))


@dataclass(frozen=True)
class LogLine:
    stamp: str  # as the engine wrote it, "" without one
    time: float | None  # epoch seconds of the stamp
    text: str


def parse_line(raw: str) -> LogLine:
    first, _, rest = raw.partition(" ")
    if len(first) >= 20 and first[4:5] == "-" and first[10:11] == "T":
        try:
            return LogLine(first, parse_iso(first[:26].rstrip("Z") + "Z" if "." in first else first), rest)
        except ValueError:
            pass
    return LogLine("", None, raw)


class LogView(Vertical):
    DEFAULT_CSS = """
    LogView > #log-status { height: 1; background: $panel; padding: 0 1; }
    LogView > Input { display: none; }
    LogView > Input.-active { display: block; }
    LogView > RichLog { height: 1fr; }
    """
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next match"),
        Binding("N", "previous_match", "Previous match"),
        Binding("T", "toggle_timestamps", "Timestamps"),
        Binding("w", "toggle_wrap", "Wrap"),
        Binding("s", "next_since", "Since"),
    ]

    def __init__(self, clock: Callable[[], float], log_id: str = "logs",
                 on_since: Callable[[float | None], None] | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.clock = clock
        self.on_since = on_since
        self.log_id = log_id
        self.lines: deque[LogLine] = deque(maxlen=MAX_LINES)
        self.timestamps = False
        self.wrap = False
        self.since_index = 0
        self.query_text = ""
        self.matches: list[int] = []  # indexes into the shown lines
        self.match_index = -1
        self._offsets: list[int] = []  # per shown line, its first line in the RichLog
        self._shown: list[LogLine] = []
        self._status_stale = False
        self._offsets_stale = False  # wrapped rows were dropped from the top: offsets need a rebuild

    def compose(self) -> ComposeResult:
        yield Static("", id="log-status", markup=False)
        yield Input(placeholder="search the log (Enter: first match; n / N: next / previous)")
        yield RichLog(id=self.log_id, wrap=False, markup=False, max_lines=MAX_LINES)

    def on_mount(self) -> None:
        self._status()
        self.set_interval(0.5, self._status_if_changed)  # a busy log updates the line twice a second, not per line

    def _status_if_changed(self) -> None:
        if self._status_stale:
            self._status()

    # ------------------------------------------------------------------ lines in

    def add_line(self, raw: str) -> None:
        line = parse_line(raw)
        self.lines.append(line)  # the oldest kept line drops out past MAX_LINES
        if self._visible(line):
            self._write(line)
            if self.query_text and self.query_text in line.text.lower():
                self.matches.append(len(self._shown) - 1)
            if len(self._shown) > MAX_LINES:  # the RichLog dropped its oldest rows too
                self._shown.pop(0)
                self._offsets.pop(0)
                self.matches = [index - 1 for index in self.matches if index > 0]
                self._offsets_stale = self.wrap
        self._status_stale = True

    def add_note(self, text: str) -> None:
        """A message of the console's (the stream ended, an error), shown as a line."""
        self.add_line(text)

    # ------------------------------------------------------------------ showing

    @property
    def since(self) -> tuple[str, float | None]:
        return SINCE_CHOICES[self.since_index]

    def _visible(self, line: LogLine) -> bool:
        seconds = self.since[1]
        return seconds is None or line.time is None or line.time >= self.clock() - seconds

    def _line_text(self, line: LogLine) -> Text:
        text = Text(f"{line.stamp} {line.text}" if self.timestamps and line.stamp else line.text, end="")
        if self.query_text:
            text.highlight_words([self.query_text], style="reverse", case_sensitive=False)
        return text

    def _write(self, line: LogLine) -> None:
        log = self.query_one(RichLog)
        self._offsets.append(len(log.lines))
        self._shown.append(line)
        log.write(self._line_text(line), scroll_end=None)

    def rebuild(self) -> None:
        log = self.query_one(RichLog)
        log.wrap = self.wrap
        log.clear()
        self._offsets, self._shown, self._offsets_stale = [], [], False
        for line in self.lines:
            if self._visible(line):
                self._write(line)
        self.matches = [i for i, line in enumerate(self._shown) if self.query_text and self.query_text in line.text.lower()]
        self.match_index = -1
        self._status()

    def _status(self) -> None:
        self._status_stale = False
        parts = [f"{len(self._shown)} lines shown (the last {MAX_LINES} are kept)", f"since: {self.since[0]}",
                 f"timestamps: {'on' if self.timestamps else 'off'}", f"wrap: {'on' if self.wrap else 'off'}"]
        if self.query_text:
            where = f"match {self.match_index + 1} of {len(self.matches)}" if self.match_index >= 0 else f"{len(self.matches)} matches"
            parts.append(f"/{self.query_text}: {where}")
        parts.append("keys: / n N T w s")
        status = self.query_one("#log-status", Static)
        status.update("  │  ".join(parts))

    # ------------------------------------------------------------------ keys

    def action_search(self) -> None:
        box = self.query_one(Input)
        box.add_class("-active")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.remove_class("-active")
        self.query_text = event.value.strip().lower()
        self.rebuild()
        self.query_one(RichLog).focus()
        if self.matches:
            self.action_next_match()

    def action_next_match(self) -> None:
        self._go(1)

    def action_previous_match(self) -> None:
        self._go(-1)

    def _go(self, step: int) -> None:
        if not self.matches:
            self.notify(f"No line matches {self.query_text!r}." if self.query_text else "Search first with /.",
                        severity="warning")
            return
        if self._offsets_stale:
            index = self.match_index
            self.rebuild()
            self.match_index = index
        self.match_index = (self.match_index + step) % len(self.matches)
        shown = self.matches[self.match_index]
        offset = self._offsets[shown] if self.wrap else shown  # unwrapped, a line is one row
        self.query_one(RichLog).scroll_to(y=offset, animate=False)
        self._status()

    def action_toggle_timestamps(self) -> None:
        self.timestamps = not self.timestamps
        self.rebuild()

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        self.rebuild()

    def action_next_since(self) -> None:
        self.since_index = (self.since_index + 1) % len(SINCE_CHOICES)
        if self.on_since is not None:
            self.lines.clear()  # the owner sends the lines of the new window
        self.rebuild()
        if self.on_since is not None:
            seconds = self.since[1]
            self.on_since(None if seconds is None else self.clock() - seconds)
