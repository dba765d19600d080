"""Getting around: the `:` prompt (k9s style) and the command palette's entries. Mixed into the app."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from textual import events
from textual.app import SystemCommand
from textual.screen import Screen
from textual.widgets import Input

from console.tui import offered_actions
from console.tui.panes.resource import ResourcePane
from console.tui.registry import ALIAS_TO_PANE, PANES
from console.tui.screens.dialogs import TextPromptScreen
from console.tui.typeahead import TypeAhead
from console.tui.views import Row
from themes import THEME_NAMES, THEMES

# The keys that may move the focus (what they are bound to decides): the prompt, a table's
# filter, a pane's number key.
FOCUS_KEYS = frozenset({"colon", "slash", *(key for _, _, key in PANES)})


class Navigation(TypeAhead):
    """The `:` prompt and the palette (a mixin of RtmConsole: `self` is the app). Keys typed
    right behind `:`, the Enter that answers a prompt, `/` or a pane's number key wait until
    the focus is where they belong (TypeAhead)."""

    services: Any
    options: Any

    def action_prompt(self) -> None:
        suggestions = sorted(ALIAS_TO_PANE) + sorted({row.name for row in self._all_rows()})
        self.push_screen(
            TextPromptScreen(":", suggestions, placeholder="pane or resource name (nodes, co, vm, fn, web-0 …)", bottom=True),
            callback=lambda text: self.jump(text) if text else None,
        )

    def focus_moves_after(self, key: events.Key) -> Callable[[], bool] | None:
        screen = self.screen
        if isinstance(screen, TextPromptScreen):
            return (lambda: screen.answered and self._focus_arrived()) if key.key in ("enter", "escape") else None
        if key.key not in FOCUS_KEYS or _is_text_field(self.focused):
            return None  # moves nothing, or is typed into a text field
        bound = screen.active_bindings.get(key.key)
        if bound is None or not bound.enabled:
            return None
        action = bound.binding.action
        if bound.node is self and action == "prompt":
            return lambda: isinstance(self.screen, TextPromptScreen) and self.screen.focused is not None
        if isinstance(bound.node, ResourcePane) and action == "filter":
            return lambda: isinstance(self.focused, Input)
        shown = next((pane for pane, _, _ in PANES if action == f"show_pane('{pane}')"), None)
        if bound.node is self and shown is not None:
            return lambda: self.active_pane == shown and self._focus_arrived()
        return None

    def _focus_arrived(self) -> bool:
        """A screen shown on top is ready, or the focus is inside the pane in sight."""
        if self.screen is not self.screen_stack[0]:
            return self.screen.is_mounted
        focused = self.focused
        return focused is not None and self.pane(self.active_pane) in focused.ancestors_with_self

    def _all_rows(self) -> Iterable[Row]:
        for pane_id, _, _ in PANES:
            pane = self.pane(pane_id)
            if isinstance(pane, ResourcePane):
                yield from pane.table.all_rows

    def jump(self, text: str) -> bool:
        """k9s-style: a pane (`co`, `vms`), a pane and a name (`co web-0`), KIND/NAME, a name."""
        words = text.strip().split()
        if not words:
            return False
        first = words[0].lower().rstrip("/")
        if "/" in first and len(words) == 1:
            kind, _, name = words[0].partition("/")
            pane = ALIAS_TO_PANE.get(kind.lower())
            return self._select_in(pane, name) if pane else self._nothing(text)
        if first in ALIAS_TO_PANE:
            pane = ALIAS_TO_PANE[first]
            self.action_show_pane(pane)
            return self._select_in(pane, " ".join(words[1:])) if len(words) > 1 else True
        if first in ("q", "quit"):
            self.action_quit()
            return True
        for command, run in (("help", self.action_help), ("placement", self.action_placement), ("scaling", self.action_scaling)):
            if first == command:
                run()
                return True
        if first == "theme" and len(words) == 2 and words[1] in THEMES:
            self.theme = words[1]
            return True
        for pane_id, _, _ in PANES:
            pane = self.pane(pane_id)
            if isinstance(pane, ResourcePane) and any(row.name == text.strip() for row in pane.table.all_rows):
                return self._select_in(pane_id, text.strip())
        return self._nothing(text)

    def _select_in(self, pane_id: str, name: str) -> bool:
        self.action_show_pane(pane_id)
        pane = self.pane(pane_id)
        if not isinstance(pane, ResourcePane):
            return True
        pane.refresh_rows()
        rows = pane.table.all_rows
        match = next((r for r in rows if r.name == name), None) or next((r for r in rows if r.name.startswith(name)), None)
        if match is None:
            return self._nothing(f"{pane_id}/{name}")
        if not pane.table.select_key(match.key):
            pane.action_clear_filter()
            pane.table.select_key(match.key)
        pane.table.screen.set_focus(pane.table)  # now, not queued: the next key typed is for this row
        return True

    def _nothing(self, text: str) -> bool:
        self.notify(f"Nothing is named {text!r}.", severity="warning")
        return False

    # ------------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for pane, title, key in PANES:
            yield SystemCommand(f"Show {title}", f"Switch to the {title} pane (key {key})",
                                lambda pane=pane: self.action_show_pane(pane))
        yield SystemCommand("Jump to a pane or resource", "The : prompt (k9s style)", self.action_prompt)
        yield SystemCommand("Filter the table", "Show only rows containing some words (/)", self._filter_current)
        yield SystemCommand("Pause or resume the display", "Data keeps being collected (p)", self.action_toggle_pause)
        yield SystemCommand("Refresh now", "Poll every backend now (r)", self.action_refresh)
        for name in THEME_NAMES:
            yield SystemCommand(f"Theme: {name}", f"Switch to the {name} theme (t cycles)",
                                lambda name=name: setattr(self, "theme", name))
        yield SystemCommand("Placement preview", "Where a workload's replicas would go (P)", self.action_placement)
        yield SystemCommand("Scaling decisions", "Horizontal and vertical decisions for a workload (H)", self.action_scaling)
        yield SystemCommand("Show key bindings", "Every key that works here (?)", self.action_help)
        yield from self._resource_commands()
        specs = self.pane("specs")
        yield SystemCommand("Save spec", "Write the editor's text to its file (Ctrl+S)", specs.action_save)
        yield SystemCommand("New spec", "Start a new spec file (Ctrl+N)", specs.action_new_spec)
        if specs.check_action("apply", ()):
            yield SystemCommand("Apply spec", "Show what will change, then apply (F6)", specs.action_apply)
        if not self.options.kiosk_lock:
            yield SystemCommand("Quit", "Leave rtm-console (q)", self.action_quit)

    def _filter_current(self) -> None:
        pane = self.pane(self.active_pane)
        if isinstance(pane, ResourcePane):
            pane.action_filter()

    def _resource_commands(self) -> Iterable[SystemCommand]:
        pane_id = self.active_pane
        pane = self.pane(pane_id)
        if not isinstance(pane, ResourcePane):
            return
        row = pane.table.selected_row()
        if row is None:
            return
        yield SystemCommand(f"Details of {row.name}", "Inspect, describe, logs (Enter)", pane.action_details)
        for spec in offered_actions.offered(pane_id, self.services):
            yield SystemCommand(f"{spec.label} {row.name}", f"{spec.action} through the action gate",
                                lambda verb=spec.verb: pane.action_resource(verb))


def _is_text_field(widget: object) -> bool:
    """A widget keys are typed into. TextArea (and tree-sitter with it) is looked up only once the
    Specs pane has imported it: before that, no widget can be one, and the first frame stays light."""
    text_area = sys.modules.get("textual.widgets._text_area")
    return isinstance(widget, Input) or (text_area is not None and isinstance(widget, text_area.TextArea))
