"""A DataTable that mirrors a list of rows: updated by row key, only the cells that changed.

The pane hands it every row of a poll; the table filters (`/`), sorts (a header click or
`sort_by`), compares with what is on screen (table_diff.diff_rows) and, inside one
`batch_update`, removes the rows that went, updates the changed cells, adds the new rows and
restores the order. The cursor stays on the same row key across refreshes, or on the row of the
same name when its key changed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from console.tui.table_diff import TableDiff, diff_rows
from console.tui.textual_compat import RowCachedDataTable
from console.tui.views import MISSING, Column, Row, matches_filter, sort_rows

# Words that deserve attention in any theme (bold works in monochrome too).
ATTENTION = frozenset({
    "exited", "dead", "crashed", "unhealthy", "paused", "restarting", "shutoff", "Cordoned",
    "Ready !", "Cordoned !",
})
# Rebuild instead of removing row by row past this share of the table (remove_row is O(rows)).
REBUILD_SHARE = 0.25
ROW_CACHE = 300  # rendered rows and lines kept (a tall terminal shows ~100)
CELL_CACHE = 3000  # rendered cells kept


class KeyedText(Text):
    """The first cell of a row: it knows its row, so the table can be put in any order by key."""

    __slots__ = ("row_key",)

    def __init__(self, text: str, row_key: str, justify: str = "left", style: str = "") -> None:
        super().__init__(text, style=style, justify=justify, end="", no_wrap=True)  # type: ignore[arg-type]
        self.row_key = row_key


# Cells are kept light, as a 5,000-row table holds 50,000 of them and the garbage collector
# walks every tracked object on each full collection: text columns are plain strings (escaped
# markup, not tracked by the collector), numeric columns share one right-aligned Text per
# distinct value (CPU percentages, counts and uptimes repeat a lot).
_NUMERIC_CELLS: dict[tuple[str, str], Text] = {}
_NUMERIC_CELLS_MAX = 20_000


def numeric_cell(text: str, style: str) -> Text:
    cell = _NUMERIC_CELLS.get((text, style))
    if cell is None:
        if len(_NUMERIC_CELLS) >= _NUMERIC_CELLS_MAX:
            _NUMERIC_CELLS.clear()
        cell = _NUMERIC_CELLS[(text, style)] = Text(text, style=style, justify="right", end="", no_wrap=True)
    return cell


def text_cell(text: str, style: str) -> str:
    escaped = escape(text)
    return f"[{style}]{escaped}[/]" if style else escaped


class ResourceTable(RowCachedDataTable):
    # A list of resources is read by rows: Home/End (and k9s' g/G) go to the first and last row;
    # DataTable's own Home/End scroll sideways (Ctrl+Home/End still do what they did).
    BINDINGS = [
        Binding("home,g", "scroll_top", "First row", show=False),
        Binding("end,G", "scroll_bottom", "Last row", show=False),
    ]

    class ViewMoved(Message):
        """The rows in sight may have changed (a scroll or a resize)."""

    def __init__(self, columns: Sequence[Column], **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(cursor_type="row", zebra_stripes=True, cell_cache=CELL_CACHE, row_cache=ROW_CACHE, **kwargs)
        self.resource_columns = tuple(columns)
        self._shown: dict[str, Row] = {}  # screen order
        self._all_rows: list[Row] = []
        self.filter_text = ""
        self.sort_column: int | None = None
        self.sort_reverse = False
        self.last_diff: TableDiff | None = None

    def on_mount(self) -> None:
        for column in self.resource_columns:
            self.add_column(self._header(column), key=column.key)
        if self._all_rows:
            self._apply()

    # ------------------------------------------------------------------ public interface

    def show_rows(self, rows: Sequence[Row]) -> TableDiff | None:
        """Make the table show `rows` (through the current filter and sort); before the table
        is mounted the rows are kept and shown when it is."""
        self._all_rows = list(rows)
        return self._apply() if self.is_mounted else None

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        if self.is_mounted:
            self._apply()
            self.post_message(self.ViewMoved())

    def sort_by(self, column: int) -> None:
        """Sort by a column; choosing the same column again reverses the order."""
        if self.sort_column == column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        for index, spec in enumerate(self.resource_columns):
            column = self.columns[self._column_keys[index]]
            column.label = self._header(spec, index)
            column.content_width = max(column.content_width, column.label.cell_len)  # room for the arrow
        self.remeasure_columns()
        self._apply()
        self.post_message(self.ViewMoved())

    def rows_in_view(self) -> list[Row]:
        """The rows on screen now."""
        _header, top, in_sight = self._window()
        return list(itertools.islice(self._shown.values(), top, top + in_sight))

    def _window(self) -> tuple[int, int, int]:
        """(header lines, index of the first row on screen, rows that fit below the header);
        every row is one line high (add_row's default)."""
        header = self.header_height if self.show_header else 0
        return header, int(self.scroll_offset.y), max(0, self.size.height - header)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if int(old_value) != int(new_value):
            self.post_message(self.ViewMoved())

    def on_resize(self) -> None:
        self.post_message(self.ViewMoved())

    @property
    def rows_shown(self) -> tuple[Row, ...]:
        return tuple(self._shown.values())

    @property
    def all_rows(self) -> tuple[Row, ...]:
        return tuple(self._all_rows)

    def selected_row(self) -> Row | None:
        if not self._shown or self.cursor_row < 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # no cell under the cursor (empty table)
            return None
        return self._shown.get(key or "")

    def select_key(self, key: str) -> bool:
        if key not in self._shown:
            return False
        self.move_cursor(row=self.get_row_index(key))
        return True

    # ------------------------------------------------------------------ internals

    @property
    def _column_keys(self) -> list:  # type: ignore[type-arg]
        return [column.key for column in self.ordered_columns]

    def _header(self, column: Column, index: int | None = None) -> Text:
        arrow = ""
        if index is not None and index == self.sort_column:
            arrow = " ▼" if self.sort_reverse else " ▲"
        return Text(column.label + arrow, justify="right" if column.numeric else "left")

    def _wanted(self) -> list[Row]:
        rows = [row for row in self._all_rows if matches_filter(row, self.filter_text)]
        return sort_rows(rows, self.sort_column, self.sort_reverse)

    def _cell(self, row: Row, index: int, text: str) -> Any:
        style = "bold" if text in ATTENTION or text.endswith(" ALERT") else ("dim" if text == MISSING else "")
        if index == 0:
            return KeyedText(text, row.key, style=style)
        if self.resource_columns[index].numeric:
            return numeric_cell(text, style)
        return text_cell(text, style)

    def _cells(self, row: Row) -> list[Any]:
        return [self._cell(row, index, text) for index, text in enumerate(row.cells)]

    def _apply(self) -> TableDiff:
        wanted = self._wanted()
        diff = diff_rows(self._shown, wanted)
        self.last_diff = diff
        if diff.empty:
            self._shown = {row.key: row for row in wanted}
            return diff
        cursor = self.selected_row()
        keys = self._column_keys
        with self.app.batch_update():
            if len(diff.removed) > max(20, len(self._shown) * REBUILD_SHARE):
                self.clear()
                for row in wanted:
                    self.add_row(*self._cells(row), key=row.key)
            else:
                for key in diff.removed:
                    self.remove_row(key)
                self._set_cells(
                    (row, keys[index], self._cell(row, index, text), text)
                    for row, cells in diff.changed for index, text in cells
                )
                for row in diff.added:
                    self.add_row(*self._cells(row), key=row.key)
                if diff.order_changed and keys:
                    order = {row.key: position for position, row in enumerate(wanted)}
                    self.sort(keys[0], key=lambda cell: order[cell.row_key])
            self._shown = {row.key: row for row in wanted}
            follow = self._same_row(cursor) if cursor is not None else None
            if follow is not None:
                self.move_cursor(row=self.get_row_index(follow), scroll=False)
        return diff

    def _same_row(self, row: Row) -> str | None:
        """The key the selected row has now: its own, or, when it went, the key of the row with
        its name (a resource reported under a new key: a Swarm task's row once the engine of its
        node lists its container). Without this the cursor stayed at the old position, on
        whatever row came there, and the next key acted on that one."""
        if row.key in self._shown:
            return row.key
        return next((key for key, shown in self._shown.items() if shown.name == row.name), None)

    # ------------------------------------------------------------------ rendering

    def _set_cells(self, changes: Iterable[tuple[Row, ColumnKey, Any, str]]) -> None:
        """Many cell changes with one repaint of the changed rows in sight (see set_cells)."""
        changed_rows = self.set_cells((RowKey(row.key), column_key, cell, text) for row, column_key, cell, text in changes)
        if changed_rows is not None:
            self._refresh_rows(changed_rows)

    def _refresh_rows(self, row_keys: set[RowKey]) -> None:
        """Repaint the lines of the changed rows that are in sight, not the whole table: an
        idle fleet changes a few cells per refresh, and repainting every visible row for them
        was most of the console's idle CPU."""
        header, top, in_sight = self._window()
        if len(row_keys) > in_sight // 2:
            self.refresh()
            return
        for row_key in row_keys:
            index = self.row_index(row_key)
            if index is not None and top <= index < top + in_sight:
                self.refresh(Region(0, header + index - top, self.size.width, 1))

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(event.column_index)
