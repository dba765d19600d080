"""What changed between the rows on screen and the rows of a new poll.

Pure: the table widget applies the result (add, remove, update only the changed cells) inside
one batch update, so a refresh repaints what changed and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from console.tui.views import Row

CellChange = tuple[int, str]  # (column index, new text)


@dataclass(frozen=True)
class TableDiff:
    added: tuple[Row, ...]
    removed: tuple[str, ...]  # row keys
    changed: tuple[tuple[Row, tuple[CellChange, ...]], ...]  # new row, its changed cells
    order_changed: bool  # the keys are no longer in the same order (new rows, or a new sort)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.order_changed)

    @property
    def changed_cells(self) -> int:
        return sum(len(cells) for _, cells in self.changed)


def diff_rows(shown: Mapping[str, Row], wanted: Sequence[Row]) -> TableDiff:
    """Compare the rows on screen (by key, in screen order) with the rows wanted now (in order)."""
    added: list[Row] = []
    changed: list[tuple[Row, tuple[CellChange, ...]]] = []
    wanted_keys: set[str] = set()
    for row in wanted:
        wanted_keys.add(row.key)
        old = shown.get(row.key)
        if old is None:
            added.append(row)
        elif old is not row and old.cells != row.cells:
            cells = tuple(
                (index, new) for index, (before, new) in enumerate(zip(old.cells, row.cells)) if before != new
            )
            changed.append((row, cells))
    removed = tuple(key for key in shown if key not in wanted_keys)
    order_changed = bool(added) or [key for key in shown if key in wanted_keys] != [row.key for row in wanted]
    return TableDiff(tuple(added), removed, tuple(changed), order_changed)
