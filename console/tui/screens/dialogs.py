"""Small modal dialogs: a yes/no confirmation, unsaved changes, a one-line text prompt, and
the output of a command."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 72; max-width: 95%; height: auto; padding: 1 2;
    border: thick $primary; background: $surface;
}}
{name} Label {{ width: 100%; margin-bottom: 1; }}
{name} Horizontal {{ height: auto; align-horizontal: right; }}
{name} Button {{ margin-left: 1; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """Asks the gate's question ("Delete container/web-0?"); Enter/Y confirms, Esc/N refuses."""

    DEFAULT_CSS = DIALOG_CSS.format(name="ConfirmScreen")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="question")
            if self.detail:
                yield Label(self.detail, id="detail")
            with Horizontal():
                yield Button("No", id="no")
                yield Button("Yes", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class UnsavedScreen(ModalScreen[str]):
    """Unsaved changes: "save", "discard" or "cancel"."""

    DEFAULT_CSS = DIALOG_CSS.format(name="UnsavedScreen")
    BINDINGS = [
        Binding("s", "choose('save')", "Save"),
        Binding("d", "choose('discard')", "Discard"),
        Binding("escape", "choose('cancel')", "Cancel"),
    ]

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.path} has unsaved changes.")
            with Horizontal():
                yield Button("Cancel", id="cancel")
                yield Button("Discard", id="discard", variant="error")
                yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class TextPromptScreen(ModalScreen[str | None]):
    """One line of text; Esc cancels (None)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="TextPromptScreen") + """
    TextPromptScreen.-bottom { align: left bottom; }
    TextPromptScreen.-bottom > Vertical { width: 100%; max-width: 100%; border: none; padding: 0 1; }
    TextPromptScreen.-bottom Label { margin: 0; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    answered = False  # True once the answer's callback has run: keys typed behind Enter wait for it

    def __init__(self, prompt: str, suggestions: Sequence[str] = (), placeholder: str = "", bottom: bool = False) -> None:
        super().__init__(classes="-bottom" if bottom else "")
        self.prompt = prompt
        self.suggestions = list(suggestions)
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.prompt)
            suggester = SuggestFromList(self.suggestions, case_sensitive=False) if self.suggestions else None
            yield Input(placeholder=self.placeholder, suggester=suggester)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._answer(event.value.strip() or None)

    def action_cancel(self) -> None:
        self._answer(None)

    def _answer(self, text: str | None) -> None:
        self.dismiss(text)  # the callback is queued on the app; what is queued next runs after it
        self.app.call_next(self._answered)

    def _answered(self) -> None:
        self.answered = True


class OutputScreen(ModalScreen[None]):
    """What a command printed (exec), with its exit code."""

    DEFAULT_CSS = """
    OutputScreen { align: center middle; }
    OutputScreen > Vertical { width: 90%; height: 80%; border: thick $primary; background: $surface; }
    OutputScreen #output-title { height: 1; padding: 0 1; background: $panel; width: 100%; }
    """
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, result: object) -> None:
        super().__init__()
        self.title_text = title
        self.result = result

    def compose(self) -> ComposeResult:
        exit_code = getattr(self.result, "exit_code", None)
        output = getattr(self.result, "output", None)
        text = output if output is not None else _as_text(self.result)
        with Vertical():
            suffix = "" if exit_code is None else f"  (exit code {exit_code})"
            yield Label(f"{self.title_text}{suffix}", id="output-title")
            with VerticalScroll():
                yield Static(text or "(no output)", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)


def _as_text(value: object) -> str:
    """A result for people: JSON-ready data indented, anything else as text."""
    import json

    from backends.records import to_jsonable

    data = value.to_json() if hasattr(value, "to_json") else value
    try:
        return json.dumps(to_jsonable(data), indent=2, default=str)
    except (TypeError, ValueError):
        return str(value)
