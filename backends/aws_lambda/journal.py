"""What one apply has done so far, and how to undo what it created if a later step fails."""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger("rtm.backends.lambda")


class Journal:
    def __init__(self, progress: Callable[[str], None] = lambda _line: None) -> None:
        self.progress = progress
        self.done: list[str] = []  # what was done and still stands
        self._undo: list[tuple[str, str, Callable[[], object]]] = []  # (line, what, undo)

    def did(self, line: str) -> None:
        """A step that changed something but leaves nothing to undo (an update, a deletion)."""
        self.done.append(line)
        self.progress(line)

    def created(self, line: str, what: str, undo: Callable[[], object]) -> None:
        """A step that created `what`; `undo` removes it again."""
        self.did(line)
        self._undo.append((line, what, undo))

    def roll_back(self) -> list[str]:
        """Undo the creations, newest first; what was undone leaves `done`. Returns what could
        not be undone."""
        left = []
        for line, what, undo in reversed(self._undo):
            try:
                undo()
            except Exception as exc:  # BackendUnavailable, AwsCallError: keep undoing the rest
                log.warning("could not undo %s: %s", what, exc)
                left.append(f"{what} ({exc})")
            else:
                self.done.remove(line)
                self.progress(f"undone: {what}")
        self._undo.clear()
        return left
