"""The one error type every value parser in rtm raises.

A parser (quantity, duration, cron, sizes) raises SpecValueError with a message a newcomer
understands, an optional hint, and the character offset inside the offending string, so the
validator can report `file:line:col` pointing at the exact character.
"""

from __future__ import annotations


class SpecValueError(ValueError):
    def __init__(self, message: str, hint: str | None = None, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.offset = offset

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"
