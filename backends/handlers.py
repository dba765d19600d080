"""What apply, delete, get, describe and logs need from a runtime backend.

console/resources.py drives these; it wraps every call that changes something in the action
gate, so handlers never check the mode themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol, Sequence

if TYPE_CHECKING:
    from rtm.documents import Document

ChangeAction = Literal["create", "update", "replace", "unchanged", "delete"]


@dataclass(frozen=True)
class Change:
    """One step of a plan: what would happen to one resource, and which fields differ."""

    action: ChangeAction
    resource: str  # "container/web-0", "vm/standard-vm", "function/hello"
    diff: tuple[tuple[str, Any, Any], ...] = ()  # (field, live value, spec value)
    note: str = ""

    def to_json(self) -> dict:
        data: dict[str, Any] = {"action": self.action, "resource": self.resource}
        if self.diff:
            data["diff"] = [{"field": f, "live": old, "spec": new} for f, old, new in self.diff]
        if self.note:
            data["note"] = self.note
        return data


class ApplyError(Exception):
    """A failed apply: what was done first, what failed and why. The handler has already undone
    what this call created, so nothing is left half-created."""

    def __init__(self, done: list[str], failed: str, cause: str, hint: str = "") -> None:
        super().__init__(f"{failed}: {cause}" + (f" (hint: {hint})" if hint else ""))
        self.done = done
        self.failed = failed
        self.cause = cause
        self.hint = hint


class RuntimeHandler(Protocol):
    resource: str  # "container" | "vm" | "function"
    runtime_kind: str  # "ContainerRuntime" | "VirtualMachineRuntime" | "ServerlessRuntime"

    def render(self, document: Document, base_dir: Path) -> Any: ...

    def plan(self, document: Document, base_dir: Path) -> list[Change]: ...

    def apply(self, document: Document, base_dir: Path, changes: list[Change], progress: Callable[[str], None]) -> list[str]: ...

    def delete(self, name: str, *, with_disk: bool = False) -> list[str]: ...

    def list(self) -> Sequence[Any]: ...

    def describe(self, name: str) -> dict: ...
